// SPDX-License-Identifier: MIT
/*
 * UAPI text protocol: every set key with good and bad values, the requests
 * stock `wg` sends (wireguard-tools' ipc-uapi.h), partial apply and skipping, several
 * requests per connection, update_only, the device's own key, overlong
 * lines, a byte-exact get, and every value a set accepts coming back whole
 * through get=1 and veil_get=1 at its longest. A fake backend logs every call as a line of
 * text, so each case compares a reply and a log with literal strings. Every
 * case runs whole, one byte per feed, and cut in two at every position.
 */
#include "uapi.c"

#include "resolver.h" /* RESOLVER_NAME_MAX: the longest endpoint name veild takes */

#include "test_util.h"

#define PRIV "e0963453f078bbc6bd916923649965cee8408ce93dba48e1acfdefbca6f5127b"
#define PRIV_UP "E0963453F078BBC6BD916923649965CEE8408CE93DBA48E1ACFDEFBCA6F5127B"
#define PRIV_MIX "e0963453F078bbc6BD916923649965cee8408CE93dba48e1acfdefbca6f5127B"
#define PSK "5a8fd708f76eef4a4a2c9b2b9cea9f4404f688a03ad77483651de129d48462d3"
#define P1 "1111196565a831ef3d25b6de88bb2adee476ead531944713692e92fda512c3b9"
#define P2 "2222cc48854ea9716a7dd836826a83cb801c5d2438c7ba1eef9c8f2ad6a297f2"
#define P3 "33335d69987f69b4ff9829823f8fcec602715e385ec176c0b819856e756ad7ea"
#define OWN "0e0e3dcff4759070bdadb8f2dfd552edf59646597d5ef4e893d13f4900679780"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"

/* What the fake logs when a peer is first looked up and then created. */
#define NEW(name) "select " name " create=0 -> none\nselect " name " create=1 -> new\n"

/* ---- the fake backend ---- */

struct setup {
	const char *existing[4]; /* hex public keys of peers present beforehand */
	const char *fail;	 /* name of the op that fails (after logging), or NULL */
	int fail_err;
	int get_mode;
};

struct fake_peer {
	bool used;
	uint8_t pub[32];
	char name[5]; /* the first four hex digits of the key */
};

struct fake {
	const struct setup *s;
	uint8_t own[32];
	struct fake_peer peers[8];
	size_t len;
	char log[16384];
};

__attribute__((format(printf, 2, 3)))
static void flog(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(f->log + f->len, sizeof(f->log) - f->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(f->log) - f->len);
	f->len += (size_t)n;
}

static int result(struct fake *f, const char *op)
{
	return f->s->fail && strcmp(f->s->fail, op) == 0 ? f->s->fail_err : 0;
}

static struct fake_peer *fake_add(struct fake *f, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(f->peers); i++) {
		struct fake_peer *p = &f->peers[i];

		if (!p->used) {
			p->used = true;
			memcpy(p->pub, pub, 32);
			snprintf(p->name, sizeof(p->name), "%02x%02x", pub[0], pub[1]);
			return p;
		}
	}
	fail_msg("fake: too many peers");
	return NULL;
}

static void fake_init(struct fake *f, const struct setup *s)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	f->s = s;
	unhex(f->own, 32, OWN);
	for (i = 0; i < ARRAY_SIZE(s->existing) && s->existing[i]; i++) {
		uint8_t pub[32];

		unhex(pub, 32, s->existing[i]);
		fake_add(f, pub);
	}
}

static void hex32(char out[65], const uint8_t *k)
{
	size_t i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

static int f_private_key(void *ctx, const uint8_t key[static 32])
{
	char h[65];

	hex32(h, key);
	flog(ctx, "private_key %s\n", h);
	return result(ctx, "private_key");
}

static int f_listen_port(void *ctx, uint16_t port)
{
	flog(ctx, "listen_port %u\n", (unsigned int)port);
	return result(ctx, "listen_port");
}

static int f_fwmark(void *ctx, uint32_t mark)
{
	flog(ctx, "fwmark %lu\n", (unsigned long)mark);
	return result(ctx, "fwmark");
}

static int f_replace_peers(void *ctx)
{
	struct fake *f = ctx;

	flog(f, "replace_peers\n");
	memset(f->peers, 0, sizeof(f->peers));
	return result(f, "replace_peers");
}

static int f_select(void *ctx, const uint8_t pub[static 32], bool create, void **peer)
{
	struct fake *f = ctx;
	const char *what = "none";
	size_t i;

	*peer = NULL;
	for (i = 0; i < ARRAY_SIZE(f->peers) && memcmp(pub, f->own, 32); i++) {
		if (f->peers[i].used && memcmp(f->peers[i].pub, pub, 32) == 0) {
			*peer = &f->peers[i];
			what = "found";
		}
	}
	if (!*peer && create && memcmp(pub, f->own, 32)) {
		*peer = fake_add(f, pub);
		what = "new";
	}
	flog(f, "select %02x%02x create=%d -> %s\n", pub[0], pub[1], create, what);
	return result(f, "select");
}

static int f_remove(void *ctx, void *peer)
{
	struct fake_peer *p = peer;

	flog(ctx, "[%s] remove\n", p->name);
	p->used = false;
	return result(ctx, "remove");
}

static int f_psk(void *ctx, void *peer, const uint8_t psk[static 32])
{
	char h[65];

	hex32(h, psk);
	flog(ctx, "[%s] psk %s\n", ((struct fake_peer *)peer)->name, h);
	return result(ctx, "psk");
}

static int f_endpoint(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len)
{
	const char *name = ((struct fake_peer *)peer)->name;
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)sa;

		assert_int_equal(len, sizeof(*in4));
		inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a));
		flog(ctx, "[%s] endpoint %s:%u\n", name, a, (unsigned int)ntohs(in4->sin_port));
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		assert_int_equal(sa->sa_family, AF_INET6);
		assert_int_equal(len, sizeof(*in6));
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		flog(ctx, "[%s] endpoint [%s]:%u scope %lu\n", name, a,
		     (unsigned int)ntohs(in6->sin6_port), (unsigned long)in6->sin6_scope_id);
	}
	return result(ctx, "endpoint");
}

static int f_keepalive(void *ctx, void *peer, uint16_t interval)
{
	flog(ctx, "[%s] keepalive %u\n", ((struct fake_peer *)peer)->name, (unsigned int)interval);
	return result(ctx, "keepalive");
}

static int f_replace_allowed_ips(void *ctx, void *peer)
{
	flog(ctx, "[%s] replace_allowed_ips\n", ((struct fake_peer *)peer)->name);
	return result(ctx, "replace_allowed_ips");
}

static void log_prefix(void *ctx, void *peer, char sign, int family, const uint8_t *addr,
		       uint8_t cidr)
{
	char a[INET6_ADDRSTRLEN];

	assert_true(family == AF_INET || family == AF_INET6);
	inet_ntop(family, addr, a, sizeof(a));
	flog(ctx, "[%s] allowed_ip %c%s/%u\n", ((struct fake_peer *)peer)->name, sign, a,
	     (unsigned int)cidr);
}

static int f_add_ip(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	log_prefix(ctx, peer, '+', family, addr, cidr);
	return result(ctx, "allowed_ip");
}

static int f_del_ip(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	log_prefix(ctx, peer, '-', family, addr, cidr);
	return result(ctx, "allowed_ip");
}

static void f_begin(void *ctx)
{
	flog(ctx, "begin\n");
}

static void f_end(void *ctx, int err)
{
	flog(ctx, "end %d\n", err);
}

static struct sockaddr_in sin4(const char *a, uint16_t port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };

	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6(const char *a, uint16_t port, uint32_t scope)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				  .sin6_scope_id = scope };

	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return s;
}

static void prefix(struct uapi_writer *w, int family, const char *a, uint8_t cidr)
{
	uint8_t addr[16];

	assert_int_equal(inet_pton(family, a, addr), 1);
	uapi_get_allowed_ip(w, family, addr, cidr);
}

/* get_mode 1: a full device with a v4 and a v6 peer. */
static void get_two_peers(struct uapi_writer *w)
{
	struct sockaddr_in e4 = sin4("192.0.2.1", 51820);
	struct sockaddr_in6 e6 = sin6("2001:db8::1", 51821, 0);
	struct uapi_peer_info p = {
		.endpoint = (const struct sockaddr *)&e4,
		.last_handshake_sec = 1700000000,
		.last_handshake_nsec = 123456789,
		.tx_bytes = 18446744073709551615ull,
		.rx_bytes = 5678,
		.persistent_keepalive = 25,
	};
	uint8_t priv[32];

	unhex(priv, 32, PRIV);
	uapi_get_device(w, priv, 51820, 4294967295u);
	unhex(p.public_key, 32, P1);
	unhex(p.preshared_key, 32, PSK);
	uapi_get_peer(w, &p);
	prefix(w, AF_INET, "10.0.0.2", 32);
	prefix(w, AF_INET, "10.1.0.0", 16);
	memset(&p, 0, sizeof(p));
	unhex(p.public_key, 32, P2);
	p.endpoint = (const struct sockaddr *)&e6;
	uapi_get_peer(w, &p);
	prefix(w, AF_INET6, "fd00::2", 128);
	prefix(w, AF_INET, "10.2.0.0", 24);
	prefix(w, AF_INET6, "::", 0);
}

