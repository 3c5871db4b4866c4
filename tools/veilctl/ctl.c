// SPDX-License-Identifier: MIT
/*
 * The client side of WireGuard's userspace API (ctl.h): connect to a
 * daemon's socket, read its configuration back, send it changes, and
 * build those changes from a configuration file.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"

enum { REPLY_MAX = 64 * 1024 * 1024, READ_WAIT_MS = 5000 };

/* ---- locked text buffers ------------------------------------------------------------- */

static bool sbuf_grow(struct sbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *d;

	while (cap < need)
		cap *= 2;
	d = sodium_malloc(cap);
	if (!d) {
		b->failed = true;
		return false;
	}
	if (b->data) {
		memcpy(d, b->data, b->len + 1);
		sodium_free(b->data); /* wipes */
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (b->len + (size_t)n + 1 > b->cap && !sbuf_grow(b, b->len + (size_t)n + 1))) {
		b->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sbuf_free(struct sbuf *b)
{
	if (b->data)
		sodium_free(b->data);
	memset(b, 0, sizeof(*b));
}

static void sbuf_hex(struct sbuf *b, const char *key, const uint8_t k[32])
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), k, 32);
	sbuf_printf(b, "%s=%s\n", key, hex);
	sodium_memzero(hex, sizeof(hex));
}

/* ---- the socket ------------------------------------------------------------------------ */

static int socket_path(const char *ifname, char *out, size_t len)
{
	if (!conf_valid_ifname(ifname))
		return -EINVAL;
	snprintf(out, len, "%s/%s.sock", CTL_SOCKET_DIR, ifname);
	return 0;
}

int ctl_connect(const char *ifname, int *fd, char *why, size_t whylen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int s, ret;

	if (socket_path(ifname, a.sun_path, sizeof(a.sun_path))) {
		snprintf(why, whylen, "\"%.32s\" is not an interface name", ifname);
		return -EINVAL;
	}
	if (stat(a.sun_path, &st) < 0) {
		ret = -errno;
		snprintf(why, whylen, "no daemon runs for %s (%s %s)", ifname, a.sun_path,
			 ret == -ENOENT ? "does not exist" : strerror(-ret));
		return ret;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "%s is not a socket", a.sun_path);
		return -ENOTSOCK;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		close(s);
		if (ret == -ECONNREFUSED)
			snprintf(why, whylen, "%s is a stale socket: no daemon listens on it", a.sun_path);
		else
			snprintf(why, whylen, "cannot connect to %s: %s", a.sun_path, strerror(-ret));
		return ret;
	}
	*fd = s;
	return 0;
}

