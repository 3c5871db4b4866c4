// SPDX-License-Identifier: MIT
/*
 * etcd v3 JSON gateway messages (etcd.h): bodies built and replies read
 * with jansson; keys and values travel in base64 (libsodium's coder).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "etcd.h"

enum { STREAM_MSG_MAX = 16 * 1024 * 1024 };

/* ---- base64 and numbers -------------------------------------------------------------------- */

static char *b64(const void *p, size_t n)
{
	size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(len);

	if (out)
		sodium_bin2base64(out, len, p, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* Decoded base64 with a NUL after it; NULL if it is not base64. */
static char *unb64(const char *s, size_t *len)
{
	size_t n = strlen(s), got = 0;
	char *out = malloc(n / 4 * 3 + 4);

	if (!out)
		return NULL;
	if (sodium_base642bin((unsigned char *)out, n / 4 * 3 + 3, s, n, NULL, &got, NULL,
			      sodium_base64_VARIANT_ORIGINAL)) {
		free(out);
		return NULL;
	}
	out[got] = '\0';
	if (len)
		*len = got;
	return out;
}

/* 64-bit numbers come as strings ("123"), sometimes as numbers; absent is 0. */
static int64_t num(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* The end of a prefix's range: the prefix with its last byte raised (etcd's rule). */
static char *range_end(const char *prefix)
{
	size_t n = strlen(prefix);
	unsigned char *end = malloc(n + 1);
	char *out;

	if (!end)
		return NULL;
	memcpy(end, prefix, n);
	while (n && end[n - 1] == 0xff)
		n--;
	if (n == 0) {
		end[0] = '\0'; /* every key from the prefix on */
		out = b64(end, 1);
	} else {
		end[n - 1]++;
		out = b64(end, n);
	}
	free(end);
	return out;
}

void etcd_url(const char *member, const char *path, char *out, size_t len)
{
	size_t n = strlen(member);
	const char *host = strstr(member, "://"), *end;

	while (n && member[n - 1] == '/')
		n--;
	host = host ? host + 3 : member;
	/* The port, if any, is after the host: past the brackets of an IPv6 literal. */
	end = *host == '[' ? strchr(host, ']') : host;
	if (end && memchr(end, ':', (size_t)(member + n - end)))
		snprintf(out, len, "%.*s%s", (int)n, member, path);
	else
		snprintf(out, len, "%.*s:2379%s", (int)n, member, path);
}

/* ---- bodies ------------------------------------------------------------------------------------ */

char *etcd_body_auth(const char *user, const char *password)
{
	json_t *o = json_pack("{s:s, s:s}", "name", user, "password", password);
	char *text = NULL, *locked = NULL;

	if (o)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o); /* jansson's copy of the password is freed unwiped: its allocator, not ours */
	if (text) {
		locked = sodium_malloc(strlen(text) + 1);
		if (locked)
			memcpy(locked, text, strlen(text) + 1);
		sodium_memzero(text, strlen(text));
		free(text);
	}
	return locked;
}

void etcd_free_secret(char *body)
{
	if (body)
		sodium_free(body);
}

static char *range_body(const char *key, bool prefix, int64_t revision)
{
	char *k = b64(key, strlen(key)), *end = prefix ? range_end(key) : NULL, *out = NULL;

	if (k && (!prefix || end)) {
		json_t *o = json_pack("{s:s}", "key", k);

		if (o && end)
			json_object_set_new(o, "range_end", json_string(end));
		if (o && revision)
			json_object_set_new(o, "revision", json_integer(revision));
		out = dump(o);
	}
	free(k);
	free(end);
	return out;
}

char *etcd_body_range_prefix(const char *prefix, int64_t revision)
{
	return range_body(prefix, true, revision);
}

char *etcd_body_range_key(const char *key)
{
	return range_body(key, false, 0);
}

char *etcd_body_put(const char *key, const char *value, int64_t lease)
{
	char *k = b64(key, strlen(key)), *v = b64(value, strlen(value)), *out = NULL;

	if (k && v) {
		json_t *o = json_pack("{s:s, s:s}", "key", k, "value", v);

		if (o && lease)
			json_object_set_new(o, "lease", json_integer(lease));
		out = dump(o);
	}
	free(k);
	free(v);
	return out;
}

static char *delete_body(const char *key, bool prefix)
{
	return range_body(key, prefix, 0);
}

char *etcd_body_delete(const char *key)
{
	return delete_body(key, false);
}

char *etcd_body_delete_prefix(const char *prefix)
{
	return delete_body(prefix, true);
}

char *etcd_body_watch(const char *prefix, int64_t start_revision)
{
	char *k = b64(prefix, strlen(prefix)), *end = range_end(prefix), *out = NULL;

	if (k && end)
		out = dump(json_pack("{s:{s:s, s:s, s:I}}", "create_request", "key", k, "range_end", end,
				     "start_revision", (json_int_t)start_revision));
	free(k);
	free(end);
	return out;
}

char *etcd_body_watch_key(const char *key, int64_t start_revision)
{
	char *k = b64(key, strlen(key)), *out = NULL;

	if (k)
		out = dump(json_pack("{s:{s:s, s:I}}", "create_request", "key", k, "start_revision",
				     (json_int_t)start_revision));
	free(k);
	return out;
}

char *etcd_body_lease_grant(int64_t ttl)
{
	return dump(json_pack("{s:I}", "TTL", (json_int_t)ttl));
}

char *etcd_body_lease_keepalive(int64_t id)
{
	return dump(json_pack("{s:I}", "ID", (json_int_t)id));
}

char *etcd_body_lease_revoke(int64_t id)
{
	return dump(json_pack("{s:I}", "ID", (json_int_t)id));
}

char *etcd_body_compact(int64_t revision)
{
	return dump(json_pack("{s:I, s:b}", "revision", (json_int_t)revision, "physical", 1));
}

char *etcd_body_user_delete(const char *user)
{
	return dump(json_pack("{s:s}", "name", user));
}

/* ---- replies ------------------------------------------------------------------------------------- */

static json_t *load(const char *body, size_t len)
{
	json_error_t jerr;

	return json_loadb(body, len, 0, &jerr);
}

/* gRPC's codes (grpc/codes): the gateway carries them in "code". */
enum {
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/* Text from the registry goes into log lines: one line, no terminal escapes. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

static enum etcd_error_kind kind_of(int code, const char *msg)
{
	if (strstr(msg, "invalid auth token") || strstr(msg, "user name is empty") ||
	    (code == GRPC_UNAUTHENTICATED && !strstr(msg, "authentication failed")))
		return ETCD_ERR_AUTH;
	if (strstr(msg, "authentication failed"))
		return ETCD_ERR_LOGIN;
	if (code == GRPC_PERMISSION_DENIED || strstr(msg, "permission denied"))
		return ETCD_ERR_PERMISSION;
	if (code == GRPC_OUT_OF_RANGE || strstr(msg, "compacted"))
		return ETCD_ERR_COMPACTED;
	if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED || strstr(msg, "no leader") ||
	    strstr(msg, "timed out") || strstr(msg, "stopped"))
		return ETCD_ERR_UNAVAILABLE;
	return ETCD_ERR_OTHER;
}

int etcd_reply_error(long status, const char *body, size_t len, struct etcd_error *e)
{
	json_t *o = load(body, len), *err;
	const char *msg = NULL;

	memset(e, 0, sizeof(*e));
	/* A streamed reply wraps its error: {"error":{"grpc_code":..,"message":..}}. */
	err = json_object_get(o, "error");
	if (json_is_object(err)) {
		e->code = (int)num(json_object_get(err, "grpc_code"));
		msg = json_string_value(json_object_get(err, "message"));
	} else if (err || (status >= 300 && o)) {
		e->code = (int)num(json_object_get(o, "code"));
		msg = json_string_value(json_object_get(o, "message"));
		if (!msg)
			msg = json_string_value(err);
	}
	if (status >= 200 && status < 300 && !err && o) {
		json_decref(o);
		return 0;
	}
	if (msg && *msg)
		snprintf(e->message, sizeof(e->message), "%s", msg);
	else if (!o && len)
		/* The gateway's own refusals are plain text (a client certificate with a CN). */
		snprintf(e->message, sizeof(e->message), "HTTP status %ld: %.*s", status,
			 (int)(len > 150 ? 150 : len), body);
	else
		snprintf(e->message, sizeof(e->message), "HTTP status %ld", status);
	one_line(e->message);
	e->kind = kind_of(e->code, e->message);
	if (e->kind == ETCD_ERR_OTHER && (status == 401))
		e->kind = ETCD_ERR_AUTH;
	if (e->kind == ETCD_ERR_OTHER && (status == 502 || status == 503 || status == 504))
		e->kind = ETCD_ERR_UNAVAILABLE;
	json_decref(o);
	return -EIO;
}

int etcd_parse_auth(const char *body, size_t len, char **token)
{
	json_t *o = load(body, len);
	const char *t = json_string_value(json_object_get(o, "token"));
	int ret = -EPROTO;

	*token = NULL;
	if (t && *t) {
		*token = sodium_malloc(strlen(t) + 1);
		if (*token) {
			memcpy(*token, t, strlen(t) + 1);
			ret = 0;
		} else {
			ret = -ENOMEM;
		}
	}
	json_decref(o);
	return ret;
}

static void kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int parse_kv(json_t *o, struct etcd_kv *kv)
{
	const char *k = json_string_value(json_object_get(o, "key"));
	const char *v = json_string_value(json_object_get(o, "value"));
	size_t klen = 0;

	memset(kv, 0, sizeof(*kv));
	if (!k)
		return -EPROTO;
	kv->key = unb64(k, &klen);
	kv->value = unb64(v ? v : "", &kv->value_len);
	if (!kv->key || !kv->value || strlen(kv->key) != klen) {
		kv_free(kv);
		return -EPROTO;
	}
	kv->create_revision = num(json_object_get(o, "create_revision"));
	kv->mod_revision = num(json_object_get(o, "mod_revision"));
	kv->version = num(json_object_get(o, "version"));
	kv->lease = num(json_object_get(o, "lease"));
	return 0;
}

void etcd_range_free(struct etcd_range *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

static int64_t header_revision(json_t *o)
{
	return num(json_object_get(json_object_get(o, "header"), "revision"));
}

int etcd_parse_range(const char *body, size_t len, struct etcd_range *r)
{
	json_t *o = load(body, len), *kvs;
	size_t i;
	int ret = -EPROTO;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o))
		goto out;
	r->revision = header_revision(o);
	r->more = json_is_true(json_object_get(o, "more"));
	kvs = json_object_get(o, "kvs"); /* absent when nothing matched */
	if (kvs && !json_is_array(kvs))
		goto out;
	r->kvs = calloc(json_array_size(kvs) + 1, sizeof(*r->kvs));
	if (!r->kvs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < json_array_size(kvs); i++) {
		if (parse_kv(json_array_get(kvs, i), &r->kvs[r->n]))
			goto out;
		r->n++;
	}
	ret = r->revision > 0 ? 0 : -EPROTO;
out:
	json_decref(o);
	if (ret)
		etcd_range_free(r);
	return ret;
}

