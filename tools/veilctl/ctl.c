// SPDX-License-Identifier: MIT
/*
 * The client side of WireGuard's userspace API (ctl.h; described at
 * wireguard.com/xplatform): connect to a daemon's socket, read its state
 * back with get=1, send it changes with set=1, and build those changes
 * from a configuration.
 *
 * A get reply carries the private key and every pre-shared key in hex, so
 * replies are read into locked memory (an sbuf) and wiped once parsed.
 * Every wait on the socket is bounded: a daemon that hangs costs at most
 * IO_WAIT_MS per read, write or connect, never a stuck veilctl.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "veil.h"

enum {
	REPLY_MAX = 64 * 1024 * 1024, /* 10,000 peers with a few prefixes each need about 5 MB */
	IO_WAIT_MS = 5000,
	SBUF_MIN = 1024,
};

/* ---- locked text buffers -------------------------------------------------------------- */

/*
 * Room for need bytes. sodium_malloc blocks cannot grow in place: take a
 * new one, copy, and let sodium_free wipe the old one.
 */
static bool sbuf_reserve(struct sbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : SBUF_MIN;
	char *d;

	if (b->failed)
		return false;
	if (need <= b->cap)
		return true;
	while (cap < need && cap <= SIZE_MAX / 2)
		cap *= 2;
	d = cap >= need ? sodium_malloc(cap) : NULL;
	if (!d) {
		b->failed = true;
		return false;
	}
	if (b->data) {
		memcpy(d, b->data, b->len + 1);
		sodium_free(b->data);
	}
	b->data = d;
	b->cap = cap;
	return true;
}

static void sbuf_append(struct sbuf *b, const char *p, size_t n)
{
	if (n > SIZE_MAX - b->len - 1 || !sbuf_reserve(b, b->len + n + 1))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
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
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!sbuf_reserve(b, b->len + (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sbuf_free(struct sbuf *b)
{
	if (b->data)
		sodium_free(b->data); /* wipes */
	memset(b, 0, sizeof(*b));
}

/* A key line in hex; the stack copy is wiped, the sbuf is locked. */
static void sbuf_hex(struct sbuf *b, const char *name, const uint8_t k[static 32])
{
	char hex[65];

	sodium_bin2hex(hex, sizeof(hex), k, 32);
	sbuf_printf(b, "%s=%s\n", name, hex);
	sodium_memzero(hex, sizeof(hex));
}

/* ---- text forms ------------------------------------------------------------------------- */

void ctl_format_endpoint(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)ss;
		char scope[16] = "";

		/* Numeric: the daemon may live in another namespace, where names differ. */
		if (s6->sin6_scope_id)
			snprintf(scope, sizeof(scope), "%%%u", (unsigned int)s6->sin6_scope_id);
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s%s]:%u", a, scope, ntohs(s6->sin6_port));
	} else if (len) {
		out[0] = '\0';
	}
}

void ctl_format_prefix(const struct conf_prefix *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, p->cidr);
}

void ctl_format_bytes(double n, const char *per, char *out, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = n / 1024;
	size_t u = 0;

	if (n < 1024) {
		snprintf(out, len, "%.0f B%s", n, per);
		return;
	}
	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, "%.2f %s%s", v, unit[u], per);
}

/* ---- the socket ------------------------------------------------------------------------- */

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Why connect failed, in words an operator can act on. */
static void connect_why(int err, const char *ifname, const char *path, char *why, size_t whylen)
{
	if (err == -ENOENT)
		say(why, whylen, "no daemon runs for %s (%s does not exist)", ifname, path);
	else if (err == -ECONNREFUSED)
		say(why, whylen, "%s is a stale socket: no daemon listens on it", path);
	else if (err == -ENOTSOCK)
		say(why, whylen, "%s is not a socket", path);
	else if (err == -EAGAIN || err == -ETIMEDOUT)
		say(why, whylen, "the daemon behind %s does not accept connections (busy or stuck)", path);
	else if (err == -EACCES || err == -EPERM)
		say(why, whylen, "%s: permission denied (the socket is root's)", path);
	else
		say(why, whylen, "cannot connect to %s: %s", path, strerror(-err));
}

