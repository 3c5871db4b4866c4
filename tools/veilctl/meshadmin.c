// SPDX-License-Identifier: MIT
/*
 * The mesh administrator's commands (meshctl.h), run with the credentials
 * of a file holding a [Mesh] section (/etc/veil/mesh-admin.conf unless
 * --admin FILE says otherwise), against etcd's JSON gateway through
 * libcurl's easy interface:
 *
 *   veilctl mesh remove NETWORK NODE        the node's record and liveness go
 *   veilctl mesh revoke NETWORK NODE|KEY    the key (and the node's name) is
 *                                           revoked, its record and etcd user go
 *   veilctl mesh admit NETWORK NODE         a revoked node may register again
 *   veilctl mesh history NETWORK NODE       the node's keys, from the registry's
 *                                           revisions
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "etcd.h"
#include "keys.h"
#include "meshctl.h"
#include "record.h"
#include "up.h"
#include "view.h"

enum {
	ADMIN_TIMEOUT_MS = 10000,
	HISTORY_WAIT_MS = 2000, /* how long a watch from revision 1 is read for past events */
	KEY_MAX = VIEW_KEY_MAX + 80,
};

struct reply {
	char *data;
	size_t len;
};

struct admin {
	struct conf c;
	char *token; /* locked memory */
	const char *network;
};

static size_t on_data(char *p, size_t size, size_t n, void *data)
{
	struct reply *r = data;
	size_t len = size * n;
	char *g;

	if (r->len + len > (size_t)16 * 1024 * 1024 || !(g = realloc(r->data, r->len + len + 1)))
		return 0;
	r->data = g;
	memcpy(r->data + r->len, p, len);
	r->len += len;
	r->data[r->len] = '\0';
	return len;
}

static struct curl_slist *headers(const char *token)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

	if (h && token) {
		size_t n = strlen(token) + 32;
		char *auth = sodium_malloc(n);

		if (auth) {
			snprintf(auth, n, "Authorization: %s", token);
			h = curl_slist_append(h, auth);
			sodium_free(auth);
		}
	}
	return h;
}

static void tls_options(CURL *e, const struct conf_mesh *m)
{
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(e, CURLOPT_CAINFO, m->ca);
	curl_easy_setopt(e, CURLOPT_SSLCERT, m->cert);
	curl_easy_setopt(e, CURLOPT_SSLKEY, m->key);
}

/* One POST to the first member that answers; 0 with the status and body, or -errno. */
static int post(const struct conf_mesh *m, const char *token, const char *path, const char *body,
		long *status, struct reply *out)
{
	struct curl_slist *h = headers(token);
	CURLcode rc = CURLE_COULDNT_CONNECT;
	char url[1024];
	size_t i;

	for (i = 0; i < m->n_registry && rc != CURLE_OK; i++) {
		CURL *e = curl_easy_init();

		if (!e)
			break;
		etcd_url(m->registry[i], path, url, sizeof(url));
		free(out->data);
		memset(out, 0, sizeof(*out));
		tls_options(e, m);
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ADMIN_TIMEOUT_MS);
		rc = curl_easy_perform(e);
		if (rc == CURLE_OK)
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
		else
			fprintf(stderr, "veilctl: registry %s: %s\n", m->registry[i], curl_easy_strerror(rc));
		curl_easy_cleanup(e);
	}
	curl_slist_free_all(h);
	return rc == CURLE_OK ? 0 : -EHOSTUNREACH;
}

/* A call that must succeed (body is freed); says etcd's reason when it does not. */
static int call(struct admin *a, const char *path, char *body, struct reply *out)
{
	struct etcd_error e;
	long status = 0;
	int ret = body ? post(&a->c.mesh, a->token, path, body, &status, out) : -ENOMEM;

	free(body);
	if (ret)
		return ret;
	if (etcd_reply_error(status, out->data ? out->data : "", out->len, &e)) {
		fprintf(stderr, "veilctl: registry: %s: %s\n", path, e.message);
		return e.kind == ETCD_ERR_PERMISSION ? -EPERM : -EACCES;
	}
	return 0;
}

