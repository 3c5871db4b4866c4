// SPDX-License-Identifier: MIT
/*
 * veilctl show and showconf. show never prints a private or pre-shared
 * key, in text or JSON: it says whether there is one. showconf prints the
 * configuration with its keys, as wg showconf does; those go from locked
 * memory through a locked buffer straight to standard output (no stdio
 * buffer keeps a copy), and the buffer is wiped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"

static int usage(void)
{
	fprintf(stderr, "veilctl: usage: veilctl show [IFNAME|all|interfaces] [--json]\n");
	return 1;
}

static void b64(const uint8_t k[static 32], char out[static 45])
{
	sodium_bin2base64(out, 45, k, 32, sodium_base64_VARIANT_ORIGINAL);
}

/* ---- text ------------------------------------------------------------------------------- */

/* "1 hour, 2 minutes, 5 seconds ago"; zero units are left out. */
static void ago(uint64_t sec, char *out, size_t len)
{
	static const struct {
		const char *name;
		uint64_t sec;
	} units[] = { { "day", 86400 }, { "hour", 3600 }, { "minute", 60 }, { "second", 1 } };
	uint64_t now = (uint64_t)time(NULL), d = now > sec ? now - sec : 0, n;
	size_t i, o = 0;

	if (d == 0) {
		snprintf(out, len, "just now");
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]) && o < len; i++) {
		n = d / units[i].sec;
		d %= units[i].sec;
		if (n)
			o += (size_t)snprintf(out + o, len - o, "%s%llu %s%s", o ? ", " : "",
					      (unsigned long long)n, units[i].name, n == 1 ? "" : "s");
	}
	if (o < len)
		snprintf(out + o, len - o, " ago");
}


/* Refused or unanswered handshakes: how many, and the latest's age and reason. */
static void text_failures(const struct ctl_peer *p)
{
	char when[128];

	printf("  handshake failures: %llu", (unsigned long long)p->handshake_failures);
	if (p->last_failure_sec) {
		ago(p->last_failure_sec, when, sizeof(when));
		printf(", the latest %s: %s", when, p->last_failure[0] ? p->last_failure : "(no reason given)");
	}
	printf("\n");
}

static void print_allowed(const struct ctl_peer *p, const char *sep, const char *quote)
{
	char pfx[CTL_PREFIX_LEN];
	size_t i;

	for (i = 0; i < p->n_allowed_ips; i++) {
		ctl_format_prefix(&p->allowed_ips[i], pfx, sizeof(pfx));
		printf("%s%s%s%s", i ? sep : "", quote, pfx, quote);
	}
}

static void text_peer(const struct ctl_peer *p)
{
	char k[45], ep[CTL_ENDPOINT_LEN], rx[32], tx[32], when[128];

	b64(p->public_key, k);
	printf("\npeer: %s\n", k);
	if (p->preshared_key)
		printf("  preshared key: (hidden)\n");
	if (p->endpoint_len) {
		ctl_format_endpoint(&p->endpoint, ep, sizeof(ep));
		printf("  endpoint: %s\n", ep);
	}
	if (p->endpoint_name)
		printf("  endpoint name: %s (looked up again when handshakes fail)\n", p->endpoint_name);
	if (p->has_cipher && p->cipher == CIPHER_AES256GCM)
		printf("  cipher: aes256gcm (veil's own suite)\n");
	printf("  allowed ips: ");
	if (p->n_allowed_ips)
		print_allowed(p, ", ", "");
	else
		printf("(none)");
	printf("\n");
	if (p->last_handshake_sec) {
		ago(p->last_handshake_sec, when, sizeof(when));
		printf("  latest handshake: %s\n", when);
	}
	if (p->has_failures && p->handshake_failures)
		text_failures(p);
	if (p->rx_bytes || p->tx_bytes) {
		ctl_format_bytes((double)p->rx_bytes, "", rx, sizeof(rx));
		ctl_format_bytes((double)p->tx_bytes, "", tx, sizeof(tx));
		printf("  transfer: %s received, %s sent\n", rx, tx);
	}
	if (p->persistent_keepalive)
		printf("  persistent keepalive: every %u second%s\n", p->persistent_keepalive,
		       p->persistent_keepalive == 1 ? "" : "s");
}

/* Most recent handshake first, peers that never had one last (as wg lists them). */
static int by_handshake(const void *a, const void *b)
{
	const struct ctl_peer *x = a, *y = b;

	if (x->last_handshake_sec != y->last_handshake_sec)
		return x->last_handshake_sec > y->last_handshake_sec ? -1 : 1;
	if (x->last_handshake_nsec != y->last_handshake_nsec)
		return x->last_handshake_nsec > y->last_handshake_nsec ? -1 : 1;
	return 0;
}

