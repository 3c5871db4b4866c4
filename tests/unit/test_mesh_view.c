// SPDX-License-Identifier: MIT
/*
 * The mesh agent's view (tools/mesh/view.c): registry events applied one
 * by one from a table, each row with the change it must report and the
 * view it must leave; a whole list replacing the view; and the local copy
 * written 0600 in one piece, read back the same, and refused with a reason
 * when it is not one this agent wrote. Files live in a mkdtemp directory.
 */
/* conf.c and record.c each have a static shown(): conf.c's is renamed here. */
#define shown conf_shown
#include "conf.c"
#undef shown
#include "record.c"
#include "view.c"

#include <dirent.h>
#include <stdlib.h>

#include "test_util.h"

#define REC_A "{\"version\":1,\"node\":\"a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"," \
	      "\"prefixes\":[\"10.1.0.0/24\"]}"
#define REC_A2 "{\"version\":1,\"node\":\"a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\"," \
	       "\"prefixes\":[\"10.1.0.0/24\",\"fd00:1::/64\"],\"endpoints\":[\"a.example:51820\"]}"
#define REC_B "{\"version\":1,\"node\":\"b\",\"public_key\":\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\"," \
	      "\"prefixes\":[\"10.2.0.0/24\"]}"
#define REC_ME "{\"version\":1,\"node\":\"me\",\"public_key\":\"FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=\"}"
#define POLICY "{\"version\":1,\"exit_nodes\":[\"gw\"]}"
/* REC_A's and REC_B's keys as revoked/keys/ names them (base64url, no padding). */
#define NAME_A "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg"
#define NAME_B "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi-y71lOWWXX0"
#define REVOKED "{\"version\":1,\"time\":1764754512}"

/* The view in one line, for the tables: "rev N | policy ... | name state c/m liveness; ...". */
static void summary(const struct mesh_view *v, char *out, size_t len)
{
	size_t i, n;

	n = (size_t)snprintf(out, len, "rev %lld | policy %s", (long long)v->revision,
			     !v->policy_raw ? "-" : v->policy_why[0] ? "refused" : "ok");
	if (v->policy_raw && !v->policy_why[0])
		n += (size_t)snprintf(out + n, len - n, " %zu", v->policy.n_exit_nodes);
	for (i = 0; i < v->n; i++) {
		const struct mesh_node *x = &v->nodes[i];

		n += (size_t)snprintf(out + n, len - n, "%s %s %s %lld/%lld %s", i ? ";" : " |", x->name,
				      !x->present ? "gone" : x->parsed ? "rec" : "bad", (long long)x->create_revision,
				      (long long)x->mod_revision, x->alive ? "alive" : "dead");
		if (x->stale_since)
			n += (size_t)snprintf(out + n, len - n, "@%lld", (long long)x->stale_since);
	}
}

struct step {
	const char *key;
	const char *value; /* NULL: deleted */
	int64_t create, mod, now;
	int change;        /* view_apply's mask */
	const char *view;  /* the summary after it */
};

#define P "/veil/n1/"