static int login(struct admin *a)
{
	struct conf_error err = { "" };
	struct reply r = { 0 };
	struct etcd_error e;
	char *password, *body;
	long status = 0;
	int ret;

	ret = keys_mesh_password(&a->c, &password, &err);
	if (ret) {
		fprintf(stderr, "veilctl: %s\n", err.msg);
		return ret;
	}
	body = etcd_body_auth(a->c.mesh.user, password);
	sodium_free(password);
	ret = body ? post(&a->c.mesh, NULL, "/v3/auth/authenticate", body, &status, &r) : -ENOMEM;
	etcd_free_secret(body);
	if (!ret && etcd_reply_error(status, r.data ? r.data : "", r.len, &e)) {
		fprintf(stderr, "veilctl: registry: authenticate as %s: %s\n", a->c.mesh.user, e.message);
		ret = -EACCES;
	}
	if (!ret && etcd_parse_auth(r.data, r.len, &a->token))
		ret = -EPROTO;
	free(r.data);
	return ret;
}

static void admin_close(struct admin *a)
{
	if (a->token)
		sodium_free(a->token);
	conf_free(&a->c);
	curl_global_cleanup();
}

/* The options every administrator command takes: [--admin FILE] NETWORK ARG. 0 or an exit code. */
static int admin_open(struct admin *a, int argc, char **argv, const char *usage, const char **arg)
{
	const char *file = VEIL_CONF_DIR "/mesh-admin.conf";
	struct conf_error err = { "" };
	int i = 1;

	memset(a, 0, sizeof(*a));
	if (argc >= 3 && !strcmp(argv[1], "--admin")) {
		file = argv[2];
		i = 3;
	}
	if (argc - i != 2 || !conf_valid_mesh_name(argv[i])) {
		fprintf(stderr, "Usage: veilctl mesh %s\n", usage);
		return 1;
	}
	a->network = argv[i];
	*arg = argv[i + 1];
	if (conf_load(&a->c, file, &err)) {
		fprintf(stderr, "veilctl: %s (the administrator's registry credentials)\n", err.msg);
		return 1;
	}
	if (!a->c.mesh.line) {
		fprintf(stderr, "veilctl: %s has no [Mesh] section with the registry's credentials\n", file);
		conf_free(&a->c);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (login(a)) {
		admin_close(a);
		return 1;
	}
	return 0;
}

static void key_path(const struct admin *a, const char *what, const char *name, char *out)
{
	snprintf(out, KEY_MAX, "/veil/%s/%s%s", a->network, what, name);
}

/* A node's record as the registry holds it: 0, -ENOENT, or a call's error. */
static int get_record(struct admin *a, const char *node, struct mesh_record *rec)
{
	struct etcd_range range = { 0 };
	struct reply r = { 0 };
	char key[KEY_MAX], why[MESH_WHY_LEN];
	int ret;

	key_path(a, "nodes/", node, key);
	ret = call(a, "/v3/kv/range", etcd_body_range_key(key), &r);
	if (!ret && (etcd_parse_range(r.data, r.len, &range) || range.n != 1))
		ret = -ENOENT;
	if (!ret && mesh_record_parse(rec, node, range.kvs[0].value, range.kvs[0].value_len, why, sizeof(why))) {
		fprintf(stderr, "veilctl: node %s's record is not one: %s\n", node, why);
		ret = -EINVAL;
	}
	etcd_range_free(&range);
	free(r.data);
	return ret;
}

static int put(struct admin *a, const char *key, const char *value, int64_t *revision)
{
	struct reply r = { 0 };
	int ret = call(a, "/v3/kv/put", etcd_body_put(key, value, 0), &r);

	if (!ret && revision)
		etcd_parse_revision(r.data, r.len, revision);
	free(r.data);
	return ret;
}

static int del(struct admin *a, const char *key, int64_t *revision)
{
	struct reply r = { 0 };
	int ret = call(a, "/v3/kv/deleterange", etcd_body_delete(key), &r);

	if (!ret && revision)
		etcd_parse_revision(r.data, r.len, revision);
	free(r.data);
	return ret;
}

/* ---- remove --------------------------------------------------------------------------------- */

int meshctl_remove(int argc, char **argv)
{
	struct mesh_record rec = { 0 };
	struct admin a;
	const char *node;
	char key[KEY_MAX], fp[12] = "-";
	int64_t rev = 0;
	int ret;

	ret = admin_open(&a, argc, argv, "remove [--admin FILE] NETWORK NODE", &node);
	if (ret)
		return ret;
	ret = conf_valid_mesh_name(node) ? get_record(&a, node, &rec) : -ENOENT;
	if (ret == -ENOENT)
		fprintf(stderr, "veilctl: network %s has no node %s in the registry\n", a.network, node);
	if (!ret)
		mesh_fingerprint(rec.public_key, fp);
	key_path(&a, "nodes/", node, key);
	if (!ret)
		ret = del(&a, key, &rev);
	if (!ret) {
		printf("veilctl: node %s (key %s) removed from network %s at revision %" PRId64 "\n", node, fp,
		       a.network, rev);
		key_path(&a, "alive/", node, key);
		del(&a, key, NULL);
	}
	mesh_record_free(&rec);
	admin_close(&a);
	return ret ? 1 : 0;
}

/* ---- revoke and admit -------------------------------------------------------------------------- */

/* revoked/keys/NAME: {"version":1,"public_key":"...","node":"...","time":T}. */
static int revoke_key(struct admin *a, const uint8_t pub[static 32], const char *node, int64_t *rev)
{
	char name[44], b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)], key[KEY_MAX];
	char *value;
	json_t *o;
	int ret;

	mesh_key_name(pub, name);
	sodium_bin2base64(b64, sizeof(b64), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	o = json_pack("{s:i, s:s, s:s?, s:I}", "version", 1, "public_key", b64, "node", node, "time",
		      (json_int_t)time(NULL));
	value = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	key_path(a, "revoked/keys/", name, key);
	ret = value ? put(a, key, value, rev) : -ENOMEM;
	free(value);
	return ret;
}

