// SPDX-License-Identifier: MIT
/*
 * veilctl set (wg set's options), setconf and syncconf. Arguments and
 * files are checked whole before anything is sent: a bad one changes
 * nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "keys.h"

static int usage(void)
{
	fprintf(stderr, "Usage: veilctl set IFNAME [listen-port PORT] [fwmark MARK|off] "
			"[private-key FILE] [peer PUBKEY [remove] [preshared-key FILE] "
			"[endpoint HOST:PORT] [persistent-keepalive SECONDS|off] "
			"[allowed-ips PREFIX[,PREFIX...]]]...\n");
	return 1;
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "veilctl: %s: \"%.64s\"\n", what, arg);
	return -EINVAL;
}

/* A key file for set: any mode (wg allows /dev/stdin), one base64 key. */
static int read_key_arg(const char *path, uint8_t out[32])
{
	char buf[257];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "veilctl: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	while (n && strchr(" \t\r\n", buf[n - 1]))
		n--;
	buf[n] = '\0';
	ret = conf_parse_key(buf, out);
	sodium_memzero(buf, sizeof(buf));
	if (ret)
		fprintf(stderr, "veilctl: %s does not hold a base64 key of 32 bytes\n", path);
	return ret;
}

static int number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return (*s && !*end && !errno && *out <= max && s[0] != '-') ? 0 : -EINVAL;
}