int ctl_connect(const char *ifname, int *fd, char *why, size_t whylen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	/* A full listen backlog makes connect wait: SO_SNDTIMEO bounds that too. */
	struct timeval tv = { .tv_sec = IO_WAIT_MS / 1000 };
	struct stat st;
	int s = -1, ret;

	*fd = -1;
	say(why, whylen, "%s", "");
	if (!conf_valid_ifname(ifname)) {
		say(why, whylen, "\"%.32s\" is not an interface name", ifname);
		return -EINVAL;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s.sock", CTL_SOCKET_DIR, ifname);
	if (stat(a.sun_path, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISSOCK(st.st_mode)) {
		ret = -ENOTSOCK;
		goto out;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(s, (const struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		goto out;
	}
	*fd = s;
	s = -1;
	ret = 0;
out:
	if (s >= 0)
		close(s);
	if (ret)
		connect_why(ret, ifname, a.sun_path, why, whylen);
	return ret;
}

bool ctl_running(const char *ifname)
{
	char why[256];
	int fd;

	if (ctl_connect(ifname, &fd, why, sizeof(why)))
		return false;
	close(fd);
	return true;
}

/* The pid of the process serving IFNAME's socket (SO_PEERCRED), or 0. */
static pid_t peer_pid(const char *ifname)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	char why[256];
	int fd;

	if (ctl_connect(ifname, &fd, why, sizeof(why)))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		cred.pid = 0;
	close(fd);
	return cred.pid;
}

/* The systemd service a process runs in ("veil@wg0.service"), from its cgroup; false if none. */
static bool service_of(pid_t pid, char *unit, size_t len)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *last = strrchr(line, '/');
		size_t n;

		if (!last)
			continue;
		last++;
		n = strcspn(last, "\n");
		last[n] = '\0';
		found = n > 8 && n < len && !strcmp(last + n - 8, ".service") &&
			!strchr(last, ' ') && !strchr(last, '"');
		if (found)
			snprintf(unit, len, "%s", last);
	}
	fclose(f);
	return found;
}

void ctl_log_where(const char *ifname, char *out, size_t len)
{
	char path[64], target[256] = "", unit[128];
	pid_t pid = peer_pid(ifname);
	ssize_t n = -1;

	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/fd/2", (int)pid);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
	}
	/* In the background veild's standard error is /dev/null and it logs to syslog. */
	if (n > 0 && strcmp(target, "/dev/null") != 0)
		snprintf(out, len, "its standard error, %s (it runs in the foreground)", target);
	else if (pid > 0 && service_of(pid, unit, sizeof(unit)))
		snprintf(out, len, "journalctl -u %s", unit);
	else if (access("/dev/log", W_OK) == 0)
		snprintf(out, len, "syslog (journalctl -t veild, or /var/log/syslog)");
	else
		snprintf(out, len, "nowhere: this host has no syslog (/dev/log); veild -f %s logs to stderr",
			 ifname);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Room for one more in an array whose capacity is n rounded up to a power of two. */
static void *grow(void *v, size_t n, size_t size)
{
	size_t cap = n ? n * 2 : 1;

	if (n & (n - 1))
		return v; /* not a power of two: room is left */
	if (cap > SIZE_MAX / size)
		return NULL;
	return realloc(v, cap * size);
}

/* Whether dir/name is a socket an interface could own: "IFNAME.sock", a socket. */
static bool is_ctl_socket(int dir, const char *name, char ifname[static 16])
{
	size_t len = strlen(name);
	struct stat st;

	if (len < 6 || len - 5 >= 16 || strcmp(name + len - 5, ".sock") != 0)
		return false;
	memcpy(ifname, name, len - 5);
	ifname[len - 5] = '\0';
	return conf_valid_ifname(ifname) && fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISSOCK(st.st_mode);
}

int ctl_list(char ***names, size_t *n)
{
	DIR *d = opendir(CTL_SOCKET_DIR);
	struct dirent *e;
	char **v = NULL, ifname[16];
	size_t i;
	int ret = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		char **nv;

		if (!is_ctl_socket(dirfd(d), e->d_name, ifname))
			continue;
		nv = grow(v, *n, sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			goto out;
		}
		v = nv;
		v[*n] = strdup(ifname);
		if (!v[*n]) {
			ret = -ENOMEM;
			goto out;
		}
		(*n)++;
	}
	if (v)
		qsort(v, *n, sizeof(*v), cmp_names);
out:
	closedir(d);
	if (ret) {
		for (i = 0; i < *n; i++)
			free(v[i]);
		free(v);
		v = NULL;
		*n = 0;
	}
	*names = v;
	return ret;
}

static int send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_write_out(const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read up to the reply's empty line. Only the new bytes (and the one
 * before them) are searched for "\n\n", so a long reply costs linear time.
 */
static int read_reply(int fd, struct sbuf *b)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char chunk[4096];
	int ret;

	for (;;) {
		size_t from = b->len ? b->len - 1 : 0;
		ssize_t n;

		ret = poll(&p, 1, IO_WAIT_MS);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			ret = ret ? -errno : -ETIMEDOUT;
			break;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n ? -errno : -EPIPE;
			break;
		}
		ret = -EBADMSG;
		if (memchr(chunk, '\0', (size_t)n) || b->len + (size_t)n > REPLY_MAX)
			break; /* not a text reply */
		sbuf_append(b, chunk, (size_t)n);
		ret = -ENOMEM;
		if (b->failed)
			break;
		ret = 0;
		if (b->data[0] == '\n' || strstr(b->data + from, "\n\n"))
			break;
	}
	sodium_memzero(chunk, sizeof(chunk));
	return ret;
}

/* One request, one reply (read whole into reply, locked memory). why names the socket. */
static int exchange(const char *ifname, const char *req, size_t len, struct sbuf *reply, char *why,
		    size_t whylen)
{
	int fd, ret;

	ret = ctl_connect(ifname, &fd, why, whylen);
	if (ret)
		return ret;
	ret = send_all(fd, req, len);
	if (!ret)
		ret = read_reply(fd, reply);
	close(fd);
	if (ret == -ENOMEM)
		say(why, whylen, "out of locked memory for the reply");
	else if (ret == -ETIMEDOUT)
		say(why, whylen, "%s/%s.sock did not answer as a WireGuard control socket (no reply within %d s)",
		    CTL_SOCKET_DIR, ifname, IO_WAIT_MS / 1000);
	else if (ret == -EPIPE || ret == -ECONNRESET)
		say(why, whylen, "%s/%s.sock did not answer as a WireGuard control socket (it hung up)",
		    CTL_SOCKET_DIR, ifname);
	else if (ret)
		say(why, whylen, "%s/%s.sock did not answer as a WireGuard control socket (%s)", CTL_SOCKET_DIR,
		    ifname, ret == -EBADMSG ? "not a text reply" : strerror(-ret));
	return ret;
}

/* ---- reading replies ---------------------------------------------------------------------- */

/* The unread part of a reply, line by line. */
struct reader {
	char *p, *end;
	unsigned int line;
};