/* An etcd user deleted: 0, or -ENOENT when there was none. */
static int delete_user(struct admin *a, const char *user)
{
	struct reply r = { 0 };
	char *body = etcd_body_user_delete(user);
	struct etcd_error e;
	long status = 0;
	int ret = body ? post(&a->c.mesh, a->token, "/v3/auth/user/delete", body, &status, &r) : -ENOMEM;

	free(body);
	if (!ret && etcd_reply_error(status, r.data ? r.data : "", r.len, &e)) {
		ret = strstr(e.message, "not found") ? -ENOENT : -EACCES;
		if (ret != -ENOENT)
			fprintf(stderr, "veilctl: registry: delete user %s: %s\n", user, e.message);
	}
	free(r.data);
	return ret;
}

/*
 * revoke [--admin FILE] [--user USER] NETWORK NODE|PUBLIC_KEY. A node: its
 * keys (the current, and the next while it rotates) and its name are
 * revoked, its record and liveness key deleted, and its etcd user (USER,
 * NETWORK.NODE by default) deleted. A key alone: only that key.
 */
int meshctl_revoke(int argc, char **argv)
{
	const char *user = NULL, *what;
	struct mesh_record rec = { 0 };
	uint8_t pub[32];
	char key[KEY_MAX], fp[12], defuser[2 * CONF_MESH_NAME_MAX + 2], value[256];
	struct admin a;
	int64_t rev = 0;
	int ret, i;

	/* --user USER may come first; admin_open takes the rest. */
	for (i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--user")) {
			user = argv[i + 1];
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof(*argv));
			argc -= 2;
			break;
		}
	}
	ret = admin_open(&a, argc, argv, "revoke [--admin FILE] [--user USER] NETWORK NODE|PUBLIC_KEY", &what);
	if (ret)
		return ret;
	if (!conf_parse_key(what, pub)) {
		ret = revoke_key(&a, pub, NULL, &rev);
		mesh_fingerprint(pub, fp);
		if (!ret)
			printf("veilctl: key %s revoked in network %s at revision %" PRId64 "\n", fp, a.network, rev);
		admin_close(&a);
		return ret ? 1 : 0;
	}
	if (!conf_valid_mesh_name(what)) {
		fprintf(stderr, "veilctl: \"%.64s\" is neither a node name nor a public key\n", what);
		admin_close(&a);
		return 1;
	}
	ret = get_record(&a, what, &rec);
	if (ret == -ENOENT)
		fprintf(stderr, "veilctl: network %s has no node %s in the registry (revoke its key instead)\n",
			a.network, what);
	/* The keys first: from their revision on, every agent refuses them, whatever else happens. */
	if (!ret)
		ret = revoke_key(&a, rec.public_key, what, &rev);
	if (!ret && rec.has_next)
		ret = revoke_key(&a, rec.next_public_key, what, NULL);
	key_path(&a, "revoked/nodes/", what, key);
	snprintf(value, sizeof(value), "{\"version\":1,\"node\":\"%s\",\"time\":%lld}", what,
		 (long long)time(NULL));
	if (!ret)
		ret = put(&a, key, value, NULL);
	if (!ret) {
		mesh_fingerprint(rec.public_key, fp);
		printf("veilctl: node %s (key %s) revoked in network %s at revision %" PRId64 "\n", what, fp,
		       a.network, rev);
		key_path(&a, "nodes/", what, key);
		del(&a, key, NULL);
		key_path(&a, "alive/", what, key);
		del(&a, key, NULL);
		snprintf(defuser, sizeof(defuser), "%s.%s", a.network, what);
		/* The revocation stands; a user left in place is said, and the exit status says it too. */
		switch (delete_user(&a, user ? user : defuser)) {
		case 0:
			printf("veilctl: etcd user %s deleted: the node can no longer write to the registry\n",
			       user ? user : defuser);
			break;
		case -ENOENT:
			fprintf(stderr, "veilctl: no etcd user %s: delete the node's user yourself (--user USER "
				"names it)\n", user ? user : defuser);
			ret = -ENOENT;
			break;
		default:
			fprintf(stderr, "veilctl: the node is revoked, but its etcd user %s is still there: "
				"delete it as etcd's root\n", user ? user : defuser);
			ret = -EACCES;
			break;
		}
	}
	mesh_record_free(&rec);
	admin_close(&a);
	return ret ? 1 : 0;
}

