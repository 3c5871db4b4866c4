// SPDX-License-Identifier: MIT
/*
 * etcd's v3 JSON gateway messages (tools/mesh/etcd.c), against what etcd
 * 3.4.23 answered when measured (/work/notes/etcd-gateway.md): each request
 * body decoded again and checked field by field, every error reply sorted
 * into what the agent does about it, the range, watch and lease replies
 * read, and a watch stream split into its messages whole, byte by byte and
 * cut at every offset, as test_uapi.c runs its transcripts.
 */
#include "etcd.c"

#include <stdlib.h>

#include "test_util.h"

/* A response header as the gateway writes it: 64-bit numbers as strings. */
#define H(rev) "{\"cluster_id\":\"14841639068965178418\",\"member_id\":\"10276657743932975437\"," \
	       "\"revision\":\"" rev "\",\"raft_term\":\"2\"}"

/* ---- request bodies --------------------------------------------------------------------------- */

/* A body as the gateway would read it; the text is freed. */
static json_t *decoded(char *text)
{
	json_error_t jerr;
	json_t *o;

	assert_non_null(text);
	o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		fail_msg("not JSON: %s (%s)", text, jerr.text);
	free(text);
	assert_true(json_is_object(o));
	return o;
}

/* A base64 field decodes to exactly want (len bytes). */
static void field_b64(json_t *o, const char *name, const void *want, size_t len)
{
	const char *s = json_string_value(json_object_get(o, name));
	unsigned char bin[256];
	size_t got = 0;
	const char *end = NULL;

	if (!s)
		fail_msg("no string field %s", name);
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), s, strlen(s), NULL, &got, &end,
					   sodium_base64_VARIANT_ORIGINAL), 0);
	assert_ptr_equal(end, s + strlen(s)); /* all of it, padding included */
	assert_int_equal(got, len);
	assert_memory_equal(bin, want, len);
}

static void field_int(json_t *o, const char *name, json_int_t want)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v) || json_integer_value(v) != want)
		fail_msg("field %s is not %lld", name, (long long)want);
}

static void test_body_auth(void **state)
{
	char *body = etcd_body_auth("n1.a", "p\"w\\ \xc3\xa9");
	json_error_t jerr;
	json_t *o;

	(void)state;
	assert_non_null(body);
	o = json_loads(body, 0, &jerr);
	etcd_free_secret(body); /* locked memory: not free()'s */
	assert_non_null(o);
	assert_int_equal(json_object_size(o), 2);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "n1.a");
	assert_string_equal(json_string_value(json_object_get(o, "password")), "p\"w\\ \xc3\xa9");
	json_decref(o);
	etcd_free_secret(NULL);
}

/* A prefix's range ends at the prefix with its last byte raised; 0xff carries; all 0xff: "\0". */
static void test_body_range(void **state)
{
	static const struct {
		const char *prefix;
		const char *end;
		size_t end_len;
	} rows[] = {
		{ "/veil/n1/", "/veil/n10", 9 }, /* the notes' L3ZlaWwvbjEv, L3ZlaWwvbjEw */
		{ "/veil/", "/veil0", 6 },
		{ "a", "b", 1 },
		{ "a\xff", "b", 1 },
		{ "a\xfe", "a\xff", 2 },
		{ "ab\xff\xff", "ac", 2 },
		{ "\xff", "", 1 },
		{ "\xff\xff\xff", "", 1 },
		{ "", "", 1 }, /* the whole keyspace: from "" to "\0" */
	};
	json_t *o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		o = decoded(etcd_body_range_prefix(rows[i].prefix, 0));
		field_b64(o, "key", rows[i].prefix, strlen(rows[i].prefix));
		field_b64(o, "range_end", rows[i].end, rows[i].end_len);
		assert_null(json_object_get(o, "revision")); /* 0: the latest */
		assert_int_equal(json_object_size(o), 2);
		json_decref(o);
	}
	o = decoded(etcd_body_range_prefix("/veil/n1/", 2));
	assert_string_equal(json_string_value(json_object_get(o, "key")), "L3ZlaWwvbjEv");
	assert_string_equal(json_string_value(json_object_get(o, "range_end")), "L3ZlaWwvbjEw");
	field_int(o, "revision", 2);
	json_decref(o);
	o = decoded(etcd_body_range_key("/veil/n1/policy"));
	field_b64(o, "key", "/veil/n1/policy", 15);
	assert_int_equal(json_object_size(o), 1); /* one key: no range_end */
	json_decref(o);
}