/* get_mode 2: no private key, port or fwmark; a peer without endpoint; a scoped one. */
static void get_sparse(struct uapi_writer *w)
{
	struct sockaddr_in6 e6 = sin6("fe80::1", 1, 7);
	struct uapi_peer_info p = { .endpoint = NULL };

	uapi_get_device(w, NULL, 0, 0);
	unhex(p.public_key, 32, P1);
	uapi_get_peer(w, &p);
	unhex(p.public_key, 32, P2);
	p.endpoint = (const struct sockaddr *)&e6;
	uapi_get_peer(w, &p);
}

/*
 * get_mode 5: an AES peer with an endpoint name and refused handshakes (the
 * reason with a newline, which must not end its line), a default one
 * without either (veil's keys).
 */
static void get_veil(struct uapi_writer *w)
{
	struct uapi_peer_info p = { .cipher = UAPI_CIPHER_AES256GCM, .endpoint_name = "peer.example:51820",
				    .handshake_failures = 3, .last_failure_sec = 1700000123,
				    .last_failure = "cipher mismatch: a\nb" };

	uapi_get_device(w, NULL, 0, 0);
	unhex(p.public_key, 32, P1);
	uapi_get_peer(w, &p);
	p = (struct uapi_peer_info){ .cipher = UAPI_CIPHER_CHACHA20POLY1305, .endpoint_name = "" };
	unhex(p.public_key, 32, P2);
	uapi_get_peer(w, &p);
}

static int f_get(void *ctx, struct uapi_writer *w)
{
	struct fake *f = ctx;

	flog(f, "get\n");
	switch (f->s->get_mode) {
	case 1:
		get_two_peers(w);
		return 0;
	case 2:
		get_sparse(w);
		return 0;
	case 3: /* fails after writing: the partial output must vanish */
		get_two_peers(w);
		return -ENOANO;
	case 5:
		get_veil(w);
		return 0;
	case 4: /* misuses a writer */
		uapi_get_device(w, NULL, 1, 0);
		uapi_get_allowed_ip(w, AF_UNIX, (const uint8_t *)"x", 1);
		return 0;
	default:
		uapi_get_device(w, NULL, 0, 0);
		return 0;
	}
}

static int f_endpoint_name(void *ctx, void *peer, const char *name)
{
	flog(ctx, "[%s] endpoint_name '%s'\n", ((struct fake_peer *)peer)->name, name);
	return result(ctx, "endpoint_name");
}

static int f_cipher(void *ctx, void *peer, int cipher)
{
	flog(ctx, "[%s] cipher %d\n", ((struct fake_peer *)peer)->name, cipher);
	return result(ctx, "cipher");
}

static const struct uapi_backend_ops fake_ops = {
	.set_private_key = f_private_key,
	.set_listen_port = f_listen_port,
	.set_fwmark = f_fwmark,
	.replace_peers = f_replace_peers,
	.peer_select = f_select,
	.peer_remove = f_remove,
	.peer_set_preshared_key = f_psk,
	.peer_set_endpoint = f_endpoint,
	.peer_set_endpoint_name = f_endpoint_name,
	.peer_set_cipher = f_cipher,
	.peer_set_keepalive = f_keepalive,
	.peer_replace_allowed_ips = f_replace_allowed_ips,
	.peer_add_allowed_ip = f_add_ip,
	.peer_remove_allowed_ip = f_del_ip,
	.set_begin = f_begin,
	.set_end = f_end,
	.get = f_get,
};

/* ---- the harness ---- */

/* Whether the client closes its side after the request (uapi_conn_eof) before the connection goes. */
static bool at_eof;

/* A failed case leaves by longjmp: the next test must not inherit at_eof. */
static int reset_eof(void **state)
{
	(void)state;
	at_eof = false;
	return 0;
}

/* Feeds req cut at cuts[] over one connection, then frees it; returns the last feed's result. */
static int run_cuts(struct fake *f, const char *req, size_t len, const size_t *cuts, size_t ncuts,
		    struct uapi_buf *out)
{
	struct uapi_conn *c = uapi_conn_new(&fake_ops, f);
	size_t start = 0, i;
	int rc = 0;

	assert_non_null(c);
	for (i = 0; i <= ncuts && rc == 0; i++) {
		size_t end = i < ncuts ? cuts[i] : len;

		rc = uapi_conn_feed(c, req + start, end - start, out);
		start = end;
	}
	if (rc != 0)
		assert_int_equal(uapi_conn_feed(c, "get=1\n\n", 7, out), 1);
	else if (at_eof)
		rc = uapi_conn_eof(c, out);
	uapi_conn_free(c);
	return rc;
}

struct want {
	const char *reply;
	const char *log;
	int rc;
};

static void expect_cuts(const char *mode, size_t k, const struct setup *s, const char *req,
			size_t len, const size_t *cuts, size_t ncuts, const struct want *w)
{
	struct uapi_buf out = { 0 };
	struct fake f;
	int rc;

	fake_init(&f, s);
	rc = run_cuts(&f, req, len, cuts, ncuts, &out);
	assert_int_equal(buf_append(&out, "", 1), 0);
	if (rc != w->rc || strcmp(out.data, w->reply) != 0 || strcmp(f.log, w->log) != 0)
		fail_msg("%s %zu: rc %d (want %d)\n-- request:\n%.300s\n-- reply:\n%s-- want:\n%s"
			 "-- log:\n%s-- want:\n%s",
			 mode, k, rc, w->rc, req, out.data, w->reply, f.log, w->log);
	uapi_buf_free(&out);
}

/* Runs req whole, one byte per feed, and in two feeds cut at every position. */
static void expect_len(const struct setup *s, const char *req, size_t len, const char *reply,
		       const char *log, int rc)
{
	const struct want w = { reply, log, rc };
	size_t *cuts = calloc(len + 1, sizeof(*cuts));
	size_t k;

	assert_non_null(cuts);
	expect_cuts("whole", 0, s, req, len, NULL, 0, &w);
	for (k = 1; k < len; k++)
		cuts[k - 1] = k;
	expect_cuts("bytes", 0, s, req, len, cuts, len ? len - 1 : 0, &w);
	for (k = 1; k < len; k++)
		expect_cuts("cut", k, s, req, len, &k, 1, &w);
	free(cuts);
}

static void expect(const struct setup *s, const char *req, const char *reply, const char *log,
		   int rc)
{
	expect_len(s, req, strlen(req), reply, log, rc);
}

static const struct setup plain = { .existing = { NULL } };

/* ---- hex ---- */

static void test_hex_digit(void **state)
{
	unsigned int c;

	(void)state;
	for (c = 0; c < 256; c++) {
		unsigned int got = hex_digit((unsigned char)c);
		int want = hexval((char)c);

		if (want < 0 ? !(got & 0x100) : got != (unsigned int)want)
			fail_msg("char %u: got %#x want %d", c, got, want);
	}
}

static void test_hex_keys(void **state)
{
	uint8_t k[32], want[32];
	char h[65];
	size_t i, j;

	(void)state;
	unhex(want, 32, PRIV);
	assert_int_equal(key_from_hex(k, PRIV_UP), 0);
	assert_memory_equal(k, want, 32);
	assert_int_equal(key_from_hex(k, PRIV_MIX), 0);
	assert_memory_equal(k, want, 32);
	key_to_hex(h, want);
	assert_string_equal(h, PRIV);
	/* Every byte value survives the round trip. */
	for (i = 0; i < 256; i += 32) {
		for (j = 0; j < 32; j++)
			want[j] = (uint8_t)(i + j);
		key_to_hex(h, want);
		assert_int_equal(key_from_hex(k, h), 0);
		assert_memory_equal(k, want, 32);
	}
	/* A bad digit anywhere fails and leaves no partial key behind. */
	for (i = 0; i < 64; i++) {
		memcpy(h, PRIV, 65);
		h[i] = 'g';
		memset(k, 0xff, 32);
		assert_int_equal(key_from_hex(k, h), -EINVAL);
		assert_true(sodium_is_zero(k, 32));
	}
}

/* ---- set: one line at a time ---- */

struct row {
	const char *line;
	int err;
	const char *log; /* between "begin" and "end" */
	const char *fail;
	int fail_err;
};

/* Runs "set=1\n" prefix line "\n\n" for each row. */
static void run_rows(const char *prefix_lines, const struct row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct setup s = { .existing = { NULL }, .fail = rows[i].fail,
					 .fail_err = rows[i].fail_err };
		char req[512], reply[32], log[2048];

		snprintf(req, sizeof(req), "set=1\n%s%s\n\n", prefix_lines, rows[i].line);
		snprintf(reply, sizeof(reply), "errno=%d\n\n", rows[i].err);
		snprintf(log, sizeof(log), "begin\n%send %d\n", rows[i].log, rows[i].err);
		expect(&s, req, reply, log, 0);
	}
}

