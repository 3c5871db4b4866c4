// SPDX-License-Identifier: MIT
/*
 * The UAPI text protocol (WireGuard's "Cross-platform Userspace Interface",
 * https://www.wireguard.com/xplatform/: framing, keys, errno values). Per connection, a small state machine:
 *
 *   OP      reading the operation line: "get=1" (or veil's own "veil_get=1"
 *           and "metrics=1") -> GET_NL, "set=1" -> SET, anything else ->
 *           CLOSED (no reply, as wireguard-go does)
 *   GET_NL  the byte after the get line: '\n' runs the get, anything else
 *           replies errno=-22 and closes (the stream is out of step)
 *   SET     one key=value line at a time, applied at once, until the empty
 *           line, which replies and returns to OP; the first error -> SKIP
 *   SKIP    discards lines, unbuffered, up to the empty line, then replies
 *           with the error and returns to OP
 *   LONG    a set line longer than UAPI_LINE_MAX, read on unbuffered: at its
 *           '\n' it is an error (-EPROTO without '=', else -EINVAL) -> SKIP;
 *           at UAPI_LINE_LIMIT bytes the request fails at once with -EIO
 *           -> DRAIN, as wireguard-go answers
 *   DRAIN   discards up to the empty line, then closes: the rest of a
 *           request already answered (reading it all first spares the
 *           client a reset when the socket closes)
 *
 * The connection's end (uapi_conn_eof) ends a set as its empty line would,
 * a last line without '\n' included, as wireguard-go does.
 *
 * Within a set, lines before the first public_key are device keys. A peer's
 * creation waits for its first line other than update_only (or for the
 * next public_key, or the end of the request), because update_only=true
 * follows public_key yet decides whether the peer may be created.
 */
#include "uapi.h"
#include "veil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

enum conn_state { ST_OP, ST_GET_NL, ST_SET, ST_SKIP, ST_LONG, ST_DRAIN, ST_CLOSED };

/*
 * get=1 is WireGuard's; veil_get=1 is the same reply with veil's own peer
 * keys added (wg would refuse those in a get=1 reply); metrics=1 is text.
 */
enum get_kind { GET_WG, GET_VEIL, GET_METRICS };

/* The peer that the current peer lines apply to. */
enum peer_state {
	PEER_NONE,	/* no public_key yet: device keys */
	PEER_PENDING,	/* public_key seen, not looked up yet */
	PEER_ACTIVE,	/* lines apply to handle */
	PEER_IGNORED,	/* lines are checked and discarded */
};

struct uapi_conn {
	const struct uapi_backend_ops *ops;
	void *ctx;
	enum conn_state state;
	int err;		/* SKIP: the error to reply with */
	bool skip_mid;		/* SKIP: inside a non-empty line */
	size_t long_len;	/* LONG: the line's bytes so far */
	bool long_eq;		/* LONG: an '=' among them */
	enum peer_state peer_state;
	bool update_only;	/* PENDING: update_only=true was seen */
	bool created;		/* ACTIVE: this request created the peer */
	enum get_kind get;	/* GET_NL: which get the request was */
	void *peer;
	uint8_t pub[32];
	size_t line_len;
	char line[UAPI_LINE_MAX + 1];
};

struct uapi_writer {
	struct uapi_buf *buf;
	int err;		/* sticky: -ENOMEM once an append failed */
	bool veil;		/* veil_get=1: veil's own keys too */
};

/* Calls an op, answering -EOPNOTSUPP for a NULL one. */
#define CALL(c, op, ...) ((c)->ops->op ? (c)->ops->op((c)->ctx, __VA_ARGS__) : -EOPNOTSUPP)

/* ---- buffers ---- */

