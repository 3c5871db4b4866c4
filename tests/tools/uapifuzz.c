// SPDX-License-Identifier: MIT
/*
 * Malformed control-socket requests, for the namespace tests:
 *   uapifuzz SOCKET COUNT SEED
 * opens COUNT connections to the UAPI socket one after another and sends each
 * a seeded bad request, in random-sized pieces:
 *   badop    an operation other than get=1/set=1 (also overlong, binary): the
 *            daemon must close without a word, as wireguard-go does
 *   set      set=1 whose first line is invalid (no '=', unknown key, bad hex,
 *            numbers out of range, a NUL, an overlong line; or a peer named
 *            with update_only=true followed by an invalid peer line), then
 *            random lines, valid-looking ones included, then the empty line:
 *            exactly "errno=N\n\n" with N the expected negative errno; then,
 *            on half of them, a get on the same connection must still work
 *   getjunk  get=1 followed by anything but the empty line: "errno=-22\n\n"
 *            and the connection closed
 *   half     a request cut short, then the connection closed
 * The first request of the run is a get. Since every set fails on its first
 * line, nothing may change: every 250 connections, and at the end, a get must
 * answer errno=0 with the same configuration (counters and handshake times
 * aside). No answer within 2 s is a hang. One line at the end:
 *   connections=N badop=A set=B getjunk=C half=D checks=E violations=V
 * Exits 1 on any violation.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/compiler.h"

enum {
	REPLY_MS = 2000,
	REPLY_MAX = 1 << 16,
	REQ_MAX = 3 * 8192,
	CHECK_EVERY = 250,
	MAX_REPORTS = 20,
	ANY_NEGATIVE = 1,	/* expected errno: any value below zero */
};

enum kind { K_BADOP, K_SET, K_GETJUNK, K_HALF, K_COUNT };

static const char *const kind_names[K_COUNT] = { "badop", "set", "getjunk", "half" };

struct req {
	char data[REQ_MAX];
	size_t len;
	int expect;	/* K_SET: the errno the reply must carry */
};

struct fuzz {
	const char *path;
	uint64_t rng;
	unsigned long long count[K_COUNT], checks, violations;
	char *baseline;	/* the first get, filtered */
	uint8_t peer[32];	/* a configured peer's public key, if any */
	bool have_peer;
};