static void test_body_kv(void **state)
{
	json_t *o;

	(void)state;
	o = decoded(etcd_body_put("/veil/n1/nodes/a", "{\"version\":1}", 0));
	field_b64(o, "key", "/veil/n1/nodes/a", 16);
	field_b64(o, "value", "{\"version\":1}", 13);
	assert_int_equal(json_object_size(o), 2); /* no lease */
	json_decref(o);
	/* Lease IDs pass 2^53: they must come out exact. */
	o = decoded(etcd_body_put("/veil/n1/alive/a", "", 4379929011708399418LL));
	field_b64(o, "value", "", 0);
	field_int(o, "lease", 4379929011708399418LL);
	json_decref(o);
	o = decoded(etcd_body_delete("/veil/n1/nodes/a"));
	field_b64(o, "key", "/veil/n1/nodes/a", 16);
	assert_int_equal(json_object_size(o), 1);
	json_decref(o);
	o = decoded(etcd_body_delete_prefix("/veil/n1/"));
	field_b64(o, "key", "/veil/n1/", 9);
	field_b64(o, "range_end", "/veil/n10", 9);
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);
}

static void test_body_watch_lease(void **state)
{
	json_t *o, *c;

	(void)state;
	o = decoded(etcd_body_watch("/veil/n1/", 3));
	assert_int_equal(json_object_size(o), 1);
	c = json_object_get(o, "create_request");
	assert_true(json_is_object(c));
	field_b64(c, "key", "/veil/n1/", 9);
	field_b64(c, "range_end", "/veil/n10", 9);
	field_int(c, "start_revision", 3);
	json_decref(o);
	o = decoded(etcd_body_lease_grant(10));
	field_int(o, "TTL", 10);
	assert_int_equal(json_object_size(o), 1);
	json_decref(o);
	o = decoded(etcd_body_lease_keepalive(4379929011708399418LL));
	field_int(o, "ID", 4379929011708399418LL);
	assert_int_equal(json_object_size(o), 1);
	json_decref(o);
	o = decoded(etcd_body_lease_revoke(INT64_MAX));
	field_int(o, "ID", INT64_MAX);
	json_decref(o);
	o = decoded(etcd_body_compact(14));
	field_int(o, "revision", 14);
	assert_true(json_is_true(json_object_get(o, "physical")));
	json_decref(o);
	o = decoded(etcd_body_user_delete("n1.\"a\""));
	assert_string_equal(json_string_value(json_object_get(o, "name")), "n1.\"a\"");
	json_decref(o);
}

/* ---- error replies ------------------------------------------------------------------------------ */

struct error_row {
	long status;
	const char *body;
	int ret;
	enum etcd_error_kind kind;
	int code;
	const char *message;
};

#define UNARY(msg, code) "{\"error\":\"" msg "\",\"message\":\"" msg "\",\"code\":" #code "}"