static const struct step steps[] = {
	{ P "nodes/a", REC_A, 2, 2, 100, VIEW_RECORD, "rev 2 | policy - | a rec 2/2 dead" },
	/* A list and a watch overlap: the same revision twice is one event. */
	{ P "nodes/a", REC_A, 2, 2, 100, VIEW_NOTHING, "rev 2 | policy - | a rec 2/2 dead" },
	{ P "nodes/a", REC_A2, 2, 4, 100, VIEW_RECORD, "rev 4 | policy - | a rec 2/4 dead" },
	{ P "alive/a", "", 5, 5, 100, VIEW_ALIVE, "rev 5 | policy - | a rec 2/4 alive" },
	{ P "alive/a", "", 5, 6, 100, VIEW_NOTHING, "rev 6 | policy - | a rec 2/4 alive" },
	{ P "nodes/b", "{\"version\":1}", 7, 7, 100, VIEW_RECORD,
	  "rev 7 | policy - | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "policy", POLICY, 8, 8, 100, VIEW_POLICY, "rev 8 | policy ok 1 | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "policy", "nonsense", 8, 9, 100, VIEW_POLICY, "rev 9 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	/* Keys that are not this network's records change nothing. */
	{ "/veil/n2/nodes/c", REC_A, 20, 20, 100, VIEW_NOTHING, "rev 9 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ "/veil/n10/nodes/c", REC_A, 20, 20, 100, VIEW_NOTHING, "rev 9 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ "/veil/n1", REC_A, 20, 20, 100, VIEW_NOTHING, "rev 9 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ "", REC_A, 20, 20, 100, VIEW_NOTHING, "rev 9 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "other", "x", 21, 21, 100, VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "nodes/", REC_A, 21, 21, 100, VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "alive/", "", 21, 21, 100, VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "alive/a b", "", 21, 21, 100, VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "nodes/0123456789012345678901234567890123456789012345678901234567890123", REC_A, 21, 21, 100,
	  VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	{ P "policyx", POLICY, 21, 21, 100, VIEW_NOTHING, "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead" },
	/* A record under a key that is no name is kept, to be refused by its parse. */
	{ P "nodes/a/b", REC_A, 21, 21, 100, VIEW_RECORD,
	  "rev 21 | policy refused | a rec 2/4 alive; b bad 7/7 dead; a/b bad 21/21 dead" },
	/* Deletions. */
	{ P "alive/a", NULL, 0, 22, 200, VIEW_ALIVE,
	  "rev 22 | policy refused | a rec 2/4 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	{ P "alive/a", NULL, 0, 22, 300, VIEW_NOTHING,
	  "rev 22 | policy refused | a rec 2/4 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	{ P "nodes/a", NULL, 0, 23, 300, VIEW_RECORD,
	  "rev 23 | policy refused | a gone 2/23 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	{ P "nodes/a", NULL, 0, 24, 300, VIEW_NOTHING,
	  "rev 24 | policy refused | a gone 2/23 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	{ P "nodes/zz", NULL, 0, 24, 300, VIEW_NOTHING,
	  "rev 24 | policy refused | a gone 2/23 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	{ P "alive/zz", NULL, 0, 24, 300, VIEW_NOTHING,
	  "rev 24 | policy refused | a gone 2/23 dead@200; b bad 7/7 dead; a/b bad 21/21 dead" },
	/* Alive before its record: the node is known, without one. */
	{ P "alive/c", "", 25, 25, 300, VIEW_ALIVE,
	  "rev 25 | policy refused | a gone 2/23 dead@200; b bad 7/7 dead; a/b bad 21/21 dead; c gone 0/0 alive" },
	/* Deleted and made again: a new creation revision. */
	{ P "nodes/a", REC_A, 26, 26, 300, VIEW_RECORD,
	  "rev 26 | policy refused | a rec 26/26 dead@200; b bad 7/7 dead; a/b bad 21/21 dead; c gone 0/0 alive" },
	{ P "policy", NULL, 0, 27, 300, VIEW_POLICY,
	  "rev 27 | policy - | a rec 26/26 dead@200; b bad 7/7 dead; a/b bad 21/21 dead; c gone 0/0 alive" },
	{ P "nodes/b", REC_B, 7, 28, 300, VIEW_RECORD,
	  "rev 28 | policy - | a rec 26/26 dead@200; b rec 7/28 dead; a/b bad 21/21 dead; c gone 0/0 alive" },
};

static void test_apply(void **state)
{
	struct mesh_view v;
	struct mesh_node *a;
	char got[512];
	size_t i;

	(void)state;
	assert_int_equal(view_init(&v, "n1", "me", "wg0"), 0);
	assert_string_equal(v.prefix, "/veil/n1/");
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *t = &steps[i];
		int ret = view_apply(&v, t->key, t->value, t->value ? strlen(t->value) : 0, t->create, t->mod, t->now);

		summary(&v, got, sizeof(got));
		if (ret != t->change || strcmp(got, t->view))
			fail_msg("step %zu (%s): change %d, want %d\n  view %s\n  want %s", i, t->key, ret, t->change,
				 got, t->view);
	}
	/* What a node keeps: the value as stored, and what it parses to. */
	a = view_find(&v, "a");
	assert_non_null(a);
	assert_string_equal(a->raw, REC_A);
	assert_true(a->parsed);
	assert_string_equal(a->latest.node, "a");
	assert_string_equal(view_find(&v, "a/b")->parse_error,
			    "the key's node name is not a name (1-63 of A-Z a-z 0-9 . _ -)");
	assert_string_equal(view_find(&v, "b")->parse_error, "");
	assert_null(view_find(&v, "zz"));
	assert_null(view_find(&v, "A"));
	view_free(&v);
	assert_null(v.nodes);
}

/* A value is len bytes, not a C string; a policy too. */
static void test_apply_lengths(void **state)
{
	static const char value[] = REC_A "trailing bytes that are not the value";
	struct mesh_view v;
	struct mesh_node *a;

	(void)state;
	view_init(&v, "n1", "me", "wg0");
	assert_int_equal(view_apply(&v, P "nodes/a", value, strlen(REC_A), 2, 2, 0), VIEW_RECORD);
	a = view_find(&v, "a");
	assert_true(a->parsed);
	assert_string_equal(a->raw, REC_A);
	assert_int_equal(view_apply(&v, P "policy", POLICY "junk", strlen(POLICY), 3, 3, 0), VIEW_POLICY);
	assert_string_equal(v.policy_raw, POLICY);
	assert_string_equal(v.policy_why, "");
	/* An update to a record that no longer parses. */
	assert_int_equal(view_apply(&v, P "nodes/a", value, strlen(value), 2, 4, 0), VIEW_RECORD);
	assert_false(a->parsed);
	assert_int_equal(strncmp(a->parse_error, "not JSON (", 10), 0);
	view_free(&v);
}

/* Many nodes: the array grows and view_find still finds each. */
static void test_apply_many(void **state)
{
	struct mesh_view v;
	char key[64], name[16];
	int i;

	(void)state;
	view_init(&v, "n1", "me", "wg0");
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), P "alive/n%d", i);
		assert_int_equal(view_apply(&v, key, "", 0, i + 1, i + 1, 0), VIEW_ALIVE);
	}
	assert_int_equal(v.n, 100);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_non_null(view_find(&v, name));
		assert_true(view_find(&v, name)->alive);
	}
	view_free(&v);
}