static void show_text(struct ctl_device *d)
{
	char k[45];
	size_t i;

	printf("interface: %s\n", d->ifname);
	if (d->private_key) {
		b64(d->public_key, k);
		printf("  public key: %s\n  private key: (hidden)\n", k);
	}
	if (d->listen_port)
		printf("  listening port: %u\n", d->listen_port);
	if (d->fwmark)
		printf("  fwmark: 0x%x\n", d->fwmark);
	if (d->n_peers)
		qsort(d->peers, d->n_peers, sizeof(*d->peers), by_handshake);
	for (i = 0; i < d->n_peers; i++)
		text_peer(&d->peers[i]);
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_peer(const struct ctl_peer *p)
{
	char k[45], ep[CTL_ENDPOINT_LEN];

	b64(p->public_key, k);
	printf("{\"public_key\":");
	json_str(k);
	printf(",\"preshared_key\":%s,\"endpoint\":", p->preshared_key ? "true" : "false");
	if (p->endpoint_len) {
		ctl_format_endpoint(&p->endpoint, ep, sizeof(ep));
		json_str(ep);
	} else {
		printf("null");
	}
	printf(",\"allowed_ips\":[");
	print_allowed(p, ",", "\"");
	printf("],\"latest_handshake\":%llu,\"rx_bytes\":%llu,\"tx_bytes\":%llu,\"persistent_keepalive\":%u",
	       (unsigned long long)p->last_handshake_sec, (unsigned long long)p->rx_bytes,
	       (unsigned long long)p->tx_bytes, p->persistent_keepalive);
	/* null: the daemon does not say (wireguard-go, which knows no other cipher nor names). */
	printf(",\"cipher\":");
	if (p->has_cipher)
		json_str(p->cipher == CIPHER_AES256GCM ? "aes256gcm" : "chacha20poly1305");
	else
		printf("null");
	printf(",\"endpoint_name\":");
	if (p->endpoint_name)
		json_str(p->endpoint_name);
	else
		printf("null");
	/* null: the daemon does not say (wireguard-go); 0 and null: never. */
	if (p->has_failures) {
		printf(",\"handshake_failures\":%llu,\"latest_handshake_failure\":%llu,"
		       "\"latest_handshake_failure_reason\":",
		       (unsigned long long)p->handshake_failures, (unsigned long long)p->last_failure_sec);
		if (p->last_failure_sec && p->last_failure[0])
			json_str(p->last_failure);
		else
			printf("null");
	} else {
		printf(",\"handshake_failures\":null,\"latest_handshake_failure\":null,"
		       "\"latest_handshake_failure_reason\":null");
	}
	printf("}");
}

/* The interface object; public_key is null while the daemon has no private key. */
static void show_json(const struct ctl_device *d)
{
	char k[45];
	size_t i;

	printf("{\"name\":");
	json_str(d->ifname);
	printf(",\"public_key\":");
	if (d->private_key) {
		b64(d->public_key, k);
		json_str(k);
	} else {
		printf("null");
	}
	printf(",\"listen_port\":%u,\"fwmark\":%u,\"peers\":[", d->listen_port, d->fwmark);
	for (i = 0; i < d->n_peers; i++) {
		if (i)
			putchar(',');
		json_peer(&d->peers[i]);
	}
	printf("]}");
}

/* ---- commands ----------------------------------------------------------------------------- */

static int get(const char *ifname, struct ctl_device *d)
{
	char why[320] = "";
	int ret = ctl_get(ifname, d, why, sizeof(why));

	if (ret && why[0])
		fprintf(stderr, "veilctl: %s: %s\n", ifname, why);
	else if (ret)
		fprintf(stderr, "veilctl: %s: the daemon answered with an error: %s\n", ifname, strerror(-ret));
	return ret;
}

/*
 * Each interface is read before anything of it is printed, so a failing one
 * leaves no half object. A socket nobody listens on (a daemon that died, or
 * one going away while we list) is no interface: said, and left out.
 */
static int show_all(bool json)
{
	struct ctl_device d;
	char **names;
	size_t n, i, shown = 0;
	int ret, status = 0;

	ret = ctl_list(&names, &n);
	if (ret) {
		fprintf(stderr, "veilctl: cannot list %s: %s\n", CTL_SOCKET_DIR, strerror(-ret));
		return 1;
	}
	if (json)
		printf("{");
	for (i = 0; i < n; i++) {
		ret = get(names[i], &d);
		if (ret == -ECONNREFUSED || ret == -ENOENT) {
			/* skipped */
		} else if (ret) {
			status = 1;
		} else if (json) {
			printf("%s", shown++ ? "," : "");
			json_str(names[i]);
			printf(":");
			show_json(&d);
		} else {
			printf("%s", shown++ ? "\n" : "");
			show_text(&d);
		}
		ctl_device_free(&d);
		free(names[i]);
	}
	free(names);
	if (json)
		printf("}\n");
	return status;
}

static int show_interfaces(bool json)
{
	char **names;
	size_t n, i;
	int ret = ctl_list(&names, &n);

	if (ret) {
		fprintf(stderr, "veilctl: cannot list %s: %s\n", CTL_SOCKET_DIR, strerror(-ret));
		return 1;
	}
	printf("%s", json ? "[" : "");
	for (i = 0; i < n; i++) {
		printf("%s", i ? (json ? "," : " ") : "");
		if (json)
			json_str(names[i]);
		else
			printf("%s", names[i]);
		free(names[i]);
	}
	free(names);
	printf("%s", json ? "]\n" : (n ? "\n" : ""));
	return 0;
}

static int show_one(const char *ifname, bool json)
{
	struct ctl_device d;

	if (get(ifname, &d))
		return 1;
	if (json) {
		show_json(&d);
		printf("\n");
	} else {
		show_text(&d);
	}
	ctl_device_free(&d);
	return 0;
}

int cmd_show(int argc, char **argv)
{
	const char *what = NULL;
	bool json = false;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (argv[i][0] == '-' || what)
			return usage();
		else
			what = argv[i];
	}
	if (!what || !strcmp(what, "all"))
		ret = show_all(json);
	else if (!strcmp(what, "interfaces"))
		ret = show_interfaces(json);
	else
		ret = show_one(what, json);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "veilctl: cannot write the output: %s\n", strerror(errno));
		ret = 1;
	}
	return ret;
}