static const struct error_row error_rows[] = {
	/* Successes, whatever they hold. */
	{ 200, "{\"header\":" H("5") "}", 0, ETCD_ERR_NONE, 0, "" },
	{ 200, "{\"header\":" H("5") ",\"token\":\"YTTnSVRBtYeLqBlK.44\"}", 0, ETCD_ERR_NONE, 0, "" },
	{ 200, "{}", 0, ETCD_ERR_NONE, 0, "" }, /* alarm GET as a node */
	/* The token: authenticate again. */
	{ 401, UNARY("etcdserver: invalid auth token", 16), -EIO, ETCD_ERR_AUTH, 16,
	  "etcdserver: invalid auth token" },
	{ 400, UNARY("etcdserver: user name is empty", 3), -EIO, ETCD_ERR_AUTH, 3,
	  "etcdserver: user name is empty" },
	{ 401, "", -EIO, ETCD_ERR_AUTH, 0, "HTTP status 401" },
	/* The password. */
	{ 400, UNARY("etcdserver: authentication failed, invalid user ID or password", 3), -EIO,
	  ETCD_ERR_LOGIN, 3, "etcdserver: authentication failed, invalid user ID or password" },
	/* The role. */
	{ 403, UNARY("etcdserver: permission denied", 7), -EIO, ETCD_ERR_PERMISSION, 7,
	  "etcdserver: permission denied" },
	{ 500, UNARY("auth: permission denied", 2), -EIO, ETCD_ERR_PERMISSION, 2, "auth: permission denied" },
	/* The revision. */
	{ 400, UNARY("etcdserver: mvcc: required revision has been compacted", 11), -EIO, ETCD_ERR_COMPACTED, 11,
	  "etcdserver: mvcc: required revision has been compacted" },
	/* The member: another one. */
	{ 503, UNARY("etcdserver: leader changed", 14), -EIO, ETCD_ERR_UNAVAILABLE, 14,
	  "etcdserver: leader changed" },
	{ 503, UNARY("etcdserver: request timed out", 14), -EIO, ETCD_ERR_UNAVAILABLE, 14,
	  "etcdserver: request timed out" },
	{ 503, UNARY("etcdserver: request timed out, possibly due to previous leader failure", 14), -EIO,
	  ETCD_ERR_UNAVAILABLE, 14, "etcdserver: request timed out, possibly due to previous leader failure" },
	{ 502, "", -EIO, ETCD_ERR_UNAVAILABLE, 0, "HTTP status 502" },
	{ 504, "<html>gateway timeout</html>", -EIO, ETCD_ERR_UNAVAILABLE, 0,
	  "HTTP status 504: <html>gateway timeout</html>" },
	/* A stream's error: HTTP said 200 long before. */
	{ 200, "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\","
	       "\"http_status\":\"Service Unavailable\"}}",
	  -EIO, ETCD_ERR_UNAVAILABLE, 14, "etcdserver: no leader" },
	{ 200, "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: leader changed\","
	       "\"http_status\":\"Service Unavailable\"}}",
	  -EIO, ETCD_ERR_UNAVAILABLE, 14, "etcdserver: leader changed" },
	{ 200, "{\"error\":{\"grpc_code\":13,\"http_code\":500,\"message\":\"server closed the stream without "
	       "sending trailers\",\"http_status\":\"Internal Server Error\"}}",
	  -EIO, ETCD_ERR_OTHER, 13, "server closed the stream without sending trailers" },
	/* Others: said, and not retried at once. */
	{ 412, UNARY("etcdserver: authentication is not enabled", 9), -EIO, ETCD_ERR_OTHER, 9,
	  "etcdserver: authentication is not enabled" },
	{ 404, UNARY("etcdserver: requested lease not found", 5), -EIO, ETCD_ERR_OTHER, 5,
	  "etcdserver: requested lease not found" },
	{ 500, UNARY("unexpected EOF", 2), -EIO, ETCD_ERR_OTHER, 2, "unexpected EOF" },
	{ 400, "{\"error\":\"illegal base64 data at input byte 4\",\"code\":3}", -EIO, ETCD_ERR_OTHER, 3,
	  "illegal base64 data at input byte 4" },
	/* The gateway's own text: a client certificate with a CN, a path it lacks. */
	{ 400, "CommonName of client sending a request against gateway will be ignored and not used as expected\n",
	  -EIO, ETCD_ERR_OTHER, 0,
	  "HTTP status 400: CommonName of client sending a request against gateway will be ignored and not "
	  "used as expected " },
	{ 404, "404 page not found\n", -EIO, ETCD_ERR_OTHER, 0, "HTTP status 404: 404 page not found " },
	{ 405, "Method Not Allowed", -EIO, ETCD_ERR_OTHER, 0, "HTTP status 405: Method Not Allowed" },
	{ 200, "not json", -EIO, ETCD_ERR_OTHER, 0, "HTTP status 200: not json" },
	{ 500, "", -EIO, ETCD_ERR_OTHER, 0, "HTTP status 500" },
	/* An empty message says at least the status (the fuzzer's find). */
	{ 400, "{\"error\":\"\",\"code\":42}", -EIO, ETCD_ERR_OTHER, 42, "HTTP status 400" },
	{ 200, "{\"error\":{\"grpc_code\":13,\"message\":\"\"}}", -EIO, ETCD_ERR_OTHER, 13, "HTTP status 200" },
	/* A message never carries a control character into a log line. */
	{ 500, "{\"error\":\"x\",\"message\":\"a\\u001b[2J\\nb\",\"code\":2}", -EIO, ETCD_ERR_OTHER, 2, "a [2J b" },
};

static void test_reply_error(void **state)
{
	struct etcd_error e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(error_rows) / sizeof(error_rows[0]); i++) {
		const struct error_row *t = &error_rows[i];
		int ret;

		memset(&e, 0x5a, sizeof(e));
		ret = etcd_reply_error(t->status, t->body, strlen(t->body), &e);
		if (ret != t->ret || (ret && (e.kind != t->kind || e.code != t->code || strcmp(e.message, t->message))))
			fail_msg("row %zu: %d kind %d code %d \"%s\"; want %d kind %d code %d \"%s\"", i, ret, e.kind,
				 e.code, e.message, t->ret, t->kind, t->code, t->message);
	}
}

