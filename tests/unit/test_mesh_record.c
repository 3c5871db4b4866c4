// SPDX-License-Identifier: MIT
/*
 * The mesh's records and the decision over them (tools/mesh/record.c):
 * every refusal of a record with its exact reason and the record left
 * empty; format and parse as inverses; the policy; and mesh_decide, case by
 * case from a table and then against a naive reference of its rule on
 * seeded random networks (the kernel's horrible_allowedips), in two orders.
 */
/* conf.c and record.c each have a static shown(): conf.c's is renamed here. */
#define shown conf_shown
#include "conf.c"
#undef shown
#include "record.c"

#include <stdlib.h>

#include "test_util.h"

/* The tables leave out trailing fields whose zero is what a row means; some rows are formats. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* Key numbers: 1-98 are nodes', KEY_STATIC the file's [Peer]'s, KEY_SELF this node's. */
enum { KEY_STATIC = 99, KEY_SELF = 100, STATIC_LINE = 7 };

static void key_bin(unsigned int i, uint8_t k[32])
{
	memset(k, 0, 32);
	k[0] = (uint8_t)i;
	k[31] = 0x5a;
}

static void key_b64(unsigned int i, char out[45])
{
	uint8_t k[32];

	key_bin(i, k);
	sodium_bin2base64(out, 45, k, 32, sodium_base64_VARIANT_ORIGINAL);
}

/* A record's JSON: prefixes is a space-separated list ("" for none); next, a key it rotates to (0: none). */
static void record_json_next(char *out, size_t len, const char *node, unsigned int key, unsigned int next,
			     const char *prefixes)
{
	char k[45], nk[45], list[1024] = "", copy[1024], more[80] = "", *tok, *save = NULL;
	size_t n = 0;

	key_b64(key, k);
	if (next) {
		key_b64(next, nk);
		snprintf(more, sizeof(more), ",\"next_public_key\":\"%s\"", nk);
	}
	snprintf(copy, sizeof(copy), "%s", prefixes);
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", n ? "," : "", tok);
	snprintf(out, len, "{\"version\":1,\"node\":\"%s\",\"public_key\":\"%s\"%s,\"prefixes\":[%s]}", node, k,
		 more, list);
}

static void record_json(char *out, size_t len, const char *node, unsigned int key, const char *prefixes)
{
	record_json_next(out, len, node, key, 0, prefixes);
}

/* Prefixes as text, space-separated, as the tables write them. */
static void prefixes_text(const struct conf_prefix *p, size_t n, char *out, size_t len)
{
	size_t i, used = 0;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		char s[PREFIX_TEXT];

		prefix_text(&p[i], s, sizeof(s));
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? " " : "", s);
	}
}

static void assert_empty(const struct mesh_record *r)
{
	static const struct mesh_record zero;

	assert_memory_equal(r, &zero, sizeof(*r));
}

/* ---- parsing a record ------------------------------------------------------------------------- */

static const char *k1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

static void test_parse_valid(void **state)
{
	static const char text[] =
		"{\"version\":1,\"node\":\"site-a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
		"\"endpoints\":[\"a.example:51820\",\"[2001:db8::1]:51820\"],"
		"\"prefixes\":[\"10.1.0.0/24\",\"fd00:1::/64\",\"192.0.2.7/32\"],\"cipher\":\"aes256gcm\","
		"\"comment\":\"fields this agent does not know are left alone\"}";
	struct mesh_record r;
	char why[MESH_WHY_LEN], list[256];
	uint8_t want[32];

	(void)state;
	assert_int_equal(mesh_record_parse(&r, "site-a", text, strlen(text), why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_string_equal(r.node, "site-a");
	assert_int_equal(conf_parse_key(k1, want), 0);
	assert_memory_equal(r.public_key, want, 32);
	assert_string_equal(r.endpoint, "a.example:51820"); /* the first */
	prefixes_text(r.prefixes, r.n_prefixes, list, sizeof(list));
	assert_string_equal(list, "10.1.0.0/24 fd00:1::/64 192.0.2.7/32");
	assert_int_equal(r.cipher, CIPHER_AES256GCM);
	mesh_record_free(&r);
	assert_empty(&r);

	/* The least a record may be: no endpoint, no prefix, WireGuard's cipher. */
	snprintf(list, sizeof(list), "{\"public_key\":\"%s\",\"node\":\"b\",\"version\":1}", k1);
	assert_int_equal(mesh_record_parse(&r, "b", list, strlen(list), why, sizeof(why)), 0);
	assert_string_equal(r.endpoint, "");
	assert_int_equal(r.n_prefixes, 0);
	assert_null(r.prefixes);
	assert_int_equal(r.cipher, CIPHER_DEFAULT);
	mesh_record_free(&r);
	snprintf(list, sizeof(list), "{\"version\":1,\"node\":\"b\",\"public_key\":\"%s\",\"endpoints\":[],"
		 "\"prefixes\":[],\"cipher\":\"chacha20poly1305\"}", k1);
	assert_int_equal(mesh_record_parse(&r, "b", list, strlen(list), why, sizeof(why)), 0);
	assert_int_equal(r.cipher, CIPHER_DEFAULT);
	assert_false(r.has_next); /* no rotation under way, */
	assert_int_equal(r.key_since, 0); /* and the key's age unknown */
	mesh_record_free(&r);
}

static const char *k2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

/* A rotating node's record: the key it moves to next, and since when it holds its key. */
static void test_parse_rotation(void **state)
{
	struct mesh_record r;
	char json[512], why[MESH_WHY_LEN];
	uint8_t want[32];

	(void)state;
	snprintf(json, sizeof(json), "{\"version\":1,\"node\":\"a\",\"public_key\":\"%s\",\"next_public_key\":\"%s\","
		 "\"key_since\":1764754512}", k1, k2);
	assert_int_equal(mesh_record_parse(&r, "a", json, strlen(json), why, sizeof(why)), 0);
	assert_true(r.has_next);
	assert_int_equal(conf_parse_key(k2, want), 0);
	assert_memory_equal(r.next_public_key, want, 32);
	assert_int_equal(conf_parse_key(k1, want), 0);
	assert_memory_equal(r.public_key, want, 32);
	assert_int_equal(r.key_since, 1764754512);
	mesh_record_free(&r);
	assert_empty(&r);
	/* null is no next key; key_since 0 is an unknown age. */
	snprintf(json, sizeof(json), "{\"version\":1,\"node\":\"a\",\"public_key\":\"%s\",\"next_public_key\":null,"
		 "\"key_since\":0}", k1);
	assert_int_equal(mesh_record_parse(&r, "a", json, strlen(json), why, sizeof(why)), 0);
	assert_false(r.has_next);
	assert_true(sodium_is_zero(r.next_public_key, 32));
	assert_int_equal(r.key_since, 0);
	mesh_record_free(&r);
	/* A time past 2038 (64-bit). */
	snprintf(json, sizeof(json), "{\"version\":1,\"node\":\"a\",\"public_key\":\"%s\",\"key_since\":4102444800}", k1);
	assert_int_equal(mesh_record_parse(&r, "a", json, strlen(json), why, sizeof(why)), 0);
	assert_int_equal(r.key_since, 4102444800LL);
	mesh_record_free(&r);
}

struct refusal {
	const char *node;
	const char *json; /* %1$s: a good key */
	const char *why;
};

#define REC(rest) "{\"version\":1,\"node\":\"a\",\"public_key\":\"%1$s\"" rest "}"

static const struct refusal refusals[] = {
	{ "a", "not json", "not JSON ('[' or '{' expected near 'not' at byte 3)" },
	{ "a", "", "not JSON ('[' or '{' expected near end of file at byte 0)" },
	{ "a", REC(",\"prefixes\":[\"10.0.0.0/8\"]"), NULL }, /* (the good one the others break) */
	{ "a", "[1,2]", "not a JSON object" },
	{ "a", "{\"version\":1,\"node\":\"a\",\"node\":\"a\",\"public_key\":\"%1$s\"}",
	  "not JSON (duplicate object key near '\"node\"' at byte 30)" },
	{ "a", REC(",\"x\":1} {"), "not JSON (end of file expected near '{' at byte 92)" },
	{ "a", "{\"node\":\"a\",\"public_key\":\"%1$s\"}", "no version (a number)" },
	{ "a", "{\"version\":\"1\",\"node\":\"a\",\"public_key\":\"%1$s\"}", "no version (a number)" },
	{ "a", "{\"version\":1.0,\"node\":\"a\",\"public_key\":\"%1$s\"}", "no version (a number)" },
	{ "a", "{\"version\":0,\"node\":\"a\",\"public_key\":\"%1$s\"}", "no version (a number)" },
	{ "a", "{\"version\":-1,\"node\":\"a\",\"public_key\":\"%1$s\"}", "no version (a number)" },
	{ "a", "{\"version\":2,\"node\":\"a\",\"public_key\":\"%1$s\"}",
	  "version 2 is newer than this agent reads (1)" },
	{ "b", REC(""), "its node \"a\" is not the name it is stored under" },
	{ "A", REC(""), "its node \"a\" is not the name it is stored under" },
	{ "a", "{\"version\":1,\"public_key\":\"%1$s\"}", "its node \"(none)\" is not the name it is stored under" },
	{ "a", "{\"version\":1,\"node\":7,\"public_key\":\"%1$s\"}",
	  "its node \"(none)\" is not the name it is stored under" },
	/* A name quoted cut short, and never with a control character. */
	{ "a", "{\"version\":1,\"node\":\"a\\u001b[2J\",\"public_key\":\"%1$s\"}",
	  "its node \"a?[2J\" is not the name it is stored under" },
	{ "a", "{\"version\":1,\"node\":\"0123456789012345678901234567890123456789\",\"public_key\":\"%1$s\"}",
	  "its node \"0123456789012345678901234567...\" is not the name it is stored under" },
	{ "a/b", REC(""), "the key's node name is not a name (1-63 of A-Z a-z 0-9 . _ -)" },
	{ "", REC(""), "the key's node name is not a name (1-63 of A-Z a-z 0-9 . _ -)" },
	{ "..", REC(""), "the key's node name is not a name (1-63 of A-Z a-z 0-9 . _ -)" },
	{ "a", "{\"version\":1,\"node\":\"a\"}", "public_key is not a base64 key of 32 bytes" },
	{ "a", "{\"version\":1,\"node\":\"a\",\"public_key\":\"abc\"}", "public_key is not a base64 key of 32 bytes" },
	{ "a", "{\"version\":1,\"node\":\"a\",\"public_key\":42}", "public_key is not a base64 key of 32 bytes" },
	{ "a", "{\"version\":1,\"node\":\"a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg\"}",
	  "public_key is not a base64 key of 32 bytes" },
	{ "a", "{\"version\":1,\"node\":\"a\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
	  "public_key is all zero" },
	{ "a", REC(",\"endpoints\":[\"nope\"]"), "endpoint \"nope\" is not host:port or [address]:port" },
	{ "a", REC(",\"endpoints\":[\"h:1\",\"h:0\"]"), "endpoint \"h:0\" is not host:port or [address]:port" },
	{ "a", REC(",\"endpoints\":[\"2001:db8::1:51820\"]"),
	  "endpoint \"2001:db8::1:51820\" is not host:port or [address]:port" },
	{ "a", REC(",\"endpoints\":[5]"), "endpoint \"(not a string)\" is not host:port or [address]:port" },
	{ "a", REC(",\"endpoints\":\"h:1\""), "endpoints is not a list of at most 4 host:port" },
	{ "a", REC(",\"endpoints\":[\"h:1\",\"h:2\",\"h:3\",\"h:4\",\"h:5\"]"),
	  "endpoints is not a list of at most 4 host:port" },
	{ "a", REC(",\"prefixes\":[\"10.0.0.0/33\"]"), "\"10.0.0.0/33\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[\"10.0.0.0\"]"), NULL }, /* a host: /32 */
	{ "a", REC(",\"prefixes\":[\"10.0.0.1/24\"]"), "\"10.0.0.1/24\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[\"fd00::1/64\"]"), "\"fd00::1/64\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[\"10.128.0.0/8\"]"), "\"10.128.0.0/8\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[\"0.0.0.1/0\"]"), "\"0.0.0.1/0\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[\"host.example/24\"]"), "\"host.example/24\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":[null]"), "\"(not a string)\" is not a prefix (address/length, no host bits)" },
	{ "a", REC(",\"prefixes\":{}"), "prefixes is not a list of at most 256 prefixes" },
	{ "a", REC(",\"prefixes\":[\"10.0.0.0/8\",\"fd00::/8\",\"10.1.0.0/16\"]"),
	  "prefix \"10.1.0.0/16\" overlaps another of its own" },
	{ "a", REC(",\"prefixes\":[\"10.1.0.0/16\",\"10.0.0.0/8\"]"), "prefix \"10.0.0.0/8\" overlaps another of its own" },
	{ "a", REC(",\"prefixes\":[\"10.1.0.0/16\",\"10.1.0.0/16\"]"), "prefix \"10.1.0.0/16\" overlaps another of its own" },
	{ "a", REC(",\"prefixes\":[\"0.0.0.0/0\",\"::/0\"]"), NULL }, /* families never overlap */
	{ "a", REC(",\"cipher\":\"aes128gcm\""), "cipher \"aes128gcm\" is not aes256gcm or chacha20poly1305" },
	{ "a", REC(",\"cipher\":\"AES256GCM\""), "cipher \"AES256GCM\" is not aes256gcm or chacha20poly1305" },
	/* A rotation's fields. */
	{ "a", REC(",\"next_public_key\":\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\""), NULL },
	{ "a", REC(",\"next_public_key\":\"abc\""), "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":7"), "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":[]"), "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0\""),
	  "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\""),
	  "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":\"%1$s\""), "next_public_key is its public_key" },
	/* The public key is judged first, then the next one, then the rest. */
	{ "a", "{\"version\":1,\"node\":\"a\",\"public_key\":\"x\",\"next_public_key\":\"y\"}",
	  "public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"next_public_key\":\"y\",\"key_since\":-1,\"endpoints\":[\"nope\"]"),
	  "next_public_key is not a base64 key of 32 bytes" },
	{ "a", REC(",\"key_since\":-1,\"endpoints\":[\"nope\"]"), "key_since is not a time (seconds since 1970)" },
	{ "a", REC(",\"key_since\":1764754512"), NULL },
	{ "a", REC(",\"key_since\":\"1764754512\""), "key_since is not a time (seconds since 1970)" },
	{ "a", REC(",\"key_since\":1764754512.5"), "key_since is not a time (seconds since 1970)" },
	{ "a", REC(",\"key_since\":true"), "key_since is not a time (seconds since 1970)" },
};

