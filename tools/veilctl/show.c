// SPDX-License-Identifier: MIT
/*
 * veilctl show and showconf. show never prints a private or pre-shared
 * key (it says whether there is one); showconf prints the configuration
 * with its keys, as wg showconf does, from locked memory.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ctl.h"

static void b64(const uint8_t k[32], char out[45])
{
	sodium_bin2base64(out, 45, k, 32, sodium_base64_VARIANT_ORIGINAL);
}

static void endpoint_str(const struct ctl_peer *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";

	if (!p->endpoint_len) {
		snprintf(out, len, "(none)");
	} else if (p->endpoint.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&p->endpoint;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)&p->endpoint;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}

static void prefix_str(const struct conf_prefix *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, p->cidr);
}

static void allowed_str(const struct ctl_peer *p, const char *sep, char *out, size_t len)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < p->n_allowed_ips && o + 64 < len; i++) {
		char pfx[64];

		prefix_str(&p->allowed_ips[i], pfx, sizeof(pfx));
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? sep : "", pfx);
	}
}

static void ago(uint64_t sec, char *out, size_t len)
{
	uint64_t now = (uint64_t)time(NULL), d;

	if (!sec) {
		snprintf(out, len, "never");
		return;
	}
	d = now > sec ? now - sec : 0;
	if (d >= 3600)
		snprintf(out, len, "%llu h %llu min ago", (unsigned long long)(d / 3600),
			 (unsigned long long)(d % 3600 / 60));
	else if (d >= 60)
		snprintf(out, len, "%llu min %llu s ago", (unsigned long long)(d / 60),
			 (unsigned long long)(d % 60));
	else
		snprintf(out, len, "%llu s ago", (unsigned long long)d);
}

static void show_text(const struct ctl_device *d)
{
	char k[45], ep[64], ips[4096], when[64];
	size_t i;

	printf("interface: %s\n", d->ifname);
	if (d->private_key) {
		b64(d->public_key, k);
		printf("  public key: %s\n  private key: (hidden)\n", k);
	}
	printf("  listening port: %u\n", d->listen_port);
	if (d->fwmark)
		printf("  fwmark: 0x%x\n", d->fwmark);
	for (i = 0; i < d->n_peers; i++) {
		const struct ctl_peer *p = &d->peers[i];

		b64(p->public_key, k);
		endpoint_str(p, ep, sizeof(ep));
		allowed_str(p, ", ", ips, sizeof(ips));
		ago(p->last_handshake_sec, when, sizeof(when));
		printf("\npeer: %s\n", k);
		if (p->preshared_key)
			printf("  preshared key: (hidden)\n");
		printf("  endpoint: %s\n  allowed ips: %s\n  latest handshake: %s\n", ep,
		       ips[0] ? ips : "(none)", when);
		printf("  transfer: %llu B received, %llu B sent\n", (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes);
		if (p->persistent_keepalive)
			printf("  persistent keepalive: every %u s\n", p->persistent_keepalive);
	}
}

/* Interface names are [A-Za-z0-9_=+.-], keys base64, addresses plain: nothing needs escaping. */
static void show_json(const struct ctl_device *d)
{
	char k[45], ep[64], ips[4096];
	size_t i;

	b64(d->public_key, k);
	printf("{\"name\":\"%s\",\"public_key\":%s%s%s,\"listen_port\":%u,\"fwmark\":%u,\"peers\":[",
	       d->ifname, d->private_key ? "\"" : "", d->private_key ? k : "null",
	       d->private_key ? "\"" : "", d->listen_port, d->fwmark);
	for (i = 0; i < d->n_peers; i++) {
		const struct ctl_peer *p = &d->peers[i];

		b64(p->public_key, k);
		endpoint_str(p, ep, sizeof(ep));
		allowed_str(p, "\",\"", ips, sizeof(ips));
		printf("%s{\"public_key\":\"%s\",\"preshared_key\":%s,\"endpoint\":%s%s%s,"
		       "\"allowed_ips\":[%s%s%s],\"latest_handshake\":%llu,\"rx_bytes\":%llu,"
		       "\"tx_bytes\":%llu,\"persistent_keepalive\":%u}",
		       i ? "," : "", k, p->preshared_key ? "true" : "false",
		       p->endpoint_len ? "\"" : "", p->endpoint_len ? ep : "null", p->endpoint_len ? "\"" : "",
		       ips[0] ? "\"" : "", ips, ips[0] ? "\"" : "",
		       (unsigned long long)p->last_handshake_sec, (unsigned long long)p->rx_bytes,
		       (unsigned long long)p->tx_bytes, p->persistent_keepalive);
	}
	printf("]}");
}