static const struct row device_rows[] = {
	{ "private_key=" PRIV, 0, "private_key " PRIV "\n", NULL, 0 },
	{ "private_key=" PRIV_UP, 0, "private_key " PRIV "\n", NULL, 0 },
	{ "private_key=" ZERO, 0, "private_key " ZERO "\n", NULL, 0 },
	{ "private_key=" PRIV "0", -EINVAL, "", NULL, 0 },
	{ "private_key=e0963453f078bbc6bd916923649965cee8408ce93dba48e1acfdefbca6f5127", -EINVAL, "", NULL, 0 },
	{ "private_key=x0963453f078bbc6bd916923649965cee8408ce93dba48e1acfdefbca6f5127b", -EINVAL, "", NULL, 0 },
	{ "private_key= " PRIV, -EINVAL, "", NULL, 0 },
	{ "private_key=", -EINVAL, "", NULL, 0 },
	{ "private_key=" PRIV, -EIO, "private_key " PRIV "\n", "private_key", -EIO },
	{ "listen_port=0", 0, "listen_port 0\n", NULL, 0 },
	{ "listen_port=4000", 0, "listen_port 4000\n", NULL, 0 },
	{ "listen_port=65535", 0, "listen_port 65535\n", NULL, 0 },
	{ "listen_port=0051820", 0, "listen_port 51820\n", NULL, 0 },
	{ "listen_port=65536", -EINVAL, "", NULL, 0 },
	{ "listen_port=99999999999999999999999", -EINVAL, "", NULL, 0 },
	{ "listen_port=-1", -EINVAL, "", NULL, 0 },
	{ "listen_port=+1", -EINVAL, "", NULL, 0 },
	{ "listen_port=0x10", -EINVAL, "", NULL, 0 },
	{ "listen_port= 1", -EINVAL, "", NULL, 0 },
	{ "listen_port=1 ", -EINVAL, "", NULL, 0 },
	{ "listen_port=", -EINVAL, "", NULL, 0 },
	{ "listen_port=1=2", -EINVAL, "", NULL, 0 },
	{ "listen_port=4000", -EADDRINUSE, "listen_port 4000\n", "listen_port", -EADDRINUSE },
	{ "fwmark=0", 0, "fwmark 0\n", NULL, 0 },
	{ "fwmark=16", 0, "fwmark 16\n", NULL, 0 },
	{ "fwmark=4294967295", 0, "fwmark 4294967295\n", NULL, 0 },
	{ "fwmark=4294967296", -EINVAL, "", NULL, 0 },
	{ "fwmark=0x10", -EINVAL, "", NULL, 0 },
	{ "fwmark=off", -EINVAL, "", NULL, 0 },
	{ "replace_peers=true", 0, "replace_peers\n", NULL, 0 },
	{ "replace_peers=false", -EINVAL, "", NULL, 0 },
	{ "replace_peers=TRUE", -EINVAL, "", NULL, 0 },
	{ "replace_peers=1", -EINVAL, "", NULL, 0 },
	{ "replace_peers=", -EINVAL, "", NULL, 0 },
	{ "listen_port", -EPROTO, "", NULL, 0 },
	{ "garbage", -EPROTO, "", NULL, 0 },
	{ "=", -EINVAL, "", NULL, 0 },
	{ "=1", -EINVAL, "", NULL, 0 },
	{ "bogus=1", -EINVAL, "", NULL, 0 },
	{ "Listen_port=1", -EINVAL, "", NULL, 0 },
	/* Keys that only get emits. */
	{ "last_handshake_time_sec=0", -EINVAL, "", NULL, 0 },
	{ "last_handshake_time_nsec=0", -EINVAL, "", NULL, 0 },
	{ "rx_bytes=0", -EINVAL, "", NULL, 0 },
	{ "tx_bytes=0", -EINVAL, "", NULL, 0 },
	{ "errno=0", -EINVAL, "", NULL, 0 },
	/* Peer keys before any public_key. */
	{ "protocol_version=1", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:1", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.0/8", -EINVAL, "", NULL, 0 },
	{ "remove=true", -EINVAL, "", NULL, 0 },
	{ "update_only=true", -EINVAL, "", NULL, 0 },
	{ "preshared_key=" PSK, -EINVAL, "", NULL, 0 },
	{ "persistent_keepalive_interval=1", -EINVAL, "", NULL, 0 },
	{ "replace_allowed_ips=true", -EINVAL, "", NULL, 0 },
	/* A peer named and nothing else is created. */
	{ "public_key=" P1, 0, NEW("1111"), NULL, 0 },
	{ "public_key=" P1 "ff", -EINVAL, "", NULL, 0 },
	{ "public_key=" OWN, 0, "select 0e0e create=0 -> none\nselect 0e0e create=1 -> none\n", NULL, 0 },
	{ "public_key=" P1, -ENOMEM, "select 1111 create=0 -> none\n", "select", -ENOMEM },
};

static void test_set_device_keys(void **state)
{
	(void)state;
	run_rows("", device_rows, ARRAY_SIZE(device_rows));
}