static void test_parse_refused(void **state)
{
	char json[1024], why[MESH_WHY_LEN];
	struct mesh_record r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *t = &refusals[i];
		int ret;

		snprintf(json, sizeof(json), t->json, k1);
		memset(&r, 0x5a, sizeof(r));
		memset(why, 0x5a, sizeof(why));
		ret = mesh_record_parse(&r, t->node, json, strlen(json), why, sizeof(why));
		if (!t->why) {
			if (ret)
				fail_msg("row %zu: refused: %s (%s)", i, why, json);
			mesh_record_free(&r);
			continue;
		}
		if (ret != -EINVAL || strcmp(why, t->why))
			fail_msg("row %zu: %d \"%s\", want \"%s\" (%s)", i, ret, why, t->why, json);
		assert_empty(&r); /* nothing half-parsed */
	}
}

/* Sizes: MESH_RECORD_MAX bytes are read, one more is not; 256 prefixes, 257 not. */
static void test_parse_sizes(void **state)
{
	char *json = malloc(MESH_RECORD_MAX + 64), why[MESH_WHY_LEN], small[8];
	struct mesh_record r;
	size_t n, i;

	(void)state;
	assert_non_null(json);
	n = (size_t)snprintf(json, MESH_RECORD_MAX, REC(",\"pad\":\""), k1);
	memset(json + n, 'x', MESH_RECORD_MAX - n - 2);
	memcpy(json + MESH_RECORD_MAX - 2, "\"}", 2);
	assert_int_equal(mesh_record_parse(&r, "a", json, MESH_RECORD_MAX, why, sizeof(why)), 0);
	mesh_record_free(&r);
	memmove(json + n + 1, json + n, MESH_RECORD_MAX - n);
	assert_int_equal(mesh_record_parse(&r, "a", json, MESH_RECORD_MAX + 1, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "larger than 16384 bytes");

	/* 256 prefixes of 10.0.X.0/24, then one more. */
	n = (size_t)snprintf(json, MESH_RECORD_MAX, REC(",\"prefixes\":["), k1) - 1;
	for (i = 0; i < MESH_PREFIXES_MAX; i++)
		n += (size_t)snprintf(json + n, MESH_RECORD_MAX - n, "%s\"10.0.%zu.0/24\"", i ? "," : "", i);
	n += (size_t)snprintf(json + n, MESH_RECORD_MAX - n, "]}");
	assert_int_equal(mesh_record_parse(&r, "a", json, n, why, sizeof(why)), 0);
	assert_int_equal(r.n_prefixes, MESH_PREFIXES_MAX);
	mesh_record_free(&r);
	n -= 2;
	n += (size_t)snprintf(json + n, MESH_RECORD_MAX - n, ",\"10.1.0.0/24\"]}");
	assert_int_equal(mesh_record_parse(&r, "a", json, n, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "prefixes is not a list of at most 256 prefixes");

	/* A long endpoint is quoted cut short; one past MESH_ENDPOINT_LEN is refused. */
	n = (size_t)snprintf(json, MESH_RECORD_MAX, REC(",\"endpoints\":[\""), k1) - 1;
	memset(json + n, 'h', MESH_ENDPOINT_LEN - 3);
	n += MESH_ENDPOINT_LEN - 3;
	n += (size_t)snprintf(json + n, MESH_RECORD_MAX - n, ":1\"]}");
	assert_int_equal(mesh_record_parse(&r, "a", json, n, why, sizeof(why)), 0);
	assert_int_equal(strlen(r.endpoint), MESH_ENDPOINT_LEN - 1);
	mesh_record_free(&r);
	memmove(json + n - 4, json + n - 5, 5);
	json[n - 5] = 'h';
	assert_int_equal(mesh_record_parse(&r, "a", json, n + 1, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "endpoint \"hhhhhhhhhhhhhhhhhhhhhhhhhhhh...\" is not host:port or [address]:port");

	/* A reason is cut to the room it is given, and the text need not end in NUL. */
	assert_int_equal(mesh_record_parse(&r, "a", "[]", 2, small, sizeof(small)), -EINVAL);
	assert_string_equal(small, "not a J");
	free(json);
}

/* ---- format, copy, equal ------------------------------------------------------------------------ */

static void test_format(void **state)
{
	static const char text[] =
		"{\"version\":1,\"node\":\"a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
		"\"endpoints\":[\"[2001:db8::1]:51820\"],\"prefixes\":[\"10.1.0.0/24\",\"fd00::/64\"],"
		"\"cipher\":\"aes256gcm\"}";
	static const char longer[] =
		"{\"version\":1,\"node\":\"a\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
		"\"endpoints\":[\"[2001:db8::1]:51820\",\"h:1\"],"
		"\"prefixes\":[\"10.1.0.0/24\",\"fd00:0:0:0::/64\"],\"cipher\":\"aes256gcm\"}";
	struct mesh_record r, back;
	char why[MESH_WHY_LEN], bare[256], *out;

	(void)state;
	assert_int_equal(mesh_record_parse(&r, "a", text, strlen(text), why, sizeof(why)), 0);
	out = mesh_record_format(&r);
	assert_non_null(out);
	assert_string_equal(out, text); /* the agent writes exactly what it reads back */
	free(out);
	/* Written the long way, read the same, written the short way. */
	assert_int_equal(mesh_record_parse(&back, "a", longer, strlen(longer), why, sizeof(why)), 0);
	assert_true(mesh_record_equal(&r, &back));
	mesh_record_free(&back);
	mesh_record_free(&r);
	/* Nothing but a key. */
	snprintf(bare, sizeof(bare), "{\"version\":1,\"node\":\"b\",\"public_key\":\"%s\"}", k1);
	assert_int_equal(mesh_record_parse(&r, "b", bare, strlen(bare), why, sizeof(why)), 0);
	out = mesh_record_format(&r);
	assert_string_equal(out, "{\"version\":1,\"node\":\"b\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
				 "\"endpoints\":[],\"prefixes\":[],\"cipher\":\"chacha20poly1305\"}");
	free(out);
	mesh_record_free(&r);

	/* A rotation's fields come last, and only when there are some. */
	snprintf(bare, sizeof(bare), "{\"version\":1,\"node\":\"b\",\"public_key\":\"%s\",\"next_public_key\":\"%s\","
		 "\"key_since\":1764754512}", k1, k2);
	assert_int_equal(mesh_record_parse(&r, "b", bare, strlen(bare), why, sizeof(why)), 0);
	out = mesh_record_format(&r);
	assert_non_null(out);
	assert_string_equal(out, "{\"version\":1,\"node\":\"b\",\"public_key\":\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\","
				 "\"endpoints\":[],\"prefixes\":[],\"cipher\":\"chacha20poly1305\","
				 "\"next_public_key\":\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\",\"key_since\":1764754512}");
	assert_int_equal(mesh_record_parse(&back, "b", out, strlen(out), why, sizeof(why)), 0);
	assert_true(mesh_record_equal(&r, &back));
	free(out);
	mesh_record_free(&back);
	mesh_record_free(&r);
}

/* A random record that parses: distinct /24s and /64s, perhaps an endpoint. */
static void random_record(struct test_rng_state *rng, struct mesh_record *r, char *name)
{
	uint64_t v = test_rng_next(rng);
	size_t i, n = v % 6;

	memset(r, 0, sizeof(*r));
	snprintf(r->node, sizeof(r->node), "%s", name);
	test_rng_fill(rng, r->public_key, 32);
	r->public_key[0] |= 1;
	r->cipher = (v >> 8) & 1 ? CIPHER_AES256GCM : CIPHER_DEFAULT;
	if ((v >> 9) & 1)
		snprintf(r->endpoint, sizeof(r->endpoint), "[2001:db8::%x]:%u", (unsigned int)(v >> 16) & 0xffff,
			 (unsigned int)(v >> 32) % 65535 + 1);
	else if ((v >> 10) & 1)
		snprintf(r->endpoint, sizeof(r->endpoint), "n%u.example:51820", (unsigned int)(v >> 16) & 0xff);
	/* Now and then a rotation under way, and a key's age. */
	if ((v >> 11) & 1) {
		r->has_next = true;
		memcpy(r->next_public_key, r->public_key, 32);
		r->next_public_key[31] ^= 0x80;
	}
	if ((v >> 12) & 1)
		r->key_since = (int64_t)(v >> 20) & 0xffffffffLL;
	r->prefixes = n ? calloc(n, sizeof(*r->prefixes)) : NULL;
	for (i = 0; i < n; i++) {
		struct conf_prefix *p = &r->prefixes[r->n_prefixes++];

		if (i % 2 == 0) {
			p->family = AF_INET;
			p->addr[0] = 10;
			p->addr[1] = (uint8_t)(v >> 40);
			p->addr[2] = (uint8_t)i;
			p->cidr = 24;
		} else {
			p->family = AF_INET6;
			p->addr[0] = 0xfd;
			p->addr[7] = (uint8_t)i;
			p->cidr = 64;
		}
	}
}

/* format and parse are inverses on random records. */
static void test_format_random(void **state)
{
	struct test_rng_state rng = { 0x6d657368ULL };
	struct mesh_record r, back;
	char why[MESH_WHY_LEN], *out;
	int round;

	(void)state;
	for (round = 0; round < 500; round++) {
		random_record(&rng, &r, "node-x");
		out = mesh_record_format(&r);
		assert_non_null(out);
		if (mesh_record_parse(&back, "node-x", out, strlen(out), why, sizeof(why)))
			fail_msg("round %d: %s: %s", round, out, why);
		assert_true(mesh_record_equal(&r, &back));
		free(out);
		mesh_record_free(&back);
		mesh_record_free(&r);
	}
}

static void test_equal_and_copy(void **state)
{
	struct test_rng_state rng = { 42 };
	struct mesh_record a, b, c;

	(void)state;
	random_record(&rng, &a, "a");
	while (a.n_prefixes < 2) {
		mesh_record_free(&a);
		random_record(&rng, &a, "a");
	}
	memset(&b, 0, sizeof(b));
	assert_int_equal(mesh_record_copy(&b, &a), 0);
	assert_true(mesh_record_equal(&a, &b));
	assert_ptr_not_equal(a.prefixes, b.prefixes); /* its own copy */
	/* Copying over a record frees what it held. */
	random_record(&rng, &c, "c");
	assert_int_equal(mesh_record_copy(&c, &a), 0);
	assert_true(mesh_record_equal(&c, &a));

	b.public_key[5] ^= 1;
	assert_false(mesh_record_equal(&a, &b));
	b.public_key[5] ^= 1;
	snprintf(b.endpoint, sizeof(b.endpoint), "%s", "other:1");
	assert_false(mesh_record_equal(&a, &b));
	snprintf(b.endpoint, sizeof(b.endpoint), "%s", a.endpoint);
	b.cipher = a.cipher == CIPHER_DEFAULT ? CIPHER_AES256GCM : CIPHER_DEFAULT;
	assert_false(mesh_record_equal(&a, &b));
	b.cipher = a.cipher;
	b.prefixes[1].cidr--;
	assert_false(mesh_record_equal(&a, &b));
	b.prefixes[1].cidr++;
	b.n_prefixes--;
	assert_false(mesh_record_equal(&a, &b));
	b.n_prefixes++;
	/* The same set in another order is another record: the order is written. */
	c.prefixes[0] = a.prefixes[1];
	c.prefixes[1] = a.prefixes[0];
	assert_false(mesh_record_equal(&a, &c));
	snprintf(b.node, sizeof(b.node), "b");
	assert_false(mesh_record_equal(&a, &b));
	snprintf(b.node, sizeof(b.node), "a");
	assert_true(mesh_record_equal(&a, &b));
	/* A rotation's fields: announced or not, which key, and the key's age. */
	b.has_next = !a.has_next;
	assert_false(mesh_record_equal(&a, &b));
	b.has_next = true;
	a.has_next = true;
	memset(a.next_public_key, 7, 32);
	memset(b.next_public_key, 7, 32);
	assert_true(mesh_record_equal(&a, &b));
	b.next_public_key[31] ^= 1;
	assert_false(mesh_record_equal(&a, &b));
	b.has_next = a.has_next = false; /* without one, what the field holds does not count */
	assert_true(mesh_record_equal(&a, &b));
	b.key_since = a.key_since + 1;
	assert_false(mesh_record_equal(&a, &b));
	b.key_since = a.key_since;
	a.has_next = true;
	assert_int_equal(mesh_record_copy(&b, &a), 0);
	assert_true(b.has_next);
	assert_memory_equal(b.next_public_key, a.next_public_key, 32);
	assert_true(mesh_record_equal(&a, &b));
	mesh_record_free(&a);
	mesh_record_free(&b);
	mesh_record_free(&c);
}

static void test_helpers(void **state)
{
	struct sockaddr_storage ss;
	struct conf_prefix p;
	uint8_t k[32];
	char fp[12];

	(void)state;
	assert_int_equal(conf_parse_key(k1, k), 0);
	mesh_fingerprint(k, fp);
	assert_string_equal(fp, "xTIBA5rboUv");
	assert_int_equal(conf_parse_prefix("0.0.0.0/0", &p), 0);
	assert_true(mesh_prefix_default(&p));
	assert_int_equal(conf_parse_prefix("::/0", &p), 0);
	assert_true(mesh_prefix_default(&p));
	assert_int_equal(conf_parse_prefix("128.0.0.0/1", &p), 0);
	assert_false(mesh_prefix_default(&p));

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "198.18.0.1", &((struct sockaddr_in *)&ss)->sin_addr), 1);
	assert_int_equal(conf_parse_prefix("198.18.0.0/31", &p), 0);
	assert_true(mesh_prefix_holds(&p, &ss));
	assert_int_equal(conf_parse_prefix("198.18.0.2/31", &p), 0);
	assert_false(mesh_prefix_holds(&p, &ss));
	assert_int_equal(conf_parse_prefix("::ffff:198.18.0.1/128", &p), 0);
	assert_false(mesh_prefix_holds(&p, &ss)); /* families apart */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
	assert_int_equal(conf_parse_prefix("2001:db8::/127", &p), 0);
	assert_true(mesh_prefix_holds(&p, &ss));
	ss.ss_family = AF_UNIX;
	assert_false(mesh_prefix_holds(&p, &ss));
}

/* ---- the policy ------------------------------------------------------------------------------------ */

static void test_policy(void **state)
{
	static const struct {
		const char *json;
		const char *why; /* NULL: parses */
	} rows[] = {
		{ "{\"version\":1,\"exit_nodes\":[\"gw\",\"gw-2.b_c\"]}", NULL },
		{ "{\"version\":1}", NULL },
		{ "{}", NULL },
		{ "{\"version\":1,\"exit_nodes\":[]}", NULL },
		{ "[]", "the policy is not a JSON object" },
		{ "", "the policy is not a JSON object" },
		{ "{\"exit_nodes\":[],\"exit_nodes\":[]}", "the policy is not a JSON object" },
		{ "{\"exit_nodes\":\"gw\"}", "the policy's exit_nodes is not a list of node names" },
		{ "{\"exit_nodes\":{}}", "the policy's exit_nodes is not a list of node names" },
		{ "{\"exit_nodes\":[\"gw\",\"a/b\"]}", "the policy's exit_nodes holds something that is not a node name" },
		{ "{\"exit_nodes\":[\"gw\",1]}", "the policy's exit_nodes holds something that is not a node name" },
		{ "{\"exit_nodes\":[\"\"]}", "the policy's exit_nodes holds something that is not a node name" },
	};
	struct mesh_policy p;
	char why[MESH_WHY_LEN], *big;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = mesh_policy_parse(&p, rows[i].json, strlen(rows[i].json), why, sizeof(why));

		if (!rows[i].why) {
			if (ret)
				fail_msg("row %zu: refused: %s", i, why);
			mesh_policy_free(&p);
			continue;
		}
		if (ret != -EINVAL || strcmp(why, rows[i].why))
			fail_msg("row %zu: %d \"%s\", want \"%s\"", i, ret, why, rows[i].why);
		assert_null(p.exit_nodes);
		assert_int_equal(p.n_exit_nodes, 0);
	}
	assert_int_equal(mesh_policy_parse(&p, rows[0].json, strlen(rows[0].json), why, sizeof(why)), 0);
	assert_int_equal(p.n_exit_nodes, 2);
	assert_true(mesh_policy_exit(&p, "gw"));
	assert_true(mesh_policy_exit(&p, "gw-2.b_c"));
	assert_false(mesh_policy_exit(&p, "GW"));
	assert_false(mesh_policy_exit(&p, "g"));
	mesh_policy_free(&p);
	assert_false(mesh_policy_exit(&p, "gw")); /* an empty policy names no exit */

	big = malloc(MESH_RECORD_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', MESH_RECORD_MAX + 1);
	memcpy(big, "{}", 2);
	assert_int_equal(mesh_policy_parse(&p, big, MESH_RECORD_MAX, why, sizeof(why)), 0);
	mesh_policy_free(&p);
	assert_int_equal(mesh_policy_parse(&p, big, MESH_RECORD_MAX + 1, why, sizeof(why)), -EINVAL);
	free(big);
}

/* Revocations: a key's name under revoked/keys/, and the lists revoked/ keys fill. */
static void test_revocations(void **state)
{
	static const char *const bad_names[] = {
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", /* base64 with padding */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D",   /* 42 characters */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dgx", /* 44 */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D/",  /* not base64url */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D+",
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D.",
		"",
	};
	struct mesh_policy p = { 0 };
	uint8_t k[32], back[32], other[32];
	char name[44];
	size_t i;
	int round;

	(void)state;
	/* The name is the key's base64url without padding: never a '/' that would make a deeper key. */
	assert_int_equal(conf_parse_key(k2, k), 0);
	mesh_key_name(k, name);
	assert_string_equal(name, "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi-y71lOWWXX0");
	assert_int_equal(mesh_key_from_name(name, back), 0);
	assert_memory_equal(back, k, 32);
	for (round = 0; round < 200; round++) {
		randombytes_buf(k, 32);
		mesh_key_name(k, name);
		assert_int_equal(strlen(name), 43);
		assert_null(strpbrk(name, "/+="));
		assert_int_equal(mesh_key_from_name(name, back), 0);
		assert_memory_equal(back, k, 32);
	}
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		if (mesh_key_from_name(bad_names[i], back) != -EINVAL)
			fail_msg("\"%s\" read as a key's name", bad_names[i]);

	/* Keys: added once, taken away, and the others stay. */
	assert_int_equal(conf_parse_key(k1, k), 0);
	assert_int_equal(conf_parse_key(k2, other), 0);
	assert_false(mesh_policy_key_revoked(&p, k));
	assert_int_equal(mesh_policy_revoke_key(&p, k, true), 0);
	assert_int_equal(mesh_policy_revoke_key(&p, k, true), 0);
	assert_int_equal(p.n_revoked_keys, 1);
	assert_true(mesh_policy_key_revoked(&p, k));
	assert_false(mesh_policy_key_revoked(&p, other));
	assert_int_equal(mesh_policy_revoke_key(&p, other, true), 0);
	for (round = 0; round < 5; round++) {
		key_bin((unsigned int)round + 1, back);
		assert_int_equal(mesh_policy_revoke_key(&p, back, true), 0);
	}
	assert_int_equal(p.n_revoked_keys, 7);
	assert_int_equal(mesh_policy_revoke_key(&p, k, false), 0); /* the first of the list */
	assert_int_equal(mesh_policy_revoke_key(&p, k, false), 0); /* no longer there */
	assert_int_equal(p.n_revoked_keys, 6);
	assert_false(mesh_policy_key_revoked(&p, k));
	assert_true(mesh_policy_key_revoked(&p, other));
	for (round = 0; round < 5; round++) {
		key_bin((unsigned int)round + 1, back);
		assert_true(mesh_policy_key_revoked(&p, back));
	}
	key_bin(5, back);
	assert_int_equal(mesh_policy_revoke_key(&p, back, false), 0); /* the last */
	assert_false(mesh_policy_key_revoked(&p, back));
	key_bin(4, back);
	assert_true(mesh_policy_key_revoked(&p, back));
	assert_int_equal(p.n_revoked_keys, 5);

	/* Names, exactly (no case folding, no prefix). */
	assert_false(mesh_policy_node_revoked(&p, "site-a"));
	assert_int_equal(mesh_policy_revoke_node(&p, "site-a", true), 0);
	assert_int_equal(mesh_policy_revoke_node(&p, "site-a", true), 0);
	assert_int_equal(mesh_policy_revoke_node(&p, "site-b", true), 0);
	assert_int_equal(mesh_policy_revoke_node(&p, "site-c", true), 0);
	assert_int_equal(p.n_revoked_nodes, 3);
	assert_true(mesh_policy_node_revoked(&p, "site-a"));
	assert_false(mesh_policy_node_revoked(&p, "Site-a"));
	assert_false(mesh_policy_node_revoked(&p, "site-"));
	assert_false(mesh_policy_node_revoked(&p, "site-ab"));
	assert_int_equal(mesh_policy_revoke_node(&p, "site-a", false), 0);
	assert_int_equal(mesh_policy_revoke_node(&p, "site-z", false), 0);
	assert_int_equal(p.n_revoked_nodes, 2);
	assert_false(mesh_policy_node_revoked(&p, "site-a"));
	assert_true(mesh_policy_node_revoked(&p, "site-b"));
	assert_true(mesh_policy_node_revoked(&p, "site-c"));
	/* Revocations are no exit, and a policy freed holds none. */
	assert_false(mesh_policy_exit(&p, "site-b"));
	mesh_policy_free(&p);
	assert_int_equal(p.n_revoked_keys, 0);
	assert_int_equal(p.n_revoked_nodes, 0);
	assert_false(mesh_policy_key_revoked(&p, other));
	assert_false(mesh_policy_node_revoked(&p, "site-b"));
}

/* ---- the decision, case by case ------------------------------------------------------------------ */

struct dnode {
	const char *name;        /* NULL ends the list */
	int64_t created;         /* etcd's create_revision */
	unsigned int key;
	const char *prefixes;    /* the latest record's; NULL (and no raw): the key is gone */
	const char *raw;         /* instead: a value that is not a good record */
	unsigned int applied_key; /* non-zero: this agent applied a record before, with this key */
	const char *applied;     /* and these prefixes */
	unsigned int next;       /* non-zero: the latest record announces this key as its next */
};

struct dwant {
	enum mesh_verdict verdict;
	const char *why;
	const char *use;
};

struct dcase {
	const char *what;
	struct dnode nodes[4];
	struct dwant want[4];
	const char *exits;      /* the policy's exit nodes, space-separated */
	const char *own;        /* this node's Advertise */
	const char *static_ips; /* the file's one [Peer] (KEY_STATIC, line 7): its AllowedIPs */
	const char *registry;   /* the registry members' addresses */
	const char *revoked_keys;  /* key numbers revoked (revoked/keys/), space-separated */
	const char *revoked_nodes; /* node names revoked (revoked/nodes/) */
};

#define ACC(use) { MESH_ACCEPTED, "", use }
#define NONE(why) { MESH_NONE, why, "" }
#define KEPT(why, use) { MESH_KEPT, why, use }

static const struct dcase dcases[] = {
	{ "the older of two overlapping records",
	  { { "a", 5, 1, "10.1.0.0/24" }, { "b", 3, 2, "10.1.0.0/16" } },
	  { NONE("prefix 10.1.0.0/24 overlaps node b's, registered before it"), ACC("10.1.0.0/16") } },
	{ "the same creation revision: the name decides",
	  { { "b", 3, 1, "10.1.0.0/24" }, { "a", 3, 2, "10.1.0.0/24 fd00::/64" } },
	  { NONE("prefix 10.1.0.0/24 overlaps node a's, registered before it"), ACC("10.1.0.0/24 fd00::/64") } },
	{ "a duplicate key",
	  { { "b", 4, 1, "10.2.0.0/24" }, { "a", 2, 1, "10.1.0.0/24" } },
	  { NONE("its public key is node a's, registered before it"), ACC("10.1.0.0/24") } },
	{ "a refused record holds nothing back",
	  { { "a", 1, 1, "10.1.0.0/16" }, { "b", 2, 1, "10.2.0.0/16" }, { "c", 3, 3, "10.2.0.0/24" } },
	  { ACC("10.1.0.0/16"), NONE("its public key is node a's, registered before it"), ACC("10.2.0.0/24") } },
	{ "families never overlap; neither do neighbours",
	  { { "a", 1, 1, "10.0.0.0/8" }, { "b", 2, 2, "::ffff:10.0.0.0/104 11.0.0.0/8" } },
	  { ACC("10.0.0.0/8"), ACC("::ffff:10.0.0.0/104 11.0.0.0/8") } },
	{ "a default route without the policy's leave",
	  { { "gw", 1, 1, "0.0.0.0/0" }, { "gw6", 2, 2, "::/0" } },
	  { NONE("prefix 0.0.0.0/0 is a default route and the policy names no such exit node"),
	    NONE("prefix ::/0 is a default route and the policy names no such exit node") },
	  .exits = "other" },
	{ "an exit's default route beside everyone's prefixes",
	  { { "gw", 1, 1, "0.0.0.0/0 ::/0" }, { "a", 2, 2, "10.1.0.0/24 fd00::/64" } },
	  { ACC("0.0.0.0/0 ::/0"), ACC("10.1.0.0/24 fd00::/64") },
	  .exits = "gw", .own = "10.9.0.0/24 fd09::/64", .static_ips = "10.8.0.0/16", .registry = "198.18.0.1" },
	{ "two exits: the older default route",
	  { { "gw1", 1, 1, "0.0.0.0/0" }, { "gw2", 2, 2, "::/0 0.0.0.0/0" } },
	  { ACC("0.0.0.0/0"), NONE("prefix 0.0.0.0/0 overlaps node gw1's, registered before it") },
	  .exits = "gw1 gw2" },
	{ "this node is an exit: others' prefixes, but not another default route",
	  { { "a", 1, 1, "10.1.0.0/24" }, { "gw", 2, 2, "0.0.0.0/0" } },
	  { ACC("10.1.0.0/24"), NONE("prefix 0.0.0.0/0 overlaps this node's own Advertise") },
	  .exits = "gw me", .own = "0.0.0.0/0" },
	{ "a static full-tunnel peer and an exit",
	  { { "gw", 1, 1, "::/0" }, { "a", 2, 2, "fd00::/64" } },
	  { NONE("prefix ::/0 overlaps a static [Peer]'s AllowedIPs (line 7)"), ACC("fd00::/64") },
	  .exits = "gw", .static_ips = "::/0" },
	{ "a registry member's address",
	  { { "a", 1, 1, "198.18.0.0/16" }, { "b", 2, 2, "2001:db8::/32" }, { "c", 3, 3, "198.19.0.0/16" } },
	  { NONE("prefix 198.18.0.0/16 holds a registry member's address"),
	    NONE("prefix 2001:db8::/32 holds a registry member's address"), ACC("198.19.0.0/16") },
	  .registry = "198.18.0.1 2001:db8::1" },
	{ "an exit's default route holds the registry, and may",
	  { { "gw", 1, 1, "0.0.0.0/0" } }, { ACC("0.0.0.0/0") }, .exits = "gw", .registry = "198.18.0.1" },
	{ "this node's own key",
	  { { "a", 1, KEY_SELF, "10.1.0.0/24" } }, { NONE("its public key is this node's own") } },
	{ "this node's Advertise",
	  { { "a", 1, 1, "10.9.0.0/16" }, { "b", 2, 2, "10.9.2.0/24" } },
	  { NONE("prefix 10.9.0.0/16 overlaps this node's own Advertise"),
	    NONE("prefix 10.9.2.0/24 overlaps this node's own Advertise") },
	  .own = "10.9.1.0/24 10.9.2.0/24" },
	{ "a static peer's key and AllowedIPs",
	  { { "a", 1, KEY_STATIC, "10.1.0.0/24" }, { "b", 2, 2, "10.8.3.0/24" } },
	  { NONE("its public key is a static [Peer]'s (line 7)"),
	    NONE("prefix 10.8.3.0/24 overlaps a static [Peer]'s AllowedIPs (line 7)") },
	  .static_ips = "10.8.0.0/16" },
	{ "this node's own record",
	  { { "me", 1, KEY_SELF, "10.9.0.0/16" }, { "a", 2, 1, "10.9.0.0/24" } },
	  { { MESH_SELF, "", "" }, NONE("prefix 10.9.0.0/24 overlaps this node's own Advertise") },
	  .own = "10.9.0.0/16" },
	{ "a record that does not parse",
	  { { "a", 1, 1, NULL, "{\"version\":2}" }, { "b", 2, 2, "10.1.0.0/24" } },
	  { NONE("version 2 is newer than this agent reads (1)"), ACC("10.1.0.0/24") } },
	{ "a refused update keeps the record applied",
	  { { "b", 1, 2, "10.2.0.0/16" }, { "a", 5, 1, "10.2.0.0/24", NULL, 1, "10.1.0.0/24" } },
	  { ACC("10.2.0.0/16"), KEPT("prefix 10.2.0.0/24 overlaps node b's, registered before it", "10.1.0.0/24") } },
	{ "kept, less what others now hold",
	  { { "b", 1, 2, "10.3.0.0/16" },
	    { "a", 5, 1, "10.3.0.0/24", NULL, 1, "10.1.0.0/24 10.3.0.0/25 10.9.0.0/24 198.18.0.0/24 ::/0" } },
	  { ACC("10.3.0.0/16"), KEPT("prefix 10.3.0.0/24 overlaps node b's, registered before it", "10.1.0.0/24") },
	  .own = "10.9.0.0/16", .registry = "198.18.0.1" },
	{ "kept when the update does not parse",
	  { { "a", 1, 1, NULL, "{\"version\":1,\"node\":\"a\",\"public_key\":\"x\"}", 1, "10.1.0.0/24" } },
	  { KEPT("public_key is not a base64 key of 32 bytes", "10.1.0.0/24") } },
	{ "a kept record yields its prefixes to a later accepted one",
	  { { "b", 1, 2, "10.2.0.0/16" }, { "a", 5, 1, "10.2.0.0/24", NULL, 1, "10.1.0.0/24" },
	    { "c", 6, 3, "10.1.0.0/24" } },
	  { ACC("10.2.0.0/16"), KEPT("prefix 10.2.0.0/24 overlaps node b's, registered before it", ""),
	    ACC("10.1.0.0/24") } },
	{ "not kept when an accepted record holds its key",
	  { { "c", 2, 3, "10.3.0.0/24" }, { "a", 5, 1, "10.3.0.0/16", NULL, 3, "10.1.0.0/24" } },
	  { ACC("10.3.0.0/24"), NONE("prefix 10.3.0.0/16 overlaps node c's, registered before it") } },
	{ "not kept when its key is now a static peer's",
	  { { "a", 1, KEY_STATIC, "10.1.0.0/24", NULL, KEY_STATIC, "10.1.0.0/24" } },
	  { NONE("its public key is a static [Peer]'s (line 7)") }, .static_ips = "10.8.0.0/16" },
	{ "not kept when its key is now this node's",
	  { { "a", 1, KEY_SELF, "10.1.0.0/24", NULL, KEY_SELF, "10.1.0.0/24" } },
	  { NONE("its public key is this node's own") } },
	{ "two kept records: the older keeps the route",
	  { { "b", 2, 2, NULL, "{}", 2, "10.1.0.0/24 10.2.0.0/24" }, { "a", 1, 1, NULL, "{}", 1, "10.1.0.0/24" } },
	  { KEPT("no version (a number)", "10.2.0.0/24"), KEPT("no version (a number)", "10.1.0.0/24") } },
	{ "two kept records: the older keeps the key",
	  { { "b", 2, 1, NULL, "{}", 1, "10.2.0.0/24" }, { "a", 1, 1, NULL, "{}", 1, "10.1.0.0/24" } },
	  { NONE("no version (a number)"), KEPT("no version (a number)", "10.1.0.0/24") } },
	{ "a deleted node",
	  { { "a", 1, 1, NULL, NULL, 1, "10.1.0.0/24" }, { "b", 2, 2, "10.1.0.0/24" } },
	  { NONE(""), ACC("10.1.0.0/24") } },
	/* Rotation and revocation (issue 14). */
	{ "a revoked key, a revoked next key",
	  { { "a", 1, 1, "10.1.0.0/24" }, { "b", 2, 2, "10.2.0.0/24", NULL, 0, NULL, 3 }, { "c", 3, 4, "10.3.0.0/24" } },
	  { NONE("its public key is revoked"), NONE("its next public key is revoked"), ACC("10.3.0.0/24") },
	  .revoked_keys = "1 3" },
	{ "a revoked name, whatever its key",
	  { { "a", 1, 5, "10.1.0.0/24" }, { "b", 2, 2, "10.2.0.0/24" } },
	  { NONE("node a is revoked (an administrator's veilctl mesh admit lets it back)"), ACC("10.2.0.0/24") },
	  .revoked_nodes = "a" },
	{ "a revoked record holds nothing back",
	  { { "a", 1, 1, "10.1.0.0/24" }, { "b", 2, 2, "10.1.0.0/24" }, { "c", 3, 3, "10.3.0.0/24", NULL, 0, NULL, 1 } },
	  { NONE("its public key is revoked"), ACC("10.1.0.0/24"), NONE("its next public key is revoked") },
	  .revoked_keys = "1" },
	{ "a revoked key's record applied before is not kept",
	  { { "a", 1, 1, "10.1.0.0/24", NULL, 1, "10.1.0.0/24" } },
	  { NONE("its public key is revoked") }, .revoked_keys = "1" },
	{ "a revoked name's record applied before is not kept, whatever the key",
	  { { "a", 1, 2, "10.1.0.0/24", NULL, 1, "10.1.0.0/24" } },
	  { NONE("node a is revoked (an administrator's veilctl mesh admit lets it back)") }, .revoked_nodes = "a" },
	{ "not kept when the key applied before is revoked, though refused for another reason",
	  { { "b", 1, 2, "10.2.0.0/16" }, { "a", 5, 3, "10.2.0.0/24", NULL, 1, "10.1.0.0/24" } },
	  { ACC("10.2.0.0/16"), NONE("prefix 10.2.0.0/24 overlaps node b's, registered before it") },
	  .revoked_keys = "1" },
	{ "a node rotated away from a revoked key is accepted",
	  { { "a", 1, 2, "10.1.0.0/24", NULL, 1, "10.1.0.0/24" } }, { ACC("10.1.0.0/24") }, .revoked_keys = "1" },
	{ "a rotating node is one peer, with both keys its own",
	  { { "a", 1, 1, "10.1.0.0/24", NULL, 1, "10.1.0.0/24", 2 }, { "b", 2, 3, "10.2.0.0/24" } },
	  { ACC("10.1.0.0/24"), ACC("10.2.0.0/24") } },
	{ "a next key that is a later node's key",
	  { { "a", 1, 1, "10.1.0.0/24", NULL, 0, NULL, 2 }, { "b", 2, 2, "10.2.0.0/24" } },
	  { ACC("10.1.0.0/24"), NONE("a key it rotates to or from is node a's, registered before it") } },
	{ "a next key that an older node holds",
	  { { "b", 1, 2, "10.2.0.0/24" }, { "a", 2, 1, "10.1.0.0/24", NULL, 0, NULL, 2 } },
	  { ACC("10.2.0.0/24"), NONE("a key it rotates to or from is node b's, registered before it") } },
	{ "two nodes rotating to one key",
	  { { "a", 1, 1, "10.1.0.0/24", NULL, 0, NULL, 3 }, { "b", 2, 2, "10.2.0.0/24", NULL, 0, NULL, 3 } },
	  { ACC("10.1.0.0/24"), NONE("a key it rotates to or from is node a's, registered before it") } },
	{ "a next key that is this node's, or a static peer's",
	  { { "a", 1, 1, "10.1.0.0/24", NULL, 0, NULL, KEY_SELF }, { "b", 2, 2, "10.2.0.0/24", NULL, 0, NULL, KEY_STATIC } },
	  { NONE("its next public key is this node's own"), NONE("its next public key is a static [Peer]'s (line 7)") } },
	{ "not kept when its key is an accepted node's next",
	  { { "c", 2, 3, "10.3.0.0/24", NULL, 0, NULL, 4 }, { "a", 5, 1, "10.3.0.0/16", NULL, 4, "10.1.0.0/24" } },
	  { ACC("10.3.0.0/24"), NONE("prefix 10.3.0.0/16 overlaps node c's, registered before it") } },
	{ "nothing at all", { { NULL } }, { { 0 } } },
};

/* This node's facts, as mesh_local points to them. */
struct facts {
	uint8_t key[32];
	struct conf_prefix own[8], ips[8];
	struct conf_peer peer;
	struct sockaddr_storage registry[4];
	struct mesh_policy policy;
	struct mesh_local l;
	/* The revocations again, for the reference: key numbers and names. */
	unsigned int revoked_keys[8];
	size_t n_revoked_keys;
	const char *revoked_nodes[16];
	size_t n_revoked_nodes;
};

static size_t prefixes_from(const char *list, struct conf_prefix *out, size_t cap)
{
	char copy[512], *tok, *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof(copy), "%s", list ? list : "");
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		assert_true(n < cap);
		assert_int_equal(conf_parse_prefix(tok, &out[n++]), 0);
	}
	return n;
}