int meshctl_admit(int argc, char **argv)
{
	char key[KEY_MAX];
	const char *node;
	struct admin a;
	int64_t rev = 0;
	int ret;

	ret = admin_open(&a, argc, argv, "admit [--admin FILE] NETWORK NODE", &node);
	if (ret)
		return ret;
	if (!conf_valid_mesh_name(node)) {
		fprintf(stderr, "veilctl: \"%.64s\" is not a node name\n", node);
		admin_close(&a);
		return 1;
	}
	key_path(&a, "revoked/nodes/", node, key);
	ret = del(&a, key, &rev);
	if (!ret)
		printf("veilctl: node %s may register again in network %s (revision %" PRId64 "); its revoked "
		       "keys stay revoked, and it needs an etcd user\n", node, a.network, rev);
	admin_close(&a);
	return ret ? 1 : 0;
}

/* ---- history ------------------------------------------------------------------------------------ */

enum { HISTORY_KEYS_MAX = 256 };

struct history {
	const char *node;
	struct etcd_stream stream;
	int64_t compacted;
	unsigned int events;
	uint8_t keys[HISTORY_KEYS_MAX][32]; /* every key the record named, current or next */
	size_t n_keys;
};

static void saw_key(struct history *h, const uint8_t key[static 32])
{
	size_t i;

	for (i = 0; i < h->n_keys; i++)
		if (!sodium_memcmp(h->keys[i], key, 32))
			return;
	if (h->n_keys < HISTORY_KEYS_MAX)
		memcpy(h->keys[h->n_keys++], key, 32);
}

static bool had_key(const struct history *h, const uint8_t key[static 32])
{
	size_t i;

	for (i = 0; i < h->n_keys; i++)
		if (!sodium_memcmp(h->keys[i], key, 32))
			return true;
	return false;
}

static void when(int64_t t, char *out, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!t) {
		snprintf(out, len, "-");
		return;
	}
	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One past event of the node's record: what it says of the node's keys. */
static void say_event(struct history *h, const struct etcd_event *e)
{
	struct mesh_record rec;
	char why[MESH_WHY_LEN], fp[12], next[12], since[32];

	if (e->type == ETCD_DELETE) {
		printf("  revision %-8" PRId64 " record deleted (removed or revoked)\n", e->kv.mod_revision);
		return;
	}
	if (mesh_record_parse(&rec, h->node, e->kv.value, e->kv.value_len, why, sizeof(why))) {
		printf("  revision %-8" PRId64 " a record that does not parse: %s\n", e->kv.mod_revision, why);
		return;
	}
	mesh_fingerprint(rec.public_key, fp);
	when(rec.key_since, since, sizeof(since));
	saw_key(h, rec.public_key);
	if (rec.has_next) {
		saw_key(h, rec.next_public_key);
		mesh_fingerprint(rec.next_public_key, next);
		printf("  revision %-8" PRId64 " key %s (since %s), next key %s announced\n", e->kv.mod_revision,
		       fp, since, next);
	} else {
		printf("  revision %-8" PRId64 " key %s, active since %s\n", e->kv.mod_revision, fp, since);
	}
	mesh_record_free(&rec);
}

