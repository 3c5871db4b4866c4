// SPDX-License-Identifier: MIT
/*
 * The agent's view of its network and its local copy (view.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "view.h"

enum { COPY_VERSION = 1, COPY_MAX = 64 * 1024 * 1024 };

int view_init(struct mesh_view *v, const char *network, const char *node, const char *ifname)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->network, sizeof(v->network), "%s", network);
	snprintf(v->node, sizeof(v->node), "%s", node);
	snprintf(v->ifname, sizeof(v->ifname), "%s", ifname);
	snprintf(v->prefix, sizeof(v->prefix), "/veil/%s/", network);
	return 0;
}

void view_free(struct mesh_view *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		mesh_node_free(&v->nodes[i]);
	free(v->nodes);
	free(v->policy_raw);
	mesh_policy_free(&v->policy);
	free(v->routes);
	memset(v, 0, sizeof(*v));
}

void view_path(const char *ifname, char *out, size_t len)
{
	const char *dir = getenv("VEIL_MESH_DIR");

	snprintf(out, len, "%s/%s.json", dir && *dir ? dir : VEIL_MESH_DIR, ifname);
}

int view_make_dir(const char *path)
{
	char dir[4096], *slash;
	size_t i;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	/* Each missing level, 0700: the copies name the network's nodes and keys. */
	for (i = 1; dir[i]; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return -errno;
		dir[i] = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

struct mesh_node *view_find(struct mesh_view *v, const char *name)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (!strcmp(v->nodes[i].name, name))
			return &v->nodes[i];
	return NULL;
}

static struct mesh_node *view_add(struct mesh_view *v, const char *name)
{
	struct mesh_node *n = view_find(v, name);

	if (n)
		return n;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct mesh_node *g = realloc(v->nodes, cap * sizeof(*g));

		if (!g)
			return NULL;
		v->nodes = g;
		v->cap = cap;
	}
	n = &v->nodes[v->n++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	return n;
}

/* A node's record was written: keep the value and what it parses to. */
static int put_record(struct mesh_node *n, const char *value, size_t len, int64_t create_rev,
		      int64_t mod_rev)
{
	char *raw = malloc(len + 1);

	if (!raw)
		return -ENOMEM;
	memcpy(raw, value, len);
	raw[len] = '\0';
	free(n->raw);
	n->raw = raw;
	mesh_record_free(&n->latest);
	n->present = true;
	n->create_revision = create_rev;
	n->mod_revision = mod_rev;
	n->parse_error[0] = '\0';
	n->parsed = mesh_record_parse(&n->latest, n->name, value, len, n->parse_error,
				      sizeof(n->parse_error)) == 0;
	return 0;
}

static int put_policy(struct mesh_view *v, const char *value, size_t len)
{
	struct mesh_policy keep = v->policy;
	char *raw = NULL;

	/* The revocations come from keys of their own: they outlive the policy record. */
	v->policy.revoked_keys = NULL;
	v->policy.n_revoked_keys = 0;
	v->policy.revoked_nodes = NULL;
	v->policy.n_revoked_nodes = 0;
	mesh_policy_free(&v->policy);
	v->policy_why[0] = '\0';
	if (value) {
		raw = malloc(len + 1);
		if (!raw)
			return -ENOMEM;
		memcpy(raw, value, len);
		raw[len] = '\0';
		if (mesh_policy_parse(&v->policy, value, len, v->policy_why, sizeof(v->policy_why)) == -ENOMEM) {
			free(raw);
			return -ENOMEM;
		}
	}
	free(v->policy_raw);
	v->policy_raw = raw;
	v->policy.revoked_keys = keep.revoked_keys;
	v->policy.n_revoked_keys = keep.n_revoked_keys;
	v->policy.revoked_nodes = keep.revoked_nodes;
	v->policy.n_revoked_nodes = keep.n_revoked_nodes;
	return VIEW_POLICY;
}