/* ---- showconf ------------------------------------------------------------------------------ */

/* A key as "Name = base64"; the stack copy is wiped. */
static void key_line(struct sbuf *out, const char *name, const uint8_t k[static 32])
{
	char s[45];

	b64(k, s);
	sbuf_printf(out, "%s = %s\n", name, s);
	sodium_memzero(s, sizeof(s));
}

/*
 * A pre-shared key that came from a file or credential stays a reference
 * to it (SaveConfig must not write a key that was kept out of the file).
 */
static void psk_line(struct sbuf *out, const struct ctl_peer *p, const struct conf_peer *orig)
{
	if (orig && orig->psk.arg && orig->psk.source == KEYSRC_FILE)
		sbuf_printf(out, "PresharedKeyFile = %s\n", orig->psk.arg);
	else if (orig && orig->psk.arg && orig->psk.source == KEYSRC_CREDENTIAL)
		sbuf_printf(out, "PresharedKeyCredential = %s\n", orig->psk.arg);
	else if (p->preshared_key)
		key_line(out, "PresharedKey", p->preshared_key);
}

void ctl_format_peer(struct sbuf *out, const struct ctl_peer *p, const struct conf_peer *orig)
{
	char ep[CTL_ENDPOINT_LEN], pfx[CTL_PREFIX_LEN];
	enum conf_cipher cipher;
	size_t i;

	sbuf_printf(out, "\n[Peer]\n");
	key_line(out, "PublicKey", p->public_key);
	psk_line(out, p, orig);
	for (i = 0; i < p->n_allowed_ips; i++) {
		ctl_format_prefix(&p->allowed_ips[i], pfx, sizeof(pfx));
		sbuf_printf(out, "%s%s", i ? ", " : "AllowedIPs = ", pfx);
	}
	if (p->n_allowed_ips)
		sbuf_printf(out, "\n");
	/*
	 * A host name stays a name (veild looks it up again): the daemon's, else
	 * the file's (a daemon that does not report names); an address is the running one.
	 */
	if (p->endpoint_name) {
		sbuf_printf(out, "Endpoint = %s\n", p->endpoint_name);
	} else if (orig && orig->endpoint && ctl_endpoint_is_name(orig->endpoint)) {
		sbuf_printf(out, "Endpoint = %s\n", orig->endpoint);
	} else if (p->endpoint_len) {
		ctl_format_endpoint(&p->endpoint, ep, sizeof(ep));
		sbuf_printf(out, "Endpoint = %s\n", ep);
	}
	if (p->persistent_keepalive)
		sbuf_printf(out, "PersistentKeepalive = %u\n", p->persistent_keepalive);
	/*
	 * The running cipher when the daemon reports it (veild), written when it is
	 * not the default or the file named one; else the file's line stays.
	 */
	cipher = p->has_cipher ? p->cipher : orig && orig->has_cipher ? orig->cipher : CIPHER_DEFAULT;
	if (cipher == CIPHER_AES256GCM || (orig && orig->has_cipher))
		sbuf_printf(out, "Cipher = %s\n", cipher == CIPHER_AES256GCM ? "aes256gcm" : "chacha20poly1305");
}

int cmd_showconf(int argc, char **argv)
{
	struct ctl_device d;
	struct sbuf out = { 0 };
	size_t i;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "veilctl: usage: veilctl showconf IFNAME\n");
		return 1;
	}
	if (get(argv[1], &d))
		return 1;
	sbuf_printf(&out, "[Interface]\n");
	if (d.listen_port)
		sbuf_printf(&out, "ListenPort = %u\n", d.listen_port);
	if (d.fwmark)
		sbuf_printf(&out, "FwMark = 0x%x\n", d.fwmark);
	if (d.private_key)
		key_line(&out, "PrivateKey", d.private_key);
	for (i = 0; i < d.n_peers; i++)
		ctl_format_peer(&out, &d.peers[i], NULL);
	ret = out.failed ? -ENOMEM : ctl_write_out(out.data, out.len);
	if (ret)
		fprintf(stderr, "veilctl: %s: %s\n", argv[1],
			ret == -ENOMEM ? "out of locked memory" : strerror(-ret));
	sbuf_free(&out);
	ctl_device_free(&d);
	return ret ? 1 : 0;
}