/*
 * 1: a key=value line (split in place); 0: the empty line that ends the
 * reply; -EBADMSG with *key NULL (no line left) or *value NULL (no '=').
 */
static int next_line(struct reader *r, char **key, char **value)
{
	char *nl = r->p < r->end ? memchr(r->p, '\n', (size_t)(r->end - r->p)) : NULL, *eq;

	*key = *value = NULL;
	if (!nl)
		return -EBADMSG;
	*nl = '\0';
	*key = r->p;
	r->p = nl + 1;
	r->line++;
	if (!**key)
		return 0;
	eq = strchr(*key, '=');
	if (!eq)
		return -EBADMSG;
	*eq = '\0';
	*value = eq + 1;
	return 1;
}

/* A plain unsigned decimal up to max, as the daemons write numbers. */
static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * errno=N. veild and wireguard-go write negative values (errno=-22), as
 * the reference says; a positive N means the same errno, so a daemon that
 * reads the protocol the other way is understood too. Returns -errno.
 */
static bool parse_errno(const char *v, int *err)
{
	uint64_t n;

	if (!parse_u64(v + (*v == '-'), 4095, &n))
		return false;
	*err = -(int)n;
	return true;
}

/* The errno line and the empty line after it: what ends every reply. */
static int reply_end(struct reader *r, const char *value, int *err)
{
	char *k, *v;

	if (!parse_errno(value, err) || next_line(r, &k, &v) != 0)
		return -EBADMSG;
	return 0;
}

/* set's reply: errno=N and the empty line (other lines, from a newer daemon, ignored). */
static int parse_set_reply(struct reader *r, int *err)
{
	char *k, *v;

	while (next_line(r, &k, &v) == 1)
		if (!strcmp(k, "errno"))
			return reply_end(r, v, err);
	return -EBADMSG;
}

int ctl_set(const char *ifname, const struct sbuf *req, char *why, size_t whylen)
{
	struct sbuf reply = { 0 };
	struct reader r;
	int ret, err = 0;

	say(why, whylen, "%s", "");
	if (req->failed || !req->data)
		return -ENOMEM;
	ret = exchange(ifname, req->data, req->len, &reply, why, whylen);
	if (ret)
		goto out;
	r = (struct reader){ reply.data, reply.data + reply.len, 0 };
	ret = parse_set_reply(&r, &err);
	if (ret)
		say(why, whylen, "%s/%s.sock did not answer as a WireGuard control socket (no errno line)",
		    CTL_SOCKET_DIR, ifname);
out:
	sbuf_free(&reply);
	return ret ? ret : err;
}

int ctl_metrics(const char *ifname, struct sbuf *text, char *why, size_t whylen)
{
	static const char req[] = VEIL_UAPI_METRICS "=1\n\n";
	struct sbuf reply = { 0 };
	const char *end, *line;
	long err;
	int ret;

	say(why, whylen, "%s", "");
	ret = exchange(ifname, req, sizeof(req) - 1, &reply, why, whylen);
	if (ret)
		goto out;
	/* The text, then "errno=N" and the empty line. */
	ret = -EBADMSG;
	end = reply.len >= 2 ? reply.data + reply.len - 2 : NULL;
	if (!end || strcmp(end, "\n\n") != 0)
		goto out;
	for (line = end; line > reply.data && line[-1] != '\n'; line--)
		;
	if (strncmp(line, "errno=", 6) != 0)
		goto out;
	err = strtol(line + 6, NULL, 10);
	ret = err > 0 ? (int)-err : (int)err;
	if (!ret)
		sbuf_append(text, reply.data, (size_t)(line - reply.data));
	if (text->failed)
		ret = -ENOMEM;
out:
	sbuf_free(&reply);
	return ret;
}

/* ---- get ----------------------------------------------------------------------------------- */

/* 64 hex digits into a key of locked memory (allocated once); all zeros means none. */
static int locked_key(const char *hex, uint8_t **slot)
{
	size_t len = 0;

	if (strlen(hex) != 64)
		return -EBADMSG;
	if (!*slot)
		*slot = sodium_malloc(32);
	if (!*slot)
		return -ENOMEM;
	if (sodium_hex2bin(*slot, 32, hex, 64, NULL, &len, NULL) || len != 32)
		return -EBADMSG;
	if (sodium_is_zero(*slot, 32)) {
		sodium_free(*slot);
		*slot = NULL;
	}
	return 0;
}

static bool public_key(const char *hex, uint8_t out[static 32])
{
	size_t len = 0;

	return strlen(hex) == 64 && !sodium_hex2bin(out, 32, hex, 64, NULL, &len, NULL) && len == 32;
}

/*
 * "a.b.c.d:port", "[v6]:port", "[v6%scope]:port" (edits v). A scope
 * that is a name unknown here (the daemon's namespace has other links)
 * is kept as 0 rather than failing the whole reply.
 */
static bool parse_endpoint(char *v, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;
	char *host = v, *port, *scope;
	uint64_t n, id = 0;

	memset(ss, 0, sizeof(*ss));
	if (*host == '[') {
		port = strchr(++host, ']');
		if (!port || port[1] != ':')
			return false;
		*port = '\0';
		port += 2;
		scope = strchr(host, '%');
		if (scope) {
			*scope++ = '\0';
			if (!parse_u64(scope, UINT32_MAX, &id))
				id = if_nametoindex(scope);
		}
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 || !parse_u64(port, 65535, &n))
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)n);
		s6->sin6_scope_id = (uint32_t)id;
		*len = sizeof(*s6);
		return true;
	}
	port = strrchr(host, ':');
	if (!port)
		return false;
	*port++ = '\0';
	if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 || !parse_u64(port, 65535, &n))
		return false;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)n);
	*len = sizeof(*s4);
	return true;
}