bool ctl_running(const char *ifname)
{
	char why[256];
	int fd = -1;

	if (ctl_connect(ifname, &fd, why, sizeof(why)))
		return false;
	close(fd);
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ctl_list(char ***names, size_t *n)
{
	DIR *d = opendir(CTL_SOCKET_DIR);
	struct dirent *e;
	char **v = NULL;

	*names = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char **nv;

		if (len < 6 || strcmp(e->d_name + len - 5, ".sock") != 0)
			continue;
		nv = realloc(v, (*n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[*n] = strndup(e->d_name, len - 5);
		if (v[*n])
			(*n)++;
	}
	closedir(d);
	if (v)
		qsort(v, *n, sizeof(*v), cmp_names);
	*names = v;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until the reply's empty line; the reply goes into b (locked: it may hold keys). */
static int read_reply(int fd, struct sbuf *b)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char chunk[4096];
	int ret = -EBADMSG;

	while (b->len < REPLY_MAX) {
		ssize_t n;

		if (poll(&p, 1, READ_WAIT_MS) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n <= 0)
			break;
		sbuf_printf(b, "%.*s", (int)n, chunk);
		if (b->failed) {
			ret = -ENOMEM;
			break;
		}
		if ((b->len == 1 && b->data[0] == '\n') || (b->len >= 2 && strstr(b->data, "\n\n"))) {
			ret = 0;
			break;
		}
	}
	sodium_memzero(chunk, sizeof(chunk));
	return ret;
}

/* The errno= line of a reply: the daemon's errno, as a negative number. */
static int reply_errno(const char *reply, int *err)
{
	const char *e = strstr(reply, "errno=");
	long v;

	if (!e || (e != reply && e[-1] != '\n'))
		return -EBADMSG;
	v = strtol(e + 6, NULL, 10);
	*err = v > 0 ? (int)-v : (int)v;
	return 0;
}

int ctl_set(const char *ifname, const struct sbuf *req, char *why, size_t whylen)
{
	struct sbuf reply = { 0 };
	int fd = -1, ret, err = 0;

	if (req->failed)
		return -ENOMEM;
	ret = ctl_connect(ifname, &fd, why, whylen);
	if (ret)
		return ret;
	ret = write_all(fd, req->data, req->len);
	if (!ret)
		ret = read_reply(fd, &reply);
	if (!ret)
		ret = reply_errno(reply.data, &err);
	if (ret == -EBADMSG || ret == -ETIMEDOUT)
		snprintf(why, whylen, "%s.sock did not answer as a WireGuard control socket", ifname);
	close(fd);
	sbuf_free(&reply);
	return ret ? ret : err;
}

/* ---- get ---------------------------------------------------------------------------------- */

static bool hex_key(const char *v, uint8_t out[32])
{
	size_t len = 0;

	return strlen(v) == 64 && sodium_hex2bin(out, 32, v, 64, NULL, &len, NULL) == 0 && len == 32;
}

static bool parse_endpoint(const char *v, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 16];
	const char *colon = strrchr(v, ':');
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	unsigned long port;
	char *end, *pct;
	size_t hl;

	if (!colon)
		return false;
	port = strtoul(colon + 1, &end, 10);
	hl = (size_t)(colon - v);
	if (*end || port > 65535 || hl + 1 > sizeof(host))
		return false;
	memset(ss, 0, sizeof(*ss));
	if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') {
		memcpy(host, v + 1, hl - 2);
		host[hl - 2] = '\0';
		pct = strchr(host, '%');
		if (pct) {
			*pct++ = '\0';
			s6->sin6_scope_id = (uint32_t)strtoul(pct, NULL, 10);
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1;
	}
	memcpy(host, v, hl);
	host[hl] = '\0';
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*len = sizeof(*s4);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1;
}

static struct ctl_peer *add_peer(struct ctl_device *dev)
{
	struct ctl_peer *p = realloc(dev->peers, (dev->n_peers + 1) * sizeof(*p));

	if (!p)
		return NULL;
	dev->peers = p;
	p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	return p;
}

static uint8_t *locked_key(const char *hex)
{
	uint8_t *k = sodium_malloc(32);

	if (k && !hex_key(hex, k)) {
		sodium_free(k);
		return NULL;
	}
	return k;
}

static int device_line(struct ctl_device *dev, const char *key, const char *v)
{
	if (!strcmp(key, "private_key")) {
		dev->private_key = locked_key(v);
		if (!dev->private_key)
			return -EBADMSG;
		if (sodium_is_zero(dev->private_key, 32)) {
			sodium_free(dev->private_key);
			dev->private_key = NULL;
		} else {
			crypto_scalarmult_base(dev->public_key, dev->private_key);
		}
	} else if (!strcmp(key, "listen_port")) {
		dev->listen_port = (uint16_t)strtoul(v, NULL, 10);
	} else if (!strcmp(key, "fwmark")) {
		dev->fwmark = (uint32_t)strtoul(v, NULL, 10);
	}
	return 0; /* unknown keys: a newer daemon, ignored */
}

static int peer_line(struct ctl_peer *p, const char *key, const char *v)
{
	struct conf_prefix pfx, *a;

	if (!strcmp(key, "preshared_key")) {
		p->preshared_key = locked_key(v);
		if (!p->preshared_key)
			return -EBADMSG;
		if (sodium_is_zero(p->preshared_key, 32)) {
			sodium_free(p->preshared_key);
			p->preshared_key = NULL;
		}
	} else if (!strcmp(key, "endpoint")) {
		if (!parse_endpoint(v, &p->endpoint, &p->endpoint_len))
			return -EBADMSG;
	} else if (!strcmp(key, "persistent_keepalive_interval")) {
		p->persistent_keepalive = (uint16_t)strtoul(v, NULL, 10);
	} else if (!strcmp(key, "last_handshake_time_sec")) {
		p->last_handshake_sec = strtoull(v, NULL, 10);
	} else if (!strcmp(key, "last_handshake_time_nsec")) {
		p->last_handshake_nsec = strtoull(v, NULL, 10);
	} else if (!strcmp(key, "rx_bytes")) {
		p->rx_bytes = strtoull(v, NULL, 10);
	} else if (!strcmp(key, "tx_bytes")) {
		p->tx_bytes = strtoull(v, NULL, 10);
	} else if (!strcmp(key, "allowed_ip")) {
		if (conf_parse_prefix(v, &pfx))
			return -EBADMSG;
		a = realloc(p->allowed_ips, (p->n_allowed_ips + 1) * sizeof(*a));
		if (!a)
			return -ENOMEM;
		p->allowed_ips = a;
		a[p->n_allowed_ips++] = pfx;
	}
	return 0;
}

static int parse_get(char *text, struct ctl_device *dev)
{
	struct ctl_peer *peer = NULL;
	char *line, *save = NULL;
	int ret = 0;

	for (line = strtok_r(text, "\n", &save); !ret && line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		if (!strcmp(line, "errno")) {
			long e = strtol(eq + 1, NULL, 10);

			return e > 0 ? (int)-e : (int)e;
		}
		if (!strcmp(line, "public_key")) {
			peer = add_peer(dev);
			if (!peer)
				return -ENOMEM;
			if (!hex_key(eq + 1, peer->public_key))
				return -EBADMSG;
		} else if (peer) {
			ret = peer_line(peer, line, eq + 1);
		} else {
			ret = device_line(dev, line, eq + 1);
		}
	}
	return ret ? ret : -EBADMSG; /* no errno line */
}

int ctl_get(const char *ifname, struct ctl_device *dev, char *why, size_t whylen)
{
	struct sbuf reply = { 0 };
	int fd = -1, ret;

	memset(dev, 0, sizeof(*dev));
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", ifname);
	ret = ctl_connect(ifname, &fd, why, whylen);
	if (ret)
		return ret;
	ret = write_all(fd, "get=1\n\n", 7);
	if (!ret)
		ret = read_reply(fd, &reply);
	close(fd);
	if (!ret)
		ret = parse_get(reply.data, dev);
	if (ret == -EBADMSG || ret == -ETIMEDOUT)
		snprintf(why, whylen, "%s.sock did not answer as a WireGuard control socket", ifname);
	sbuf_free(&reply);
	if (ret)
		ctl_device_free(dev);
	return ret;
}

void ctl_device_free(struct ctl_device *dev)
{
	size_t i;

	if (dev->private_key)
		sodium_free(dev->private_key);
	for (i = 0; i < dev->n_peers; i++) {
		if (dev->peers[i].preshared_key)
			sodium_free(dev->peers[i].preshared_key);
		free(dev->peers[i].allowed_ips);
	}
	free(dev->peers);
	memset(dev, 0, sizeof(*dev));
}

/* ---- requests from a configuration -------------------------------------------------------- */

static void put_endpoint(struct sbuf *b, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN] = "";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		sbuf_printf(b, "endpoint=[%s]:%u\n", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		sbuf_printf(b, "endpoint=%s:%u\n", a, ntohs(s4->sin_port));
	}
}