static const struct row peer_rows[] = {
	{ "preshared_key=" PSK, 0, NEW("1111") "[1111] psk " PSK "\n", NULL, 0 },
	{ "preshared_key=" ZERO, 0, NEW("1111") "[1111] psk " ZERO "\n", NULL, 0 },
	{ "preshared_key=" PRIV_UP, 0, NEW("1111") "[1111] psk " PRIV "\n", NULL, 0 },
	{ "preshared_key=" PSK "0", -EINVAL, "", NULL, 0 },
	{ "preshared_key=zz", -EINVAL, "", NULL, 0 },
	{ "preshared_key=", -EINVAL, "", NULL, 0 },
	{ "preshared_key=" PSK, -EIO, NEW("1111") "[1111] psk " PSK "\n", "psk", -EIO },
	{ "endpoint=192.0.2.1:51820", 0, NEW("1111") "[1111] endpoint 192.0.2.1:51820\n", NULL, 0 },
	{ "endpoint=0.0.0.0:0", 0, NEW("1111") "[1111] endpoint 0.0.0.0:0\n", NULL, 0 },
	{ "endpoint=[::1]:5555", 0, NEW("1111") "[1111] endpoint [::1]:5555 scope 0\n", NULL, 0 },
	{ "endpoint=[2001:DB8::1]:65535", 0,
	  NEW("1111") "[1111] endpoint [2001:db8::1]:65535 scope 0\n", NULL, 0 },
	{ "endpoint=[fe80::1%7]:1", 0, NEW("1111") "[1111] endpoint [fe80::1]:1 scope 7\n", NULL, 0 },
	{ "endpoint=[::ffff:192.0.2.1]:1", 0,
	  NEW("1111") "[1111] endpoint [::ffff:192.0.2.1]:1 scope 0\n", NULL, 0 },
	{ "endpoint=[fe80::1%nosuchif0]:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=[fe80::1%]:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=[fe80::1%averyveryverylongname]:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:65536", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:-1", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:1:2", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.256:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=example.com:51820", -EINVAL, "", NULL, 0 },
	{ "endpoint=::1:5555", -EINVAL, "", NULL, 0 },
	{ "endpoint=[::1]", -EINVAL, "", NULL, 0 },
	{ "endpoint=[::1]5555", -EINVAL, "", NULL, 0 },
	{ "endpoint=[::1]:", -EINVAL, "", NULL, 0 },
	{ "endpoint=[::1:5555", -EINVAL, "", NULL, 0 },
	{ "endpoint=[192.0.2.1]:1", -EINVAL, "", NULL, 0 },
	{ "endpoint=", -EINVAL, "", NULL, 0 },
	{ "endpoint=192.0.2.1:1", -EHOSTUNREACH,
	  NEW("1111") "[1111] endpoint 192.0.2.1:1\n", "endpoint", -EHOSTUNREACH },
	{ "persistent_keepalive_interval=25", 0, NEW("1111") "[1111] keepalive 25\n", NULL, 0 },
	{ "persistent_keepalive_interval=0", 0, NEW("1111") "[1111] keepalive 0\n", NULL, 0 },
	{ "persistent_keepalive_interval=65535", 0, NEW("1111") "[1111] keepalive 65535\n", NULL, 0 },
	{ "persistent_keepalive_interval=65536", -EINVAL, "", NULL, 0 },
	{ "persistent_keepalive_interval=off", -EINVAL, "", NULL, 0 },
	{ "persistent_keepalive_interval=", -EINVAL, "", NULL, 0 },
	{ "replace_allowed_ips=true", 0, NEW("1111") "[1111] replace_allowed_ips\n", NULL, 0 },
	{ "replace_allowed_ips=false", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.5.0.0/24", 0, NEW("1111") "[1111] allowed_ip +10.5.0.0/24\n", NULL, 0 },
	{ "allowed_ip=10.5.0.1/24", 0, NEW("1111") "[1111] allowed_ip +10.5.0.1/24\n", NULL, 0 },
	{ "allowed_ip=0.0.0.0/0", 0, NEW("1111") "[1111] allowed_ip +0.0.0.0/0\n", NULL, 0 },
	{ "allowed_ip=10.6.0.1/32", 0, NEW("1111") "[1111] allowed_ip +10.6.0.1/32\n", NULL, 0 },
	{ "allowed_ip=::/0", 0, NEW("1111") "[1111] allowed_ip +::/0\n", NULL, 0 },
	{ "allowed_ip=FD00::1/128", 0, NEW("1111") "[1111] allowed_ip +fd00::1/128\n", NULL, 0 },
	{ "allowed_ip=-10.5.0.0/24", 0, NEW("1111") "[1111] allowed_ip -10.5.0.0/24\n", NULL, 0 },
	{ "allowed_ip=-fd00::/8", 0, NEW("1111") "[1111] allowed_ip -fd00::/8\n", NULL, 0 },
	{ "allowed_ip=10.0.0.1/33", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=fd00::/129", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.1", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.1/", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=/24", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.256/32", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.1/-1", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.1/ 8", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.1/8/8", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=--10.0.0.0/8", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=+10.0.0.0/8", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=fd00:::1/64", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=", -EINVAL, "", NULL, 0 },
	{ "allowed_ip=10.0.0.0/8", -ENOMEM, NEW("1111") "[1111] allowed_ip +10.0.0.0/8\n",
	  "allowed_ip", -ENOMEM },
	{ "protocol_version=1", 0, NEW("1111"), NULL, 0 },
	{ "protocol_version=2", -EINVAL, "", NULL, 0 },
	{ "protocol_version=01", -EINVAL, "", NULL, 0 },
	{ "protocol_version=", -EINVAL, "", NULL, 0 },
	/* remove never creates, and a missing peer is no error. */
	{ "remove=true", 0, "select 1111 create=0 -> none\n", NULL, 0 },
	{ "remove=false", -EINVAL, "", NULL, 0 },
	{ "remove=", -EINVAL, "", NULL, 0 },
	/* update_only alone for a missing peer: nothing at all. */
	{ "update_only=true", 0, "", NULL, 0 },
	{ "update_only=false", -EINVAL, "", NULL, 0 },
	{ "update_only=1", -EINVAL, "", NULL, 0 },
	/* The next public_key creates this one first; its own errors come after. */
	{ "public_key=" P2, 0, NEW("1111") NEW("2222"), NULL, 0 },
	{ "public_key=" P2 "0", -EINVAL, NEW("1111"), NULL, 0 },
	{ "public_key=", -EINVAL, NEW("1111"), NULL, 0 },
	/* Device keys, get-only keys and nonsense after a public_key. */
	{ "listen_port=1", -EINVAL, "", NULL, 0 },
	{ "private_key=" PRIV, -EINVAL, "", NULL, 0 },
	{ "fwmark=1", -EINVAL, "", NULL, 0 },
	{ "replace_peers=true", -EINVAL, "", NULL, 0 },
	{ "last_handshake_time_sec=0", -EINVAL, "", NULL, 0 },
	{ "last_handshake_time_nsec=0", -EINVAL, "", NULL, 0 },
	{ "rx_bytes=0", -EINVAL, "", NULL, 0 },
	{ "tx_bytes=0", -EINVAL, "", NULL, 0 },
	{ "bogus=1", -EINVAL, "", NULL, 0 },
	{ "endpoint", -EPROTO, "", NULL, 0 },
};

static void test_set_peer_keys(void **state)
{
	(void)state;
	run_rows("public_key=" P1 "\n", peer_rows, ARRAY_SIZE(peer_rows));
}

/* A scope given by interface name goes through if_nametoindex. */
static void test_endpoint_scope_name(void **state)
{
	unsigned int lo = if_nametoindex("lo");
	char log[512];

	(void)state;
	assert_true(lo != 0);
	snprintf(log, sizeof(log), "begin\n" NEW("1111") "[1111] endpoint [fe80::1]:51820 scope %u\nend 0\n",
		 lo);
	expect(&plain, "set=1\npublic_key=" P1 "\nendpoint=[fe80::1%lo]:51820\n\n", "errno=0\n\n",
	       log, 0);
}

/* ---- set: what wg sends (wireguard-tools' ipc-uapi.h) ---- */

/* a followed by b, in a static buffer: for expected logs sharing a head. */
static const char *cat(const char *a, const char *b)
{
	static char buf[8192];

	assert_true(strlen(a) + strlen(b) < sizeof(buf));
	snprintf(buf, sizeof(buf), "%s%s", a, b);
	return buf;
}

static void test_wg_set(void **state)
{
	static const char req[] =
		"set=1\n"
		"private_key=" PRIV "\n"
		"listen_port=4000\n"
		"fwmark=16\n"
		"public_key=" P1 "\n"
		"preshared_key=" PSK "\n"
		"endpoint=[::1]:5555\n"
		"persistent_keepalive_interval=25\n"
		"replace_allowed_ips=true\n"
		"allowed_ip=10.5.0.0/24\n"
		"allowed_ip=10.6.0.1/32\n"
		"public_key=" P2 "\n"
		"remove=true\n"
		"\n";
	static const char head[] =
		"begin\n"
		"private_key " PRIV "\n"
		"listen_port 4000\n"
		"fwmark 16\n"
		NEW("1111")
		"[1111] psk " PSK "\n"
		"[1111] endpoint [::1]:5555 scope 0\n"
		"[1111] keepalive 25\n"
		"[1111] replace_allowed_ips\n"
		"[1111] allowed_ip +10.5.0.0/24\n"
		"[1111] allowed_ip +10.6.0.1/32\n";
	const struct setup with_p2 = { .existing = { P2 } };

	(void)state;
	expect(&with_p2, req, "errno=0\n\n",
	       cat(head, "select 2222 create=0 -> found\n[2222] remove\nend 0\n"), 0);
	/* Removing a peer that does not exist creates nothing and is no error. */
	expect(&plain, req, "errno=0\n\n", cat(head, "select 2222 create=0 -> none\nend 0\n"), 0);
}

/* wg setconf: every device key (zeros for a missing private key), replace_peers, the peers. */
static void test_wg_setconf(void **state)
{
	const struct setup with_p1_p3 = { .existing = { P1, P3 } };

	(void)state;
	expect(&with_p1_p3,
	       "set=1\n"
	       "private_key=" PRIV "\n"
	       "listen_port=51820\n"
	       "fwmark=0\n"
	       "replace_peers=true\n"
	       "public_key=" P1 "\n"
	       "preshared_key=" PSK "\n"
	       "endpoint=192.0.2.1:51820\n"
	       "persistent_keepalive_interval=25\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.2/32\n"
	       "allowed_ip=fd00::2/128\n"
	       "public_key=" P2 "\n"
	       "endpoint=[2001:db8::1]:51820\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.3/32\n"
	       "\n",
	       "errno=0\n\n",
	       "begin\n"
	       "private_key " PRIV "\n"
	       "listen_port 51820\n"
	       "fwmark 0\n"
	       "replace_peers\n"
	       NEW("1111")
	       "[1111] psk " PSK "\n"
	       "[1111] endpoint 192.0.2.1:51820\n"
	       "[1111] keepalive 25\n"
	       "[1111] replace_allowed_ips\n"
	       "[1111] allowed_ip +10.0.0.2/32\n"
	       "[1111] allowed_ip +fd00::2/128\n"
	       NEW("2222")
	       "[2222] endpoint [2001:db8::1]:51820 scope 0\n"
	       "[2222] replace_allowed_ips\n"
	       "[2222] allowed_ip +10.0.0.3/32\n"
	       "end 0\n",
	       0);
	/* A file without keys or peers still sends all device keys. */
	expect(&with_p1_p3,
	       "set=1\nprivate_key=" ZERO "\nlisten_port=0\nfwmark=0\nreplace_peers=true\n\n",
	       "errno=0\n\n",
	       "begin\nprivate_key " ZERO "\nlisten_port 0\nfwmark 0\nreplace_peers\nend 0\n", 0);
}

/* wg addconf: no replace_peers, only the device keys present in the file. */
static void test_wg_addconf(void **state)
{
	const struct setup with_p1 = { .existing = { P1 } };

	(void)state;
	expect(&with_p1,
	       "set=1\n"
	       "listen_port=51821\n"
	       "public_key=" P1 "\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.2/32\n"
	       "public_key=" P3 "\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.4/32\n"
	       "\n",
	       "errno=0\n\n",
	       "begin\n"
	       "listen_port 51821\n"
	       "select 1111 create=0 -> found\n"
	       "[1111] replace_allowed_ips\n"
	       "[1111] allowed_ip +10.0.0.2/32\n"
	       NEW("3333")
	       "[3333] replace_allowed_ips\n"
	       "[3333] allowed_ip +10.0.0.4/32\n"
	       "end 0\n",
	       0);
}

/* wg syncconf: a get, then a set removing absent peers first and zeroing a dropped PSK. */
static void test_wg_syncconf(void **state)
{
	const struct setup s = { .existing = { P1, P3 }, .get_mode = 0 };

	(void)state;
	expect(&s, "get=1\n\n", "errno=0\n\n", "get\n", 0);
	expect(&s,
	       "set=1\n"
	       "private_key=" PRIV "\n"
	       "listen_port=51820\n"
	       "fwmark=0\n"
	       "public_key=" P3 "\n"
	       "remove=true\n"
	       "public_key=" P1 "\n"
	       "preshared_key=" ZERO "\n"
	       "endpoint=192.0.2.1:51820\n"
	       "persistent_keepalive_interval=0\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.2/32\n"
	       "public_key=" P2 "\n"
	       "replace_allowed_ips=true\n"
	       "allowed_ip=10.0.0.3/32\n"
	       "allowed_ip=fd00::3/128\n"
	       "\n",
	       "errno=0\n\n",
	       "begin\n"
	       "private_key " PRIV "\n"
	       "listen_port 51820\n"
	       "fwmark 0\n"
	       "select 3333 create=0 -> found\n"
	       "[3333] remove\n"
	       "select 1111 create=0 -> found\n"
	       "[1111] psk " ZERO "\n"
	       "[1111] endpoint 192.0.2.1:51820\n"
	       "[1111] keepalive 0\n"
	       "[1111] replace_allowed_ips\n"
	       "[1111] allowed_ip +10.0.0.2/32\n"
	       NEW("2222")
	       "[2222] replace_allowed_ips\n"
	       "[2222] allowed_ip +10.0.0.3/32\n"
	       "[2222] allowed_ip +fd00::3/128\n"
	       "end 0\n",
	       0);
}

/* wg >= 2025 with allowed-ips +A,-B: no replace_allowed_ips, a removal line. */
static void test_wg_incremental_allowed_ips(void **state)
{
	const struct setup with_p1 = { .existing = { P1 } };

	(void)state;
	expect(&with_p1,
	       "set=1\npublic_key=" P1 "\nallowed_ip=10.7.0.0/16\nallowed_ip=-10.5.0.0/24\n\n",
	       "errno=0\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] allowed_ip +10.7.0.0/16\n"
	       "[1111] allowed_ip -10.5.0.0/24\nend 0\n",
	       0);
}

/* ---- set: errors, skipping, several requests ---- */

/* Lines before the error stay applied; the rest of the request is skipped unread. */
static void test_partial_apply(void **state)
{
	const struct setup busy = { .existing = { NULL }, .fail = "listen_port",
				    .fail_err = -EADDRINUSE };

	(void)state;
	expect(&plain,
	       "set=1\nfwmark=2\npublic_key=" P1 "\nendpoint=192.0.2.1:1\nbogus=1\n"
	       "allowed_ip=10.0.0.0/8\nno equals sign\n" "private_key=" PRIV "\n\n"
	       "set=1\nfwmark=3\n\n",
	       "errno=-22\n\nerrno=0\n\n",
	       "begin\nfwmark 2\n" NEW("1111") "[1111] endpoint 192.0.2.1:1\nend -22\n"
	       "begin\nfwmark 3\nend 0\n",
	       0);
	/* A backend error is passed through and also stops the request. */
	expect(&busy, "set=1\nprivate_key=" PRIV "\nlisten_port=4000\nfwmark=1\n\nget=1\n\n",
	       "errno=-98\n\nerrno=0\n\n",
	       "begin\nprivate_key " PRIV "\nlisten_port 4000\nend -98\nget\n", 0);
	/* The first error is the one reported. */
	expect(&plain, "set=1\nnope\nbogus=1\n\n", "errno=-71\n\n", "begin\nend -71\n", 0);
}

static void test_several_requests(void **state)
{
	const struct setup s = { .existing = { P1 }, .get_mode = 0 };

	(void)state;
	expect(&s,
	       "get=1\n\nset=1\nlisten_port=5\n\nset=1\n\nget=1\n\n"
	       "set=1\npublic_key=" P1 "\nremove=true\n\nset=1\npublic_key=" P1 "\n\n",
	       "errno=0\n\nerrno=0\n\nerrno=0\n\nerrno=0\n\nerrno=0\n\nerrno=0\n\n",
	       "get\nbegin\nlisten_port 5\nend 0\nbegin\nend 0\nget\n"
	       "begin\nselect 1111 create=0 -> found\n[1111] remove\nend 0\n"
	       "begin\n" NEW("1111") "end 0\n",
	       0);
}

/* A connection dropped in the middle of a set ends it with -EIO and no reply. */
static void test_unfinished_set(void **state)
{
	(void)state;
	expect(&plain, "set=1\nlisten_port=1\nfwm", "", "begin\nlisten_port 1\nend -5\n", 0);
	expect(&plain, "set=1\nbogus=1\nfwmark=1\n", "", "begin\nend -5\n", 0);
	expect(&plain, "set=1\nlisten_port=1\n\nset=1", "errno=0\n\n",
	       "begin\nlisten_port 1\nend 0\n", 0);
	expect(&plain, "get=1\n", "", "", 0);
	expect(&plain, "", "", "", 0);
}

/*
 * The client ends the connection without the empty line: the set is
 * finished as if it had come, its last line without '\n' too, and
 * answered, as wireguard-go applies and answers it. Nothing else is.
 */
static void test_eof(void **state)
{
	(void)state;
	at_eof = true;
	expect(&plain, "set=1\nfwmark=7\n", "errno=0\n\n", "begin\nfwmark 7\nend 0\n", 1);
	expect(&plain, "set=1\nfwmark=8", "errno=0\n\n", "begin\nfwmark 8\nend 0\n", 1);
	expect(&plain, "set=1\n", "errno=0\n\n", "begin\nend 0\n", 1);
	expect(&plain, "set=1\npublic_key=" P1 "\n", "errno=0\n\n", "begin\n" NEW("1111") "end 0\n", 1);
	expect(&plain, "set=1\nlisten_port=1\n\nset=1\nfwmark=2",
	       "errno=0\n\nerrno=0\n\n", "begin\nlisten_port 1\nend 0\nbegin\nfwmark 2\nend 0\n", 1);
	/* An error stays the answer; what came after it is not applied. */
	expect(&plain, "set=1\nbogus=1\nfwmark=1\n", "errno=-22\n\n", "begin\nend -22\n", 1);
	expect(&plain, "set=1\nfwmark", "errno=-71\n\n", "begin\nend -71\n", 1);
	/* Not a set: nothing to answer. */
	expect(&plain, "get=1\n", "", "", 1);
	expect(&plain, "get=", "", "", 1);
	expect(&plain, "", "", "", 1);
	at_eof = false;
}

/* Runs req whole, one byte per feed, and cut at a few places (it is too long for every one). */
static void expect_long(const char *req, size_t len, const char *reply, const char *log, int rc)
{
	const struct want w = { reply, log, rc };
	const size_t cuts[] = { 1, 4096, 4097, 4103, UAPI_LINE_LIMIT - 1, UAPI_LINE_LIMIT,
				UAPI_LINE_LIMIT + 6, UAPI_LINE_LIMIT + 7, len - 2, len - 1 };
	size_t *every = calloc(len, sizeof(*every)), k;

	assert_non_null(every);
	expect_cuts("whole", 0, &plain, req, len, NULL, 0, &w);
	for (k = 1; k < len; k++)
		every[k - 1] = k;
	expect_cuts("bytes", 0, &plain, req, len, every, len - 1, &w);
	for (k = 0; k < ARRAY_SIZE(cuts); k++)
		if (cuts[k] > 0 && cuts[k] < len)
			expect_cuts("cut", cuts[k], &plain, req, len, &cuts[k], 1, &w);
	free(every);
}

/* A set=1 request whose one line is a prefix and n bytes of fill, then the rest. */
static char *long_request(const char *prefix, char fill, size_t n, const char *rest, size_t *len)
{
	size_t a = strlen("set=1\n"), b = strlen(prefix), c = strlen(rest);
	char *req = malloc(a + b + n + c + 1);

	assert_non_null(req);
	memcpy(req, "set=1\n", a);
	memcpy(req + a, prefix, b);
	memset(req + a + b, fill, n);
	memcpy(req + a + b + n, rest, c + 1);
	*len = a + b + n + c;
	return req;
}

/*
 * The malformed requests on which veild and wireguard-go (Debian's
 * 0.0.20220316 and 0.0.20231211, compared in tests/netns/uapi-wggo.sh)
 * once differed, answered as wireguard-go answers them: a line of binary
 * junk without '=' is a protocol error (-71) even with a NUL in it, and
 * one with '=' an invalid key (-22); a line of 64 KB (bufio.Scanner's
 * limit) or more, key and value or not, is an I/O error (-5), answered at
 * once, the rest of the request read and the connection closed; a longer
 * line than veild keeps but under 64 KB is refused like any bad line.
 */
static void test_wireguard_go_answers(void **state)
{
	static const char junk[] = "set=1\n\x00\x01\x02junk\xff\n\nset=1\nfwmark=1\n\n";
	static const char junk_eq[] = "set=1\nab\x00c=\x01\x02\n\n";
	char *req;
	size_t len;

	(void)state;
	expect_len(&plain, junk, sizeof(junk) - 1, "errno=-71\n\nerrno=0\n\n",
		   "begin\nend -71\nbegin\nfwmark 1\nend 0\n", 0);
	expect_len(&plain, junk_eq, sizeof(junk_eq) - 1, "errno=-22\n\n", "begin\nend -22\n", 0);
	expect(&plain, "set=1\nlisten_port\n\n", "errno=-71\n\n", "begin\nend -71\n", 0);

	/* 100 KB of one line, then of one value: -5 at 64 KB, the rest read, closed. */
	req = long_request("", 'a', 100000, "\n\nset=1\nfwmark=1\n\n", &len);
	expect_long(req, len, "errno=-5\n\n", "begin\nend -5\n", 1);
	free(req);
	req = long_request("private_key=", 'a', 100000, "\n\n", &len);
	expect_long(req, len, "errno=-5\n\n", "begin\nend -5\n", 1);
	free(req);
	/* The edge: a line of 65,535 bytes is read to its end, one of 65,536 is not. */
	req = long_request("", 'a', UAPI_LINE_LIMIT - 1, "\n\nset=1\nfwmark=1\n\n", &len);
	expect_long(req, len, "errno=-71\n\nerrno=0\n\n", "begin\nend -71\nbegin\nfwmark 1\nend 0\n",
		    0);
	free(req);
	/* (wireguard-go would take this one, leading zeros and all: no fwmark is 64 KB long.) */
	req = long_request("fwmark=", '0', UAPI_LINE_LIMIT - 9, "1\n\n", &len);
	expect_long(req, len, "errno=-22\n\n", "begin\nend -22\n", 0);
	free(req);
	req = long_request("", 'a', UAPI_LINE_LIMIT, "\n\n", &len);
	expect_long(req, len, "errno=-5\n\n", "begin\nend -5\n", 1);
	free(req);
	/* Past what veild keeps, at the end of the connection. */
	at_eof = true;
	req = long_request("", 'a', 5000, "", &len);
	expect_long(req, len, "errno=-71\n\n", "begin\nend -71\n", 1);
	free(req);
	at_eof = false;
}

static void test_nul_in_line(void **state)
{
	static const char req[] = "set=1\nlisten_port=1\0\n\nset=1\nfwmark=1\n\n";

	(void)state;
	expect_len(&plain, req, sizeof(req) - 1, "errno=-22\n\nerrno=0\n\n",
		   "begin\nend -22\nbegin\nfwmark 1\nend 0\n", 0);
}

/* ---- update_only and the device's own key ---- */

static void test_update_only(void **state)
{
	const struct setup with_p1 = { .existing = { P1 } };

	(void)state;
	/* An existing peer is updated. */
	expect(&with_p1, "set=1\npublic_key=" P1 "\nupdate_only=true\nendpoint=192.0.2.1:5\n\n",
	       "errno=0\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] endpoint 192.0.2.1:5\nend 0\n", 0);
	/* A new one is not created, its lines are dropped, the next peer goes on. */
	expect(&with_p1,
	       "set=1\npublic_key=" P2 "\nupdate_only=true\nendpoint=192.0.2.1:5\n"
	       "allowed_ip=10.0.0.0/8\nremove=true\npublic_key=" P1
	       "\npersistent_keepalive_interval=1\n\n",
	       "errno=0\n\n",
	       "begin\nselect 2222 create=0 -> none\nselect 1111 create=0 -> found\n"
	       "[1111] keepalive 1\nend 0\n",
	       0);
	/* Lines are checked before the peer is looked up, and dropped lines too. */
	expect(&plain, "set=1\npublic_key=" P2 "\nupdate_only=true\nendpoint=nope\n\n",
	       "errno=-22\n\n", "begin\nend -22\n", 0);
	expect(&plain,
	       "set=1\npublic_key=" P2 "\nupdate_only=true\nendpoint=192.0.2.1:5\n"
	       "allowed_ip=10.0.0.0/33\n\n",
	       "errno=-22\n\n", "begin\nselect 2222 create=0 -> none\nend -22\n", 0);
	/* Late, after the peer was created by this request: the creation is undone. */
	expect(&plain,
	       "set=1\npublic_key=" P2 "\nendpoint=192.0.2.1:5\nupdate_only=true\n"
	       "allowed_ip=10.0.0.0/8\n\n",
	       "errno=0\n\n",
	       "begin\n" NEW("2222") "[2222] endpoint 192.0.2.1:5\n[2222] remove\nend 0\n", 0);
	/* Late, for a peer that existed: nothing changes. */
	expect(&with_p1,
	       "set=1\npublic_key=" P1 "\nendpoint=192.0.2.1:5\nupdate_only=true\n"
	       "allowed_ip=10.0.0.0/8\n\n",
	       "errno=0\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] endpoint 192.0.2.1:5\n"
	       "[1111] allowed_ip +10.0.0.0/8\nend 0\n",
	       0);
}

/* veil's endpoint_name: a peer key only, passed through as written; unknown without the op. */
static void test_endpoint_name(void **state)
{
	const struct setup with_p1 = { .existing = { P1 } };
	struct uapi_backend_ops without = fake_ops;
	struct uapi_buf out = { 0 };
	struct fake f;
	struct uapi_conn *c;
	static const char req[] = "set=1\npublic_key=" P1 "\nendpoint_name=peer.example:51820\n\n";

	(void)state;
	expect(&with_p1,
	       "set=1\npublic_key=" P1 "\nupdate_only=true\nendpoint_name=peer.example:51820\n"
	       "endpoint_name=\n\n",
	       "errno=0\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] endpoint_name 'peer.example:51820'\n"
	       "[1111] endpoint_name ''\nend 0\n",
	       0);
	/* Not a device key. */
	expect(&plain, "set=1\nendpoint_name=peer.example:51820\n\n", "errno=-22\n\n",
	       "begin\nend -22\n", 0);
	/* The backend's refusal is the reply. */
	expect(&(const struct setup){ .existing = { P1 }, .fail = "endpoint_name", .fail_err = -EINVAL },
	       "set=1\npublic_key=" P1 "\nendpoint_name=bad name\n\n", "errno=-22\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] endpoint_name 'bad name'\nend -22\n", 0);
	/* A backend without the operation (wireguard-go's behaviour): an unknown key. */
	without.peer_set_endpoint_name = NULL;
	fake_init(&f, &with_p1);
	c = uapi_conn_new(&without, &f);
	assert_non_null(c);
	assert_int_equal(uapi_conn_feed(c, req, sizeof(req) - 1, &out), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_string_equal(out.data, "errno=-22\n\n");
	uapi_conn_free(c);
	uapi_buf_free(&out);
}

/* veil's cipher: two names, a peer key only; anything else is refused before the backend. */
static void test_cipher(void **state)
{
	const struct setup with_p1 = { .existing = { P1 } };

	(void)state;
	expect(&with_p1,
	       "set=1\npublic_key=" P1 "\ncipher=aes256gcm\ncipher=chacha20poly1305\n\n",
	       "errno=0\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] cipher 1\n[1111] cipher 0\nend 0\n", 0);
	/* A bad value is refused before the peer is even looked up. */
	expect(&with_p1, "set=1\npublic_key=" P1 "\ncipher=AES256GCM\n\n", "errno=-22\n\n",
	       "begin\nend -22\n", 0);
	expect(&with_p1, "set=1\npublic_key=" P1 "\ncipher=\n\n", "errno=-22\n\n",
	       "begin\nend -22\n", 0);
	expect(&plain, "set=1\ncipher=aes256gcm\n\n", "errno=-22\n\n", "begin\nend -22\n", 0);
	/* The backend's refusal (no AES instructions) is the reply. */
	expect(&(const struct setup){ .existing = { P1 }, .fail = "cipher", .fail_err = -EOPNOTSUPP },
	       "set=1\npublic_key=" P1 "\ncipher=aes256gcm\n\n", "errno=-95\n\n",
	       "begin\nselect 1111 create=0 -> found\n[1111] cipher 1\nend -95\n", 0);
}

/* The backend answers NULL for its own public key: lines are dropped, no error. */
static void test_own_public_key(void **state)
{
	(void)state;
	expect(&plain,
	       "set=1\npublic_key=" OWN "\nendpoint=192.0.2.1:5\nallowed_ip=10.0.0.0/8\n"
	       "remove=true\npublic_key=" P1 "\npersistent_keepalive_interval=5\n\n",
	       "errno=0\n\n",
	       "begin\nselect 0e0e create=0 -> none\nselect 0e0e create=1 -> none\n"
	       NEW("1111") "[1111] keepalive 5\nend 0\n",
	       0);
}

/* ---- framing: operations, get, long lines ---- */

static void test_unknown_operation(void **state)
{
	static const char *const ops[] = {
		"foo=1\n", "set=2\n", "get=2\n", "get\n", "set\n", "\n", "set=1 \n", " set=1\n",
		"GET=1\n", "get=1\r\n", "set=10\n", "errno=0\n", "veil_get=2\n", "veil_get\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		expect(&plain, ops[i], "", "", 1);
	/* Earlier replies on the connection are still flushed. */
	expect(&plain, "set=1\nfwmark=1\n\nbogus\nset=1\nfwmark=2\n\n", "errno=0\n\n",
	       "begin\nfwmark 1\nend 0\n", 1);
}

static void test_get_garbage(void **state)
{
	(void)state;
	expect(&plain, "get=1\nx", "errno=-22\n\n", "", 1);
	expect(&plain, "get=1\nget=1\n\n", "errno=-22\n\n", "", 1);
	expect(&plain, "get=1\n\nget=1\n \n", "errno=0\n\nerrno=-22\n\n", "get\n", 1);
}

static void test_long_lines(void **state)
{
	static const char head[] = "set=1\nlisten_port=1\n";
	static const char tail[] = "\nfwmark=2\n\nset=1\nfwmark=3\n\n";
	size_t n = strlen(head) + UAPI_LINE_MAX + 1 + strlen(tail) + 1;
	char *req = malloc(n), *p;

	(void)state;
	assert_non_null(req);

	/* Exactly UAPI_LINE_MAX bytes is accepted (leading zeros are fine). */
	p = req + sprintf(req, "%s", head);
	p += sprintf(p, "fwmark=");
	memset(p, '0', UAPI_LINE_MAX - 8);
	p += UAPI_LINE_MAX - 8;
	sprintf(p, "7%s", tail);
	expect(&plain, req, "errno=0\n\nerrno=0\n\n",
	       "begin\nlisten_port 1\nfwmark 7\nfwmark 2\nend 0\nbegin\nfwmark 3\nend 0\n", 0);

	/* One more byte: -EINVAL, the rest of the request skipped, the next one served. */
	p = req + sprintf(req, "%s", head);
	p += sprintf(p, "fwmark=");
	memset(p, '0', UAPI_LINE_MAX - 7);
	p += UAPI_LINE_MAX - 7;
	sprintf(p, "7%s", tail);
	expect(&plain, req, "errno=-22\n\nerrno=0\n\n",
	       "begin\nlisten_port 1\nend -22\nbegin\nfwmark 3\nend 0\n", 0);

	/* Overlong lines while already skipping cost nothing. */
	p = req + sprintf(req, "set=1\nbogus=1\n");
	memset(p, 'x', UAPI_LINE_MAX + 1);
	p += UAPI_LINE_MAX + 1;
	sprintf(p, "\n\nset=1\nfwmark=3\n\n");
	expect(&plain, req, "errno=-22\n\nerrno=0\n\n", "begin\nend -22\nbegin\nfwmark 3\nend 0\n",
	       0);

	/* An overlong operation line closes the connection. */
	memset(req, 's', UAPI_LINE_MAX + 1);
	req[UAPI_LINE_MAX + 1] = '\0';
	expect(&plain, req, "", "", 1);
	free(req);
}

/* ---- get ---- */

static void test_get_two_peers(void **state)
{
	const struct setup s = { .existing = { NULL }, .get_mode = 1 };

	(void)state;
	expect(&s, "get=1\n\n",
	       "private_key=" PRIV "\n"
	       "listen_port=51820\n"
	       "fwmark=4294967295\n"
	       "public_key=" P1 "\n"
	       "preshared_key=" PSK "\n"
	       "protocol_version=1\n"
	       "endpoint=192.0.2.1:51820\n"
	       "last_handshake_time_sec=1700000000\n"
	       "last_handshake_time_nsec=123456789\n"
	       "tx_bytes=18446744073709551615\n"
	       "rx_bytes=5678\n"
	       "persistent_keepalive_interval=25\n"
	       "allowed_ip=10.0.0.2/32\n"
	       "allowed_ip=10.1.0.0/16\n"
	       "public_key=" P2 "\n"
	       "preshared_key=" ZERO "\n"
	       "protocol_version=1\n"
	       "endpoint=[2001:db8::1]:51821\n"
	       "last_handshake_time_sec=0\n"
	       "last_handshake_time_nsec=0\n"
	       "tx_bytes=0\n"
	       "rx_bytes=0\n"
	       "persistent_keepalive_interval=0\n"
	       "allowed_ip=fd00::2/128\n"
	       "allowed_ip=10.2.0.0/24\n"
	       "allowed_ip=::/0\n"
	       "errno=0\n"
	       "\n",
	       "get\n", 0);
}

static void test_get_sparse(void **state)
{
	const struct setup s = { .existing = { NULL }, .get_mode = 2 };

	(void)state;
	expect(&s, "get=1\n\n",
	       "public_key=" P1 "\n"
	       "preshared_key=" ZERO "\n"
	       "protocol_version=1\n"
	       "last_handshake_time_sec=0\n"
	       "last_handshake_time_nsec=0\n"
	       "tx_bytes=0\n"
	       "rx_bytes=0\n"
	       "persistent_keepalive_interval=0\n"
	       "public_key=" P2 "\n"
	       "preshared_key=" ZERO "\n"
	       "protocol_version=1\n"
	       "endpoint=[fe80::1%7]:1\n"
	       "last_handshake_time_sec=0\n"
	       "last_handshake_time_nsec=0\n"
	       "tx_bytes=0\n"
	       "rx_bytes=0\n"
	       "persistent_keepalive_interval=0\n"
	       "errno=0\n"
	       "\n",
	       "get\n", 0);
}

/*
 * veil_get=1 is get=1 plus each peer's cipher, endpoint name and refused
 * handshakes (how many, the latest's time and reason), after WireGuard's
 * keys; get=1 never has them (wg refuses an unknown key there).
 */
static void test_veil_get(void **state)
{
	const struct setup s = { .existing = { NULL }, .get_mode = 5 };
#define PEER_LINES                                                                                     \
	"preshared_key=" ZERO "\nprotocol_version=1\nlast_handshake_time_sec=0\n"                      \
	"last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n"

	(void)state;
	expect(&s, "get=1\n\n",
	       "public_key=" P1 "\n" PEER_LINES "public_key=" P2 "\n" PEER_LINES "errno=0\n\n", "get\n", 0);
	expect(&s, "veil_get=1\n\n",
	       "public_key=" P1 "\n" PEER_LINES "cipher=aes256gcm\nendpoint_name=peer.example:51820\n"
	       "handshake_failures=3\nlast_handshake_failure_time_sec=1700000123\n"
	       "last_handshake_failure=cipher mismatch: a?b\n"
	       "public_key=" P2 "\n" PEER_LINES "cipher=chacha20poly1305\nhandshake_failures=0\n"
	       "errno=0\n\n",
	       "get\n", 0);
	/* Out of step after the line, as for get=1. */
	expect(&s, "veil_get=1\nx", "errno=-22\n\n", "", 1);
#undef PEER_LINES
}

/* ---- every value set accepts, at its longest, back through get and veil_get ---- */

/*
 * A backend that keeps what it is told (one peer, two allowed IPs) and
 * reports it with the uapi_get_* writers, as veild's does. It takes an
 * endpoint name of any length the protocol lets through; veild takes up
 * to RESOLVER_NAME_MAX - 1 bytes (its resolver's limit).
 */
struct model {
	uint8_t priv[32], pub[32], psk[32];
	uint16_t port, keepalive;
	uint32_t fwmark;
	struct sockaddr_storage metrics, endpoint;
	bool has_metrics, has_peer;
	int cipher;
	char name[UAPI_LINE_MAX + 1];
	struct {
		int family;
		uint8_t addr[16], cidr;
	} ips[2];
	size_t nips;
};

static int m_private_key(void *ctx, const uint8_t key[static 32])
{
	memcpy(((struct model *)ctx)->priv, key, 32);
	return 0;
}

static int m_listen_port(void *ctx, uint16_t port)
{
	((struct model *)ctx)->port = port;
	return 0;
}

static int m_fwmark(void *ctx, uint32_t mark)
{
	((struct model *)ctx)->fwmark = mark;
	return 0;
}

static int m_metrics_listen(void *ctx, const struct sockaddr *sa, socklen_t len)
{
	struct model *m = ctx;

	m->has_metrics = sa != NULL;
	if (sa)
		memcpy(&m->metrics, sa, len);
	return 0;
}

static int m_select(void *ctx, const uint8_t pub[static 32], bool create, void **peer)
{
	struct model *m = ctx;

	*peer = NULL;
	if (m->has_peer && !memcmp(m->pub, pub, 32))
		*peer = m;
	else if (create && !m->has_peer) {
		m->has_peer = true;
		memcpy(m->pub, pub, 32);
		*peer = m;
	}
	return 0;
}

static int m_psk(void *ctx, void *peer, const uint8_t psk[static 32])
{
	(void)peer;
	memcpy(((struct model *)ctx)->psk, psk, 32);
	return 0;
}

static int m_endpoint(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len)
{
	(void)peer;
	memcpy(&((struct model *)ctx)->endpoint, sa, len);
	return 0;
}

static int m_endpoint_name(void *ctx, void *peer, const char *name)
{
	(void)peer;
	snprintf(((struct model *)ctx)->name, sizeof(((struct model *)ctx)->name), "%s", name);
	return 0;
}

static int m_cipher(void *ctx, void *peer, int cipher)
{
	(void)peer;
	((struct model *)ctx)->cipher = cipher;
	return 0;
}

static int m_keepalive(void *ctx, void *peer, uint16_t interval)
{
	(void)peer;
	((struct model *)ctx)->keepalive = interval;
	return 0;
}

static int m_add_ip(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	struct model *m = ctx;

	(void)peer;
	assert_true(m->nips < ARRAY_SIZE(m->ips));
	m->ips[m->nips].family = family;
	memcpy(m->ips[m->nips].addr, addr, family == AF_INET6 ? 16 : 4);
	m->ips[m->nips++].cidr = cidr;
	return 0;
}

static int m_get(void *ctx, struct uapi_writer *w)
{
	struct model *m = ctx;
	struct uapi_peer_info p = {
		.endpoint = (const struct sockaddr *)&m->endpoint,
		.persistent_keepalive = m->keepalive,
		.cipher = m->cipher,
		.endpoint_name = m->name,
	};
	size_t i;

	uapi_get_device(w, m->priv, m->port, m->fwmark);
	uapi_get_metrics_listen(w, m->has_metrics ? (const struct sockaddr *)&m->metrics : NULL);
	memcpy(p.public_key, m->pub, 32);
	memcpy(p.preshared_key, m->psk, 32);
	uapi_get_peer(w, &p);
	for (i = 0; i < m->nips; i++)
		uapi_get_allowed_ip(w, m->ips[i].family, m->ips[i].addr, m->ips[i].cidr);
	return 0;
}

static const struct uapi_backend_ops model_ops = {
	.set_private_key = m_private_key,
	.set_listen_port = m_listen_port,
	.set_fwmark = m_fwmark,
	.set_metrics_listen = m_metrics_listen,
	.peer_select = m_select,
	.peer_set_preshared_key = m_psk,
	.peer_set_endpoint = m_endpoint,
	.peer_set_endpoint_name = m_endpoint_name,
	.peer_set_cipher = m_cipher,
	.peer_set_keepalive = m_keepalive,
	.peer_add_allowed_ip = m_add_ip,
	.get = m_get,
};

/* The whole reply to one request on a fresh connection, NUL-terminated (caller frees). */
static char *ask_model(struct model *m, const char *req)
{
	struct uapi_conn *c = uapi_conn_new(&model_ops, m);
	struct uapi_buf out = { 0 };
	char *s;

	assert_non_null(c);
	assert_int_equal(uapi_conn_feed(c, req, strlen(req), &out), 0);
	uapi_conn_free(c);
	s = calloc(1, out.len + 1);
	assert_non_null(s);
	memcpy(s, out.data, out.len);
	uapi_buf_free(&out);
	return s;
}

/* Whether reply holds the line "key=value" (line, without its '\n'). */
static bool has_line(const char *reply, const char *line, size_t len)
{
	const char *p = reply;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == reply || p[-1] == '\n') && p[len] == '\n')
			return true;
		p++;
	}
	return false;
}

/*
 * set lines (each "key=value"), applied, then asked back: every one must be
 * in veil_get=1's reply, and the WireGuard ones (veil's own are
 * endpoint_name, cipher, metrics_listen) in get=1's, whole.
 */
static void round_trip(const char *const *lines, size_t n)
{
	static const char *const veil_only[] = { "endpoint_name=", "cipher=", "metrics_listen=" };
	struct model *m = calloc(1, sizeof(*m));
	struct uapi_buf req = { 0 };
	char *reply, *veil;
	size_t i, k;

	assert_non_null(m);
	assert_int_equal(buf_append(&req, "set=1\n", 6), 0);
	for (i = 0; i < n; i++) {
		assert_true(strlen(lines[i]) <= UAPI_LINE_MAX);
		assert_int_equal(buf_append(&req, lines[i], strlen(lines[i])), 0);
		assert_int_equal(buf_append(&req, "\n", 1), 0);
	}
	assert_int_equal(buf_append(&req, "\n", 2), 0); /* the blank line and a NUL */
	reply = ask_model(m, req.data);
	assert_string_equal(reply, "errno=0\n\n");
	free(reply);
	reply = ask_model(m, "get=1\n\n");
	veil = ask_model(m, "veil_get=1\n\n");
	assert_non_null(strstr(reply, "errno=0\n\n"));
	assert_non_null(strstr(veil, "errno=0\n\n"));
	for (i = 0; i < n; i++) {
		bool wg = true;

		for (k = 0; k < ARRAY_SIZE(veil_only); k++)
			if (!strncmp(lines[i], veil_only[k], strlen(veil_only[k])))
				wg = false;
		if (!has_line(veil, lines[i], strlen(lines[i])))
			fail_msg("veil_get=1 lost %.80s... (%zu bytes)", lines[i], strlen(lines[i]));
		if (wg != has_line(reply, lines[i], strlen(lines[i])))
			fail_msg("get=1 %s %.80s", wg ? "lost" : "has", lines[i]);
	}
	free(reply);
	free(veil);
	uapi_buf_free(&req);
	free(m);
}

static void test_round_trip_longest(void **state)
{
	char name[RESOLVER_NAME_MAX + 32], longest[UAPI_LINE_MAX + 1];
	const char *const lines[] = {
		"private_key=" PRIV,
		"listen_port=65535",
		"fwmark=4294967295",
		"metrics_listen=[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
		"public_key=" P1,
		"preshared_key=" PSK,
		"endpoint=[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
		name,
		"cipher=chacha20poly1305",
		"persistent_keepalive_interval=65535",
		"allowed_ip=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
		"allowed_ip=255.255.255.255/32",
	};
	const char *const v4[] = {
		"public_key=" P1, "endpoint=255.255.255.255:65535", "cipher=aes256gcm",
		"allowed_ip=::ffff:255.255.255.255/128", longest,
	};
	size_t len;

	(void)state;
	/* The longest endpoint name veild takes (its resolver's limit): "host:port". */
	len = (size_t)snprintf(name, sizeof(name), "endpoint_name=");
	memset(name + len, 'a', RESOLVER_NAME_MAX - 1 - 6);
	memcpy(name + len + RESOLVER_NAME_MAX - 1 - 6, ":65535", 7);
	assert_int_equal(strlen(name) - len, RESOLVER_NAME_MAX - 1);
	round_trip(lines, ARRAY_SIZE(lines));
	/* And the longest line the protocol itself lets through to a backend. */
	len = (size_t)snprintf(longest, sizeof(longest), "endpoint_name=");
	memset(longest + len, 'b', UAPI_LINE_MAX - len - 6);
	memcpy(longest + UAPI_LINE_MAX - 6, ":51820", 7);
	assert_int_equal(strlen(longest), UAPI_LINE_MAX);
	round_trip(v4, ARRAY_SIZE(v4));
}

static void test_get_errors(void **state)
{
	const struct setup fails = { .existing = { NULL }, .get_mode = 3 };
	const struct setup misuse = { .existing = { NULL }, .get_mode = 4 };

	(void)state;
	/* What was written before the error is dropped; earlier replies are kept. */
	expect(&fails, "set=1\n\nget=1\n\n", "errno=0\n\nerrno=-55\n\n", "begin\nend 0\nget\n", 0);
	expect(&misuse, "get=1\n\n", "errno=-22\n\n", "get\n", 0);
}

/* Without ops, every request is answered -EOPNOTSUPP and nothing crashes. */
static void test_missing_ops(void **state)
{
	static const struct uapi_backend_ops none = { .get = NULL };
	static const char req[] = "get=1\n\nset=1\nlisten_port=1\n\nset=1\npublic_key=" P1 "\n\n";
	struct uapi_conn *c = uapi_conn_new(&none, NULL);
	struct uapi_buf out = { 0 };

	(void)state;
	assert_non_null(c);
	assert_int_equal(uapi_conn_feed(c, req, strlen(req), &out), 0);
	assert_int_equal(buf_append(&out, "", 1), 0);
	assert_string_equal(out.data, "errno=-95\n\nerrno=-95\n\nerrno=-95\n\n");
	uapi_conn_free(c);
	uapi_buf_free(&out);
}

static void test_buf(void **state)
{
	struct uapi_buf b = { 0 };
	char big[1000];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(buf_append(&b, "hello ", 6), 0);
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 1006);
	assert_true(b.cap >= b.len);
	uapi_buf_consume(&b, 4);
	assert_int_equal(b.len, 1002);
	assert_memory_equal(b.data, "o abc", 5);
	assert_true(sodium_is_zero((const unsigned char *)b.data + b.len, 4));
	uapi_buf_consume(&b, 5000);
	assert_int_equal(b.len, 0);
	uapi_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	uapi_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_digit),
		cmocka_unit_test(test_hex_keys),
		cmocka_unit_test(test_set_device_keys),
		cmocka_unit_test(test_set_peer_keys),
		cmocka_unit_test(test_endpoint_scope_name),
		cmocka_unit_test(test_wg_set),
		cmocka_unit_test(test_wg_setconf),
		cmocka_unit_test(test_wg_addconf),
		cmocka_unit_test(test_wg_syncconf),
		cmocka_unit_test(test_wg_incremental_allowed_ips),
		cmocka_unit_test(test_partial_apply),
		cmocka_unit_test(test_several_requests),
		cmocka_unit_test(test_unfinished_set),
		cmocka_unit_test(test_nul_in_line),
		cmocka_unit_test_teardown(test_eof, reset_eof),
		cmocka_unit_test_teardown(test_wireguard_go_answers, reset_eof),
		cmocka_unit_test(test_update_only),
		cmocka_unit_test(test_own_public_key),
		cmocka_unit_test(test_unknown_operation),
		cmocka_unit_test(test_get_garbage),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_get_two_peers),
		cmocka_unit_test(test_get_sparse),
		cmocka_unit_test(test_veil_get),
		cmocka_unit_test(test_round_trip_longest),
		cmocka_unit_test(test_get_errors),
		cmocka_unit_test(test_missing_ops),
		cmocka_unit_test(test_endpoint_name),
		cmocka_unit_test(test_cipher),
		cmocka_unit_test(test_buf),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