static int device_line(struct ctl_device *dev, const char *key, const char *v)
{
	uint64_t n;

	if (!strcmp(key, "private_key")) {
		return locked_key(v, &dev->private_key);
	} else if (!strcmp(key, "listen_port")) {
		if (!parse_u64(v, 65535, &n))
			return -EBADMSG;
		dev->listen_port = (uint16_t)n;
	} else if (!strcmp(key, "fwmark")) {
		if (!parse_u64(v, UINT32_MAX, &n))
			return -EBADMSG;
		dev->fwmark = (uint32_t)n;
	} else if (!strcmp(key, VEIL_UAPI_METRICS_LISTEN)) {
		if (!*v || strlen(v) >= sizeof(dev->metrics_listen) || v[strspn(v, "0123456789abcdefABCDEF.:[]%")])
			return -EBADMSG;
		snprintf(dev->metrics_listen, sizeof(dev->metrics_listen), "%s", v);
	}
	return 0; /* anything else: a newer daemon's key, ignored */
}

static int add_allowed_ip(struct ctl_peer *p, const char *v)
{
	struct conf_prefix pfx, *a;

	if (!strchr(v, '/') || conf_parse_prefix(v, &pfx))
		return -EBADMSG;
	a = grow(p->allowed_ips, p->n_allowed_ips, sizeof(*a));
	if (!a)
		return -ENOMEM;
	p->allowed_ips = a;
	a[p->n_allowed_ips++] = pfx;
	return 0;
}

/* A number line of a peer: which field, and its largest value. */
static uint64_t *peer_number(struct ctl_peer *p, const char *key, uint64_t *max)
{
	*max = UINT64_MAX;
	if (!strcmp(key, "rx_bytes"))
		return &p->rx_bytes;
	if (!strcmp(key, "tx_bytes"))
		return &p->tx_bytes;
	if (!strcmp(key, VEIL_UAPI_HANDSHAKE_FAILURES)) {
		p->has_failures = true;
		return &p->handshake_failures;
	}
	*max = INT64_MAX; /* times: what wg accepts */
	if (!strcmp(key, "last_handshake_time_sec"))
		return &p->last_handshake_sec;
	if (!strcmp(key, "last_handshake_time_nsec"))
		return &p->last_handshake_nsec;
	if (!strcmp(key, VEIL_UAPI_LAST_FAILURE_TIME))
		return &p->last_failure_sec;
	return NULL;
}

/* A reason is shown on a terminal and in JSON: printable ASCII only, nothing to escape. */
static int failure_line(struct ctl_peer *p, const char *v)
{
	size_t i, n = strlen(v);

	if (n >= sizeof(p->last_failure))
		return -EBADMSG;
	for (i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e || v[i] == '"' || v[i] == '\\')
			return -EBADMSG;
	memcpy(p->last_failure, v, n + 1);
	return 0;
}