static void put_allowed_ips(struct sbuf *b, const struct conf_prefix *v, size_t n)
{
	char a[INET6_ADDRSTRLEN];
	size_t i;

	sbuf_printf(b, "replace_allowed_ips=true\n");
	for (i = 0; i < n; i++) {
		inet_ntop(v[i].family, v[i].addr, a, sizeof(a));
		sbuf_printf(b, "allowed_ip=%s/%u\n", a, v[i].cidr);
	}
}

static void put_device(struct sbuf *b, const struct conf *c)
{
	if (c->private_key.key)
		sbuf_hex(b, "private_key", c->private_key.key);
	if (c->has_listen_port)
		sbuf_printf(b, "listen_port=%u\n", c->listen_port);
	if (c->has_fwmark)
		sbuf_printf(b, "fwmark=%u\n", c->fwmark);
}

static void put_peer(struct sbuf *b, const struct conf_peer *p)
{
	uint8_t zero[32] = { 0 };

	sbuf_hex(b, "public_key", p->public_key);
	sbuf_hex(b, "preshared_key", p->psk.key ? p->psk.key : zero);
	if (p->endpoint_len)
		put_endpoint(b, &p->endpoint_addr);
	sbuf_printf(b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	put_allowed_ips(b, p->allowed_ips, p->n_allowed_ips);
}

int ctl_build_setconf(const struct conf *c, struct sbuf *req)
{
	size_t i;

	sbuf_printf(req, "set=1\n");
	put_device(req, c);
	sbuf_printf(req, "replace_peers=true\n");
	for (i = 0; i < c->n_peers; i++)
		put_peer(req, &c->peers[i]);
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}

static const struct ctl_peer *running_peer(const struct ctl_device *d, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < d->n_peers; i++)
		if (!memcmp(d->peers[i].public_key, pub, 32))
			return &d->peers[i];
	return NULL;
}

