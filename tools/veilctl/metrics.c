// SPDX-License-Identifier: MIT
/*
 * veilctl metrics [IFNAME]: the Prometheus text exposition of one interface
 * or of all of them, for node_exporter's textfile collector. veild writes
 * its own (metrics=1); for another daemon (wireguard-go) the figures its
 * get=1 has are written here: bytes and the latest handshake. With several
 * interfaces each family comes once, its samples together, as the format
 * requires.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"

enum { FAMILIES_MAX = 64 };

struct family {
	char name[96];
	struct sbuf head, samples;
};

struct exposition {
	struct family f[FAMILIES_MAX];
	size_t n;
};

/* The family a line belongs to: "# HELP name ...", "# TYPE name ..." or "name{...} value". */
static struct family *family_of(struct exposition *e, const char *line, size_t len)
{
	char name[96];
	size_t i = 0, n;

	if (len > 7 && (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)))
		line += 7, len -= 7;
	for (n = 0; n < len && line[n] != '{' && line[n] != ' '; n++)
		;
	if (!n || n >= sizeof(name))
		return NULL;
	memcpy(name, line, n);
	name[n] = '\0';
	for (i = 0; i < e->n; i++)
		if (!strcmp(e->f[i].name, name))
			return &e->f[i];
	if (e->n == FAMILIES_MAX)
		return NULL;
	memcpy(e->f[e->n].name, name, n + 1);
	return &e->f[e->n++];
}

static void add_text(struct exposition *e, const char *text, size_t len)
{
	while (len) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) : len;
		struct family *f = family_of(e, text, n);

		/* Headers once (the first interface's), samples from every interface. */
		if (f && text[0] == '#' && !strstr(f->head.data ? f->head.data : "", "# TYPE"))
			sbuf_printf(&f->head, "%.*s\n", (int)n, text);
		else if (f && text[0] != '#')
			sbuf_printf(&f->samples, "%.*s\n", (int)n, text);
		text += n + (nl ? 1 : 0);
		len -= n + (nl ? 1 : 0);
	}
}

/* What wireguard-go's get=1 tells, in veild's names. */
static int from_get(struct exposition *e, const char *ifname)
{
	struct ctl_device dev;
	struct sbuf t = { 0 };
	char why[256] = "", pub[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	size_t i;
	int ret = ctl_get(ifname, &dev, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why[0] ? why : strerror(-ret));
		return ret;
	}
	sbuf_printf(&t, "# HELP veil_peers Peers configured.\n# TYPE veil_peers gauge\n");
	sbuf_printf(&t, "veil_peers{interface=\"%s\"} %zu\n", ifname, dev.n_peers);
	sbuf_printf(&t, "# HELP veil_peer_receive_bytes_total Bytes of authenticated WireGuard "
			"messages received from the peer.\n# TYPE veil_peer_receive_bytes_total counter\n");
	sbuf_printf(&t, "# HELP veil_peer_transmit_bytes_total Bytes of WireGuard messages sent to "
			"the peer.\n# TYPE veil_peer_transmit_bytes_total counter\n");
	sbuf_printf(&t, "# HELP veil_peer_last_handshake_seconds Unix time of the latest completed "
			"handshake (0: never).\n# TYPE veil_peer_last_handshake_seconds gauge\n");
	for (i = 0; i < dev.n_peers; i++) {
		const struct ctl_peer *p = &dev.peers[i];

		sodium_bin2base64(pub, sizeof(pub), p->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		sbuf_printf(&t, "veil_peer_receive_bytes_total{interface=\"%s\",public_key=\"%s\"} %llu\n",
			    ifname, pub, (unsigned long long)p->rx_bytes);
		sbuf_printf(&t, "veil_peer_transmit_bytes_total{interface=\"%s\",public_key=\"%s\"} %llu\n",
			    ifname, pub, (unsigned long long)p->tx_bytes);
		sbuf_printf(&t, "veil_peer_last_handshake_seconds{interface=\"%s\",public_key=\"%s\"} %llu\n",
			    ifname, pub, (unsigned long long)p->last_handshake_sec);
	}
	ctl_device_free(&dev);
	if (t.failed) {
		sbuf_free(&t);
		return -ENOMEM;
	}
	add_text(e, t.data, t.len);
	sbuf_free(&t);
	return 0;
}

static int one(struct exposition *e, const char *ifname)
{
	struct sbuf text = { 0 };
	char why[256] = "";
	int ret = ctl_metrics(ifname, &text, why, sizeof(why));

	if (ret == -EPIPE || ret == -ECONNRESET)
		ret = from_get(e, ifname);
	else if (ret)
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why[0] ? why : strerror(-ret));
	else if (text.len)
		add_text(e, text.data, text.len);
	sbuf_free(&text);
	return ret;
}

int cmd_metrics(int argc, char **argv)
{
	struct exposition *e = calloc(1, sizeof(*e));
	char **names = NULL;
	size_t n = 0, i;
	int failed = 0;

	if (!e || argc > 2) {
		fprintf(stderr, "Usage: veilctl metrics [IFNAME]\n");
		free(e);
		return 1;
	}
	if (argc == 2) {
		failed = one(e, argv[1]) != 0;
	} else if (ctl_list(&names, &n) == 0) {
		for (i = 0; i < n; i++) {
			failed |= one(e, names[i]) != 0;
			free(names[i]);
		}
		free(names);
	} else {
		fprintf(stderr, "veilctl: cannot list the interfaces in %s\n", CTL_SOCKET_DIR);
		failed = 1;
	}
	for (i = 0; i < e->n; i++) {
		if (e->f[i].head.len)
			fwrite(e->f[i].head.data, 1, e->f[i].head.len, stdout);
		if (e->f[i].samples.len)
			fwrite(e->f[i].samples.data, 1, e->f[i].samples.len, stdout);
		sbuf_free(&e->f[i].head);
		sbuf_free(&e->f[i].samples);
	}
	free(e);
	return failed || fflush(stdout) ? 1 : 0;
}