static int peer_line(struct ctl_peer *p, const char *key, char *v)
{
	uint64_t n, max, *field = peer_number(p, key, &max);

	if (field)
		return parse_u64(v, max, field) ? 0 : -EBADMSG;
	if (!strcmp(key, "preshared_key")) {
		return locked_key(v, &p->preshared_key);
	} else if (!strcmp(key, "endpoint")) {
		if (!parse_endpoint(v, &p->endpoint, &p->endpoint_len))
			return -EBADMSG;
	} else if (!strcmp(key, "persistent_keepalive_interval")) {
		if (!parse_u64(v, 65535, &n))
			return -EBADMSG;
		p->persistent_keepalive = (uint16_t)n;
	} else if (!strcmp(key, "allowed_ip")) {
		return add_allowed_ip(p, v);
	} else if (!strcmp(key, "protocol_version")) {
		/* Version 1 is the only one; another would mean lines we cannot read right. */
		if (strcmp(v, "1") != 0)
			return -EBADMSG;
	} else if (!strcmp(key, VEIL_UAPI_CIPHER)) {
		if (!strcmp(v, VEIL_CIPHER_AES256GCM))
			p->cipher = CIPHER_AES256GCM;
		else if (!strcmp(v, VEIL_CIPHER_CHACHA20POLY1305))
			p->cipher = CIPHER_DEFAULT;
		else
			return -EBADMSG;
		p->has_cipher = true;
	} else if (!strcmp(key, VEIL_UAPI_LAST_FAILURE)) {
		return failure_line(p, v);
	} else if (!strcmp(key, VEIL_UAPI_ENDPOINT_NAME)) {
		/* "host:port" in the characters veild accepts for it (nothing to escape in JSON or a file). */
		if (!*v || strlen(v) > 300 || p->endpoint_name ||
		    v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:%[]")])
			return -EBADMSG;
		p->endpoint_name = strdup(v);
		if (!p->endpoint_name)
			return -ENOMEM;
	}
	return 0;
}

static int new_peer(struct ctl_device *dev, const char *hex)
{
	struct ctl_peer *p = grow(dev->peers, dev->n_peers, sizeof(*p));

	if (!p)
		return -ENOMEM;
	dev->peers = p;
	p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	return public_key(hex, p->public_key) ? 0 : -EBADMSG;
}

/* Why a reply was refused: the key of the line (never its value, which may be a key). */
static void bad_line(char *out, size_t len, const char *key)
{
	size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyz_");

	/* Only a plain name is quoted back: the reply could hold anything. */
	if (n && !key[n] && n < 40)
		snprintf(out, len, "a bad %s line", key);
	else
		snprintf(out, len, "a line with a strange key");
}

/*
 * The lines of a get reply up to errno=N and the empty line. Lines before
 * the first public_key are the device's; each public_key starts a peer.
 * On -EBADMSG, why says what was wrong.
 */
static int parse_get(struct reader *r, struct ctl_device *dev, char *why, size_t whylen)
{
	struct ctl_peer *peer = NULL;
	char *key, *v;
	int ret, err;

	while ((ret = next_line(r, &key, &v)) == 1) {
		if (!strcmp(key, "errno")) {
			ret = reply_end(r, v, &err);
			if (!ret)
				return err;
			break;
		}
		if (!strcmp(key, "public_key")) {
			ret = new_peer(dev, v);
			peer = dev->n_peers ? &dev->peers[dev->n_peers - 1] : NULL;
		} else if (peer) {
			ret = peer_line(peer, key, v);
		} else {
			ret = device_line(dev, key, v);
		}
		if (ret)
			break;
	}
	if (ret == 0)
		snprintf(why, whylen, "no errno line");
	else if (ret == -EBADMSG && key && v)
		bad_line(why, whylen, key);
	else if (ret == -EBADMSG)
		snprintf(why, whylen, "%s", key ? "a line that is not key=value" : "no empty line at the end");
	return ret ? ret : -EBADMSG;
}

/*
 * One get request (req) and its reply parsed into dev. *answered says
 * whether a whole reply came, so that an error in it (errno=N, or lines we
 * cannot read) is told from a daemon that hung up or never answered.
 */
static int get_once(const char *ifname, const char *req, size_t len, struct ctl_device *dev,
		    bool *answered, char *why, size_t whylen)
{
	struct sbuf reply = { 0 };
	char bad[64] = "";
	struct reader r;
	int ret;

	*answered = false;
	memset(dev, 0, sizeof(*dev));
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", ifname);
	ret = exchange(ifname, req, len, &reply, why, whylen);
	if (ret)
		goto out;
	*answered = true;
	r = (struct reader){ reply.data, reply.data + reply.len, 0 };
	ret = parse_get(&r, dev, bad, sizeof(bad));
	if (ret == -EBADMSG)
		say(why, whylen, "%s/%s.sock did not answer as a WireGuard control socket (line %u: %s)",
		    CTL_SOCKET_DIR, ifname, r.line, bad);
	else if (ret == -ENOMEM)
		say(why, whylen, "out of memory reading the reply");
	if (!ret && dev->private_key)
		crypto_scalarmult_base(dev->public_key, dev->private_key);
out:
	sbuf_free(&reply);
	if (ret)
		ctl_device_free(dev);
	return ret;
}

void ctl_device_drop_peers(struct ctl_device *dev, const uint8_t (*drop_keys)[32], size_t n)
{
	size_t i, j = 0, k;

	/* Those kept move down over those dropped, in order. */
	for (i = 0; i < dev->n_peers; i++) {
		struct ctl_peer *p = &dev->peers[i];
		bool drop = false;

		for (k = 0; k < n && !drop; k++)
			drop = !sodium_memcmp(p->public_key, drop_keys[k], 32);
		if (drop) {
			if (p->preshared_key)
				sodium_free(p->preshared_key);
			free(p->allowed_ips);
			free(p->endpoint_name);
			continue;
		}
		if (j != i)
			dev->peers[j] = *p;
		j++;
	}
	dev->n_peers = j;
}

int ctl_get(const char *ifname, struct ctl_device *dev, char *why, size_t whylen)
{
	static const char veil_req[] = VEIL_UAPI_GET "=1\n\n", wg_req[] = "get=1\n\n";
	/* The last interface that hung up on veil_get=1: top asks it once, not every second. */
	static char plain[sizeof(dev->ifname)];
	bool answered;
	int ret;

	if (strncmp(plain, ifname, sizeof(plain)) != 0) {
		ret = get_once(ifname, veil_req, sizeof(veil_req) - 1, dev, &answered, why, whylen);
		if (ret == -EPIPE || ret == -ECONNRESET) /* wireguard-go: unknown operation */
			snprintf(plain, sizeof(plain), "%s", ifname);
		/*
		 * A daemon that answered veil_get=1 with an error, or with lines we
		 * cannot read, may still answer get=1 (all but the cipher and the
		 * name): that is asked now, and veil_get=1 again next time.
		 */
		else if (ret == 0 || ret == -ENOMEM || !answered) {
			dev->veil = ret == 0;
			return ret;
		}
	}
	return get_once(ifname, wg_req, sizeof(wg_req) - 1, dev, &answered, why, whylen);
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
		free(dev->peers[i].endpoint_name);
	}
	free(dev->peers);
	memset(dev, 0, sizeof(*dev));
}

/* ---- requests from a configuration ------------------------------------------------------- */

static void put_endpoint(struct sbuf *b, const struct sockaddr_storage *ss)
{
	char ep[CTL_ENDPOINT_LEN];

	ctl_format_endpoint(ss, ep, sizeof(ep));
	sbuf_printf(b, "endpoint=%s\n", ep);
}

static void put_allowed_ips(struct sbuf *b, const struct conf_prefix *v, size_t n)
{
	char pfx[CTL_PREFIX_LEN];
	size_t i;

	sbuf_printf(b, "replace_allowed_ips=true\n");
	for (i = 0; i < n; i++) {
		ctl_format_prefix(&v[i], pfx, sizeof(pfx));
		sbuf_printf(b, "allowed_ip=%s\n", pfx);
	}
}