/* revoked/keys/NAME (a key's base64url) and revoked/nodes/NODE, written or deleted. */
static int put_revocation(struct mesh_view *v, const char *rest, bool revoked)
{
	uint8_t key[32];
	int ret;

	if (!strncmp(rest, "revoked/keys/", 13)) {
		if (mesh_key_from_name(rest + 13, key))
			return VIEW_NOTHING;
		ret = mesh_policy_revoke_key(&v->policy, key, revoked);
	} else if (!strncmp(rest, "revoked/nodes/", 14) && conf_valid_mesh_name(rest + 14)) {
		ret = mesh_policy_revoke_node(&v->policy, rest + 14, revoked);
	} else {
		return VIEW_NOTHING;
	}
	return ret ? ret : VIEW_POLICY;
}

int view_apply(struct mesh_view *v, const char *key, const char *value, size_t len,
	       int64_t create_revision, int64_t mod_revision, int64_t now)
{
	size_t plen = strlen(v->prefix);
	const char *rest = key + plen, *name;
	struct mesh_node *n;
	int ret;

	if (strncmp(key, v->prefix, plen) != 0)
		return VIEW_NOTHING;
	if (mod_revision > v->revision)
		v->revision = mod_revision;
	if (!strcmp(rest, "policy"))
		return put_policy(v, value, len);
	if (!strncmp(rest, "revoked/", 8))
		return put_revocation(v, rest, value != NULL);
	if (strncmp(rest, "nodes/", 6) != 0 && strncmp(rest, "alive/", 6) != 0)
		return VIEW_NOTHING;
	name = rest + 6;
	/* A record under a name that is no name is kept, to be refused (once) by its parse. */
	if (!*name || strlen(name) > CONF_MESH_NAME_MAX || (rest[0] == 'a' && !conf_valid_mesh_name(name)))
		return VIEW_NOTHING;
	n = value ? view_add(v, name) : view_find(v, name);
	if (!n)
		return value ? -ENOMEM : VIEW_NOTHING;
	if (rest[0] == 'a') {
		bool was = n->alive;

		n->alive = value != NULL;
		if (was && !n->alive)
			n->stale_since = now;
		return was != n->alive ? VIEW_ALIVE : VIEW_NOTHING;
	}
	/* Older than what is known (a list that raced a watch): nothing new. */
	if (mod_revision && mod_revision < n->mod_revision)
		return VIEW_NOTHING;
	if (!value) {
		if (!n->present)
			return VIEW_NOTHING;
		n->present = false;
		n->mod_revision = mod_revision;
		return VIEW_RECORD;
	}
	if (n->present && n->mod_revision == mod_revision)
		return VIEW_NOTHING; /* seen already (a list and a watch overlap) */
	ret = put_record(n, value, len, create_revision, mod_revision);
	return ret ? ret : VIEW_RECORD;
}

static bool in_range(const struct etcd_range *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->kvs[i].key, key))
			return true;
	return false;
}

int view_replace(struct mesh_view *v, const struct etcd_range *r, int64_t now)
{
	char key[VIEW_KEY_MAX + 80];
	int mask = 0, ret;
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct etcd_kv *kv = &r->kvs[i];

		ret = view_apply(v, kv->key, kv->value, kv->value_len, kv->create_revision,
				 kv->mod_revision, now);
		if (ret < 0)
			return ret;
		mask |= ret;
	}
	/* What the list lacks was deleted while nobody watched: an explicit removal. */
	for (i = 0; i < v->n; i++) {
		struct mesh_node *n = &v->nodes[i];

		snprintf(key, sizeof(key), "%snodes/%s", v->prefix, n->name);
		if (n->present && !in_range(r, key)) {
			n->present = false;
			n->mod_revision = r->revision;
			mask |= VIEW_RECORD;
		}
		snprintf(key, sizeof(key), "%salive/%s", v->prefix, n->name);
		if (n->alive && !in_range(r, key)) {
			n->alive = false;
			n->stale_since = now;
			mask |= VIEW_ALIVE;
		}
	}
	snprintf(key, sizeof(key), "%spolicy", v->prefix);
	if (v->policy_raw && !in_range(r, key))
		mask |= put_policy(v, NULL, 0);
	/* Revocations taken back (veilctl mesh admit) while nobody watched. */
	for (i = v->policy.n_revoked_keys; i-- > 0;) {
		char name[44];

		mesh_key_name(v->policy.revoked_keys[i], name);
		snprintf(key, sizeof(key), "%srevoked/keys/%s", v->prefix, name);
		if (!in_range(r, key))
			mask |= put_revocation(v, key + strlen(v->prefix), false);
	}
	for (i = v->policy.n_revoked_nodes; i-- > 0;) {
		snprintf(key, sizeof(key), "%srevoked/nodes/%s", v->prefix, v->policy.revoked_nodes[i]);
		if (!in_range(r, key))
			mask |= put_revocation(v, key + strlen(v->prefix), false);
	}
	if (r->revision > v->revision)
		v->revision = r->revision;
	return mask;
}