/* A long message is cut to fit; a long text body to 150 bytes of it. */
static void test_reply_error_long(void **state)
{
	char body[600], text[400];
	struct etcd_error e;

	(void)state;
	memset(text, 'm', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"error\":\"x\",\"message\":\"%s\",\"code\":14}", text);
	assert_int_equal(etcd_reply_error(503, body, strlen(body), &e), -EIO);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
	assert_int_equal(e.kind, ETCD_ERR_UNAVAILABLE);
	assert_int_equal(etcd_reply_error(400, text, strlen(text), &e), -EIO);
	assert_int_equal(strlen(e.message), strlen("HTTP status 400: ") + 150);
}

/* ---- replies ------------------------------------------------------------------------------------ */

static void test_parse_auth(void **state)
{
	static const char ok[] = "{\"header\":" H("5") ",\"token\":\"YTTnSVRBtYeLqBlK.44\"}";
	static const char *const bad[] = {
		"{\"header\":" H("5") "}", "{\"token\":\"\"}", "{\"token\":7}", "not json",
		UNARY("etcdserver: authentication failed, invalid user ID or password", 3),
	};
	char *token = (char *)1;
	size_t i;

	(void)state;
	assert_int_equal(etcd_parse_auth(ok, strlen(ok), &token), 0);
	assert_string_equal(token, "YTTnSVRBtYeLqBlK.44");
	sodium_free(token); /* locked memory */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		token = (char *)1;
		assert_int_equal(etcd_parse_auth(bad[i], strlen(bad[i]), &token), -EPROTO);
		assert_null(token);
	}
}

static void assert_kv(const struct etcd_kv *kv, const char *key, const char *value, size_t value_len,
		      int64_t create, int64_t mod, int64_t version, int64_t lease)
{
	assert_string_equal(kv->key, key);
	assert_int_equal(kv->value_len, value_len);
	assert_memory_equal(kv->value, value, value_len);
	assert_int_equal(kv->value[value_len], '\0');
	assert_int_equal(kv->create_revision, create);
	assert_int_equal(kv->mod_revision, mod);
	assert_int_equal(kv->version, version);
	assert_int_equal(kv->lease, lease);
}

#define KV_A "{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\",\"create_revision\":\"2\",\"mod_revision\":\"3\"," \
	     "\"version\":\"2\",\"value\":\"eyJwdWIiOiJ5In0=\"}"
#define KV_B "{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYg==\",\"create_revision\":\"4\",\"mod_revision\":\"4\"," \
	     "\"version\":\"1\",\"value\":\"YmI=\",\"lease\":\"4379929011708399418\"}"
#define KV_C "{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYw==\",\"create_revision\":\"5\",\"mod_revision\":\"5\",\"version\":\"1\"}"

static void test_parse_range(void **state)
{
	static const char three[] = "{\"header\":" H("5") ",\"kvs\":[" KV_A "," KV_B "," KV_C "],\"count\":\"3\"}";
	static const char more[] = "{\"header\":" H("9") ",\"kvs\":[" KV_A "],\"more\":true,\"count\":\"3\"}";
	static const char empty[] = "{\"header\":" H("5") "}";
	static const char numbers[] = "{\"header\":{\"revision\":9223372036854775807},\"kvs\":[{\"key\":\"YQ==\","
				      "\"create_revision\":7,\"mod_revision\":8,\"version\":1,\"value\":\"YQBi\"}]}";
	struct etcd_range r;

	(void)state;
	assert_int_equal(etcd_parse_range(three, strlen(three), &r), 0);
	assert_int_equal(r.revision, 5);
	assert_false(r.more);
	assert_int_equal(r.n, 3);
	assert_kv(&r.kvs[0], "/veil/n1/nodes/a", "{\"pub\":\"y\"}", 11, 2, 3, 2, 0);
	assert_kv(&r.kvs[1], "/veil/n1/nodes/b", "bb", 2, 4, 4, 1, 4379929011708399418LL);
	assert_kv(&r.kvs[2], "/veil/n1/nodes/c", "", 0, 5, 5, 1, 0); /* an empty value is left out */
	etcd_range_free(&r);
	assert_int_equal(etcd_parse_range(more, strlen(more), &r), 0);
	assert_int_equal(r.revision, 9);
	assert_true(r.more);
	assert_int_equal(r.n, 1);
	etcd_range_free(&r);
	assert_int_equal(etcd_parse_range(empty, strlen(empty), &r), 0);
	assert_int_equal(r.revision, 5);
	assert_int_equal(r.n, 0);
	etcd_range_free(&r);
	/* Numbers as numbers; a value holding a NUL keeps its length. */
	assert_int_equal(etcd_parse_range(numbers, strlen(numbers), &r), 0);
	assert_int_equal(r.revision, INT64_MAX);
	assert_kv(&r.kvs[0], "a", "a\0b", 3, 7, 8, 1, 0);
	etcd_range_free(&r);
	etcd_range_free(&r); /* safe twice */
}