/* splitmix64: a seeded, repeatable stream. */
static uint64_t next(struct fuzz *f)
{
	uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t below(struct fuzz *f, size_t n)
{
	return (size_t)(next(f) % n);
}

__attribute__((format(printf, 2, 3)))
static void violation(struct fuzz *f, const char *fmt, ...)
{
	va_list ap;

	if (f->violations++ < MAX_REPORTS) {
		fprintf(stderr, "uapifuzz: violation: ");
		va_start(ap, fmt);
		/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

/* ---- building requests ---- */

__attribute__((format(printf, 2, 3)))
static void add(struct req *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	n = vsnprintf(r->data + r->len, sizeof(r->data) - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len = r->len + (size_t)n < sizeof(r->data) ? r->len + (size_t)n : sizeof(r->data) - 1;
}

static void add_bytes(struct req *r, const void *p, size_t n)
{
	if (n > sizeof(r->data) - r->len)
		n = sizeof(r->data) - r->len;
	memcpy(r->data + r->len, p, n);
	r->len += n;
}

/* n random characters from set, no newline among them. */
static void add_random(struct fuzz *f, struct req *r, const char *set, size_t n)
{
	size_t k = strlen(set);

	for (size_t i = 0; i < n && r->len < sizeof(r->data); i++)
		r->data[r->len++] = set[below(f, k)];
}

static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
static const char printable[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				"=_-+/:.[]%, \t!\"#$&'()*;<>?@\\^`{|}~";
static const char hexdigits[] = "0123456789abcdefABCDEF";

static const char *const known_keys[] = {
	"private_key", "listen_port", "fwmark", "replace_peers", "public_key", "update_only",
	"remove", "preshared_key", "endpoint", "persistent_keepalive_interval",
	"replace_allowed_ips", "allowed_ip", "protocol_version",
};

/* 64 characters that are not a key: one non-hex digit, or the wrong length. */
static void add_bad_hex(struct fuzz *f, struct req *r)
{
	size_t len = (size_t[]){ 64, 64, 63, 65, 0, 1, 128 }[below(f, 7)];
	size_t at = r->len;

	add_random(f, r, hexdigits, len);
	if (len == 64)
		r->data[at + below(f, 64)] = "gxz -=:G"[below(f, 8)];
}

static void add_valid_hex(struct fuzz *f, struct req *r)
{
	add_random(f, r, hexdigits, 64);
}

/* An invalid device-level line (without '\n'); returns its errno. */
static int bad_device_line(struct fuzz *f, struct req *r)
{
	static const char *const bad_ports[] = { "65536", "99999999999", "-1", "", " 1", "1 ",
						 "0x10", "+5", "1.0" };
	static const char *const bad_marks[] = { "4294967296", "-1", "", "abc", "1e3" };
	static const char *const bad_bools[] = { "false", "TRUE", "1", "", "true ", "yes" };
	static const char *const get_only[] = { "last_handshake_time_sec=1", "tx_bytes=5",
						"rx_bytes=0", "protocol_version=1", "errno=0",
						"endpoint=192.0.2.9:1", "allowed_ip=192.0.2.9/32",
						"preshared_key=", "get=1", "set=1" };
	switch (below(f, 9)) {
	case 0:
		add_random(f, r, alnum, 1 + below(f, 40));
		return -EPROTO;
	case 1: {
		/* An unknown key: known keys never start with 'q'. */
		add(r, "q");
		add_random(f, r, alnum, below(f, 20));
		add(r, "=");
		add_random(f, r, printable, below(f, 60));
		return -EINVAL;
	}
	case 2:
		add(r, "%s=", below(f, 2) ? "private_key" : "public_key");
		add_bad_hex(f, r);
		return -EINVAL;
	case 3:
		add(r, "listen_port=%s", bad_ports[below(f, ARRAY_SIZE(bad_ports))]);
		return -EINVAL;
	case 4:
		add(r, "fwmark=%s", bad_marks[below(f, ARRAY_SIZE(bad_marks))]);
		return -EINVAL;
	case 5:
		add(r, "replace_peers=%s", bad_bools[below(f, ARRAY_SIZE(bad_bools))]);
		return -EINVAL;
	case 6:
		add(r, "%s", get_only[below(f, ARRAY_SIZE(get_only))]);
		return -EINVAL;
	case 7:
		/* A NUL inside the line. */
		add(r, "listen_port=1");
		add_bytes(r, "\0", 1);
		add(r, "2");
		return -EINVAL;
	default:
		/* Longer than any line may be (4096). */
		add(r, "private_key=");
		add_random(f, r, hexdigits, 4097 + below(f, 8000));
		return -EINVAL;
	}
}

/* A peer named with update_only=true, then an invalid peer line. */
static int bad_peer_lines(struct fuzz *f, struct req *r)
{
	static const char *const bad[] = {
		"endpoint=192.0.2.1", "endpoint=[2001:db8::1]", "endpoint=192.0.2.1:70000",
		"endpoint=[2001:db8::1:1", "endpoint=host:1", "endpoint=192.0.2.1:",
		"endpoint=[2001:db8::1%]:1", "endpoint=[2001:db8::1%nosuchifname0]:1",
		"allowed_ip=192.0.2.1/33", "allowed_ip=::/129", "allowed_ip=192.0.2.1",
		"allowed_ip=x/1", "allowed_ip=-/1", "allowed_ip=192.0.2.1/-1", "allowed_ip=/",
		"persistent_keepalive_interval=65536", "persistent_keepalive_interval=-1",
		"protocol_version=2", "protocol_version=", "remove=false", "update_only=yes",
		"replace_allowed_ips=1", "private_key=", "listen_port=1", "bogus=1", "nokey",
	};
	const char *line = bad[below(f, ARRAY_SIZE(bad))];

	add(r, "public_key=");
	if (f->have_peer && below(f, 2)) {
		char hex[65];

		sodium_bin2hex(hex, sizeof(hex), f->peer, 32);
		add(r, "%s", hex);
	} else {
		add_valid_hex(f, r);
	}
	add(r, "\nupdate_only=true\n");
	if (below(f, 3) == 0) {
		add(r, "preshared_key=");
		add_bad_hex(f, r);
		return -EINVAL;
	}
	add(r, "%s", line);
	return strchr(line, '=') ? -EINVAL : -EPROTO;
}

/* Lines after the first error are skipped, however valid they look. */
static void junk_lines(struct fuzz *f, struct req *r)
{
	size_t n = below(f, 6);

	for (size_t i = 0; i < n; i++) {
		add(r, "\n");
		switch (below(f, 3)) {
		case 0:
			add_random(f, r, printable, 1 + below(f, 80));
			break;
		case 1:
			add(r, "%s=", known_keys[below(f, ARRAY_SIZE(known_keys))]);
			add_random(f, r, printable, below(f, 70));
			break;
		default:
			/* Valid lines that would change the config were they applied. */
			add(r, "%s", (const char *[]){ "listen_port=1", "replace_peers=true",
						       "fwmark=7", "private_key=" }[below(f, 4)]);
			if (r->data[r->len - 1] == '=')
				add_valid_hex(f, r);
		}
	}
}

static void build(struct fuzz *f, enum kind k, struct req *r)
{
	memset(r, 0, sizeof(*r));
	switch (k) {
	case K_BADOP:
		switch (below(f, 4)) {
		case 0:
			add(r, "%s\n", (const char *[]){ "get=2", "set=0", "GET=1", "get=1 ",
							 "set", "", "get", "=", "set=1\r" }[below(f, 9)]);
			break;
		case 1:
			add_random(f, r, printable, 1 + below(f, 100));
			add(r, "\n");
			break;
		case 2: {
			uint8_t bin[256];

			/* Binary: no operation starts with 0xff. */
			for (size_t j = 0; j < sizeof(bin); j++)
				bin[j] = (uint8_t)next(f);
			bin[0] = 0xff;
			add_bytes(r, bin, 1 + below(f, sizeof(bin)));
			add(r, "\n");
			break;
		}
		default:
			add_random(f, r, alnum, 4097 + below(f, 8000));
		}
		add(r, "set=1\nlisten_port=1\n\n"); /* never to be read */
		break;
	case K_SET:
		add(r, "set=1\n");
		r->expect = below(f, 4) ? bad_device_line(f, r) : bad_peer_lines(f, r);
		junk_lines(f, r);
		add(r, "\n\n");
		break;
	case K_GETJUNK:
		add(r, "get=1\n");
		add_random(f, r, printable, 1 + below(f, 30));
		add(r, "\n\n");
		break;
	case K_HALF:
		add(r, "%s", (const char *[]){ "set=1\n", "set=1\nlisten_port=123456", "get=1", "se",
					       "set=1\npublic_key=", "set=1\nprivate_key=0123",
					       "set=1\nreplace_peers=tr", "" }[below(f, 8)]);
		break;
	case K_COUNT:
		break;
	}
}

/* ---- talking ---- */

static int connect_to(struct fuzz *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		violation(f, "cannot connect to %s: %s", f->path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* Writes in random pieces. Returns false if the daemon stopped reading. */
static bool send_pieces(struct fuzz *f, int s, const struct req *r)
{
	size_t off = 0;

	while (off < r->len) {
		size_t n = below(f, 4) ? r->len - off : 1 + below(f, 64);
		ssize_t w;

		if (n > r->len - off)
			n = r->len - off;
		w = send(s, r->data + off, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	return true;
}

/*
 * Reads until a reply ends ("\n\n" at the end), EOF or 2 s. Returns the bytes
 * read (NUL-terminated in buf) and sets *eof; -1 on a timeout.
 */
static ssize_t read_reply(int s, char *buf, size_t cap, bool *eof)
{
	size_t len = 0;

	*eof = false;
	while (len < cap - 1) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, REPLY_MS) <= 0)
			return -1;
		n = recv(s, buf + len, cap - 1 - len, 0);
		if (n <= 0) {
			/* Closed with our bytes unread: the kernel says reset. */
			if (n < 0 && errno != ECONNRESET)
				return -1;
			*eof = true;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n')
			break;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

static bool expect_errno(struct fuzz *f, int s, int expect, const char *what)
{
	char buf[256], want[32];
	bool eof;
	ssize_t n = read_reply(s, buf, sizeof(buf), &eof);
	long got;
	char *end;

	if (n < 0) {
		violation(f, "%s: no reply within %d ms", what, REPLY_MS);
		return false;
	}
	if (strncmp(buf, "errno=", 6) != 0 || (got = strtol(buf + 6, &end, 10)) >= 0 ||
	    strcmp(end, "\n\n") != 0) {
		violation(f, "%s: reply is not errno=<negative>: \"%.60s\"%s", what, buf,
			  eof ? " (closed)" : "");
		return false;
	}
	snprintf(want, sizeof(want), "errno=%d\n\n", expect);
	if (expect != ANY_NEGATIVE && strcmp(buf, want) != 0) {
		violation(f, "%s: replied errno=%ld, expected %d", what, got, expect);
		return false;
	}
	return true;
}

static void expect_eof(struct fuzz *f, int s, const char *what)
{
	char buf[256];
	bool eof;
	ssize_t n = read_reply(s, buf, sizeof(buf), &eof);

	if (n < 0)
		violation(f, "%s: connection not closed within %d ms", what, REPLY_MS);
	else if (n > 0)
		violation(f, "%s: expected the connection closed, got \"%.60s\"", what, buf);
	else if (!eof)
		violation(f, "%s: connection not closed", what);
}

/* The reply to get=1 without what traffic changes. NULL on failure (a violation). */
static char *get_config(struct fuzz *f, int s, const char *what)
{
	static char buf[REPLY_MAX];
	char *out, *line, *save = NULL;
	size_t used = 0;
	bool eof;
	ssize_t n;

	if (send(s, "get=1\n\n", 7, MSG_NOSIGNAL) != 7 ||
	    (n = read_reply(s, buf, sizeof(buf), &eof)) < 0) {
		violation(f, "%s: get: no reply", what);
		return NULL;
	}
	if (n < 9 || strcmp(buf + n - 9, "errno=0\n\n") != 0 ||
	    (n > 9 && buf[n - 10] != '\n')) {
		violation(f, "%s: get: reply does not end in errno=0: \"%.60s\"", what, buf);
		return NULL;
	}
	out = calloc(1, (size_t)n + 1);
	if (!out)
		return NULL;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "last_handshake_time_", 20) || !strncmp(line, "tx_bytes=", 9) ||
		    !strncmp(line, "rx_bytes=", 9))
			continue;
		if (!f->have_peer && !strncmp(line, "public_key=", 11) &&
		    !sodium_hex2bin(f->peer, 32, line + 11, strlen(line + 11), NULL, NULL, NULL))
			f->have_peer = true;
		used += (size_t)sprintf(out + used, "%s\n", line);
	}
	sodium_memzero(buf, sizeof(buf));
	return out;
}

/* The first line of b that differs from a's, for the report (keys shown: test keys only). */
static const char *first_difference(const char *a, const char *b)
{
	static char line[160];
	size_t i = 0, start = 0, n;

	while (a[i] && a[i] == b[i])
		if (a[i++] == '\n')
			start = i;
	n = strcspn(b + start, "\n");
	snprintf(line, sizeof(line), "\"%.*s\"", (int)(n < 150 ? n : 150), b + start);
	return line;
}

/* A get on a fresh connection: the daemon answers and nothing has changed. */
static void check_config(struct fuzz *f)
{
	int s = connect_to(f);
	char *now;

	if (s < 0)
		return;
	f->checks++;
	now = get_config(f, s, "check");
	close(s);
	if (!now)
		return;
	if (!f->baseline)
		f->baseline = now;
	else if (strcmp(now, f->baseline) != 0)
		violation(f, "the configuration changed after %llu connections: %s",
			  f->count[K_BADOP] + f->count[K_SET] + f->count[K_GETJUNK] + f->count[K_HALF],
			  first_difference(f->baseline, now));
	if (now != f->baseline) {
		sodium_memzero(now, strlen(now));
		free(now);
	}
}

static void one(struct fuzz *f, unsigned long i)
{
	static struct req r;
	enum kind k = (enum kind)below(f, K_COUNT);
	char what[64];
	int s;

	build(f, k, &r);
	snprintf(what, sizeof(what), "connection %lu (%s)", i, kind_names[k]);
	s = connect_to(f);
	if (s < 0)
		return;
	f->count[k]++;
	/* The daemon may close a bad operation before reading it all: a failed send is fine. */
	if (!send_pieces(f, s, &r) && k != K_BADOP && k != K_GETJUNK)
		violation(f, "%s: the daemon stopped reading", what);
	switch (k) {
	case K_BADOP:
		expect_eof(f, s, what);
		break;
	case K_SET:
		if (expect_errno(f, s, r.expect, what) && below(f, 2)) {
			/* The connection is back in step: a get works on it. */
			char *cfg = get_config(f, s, what);

			free(cfg);
		}
		break;
	case K_GETJUNK:
		if (expect_errno(f, s, -EINVAL, what))
			expect_eof(f, s, what);
		break;
	default:
		break;
	}
	close(s);
}

int main(int argc, char **argv)
{
	struct fuzz f = { 0 };
	unsigned long n;

	if (argc != 4 || sodium_init() < 0) {
		fprintf(stderr, "usage: uapifuzz SOCKET COUNT SEED\n");
		return 2;
	}
	f.path = argv[1];
	n = strtoul(argv[2], NULL, 10);
	f.rng = strtoull(argv[3], NULL, 10);
	check_config(&f);
	if (!f.baseline)
		return 1;
	for (unsigned long i = 0; i < n; i++) {
		one(&f, i);
		if ((i + 1) % CHECK_EVERY == 0)
			check_config(&f);
	}
	check_config(&f);
	printf("connections=%lu badop=%llu set=%llu getjunk=%llu half=%llu checks=%llu violations=%llu\n",
	       n, f.count[K_BADOP], f.count[K_SET], f.count[K_GETJUNK], f.count[K_HALF], f.checks,
	       f.violations);
	sodium_memzero(f.baseline, strlen(f.baseline));
	free(f.baseline);
	return f.violations ? 1 : 0;
}