/* The file's pre-shared key, NULL for none (an all-zero key is none too). */
static const uint8_t *conf_psk(const struct conf_peer *p)
{
	return p->psk.key && !sodium_is_zero(p->psk.key, 32) ? p->psk.key : NULL;
}

/* A peer the daemon does not have (or no longer has, after replace_peers). */
static void put_peer(struct sbuf *b, const struct conf_peer *p)
{
	sbuf_hex(b, "public_key", p->public_key);
	/*
	 * veild's own key, and only for a peer that asks for AES (so a file
	 * without Cipher stays a plain WireGuard request): first, so that the
	 * peer never starts a handshake under the default suite.
	 */
	if (p->cipher == CIPHER_AES256GCM)
		sbuf_printf(b, VEIL_UAPI_CIPHER "=" VEIL_CIPHER_AES256GCM "\n");
	if (conf_psk(p))
		sbuf_hex(b, "preshared_key", conf_psk(p));
	if (p->endpoint_len)
		put_endpoint(b, &p->endpoint_addr);
	if (p->has_keepalive)
		sbuf_printf(b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	put_allowed_ips(b, p->allowed_ips, p->n_allowed_ips);
}

/*
 * setconf replaces the whole device, as wg setconf does: what the file
 * leaves out is reset (no private key, a port of the kernel's choice, no
 * fwmark, no peers).
 */
int ctl_build_setconf(const struct conf *c, struct sbuf *req)
{
	static const uint8_t none[32];
	size_t i;

	sbuf_printf(req, "set=1\n");
	sbuf_hex(req, "private_key", c->private_key.key ? c->private_key.key : none);
	sbuf_printf(req, "listen_port=%u\n", c->has_listen_port ? c->listen_port : 0);
	sbuf_printf(req, "fwmark=%u\n", c->has_fwmark ? c->fwmark : 0);
	sbuf_printf(req, "replace_peers=true\n");
	for (i = 0; i < c->n_peers; i++)
		put_peer(req, &c->peers[i]);
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}

/* Whether an Endpoint as written names a host (not an IPv4 or [IPv6] literal). */
bool ctl_endpoint_is_name(const char *ep)
{
	char host[64];
	const char *colon = strrchr(ep, ':');
	struct in_addr a;

	if (ep[0] == '[' || !colon || (size_t)(colon - ep) >= sizeof(host))
		return ep[0] != '[' && colon;
	memcpy(host, ep, (size_t)(colon - ep));
	host[colon - ep] = '\0';
	return inet_pton(AF_INET, host, &a) != 1;
}

/* The first peer that asks for AES-256-GCM, or NULL. */
static const struct conf_peer *aes_peer(const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (c->peers[i].cipher == CIPHER_AES256GCM)
			return &c->peers[i];
	return NULL;
}

int ctl_build_extensions(const struct conf *c, struct sbuf *req, bool *any_name)
{
	size_t i;

	*any_name = false;
	sbuf_printf(req, "set=1\n");
	for (i = 0; i < c->n_peers; i++) {
		const struct conf_peer *p = &c->peers[i];
		bool name = p->endpoint && ctl_endpoint_is_name(p->endpoint);

		sbuf_hex(req, "public_key", p->public_key);
		sbuf_printf(req, "update_only=true\n" VEIL_UAPI_ENDPOINT_NAME "=%s\n" VEIL_UAPI_CIPHER "=%s\n",
			    name ? p->endpoint : "", conf_cipher_name(p->cipher));
		*any_name |= name;
	}
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}

/* Why a listener could not be had, in the operator's terms. */
static const char *listen_why(int err)
{
	switch (err) {
	case -EADDRNOTAVAIL:
		return "this host has no such address";
	case -EADDRINUSE:
		return "the port is in use";
	case -EACCES:
	case -EPERM:
		return "the daemon may not listen there";
	case -EINVAL:
		return "the daemon does not take MetricsListen (only veild serves metrics)";
	default:
		return "veild could not listen there";
	}
}

/* metrics_listen alone, so that its refusal is told from the peers'. */
static int send_metrics_listen(const char *ifname, const struct conf *c)
{
	struct sbuf req = { 0 };
	char why[256] = "", where[256];
	int ret;

	sbuf_printf(&req, "set=1\n" VEIL_UAPI_METRICS_LISTEN "=%s\n\n", c->metrics_listen ? c->metrics_listen : "");
	ret = ctl_set(ifname, &req, why, sizeof(why));
	sbuf_free(&req);
	/* A daemon without it (wireguard-go) and a file without it: nothing was asked. */
	if (!ret || !c->metrics_listen)
		return 0;
	ctl_log_where(ifname, where, sizeof(where));
	fprintf(stderr, "veilctl: %s:%u: MetricsListen = %s refused: %s (%s; the daemon's log: %s)\n", c->path,
		c->metrics_listen_line, c->metrics_listen, why[0] ? why : strerror(-ret), listen_why(ret), where);
	return ret;
}

int ctl_send_extensions(const char *ifname, const struct conf *c, unsigned int what)
{
	const struct conf_peer *aes = aes_peer(c);
	struct sbuf req = { 0 };
	char why[256] = "", where[256];
	bool any_name;
	int ret = 0;

	if (what & CTL_EXT_METRICS)
		ret = send_metrics_listen(ifname, c);
	if (ret || !(what & CTL_EXT_PEERS))
		return ret;
	ret = ctl_build_extensions(c, &req, &any_name);
	if (!ret)
		ret = ctl_set(ifname, &req, why, sizeof(why));
	sbuf_free(&req);
	if (!ret)
		return 0;
	/* A cipher the daemon cannot honour is an error: nothing is downgraded. */
	if (aes) {
		ctl_log_where(ifname, where, sizeof(where));
		fprintf(stderr, "veilctl: %s:%u: [Peer]: Cipher = aes256gcm refused: %s (only veild takes it, and "
			"only on a CPU with AES instructions; the daemon's log: %s)\n", c->path, aes->line,
			why[0] ? why : strerror(-ret), where);
		return ret;
	}
	if (any_name)
		fprintf(stderr, "veilctl: %s: warning: the daemon does not take endpoint host names "
			"(%s); they were resolved once and will not be looked up again\n", ifname,
			why[0] ? why : strerror(-ret));
	return 0;
}

static const struct ctl_peer *running_peer(const struct ctl_device *d, const uint8_t pub[static 32])
{
	size_t i;

	for (i = 0; i < d->n_peers; i++)
		if (!memcmp(d->peers[i].public_key, pub, 32))
			return &d->peers[i];
	return NULL;
}

static bool in_conf(const struct conf *c, const uint8_t pub[static 32])
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].public_key, pub, 32))
			return true;
	return false;
}