static void test_parse_range_refused(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[]", "{}",
		"{\"header\":{}}",
		"{\"header\":" H("0") "}",
		"{\"header\":" H("5") ",\"kvs\":{}}",
		"{\"header\":" H("5") ",\"kvs\":[" KV_A ",{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ=\"}]}", /* bad padding */
		"{\"header\":" H("5") ",\"kvs\":[{\"key\":\"!!!!\"}]}",
		"{\"header\":" H("5") ",\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Y\"}]}",
		"{\"header\":" H("5") ",\"kvs\":[" KV_A ",{\"key\":\"YQBi\"}]}", /* "a\0b": a key with a NUL */
		"{\"header\":" H("5") ",\"kvs\":[{\"value\":\"YQ==\"}]}",
		"{\"header\":" H("5") ",\"kvs\":[{\"key\":5}]}",
		"{\"header\":" H("5") ",\"kvs\":[7]}",
		UNARY("etcdserver: permission denied", 7),
	};
	struct etcd_range r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&r, 0x5a, sizeof(r));
		if (etcd_parse_range(bad[i], strlen(bad[i]), &r) != -EPROTO)
			fail_msg("row %zu was read: %s", i, bad[i]);
		assert_null(r.kvs);
		assert_int_equal(r.n, 0);
	}
}

static void test_parse_revision(void **state)
{
	static const char put[] = "{\"header\":" H("16") "}";
	static const char prev[] = "{\"header\":" H("17") ",\"prev_kv\":" KV_A "}";
	int64_t rev = -1;

	(void)state;
	assert_int_equal(etcd_parse_revision(put, strlen(put), &rev), 0);
	assert_int_equal(rev, 16);
	assert_int_equal(etcd_parse_revision(prev, strlen(prev), &rev), 0);
	assert_int_equal(rev, 17);
	assert_int_equal(etcd_parse_revision("{}", 2, &rev), -EPROTO);
	assert_int_equal(etcd_parse_revision("{\"header\":{}}", 13, &rev), -EPROTO);
	assert_int_equal(etcd_parse_revision("x", 1, &rev), -EPROTO);
}

static void test_parse_lease(void **state)
{
	static const struct {
		const char *body;
		int ret;
		int64_t id, ttl;
	} rows[] = {
		{ "{\"header\":" H("5") ",\"ID\":\"4379929011708399418\",\"TTL\":\"10\"}", 0, 4379929011708399418LL, 10 },
		{ "{\"header\":" H("5") ",\"ID\":\"12345\",\"TTL\":\"2\"}", 0, 12345, 2 },
		/* keepalive: one result, then the stream ends */
		{ "{\"result\":{\"header\":" H("5") ",\"ID\":\"4379929011708399418\",\"TTL\":\"10\"}}", 0,
		  4379929011708399418LL, 10 },
		/* a lease that is gone: no TTL at all */
		{ "{\"result\":{\"header\":" H("5") ",\"ID\":\"99\"}}", 0, 99, 0 },
		/* timetolive after revoke */
		{ "{\"header\":" H("5") ",\"ID\":\"99\",\"TTL\":\"-1\",\"grantedTTL\":\"10\"}", 0, 99, -1 },
		{ "{\"ID\":12345,\"TTL\":10}", 0, 12345, 10 },
		{ "{\"header\":" H("5") "}", -EPROTO, 0, 0 },
		{ "{\"result\":{\"header\":" H("5") "}}", -EPROTO, 0, 0 },
		{ UNARY("etcdserver: requested lease not found", 5), -EPROTO, 0, 0 },
		{ "not json", -EPROTO, 0, 0 },
	};
	int64_t id, ttl;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = etcd_parse_lease(rows[i].body, strlen(rows[i].body), &id, &ttl);

		if (ret != rows[i].ret || (!ret && (id != rows[i].id || ttl != rows[i].ttl)))
			fail_msg("row %zu: %d ID %lld TTL %lld", i, ret, (long long)id, (long long)ttl);
	}
}

/* ---- watch messages ------------------------------------------------------------------------------- */

#define W_CREATED "{\"result\":{\"header\":" H("3") ",\"created\":true}}"
#define W_PUTS "{\"result\":{\"header\":" H("12") ",\"events\":[" \
	"{\"kv\":{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\",\"create_revision\":\"11\",\"mod_revision\":\"11\"," \
	"\"version\":\"1\",\"value\":\"djE=\"}}," \
	"{\"kv\":{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\",\"create_revision\":\"11\",\"mod_revision\":\"12\"," \
	"\"version\":\"2\",\"value\":\"djI=\"},\"prev_kv\":{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\"," \
	"\"create_revision\":\"11\",\"mod_revision\":\"11\",\"version\":\"1\",\"value\":\"djE=\"}}]}}"