static void facts_make(struct facts *f, const char *exits, const char *own, const char *ips, const char *registry)
{
	char json[512], copy[256], why[MESH_WHY_LEN], *tok, *save = NULL;
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	key_bin(KEY_SELF, f->key);
	f->l.node = "me";
	f->l.public_key = f->key;
	f->l.own = f->own;
	f->l.n_own = prefixes_from(own, f->own, 8);
	key_bin(KEY_STATIC, f->peer.public_key);
	f->peer.line = STATIC_LINE;
	f->peer.allowed_ips = f->ips;
	f->peer.n_allowed_ips = prefixes_from(ips, f->ips, 8);
	f->l.static_peers = &f->peer;
	f->l.n_static_peers = 1;
	snprintf(copy, sizeof(copy), "%s", registry ? registry : "");
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save), n++) {
		struct sockaddr_storage *ss = &f->registry[n];

		if (strchr(tok, ':')) {
			ss->ss_family = AF_INET6;
			assert_int_equal(inet_pton(AF_INET6, tok, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
		} else {
			ss->ss_family = AF_INET;
			assert_int_equal(inet_pton(AF_INET, tok, &((struct sockaddr_in *)ss)->sin_addr), 1);
		}
	}
	f->l.registry = f->registry;
	f->l.n_registry = n;
	/* The policy as the registry holds it: {"version":1,"exit_nodes":[...]}. */
	n = (size_t)snprintf(json, sizeof(json), "{\"version\":1,\"exit_nodes\":[");
	snprintf(copy, sizeof(copy), "%s", exits ? exits : "");
	save = NULL;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"%s\"", json[n - 1] == '[' ? "" : ",", tok);
	snprintf(json + n, sizeof(json) - n, "]}");
	assert_int_equal(mesh_policy_parse(&f->policy, json, strlen(json), why, sizeof(why)), 0);
}