static int on_history_msg(const char *json, size_t len, void *data)
{
	struct history *h = data;
	struct etcd_watch_msg m;
	size_t i;

	if (etcd_parse_watch(json, len, &m))
		return 0;
	if (m.compact_revision)
		h->compacted = m.compact_revision;
	for (i = 0; i < m.n; i++, h->events++)
		say_event(h, &m.events[i]);
	etcd_watch_msg_free(&m);
	return 0;
}

static size_t on_history_data(char *p, size_t size, size_t n, void *data)
{
	struct history *h = data;

	return etcd_stream_feed(&h->stream, p, size * n, on_history_msg, h) ? 0 : size * n;
}

/* The record's past: a watch from revision 1, read for a moment (etcd replays what it kept). */
static int replay(struct admin *a, const char *key, struct history *h)
{
	struct curl_slist *hd = headers(a->token);
	char url[1024], *body = etcd_body_watch_key(key, 1);
	CURLcode rc = CURLE_COULDNT_CONNECT;
	size_t i;

	for (i = 0; body && i < a->c.mesh.n_registry && rc != CURLE_OPERATION_TIMEDOUT; i++) {
		CURL *e = curl_easy_init();

		if (!e)
			break;
		etcd_url(a->c.mesh.registry[i], "/v3/watch", url, sizeof(url));
		tls_options(e, &a->c.mesh);
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_history_data);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HISTORY_WAIT_MS);
		rc = curl_easy_perform(e);
		curl_easy_cleanup(e);
	}
	free(body);
	curl_slist_free_all(hd);
	etcd_stream_reset(&h->stream);
	/* The watch never ends by itself: reading it until the time is up is the success. */
	return rc == CURLE_OPERATION_TIMEDOUT ? 0 : -EHOSTUNREACH;
}

/* The keys revoked for this node (by its name, or one of its keys alone), and whether its name is. */
static void say_revocations(struct admin *a, const char *node, const struct history *h)
{
	struct etcd_range range = { 0 };
	struct reply r = { 0 };
	char prefix[KEY_MAX];
	size_t i;

	key_path(a, "revoked/", "", prefix);
	if (call(a, "/v3/kv/range", etcd_body_range_prefix(prefix, 0), &r) ||
	    etcd_parse_range(r.data, r.len, &range)) {
		free(r.data);
		return;
	}
	for (i = 0; i < range.n; i++) {
		json_t *o = json_loadb(range.kvs[i].value, range.kvs[i].value_len, 0, NULL);
		const char *who = json_string_value(json_object_get(o, "node"));
		const char *k = json_string_value(json_object_get(o, "public_key"));
		uint8_t pub[32];
		char fp[12], at[32];

		when(json_integer_value(json_object_get(o, "time")), at, sizeof(at));
		const char *rest = range.kvs[i].key + strlen(prefix);

		if (!strncmp(rest, "keys/", 5) && k && !conf_parse_key(k, pub) &&
		    ((who && !strcmp(who, node)) || had_key(h, pub))) {
			mesh_fingerprint(pub, fp);
			printf("  revision %-8" PRId64 " key %s revoked (%s)\n", range.kvs[i].mod_revision, fp, at);
		} else if (!strncmp(rest, "nodes/", 6) && !strcmp(rest + 6, node)) {
			printf("  revision %-8" PRId64 " node %s revoked (%s): it may not register until "
			       "admitted\n", range.kvs[i].mod_revision, node, at);
		}
		json_decref(o);
	}
	etcd_range_free(&range);
	free(r.data);
}

int meshctl_history(int argc, char **argv)
{
	struct history h = { 0 };
	char key[KEY_MAX];
	struct admin a;
	int ret;

	ret = admin_open(&a, argc, argv, "history [--admin FILE] NETWORK NODE", &h.node);
	if (ret)
		return ret;
	if (!conf_valid_mesh_name(h.node)) {
		fprintf(stderr, "veilctl: \"%.64s\" is not a node name\n", h.node);
		admin_close(&a);
		return 1;
	}
	key_path(&a, "nodes/", h.node, key);
	printf("node %s of network %s: its record's revisions\n", h.node, a.network);
	ret = replay(&a, key, &h);
	if (h.compacted)
		printf("  (revisions before %" PRId64 " were compacted away: older history is gone)\n", h.compacted);
	if (!ret && !h.events && !h.compacted)
		printf("  (no record in the registry's history)\n");
	say_revocations(&a, h.node, &h);
	if (ret)
		fprintf(stderr, "veilctl: no registry member answered the history's watch\n");
	admin_close(&a);
	return ret ? 1 : 0;
}