/* Equal as routes: the daemons report prefixes with the host bits cleared, files may not. */
static bool same_prefix(const struct conf_prefix *a, const struct conf_prefix *b)
{
	unsigned int i, bits;

	if (a->family != b->family || a->cidr != b->cidr)
		return false;
	for (i = 0; i < (a->family == AF_INET ? 4U : 16U); i++) {
		bits = a->cidr > i * 8 ? a->cidr - i * 8 : 0;
		if (bits > 8)
			bits = 8;
		if ((a->addr[i] ^ b->addr[i]) & (uint8_t)(0xff00 >> bits))
			return false;
	}
	return true;
}

/*
 * Whether every prefix of a is in b. Quadratic, which is fine for the
 * handful of prefixes a peer has; duplicates in either list do not matter.
 */
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

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a->ss_family == AF_INET6 && a6->sin6_port == b6->sin6_port &&
	       a6->sin6_scope_id == b6->sin6_scope_id &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

/* What of a peer in both the file and the daemon differs. */
struct peer_diff {
	bool psk, endpoint, keepalive, ips;
};

static bool peer_differs(const struct conf_peer *p, const struct ctl_peer *r, struct peer_diff *d)
{
	const uint8_t *psk = conf_psk(p);

	d->psk = psk ? !r->preshared_key || sodium_memcmp(psk, r->preshared_key, 32) : !!r->preshared_key;
	/*
	 * The daemon reports where the peer last spoke from, which roaming
	 * changes; only an endpoint the file names is set again, and only
	 * when it differs.
	 */
	d->endpoint = p->endpoint_len && (!r->endpoint_len || !same_sockaddr(&p->endpoint_addr, &r->endpoint));
	d->keepalive = p->persistent_keepalive != r->persistent_keepalive;
	d->ips = !prefixes_in(p->allowed_ips, p->n_allowed_ips, r->allowed_ips, r->n_allowed_ips) ||
		 !prefixes_in(r->allowed_ips, r->n_allowed_ips, p->allowed_ips, p->n_allowed_ips);
	return d->psk || d->endpoint || d->keepalive || d->ips;
}

/*
 * A peer both have: nothing if all is equal (its session stays as it
 * is), else only the changed lines. update_only: if the peer went away
 * since the get, it is not brought back half-configured.
 */