/* ---- the local copy ------------------------------------------------------------------------------ */

static json_t *node_json(const struct mesh_node *n)
{
	json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:b, s:I, s:s, s:s}", "name", n->name, "present",
			      n->present, "create_revision", (json_int_t)n->create_revision,
			      "mod_revision", (json_int_t)n->mod_revision, "alive", n->alive,
			      "stale_since", (json_int_t)n->stale_since, "verdict", mesh_node_state(n),
			      "why", n->why);
	char *applied;

	if (!o)
		return NULL;
	json_object_set_new(o, "value", n->raw ? json_string(n->raw) : json_null());
	if (n->applied && (applied = mesh_record_format(&n->current))) {
		json_object_set_new(o, "applied", json_string(applied));
		json_object_set_new(o, "applied_revision", json_integer(n->current_revision));
		free(applied);
	}
	return o;
}

static json_t *view_json(const struct mesh_view *v)
{
	json_t *o, *nodes = json_array(), *routes = json_array();
	size_t i;

	o = json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:b, s:o, s:o}", "version", COPY_VERSION,
		      "network", v->network, "node", v->node, "interface", v->ifname, "revision",
		      (json_int_t)v->revision, "saved", (json_int_t)v->saved, "connected", v->connected,
		      "nodes", nodes, "routes", routes);
	if (!o)
		return NULL;
	json_object_set_new(o, "policy", v->policy_raw ? json_string(v->policy_raw) : json_null());
	json_object_set_new(o, "rotations", json_integer(v->rotations));
	json_object_set_new(o, "rotation_result", json_string(v->rotation_result));
	{
		json_t *rkeys = json_array(), *names = json_array();

		for (i = 0; i < v->policy.n_revoked_keys; i++) {
			char name[44];

			mesh_key_name(v->policy.revoked_keys[i], name);
			json_array_append_new(rkeys, json_string(name));
		}
		for (i = 0; i < v->policy.n_revoked_nodes; i++)
			json_array_append_new(names, json_string(v->policy.revoked_nodes[i]));
		json_object_set_new(o, "revoked_keys", rkeys);
		json_object_set_new(o, "revoked_nodes", names);
	}
	for (i = 0; i < v->n; i++)
		if (json_array_append_new(nodes, node_json(&v->nodes[i])))
			goto fail;
	for (i = 0; i < v->n_routes; i++) {
		char a[INET6_ADDRSTRLEN] = "?", s[64];

		inet_ntop(v->routes[i].family, v->routes[i].addr, a, sizeof(a));
		snprintf(s, sizeof(s), "%s/%u", a, v->routes[i].cidr);
		if (json_array_append_new(routes, json_string(s)))
			goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* The whole file or nothing: a fresh 0600 file renamed into place (conf_replace_file). */
int view_save(const struct mesh_view *v, const char *path)
{
	json_t *o = view_json(v);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int ret;

	json_decref(o);
	if (!text)
		return -ENOMEM;
	ret = conf_replace_file(path, text, strlen(text), NULL);
	free(text);
	return ret;
}

static int load_node(struct mesh_view *v, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *value = json_string_value(json_object_get(o, "value"));
	const char *applied = json_string_value(json_object_get(o, "applied"));
	struct mesh_node *n;
	char why[MESH_WHY_LEN];

	if (!name || !(n = view_add(v, name)))
		return name ? -ENOMEM : -EINVAL;
	n->create_revision = json_integer_value(json_object_get(o, "create_revision"));
	n->mod_revision = json_integer_value(json_object_get(o, "mod_revision"));
	n->alive = json_is_true(json_object_get(o, "alive"));
	n->stale_since = json_integer_value(json_object_get(o, "stale_since"));
	snprintf(n->why, sizeof(n->why), "%s", json_string_value(json_object_get(o, "why")) ?
		 json_string_value(json_object_get(o, "why")) : "");
	if (json_is_true(json_object_get(o, "present")) && value &&
	    put_record(n, value, strlen(value), n->create_revision, n->mod_revision))
		return -ENOMEM;
	if (applied && !mesh_record_parse(&n->current, name, applied, strlen(applied), why, sizeof(why))) {
		n->applied = true;
		n->current_revision = json_integer_value(json_object_get(o, "applied_revision"));
	}
	/* The verdict as last decided, for veilctl mesh list; the agent decides again. */
	value = json_string_value(json_object_get(o, "verdict"));
	n->verdict = !value ? MESH_NONE : !strcmp(value, "self") ? MESH_SELF :
		     !strcmp(value, "accepted") ? MESH_ACCEPTED : !strcmp(value, "kept") ? MESH_KEPT : MESH_NONE;
	return 0;
}

static int load_json(struct mesh_view *v, json_t *o, char *why, size_t whylen)
{
	json_t *nodes = json_object_get(o, "nodes"), *routes = json_object_get(o, "routes");
	const char *policy = json_string_value(json_object_get(o, "policy"));
	size_t i;
	int ret;

	if (json_integer_value(json_object_get(o, "version")) != COPY_VERSION ||
	    !json_is_array(nodes) || !json_is_array(routes)) {
		snprintf(why, whylen, "not a local copy this agent wrote (version %d)", COPY_VERSION);
		return -EINVAL;
	}
	if (json_is_string(json_object_get(o, "network")) && !v->network[0])
		snprintf(v->network, sizeof(v->network), "%s", json_string_value(json_object_get(o, "network")));
	if (json_is_string(json_object_get(o, "node")) && !v->node[0])
		snprintf(v->node, sizeof(v->node), "%s", json_string_value(json_object_get(o, "node")));
	v->revision = json_integer_value(json_object_get(o, "revision"));
	v->rotations = (unsigned int)json_integer_value(json_object_get(o, "rotations"));
	snprintf(v->rotation_result, sizeof(v->rotation_result), "%s",
		 json_string_value(json_object_get(o, "rotation_result")) ?
			 json_string_value(json_object_get(o, "rotation_result")) : "");
	v->saved = json_integer_value(json_object_get(o, "saved"));
	v->connected = json_is_true(json_object_get(o, "connected"));
	if (policy && put_policy(v, policy, strlen(policy)) < 0)
		return -ENOMEM;
	for (i = 0; i < json_array_size(json_object_get(o, "revoked_keys")); i++) {
		const char *name = json_string_value(json_array_get(json_object_get(o, "revoked_keys"), i));
		uint8_t key[32];

		if (name && !mesh_key_from_name(name, key) && mesh_policy_revoke_key(&v->policy, key, true))
			return -ENOMEM;
	}
	for (i = 0; i < json_array_size(json_object_get(o, "revoked_nodes")); i++) {
		const char *name = json_string_value(json_array_get(json_object_get(o, "revoked_nodes"), i));

		if (name && conf_valid_mesh_name(name) && mesh_policy_revoke_node(&v->policy, name, true))
			return -ENOMEM;
	}
	for (i = 0; i < json_array_size(nodes); i++) {
		ret = load_node(v, json_array_get(nodes, i));
		if (ret) {
			snprintf(why, whylen, "a node entry without a name");
			return ret;
		}
	}
	v->routes = calloc(json_array_size(routes) + 1, sizeof(*v->routes));
	if (!v->routes)
		return -ENOMEM;
	for (i = 0; i < json_array_size(routes); i++) {
		const char *s = json_string_value(json_array_get(routes, i));

		if (s && !conf_parse_prefix(s, &v->routes[v->n_routes]))
			v->n_routes++;
	}
	return 0;
}

int view_load(struct mesh_view *v, const char *path, char *why, size_t whylen)
{
	json_error_t jerr;
	struct stat st;
	json_t *o;
	int ret;

	why[0] = '\0';
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size > COPY_MAX) {
		snprintf(why, whylen, "not a regular file of at most %d bytes", COPY_MAX);
		return -EINVAL;
	}
	o = json_load_file(path, 0, &jerr);
	if (!o) {
		snprintf(why, whylen, "not JSON: %s", jerr.text);
		return -EINVAL;
	}
	ret = load_json(v, o, why, whylen);
	json_decref(o);
	return ret;
}