static int show_one(const char *ifname, bool json, bool first)
{
	struct ctl_device d;
	char why[256] = "";
	int ret = ctl_get(ifname, &d, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why[0] ? why : strerror(-ret));
		return 1;
	}
	if (json) {
		show_json(&d);
	} else {
		if (!first)
			printf("\n");
		show_text(&d);
	}
	ctl_device_free(&d);
	return 0;
}

static int show_all(bool json, bool names_only)
{
	char **names;
	size_t n, i;
	int ret = 0;

	if (ctl_list(&names, &n)) {
		fprintf(stderr, "veilctl: cannot list %s\n", CTL_SOCKET_DIR);
		return 1;
	}
	if (json)
		printf("{");
	for (i = 0; i < n; i++) {
		if (names_only) {
			printf("%s%s", i ? " " : "", names[i]);
		} else {
			if (json)
				printf("%s\"%s\":", i ? "," : "", names[i]);
			ret |= show_one(names[i], json, i == 0);
		}
		free(names[i]);
	}
	free(names);
	if (json)
		printf("}");
	if (json || (names_only && n))
		printf("\n");
	return ret;
}

int cmd_show(int argc, char **argv)
{
	const char *what = "all";
	bool json = false;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(what, "all") && strcmp(argv[i], "all") != 0)
			what = argv[i];
		else if (strcmp(argv[i], "all") != 0) {
			fprintf(stderr, "Usage: veilctl show [IFNAME|all|interfaces] [--json]\n");
			return 1;
		}
	}
	if (!strcmp(what, "all") || !strcmp(what, "interfaces"))
		return show_all(json && strcmp(what, "interfaces") != 0, !strcmp(what, "interfaces"));
	ret = show_one(what, json, true);
	if (json && !ret)
		printf("\n");
	return ret;
}

static void psk_line(struct sbuf *out, const struct ctl_peer *p, const struct conf_peer *orig)
{
	static const char *const names[] = { [KEYSRC_FILE] = "PresharedKeyFile",
					     [KEYSRC_CREDENTIAL] = "PresharedKeyCredential" };
	char k[45];

	if (orig && orig->psk.arg && (orig->psk.source == KEYSRC_FILE || orig->psk.source == KEYSRC_CREDENTIAL)) {
		sbuf_printf(out, "%s = %s\n", names[orig->psk.source], orig->psk.arg);
	} else if (p->preshared_key) {
		b64(p->preshared_key, k);
		sbuf_printf(out, "PresharedKey = %s\n", k);
		sodium_memzero(k, sizeof(k));
	}
}

void ctl_format_peer(struct sbuf *out, const struct ctl_peer *p, const struct conf_peer *orig)
{
	char k[45], ep[64], ips[4096];

	b64(p->public_key, k);
	sbuf_printf(out, "\n[Peer]\nPublicKey = %s\n", k);
	psk_line(out, p, orig);
	allowed_str(p, ", ", ips, sizeof(ips));
	if (ips[0])
		sbuf_printf(out, "AllowedIPs = %s\n", ips);
	if (p->endpoint_len) {
		endpoint_str(p, ep, sizeof(ep));
		sbuf_printf(out, "Endpoint = %s\n", ep);
	}
	if (p->persistent_keepalive)
		sbuf_printf(out, "PersistentKeepalive = %u\n", p->persistent_keepalive);
}

int cmd_showconf(int argc, char **argv)
{
	struct ctl_device d;
	struct sbuf out = { 0 };
	char why[256] = "", k[45];
	size_t i;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: veilctl showconf IFNAME\n");
		return 1;
	}
	ret = ctl_get(argv[1], &d, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "veilctl: %s: %s\n", argv[1], why[0] ? why : strerror(-ret));
		return 1;
	}
	sbuf_printf(&out, "[Interface]\nListenPort = %u\n", d.listen_port);
	if (d.fwmark)
		sbuf_printf(&out, "FwMark = 0x%x\n", d.fwmark);
	if (d.private_key) {
		b64(d.private_key, k);
		sbuf_printf(&out, "PrivateKey = %s\n", k);
		sodium_memzero(k, sizeof(k));
	}
	for (i = 0; i < d.n_peers; i++)
		ctl_format_peer(&out, &d.peers[i], NULL);
	ret = out.failed || fwrite(out.data, 1, out.len, stdout) != out.len;
	sbuf_free(&out);
	ctl_device_free(&d);
	return ret ? 1 : 0;
}