#define W_DELETE "{\"result\":{\"header\":" H("13") ",\"events\":[{\"type\":\"DELETE\"," \
	"\"kv\":{\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\",\"mod_revision\":\"13\"},\"prev_kv\":{" \
	"\"key\":\"L3ZlaWwvbjEvbm9kZXMvYQ==\",\"create_revision\":\"11\",\"mod_revision\":\"12\"," \
	"\"version\":\"2\",\"value\":\"djI=\"}}]}}"
#define W_EXPIRED "{\"result\":{\"header\":" H("15") ",\"events\":[{\"type\":\"DELETE\"," \
	"\"kv\":{\"key\":\"L3ZlaWwvbjEvYWxpdmUvYQ==\",\"mod_revision\":\"15\"},\"prev_kv\":{" \
	"\"key\":\"L3ZlaWwvbjEvYWxpdmUvYQ==\",\"create_revision\":\"14\",\"mod_revision\":\"14\"," \
	"\"version\":\"1\",\"lease\":\"4379929011708399418\"}}]}}"
#define W_PROGRESS "{\"result\":{\"header\":" H("15") "}}"
#define W_COMPACTED "{\"result\":{\"header\":{\"cluster_id\":\"14841639068965178418\"," \
	"\"member_id\":\"10276657743932975437\",\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"14\"}}"
#define W_DENIED "{\"result\":{\"header\":" H("5") ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true," \
	"\"cancel_reason\":\"rpc error: code = PermissionDenied desc = etcdserver: permission denied\"}}"
#define W_NO_TOKEN "{\"result\":{\"header\":" H("5") ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true," \
	"\"cancel_reason\":\"rpc error: code = InvalidArgument desc = etcdserver: user name is empty\"}}"
/* Not etcd's words, but its shape: braces, brackets, quotes and backslashes inside a string. */
#define W_ODD "{\"result\":{\"header\":" H("16") ",\"canceled\":true," \
	"\"cancel_reason\":\"odd: \\\"}}\\\" } { ] [ \\\" end\\\\\"}}"
#define W_ERROR "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no leader\"," \
	"\"http_status\":\"Service Unavailable\"}}"

static void test_parse_watch(void **state)
{
	struct etcd_watch_msg m;
	char long_reason[400], body[600];

	(void)state;
	assert_int_equal(etcd_parse_watch(W_CREATED, strlen(W_CREATED), &m), 0);
	assert_true(m.created);
	assert_false(m.canceled);
	assert_int_equal(m.revision, 3);
	assert_int_equal(m.n, 0);
	etcd_watch_msg_free(&m);

	/* PUTs come without a type (PUT is the enum's zero). */
	assert_int_equal(etcd_parse_watch(W_PUTS, strlen(W_PUTS), &m), 0);
	assert_false(m.created);
	assert_int_equal(m.revision, 12);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.events[0].type, ETCD_PUT);
	assert_kv(&m.events[0].kv, "/veil/n1/nodes/a", "v1", 2, 11, 11, 1, 0);
	assert_int_equal(m.events[1].type, ETCD_PUT);
	assert_kv(&m.events[1].kv, "/veil/n1/nodes/a", "v2", 2, 11, 12, 2, 0);
	etcd_watch_msg_free(&m);

	/* A DELETE's kv has the key and the deletion's revision, nothing else. */
	assert_int_equal(etcd_parse_watch(W_DELETE, strlen(W_DELETE), &m), 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.events[0].type, ETCD_DELETE);
	assert_kv(&m.events[0].kv, "/veil/n1/nodes/a", "", 0, 0, 13, 0, 0);
	etcd_watch_msg_free(&m);
	assert_int_equal(etcd_parse_watch(W_EXPIRED, strlen(W_EXPIRED), &m), 0);
	assert_int_equal(m.events[0].type, ETCD_DELETE);
	assert_kv(&m.events[0].kv, "/veil/n1/alive/a", "", 0, 0, 15, 0, 0);
	etcd_watch_msg_free(&m);

	assert_int_equal(etcd_parse_watch(W_PROGRESS, strlen(W_PROGRESS), &m), 0);
	assert_int_equal(m.revision, 15);
	assert_false(m.created || m.canceled);
	assert_int_equal(m.n, 0);
	etcd_watch_msg_free(&m);

	/* Compacted: no revision in the header; the stream then stays open. */
	assert_int_equal(etcd_parse_watch(W_COMPACTED, strlen(W_COMPACTED), &m), 0);
	assert_true(m.canceled);
	assert_int_equal(m.compact_revision, 14);
	assert_int_equal(m.revision, 0);
	assert_string_equal(m.cancel_reason, "");
	etcd_watch_msg_free(&m);

	assert_int_equal(etcd_parse_watch(W_DENIED, strlen(W_DENIED), &m), 0);
	assert_true(m.created && m.canceled);
	assert_int_equal(m.compact_revision, 0);
	assert_string_equal(m.cancel_reason, "rpc error: code = PermissionDenied desc = etcdserver: permission denied");
	etcd_watch_msg_free(&m);

	/* Escaped quotes and a last escaped backslash, braces between. */
	assert_int_equal(etcd_parse_watch(W_ODD, strlen(W_ODD), &m), 0);
	assert_string_equal(m.cancel_reason, "odd: \"}}\" } { ] [ \" end\\");
	etcd_watch_msg_free(&m);

	/* Control characters (a terminal escape, a new line) become spaces: it is logged. */
	snprintf(body, sizeof(body), "%s", "{\"result\":{\"canceled\":true,"
		 "\"cancel_reason\":\"a\\u001b[2Jb\\nc\\u007f\"}}");
	assert_int_equal(etcd_parse_watch(body, strlen(body), &m), 0);
	assert_string_equal(m.cancel_reason, "a [2Jb c ");
	etcd_watch_msg_free(&m);

	/* A long reason is cut to fit. */
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"result\":{\"canceled\":true,\"cancel_reason\":\"%s\"}}", long_reason);
	assert_int_equal(etcd_parse_watch(body, strlen(body), &m), 0);
	assert_int_equal(strlen(m.cancel_reason), sizeof(m.cancel_reason) - 1);
	etcd_watch_msg_free(&m);
}