/* The registry's revocations: key numbers and node names, space-separated. */
static void revoke_from(struct mesh_policy *p, const char *key_list, const char *names)
{
	char copy[256], *tok, *save = NULL;
	uint8_t k[32];

	snprintf(copy, sizeof(copy), "%s", key_list ? key_list : "");
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		key_bin((unsigned int)atoi(tok), k);
		assert_int_equal(mesh_policy_revoke_key(p, k, true), 0);
	}
	snprintf(copy, sizeof(copy), "%s", names ? names : "");
	save = NULL;
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		assert_int_equal(mesh_policy_revoke_node(p, tok, true), 0);
}

static void node_make(struct mesh_node *n, const struct dnode *d)
{
	char json[2048], why[MESH_WHY_LEN];

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", d->name);
	n->create_revision = d->created;
	n->mod_revision = d->created + 1;
	if (d->prefixes || d->raw) {
		if (d->raw)
			snprintf(json, sizeof(json), "%s", d->raw);
		else
			record_json_next(json, sizeof(json), d->name, d->key, d->next, d->prefixes);
		n->present = true;
		n->raw = strdup(json);
		n->parsed = mesh_record_parse(&n->latest, d->name, json, strlen(json), n->parse_error,
					      sizeof(n->parse_error)) == 0;
		if (!d->raw && !n->parsed)
			fail_msg("node %s: the table's record does not parse: %s", d->name, n->parse_error);
	}
	if (d->applied_key) {
		record_json(json, sizeof(json), d->name, d->applied_key, d->applied);
		if (mesh_record_parse(&n->current, d->name, json, strlen(json), why, sizeof(why)))
			fail_msg("node %s: the table's applied record does not parse: %s", d->name, why);
		n->applied = true;
		n->current_revision = d->created;
	}
}

