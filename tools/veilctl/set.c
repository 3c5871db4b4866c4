// SPDX-License-Identifier: MIT
/*
 * veilctl set (wg set's options), setconf and syncconf. The whole request
 * is built, and every argument or file checked, before anything is sent:
 * a bad one changes nothing. Keys travel in a locked buffer (the sbuf).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "keys.h"
#include "veil.h"

enum { KEY_FILE_MAX = 256 }; /* a key and some whitespace; anything longer is not a key file */

static int usage(void)
{
	fprintf(stderr, "veilctl: usage: veilctl set IFNAME [listen-port PORT] [fwmark MARK|off] "
			"[private-key FILE] [peer PUBKEY [remove] [preshared-key FILE] "
			"[endpoint HOST:PORT] [persistent-keepalive SECONDS|off] "
			"[allowed-ips PREFIX[,PREFIX...]] [cipher aes256gcm|chacha20poly1305]]...\n");
	return 1;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "veilctl: %s: \"%.64s\"\n", what, arg);
	return -EINVAL;
}

/*
 * A key file for set, of any mode (wg set reads /dev/stdin and the like,
 * so the strict checks of keys.h do not apply): one base64 key, with
 * whitespace around it. A file with nothing in it means "no key", as
 * with wg (preshared-key /dev/null removes the pre-shared key).
 */
static int read_key_file(const char *path, uint8_t out[static 32])
{
	char *buf = sodium_malloc(KEY_FILE_MAX + 1), *s;
	size_t len = 0;
	ssize_t n;
	int fd = -1, ret = -ENOMEM;

	if (!buf)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "veilctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	do {
		n = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
		if (n > 0)
			len += (size_t)n;
	} while ((n > 0 && len <= KEY_FILE_MAX) || (n < 0 && errno == EINTR));
	ret = -EINVAL;
	if (n < 0 || len > KEY_FILE_MAX) {
		fprintf(stderr, "veilctl: %s: %s\n", path, n < 0 ? strerror(errno) : "too long for a key file");
		goto out;
	}
	buf[len] = '\0';
	while (len && strchr(" \t\r\n", buf[len - 1]))
		buf[--len] = '\0';
	for (s = buf; *s && strchr(" \t\r\n", *s); s++)
		;
	if (!*s)
		sodium_memzero(out, 32);
	if (!*s || !conf_parse_key(s, out))
		ret = 0;
	else
		fprintf(stderr, "veilctl: %s does not hold a base64 key of 32 bytes\n", path);
out:
	if (fd >= 0)
		close(fd);
	if (buf)
		sodium_free(buf); /* wipes */
	return ret;
}

static int put_key_file(struct sbuf *req, const char *name, const char *path)
{
	uint8_t *k = sodium_malloc(32);
	char hex[65];
	int ret = -ENOMEM;

	if (k)
		ret = read_key_file(path, k);
	if (!ret) {
		sodium_bin2hex(hex, sizeof(hex), k, 32);
		sbuf_printf(req, "%s=%s\n", name, hex);
		sodium_memzero(hex, sizeof(hex));
	} else if (ret == -ENOMEM) {
		fprintf(stderr, "veilctl: out of locked memory\n");
	}
	if (k)
		sodium_free(k);
	return ret;
}

/* A whole unsigned number up to max: decimal, with hex also 0x... (no sign, no space: strtoul takes " -1"). */
static bool number(const char *s, unsigned long max, bool hex, unsigned long *out)
{
	int base = 10;
	char *end;

	if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return false;
	} else if (!isdigit((unsigned char)*s)) {
		return false;
	}
	errno = 0;
	*out = strtoul(s, &end, base);
	return !errno && !*end && *out <= max;
}