static void test_parse_watch_refused(void **state)
{
	static const char *const bad[] = {
		W_ERROR, /* not a result: etcd_reply_error reads it */
		"", "not json", "{}", "{\"result\":7}", "[]",
		"{\"result\":{\"header\":" H("5") ",\"events\":{}}}",
		"{\"result\":{\"header\":" H("5") ",\"events\":[{}]}}",
		"{\"result\":{\"header\":" H("5") ",\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"kv\":{\"key\":\"YQBi\"}}]}}",
		"{\"result\":{\"header\":" H("5") ",\"events\":[{\"kv\":{\"key\":\"YQ==\",\"value\":\"*\"}}]}}",
	};
	struct etcd_watch_msg m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&m, 0x5a, sizeof(m));
		if (etcd_parse_watch(bad[i], strlen(bad[i]), &m) != -EPROTO)
			fail_msg("row %zu was read: %s", i, bad[i]);
		assert_null(m.events);
		assert_int_equal(m.n, 0);
	}
}

/* ---- the watch stream -------------------------------------------------------------------------------- */

/* A stream as it came, the last message without its "\n" (the stream ended on it). */
static const char *const stream_msgs[] = {
	W_CREATED, W_PUTS, W_PROGRESS, W_DELETE, W_EXPIRED, W_ODD, W_NO_TOKEN, W_COMPACTED, W_ERROR,
};
#define N_MSGS (sizeof(stream_msgs) / sizeof(stream_msgs[0]))

struct got {
	char *msgs[2 * N_MSGS];
	size_t n;
	size_t stop_at; /* on_msg returns 7 on this message (1-based); 0: never */
};

static int on_msg(const char *json, size_t len, void *data)
{
	struct got *g = data;

	assert_true(g->n < 2 * N_MSGS);
	g->msgs[g->n] = strndup(json, len);
	assert_non_null(g->msgs[g->n]);
	g->n++;
	return g->n == g->stop_at ? 7 : 0;
}

static void got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->msgs[i]);
	g->n = 0;
}

/* The stream text: the messages with sep between them. */
static size_t stream_text(char *out, size_t cap, const char *sep)
{
	size_t i, n = 0;

	for (i = 0; i < N_MSGS; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", stream_msgs[i], i + 1 < N_MSGS ? sep : "");
	assert_true(n < cap);
	return n;
}

static void expect_msgs(const struct got *g, const char *mode, size_t k)
{
	size_t i;

	if (g->n != N_MSGS)
		fail_msg("%s %zu: %zu messages, want %zu", mode, k, g->n, N_MSGS);
	for (i = 0; i < N_MSGS; i++)
		if (strcmp(g->msgs[i], stream_msgs[i]))
			fail_msg("%s %zu: message %zu is\n%s\nwant\n%s", mode, k, i, g->msgs[i], stream_msgs[i]);
}

/* Feed text cut at cuts[] (ascending). */
static void feed_cuts(const char *text, size_t len, const size_t *cuts, size_t ncuts, struct got *g)
{
	struct etcd_stream s = { 0 };
	size_t start = 0, i;

	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		assert_int_equal(etcd_stream_feed(&s, text + start, end - start, on_msg, g), 0);
		start = end;
	}
	assert_int_equal(s.len, 0); /* nothing left over: the last message is whole without "\n" */
	etcd_stream_reset(&s);
	assert_null(s.buf);
}