static const char *verdict_text(enum mesh_verdict v)
{
	static const char *const names[] = { "NONE", "SELF", "ACCEPTED", "KEPT" };

	return names[v];
}

static void test_decide_cases(void **state)
{
	size_t i, j, n;

	(void)state;
	for (i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *t = &dcases[i];
		struct mesh_node nodes[4];
		struct facts f;
		char use[512];
		int pass;

		facts_make(&f, t->exits, t->own, t->static_ips, t->registry);
		revoke_from(&f.policy, t->revoked_keys, t->revoked_nodes);
		for (n = 0; n < 4 && t->nodes[n].name; n++)
			node_make(&nodes[n], &t->nodes[n]);
		/* Twice: a second decision starts afresh and comes to the same. */
		for (pass = 0; pass < 2; pass++) {
			assert_int_equal(mesh_decide(n ? nodes : NULL, n, &f.policy, &f.l), 0);
			for (j = 0; j < n; j++) {
				const struct dwant *w = &t->want[j];
				const struct mesh_node *got = &nodes[j];

				prefixes_text(got->use, got->n_use, use, sizeof(use));
				if (got->verdict != w->verdict || strcmp(got->why, w->why) || strcmp(use, w->use))
					fail_msg("%s: node %s: %s \"%s\" use \"%s\"; want %s \"%s\" use \"%s\"", t->what,
						 got->name, verdict_text(got->verdict), got->why, use,
						 verdict_text(w->verdict), w->why, w->use);
				/* The peer is the record its verdict names. */
				if (w->verdict == MESH_ACCEPTED)
					assert_ptr_equal(mesh_node_peer(got), &got->latest);
				else if (w->verdict == MESH_KEPT)
					assert_ptr_equal(mesh_node_peer(got), &got->current);
				else
					assert_null(mesh_node_peer(got));
			}
		}
		for (j = 0; j < n; j++)
			mesh_node_free(&nodes[j]);
		mesh_policy_free(&f.policy);
	}
}