int etcd_parse_revision(const char *body, size_t len, int64_t *revision)
{
	json_t *o = load(body, len);

	*revision = header_revision(o);
	json_decref(o);
	return *revision > 0 ? 0 : -EPROTO;
}

int etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl)
{
	json_t *o = load(body, len), *r;

	r = json_object_get(o, "result");
	if (!r)
		r = o;
	*id = num(json_object_get(r, "ID"));
	*ttl = num(json_object_get(r, "TTL"));
	json_decref(o);
	return *id ? 0 : -EPROTO;
}

void etcd_watch_msg_free(struct etcd_watch_msg *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		kv_free(&m->events[i].kv);
	free(m->events);
	memset(m, 0, sizeof(*m));
}

int etcd_parse_watch(const char *json, size_t len, struct etcd_watch_msg *m)
{
	json_t *o = load(json, len), *r, *events;
	const char *reason;
	size_t i;
	int ret = -EPROTO;

	memset(m, 0, sizeof(*m));
	r = json_object_get(o, "result");
	if (!json_is_object(r))
		goto out;
	m->revision = header_revision(r);
	m->created = json_is_true(json_object_get(r, "created"));
	m->canceled = json_is_true(json_object_get(r, "canceled"));
	m->compact_revision = num(json_object_get(r, "compact_revision"));
	reason = json_string_value(json_object_get(r, "cancel_reason"));
	snprintf(m->cancel_reason, sizeof(m->cancel_reason), "%s", reason ? reason : "");
	one_line(m->cancel_reason);
	events = json_object_get(r, "events");
	if (events && !json_is_array(events))
		goto out;
	m->events = calloc(json_array_size(events) + 1, sizeof(*m->events));
	if (!m->events) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < json_array_size(events); i++) {
		json_t *ev = json_array_get(events, i);
		const char *type = json_string_value(json_object_get(ev, "type"));
		struct etcd_event *e = &m->events[m->n];

		/* PUT is the enum's zero: the gateway leaves it out. */
		e->type = type && !strcmp(type, "DELETE") ? ETCD_DELETE : ETCD_PUT;
		if (parse_kv(json_object_get(ev, "kv"), &e->kv))
			goto out;
		m->n++;
	}
	ret = 0;