static void run_transcript(const char *sep)
{
	static char text[8192];
	size_t len = stream_text(text, sizeof(text), sep), k;
	size_t *cuts = calloc(len, sizeof(*cuts));
	struct got g = { .n = 0 };

	assert_non_null(cuts);
	feed_cuts(text, len, NULL, 0, &g);
	expect_msgs(&g, "whole", 0);
	got_free(&g);
	for (k = 1; k < len; k++)
		cuts[k - 1] = k;
	feed_cuts(text, len, cuts, len - 1, &g);
	expect_msgs(&g, "bytes", 0);
	got_free(&g);
	for (k = 1; k < len; k++) {
		feed_cuts(text, len, &k, 1, &g);
		expect_msgs(&g, "cut", k);
		got_free(&g);
	}
	free(cuts);
}

static void test_stream_cuts(void **state)
{
	(void)state;
	run_transcript("\n");
	/* Blank lines and CRLF between messages change nothing. */
	run_transcript("\r\n\n \t");
	/* Nor does no separator at all. */
	run_transcript("");
}

/* on_msg's refusal stops the feed; what is left comes with the next one. */
static void test_stream_stop(void **state)
{
	static char text[8192];
	size_t len = stream_text(text, sizeof(text), "\n");
	struct etcd_stream s = { 0 };
	struct got g = { .stop_at = 2 };

	(void)state;
	assert_int_equal(etcd_stream_feed(&s, text, len, on_msg, &g), 7);
	assert_int_equal(g.n, 2);
	g.stop_at = 0;
	assert_int_equal(etcd_stream_feed(&s, "", 0, on_msg, &g), 0);
	expect_msgs(&g, "stopped", 0);
	got_free(&g);
	etcd_stream_reset(&s);
}

/* An empty piece (libcurl may hand one over) on a fresh stream and on a used one. */
static void test_stream_empty(void **state)
{
	struct etcd_stream s = { 0 };
	struct got g = { .n = 0 };

	(void)state;
	assert_int_equal(etcd_stream_feed(&s, "", 0, on_msg, &g), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(etcd_stream_feed(&s, "{\"a\":", 5, on_msg, &g), 0);
	assert_int_equal(etcd_stream_feed(&s, "", 0, on_msg, &g), 0);
	assert_int_equal(etcd_stream_feed(&s, "1}\n", 3, on_msg, &g), 0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.msgs[0], "{\"a\":1}");
	got_free(&g);
	etcd_stream_reset(&s);
	etcd_stream_reset(&s); /* safe twice */
}

/* A message past 16 MB is refused, whole or in pieces. */
static void test_stream_limit(void **state)
{
	size_t max = STREAM_MSG_MAX;
	char *big = malloc(max + 1);
	struct etcd_stream s = { 0 };
	struct got g = { .n = 0 };

	(void)state;
	assert_non_null(big);
	memset(big, '[', max + 1);
	assert_int_equal(etcd_stream_feed(&s, big, max + 1, on_msg, &g), -EFBIG);
	assert_int_equal(s.len, 0);
	assert_int_equal(etcd_stream_feed(&s, big, max, on_msg, &g), 0);
	assert_int_equal(s.len, max);
	assert_int_equal(etcd_stream_feed(&s, "]", 1, on_msg, &g), -EFBIG);
	assert_int_equal(g.n, 0);
	etcd_stream_reset(&s);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_auth),
		cmocka_unit_test(test_body_range),
		cmocka_unit_test(test_body_kv),
		cmocka_unit_test(test_body_watch_lease),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_reply_error_long),
		cmocka_unit_test(test_parse_auth),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_parse_range_refused),
		cmocka_unit_test(test_parse_revision),
		cmocka_unit_test(test_parse_lease),
		cmocka_unit_test(test_parse_watch),
		cmocka_unit_test(test_parse_watch_refused),
		cmocka_unit_test(test_stream_cuts),
		cmocka_unit_test(test_stream_stop),
		cmocka_unit_test(test_stream_empty),
		cmocka_unit_test(test_stream_limit),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