static bool in_conf(const struct conf *c, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].public_key, pub, 32))
			return true;
	return false;
}

static bool same_prefix(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	       !memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
}

/* Whether every prefix of a is in b (the daemon reports them as given, host bits too). */
static bool prefixes_in(const struct conf_prefix *a, size_t na, const struct conf_prefix *b, size_t nb)
{
	size_t i, j;

	for (i = 0; i < na; i++) {
		for (j = 0; j < nb && !same_prefix(&a[i], &b[j]); j++)
			;
		if (j == nb)
			return false;
	}
	return true;
}

static bool same_endpoint(const struct conf_peer *p, const struct ctl_peer *r)
{
	if (!p->endpoint_len)
		return true; /* the file names none: leave the daemon's (learnt by roaming) */
	return r->endpoint_len == p->endpoint_len && !memcmp(&r->endpoint, &p->endpoint_addr, p->endpoint_len);
}

/* Only the lines that differ, after public_key and update_only. */
static void sync_peer(struct sbuf *b, const struct conf_peer *p, const struct ctl_peer *r)
{
	bool psk_same = p->psk.key ? r->preshared_key && !sodium_memcmp(p->psk.key, r->preshared_key, 32)
				   : !r->preshared_key;
	bool ips_same = prefixes_in(p->allowed_ips, p->n_allowed_ips, r->allowed_ips, r->n_allowed_ips) &&
			prefixes_in(r->allowed_ips, r->n_allowed_ips, p->allowed_ips, p->n_allowed_ips);
	uint8_t zero[32] = { 0 };

	if (psk_same && ips_same && same_endpoint(p, r) && p->persistent_keepalive == r->persistent_keepalive)
		return;
	sbuf_hex(b, "public_key", p->public_key);
	sbuf_printf(b, "update_only=true\n");
	if (!psk_same)
		sbuf_hex(b, "preshared_key", p->psk.key ? p->psk.key : zero);
	if (!same_endpoint(p, r))
		put_endpoint(b, &p->endpoint_addr);
	if (p->persistent_keepalive != r->persistent_keepalive)
		sbuf_printf(b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	if (!ips_same)
		put_allowed_ips(b, p->allowed_ips, p->n_allowed_ips);
}

int ctl_build_syncconf(const struct conf *c, const struct ctl_device *running, struct sbuf *req)
{
	size_t i;

	sbuf_printf(req, "set=1\n");
	if (c->private_key.key &&
	    (!running->private_key || sodium_memcmp(c->private_key.key, running->private_key, 32)))
		sbuf_hex(req, "private_key", c->private_key.key);
	if (c->has_listen_port && c->listen_port != running->listen_port)
		sbuf_printf(req, "listen_port=%u\n", c->listen_port);
	if (c->has_fwmark && c->fwmark != running->fwmark)
		sbuf_printf(req, "fwmark=%u\n", c->fwmark);
	for (i = 0; i < running->n_peers; i++) {
		if (in_conf(c, running->peers[i].public_key))
			continue;
		sbuf_hex(req, "public_key", running->peers[i].public_key);
		sbuf_printf(req, "remove=true\n");
	}
	for (i = 0; i < c->n_peers; i++) {
		const struct ctl_peer *r = running_peer(running, c->peers[i].public_key);

		if (r)
			sync_peer(req, &c->peers[i], r);
		else
			put_peer(req, &c->peers[i]);
	}
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}