static int by_text(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The revocations as a line, each list sorted: "keys: NAME... | nodes: NAME...", keys by 6 characters. */
static void revocations(const struct mesh_view *v, char *out, size_t len)
{
	char names[16][44], *sorted[16];
	size_t i, n;

	assert_true(v->policy.n_revoked_keys <= 16 && v->policy.n_revoked_nodes <= 16);
	for (i = 0; i < v->policy.n_revoked_keys; i++) {
		mesh_key_name(v->policy.revoked_keys[i], names[i]);
		names[i][6] = '\0';
		sorted[i] = names[i];
	}
	qsort(sorted, v->policy.n_revoked_keys, sizeof(*sorted), by_text);
	n = (size_t)snprintf(out, len, "keys:");
	for (i = 0; i < v->policy.n_revoked_keys; i++)
		n += (size_t)snprintf(out + n, len - n, " %s", sorted[i]);
	for (i = 0; i < v->policy.n_revoked_nodes; i++)
		sorted[i] = v->policy.revoked_nodes[i];
	qsort(sorted, v->policy.n_revoked_nodes, sizeof(*sorted), by_text);
	n += (size_t)snprintf(out + n, len - n, " | nodes:");
	for (i = 0; i < v->policy.n_revoked_nodes; i++)
		n += (size_t)snprintf(out + n, len - n, " %s", sorted[i]);
}

/* revoked/keys/NAME and revoked/nodes/NODE: written, written again, deleted; and what is none. */
static void test_apply_revoked(void **state)
{
	static const struct {
		const char *key;
		const char *value; /* NULL: deleted */
		int change;
		const char *want;  /* the revocations after it */
	} rows[] = {
		{ P "revoked/keys/" NAME_A, REVOKED, VIEW_POLICY, "keys: xTIBA5 | nodes:" },
		{ P "revoked/keys/" NAME_A, REVOKED, VIEW_POLICY, "keys: xTIBA5 | nodes:" }, /* once */
		{ P "revoked/keys/" NAME_B, "", VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes:" }, /* the value does not count */
		{ P "revoked/nodes/site-a", REVOKED, VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: site-a" },
		{ P "revoked/nodes/b", "x", VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		/* Keys that name nothing: ignored. */
		{ P "revoked/keys/xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", REVOKED, VIEW_NOTHING,
		  "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/keys/TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0", REVOKED, VIEW_NOTHING,
		  "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/keys/short", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/keys/", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/keys/" NAME_A "/x", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/nodes/", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/nodes/a/b", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/nodes/a b", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/other/site-c", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "revoked/site-c", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ "/veil/n2/revoked/nodes/site-c", REVOKED, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ "/veil/n2/revoked/keys/" NAME_A, NULL, VIEW_NOTHING, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		/* The policy record comes and goes: the revocations, keys of their own, stay. */
		{ P "policy", POLICY, VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "policy", "nonsense", VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		{ P "policy", NULL, VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b site-a" },
		/* veilctl mesh admit, and a key's revocation taken back. */
		{ P "revoked/nodes/site-a", NULL, VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b" },
		{ P "revoked/keys/" NAME_A, NULL, VIEW_POLICY, "keys: TrMvSo | nodes: b" },
		{ P "revoked/keys/" NAME_A, REVOKED, VIEW_POLICY, "keys: TrMvSo xTIBA5 | nodes: b" },
	};
	struct mesh_view v;
	uint8_t ka[32], kb[32];
	char got[256];
	size_t i;

	(void)state;
	assert_int_equal(conf_parse_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", ka), 0);
	assert_int_equal(conf_parse_key("TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", kb), 0);
	view_init(&v, "n1", "me", "wg0");
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = view_apply(&v, rows[i].key, rows[i].value, rows[i].value ? strlen(rows[i].value) : 0,
				     (int64_t)i + 1, (int64_t)i + 1, 0);

		revocations(&v, got, sizeof(got));
		if (ret != rows[i].change || strcmp(got, rows[i].want))
			fail_msg("row %zu (%s): change %d, want %d\n  %s\n  want %s", i, rows[i].key, ret,
				 rows[i].change, got, rows[i].want);
	}
	/* They are the policy's: mesh_decide refuses by them. */
	assert_true(mesh_policy_key_revoked(&v.policy, ka));
	assert_true(mesh_policy_key_revoked(&v.policy, kb));
	assert_true(mesh_policy_node_revoked(&v.policy, "b"));
	assert_false(mesh_policy_node_revoked(&v.policy, "site-a"));
	assert_int_equal(v.revision, (int64_t)(sizeof(rows) / sizeof(rows[0])));
	/* No node was made of them. */
	assert_int_equal(v.n, 0);
	view_free(&v);
	assert_int_equal(v.policy.n_revoked_keys, 0);
	assert_int_equal(v.policy.n_revoked_nodes, 0);
}

/* ---- a whole list -------------------------------------------------------------------------------- */

static void kv_set(struct etcd_kv *kv, const char *key, const char *value, int64_t create, int64_t mod)
{
	memset(kv, 0, sizeof(*kv));
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->value_len = strlen(value);
	kv->create_revision = create;
	kv->mod_revision = mod;
	kv->version = 1;
}

/* The range was made here (etcd.c, which would free it, is not part of this test). */
static void range_free(struct etcd_range *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->kvs[i].key);
		free(r->kvs[i].value);
	}
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

static void test_replace(void **state)
{
	struct etcd_range r = { .revision = 30 };
	struct mesh_view v;
	char got[512];

	(void)state;
	view_init(&v, "n1", "me", "wg0");
	view_apply(&v, P "nodes/a", REC_A, strlen(REC_A), 2, 2, 0);
	view_apply(&v, P "nodes/b", REC_B, strlen(REC_B), 3, 3, 0);
	view_apply(&v, P "alive/a", "", 0, 4, 4, 0);
	view_apply(&v, P "alive/b", "", 0, 5, 5, 0);
	view_apply(&v, P "policy", POLICY, strlen(POLICY), 6, 6, 0);
	summary(&v, got, sizeof(got));
	assert_string_equal(got, "rev 6 | policy ok 1 | a rec 2/2 alive; b rec 3/3 alive");

	/* Listed again after an outage: a, its liveness and the policy went meanwhile; b changed; c came. */
	r.kvs = calloc(5, sizeof(*r.kvs));
	assert_non_null(r.kvs);
	kv_set(&r.kvs[r.n++], P "alive/b", "", 5, 5);
	kv_set(&r.kvs[r.n++], P "nodes/b", REC_B, 3, 10);
	kv_set(&r.kvs[r.n++], P "nodes/c", "{}", 11, 11);
	kv_set(&r.kvs[r.n++], P "alive/c", "", 12, 12);
	kv_set(&r.kvs[r.n++], P "unrelated", "x", 13, 13);
	assert_int_equal(view_replace(&v, &r, 500), VIEW_RECORD | VIEW_ALIVE | VIEW_POLICY);
	summary(&v, got, sizeof(got));
	assert_string_equal(got, "rev 30 | policy - | a gone 2/30 dead@500; b rec 3/10 alive; c bad 11/11 alive");
	/* The same list again: nothing new. */
	assert_int_equal(view_replace(&v, &r, 600), VIEW_NOTHING);
	summary(&v, got, sizeof(got));
	assert_string_equal(got, "rev 30 | policy - | a gone 2/30 dead@500; b rec 3/10 alive; c bad 11/11 alive");
	/* An older list never moves the revision back. */
	r.revision = 20;
	assert_int_equal(view_replace(&v, &r, 600), VIEW_NOTHING);
	assert_int_equal(v.revision, 30);
	range_free(&r);

	/* An empty network: every record and every liveness went. */
	r.revision = 40;
	assert_int_equal(view_replace(&v, &r, 700), VIEW_RECORD | VIEW_ALIVE);
	summary(&v, got, sizeof(got));
	assert_string_equal(got, "rev 40 | policy - | a gone 2/30 dead@500; b gone 3/40 dead@700; c gone 11/40 dead@700");
	view_free(&v);
}

/* A list replaces the revocations too: those it lacks were taken back (admit) while nobody watched. */
static void test_replace_revoked(void **state)
{
	struct etcd_range r = { .revision = 30 };
	struct mesh_view v;
	char got[256];

	(void)state;
	view_init(&v, "n1", "me", "wg0");
	view_apply(&v, P "revoked/keys/" NAME_A, REVOKED, strlen(REVOKED), 2, 2, 0);
	view_apply(&v, P "revoked/keys/" NAME_B, REVOKED, strlen(REVOKED), 3, 3, 0);
	view_apply(&v, P "revoked/nodes/a", REVOKED, strlen(REVOKED), 4, 4, 0);
	view_apply(&v, P "revoked/nodes/b", REVOKED, strlen(REVOKED), 5, 5, 0);
	view_apply(&v, P "revoked/nodes/c", REVOKED, strlen(REVOKED), 6, 6, 0);
	revocations(&v, got, sizeof(got));
	assert_string_equal(got, "keys: TrMvSo xTIBA5 | nodes: a b c");

	/* Listed again: A's key and nodes a and c were admitted meanwhile, d revoked. */
	r.kvs = calloc(4, sizeof(*r.kvs));
	assert_non_null(r.kvs);
	kv_set(&r.kvs[r.n++], P "nodes/b", REC_B, 3, 10);
	kv_set(&r.kvs[r.n++], P "revoked/keys/" NAME_B, REVOKED, 3, 3);
	kv_set(&r.kvs[r.n++], P "revoked/nodes/b", REVOKED, 5, 5);
	kv_set(&r.kvs[r.n++], P "revoked/nodes/d", REVOKED, 20, 20);
	assert_true(view_replace(&v, &r, 500) & VIEW_POLICY);
	revocations(&v, got, sizeof(got));
	assert_string_equal(got, "keys: TrMvSo | nodes: b d");
	/* The same list again: the same revocations. */
	view_replace(&v, &r, 600);
	revocations(&v, got, sizeof(got));
	assert_string_equal(got, "keys: TrMvSo | nodes: b d");
	range_free(&r);

	/* A list with none: none left. */
	r.revision = 40;
	assert_true(view_replace(&v, &r, 700) & VIEW_POLICY);
	revocations(&v, got, sizeof(got));
	assert_string_equal(got, "keys: | nodes:");
	view_free(&v);
}

/* ---- the local copy -------------------------------------------------------------------------------- */

static char dir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/veil-view-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The names in dir, space-separated and sorted. */
static void listing(const char *path, char *out, size_t len)
{
	struct dirent **names;
	int n, i;
	size_t used = 0;

	out[0] = '\0';
	n = scandir(path, &names, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
			used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

/* A view as an agent leaves it after a decision: self, accepted and applied, refused, deleted. */
static void full_view(struct mesh_view *v)
{
	struct mesh_local l = { .node = "me" };
	struct mesh_node *a;

	view_init(v, "n1", "me", "wg0");
	view_apply(v, P "nodes/me", REC_ME, strlen(REC_ME), 1, 1, 0);
	view_apply(v, P "nodes/a", REC_A2, strlen(REC_A2), 2, 3, 0);
	view_apply(v, P "nodes/b", "{\"version\":1,\"node\":\"b\"}", 24, 4, 4, 0);
	view_apply(v, P "nodes/c", REC_B, strlen(REC_B), 5, 5, 0);
	view_apply(v, P "nodes/c", NULL, 0, 0, 6, 0);
	view_apply(v, P "alive/a", "", 0, 7, 7, 0);
	view_apply(v, P "alive/c", "", 0, 8, 8, 0);
	view_apply(v, P "alive/c", NULL, 0, 0, 9, 1700000000);
	view_apply(v, P "policy", POLICY, strlen(POLICY), 10, 10, 0);
	a = view_find(v, "a");
	assert_int_equal(mesh_record_copy(&a->current, &a->latest), 0);
	a->applied = true;
	a->current_revision = 3;
	assert_int_equal(mesh_decide(v->nodes, v->n, &v->policy, &l), 0);
	v->routes = calloc(2, sizeof(*v->routes));
	assert_non_null(v->routes);
	assert_int_equal(conf_parse_prefix("10.1.0.0/24", &v->routes[0]), 0);
	assert_int_equal(conf_parse_prefix("fd00:1::/64", &v->routes[1]), 0);
	v->n_routes = 2;
	v->revision = 42;
	v->saved = 1700000001;
	v->connected = true;
}

static void assert_same_node(const struct mesh_node *x, const struct mesh_node *y)
{
	assert_string_equal(x->name, y->name);
	assert_int_equal(x->present, y->present);
	assert_int_equal(x->create_revision, y->create_revision);
	assert_int_equal(x->mod_revision, y->mod_revision);
	assert_int_equal(x->alive, y->alive);
	assert_int_equal(x->stale_since, y->stale_since);
	assert_string_equal(x->why, y->why);
	assert_int_equal(x->applied, y->applied);
	if (x->applied) {
		assert_true(mesh_record_equal(&x->current, &y->current));
		assert_int_equal(x->current_revision, y->current_revision);
	}
	if (!x->present)
		return; /* a deleted record's value is not kept */
	assert_string_equal(x->raw, y->raw);
	assert_int_equal(x->parsed, y->parsed);
	assert_string_equal(x->parse_error, y->parse_error);
	if (x->parsed)
		assert_true(mesh_record_equal(&x->latest, &y->latest));
}

static void test_save_load(void **state)
{
	struct mesh_view v, w;
	char path[128], why[200], names[256];
	struct mesh_node *a;
	struct stat st;
	mode_t old;
	size_t i;

	(void)state;
	full_view(&v);
	assert_int_equal(view_find(&v, "me")->verdict, MESH_SELF);
	assert_int_equal(view_find(&v, "a")->verdict, MESH_ACCEPTED);
	assert_int_equal(view_find(&v, "b")->verdict, MESH_NONE);
	snprintf(path, sizeof(path), "%s/wg0.json", dir);
	old = umask(0); /* mkostemp's 0600 must not depend on the caller's umask */
	assert_int_equal(view_save(&v, path), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	listing(dir, names, sizeof(names));
	assert_string_equal(names, "wg0.json"); /* no temporary file left */
	/* Saved again over the first: still one file, still 0600. */
	v.revision = 43;
	assert_int_equal(view_save(&v, path), 0);
	listing(dir, names, sizeof(names));
	assert_string_equal(names, "wg0.json");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	view_init(&w, "", "", "wg0");
	assert_int_equal(view_load(&w, path, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_string_equal(w.network, "n1");
	assert_string_equal(w.node, "me");
	assert_int_equal(w.revision, 43);
	assert_int_equal(w.saved, 1700000001);
	assert_true(w.connected);
	assert_string_equal(w.policy_raw, POLICY);
	assert_int_equal(w.policy.n_exit_nodes, 1);
	assert_string_equal(w.policy.exit_nodes[0], "gw");
	assert_int_equal(w.n, v.n);
	for (i = 0; i < v.n; i++) {
		assert_same_node(&v.nodes[i], &w.nodes[i]);
		assert_int_equal(w.nodes[i].verdict, v.nodes[i].verdict);
	}
	assert_string_equal(view_find(&w, "b")->why, "public_key is not a base64 key of 32 bytes");
	assert_int_equal(w.n_routes, 2);
	assert_memory_equal(w.routes, v.routes, 2 * sizeof(*w.routes));
	view_free(&w);

	/* Revocations, a rotation under way in what was applied, and the last rotation's result. */
	assert_int_equal(view_apply(&v, P "revoked/keys/" NAME_B, REVOKED, strlen(REVOKED), 11, 11, 0), VIEW_POLICY);
	assert_int_equal(view_apply(&v, P "revoked/nodes/c", REVOKED, strlen(REVOKED), 12, 12, 0), VIEW_POLICY);
	assert_int_equal(view_apply(&v, P "revoked/nodes/x.y_z-1", REVOKED, strlen(REVOKED), 13, 13, 0), VIEW_POLICY);
	a = view_find(&v, "a");
	a->current.has_next = true;
	memset(a->current.next_public_key, 0x21, 32);
	a->current.key_since = 1764754512;
	v.rotations = 3;
	snprintf(v.rotation_result, sizeof(v.rotation_result), "rotated: xTIBA5rboUv -> IiIiIiIiIiI at revision 9");
	assert_int_equal(view_save(&v, path), 0);
	view_init(&w, "", "", "wg0");
	assert_int_equal(view_load(&w, path, why, sizeof(why)), 0);
	revocations(&w, names, sizeof(names));
	assert_string_equal(names, "keys: TrMvSo | nodes: c x.y_z-1");
	assert_true(mesh_policy_key_revoked(&w.policy, v.policy.revoked_keys[0]));
	assert_string_equal(w.policy_raw, POLICY); /* beside the policy, not instead */
	assert_int_equal(w.policy.n_exit_nodes, 1);
	for (i = 0; i < v.n; i++)
		assert_same_node(&v.nodes[i], &w.nodes[i]);
	assert_true(view_find(&w, "a")->current.has_next);
	assert_int_equal(view_find(&w, "a")->current.key_since, 1764754512);
	assert_int_equal(w.rotations, 3);
	assert_string_equal(w.rotation_result, "rotated: xTIBA5rboUv -> IiIiIiIiIiI at revision 9");
	view_free(&w);

	/* A copy read by an agent that knows its network keeps its own names. */
	view_init(&w, "n1", "me", "wg0");
	assert_int_equal(view_load(&w, path, why, sizeof(why)), 0);
	assert_string_equal(w.network, "n1");
	view_free(&w);
	view_free(&v);
}

/* A save that cannot happen leaves nothing behind. */
static void test_save_fails(void **state)
{
	struct mesh_view v;
	char path[128], names[256];

	(void)state;
	full_view(&v);
	snprintf(path, sizeof(path), "%s/missing/wg0.json", dir);
	assert_int_equal(view_save(&v, path), -ENOENT);
	snprintf(path, sizeof(path), "%s/wg0.json", dir);
	assert_int_equal(mkdir(path, 0700), 0); /* rename cannot replace a directory */
	assert_int_equal(view_save(&v, path), -EISDIR);
	listing(dir, names, sizeof(names));
	assert_string_equal(names, "wg0.json");
	view_free(&v);
}

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_load_refused(void **state)
{
	static const struct {
		const char *text;
		int ret;
		const char *why;
	} rows[] = {
		{ "", -EINVAL, "not JSON: '[' or '{' expected near end of file" },
		{ "{\"version\":1,", -EINVAL, "not JSON: string or '}' expected near end of file" },
		{ "[]", -EINVAL, "not a local copy this agent wrote (version 1)" },
		{ "{\"version\":2,\"nodes\":[],\"routes\":[]}", -EINVAL, "not a local copy this agent wrote (version 1)" },
		{ "{\"version\":\"1\",\"nodes\":[],\"routes\":[]}", -EINVAL, "not a local copy this agent wrote (version 1)" },
		{ "{\"version\":1,\"nodes\":{},\"routes\":[]}", -EINVAL, "not a local copy this agent wrote (version 1)" },
		{ "{\"version\":1,\"nodes\":[]}", -EINVAL, "not a local copy this agent wrote (version 1)" },
		{ "{\"version\":1,\"nodes\":[{\"value\":\"x\"}],\"routes\":[]}", -EINVAL, "a node entry without a name" },
		{ "{\"version\":1,\"nodes\":[7],\"routes\":[]}", -EINVAL, "a node entry without a name" },
		/* The least a copy may be; a route that is not one is left out. */
		{ "{\"version\":1,\"nodes\":[],\"routes\":[\"x\",\"10.0.0.0/8\"]}", 0, "" },
		/* Revocations that are none are left out too. */
		{ "{\"version\":1,\"nodes\":[],\"routes\":[\"10.0.0.0/8\"],\"revoked_keys\":[\"x\",7,\"" NAME_A "=\",\"" NAME_B "\"],"
		  "\"revoked_nodes\":[\"a/b\",null,\"\",\"site-a\"]}", 0, "" },
	};
	struct mesh_view v, saved;
	char path[128], why[200], got[128];
	struct stat st;
	char *text;
	size_t i;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/wg0.json", dir);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret;

		write_text(path, rows[i].text, strlen(rows[i].text));
		view_init(&v, "", "", "wg0");
		memset(why, 0x5a, sizeof(why));
		ret = view_load(&v, path, why, sizeof(why));
		if (ret != rows[i].ret || strcmp(why, rows[i].why))
			fail_msg("row %zu: %d \"%s\"; want %d \"%s\"", i, ret, why, rows[i].ret, rows[i].why);
		if (!ret)
			assert_int_equal(v.n_routes, 1);
		revocations(&v, got, sizeof(got));
		if (!ret && strstr(rows[i].text, "revoked_"))
			assert_string_equal(got, "keys: TrMvSo | nodes: site-a");
		else
			assert_string_equal(got, "keys: | nodes:");
		view_free(&v);
	}
	/* None at all, or not a file. */
	assert_int_equal(unlink(path), 0);
	view_init(&v, "", "", "wg0");
	assert_int_equal(view_load(&v, path, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "");
	assert_int_equal(view_load(&v, dir, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "not a regular file of at most 67108864 bytes");
	view_free(&v);

	/* A copy cut short (a disk that filled up under another writer). */
	full_view(&saved);
	assert_int_equal(view_save(&saved, path), 0);
	view_free(&saved);
	assert_int_equal(stat(path, &st), 0);
	text = malloc((size_t)st.st_size);
	assert_non_null(text);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fread(text, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	write_text(path, text, (size_t)st.st_size / 2);
	free(text);
	view_init(&v, "", "", "wg0");
	assert_int_equal(view_load(&v, path, why, sizeof(why)), -EINVAL);
	assert_int_equal(strncmp(why, "not JSON: ", 10), 0);
	view_free(&v);
}

/* ---- where the copy lives ------------------------------------------------------------------------------ */

static void test_path_and_dir(void **state)
{
	char out[256], path[256];
	struct stat st;
	mode_t old;

	(void)state;
	unsetenv("VEIL_MESH_DIR");
	view_path("wg0", out, sizeof(out));
	assert_string_equal(out, VEIL_MESH_DIR "/wg0.json");
	setenv("VEIL_MESH_DIR", "", 1);
	view_path("wg0", out, sizeof(out));
	assert_string_equal(out, VEIL_MESH_DIR "/wg0.json");
	setenv("VEIL_MESH_DIR", "/tmp/x", 1);
	view_path("site-a", out, sizeof(out));
	assert_string_equal(out, "/tmp/x/site-a.json");
	unsetenv("VEIL_MESH_DIR");

	old = umask(0);
	snprintf(path, sizeof(path), "%s/a/b/c/wg0.json", dir);
	assert_int_equal(view_make_dir(path), 0);
	umask(old);
	snprintf(out, sizeof(out), "%s/a", dir);
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(out, sizeof(out), "%s/a/b/c", dir);
	assert_int_equal(stat(out, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(view_make_dir(path), 0); /* again: all there */
	assert_int_equal(view_make_dir("wg0.json"), 0);
	assert_int_equal(view_make_dir("/wg0.json"), 0);
	/* A file where a directory should be. */
	snprintf(out, sizeof(out), "%s/file", dir);
	write_text(out, "x", 1);
	snprintf(path, sizeof(path), "%s/file/d/wg0.json", dir);
	assert_int_equal(view_make_dir(path), -ENOTDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_apply_lengths),
		cmocka_unit_test(test_apply_many),
		cmocka_unit_test(test_apply_revoked),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_replace_revoked),
		cmocka_unit_test_setup_teardown(test_save_load, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_save_fails, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_refused, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_path_and_dir, setup_dir, teardown_dir),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