/* ---- the decision against a naive reference ----------------------------------------------------------- */

/*
 * The rule, written the slow and obvious way: records in order of creation
 * revision, then name; each taken unless it contradicts this node's facts
 * or a record taken before it. Two prefixes contradict when they share an
 * address, bit by bit, and are both default routes or both not.
 */
static bool bit(const struct conf_prefix *p, unsigned int i)
{
	return (p->addr[i / 8] >> (7 - i % 8)) & 1;
}

static bool ref_overlap(const struct conf_prefix *a, const struct conf_prefix *b)
{
	unsigned int i;

	if (a->family != b->family)
		return false;
	for (i = 0; i < a->cidr && i < b->cidr; i++)
		if (bit(a, i) != bit(b, i))
			return false;
	return true;
}

static bool ref_clash(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return ref_overlap(a, b) && (a->cidr == 0) == (b->cidr == 0);
}

static bool ref_holds(const struct conf_prefix *p, const struct sockaddr_storage *ss)
{
	struct conf_prefix host = { .family = ss->ss_family };

	if (ss->ss_family == AF_INET) {
		memcpy(host.addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		host.cidr = 32;
	} else {
		memcpy(host.addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		host.cidr = 128;
	}
	return ref_overlap(p, &host);
}

/* A prefix against the policy, the registry and this node. */
static bool ref_local_prefix(const struct conf_prefix *p, const char *node, const struct facts *f)
{
	size_t j;

	if (p->cidr == 0 && !mesh_policy_exit(&f->policy, node))
		return true;
	for (j = 0; p->cidr && j < f->l.n_registry; j++)
		if (ref_holds(p, &f->registry[j]))
			return true;
	for (j = 0; j < f->l.n_own; j++)
		if (ref_clash(p, &f->own[j]))
			return true;
	for (j = 0; j < f->peer.n_allowed_ips; j++)
		if (ref_clash(p, &f->ips[j]))
			return true;
	return false;
}

/* A record's keys: its public key, and the next one while it rotates. */
static size_t ref_keys(const struct mesh_record *r, const uint8_t *rkeys[2])
{
	rkeys[0] = r->public_key;
	rkeys[1] = r->has_next ? r->next_public_key : NULL;
	return r->has_next ? 2 : 1;
}

static bool ref_local_key(const struct mesh_record *r, const struct facts *f)
{
	const uint8_t *rkeys[2];
	size_t i, n = ref_keys(r, rkeys);

	for (i = 0; i < n; i++)
		if (!memcmp(rkeys[i], f->key, 32) || !memcmp(rkeys[i], f->peer.public_key, 32))
			return true;
	return false;
}

/* Its name revoked, or one of its keys. */
static bool ref_revoked(const struct mesh_record *r, const char *name, const struct facts *f)
{
	const uint8_t *rkeys[2];
	size_t i, j, n = ref_keys(r, rkeys);
	uint8_t k[32];

	for (i = 0; i < f->n_revoked_nodes; i++)
		if (!strcmp(f->revoked_nodes[i], name))
			return true;
	for (i = 0; i < f->n_revoked_keys; i++) {
		key_bin(f->revoked_keys[i], k);
		for (j = 0; j < n; j++)
			if (!memcmp(rkeys[j], k, 32))
				return true;
	}
	return false;
}

static bool ref_share_key(const uint8_t *const *a, size_t na, const uint8_t *const *b, size_t nb)
{
	size_t i, j;

	for (i = 0; i < na; i++)
		for (j = 0; j < nb; j++)
			if (!memcmp(a[i], b[j], 32))
				return true;
	return false;
}

static bool ref_against(const struct mesh_record *r, const struct mesh_record *o)
{
	const uint8_t *kr[2], *ko[2];
	size_t nr = ref_keys(r, kr), no = ref_keys(o, ko);
	size_t j, k;

	if (ref_share_key(kr, nr, ko, no))
		return true;
	for (j = 0; j < r->n_prefixes; j++)
		for (k = 0; k < o->n_prefixes; k++)
			if (ref_clash(&r->prefixes[j], &o->prefixes[k]))
				return true;
	return false;
}

static bool before(const struct mesh_node *a, const struct mesh_node *b)
{
	return a->create_revision < b->create_revision ||
	       (a->create_revision == b->create_revision && strcmp(a->name, b->name) < 0);
}

struct ref_result {
	enum mesh_verdict verdict;
	char use[1024];
};

/* A peer as the reference decided it: its keys and the prefixes it is given. */
struct ref_peer {
	const uint8_t *keys[2];
	size_t n_keys;
	struct conf_prefix prefixes[8];
	size_t n;
};

static void reference(const struct mesh_node *nodes, size_t n, const struct facts *f, struct ref_result *out)
{
	const struct mesh_node *order[16], *accepted[16];
	struct ref_peer peers[16];
	size_t i, j, k, m, n_acc = 0, n_peers = 0;

	for (i = 0; i < n; i++)
		order[i] = &nodes[i];
	for (i = 1; i < n; i++) /* insertion sort */
		for (j = i; j > 0 && before(order[j], order[j - 1]); j--) {
			const struct mesh_node *t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		const struct mesh_node *x = order[i];
		const struct mesh_record *r = &x->latest;
		struct ref_result *res = &out[x - nodes];
		bool bad = !x->parsed;

		res->use[0] = '\0';
		res->verdict = MESH_NONE;
		if (!strcmp(x->name, "me")) {
			res->verdict = MESH_SELF;
			continue;
		}
		if (!x->present)
			continue;
		bad = bad || ref_revoked(r, x->name, f) || ref_local_key(r, f);
		for (j = 0; !bad && j < r->n_prefixes; j++)
			bad = ref_local_prefix(&r->prefixes[j], x->name, f);
		for (j = 0; !bad && j < n_acc; j++)
			bad = ref_against(r, &accepted[j]->latest);
		if (bad)
			continue;
		accepted[n_acc++] = x;
		res->verdict = MESH_ACCEPTED;
		prefixes_text(r->prefixes, r->n_prefixes, res->use, sizeof(res->use));
		peers[n_peers].n_keys = ref_keys(r, peers[n_peers].keys);
		peers[n_peers].n = r->n_prefixes;
		for (j = 0; j < r->n_prefixes; j++)
			peers[n_peers].prefixes[j] = r->prefixes[j];
		n_peers++;
	}
	/*
	 * Refused records applied before stay, less what clashes with a peer
	 * before them (accepted, or kept and older); never with a key taken
	 * (either of a rotation's) nor revoked, nor under a revoked name.
	 */
	for (i = 0; i < n; i++) {
		const struct mesh_node *x = order[i];
		const struct mesh_record *c = &x->current;
		struct ref_result *res = &out[x - nodes];
		struct ref_peer *p = &peers[n_peers];
		bool taken;

		if (res->verdict != MESH_NONE || !x->present || !x->applied)
			continue;
		p->n_keys = ref_keys(c, p->keys);
		taken = ref_revoked(c, x->name, f) || ref_local_key(c, f);
		for (j = 0; !taken && j < n_peers; j++)
			taken = ref_share_key(p->keys, p->n_keys, peers[j].keys, peers[j].n_keys);
		if (taken)
			continue;
		res->verdict = MESH_KEPT;
		p->n = 0;
		for (j = 0; j < c->n_prefixes; j++) {
			bool bad = ref_local_prefix(&c->prefixes[j], x->name, f);

			for (k = 0; !bad && k < n_peers; k++)
				for (m = 0; !bad && m < peers[k].n; m++)
					bad = ref_clash(&c->prefixes[j], &peers[k].prefixes[m]);
			if (!bad)
				p->prefixes[p->n++] = c->prefixes[j];
		}
		prefixes_text(p->prefixes, p->n, res->use, sizeof(res->use));
		n_peers++;
	}
}

/* A few prefixes that overlap one another in many ways. */
static const char *const pool[] = {
	"10.0.0.0/8",   "10.1.0.0/16",    "10.1.2.0/24",    "10.2.0.0/16", "10.2.0.0/24",   "10.3.0.0/16",
	"10.9.0.0/24",  "192.168.1.0/24", "198.18.0.0/16",  "0.0.0.0/0",   "::/0",          "fd00::/8",
	"fd00:1::/32",  "fd01::/16",      "128.0.0.0/1",    "10.1.2.3/32", "198.18.0.0/24", "172.16.0.0/12",
};

static void random_prefixes(struct test_rng_state *rng, char *out, size_t len)
{
	size_t i, n = test_rng_next(rng) % 4, used = 0;

	out[0] = '\0';
	for (i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? " " : "",
					 pool[test_rng_next(rng) % (sizeof(pool) / sizeof(pool[0]))]);
}

/*
 * A random network: node_make insists that records parse, and these may not.
 * With rotations, records now and then announce a next key (another node's,
 * their own, this node's or a static peer's at times).
 */
static void random_network(struct test_rng_state *rng, struct mesh_node *nodes, size_t n, bool rotations)
{
	bool me = false;
	size_t i;

	for (i = 0; i < n; i++) {
		char prefixes[256], applied[256], json[2048], why[MESH_WHY_LEN];
		uint64_t v = test_rng_next(rng);
		struct mesh_node *x = &nodes[i];
		unsigned int key = (unsigned int)(v >> 16) % 6 + 1, next = 0, applied_next = 0;
		uint64_t w = rotations ? test_rng_next(rng) : 0;

		memset(x, 0, sizeof(*x));
		/* Now and then this node's own record, once. */
		snprintf(x->name, sizeof(x->name), v % 23 == 0 && !me ? "me" : "n%zu", i);
		me = me || !strcmp(x->name, "me");
		x->create_revision = (int64_t)(v >> 8) % 6 + 1;
		x->mod_revision = x->create_revision;
		if ((v >> 24) % 29 == 0)
			key = (v >> 24) % 2 ? KEY_SELF : KEY_STATIC;
		if (rotations && w % 3 == 0)
			next = (unsigned int)(w >> 8) % 7 + 1;
		if (rotations && (w >> 16) % 23 == 0)
			next = (w >> 16) % 2 ? KEY_SELF : KEY_STATIC;
		if (rotations && (w >> 24) % 4 == 0)
			applied_next = (unsigned int)(w >> 32) % 7 + 1;
		random_prefixes(rng, prefixes, sizeof(prefixes));
		if ((v >> 32) % 10) {
			record_json_next(json, sizeof(json), x->name, key, next, prefixes);
			x->present = true;
			x->raw = strdup(json);
			x->parsed = mesh_record_parse(&x->latest, x->name, json, strlen(json), x->parse_error,
						      sizeof(x->parse_error)) == 0;
		}
		if ((v >> 36) % 3 == 0) {
			random_prefixes(rng, applied, sizeof(applied));
			key = (unsigned int)(v >> 40) % 6 + 1;
			if ((v >> 48) % 17 == 0) /* since then, this node's key or a static peer's */
				key = (v >> 48) % 2 ? KEY_SELF : KEY_STATIC;
			record_json_next(json, sizeof(json), x->name, key, applied_next, applied);
			/* Applied before: what parsed then (its prefixes may overlap: then nothing). */
			x->applied = mesh_record_parse(&x->current, x->name, json, strlen(json), why,
						       sizeof(why)) == 0;
		}
	}
}

static void check_against(const struct mesh_node *nodes, size_t n, const struct ref_result *want,
			  char *const *names, int round, const char *pass)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct mesh_node *x = &nodes[i];
		const struct ref_result *w = NULL;
		char use[1024];

		for (j = 0; j < n; j++)
			if (!strcmp(names[j], x->name))
				w = &want[j];
		assert_non_null(w);
		prefixes_text(x->use, x->n_use, use, sizeof(use));
		if (x->verdict != w->verdict || strcmp(use, w->use))
			fail_msg("round %d (%s): node %s: %s use \"%s\"; the reference: %s use \"%s\" (why: %s)",
				 round, pass, x->name, verdict_text(x->verdict), use, verdict_text(w->verdict),
				 w->use, x->why);
		/* A reason exactly for the records refused. */
		if ((x->present && x->verdict != MESH_ACCEPTED && x->verdict != MESH_SELF) != (x->why[0] != '\0'))
			fail_msg("round %d: node %s: %s with why \"%s\"", round, x->name, verdict_text(x->verdict),
				 x->why);
	}
}