static void sync_peer(struct sbuf *b, const struct conf_peer *p, const struct ctl_peer *r)
{
	static const uint8_t none[32];
	struct peer_diff d;

	if (!peer_differs(p, r, &d))
		return;
	sbuf_hex(b, "public_key", p->public_key);
	sbuf_printf(b, "update_only=true\n");
	if (d.psk)
		sbuf_hex(b, "preshared_key", conf_psk(p) ? conf_psk(p) : none);
	if (d.endpoint)
		put_endpoint(b, &p->endpoint_addr);
	if (d.keepalive)
		sbuf_printf(b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	if (d.ips)
		put_allowed_ips(b, p->allowed_ips, p->n_allowed_ips);
}

/*
 * Device lines only where the file says something and it differs: a file
 * without ListenPort keeps the port the daemon has (wg syncconf would
 * send 0 and move it), one without FwMark keeps the mark wg-quick-style
 * routing may have set.
 */
static void sync_device(struct sbuf *b, const struct conf *c, const struct ctl_device *r)
{
	const uint8_t *k = c->private_key.key;

	/*
	 * The port first: a port in use is the likeliest refusal, and veild
	 * applies nothing of a request after its first error.
	 */
	if (c->has_listen_port && c->listen_port != r->listen_port)
		sbuf_printf(b, "listen_port=%u\n", c->listen_port);
	if (c->has_fwmark && c->fwmark != r->fwmark)
		sbuf_printf(b, "fwmark=%u\n", c->fwmark);
	if (k && (!r->private_key || sodium_memcmp(k, r->private_key, 32)))
		sbuf_hex(b, "private_key", k);
}

int ctl_build_sync_peers(const struct conf_peer *peers, size_t n, const uint8_t (*remove)[32],
			 size_t n_remove, const struct ctl_device *running, struct sbuf *req)
{
	const struct ctl_peer *r;
	size_t i;

	sbuf_printf(req, "set=1\n");
	for (i = 0; i < n_remove; i++) {
		if (!running_peer(running, remove[i]))
			continue;
		sbuf_hex(req, "public_key", remove[i]);
		sbuf_printf(req, "remove=true\n");
	}
	for (i = 0; i < n; i++) {
		r = running_peer(running, peers[i].public_key);
		if (r)
			sync_peer(req, &peers[i], r);
		else
			put_peer(req, &peers[i]);
	}
	return req->failed ? -ENOMEM : 0;
}

int ctl_build_syncconf(const struct conf *c, const struct ctl_device *running, struct sbuf *req)
{
	const struct ctl_peer *r;
	size_t i;

	sbuf_printf(req, "set=1\n");
	sync_device(req, c, running);
	/* Removals first, as wg does: a peer's allowed IPs are free before another takes them. */
	for (i = 0; i < running->n_peers; i++) {
		if (in_conf(c, running->peers[i].public_key))
			continue;
		sbuf_hex(req, "public_key", running->peers[i].public_key);
		sbuf_printf(req, "remove=true\n");
	}
	for (i = 0; i < c->n_peers; i++) {
		r = running_peer(running, c->peers[i].public_key);
		if (r)
			sync_peer(req, &c->peers[i], r);
		else
			put_peer(req, &c->peers[i]);
	}
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}

/* ---- what a change did, and undoing it ------------------------------------------------------ */

/* Whether veild's own settings of a peer (its cipher, its endpoint's host name) differ. */
static bool extensions_differ(const struct conf_peer *p, const struct ctl_peer *r)
{
	const char *name = p->endpoint && ctl_endpoint_is_name(p->endpoint) ? p->endpoint : NULL;

	if (r->has_cipher && r->cipher != p->cipher)
		return true;
	return r->has_cipher && (name ? !r->endpoint_name || strcmp(name, r->endpoint_name) != 0
				      : r->endpoint_name != NULL);
}

void ctl_sync_summarize(const struct conf *c, const struct ctl_device *running, struct ctl_sync_summary *s)
{
	const struct ctl_peer *r;
	struct peer_diff d;
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < running->n_peers; i++)
		s->removed += !in_conf(c, running->peers[i].public_key);
	for (i = 0; i < c->n_peers; i++) {
		r = running_peer(running, c->peers[i].public_key);
		if (!r)
			s->added++;
		else if (peer_differs(&c->peers[i], r, &d) || extensions_differ(&c->peers[i], r))
			s->changed++;
	}
	s->private_key = c->private_key.key &&
			 (!running->private_key || sodium_memcmp(c->private_key.key, running->private_key, 32));
	s->listen_port = c->has_listen_port && c->listen_port != running->listen_port;
	s->fwmark = c->has_fwmark && c->fwmark != running->fwmark;
}

/* Whether a peer's settings are the same in two readings of the daemon. */
static bool same_peer(const struct ctl_peer *a, const struct ctl_peer *b)
{
	bool psk = a->preshared_key ? b->preshared_key && !sodium_memcmp(a->preshared_key, b->preshared_key, 32)
				    : !b->preshared_key;
	bool ep = a->endpoint_len ? b->endpoint_len && same_sockaddr(&a->endpoint, &b->endpoint) : !b->endpoint_len;
	bool name = a->endpoint_name ? b->endpoint_name && !strcmp(a->endpoint_name, b->endpoint_name)
				     : !b->endpoint_name;

	return psk && ep && name && a->persistent_keepalive == b->persistent_keepalive &&
	       a->cipher == b->cipher && prefixes_in(a->allowed_ips, a->n_allowed_ips, b->allowed_ips, b->n_allowed_ips) &&
	       prefixes_in(b->allowed_ips, b->n_allowed_ips, a->allowed_ips, a->n_allowed_ips);
}

/* A peer as it was, whole: created if it went, every setting given again. */
static void restore_peer(struct sbuf *b, const struct ctl_peer *p, bool veil)
{
	static const uint8_t none[32];

	sbuf_hex(b, "public_key", p->public_key);
	/* The suite first, as put_peer does: no handshake under the wrong one. */
	if (veil)
		sbuf_printf(b, VEIL_UAPI_CIPHER "=%s\n", conf_cipher_name(p->cipher));
	sbuf_hex(b, "preshared_key", p->preshared_key ? p->preshared_key : none);
	if (p->endpoint_len)
		put_endpoint(b, &p->endpoint);
	sbuf_printf(b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	put_allowed_ips(b, p->allowed_ips, p->n_allowed_ips);
	if (veil)
		sbuf_printf(b, VEIL_UAPI_ENDPOINT_NAME "=%s\n", p->endpoint_name ? p->endpoint_name : "");
}

int ctl_build_restore(const struct ctl_device *was, const struct ctl_device *now, struct sbuf *req)
{
	static const uint8_t none[32];
	const struct ctl_peer *r;
	size_t i;

	sbuf_printf(req, "set=1\n");
	if (was->listen_port != now->listen_port)
		sbuf_printf(req, "listen_port=%u\n", was->listen_port);
	if (was->fwmark != now->fwmark)
		sbuf_printf(req, "fwmark=%u\n", was->fwmark);
	if (was->private_key ? !now->private_key || sodium_memcmp(was->private_key, now->private_key, 32)
			     : now->private_key != NULL)
		sbuf_hex(req, "private_key", was->private_key ? was->private_key : none);
	for (i = 0; i < now->n_peers; i++) {
		if (running_peer(was, now->peers[i].public_key))
			continue;
		sbuf_hex(req, "public_key", now->peers[i].public_key);
		sbuf_printf(req, "remove=true\n");
	}
	for (i = 0; i < was->n_peers; i++) {
		r = running_peer(now, was->peers[i].public_key);
		if (!r || !same_peer(&was->peers[i], r))
			restore_peer(req, &was->peers[i], was->veil && now->veil);
	}
	sbuf_printf(req, "\n");
	return req->failed ? -ENOMEM : 0;
}