out:
	json_decref(o);
	if (ret)
		etcd_watch_msg_free(m);
	return ret;
}

/* ---- the watch stream --------------------------------------------------------------------------- */

void etcd_stream_reset(struct etcd_stream *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * One more byte of the stream: the scanner's state (string, escape, depth)
 * carries over between pieces, so each byte is looked at once however the
 * stream is cut. True when the byte closes a message.
 */
static bool scan(struct etcd_stream *s, char c)
{
	if (s->in_string) {
		if (s->escaped)
			s->escaped = false;
		else if (c == '\\')
			s->escaped = true;
		else if (c == '"')
			s->in_string = false;
		return false;
	}
	if (c == '"')
		s->in_string = true;
	else if (c == '{' || c == '[')
		s->depth++;
	else if ((c == '}' || c == ']') && s->depth && --s->depth == 0)
		return true;
	return false;
}

int etcd_stream_feed(struct etcd_stream *s, const char *chunk, size_t len,
		     int (*on_msg)(const char *json, size_t len, void *data), void *data)
{
	size_t used = 0, start;
	int ret = 0;

	/* libcurl hands over an empty piece for an empty body: a fresh stream has no buffer yet. */
	if (!len && !s->len)
		return 0;
	if (s->len + len > STREAM_MSG_MAX)
		return -EFBIG;
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		char *g;

		while (cap < s->len + len)
			cap *= 2;
		g = realloc(s->buf, cap);
		if (!g)
			return -ENOMEM;
		s->buf = g;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, chunk, len);
	s->len += len;
	while (!ret && s->pos < s->len) {
		if (!scan(s, s->buf[s->pos++]))
			continue;
		for (start = used; blank(s->buf[start]); start++)
			;
		ret = on_msg(s->buf + start, s->pos - start, data);
		used = s->pos;
	}
	/* Whitespace between messages is dropped with them. */
	while (used < s->pos && blank(s->buf[used]))
		used++;
	memmove(s->buf, s->buf + used, s->len - used);
	s->len -= used;
	s->pos -= used;
	return ret;
}