static void test_decide_random(void **state)
{
	enum { ROUNDS = 3000, MAX_NODES = 12 };
	struct test_rng_state rng = { 0x686f72726962ULL };
	static const char *const exits[] = { NULL, "n0", "n1 n2 n3", "n4 me" };
	static const char *const owns[] = { NULL, "10.9.0.0/16", "0.0.0.0/0 fd09::/64" };
	static const char *const ips[] = { NULL, "192.168.1.0/24", "::/0 10.3.1.0/24" };
	int round, count[4] = { 0 };

	(void)state;
	for (round = 0; round < ROUNDS; round++) {
		struct mesh_node nodes[MAX_NODES], tmp;
		struct ref_result want[MAX_NODES];
		char *names[MAX_NODES];
		size_t n = test_rng_next(&rng) % MAX_NODES + 1, i, j;
		uint64_t v = test_rng_next(&rng);
		struct facts f;

		facts_make(&f, exits[v % 4], owns[(v >> 8) % 3], ips[(v >> 16) % 3],
			   (v >> 24) % 2 ? "198.18.0.1 fd00:1::1" : NULL);
		random_network(&rng, nodes, n, false);
		reference(nodes, n, &f, want);
		for (i = 0; i < n; i++)
			names[i] = strdup(nodes[i].name);
		assert_int_equal(mesh_decide(nodes, n, &f.policy, &f.l), 0);
		check_against(nodes, n, want, names, round, "as listed");
		for (i = 0; i < n; i++)
			count[nodes[i].verdict]++;
		/* Another agent lists the same records in another order: the same decision. */
		for (i = n - 1; i > 0; i--) {
			j = test_rng_next(&rng) % (i + 1);
			tmp = nodes[i];
			nodes[i] = nodes[j];
			nodes[j] = tmp;
		}
		assert_int_equal(mesh_decide(nodes, n, &f.policy, &f.l), 0);
		check_against(nodes, n, want, names, round, "shuffled");
		for (i = 0; i < n; i++) {
			mesh_node_free(&nodes[i]);
			free(names[i]);
		}
		mesh_policy_free(&f.policy);
	}
	/* The generator reaches every verdict, often. */
	for (round = 0; round < 4; round++)
		if (count[round] < 100)
			fail_msg("verdict %s only %d times", verdict_text(round), count[round]);
}