static int __must_check buf_append(struct uapi_buf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		/* Not realloc: the old block may hold a private key and must be wiped. */
		d = malloc(cap);
		if (!d)
			return -ENOMEM;
		if (b->len)
			memcpy(d, b->data, b->len);
		if (b->data) {
			sodium_memzero(b->data, b->cap);
			free(b->data);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Cuts b back to len bytes, wiping the rest. */
static void buf_truncate(struct uapi_buf *b, size_t len)
{
	if (len < b->len) {
		sodium_memzero(b->data + len, b->len - len);
		b->len = len;
	}
}

void uapi_buf_consume(struct uapi_buf *b, size_t n)
{
	if (n >= b->len) {
		buf_truncate(b, 0);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	buf_truncate(b, b->len - n);
}

void uapi_buf_free(struct uapi_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- hex, numbers, addresses ---- */

/* All ones if lo <= x <= hi, else 0; x, lo, hi in 0..255. No branches. */
static unsigned int in_range_mask(unsigned int x, unsigned int lo, unsigned int hi)
{
	return 0u - (((lo - 1 - x) & (x - hi - 1)) >> 31);
}

/*
 * The value of one hex digit, or a value with bit 8 set for any other
 * character. Constant time in ch: masks, no table, no branch. Letters are
 * folded to lowercase with | 0x20, which maps only 'A'-'F' onto 'a'-'f'.
 */
static unsigned int hex_digit(unsigned char ch)
{
	unsigned int c = ch, lower = c | 0x20;
	unsigned int num = in_range_mask(c, '0', '9');
	unsigned int alpha = in_range_mask(lower, 'a', 'f');

	return (num & (c - '0')) | (alpha & (lower - 'a' + 10)) | (~(num | alpha) & 0x100);
}

/*
 * Decodes exactly 64 hex digits (either case) into out. The length is public;
 * the digits are not, so every digit is decoded before the verdict. On
 * failure out is wiped.
 */
static int __must_check key_from_hex(uint8_t out[static 32], const char *hex)
{
	unsigned int bad = 0;
	size_t i;

	if (strlen(hex) != 64)
		return -EINVAL;
	for (i = 0; i < 32; i++) {
		unsigned int hi = hex_digit((unsigned char)hex[2 * i]);
		unsigned int lo = hex_digit((unsigned char)hex[2 * i + 1]);

		bad |= (hi | lo) & 0x100;
		out[i] = (uint8_t)((hi << 4) | (lo & 0xf));
	}
	if (bad) {
		sodium_memzero(out, 32);
		return -EINVAL;
	}
	return 0;
}

/* Lowercase hex of 32 bytes plus a NUL, constant time in the bytes. */
static void key_to_hex(char out[static 65], const uint8_t key[static 32])
{
	size_t i;

	for (i = 0; i < 64; i++) {
		unsigned int n = (key[i / 2] >> (i % 2 ? 0 : 4)) & 0xf;

		/* n > 9 adds the gap between '9' + 1 and 'a'. */
		out[i] = (char)(n + '0' + (in_range_mask(n, 10, 15) & ('a' - '0' - 10)));
	}
	out[64] = '\0';
}

/* Plain unsigned decimal: digits only, at least one, at most max. */
static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

static bool is_true(const char *value)
{
	return strcmp(value, "true") == 0;
}

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* "%<ifname>" or "%<number>" after an IPv6 address. if_nametoindex asks the kernel. */
static bool parse_scope(const char *s, uint32_t *scope)
{
	if (parse_uint(s, UINT32_MAX, scope))
		return true;
	if (!*s || strlen(s) >= IF_NAMESIZE)
		return false;
	*scope = if_nametoindex(s);
	return *scope != 0;
}

/* "A.B.C.D:port" or "[v6]:port" or "[v6%scope]:port", numeric only. Edits value. */
static int parse_endpoint(char *value, union sockaddr_any *ep, socklen_t *len)
{
	char *host = value, *port, *scope = NULL;
	uint32_t p, id = 0;

	memset(ep, 0, sizeof(*ep));
	if (*host == '[') {
		char *end = strchr(++host, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		*end = '\0';
		port = end + 2;
		scope = strchr(host, '%');
		if (scope)
			*scope++ = '\0';
		if (inet_pton(AF_INET6, host, &ep->in6.sin6_addr) != 1 ||
		    (scope && !parse_scope(scope, &id)))
			return -EINVAL;
		ep->in6.sin6_family = AF_INET6;
		ep->in6.sin6_scope_id = id;
		*len = sizeof(ep->in6);
	} else {
		port = strchr(host, ':');
		if (!port)
			return -EINVAL;
		*port++ = '\0';
		if (inet_pton(AF_INET, host, &ep->in4.sin_addr) != 1)
			return -EINVAL;
		ep->in4.sin_family = AF_INET;
		*len = sizeof(ep->in4);
	}
	if (!parse_uint(port, 65535, &p))
		return -EINVAL;
	if (ep->sa.sa_family == AF_INET)
		ep->in4.sin_port = htons((uint16_t)p);
	else
		ep->in6.sin6_port = htons((uint16_t)p);
	return 0;
}

struct prefix {
	bool remove;	/* written "-ADDR/CIDR" */
	int family;
	uint8_t cidr;
	uint8_t addr[16];
};

/* "ADDR/CIDR" or "-ADDR/CIDR"; an address with ':' is IPv6. Edits value. */
static int parse_prefix(char *value, struct prefix *pf)
{
	char *slash;
	uint32_t cidr;

	memset(pf, 0, sizeof(*pf));
	if (*value == '-') {
		pf->remove = true;
		value++;
	}
	slash = strchr(value, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	pf->family = strchr(value, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(pf->family, value, pf->addr) != 1 ||
	    !parse_uint(slash + 1, pf->family == AF_INET ? 32 : 128, &cidr))
		return -EINVAL;
	pf->cidr = (uint8_t)cidr;
	return 0;
}

/* ---- set: peers ---- */

/*
 * Looks up (and, unless update_only, creates) the pending peer. Looking up
 * first tells us whether this request created the peer, which a late
 * update_only needs.
 */
static int resolve_peer(struct uapi_conn *c)
{
	void *peer = NULL;
	int ret;

	ret = CALL(c, peer_select, c->pub, false, &peer);
	if (ret < 0)
		return ret;
	c->created = false;
	if (!peer && !c->update_only) {
		ret = CALL(c, peer_select, c->pub, true, &peer);
		if (ret < 0)
			return ret;
		c->created = peer != NULL;
	}
	c->peer = peer;
	c->peer_state = peer ? PEER_ACTIVE : PEER_IGNORED;
	return 0;
}

/* Returns 1 if the peer lines apply, 0 if they are discarded, or an error. */
static int peer_ready(struct uapi_conn *c)
{
	if (c->peer_state == PEER_PENDING) {
		int ret = resolve_peer(c);

		if (ret < 0)
			return ret;
	}
	return c->peer_state == PEER_ACTIVE;
}

/* Ends the current peer: a peer named by public_key alone still gets created. */
static int finish_peer(struct uapi_conn *c)
{
	int ret = 0;

	if (c->peer_state == PEER_PENDING && !c->update_only)
		ret = resolve_peer(c);
	c->peer_state = PEER_NONE;
	c->peer = NULL;
	c->update_only = c->created = false;
	return ret;
}

static int key_public_key(struct uapi_conn *c, char *value)
{
	int ret = finish_peer(c);

	if (ret < 0)
		return ret;
	ret = key_from_hex(c->pub, value);
	if (ret < 0)
		return ret;
	c->peer_state = PEER_PENDING;
	return 0;
}

static int key_update_only(struct uapi_conn *c, char *value)
{
	if (!is_true(value))
		return -EINVAL;
	if (c->peer_state == PEER_PENDING) {
		c->update_only = true;
	} else if (c->peer_state == PEER_ACTIVE && c->created) {
		/* Late update_only: undo the creation, as if never created. */
		int ret = CALL(c, peer_remove, c->peer);

		c->peer = NULL;
		c->peer_state = PEER_IGNORED;
		return ret;
	}
	return 0;
}

static int key_remove(struct uapi_conn *c, char *value)
{
	int ret = 0;

	if (!is_true(value))
		return -EINVAL;
	if (c->peer_state == PEER_PENDING) {
		/* Never create a peer only to remove it. */
		c->update_only = true;
		ret = resolve_peer(c);
		if (ret < 0)
			return ret;
	}
	if (c->peer_state == PEER_ACTIVE)
		ret = CALL(c, peer_remove, c->peer);
	c->peer = NULL;
	c->peer_state = PEER_IGNORED;
	return ret;
}

static int key_preshared_key(struct uapi_conn *c, char *value)
{
	uint8_t psk[32];
	int ret = key_from_hex(psk, value);

	if (ret < 0)
		goto out;
	ret = peer_ready(c);
	if (ret > 0)
		ret = CALL(c, peer_set_preshared_key, c->peer, psk);
out:
	sodium_memzero(psk, sizeof(psk));
	return ret < 0 ? ret : 0;
}

static int key_endpoint(struct uapi_conn *c, char *value)
{
	union sockaddr_any ep;
	socklen_t len;
	int ret = parse_endpoint(value, &ep, &len);

	if (ret < 0)
		return ret;
	ret = peer_ready(c);
	if (ret > 0)
		ret = CALL(c, peer_set_endpoint, c->peer, &ep.sa, len);
	return ret < 0 ? ret : 0;
}

/*
 * veil's own key: the host name an endpoint came from ("host:port"; empty
 * forgets it), looked up again when handshakes keep failing. wg never
 * sends it; veilctl sends it to veild only. Unknown to a backend without
 * the operation, as to wireguard-go.
 */
static int key_endpoint_name(struct uapi_conn *c, char *value)
{
	int ret;

	if (!c->ops->peer_set_endpoint_name)
		return -EINVAL;
	ret = peer_ready(c);
	if (ret > 0)
		ret = c->ops->peer_set_endpoint_name(c->ctx, c->peer, value);
	return ret < 0 ? ret : 0;
}

/* veil's own key: the transport suite, for veil peers that both set it. */
static int key_cipher(struct uapi_conn *c, char *value)
{
	int cipher, ret;

	if (!strcmp(value, VEIL_CIPHER_CHACHA20POLY1305))
		cipher = UAPI_CIPHER_CHACHA20POLY1305;
	else if (!strcmp(value, VEIL_CIPHER_AES256GCM))
		cipher = UAPI_CIPHER_AES256GCM;
	else
		return -EINVAL;
	if (!c->ops->peer_set_cipher)
		return -EINVAL;
	ret = peer_ready(c);
	if (ret > 0)
		ret = c->ops->peer_set_cipher(c->ctx, c->peer, cipher);
	return ret < 0 ? ret : 0;
}

static int key_keepalive(struct uapi_conn *c, char *value)
{
	uint32_t interval;
	int ret;

	if (!parse_uint(value, 65535, &interval))
		return -EINVAL;
	ret = peer_ready(c);
	if (ret > 0)
		ret = CALL(c, peer_set_keepalive, c->peer, (uint16_t)interval);
	return ret < 0 ? ret : 0;
}

static int key_replace_allowed_ips(struct uapi_conn *c, char *value)
{
	int ret;

	if (!is_true(value))
		return -EINVAL;
	ret = peer_ready(c);
	if (ret > 0)
		ret = CALL(c, peer_replace_allowed_ips, c->peer);
	return ret < 0 ? ret : 0;
}

static int key_allowed_ip(struct uapi_conn *c, char *value)
{
	struct prefix pf;
	int ret = parse_prefix(value, &pf);

	if (ret < 0)
		return ret;
	ret = peer_ready(c);
	if (ret > 0 && pf.remove)
		ret = CALL(c, peer_remove_allowed_ip, c->peer, pf.family, pf.addr, pf.cidr);
	else if (ret > 0)
		ret = CALL(c, peer_add_allowed_ip, c->peer, pf.family, pf.addr, pf.cidr);
	return ret < 0 ? ret : 0;
}

/* Only version 1 exists; the line changes nothing, but it does create the peer. */
static int key_protocol_version(struct uapi_conn *c, char *value)
{
	int ret;

	if (strcmp(value, "1") != 0)
		return -EINVAL;
	ret = peer_ready(c);
	return ret < 0 ? ret : 0;
}

/* ---- set: device ---- */

static int key_private_key(struct uapi_conn *c, char *value)
{
	uint8_t key[32];
	int ret = key_from_hex(key, value);

	if (ret == 0)
		ret = CALL(c, set_private_key, key);
	sodium_memzero(key, sizeof(key));
	return ret;
}

/* veil's own: a new private key, with the sessions of the old one kept (docs/mesh.md). */
static int key_rotate_private_key(struct uapi_conn *c, char *value)
{
	uint8_t key[32];
	int ret;

	if (!c->ops->rotate_private_key)
		return -EINVAL;
	ret = key_from_hex(key, value);
	if (ret == 0)
		ret = c->ops->rotate_private_key(c->ctx, key);
	sodium_memzero(key, sizeof(key));
	return ret;
}

static int key_listen_port(struct uapi_conn *c, char *value)
{
	uint32_t port;

	if (!parse_uint(value, 65535, &port))
		return -EINVAL;
	return CALL(c, set_listen_port, (uint16_t)port);
}

static int key_fwmark(struct uapi_conn *c, char *value)
{
	uint32_t mark;

	if (!parse_uint(value, UINT32_MAX, &mark))
		return -EINVAL;
	return CALL(c, set_fwmark, mark);
}

/* veil's own: where veild serves its metrics over HTTP ("addr:port", "[v6]:port"); empty for nowhere. */
static int key_metrics_listen(struct uapi_conn *c, char *value)
{
	union sockaddr_any ep;
	socklen_t len;
	int ret;

	if (!c->ops->set_metrics_listen)
		return -EINVAL;
	if (!*value)
		return c->ops->set_metrics_listen(c->ctx, NULL, 0);
	ret = parse_endpoint(value, &ep, &len);
	return ret < 0 ? ret : c->ops->set_metrics_listen(c->ctx, &ep.sa, len);
}

static int key_replace_peers(struct uapi_conn *c, char *value)
{
	if (!is_true(value))
		return -EINVAL;
	return c->ops->replace_peers ? c->ops->replace_peers(c->ctx) : -EOPNOTSUPP;
}

struct key_handler {
	const char *name;
	int (*fn)(struct uapi_conn *c, char *value);
};

/* The keys of the cross-platform interface. Keys that only `get` emits are unknown here, hence -EINVAL. */
static const struct key_handler device_keys[] = {
	{ "private_key", key_private_key },
	{ "listen_port", key_listen_port },
	{ "fwmark", key_fwmark },
	{ "replace_peers", key_replace_peers },
	{ VEIL_UAPI_METRICS_LISTEN, key_metrics_listen },
	{ VEIL_UAPI_ROTATE_PRIVATE_KEY, key_rotate_private_key },
	{ "public_key", key_public_key },
};

static const struct key_handler peer_keys[] = {
	{ "public_key", key_public_key },
	{ "update_only", key_update_only },
	{ "remove", key_remove },
	{ "preshared_key", key_preshared_key },
	{ "endpoint", key_endpoint },
	{ VEIL_UAPI_ENDPOINT_NAME, key_endpoint_name },
	{ VEIL_UAPI_CIPHER, key_cipher },
	{ "persistent_keepalive_interval", key_keepalive },
	{ "replace_allowed_ips", key_replace_allowed_ips },
	{ "allowed_ip", key_allowed_ip },
	{ "protocol_version", key_protocol_version },
};

/* Applies one non-empty set line (NUL-terminated at len). */
static int set_line(struct uapi_conn *c, char *line, size_t len)
{
	const struct key_handler *tbl = device_keys;
	size_t n = ARRAY_SIZE(device_keys), i;
	char *eq = memchr(line, '=', len);

	/* wireguard-go's order: no '=' is a protocol error, whatever else the line holds. */
	if (!eq)
		return -EPROTO;
	if (memchr(line, '\0', len))
		return -EINVAL;
	*eq = '\0';
	if (c->peer_state != PEER_NONE) {
		tbl = peer_keys;
		n = ARRAY_SIZE(peer_keys);
	}
	for (i = 0; i < n; i++)
		if (strcmp(line, tbl[i].name) == 0)
			return tbl[i].fn(c, eq + 1);
	return -EINVAL;
}

/* ---- requests ---- */

static int __must_check reply_errno(struct uapi_buf *out, int err)
{
	char s[32];
	int n = snprintf(s, sizeof(s), "errno=%d\n\n", err);

	return buf_append(out, s, (size_t)n);
}

/* The empty line ending a set (in SET or SKIP state). */
static int end_set(struct uapi_conn *c, struct uapi_buf *out)
{
	int err = c->state == ST_SKIP ? c->err : finish_peer(c);

	c->peer_state = PEER_NONE;
	c->peer = NULL;
	c->update_only = c->created = false;
	sodium_memzero(c->pub, sizeof(c->pub));
	if (c->ops->set_end)
		c->ops->set_end(c->ctx, err);
	c->state = ST_OP;
	c->err = 0;
	return reply_errno(out, err);
}

static int do_get(struct uapi_conn *c, struct uapi_buf *out)
{
	struct uapi_writer w = { .buf = out, .err = 0, .veil = c->get == GET_VEIL };
	size_t mark = out->len;
	int (*fn)(void *ctx, struct uapi_writer *w) = c->get == GET_METRICS ? c->ops->metrics : c->ops->get;
	int ret = fn ? fn(c->ctx, &w) : -EOPNOTSUPP;

	/* Out of memory for the reply is fatal; a writer misused is the backend's error. */
	if (ret >= 0 || w.err == -ENOMEM)
		ret = w.err;
	if (ret < 0)
		buf_truncate(out, mark);
	if (ret == -ENOMEM && w.err == -ENOMEM)
		return ret;
	c->state = ST_OP;
	return reply_errno(out, ret);
}

/* A complete line in state OP or SET; returns 0, 1 (close) or a negative errno. */
static int handle_line(struct uapi_conn *c, struct uapi_buf *out)
{
	char *line = c->line;
	size_t len = c->line_len;
	int ret;

	line[len] = '\0';
	if (c->state == ST_OP) {
		if (len == 5 && memcmp(line, "get=1", 5) == 0) {
			c->state = ST_GET_NL;
			c->get = GET_WG;
		} else if (len == strlen(VEIL_UAPI_GET "=1") && memcmp(line, VEIL_UAPI_GET "=1", len) == 0) {
			c->state = ST_GET_NL;
			c->get = GET_VEIL;
		} else if (len == strlen(VEIL_UAPI_METRICS "=1") && memcmp(line, VEIL_UAPI_METRICS "=1", len) == 0 &&
			   c->ops->metrics) {
			/* veil's own: Prometheus text instead of key=value lines. */
			c->state = ST_GET_NL;
			c->get = GET_METRICS;
		} else if (len == 5 && memcmp(line, "set=1", 5) == 0) {
			c->state = ST_SET;
			if (c->ops->set_begin)
				c->ops->set_begin(c->ctx);
		} else {
			return 1;
		}
		return 0;
	}
	if (len == 0)
		return end_set(c, out);
	ret = set_line(c, line, len);
	if (ret < 0) {
		c->err = ret;
		c->state = ST_SKIP;
		c->skip_mid = false;
	}
	return 0;
}

/* SKIP: discards data up to the empty line. Returns bytes used, sets *done at the end. */
static size_t skip(struct uapi_conn *c, const char *data, size_t len, bool *done)
{
	const char *nl = memchr(data, '\n', len);

	*done = false;
	if (!nl) {
		c->skip_mid = c->skip_mid || len > 0;
		return len;
	}
	if (nl == data && !c->skip_mid)
		*done = true;
	c->skip_mid = false;
	return (size_t)(nl - data) + 1;
}

/*
 * LONG: a set line past UAPI_LINE_MAX, read without keeping it. Its '\n'
 * makes it an error like any bad line (no value is that long); at
 * UAPI_LINE_LIMIT bytes the request fails with -EIO at once and the
 * connection closes, as wireguard-go's line scanner gives up there.
 */
static int long_line(struct uapi_conn *c, const char *data, size_t len, size_t *pos,
		     struct uapi_buf *out)
{
	const char *p = data + *pos, *nl = memchr(p, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - p) : len - *pos;
	int ret;

	if (n > UAPI_LINE_LIMIT - c->long_len)
		n = UAPI_LINE_LIMIT - c->long_len;
	c->long_eq = c->long_eq || memchr(p, '=', n);
	c->long_len += n;
	*pos += n;
	if (c->long_len >= UAPI_LINE_LIMIT) {
		c->state = ST_SKIP;
		c->err = -EIO;
		ret = end_set(c, out);
		c->state = ST_DRAIN;
		c->skip_mid = true;
		return ret;
	}
	if (nl) {
		(*pos)++;
		c->err = c->long_eq ? -EINVAL : -EPROTO;
		c->state = ST_SKIP;
		c->skip_mid = false;
	}
	return 0;
}

/*
 * OP or SET: buffers bytes into the line. Returns the bytes used, or 0 when
 * the line would exceed UAPI_LINE_MAX (then nothing was used). *complete
 * says whether the '\n' was reached.
 */
static size_t gather(struct uapi_conn *c, const char *data, size_t len, bool *complete)
{
	const char *nl = memchr(data, '\n', len);
	size_t n = nl ? (size_t)(nl - data) : len;

	*complete = false;
	if (n > UAPI_LINE_MAX - c->line_len)
		return 0;
	memcpy(c->line + c->line_len, data, n);
	c->line_len += n;
	*complete = nl != NULL;
	return nl ? n + 1 : n;
}

/* One step of the state machine over data[*pos..len). */
static int step(struct uapi_conn *c, const char *data, size_t len, size_t *pos,
		struct uapi_buf *out)
{
	bool flag;
	size_t used;
	int ret = 0;

	switch (c->state) {
	case ST_GET_NL:
		if (data[(*pos)++] == '\n')
			return do_get(c, out);
		ret = reply_errno(out, -EINVAL);
		return ret < 0 ? ret : 1;
	case ST_SKIP:
		*pos += skip(c, data + *pos, len - *pos, &flag);
		return flag ? end_set(c, out) : 0;
	case ST_LONG:
		return long_line(c, data, len, pos, out);
	case ST_DRAIN:
		*pos += skip(c, data + *pos, len - *pos, &flag);
		return flag ? 1 : 0;
	case ST_OP:
	case ST_SET:
		used = gather(c, data + *pos, len - *pos, &flag);
		if (!used && len > *pos) {
			/* Too long: no operation is; in a set it is read on, unkept. */
			if (c->state == ST_OP)
				return 1;
			c->long_len = c->line_len;
			c->long_eq = memchr(c->line, '=', c->line_len) != NULL;
			sodium_memzero(c->line, c->line_len);
			c->line_len = 0;
			c->state = ST_LONG;
			return 0;
		}
		*pos += used;
		if (flag) {
			ret = handle_line(c, out);
			sodium_memzero(c->line, c->line_len + 1);
			c->line_len = 0;
		}
		return ret;
	case ST_CLOSED:
		break;
	}
	return 1;
}

int uapi_conn_feed_one(struct uapi_conn *c, const char *data, size_t len, struct uapi_buf *out,
		       size_t *used)
{
	size_t pos = 0, before = out->len;
	int ret = 0;

	while (pos < len && ret == 0 && out->len == before)
		ret = step(c, data, len, &pos, out);
	*used = pos;
	if (c->state == ST_CLOSED)
		ret = 1;
	else if (ret != 0)
		c->state = ST_CLOSED;
	return ret;
}

int uapi_conn_feed(struct uapi_conn *c, const char *data, size_t len, struct uapi_buf *out)
{
	size_t pos = 0, used;
	int ret;

	do {
		ret = uapi_conn_feed_one(c, data + pos, len - pos, out, &used);
		pos += used;
	} while (ret == 0 && pos < len);
	return ret;
}

int uapi_conn_eof(struct uapi_conn *c, struct uapi_buf *out)
{
	int ret = 0;

	if (c->state == ST_SET && c->line_len) {
		/* A last line without its '\n' counts, as for wireguard-go's scanner. */
		ret = handle_line(c, out);
		sodium_memzero(c->line, c->line_len + 1);
		c->line_len = 0;
	} else if (c->state == ST_LONG) {
		c->err = c->long_eq ? -EINVAL : -EPROTO;
		c->state = ST_SKIP;
	}
	if (ret == 0 && (c->state == ST_SET || c->state == ST_SKIP))
		ret = end_set(c, out);
	c->state = ST_CLOSED;
	return ret < 0 ? ret : 1;
}

struct uapi_conn *uapi_conn_new(const struct uapi_backend_ops *ops, void *ctx)
{
	struct uapi_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ops = ops;
	c->ctx = ctx;
	c->state = ST_OP;
	return c;
}

void uapi_conn_free(struct uapi_conn *c)
{
	if (!c)
		return;
	if ((c->state == ST_SET || c->state == ST_SKIP || c->state == ST_LONG) && c->ops->set_end)
		c->ops->set_end(c->ctx, -EIO);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

/* ---- get ---- */


static void put(struct uapi_writer *w, const char *s, size_t n)
{
	if (w->err == 0)
		w->err = buf_append(w->buf, s, n);
}

int uapi_render(struct uapi_buf *out, int (*fn)(void *ctx, struct uapi_writer *w), void *ctx)
{
	struct uapi_writer w = { .buf = out, .err = 0 };
	int ret = fn(ctx, &w);

	return ret < 0 ? ret : w.err;
}

void uapi_put_text(struct uapi_writer *w, const char *fmt, ...)
{
	char s[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	/* An empty line would end the reply early; a cut line would lie. */
	if (n <= 0 || n >= (int)sizeof(s) || strstr(s, "\n\n") || s[0] == '\n')
		w->err = w->err ? w->err : -ENOBUFS;
	else
		put(w, s, (size_t)n);
}

/*
 * Writes "key=value\n" with value printf-formatted. Any line a set accepts
 * (UAPI_LINE_MAX bytes) fits, so every value set comes back whole: a
 * shorter buffer once cut veil_get=1 off at a 114-byte endpoint_name.
 */
__attribute__((format(printf, 3, 4)))
static void putf(struct uapi_writer *w, const char *key, const char *fmt, ...)
{
	char s[UAPI_LINE_MAX + 2];
	va_list ap;
	int n = snprintf(s, sizeof(s), "%s=", key);

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	n += vsnprintf(s + n, sizeof(s) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(s) - 1) {
		w->err = w->err ? w->err : -ENOBUFS;
		n = (int)sizeof(s) - 1;
	} else {
		s[n++] = '\n';
		put(w, s, (size_t)n);
	}
	/* The line may have been a private key. */
	sodium_memzero(s, (size_t)n);
}

static void put_key(struct uapi_writer *w, const char *name, const uint8_t key[static 32])
{
	char hex[65];

	key_to_hex(hex, key);
	putf(w, name, "%s", hex);
	sodium_memzero(hex, sizeof(hex));
}

void uapi_get_device(struct uapi_writer *w, const uint8_t *private_key, uint16_t listen_port,
		     uint32_t fwmark)
{
	if (private_key)
		put_key(w, "private_key", private_key);
	if (listen_port)
		putf(w, "listen_port", "%u", (unsigned int)listen_port);
	if (fwmark)
		putf(w, "fwmark", "%lu", (unsigned long)fwmark);
}

static void put_endpoint_as(struct uapi_writer *w, const char *key, const struct sockaddr *sa)
{
	char addr[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof(addr));
		putf(w, key, "%s:%u", addr, (unsigned int)ntohs(in4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		char scope[16] = "";

		/* A numeric scope: `wg` parses it with getaddrinfo, which accepts it. */
		if (in6->sin6_scope_id)
			snprintf(scope, sizeof(scope), "%%%lu", (unsigned long)in6->sin6_scope_id);
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		putf(w, key, "[%s%s]:%u", addr, scope, (unsigned int)ntohs(in6->sin6_port));
	}
}

void uapi_get_metrics_listen(struct uapi_writer *w, const struct sockaddr *sa)
{
	if (w->veil && sa)
		put_endpoint_as(w, VEIL_UAPI_METRICS_LISTEN, sa);
}

/* The latest refused handshake: its second and its reason, kept to one line. */
static void put_failure(struct uapi_writer *w, uint64_t sec, const char *why)
{
	char line[256];
	size_t i;

	snprintf(line, sizeof(line), "%s", why);
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	putf(w, VEIL_UAPI_LAST_FAILURE_TIME, "%llu", (unsigned long long)sec);
	putf(w, VEIL_UAPI_LAST_FAILURE, "%s", line);
}

/* Order as wireguard-go writes it (its device/uapi.go); public_key must come first. */
void uapi_get_peer(struct uapi_writer *w, const struct uapi_peer_info *p)
{
	put_key(w, "public_key", p->public_key);
	put_key(w, "preshared_key", p->preshared_key);
	putf(w, "protocol_version", "1");
	if (p->endpoint)
		put_endpoint_as(w, "endpoint", p->endpoint);
	putf(w, "last_handshake_time_sec", "%llu", (unsigned long long)p->last_handshake_sec);
	putf(w, "last_handshake_time_nsec", "%lu", (unsigned long)p->last_handshake_nsec);
	putf(w, "tx_bytes", "%llu", (unsigned long long)p->tx_bytes);
	putf(w, "rx_bytes", "%llu", (unsigned long long)p->rx_bytes);
	putf(w, "persistent_keepalive_interval", "%u", (unsigned int)p->persistent_keepalive);
	if (!w->veil)
		return;
	putf(w, VEIL_UAPI_CIPHER, "%s",
	     p->cipher == UAPI_CIPHER_AES256GCM ? VEIL_CIPHER_AES256GCM : VEIL_CIPHER_CHACHA20POLY1305);
	if (p->endpoint_name && *p->endpoint_name)
		putf(w, VEIL_UAPI_ENDPOINT_NAME, "%s", p->endpoint_name);
	putf(w, VEIL_UAPI_HANDSHAKE_FAILURES, "%llu", (unsigned long long)p->handshake_failures);
	if (p->last_failure_sec)
		put_failure(w, p->last_failure_sec, p->last_failure ? p->last_failure : "");
}

void uapi_get_allowed_ip(struct uapi_writer *w, int family, const uint8_t *addr, uint8_t cidr)
{
	char s[INET6_ADDRSTRLEN];

	if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, s, sizeof(s))) {
		w->err = w->err ? w->err : -EINVAL;
		return;
	}
	putf(w, "allowed_ip", "%s/%u", s, (unsigned int)cidr);
}