static int put_endpoint_arg(struct sbuf *req, const char *arg)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char host[NI_MAXHOST];
	const char *colon = strrchr(arg, ':'), *h = arg;
	size_t hl;
	int ret;

	if (!colon)
		return bad("not host:port", arg);
	hl = (size_t)(colon - arg);
	if (arg[0] == '[' && hl >= 2 && arg[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return bad("not host:port", arg);
	memcpy(host, h, hl);
	host[hl] = '\0';
	ret = getaddrinfo(host, colon + 1, &hints, &ai);
	if (ret) {
		fprintf(stderr, "veilctl: cannot resolve \"%.64s\": %s\n", arg, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	if (ai->ai_family == AF_INET6)
		sbuf_printf(req, "endpoint=[%s]:%s\n", host, colon + 1);
	else
		sbuf_printf(req, "endpoint=%s:%s\n", host, colon + 1);
	freeaddrinfo(ai);
	return 0;
}

static int put_allowed(struct sbuf *req, char *list)
{
	char *item, *save = NULL;
	struct conf_prefix p;

	sbuf_printf(req, "replace_allowed_ips=true\n");
	for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		if (!*item)
			continue;
		if (conf_parse_prefix(item, &p))
			return bad("not a prefix", item);
		sbuf_printf(req, "allowed_ip=%s\n", item);
	}
	return 0;
}

static int put_key_file(struct sbuf *req, const char *name, const char *path)
{
	uint8_t k[32];
	char hex[65];
	int ret = read_key_arg(path, k);

	if (!ret) {
		sodium_bin2hex(hex, sizeof(hex), k, 32);
		sbuf_printf(req, "%s=%s\n", name, hex);
	}
	sodium_memzero(k, sizeof(k));
	sodium_memzero(hex, sizeof(hex));
	return ret;
}

/* One option of a peer (after "peer PUBKEY"); *used is how many arguments it took. */
static int peer_option(struct sbuf *req, char **argv, int left, int *used)
{
	unsigned long n;

	*used = 2;
	if (!strcmp(argv[0], "remove")) {
		*used = 1;
		sbuf_printf(req, "remove=true\n");
		return 0;
	}
	if (left < 2)
		return bad("a value is missing after", argv[0]);
	if (!strcmp(argv[0], "preshared-key"))
		return put_key_file(req, "preshared_key", argv[1]);
	if (!strcmp(argv[0], "endpoint"))
		return put_endpoint_arg(req, argv[1]);
	if (!strcmp(argv[0], "allowed-ips"))
		return put_allowed(req, argv[1]);
	if (!strcmp(argv[0], "persistent-keepalive")) {
		if (!strcmp(argv[1], "off"))
			n = 0;
		else if (number(argv[1], 65535, &n))
			return bad("not a number of seconds (0-65535) or off", argv[1]);
		sbuf_printf(req, "persistent_keepalive_interval=%lu\n", n);
		return 0;
	}
	return bad("unknown peer option", argv[0]);
}

static int device_option(struct sbuf *req, char **argv, int left)
{
	unsigned long n;

	if (left < 2)
		return bad("a value is missing after", argv[0]);
	if (!strcmp(argv[0], "listen-port")) {
		if (number(argv[1], 65535, &n))
			return bad("not a port", argv[1]);
		sbuf_printf(req, "listen_port=%lu\n", n);
	} else if (!strcmp(argv[0], "fwmark")) {
		if (!strcmp(argv[1], "off"))
			n = 0;
		else if (number(argv[1], 0xffffffffUL, &n))
			return bad("not a mark", argv[1]);
		sbuf_printf(req, "fwmark=%lu\n", n);
	} else if (!strcmp(argv[0], "private-key")) {
		return put_key_file(req, "private_key", argv[1]);
	} else {
		return bad("unknown option", argv[0]);
	}
	return 0;
}

static int build_set(struct sbuf *req, int argc, char **argv)
{
	bool in_peer = false;
	uint8_t pub[32];
	int i = 0, used, ret = 0;
	char hex[65];

	sbuf_printf(req, "set=1\n");
	while (!ret && i < argc) {
		if (!strcmp(argv[i], "peer")) {
			if (i + 1 >= argc || conf_parse_key(argv[i + 1], pub))
				return bad("not a base64 public key", i + 1 < argc ? argv[i + 1] : "");
			sodium_bin2hex(hex, sizeof(hex), pub, 32);
			sbuf_printf(req, "public_key=%s\n", hex);
			in_peer = true;
			i += 2;
		} else if (in_peer) {
			ret = peer_option(req, argv + i, argc - i, &used);
			i += used;
		} else {
			ret = device_option(req, argv + i, argc - i);
			i += 2;
		}
	}
	sbuf_printf(req, "\n");
	return ret ? ret : (req->failed ? -ENOMEM : 0);
}

static int send_request(const char *ifname, struct sbuf *req)
{
	char why[256] = "";
	int ret = ctl_set(ifname, req, why, sizeof(why));

	sbuf_free(req);
	if (ret) {
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why[0] ? why : strerror(-ret));
		return 1;
	}
	return 0;
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
		fprintf(stderr, "veilctl: %s\n", err.msg);
		conf_free(c);
	}
	return ret;
}

static int conf_command(int argc, char **argv, bool sync)
{
	struct ctl_device running;
	struct sbuf req = { 0 };
	struct conf c;
	char why[256] = "";
	int ret;

	if (argc != 3 || !conf_valid_ifname(argv[1])) {
		fprintf(stderr, "Usage: veilctl %s IFNAME FILE\n", argv[0]);
		return 1;
	}
	if (load_file(argv[2], &c))
		return 1;
	if (sync) {
		ret = ctl_get(argv[1], &running, why, sizeof(why));
		if (ret) {
			fprintf(stderr, "veilctl: %s: %s\n", argv[1], why[0] ? why : strerror(-ret));
			conf_free(&c);
			return 1;
		}
		ret = ctl_build_syncconf(&c, &running, &req);
		ctl_device_free(&running);
	} else {
		ret = ctl_build_setconf(&c, &req);
	}
	conf_free(&c);
	if (ret) {
		sbuf_free(&req);
		fprintf(stderr, "veilctl: out of memory\n");
		return 1;
	}
	return send_request(argv[1], &req);
}

int cmd_setconf(int argc, char **argv)
{
	return conf_command(argc, argv, false);
}

int cmd_syncconf(int argc, char **argv)
{
	return conf_command(argc, argv, true);
}