/* The same against the reference, with rotations under way and revocations. */
static void test_decide_random_rotation(void **state)
{
	enum { ROUNDS = 3000, MAX_NODES = 12 };
	struct test_rng_state rng = { 0x726f74617465ULL };
	static const char *const names[] = { "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11" };
	int round, count[4] = { 0 }, revoked = 0, rotating = 0;

	(void)state;
	for (round = 0; round < ROUNDS; round++) {
		struct mesh_node nodes[MAX_NODES], tmp;
		struct ref_result want[MAX_NODES];
		char *saved[MAX_NODES];
		size_t n = test_rng_next(&rng) % MAX_NODES + 1, i, j;
		uint64_t v = test_rng_next(&rng);
		struct facts f;
		uint8_t k[32];

		facts_make(&f, (v >> 4) % 3 ? NULL : "n1", (v >> 8) % 2 ? "10.9.0.0/16" : NULL,
			   (v >> 16) % 2 ? "192.168.1.0/24" : NULL, NULL);
		for (i = 1; i <= 7; i++) {
			if (test_rng_next(&rng) % 7)
				continue;
			f.revoked_keys[f.n_revoked_keys++] = (unsigned int)i;
			key_bin((unsigned int)i, k);
			assert_int_equal(mesh_policy_revoke_key(&f.policy, k, true), 0);
		}
		for (i = 0; i < MAX_NODES; i++) {
			if (test_rng_next(&rng) % 10)
				continue;
			f.revoked_nodes[f.n_revoked_nodes++] = names[i];
			assert_int_equal(mesh_policy_revoke_node(&f.policy, names[i], true), 0);
		}
		random_network(&rng, nodes, n, true);
		reference(nodes, n, &f, want);
		for (i = 0; i < n; i++) {
			saved[i] = strdup(nodes[i].name);
			rotating += nodes[i].parsed && nodes[i].latest.has_next;
		}
		assert_int_equal(mesh_decide(nodes, n, &f.policy, &f.l), 0);
		check_against(nodes, n, want, saved, round, "as listed");
		for (i = 0; i < n; i++) {
			count[nodes[i].verdict]++;
			revoked += strstr(nodes[i].why, "revoked") != NULL;
		}
		for (i = n - 1; i > 0; i--) {
			j = test_rng_next(&rng) % (i + 1);
			tmp = nodes[i];
			nodes[i] = nodes[j];
			nodes[j] = tmp;
		}
		assert_int_equal(mesh_decide(nodes, n, &f.policy, &f.l), 0);
		check_against(nodes, n, want, saved, round, "shuffled");
		for (i = 0; i < n; i++) {
			mesh_node_free(&nodes[i]);
			free(saved[i]);
		}
		mesh_policy_free(&f.policy);
	}
	for (round = 0; round < 4; round++)
		if (count[round] < 100)
			fail_msg("verdict %s only %d times", verdict_text(round), count[round]);
	if (revoked < 300 || rotating < 1000)
		fail_msg("%d refused as revoked, %d rotating: the generator misses them", revoked, rotating);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_rotation),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_parse_sizes),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_random),
		cmocka_unit_test(test_equal_and_copy),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_revocations),
		cmocka_unit_test(test_decide_cases),
		cmocka_unit_test(test_decide_random),
		cmocka_unit_test(test_decide_random_rotation),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