/* "host:port" or "[v6]:port", host names resolved here: daemons take numeric endpoints only. */
static int put_endpoint_arg(struct sbuf *req, const char *arg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *res, *ai;
	const char *colon = strrchr(arg, ':'), *h = arg;
	char host[NI_MAXHOST], ep[CTL_ENDPOINT_LEN];
	struct sockaddr_storage ss;
	unsigned long port;
	size_t hl;
	int ret;

	if (!colon || !number(colon + 1, 65535, false, &port) || !port)
		return bad("endpoint is not HOST:PORT (PORT 1-65535)", arg);
	hl = (size_t)(colon - arg);
	if (arg[0] == '[' && hl >= 2 && arg[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (!hl || hl >= sizeof(host) || memchr(h, '[', hl) || memchr(h, ']', hl))
		return bad("endpoint is not HOST:PORT", arg);
	memcpy(host, h, hl);
	host[hl] = '\0';
	ret = getaddrinfo(host, colon + 1, &hints, &res);
	if (ret) {
		fprintf(stderr, "veilctl: endpoint: cannot resolve \"%.64s\": %s\n", host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addrlen <= sizeof(ss))
			break;
	if (ai) {
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		ctl_format_endpoint(&ss, ep, sizeof(ep));
		sbuf_printf(req, "endpoint=%s\n", ep);
	}
	freeaddrinfo(res);
	return ai ? 0 : bad("endpoint has no IPv4 or IPv6 address", arg);
}

/* "a/n,b/n, c": replaces the peer's list ("" empties it). Sent as addr/cidr, bare addresses full length. */
static int put_allowed(struct sbuf *req, const char *list)
{
	char pfx[CTL_PREFIX_LEN], item[CTL_PREFIX_LEN];
	const char *p = list, *e;
	struct conf_prefix v;
	size_t len;

	sbuf_printf(req, "replace_allowed_ips=true\n");
	while (*p) {
		p += strspn(p, " \t");
		e = strchr(p, ',');
		len = e ? (size_t)(e - p) : strlen(p);
		while (len && strchr(" \t", p[len - 1]))
			len--;
		if (len >= sizeof(item))
			return bad("allowed-ips: not a prefix", p);
		memcpy(item, p, len);
		item[len] = '\0';
		if (conf_parse_prefix(item, &v) == -ERANGE)
			return bad("allowed-ips: prefix length out of range", item);
		if (conf_parse_prefix(item, &v))
			return bad("allowed-ips: not a prefix", item);
		ctl_format_prefix(&v, pfx, sizeof(pfx));
		sbuf_printf(req, "allowed_ip=%s\n", pfx);
		p = e ? e + 1 : p + len;
	}
	return 0;
}

static int put_keepalive(struct sbuf *req, const char *arg)
{
	unsigned long n = 0;

	if (strcmp(arg, "off") != 0 && !number(arg, 65535, false, &n))
		return bad("persistent-keepalive is not 0-65535 seconds or off", arg);
	sbuf_printf(req, "persistent_keepalive_interval=%lu\n", n);
	return 0;
}

/* One option of a peer (after "peer PUBKEY"), which takes a value. */
static int peer_option(struct sbuf *req, const char *opt, const char *arg)
{
	if (!strcmp(opt, "preshared-key"))
		return put_key_file(req, "preshared_key", arg);
	if (!strcmp(opt, "endpoint"))
		return put_endpoint_arg(req, arg);
	if (!strcmp(opt, "allowed-ips"))
		return put_allowed(req, arg);
	if (!strcmp(opt, "persistent-keepalive"))
		return put_keepalive(req, arg);
	/* veild's own (wireguard-go refuses it): both peers must name the same. */
	if (!strcmp(opt, "cipher")) {
		if (strcmp(arg, VEIL_CIPHER_AES256GCM) != 0 && strcmp(arg, VEIL_CIPHER_CHACHA20POLY1305) != 0)
			return bad("cipher is " VEIL_CIPHER_AES256GCM " or " VEIL_CIPHER_CHACHA20POLY1305, arg);
		sbuf_printf(req, VEIL_UAPI_CIPHER "=%s\n", arg);
		return 0;
	}
	return bad("unknown peer option", opt);
}

static int device_option(struct sbuf *req, const char *opt, const char *arg)
{
	unsigned long n = 0;

	if (!strcmp(opt, "listen-port")) {
		if (!number(arg, 65535, false, &n))
			return bad("listen-port is not a port (0-65535)", arg);
		sbuf_printf(req, "listen_port=%lu\n", n);
	} else if (!strcmp(opt, "fwmark")) {
		if (strcmp(arg, "off") != 0 && !number(arg, 0xffffffffUL, true, &n))
			return bad("fwmark is not a 32-bit number or off", arg);
		sbuf_printf(req, "fwmark=%lu\n", n);
	} else if (!strcmp(opt, "private-key")) {
		return put_key_file(req, "private_key", arg);
	} else {
		return bad("unknown option", opt);
	}
	return 0;
}

/* Where build_set is: before the first peer, or in a peer that is being removed or changed. */
enum set_state { IN_DEVICE, IN_PEER, IN_REMOVED_PEER };

static int peer_start(struct sbuf *req, const char *arg)
{
	uint8_t pub[32];
	char hex[65];

	if (!arg || conf_parse_key(arg, pub))
		return bad("peer: not a base64 public key", arg ? arg : "");
	sodium_bin2hex(hex, sizeof(hex), pub, 32);
	sbuf_printf(req, "public_key=%s\n", hex);
	return 0;
}

/*
 * wg set's arguments, in order. "remove" must be a peer's only option:
 * with others it would be ambiguous (wg ignores the others silently).
 */
static int build_set(struct sbuf *req, int argc, char **argv)
{
	enum set_state st = IN_DEVICE;
	bool has_options = false;
	int i = 0, ret = 0;

	sbuf_printf(req, "set=1\n");
	while (!ret && i < argc) {
		if (!strcmp(argv[i], "peer")) {
			ret = peer_start(req, i + 1 < argc ? argv[i + 1] : NULL);
			st = IN_PEER;
			has_options = false;
			i += 2;
		} else if (st != IN_DEVICE && !strcmp(argv[i], "remove")) {
			ret = has_options ? bad("peer: remove takes no other option", argv[i]) : 0;
			sbuf_printf(req, "remove=true\n");
			st = IN_REMOVED_PEER;
			i++;
		} else if (st == IN_REMOVED_PEER) {
			ret = bad("peer: remove takes no other option", argv[i]);
		} else if (i + 1 >= argc) {
			ret = bad("a value is missing after", argv[i]);
		} else {
			ret = st == IN_PEER ? peer_option(req, argv[i], argv[i + 1])
					    : device_option(req, argv[i], argv[i + 1]);
			has_options = true;
			i += 2;
		}
	}
	sbuf_printf(req, "\n");
	if (!ret && req->failed) {
		fprintf(stderr, "veilctl: out of locked memory\n");
		ret = -ENOMEM;
	}
	return ret;
}

/* Send and report; the request is wiped and freed either way. */
static int send_request(const char *ifname, struct sbuf *req)
{
	char why[320] = "";
	int ret = ctl_set(ifname, req, why, sizeof(why));

	sbuf_free(req);
	if (ret && why[0])
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why);
	else if (ret)
		fprintf(stderr, "veilctl: %s: the daemon refused the change: %s\n", ifname, strerror(-ret));
	return ret ? 1 : 0;
}

int cmd_set(int argc, char **argv)
{
	struct sbuf req = { 0 };

	if (argc < 3)
		return usage();
	if (!conf_valid_ifname(argv[1])) {
		bad("not an interface name", argv[1]);
		return 1;
	}
	if (build_set(&req, argc - 2, argv + 2)) {
		sbuf_free(&req);
		return 1;
	}
	return send_request(argv[1], &req);
}

/* A whole file, keys and endpoints included, before anything is sent. */
static int load_file(const char *path, struct conf *c)
{
	struct conf_error err = { "" };
	int ret = conf_load(c, path, &err);

	if (!ret)
		ret = keys_load(c, &err);
	if (!ret)
		ret = conf_resolve_endpoints(c, &err);
	if (ret) {
		fprintf(stderr, "veilctl: %s\n", err.msg[0] ? err.msg : strerror(-ret));
		conf_free(c);
	}
	return ret;
}

static bool has_cipher(const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (c->peers[i].has_cipher)
			return true;
	return false;
}

/* setconf: the file replaces everything; syncconf: only what differs from the running state changes. */
static int conf_command(int argc, char **argv, bool sync)
{
	struct ctl_device running;
	struct sbuf req = { 0 };
	struct conf c = { 0 };
	char why[320] = "";
	int ret;

	if (argc != 3) {
		fprintf(stderr, "veilctl: usage: veilctl %s IFNAME FILE\n", argv[0]);
		return 1;
	}
	if (!conf_valid_ifname(argv[1])) {
		bad("not an interface name", argv[1]);
		return 1;
	}
	if (load_file(argv[2], &c))
		return 1;
	if (sync) {
		ret = ctl_get(argv[1], &running, why, sizeof(why));
		if (ret) {
			fprintf(stderr, "veilctl: %s: %s%s\n", argv[1], why[0] ? why : "cannot read the running state: ",
				why[0] ? "" : strerror(-ret));
			conf_free(&c);
			return 1;
		}
		ret = ctl_build_syncconf(&c, &running, &req);
		ctl_device_free(&running);
	} else {
		ret = ctl_build_setconf(&c, &req);
	}
	if (ret) {
		conf_free(&c);
		sbuf_free(&req);
		fprintf(stderr, "veilctl: out of locked memory\n");
		return 1;
	}
	ret = send_request(argv[1], &req);
	/*
	 * Like wg, these send only WireGuard's keys; a file that names a Cipher
	 * or a MetricsListen also gets veild's extensions (a syncconf file
	 * without either leaves the running ciphers and listener as they are).
	 */
	if (!ret && (has_cipher(&c) || c.metrics_listen) &&
	    ctl_send_extensions(argv[1], &c, CTL_EXT_METRICS | CTL_EXT_PEERS))
		ret = 1;
	conf_free(&c);
	return ret;
}

int cmd_setconf(int argc, char **argv)
{
	return conf_command(argc, argv, false);
}

int cmd_syncconf(int argc, char **argv)
{
	return conf_command(argc, argv, true);
}
