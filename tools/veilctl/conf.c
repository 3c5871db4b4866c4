// SPDX-License-Identifier: MIT
/*
 * veil's configuration files (see conf.h): wg-quick's format, parsed whole
 * before anything is applied. Each line is "Key = Value" inside an
 * [Interface] or [Peer] section; keys are case-insensitive, '#' starts a
 * comment except in lines that are commands (hooks, PrivateKeyCommand),
 * which are kept whole as wg-quick keeps them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "veil.h"

enum section { SEC_NONE, SEC_INTERFACE, SEC_PEER, SEC_MESH };

struct parser {
	struct conf *c;
	struct conf_error *err;
	const char *path;
	unsigned int line;
	enum section sec;
	bool seen_interface, seen_mesh;
	uint64_t seen; /* single-valued keys already given in this section (bit per key) */
	unsigned int v6_address_line; /* where the first IPv6 Address is */
	struct conf_prefix v6_address;
};

struct key_def {
	const char *name;
	enum section sec;
	bool multi;   /* may repeat, values accumulate */
	bool command; /* the value is a command line: '#' is not a comment */
	int (*parse)(struct parser *p, const char *key, char *value);
};

static void set_error(struct conf_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct parser *p, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Every message is one line: a path, a key or a quoted value may hold a
 * newline or a terminal escape, so control characters become '?'.
 */
static void set_error(struct conf_error *err, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	for (i = 0; err->msg[i]; i++)
		if ((unsigned char)err->msg[i] < 0x20 || err->msg[i] == 0x7f)
			err->msg[i] = '?';
}

/* "path:line: Key: message", or "path:line: message" without a key. */
static int fail(struct parser *p, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): as in set_error. */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		set_error(p->err, "%s:%u: %s: %s", p->path, p->line, key, msg);
	else
		set_error(p->err, "%s:%u: %s", p->path, p->line, msg);
	return -EINVAL;
}

/* A value quoted in a message, cut short: never used for secrets. */
static const char *shown(const char *v, char out[48])
{
	size_t n = strlen(v);

	if (n < 40) {
		snprintf(out, 48, "%s", v);
	} else {
		memcpy(out, v, 36);
		memcpy(out + 36, "...", 4);
	}
	return out;
}

static bool same_word(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ---- shared helpers ---------------------------------------------------------------- */

int conf_parse_key(const char *base64, uint8_t out[static 32])
{
	uint8_t tmp[32];
	size_t len = 0;
	const char *end = NULL;
	int ret = -EINVAL;

	if (strlen(base64) != 44 || base64[43] != '=')
		return -EINVAL;
	if (sodium_base642bin(tmp, sizeof(tmp), base64, 44, NULL, &len, &end,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    len == 32 && end == base64 + 44) {
		memcpy(out, tmp, 32);
		ret = 0;
	}
	sodium_memzero(tmp, sizeof(tmp));
	return ret;
}

/*
 * A whole decimal number up to max; with hex, "0x..." too (FwMark). No
 * sign, no space, nothing after it: strtoull alone would take " -1".
 */
static bool parse_num(const char *s, uint32_t max, bool hex, uint32_t *out)
{
	unsigned long long v;
	int base = 10;
	char *end;

	if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return false;
	} else if (!isdigit((unsigned char)s[0])) {
		return false;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

int conf_parse_prefix(const char *s, struct conf_prefix *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint32_t cidr;
	unsigned int max;

	size_t len = strlen(s);

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len + 1);
	memset(out, 0, sizeof(*out));
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	max = out->family == AF_INET ? 32 : 128;
	if (!slash)
		cidr = max;
	else if (slash[0] == '0' && slash[1])
		return -EINVAL;
	else if (!parse_num(slash, max, false, &cidr))
		/* A number, but too large for the family: say so, not "garbage". */
		return slash[strspn(slash, "0123456789")] || !*slash ? -EINVAL : -ERANGE;
	out->cidr = (uint8_t)cidr;
	return 0;
}

/* Why a prefix was refused, after the quoted item: "is not a prefix" or the range. */
static int bad_prefix(struct parser *p, const char *key, const char *item, int err, const char *what)
{
	char s[48];
	int v6 = strchr(item, ':') != NULL;

	if (err == -ERANGE)
		return fail(p, key, "\"%s\": prefix length out of range (0-%d for IPv%d)", shown(item, s),
			    v6 ? 128 : 32, v6 ? 6 : 4);
	return fail(p, key, "\"%s\" is not %s", shown(item, s), what);
}

bool conf_valid_ifname(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > 15 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_=+.-", name[i]))
			return false;
	return true;
}

bool conf_valid_mesh_name(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > CONF_MESH_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

bool conf_prefix_overlap(const struct conf_prefix *a, const struct conf_prefix *b)
{
	unsigned int bits = a->cidr < b->cidr ? a->cidr : b->cidr, i;

	if (a->family != b->family)
		return false;
	for (i = 0; i < bits / 8; i++)
		if (a->addr[i] != b->addr[i])
			return false;
	return bits % 8 == 0 || !((a->addr[i] ^ b->addr[i]) & (uint8_t)(0xff00 >> (bits % 8)));
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void key_free(struct conf_key *k)
{
	free(k->arg);
	if (k->key)
		sodium_free(k->key); /* wipes */
	memset(k, 0, sizeof(*k));
}

static void strings_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void mesh_free(struct conf_mesh *m)
{
	strings_free(m->registry, m->n_registry);
	free(m->ca);
	free(m->cert);
	free(m->key);
	free(m->user);
	free(m->password_arg);
	free(m->network);
	free(m->node);
	free(m->endpoint);
	free(m->advertise);
}

void conf_free(struct conf *c)
{
	size_t i;

	free(c->path);
	free(c->name);
	key_free(&c->private_key);
	free(c->addresses);
	strings_free(c->dns, c->n_dns);
	strings_free(c->pre_up.cmd, c->pre_up.n);
	strings_free(c->post_up.cmd, c->post_up.n);
	strings_free(c->pre_down.cmd, c->pre_down.n);
	strings_free(c->post_down.cmd, c->post_down.n);
	for (i = 0; i < c->n_peers; i++) {
		key_free(&c->peers[i].psk);
		free(c->peers[i].allowed_ips);
		free(c->peers[i].endpoint);
	}
	free(c->peers);
	free(c->metrics_listen);
	mesh_free(&c->mesh);
	sodium_memzero(c, sizeof(*c));
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* ---- values ------------------------------------------------------------------------------- */

static struct conf_peer *peer_now(struct parser *p)
{
	return &p->c->peers[p->c->n_peers - 1];
}

static int append(void **arr, size_t *n, size_t size, const void *item)
{
	void *a = realloc(*arr, (*n + 1) * size);

	if (!a)
		return -ENOMEM;
	memcpy((char *)a + *n * size, item, size);
	*arr = a;
	(*n)++;
	return 0;
}

static int append_string(char ***arr, size_t *n, const char *s)
{
	char *d = strdup(s);
	int ret;

	if (!d)
		return -ENOMEM;
	ret = append((void **)arr, n, sizeof(char *), &d);
	if (ret)
		free(d);
	return ret;
}

static int inline_key(struct parser *p, const char *key, char *value, struct conf_key *k)
{
	if (k->source != KEYSRC_NONE)
		return fail(p, key, "a key for this is already given on line %u", k->line);
	k->key = sodium_malloc(32);
	if (!k->key)
		return -ENOMEM;
	if (conf_parse_key(value, k->key))
		return fail(p, key, "not a base64 key of 32 bytes");
	k->source = KEYSRC_INLINE;
	k->line = p->line;
	return 0;
}

static int key_source(struct parser *p, const char *key, char *value, struct conf_key *k,
		      enum conf_key_source src)
{
	char s[48];

	if (k->source != KEYSRC_NONE)
		return fail(p, key, "a key for this is already given on line %u", k->line);
	if (src == KEYSRC_CREDENTIAL && (strchr(value, '/') || !strcmp(value, ".") || !strcmp(value, "..")))
		return fail(p, key, "\"%s\" is not a credential name (a file name without '/')",
			    shown(value, s));
	k->arg = strdup(value);
	if (!k->arg)
		return -ENOMEM;
	k->source = src;
	k->line = p->line;
	return 0;
}

static int v_private_key(struct parser *p, const char *key, char *v)
{
	return inline_key(p, key, v, &p->c->private_key);
}

static int v_private_key_file(struct parser *p, const char *key, char *v)
{
	return key_source(p, key, v, &p->c->private_key, KEYSRC_FILE);
}

static int v_private_key_credential(struct parser *p, const char *key, char *v)
{
	return key_source(p, key, v, &p->c->private_key, KEYSRC_CREDENTIAL);
}

static int v_private_key_command(struct parser *p, const char *key, char *v)
{
	return key_source(p, key, v, &p->c->private_key, KEYSRC_COMMAND);
}

static int v_psk(struct parser *p, const char *key, char *v)
{
	return inline_key(p, key, v, &peer_now(p)->psk);
}

static int v_psk_file(struct parser *p, const char *key, char *v)
{
	return key_source(p, key, v, &peer_now(p)->psk, KEYSRC_FILE);
}

static int v_psk_credential(struct parser *p, const char *key, char *v)
{
	return key_source(p, key, v, &peer_now(p)->psk, KEYSRC_CREDENTIAL);
}

static int v_listen_port(struct parser *p, const char *key, char *v)
{
	uint32_t port;
	char s[48];

	if (!parse_num(v, 65535, false, &port))
		return fail(p, key, "\"%s\" is not a port (0-65535)", shown(v, s));
	p->c->listen_port = (uint16_t)port;
	p->c->has_listen_port = true;
	p->c->listen_port_line = p->line;
	return 0;
}

static int v_fwmark(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (same_word(v, "off"))
		p->c->fwmark = 0;
	else if (!parse_num(v, UINT32_MAX, true, &p->c->fwmark))
		return fail(p, key, "\"%s\" is not a mark (a number up to 0xffffffff, or off)",
			    shown(v, s));
	p->c->has_fwmark = true;
	p->c->fwmark_line = p->line;
	return 0;
}

/*
 * An MTU veild can carry: a larger one would make it drop the longer
 * packets (include/veil.h). Whether IPv6 fits is checked once the whole
 * [Interface] is read (mtu_fits_ipv6): Address may come after MTU.
 */
static int v_mtu(struct parser *p, const char *key, char *v)
{
	uint32_t mtu;
	char s[48];

	if (!isdigit((unsigned char)v[0]) || v[strspn(v, "0123456789")])
		return fail(p, key, "\"%s\" is not an MTU (%d-%d)", shown(v, s), VEIL_MTU_MIN, VEIL_MTU_MAX);
	if (!parse_num(v, VEIL_MTU_MAX, false, &mtu))
		return fail(p, key, "%s is above %d, the longest packet veild carries (%d-%d); longer ones "
			    "would be dropped", shown(v, s), VEIL_MTU_MAX, VEIL_MTU_MIN, VEIL_MTU_MAX);
	if (mtu < VEIL_MTU_MIN)
		return fail(p, key, "%s is below %d, the least any link takes (%d-%d)", shown(v, s),
			    VEIL_MTU_MIN, VEIL_MTU_MIN, VEIL_MTU_MAX);
	p->c->mtu = mtu;
	p->c->has_mtu = true;
	p->c->mtu_line = p->line;
	return 0;
}

/* The kernel turns IPv6 off on a link whose MTU is below 1280: an IPv6 Address would never come. */
static int mtu_fits_ipv6(struct parser *p)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (!p->c->has_mtu || p->c->mtu >= VEIL_MTU_MIN_IPV6 || !p->v6_address_line)
		return 0;
	inet_ntop(AF_INET6, p->v6_address.addr, a, sizeof(a));
	p->line = p->c->mtu_line;
	return fail(p, "MTU", "%u is below %d, the least IPv6 takes, and Address on line %u is IPv6 (%s/%u)",
		    p->c->mtu, VEIL_MTU_MIN_IPV6, p->v6_address_line, a, p->v6_address.cidr);
}

static int v_table(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (same_word(v, "off")) {
		p->c->table = TABLE_OFF;
	} else if (same_word(v, "auto")) {
		p->c->table = TABLE_AUTO;
	} else if (same_word(v, "main") || same_word(v, "local") || same_word(v, "default")) {
		p->c->table = TABLE_ID;
		p->c->table_id = same_word(v, "main") ? 254 : same_word(v, "local") ? 255 : 253;
	} else if (parse_num(v, UINT32_MAX, false, &p->c->table_id) && p->c->table_id) {
		p->c->table = TABLE_ID;
	} else {
		return fail(p, key, "\"%s\" is not a table (off, auto, main or a number)", shown(v, s));
	}
	return 0;
}

static int v_save_config(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (same_word(v, "true"))
		p->c->save_config = true;
	else if (same_word(v, "false"))
		p->c->save_config = false;
	else
		return fail(p, key, "\"%s\" is not true or false", shown(v, s));
	return 0;
}

static bool split_endpoint(const char *v, const char **host, size_t *hostlen, const char **port);

/* An address literal and a port: veild binds it, and names are not for a listener. */
static int v_metrics_listen(struct parser *p, const char *key, char *v)
{
	char s[48], host[INET6_ADDRSTRLEN + 2];
	const char *h, *port;
	size_t hostlen;
	uint32_t n;
	uint8_t a[16];

	if (!split_endpoint(v, &h, &hostlen, &port) || hostlen >= sizeof(host) ||
	    !parse_num(port, 65535, false, &n) || n == 0)
		goto bad;
	memcpy(host, h, hostlen);
	host[hostlen] = '\0';
	if (inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, host, a) != 1)
		goto bad;
	free(p->c->metrics_listen);
	p->c->metrics_listen_line = p->line;
	p->c->metrics_listen = strdup(v);
	return p->c->metrics_listen ? 0 : -ENOMEM;
bad:
	return fail(p, key, "\"%s\" is not address:port or [IPv6 address]:port (port 1-65535)",
		    shown(v, s));
}

/* Split a comma-separated list in place; calls one() for each trimmed item. */
static int each_item(struct parser *p, const char *key, char *v,
		     int (*one)(struct parser *p, const char *key, char *item))
{
	char *item = v, *comma;
	int ret;

	for (;;) {
		comma = strchr(item, ',');
		if (comma)
			*comma = '\0';
		item = trim(item);
		if (!*item)
			return fail(p, key, "an empty item in the list");
		ret = one(p, key, item);
		if (ret || !comma)
			return ret;
		item = comma + 1;
	}
}

static int one_address(struct parser *p, const char *key, char *item)
{
	struct conf_prefix pfx;
	int ret = conf_parse_prefix(item, &pfx);

	if (ret)
		return bad_prefix(p, key, item, ret, "an address with a prefix length");
	if (pfx.family == AF_INET6 && !p->v6_address_line) {
		p->v6_address_line = p->line;
		p->v6_address = pfx;
	}
	return append((void **)&p->c->addresses, &p->c->n_addresses, sizeof(pfx), &pfx);
}

static int v_address(struct parser *p, const char *key, char *v)
{
	return each_item(p, key, v, one_address);
}

static int one_dns(struct parser *p, const char *key, char *item)
{
	char s[48];
	size_t i;

	for (i = 0; item[i]; i++)
		if (!isalnum((unsigned char)item[i]) && !strchr(".-:_%", item[i]))
			return fail(p, key, "\"%s\" is neither an address nor a domain", shown(item, s));
	return append_string(&p->c->dns, &p->c->n_dns, item);
}

static int v_dns(struct parser *p, const char *key, char *v)
{
	return each_item(p, key, v, one_dns);
}

static int hook(struct conf_hooks *h, const char *v)
{
	return append_string(&h->cmd, &h->n, v);
}

static int v_pre_up(struct parser *p, const char *key, char *v)
{
	(void)key;
	return hook(&p->c->pre_up, v);
}

static int v_post_up(struct parser *p, const char *key, char *v)
{
	(void)key;
	return hook(&p->c->post_up, v);
}

static int v_pre_down(struct parser *p, const char *key, char *v)
{
	(void)key;
	return hook(&p->c->pre_down, v);
}

static int v_post_down(struct parser *p, const char *key, char *v)
{
	(void)key;
	return hook(&p->c->post_down, v);
}

static int v_public_key(struct parser *p, const char *key, char *v)
{
	struct conf_peer *peer = peer_now(p);
	char s[48];
	size_t i;

	if (conf_parse_key(v, peer->public_key))
		return fail(p, key, "\"%s\" is not a base64 key of 32 bytes", shown(v, s));
	/* All zero is how a peer without a key looks; it could never handshake anyway. */
	if (sodium_is_zero(peer->public_key, 32))
		return fail(p, key, "the all-zero key is not a public key");
	for (i = 0; i + 1 < p->c->n_peers; i++)
		if (!memcmp(p->c->peers[i].public_key, peer->public_key, 32))
			return fail(p, key, "the same peer as on line %u", p->c->peers[i].line);
	return 0;
}

/* Equal as routes: the same family and length, and the same bits up to it. */
static bool same_route(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return a->family == b->family && a->cidr == b->cidr && conf_prefix_overlap(a, b);
}

/*
 * Whether a prefix behind this node ([Mesh] Advertise) and one behind a
 * peer claim the same addresses. A default route and the prefixes it holds
 * may go together (an exit through a peer, a LAN behind this node), as in
 * one_advertise.
 */
static bool claims_overlap(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return conf_prefix_overlap(a, b) && (a->cidr == 0) == (b->cidr == 0);
}

static void route_text(const struct conf_prefix *pfx, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(pfx->family, pfx->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, pfx->cidr);
}

/*
 * What parses but cannot be meant: a prefix already under another peer
 * (the later peer would silently take it from the earlier), or one that
 * [Mesh] advertises as behind this node. Quadratic in the file's prefixes,
 * which is fine for files people write.
 */
static int allowed_ip_taken(struct parser *p, const char *key, const char *item,
			    const struct conf_prefix *pfx)
{
	const struct conf *c = p->c;
	char s[48], other[INET6_ADDRSTRLEN + 8];
	size_t i, j;

	for (i = 0; i + 1 < c->n_peers; i++) {
		for (j = 0; j < c->peers[i].n_allowed_ips; j++) {
			if (!same_route(&c->peers[i].allowed_ips[j], pfx))
				continue;
			route_text(&c->peers[i].allowed_ips[j], other, sizeof(other));
			return fail(p, key, "\"%s\" is also under the [Peer] on line %u (%s); a prefix routes to "
				    "one peer", shown(item, s), c->peers[i].line, other);
		}
	}
	for (i = 0; i < c->mesh.n_advertise; i++) {
		if (!claims_overlap(&c->mesh.advertise[i], pfx))
			continue;
		route_text(&c->mesh.advertise[i], other, sizeof(other));
		return fail(p, key, "\"%s\" overlaps Advertise %s of the [Mesh] on line %u; what is behind this "
			    "node cannot be behind a peer too", shown(item, s), other, c->mesh.line);
	}
	return 0;
}

static int one_allowed_ip(struct parser *p, const char *key, char *item)
{
	struct conf_peer *peer = peer_now(p);
	struct conf_prefix pfx;
	int ret = conf_parse_prefix(item, &pfx);

	if (ret)
		return bad_prefix(p, key, item, ret, "a prefix");
	ret = allowed_ip_taken(p, key, item, &pfx);
	if (ret)
		return ret;
	return append((void **)&peer->allowed_ips, &peer->n_allowed_ips, sizeof(pfx), &pfx);
}

static int v_allowed_ips(struct parser *p, const char *key, char *v)
{
	return each_item(p, key, v, one_allowed_ip);
}

/* Every byte of a host is a letter, a digit or one of extra. */
static bool host_chars(const char *h, size_t n, const char *extra)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr(extra, h[i]))
			return false;
	return n > 0 && n < NI_MAXHOST;
}

/*
 * Split "host:port" or "[v6]:port" (a zone as in "[fe80::1%eth0]" is fine)
 * into the host's bytes and the port's text. Only the shape is checked;
 * getaddrinfo judges the host later. A bare v6 address is refused: its
 * last colon could be the port's or the address's.
 */
static bool split_endpoint(const char *v, const char **host, size_t *hostlen, const char **port)
{
	const char *colon;

	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (!close || close[1] != ':')
			return false;
		*host = v + 1;
		*hostlen = (size_t)(close - *host);
		*port = close + 2;
		return memchr(*host, ':', *hostlen) && host_chars(*host, *hostlen, ":.%_-");
	}
	colon = strchr(v, ':');
	if (!colon || strchr(colon + 1, ':'))
		return false;
	*host = v;
	*hostlen = (size_t)(colon - v);
	*port = colon + 1;
	return host_chars(v, *hostlen, ".-_");
}

bool conf_valid_endpoint(const char *v)
{
	const char *host, *port;
	size_t hostlen;
	uint32_t n;

	return split_endpoint(v, &host, &hostlen, &port) && parse_num(port, 65535, false, &n) && n;
}

static int v_endpoint(struct parser *p, const char *key, char *v)
{
	struct conf_peer *peer = peer_now(p);
	char s[48];

	if (!conf_valid_endpoint(v))
		return fail(p, key, "\"%s\" is not host:port or [address]:port (port 1-65535)",
			    shown(v, s));
	peer->endpoint = strdup(v);
	peer->endpoint_line = p->line;
	return peer->endpoint ? 0 : -ENOMEM;
}

static int v_keepalive(struct parser *p, const char *key, char *v)
{
	struct conf_peer *peer = peer_now(p);
	uint32_t n = 0;
	char s[48];

	if (!same_word(v, "off") && !parse_num(v, 65535, false, &n))
		return fail(p, key, "\"%s\" is not a number of seconds (0-65535) or off", shown(v, s));
	peer->persistent_keepalive = (uint16_t)n;
	peer->has_keepalive = true;
	return 0;
}

/* veil's own: aes256gcm between veil peers, or chacha20poly1305 (WireGuard's, the default). */
static int v_cipher(struct parser *p, const char *key, char *v)
{
	struct conf_peer *peer = peer_now(p);
	char s[48];

	if (same_word(v, VEIL_CIPHER_AES256GCM))
		peer->cipher = CIPHER_AES256GCM;
	else if (same_word(v, VEIL_CIPHER_CHACHA20POLY1305))
		peer->cipher = CIPHER_DEFAULT;
	else
		return fail(p, key, "\"%s\" is not a cipher (" VEIL_CIPHER_AES256GCM " or " VEIL_CIPHER_CHACHA20POLY1305 ")",
			    shown(v, s));
	peer->has_cipher = true;
	return 0;
}

/* ---- [Mesh] --------------------------------------------------------------------------------- */

static int set_string(struct parser *p, char **slot, const char *v)
{
	(void)p;
	free(*slot);
	*slot = strdup(v);
	return *slot ? 0 : -ENOMEM;
}

/* An etcd member: https://host[:port][/]; the path, if any, must be empty. */
static bool registry_url(const char *v)
{
	const char *hostport = v + 8, *slash;
	char buf[NI_MAXHOST + 16];
	size_t n;

	if (strncasecmp(v, "https://", 8) != 0)
		return false;
	slash = strchr(hostport, '/');
	if (slash && slash[1])
		return false;
	n = slash ? (size_t)(slash - hostport) : strlen(hostport);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, hostport, n);
	buf[n] = '\0';
	if (conf_valid_endpoint(buf))
		return true;
	/* No port: etcd's client port is the caller's default; the host alone must be sane. */
	return !strchr(buf, ':') && strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

static int one_registry(struct parser *p, const char *key, char *item)
{
	char s[48];

	if (!registry_url(item))
		return fail(p, key, "\"%s\" is not an https:// URL of an etcd member "
			    "(https://host:port; mutual TLS is required)", shown(item, s));
	return append_string(&p->c->mesh.registry, &p->c->mesh.n_registry, item);
}

static int v_registry(struct parser *p, const char *key, char *v)
{
	return each_item(p, key, v, one_registry);
}

static int v_registry_ca(struct parser *p, const char *key, char *v)
{
	(void)key;
	return set_string(p, &p->c->mesh.ca, v);
}

static int v_registry_cert(struct parser *p, const char *key, char *v)
{
	(void)key;
	return set_string(p, &p->c->mesh.cert, v);
}

static int v_registry_key(struct parser *p, const char *key, char *v)
{
	(void)key;
	return set_string(p, &p->c->mesh.key, v);
}

static int v_registry_user(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (strlen(v) > 255 || strpbrk(v, "\"\\"))
		return fail(p, key, "\"%s\" is not an etcd user name", shown(v, s));
	return set_string(p, &p->c->mesh.user, v);
}

static int password_source(struct parser *p, const char *key, char *v, enum conf_key_source src)
{
	struct conf_mesh *m = &p->c->mesh;
	char s[48];

	if (m->password_source != KEYSRC_NONE)
		return fail(p, key, "a password source is already given on line %u", m->password_line);
	if (src == KEYSRC_CREDENTIAL && (strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, "..")))
		return fail(p, key, "\"%s\" is not a credential name (a file name without '/')",
			    shown(v, s));
	m->password_source = src;
	m->password_line = p->line;
	return set_string(p, &m->password_arg, v);
}

static int v_password_file(struct parser *p, const char *key, char *v)
{
	return password_source(p, key, v, KEYSRC_FILE);
}

static int v_password_credential(struct parser *p, const char *key, char *v)
{
	return password_source(p, key, v, KEYSRC_CREDENTIAL);
}

static int v_password_command(struct parser *p, const char *key, char *v)
{
	return password_source(p, key, v, KEYSRC_COMMAND);
}

static int mesh_name(struct parser *p, const char *key, char *v, char **slot)
{
	char s[48];

	if (!conf_valid_mesh_name(v))
		return fail(p, key, "\"%s\" is not a name (1-%d characters of A-Z a-z 0-9 . _ -)",
			    shown(v, s), CONF_MESH_NAME_MAX);
	return set_string(p, slot, v);
}

static int v_network(struct parser *p, const char *key, char *v)
{
	return mesh_name(p, key, v, &p->c->mesh.network);
}

static int v_node(struct parser *p, const char *key, char *v)
{
	return mesh_name(p, key, v, &p->c->mesh.node);
}

static int v_mesh_endpoint(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (!conf_valid_endpoint(v))
		return fail(p, key, "\"%s\" is not host:port or [address]:port (port 1-65535)",
			    shown(v, s));
	return set_string(p, &p->c->mesh.endpoint, v);
}


/* A prefix behind this node that a [Peer] before it holds too (allowed_ip_taken's other half). */
static int advertise_taken(struct parser *p, const char *key, const char *item,
			   const struct conf_prefix *pfx)
{
	const struct conf *c = p->c;
	char s[48], other[INET6_ADDRSTRLEN + 8];
	size_t i, j;

	for (i = 0; i < c->n_peers; i++) {
		for (j = 0; j < c->peers[i].n_allowed_ips; j++) {
			if (!claims_overlap(&c->peers[i].allowed_ips[j], pfx))
				continue;
			route_text(&c->peers[i].allowed_ips[j], other, sizeof(other));
			return fail(p, key, "\"%s\" overlaps AllowedIPs %s of the [Peer] on line %u; what is behind "
				    "this node cannot be behind a peer too", shown(item, s), other, c->peers[i].line);
		}
	}
	return 0;
}

/*
 * A prefix behind this node. Its host bits must be clear: the record that
 * publishes it would be refused by every other node otherwise.
 */
static int one_advertise(struct parser *p, const char *key, char *item)
{
	struct conf_mesh *m = &p->c->mesh;
	struct conf_prefix pfx, net;
	char s[48], a[INET6_ADDRSTRLEN] = "?";
	size_t i;
	int ret = conf_parse_prefix(item, &pfx);

	if (ret)
		return bad_prefix(p, key, item, ret, "a prefix");
	net = pfx;
	if (conf_prefix_clear_host_bits(&net)) {
		inet_ntop(net.family, net.addr, a, sizeof(a));
		return fail(p, key, "\"%s\" has host bits set (%s/%u?)", shown(item, s), a, net.cidr);
	}
	/* An exit's default route and the prefixes behind it may go together. */
	for (i = 0; i < m->n_advertise; i++)
		if (claims_overlap(&m->advertise[i], &pfx))
			return fail(p, key, "\"%s\" overlaps a prefix given before it", shown(item, s));
	ret = advertise_taken(p, key, item, &pfx);
	if (ret)
		return ret;
	return append((void **)&m->advertise, &m->n_advertise, sizeof(pfx), &pfx);
}

static int v_advertise(struct parser *p, const char *key, char *v)
{
	return each_item(p, key, v, one_advertise);
}

static int v_mesh_keepalive(struct parser *p, const char *key, char *v)
{
	uint32_t n = 0;
	char s[48];

	if (!same_word(v, "off") && !parse_num(v, 65535, false, &n))
		return fail(p, key, "\"%s\" is not a number of seconds (0-65535) or off", shown(v, s));
	p->c->mesh.keepalive = (uint16_t)n;
	p->c->mesh.has_keepalive = true;
	return 0;
}

static int v_mesh_cipher(struct parser *p, const char *key, char *v)
{
	char s[48];

	if (same_word(v, VEIL_CIPHER_AES256GCM))
		p->c->mesh.cipher = CIPHER_AES256GCM;
	else if (same_word(v, VEIL_CIPHER_CHACHA20POLY1305))
		p->c->mesh.cipher = CIPHER_DEFAULT;
	else
		return fail(p, key, "\"%s\" is not a cipher (" VEIL_CIPHER_AES256GCM " or " VEIL_CIPHER_CHACHA20POLY1305 ")",
			    shown(v, s));
	return 0;
}

/* A duration: a number and s, m, h, d or w (seconds without one): 10 s to 10 years. */
static int v_rotate_every(struct parser *p, const char *key, char *v)
{
	static const char units[] = "smhdw";
	static const uint64_t seconds[] = { 1, 60, 3600, 86400, 604800 };
	size_t n = strlen(v);
	uint64_t mult = 1;
	uint32_t num;
	char s[48], digits[24];
	const char *u;

	if (n && !isdigit((unsigned char)v[n - 1])) {
		u = strchr(units, v[n - 1]);
		if (!u)
			goto bad;
		mult = seconds[u - units];
		n--;
	}
	if (n == 0 || n >= sizeof(digits))
		goto bad;
	memcpy(digits, v, n);
	digits[n] = '\0';
	if (!parse_num(digits, UINT32_MAX, false, &num) || (uint64_t)num * mult < 10 ||
	    (uint64_t)num * mult > 10ULL * 365 * 86400)
		goto bad;
	p->c->mesh.rotate_every = (uint64_t)num * mult;
	p->c->mesh.rotate_every_line = p->line;
	return 0;
bad:
	return fail(p, key, "\"%s\" is not a duration from 10s to 10 years (e.g. 30d, 12h, 90m)",
		    shown(v, s));
}

static const struct key_def keys[] = {
	{ "PrivateKey", SEC_INTERFACE, false, false, v_private_key },
	{ "PrivateKeyFile", SEC_INTERFACE, false, false, v_private_key_file },
	{ "PrivateKeyCredential", SEC_INTERFACE, false, false, v_private_key_credential },
	{ "PrivateKeyCommand", SEC_INTERFACE, false, true, v_private_key_command },
	{ "ListenPort", SEC_INTERFACE, false, false, v_listen_port },
	{ "FwMark", SEC_INTERFACE, false, false, v_fwmark },
	{ "Address", SEC_INTERFACE, true, false, v_address },
	{ "MTU", SEC_INTERFACE, false, false, v_mtu },
	{ "Table", SEC_INTERFACE, false, false, v_table },
	{ "DNS", SEC_INTERFACE, true, false, v_dns },
	{ "PreUp", SEC_INTERFACE, true, true, v_pre_up },
	{ "PostUp", SEC_INTERFACE, true, true, v_post_up },
	{ "PreDown", SEC_INTERFACE, true, true, v_pre_down },
	{ "PostDown", SEC_INTERFACE, true, true, v_post_down },
	{ "SaveConfig", SEC_INTERFACE, false, false, v_save_config },
	{ "MetricsListen", SEC_INTERFACE, false, false, v_metrics_listen },
	{ "PublicKey", SEC_PEER, false, false, v_public_key },
	{ "PresharedKey", SEC_PEER, false, false, v_psk },
	{ "PresharedKeyFile", SEC_PEER, false, false, v_psk_file },
	{ "PresharedKeyCredential", SEC_PEER, false, false, v_psk_credential },
	{ "AllowedIPs", SEC_PEER, true, false, v_allowed_ips },
	{ "Endpoint", SEC_PEER, false, false, v_endpoint },
	{ "PersistentKeepalive", SEC_PEER, false, false, v_keepalive },
	{ "Cipher", SEC_PEER, false, false, v_cipher },
	{ "Registry", SEC_MESH, true, false, v_registry },
	{ "RegistryCA", SEC_MESH, false, false, v_registry_ca },
	{ "RegistryCert", SEC_MESH, false, false, v_registry_cert },
	{ "RegistryKey", SEC_MESH, false, false, v_registry_key },
	{ "RegistryUser", SEC_MESH, false, false, v_registry_user },
	{ "RegistryPasswordFile", SEC_MESH, false, false, v_password_file },
	{ "RegistryPasswordCredential", SEC_MESH, false, false, v_password_credential },
	{ "RegistryPasswordCommand", SEC_MESH, false, true, v_password_command },
	{ "Network", SEC_MESH, false, false, v_network },
	{ "Node", SEC_MESH, false, false, v_node },
	{ "Endpoint", SEC_MESH, false, false, v_mesh_endpoint },
	{ "Advertise", SEC_MESH, true, false, v_advertise },
	{ "PersistentKeepalive", SEC_MESH, false, false, v_mesh_keepalive },
	{ "Cipher", SEC_MESH, false, false, v_mesh_cipher },
	{ "RotateEvery", SEC_MESH, false, false, v_rotate_every },
};

/* p->seen has one bit per entry of keys[]. */
_Static_assert(sizeof(keys) / sizeof(keys[0]) <= 64, "too many keys for parser.seen");

static const char *section_name(enum section sec)
{
	return sec == SEC_PEER ? "Peer" : sec == SEC_MESH ? "Mesh" : "Interface";
}

/* ---- lines and sections ------------------------------------------------------------------------ */

/* The first required [Mesh] key that is missing, or NULL. */
static const char *mesh_missing(const struct conf_mesh *m)
{
	if (!m->n_registry)
		return "Registry";
	if (!m->ca)
		return "RegistryCA";
	if (!m->cert)
		return "RegistryCert";
	if (!m->key)
		return "RegistryKey";
	if (!m->user)
		return "RegistryUser";
	if (m->password_source == KEYSRC_NONE)
		return "RegistryPasswordFile (or RegistryPasswordCredential, RegistryPasswordCommand)";
	return NULL;
}

/*
 * A section ends: a peer must have named its key (an all-zero key is
 * refused), and [Mesh] must say where the registry is and who this node is.
 */
static int end_section(struct parser *p)
{
	if (p->sec == SEC_MESH && mesh_missing(&p->c->mesh)) {
		unsigned int line = p->line;
		int ret;

		p->line = p->c->mesh.line;
		ret = fail(p, "[Mesh]", "no %s", mesh_missing(&p->c->mesh));
		p->line = line;
		return ret;
	}
	if (p->sec == SEC_PEER && sodium_is_zero(peer_now(p)->public_key, 32)) {
		unsigned int line = p->line;
		int ret;

		p->line = peer_now(p)->line;
		ret = fail(p, "[Peer]", "no PublicKey");
		p->line = line;
		return ret;
	}
	return 0;
}

/* s is the header without its comment, trimmed: "[Interface]" or "[Peer]". */
static int section(struct parser *p, char *s)
{
	struct conf_peer peer;
	char shownbuf[48];
	int ret = end_section(p);

	if (ret)
		return ret;
	p->seen = 0;
	if (same_word(s, "[Interface]")) {
		if (p->seen_interface)
			return fail(p, "[Interface]", "a second [Interface] section");
		p->seen_interface = true;
		p->sec = SEC_INTERFACE;
		return 0;
	}
	if (same_word(s, "[Peer]")) {
		memset(&peer, 0, sizeof(peer));
		peer.line = p->line;
		p->sec = SEC_PEER;
		return append((void **)&p->c->peers, &p->c->n_peers, sizeof(peer), &peer);
	}
	if (same_word(s, "[Mesh]")) {
		if (p->seen_mesh)
			return fail(p, "[Mesh]", "a second [Mesh] section (one mesh per interface)");
		p->seen_mesh = true;
		p->c->mesh.line = p->line;
		p->sec = SEC_MESH;
		return 0;
	}
	return fail(p, shown(s, shownbuf), "unknown section ([Interface], [Peer] or [Mesh])");
}

/*
 * A key in the section sec, or (when no section has it) in any section, for
 * "belongs in" messages: Endpoint, PersistentKeepalive and Cipher exist in
 * both [Peer] and [Mesh].
 */
static const struct key_def *find_key(const char *name, enum section sec, size_t *index)
{
	const struct key_def *any = NULL;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!same_word(keys[i].name, name))
			continue;
		if (keys[i].sec == sec || !any) {
			*index = i;
			any = &keys[i];
		}
		if (keys[i].sec == sec)
			break;
	}
	return any;
}

/*
 * Whether an unknown key may be quoted. A key pasted alone on a line ends
 * in '=', so its first 43 characters would look like a key name: only
 * short words of letters, digits and a few marks are shown.
 */
static bool quotable_key(const char *key)
{
	size_t n = strlen(key), i;

	if (n == 0 || n > 24)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)key[i]) && !strchr(" _-.", key[i]))
			return false;
	return true;
}

/* One "Key = Value" line, trimmed. The value of a command key keeps its '#'. */
static int assignment(struct parser *p, char *line)
{
	char *eq = strchr(line, '='), *hash = strchr(line, '#'), *key, *value;
	const struct key_def *def;
	size_t index;

	if (!eq || (hash && hash < eq))
		return fail(p, NULL, "not a Key = Value line"); /* not quoted: it may be a key */
	*eq = '\0';
	key = trim(line);
	def = find_key(key, p->sec, &index);
	if (!def)
		return quotable_key(key) ? fail(p, key, "unknown key") : fail(p, NULL, "unknown key");
	if (p->sec == SEC_NONE)
		return fail(p, key, "outside a section ([Interface], [Peer] or [Mesh] first)");
	if (def->sec != p->sec)
		return fail(p, key, "belongs in [%s], not here", section_name(def->sec));
	value = eq + 1;
	if (!def->command && (hash = strchr(value, '#')))
		*hash = '\0';
	value = trim(value);
	if (!*value)
		return fail(p, key, "no value");
	if (!def->multi && (p->seen & (UINT64_C(1) << index)))
		return fail(p, key, "given twice in one section");
	p->seen |= UINT64_C(1) << index;
	return def->parse(p, key, value);
}

static int one_line(struct parser *p, char *line)
{
	char *s = trim(line), *hash;

	if (!*s || *s == '#')
		return 0;
	if (*s != '[')
		return assignment(p, s);
	hash = strchr(s, '#');
	if (hash)
		*hash = '\0';
	return section(p, trim(s));
}

int conf_ifname_of(const char *path, char out[static 16])
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".conf"))
		n -= 5;
	if (n == 0 || n > 15)
		return -EINVAL;
	memcpy(out, base, n);
	out[n] = '\0';
	return conf_valid_ifname(out) ? 0 : -EINVAL;
}

static int name_from_path(struct conf *c, const char *path, struct conf_error *err)
{
	const char *base = strrchr(path, '/');
	char name[16];
	size_t n;

	if (conf_ifname_of(path, name)) {
		base = base ? base + 1 : path;
		n = strlen(base);
		if (n > 5 && !strcmp(base + n - 5, ".conf"))
			n -= 5;
		set_error(err, "%s: \"%.*s\" is not a valid interface name "
			  "(1-15 characters of A-Z a-z 0-9 _ = + . -)", path, (int)(n > 32 ? 32 : n), base);
		return -EINVAL;
	}
	c->name = strdup(name);
	return c->name ? 0 : -ENOMEM;
}

/* A line's length without the CR of a CRLF end. */
static size_t without_cr(const char *s, size_t n)
{
	return n && s[n - 1] == '\r' ? n - 1 : n;
}

/* Cut text into lines (LF or CRLF) and parse each; the line buffer is wiped after. */
static int parse_lines(struct parser *p, const char *text, size_t len)
{
	char line[CONF_LINE_MAX + 2];
	size_t pos = 0, longest = 0;
	int ret = 0;

	while (!ret && pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - text - pos) : len - pos;
		size_t next = pos + n + (nl ? 1 : 0);

		p->line++;
		n = without_cr(text + pos, n);
		if (n > CONF_LINE_MAX)
			ret = fail(p, NULL, "line longer than %d bytes", CONF_LINE_MAX);
		else if (memchr(text + pos, '\0', n))
			ret = fail(p, NULL, "a NUL byte in the line");
		if (!ret) {
			memcpy(line, text + pos, n);
			line[n] = '\0';
			longest = n > longest ? n : longest;
			ret = one_line(p, line);
		}
		pos = next;
	}
	sodium_memzero(line, longest + 1); /* what a line held: keys, perhaps */
	if (!ret)
		ret = end_section(p);
	if (!ret)
		ret = mtu_fits_ipv6(p);
	/*
	 * A file of [Mesh] alone serves an administrator's veilctl mesh
	 * commands; a node's says which network and which node it is.
	 */
	if (!ret && !p->seen_interface && !p->seen_mesh) {
		set_error(p->err, "%s: no [Interface] section", p->path);
		ret = -EINVAL;
	}
	/* Scheduled rotation makes the key itself: only a key file can take it. */
	if (!ret && p->c->mesh.rotate_every && p->c->private_key.source != KEYSRC_FILE) {
		p->line = p->c->mesh.rotate_every_line;
		ret = fail(p, "RotateEvery", "needs PrivateKeyFile (the agent writes each new key there); "
			   "with a credential or a command, rotate with veilctl mesh rotate");
	}
	if (!ret && p->seen_interface && p->seen_mesh && (!p->c->mesh.network || !p->c->mesh.node)) {
		p->line = p->c->mesh.line;
		ret = fail(p, "[Mesh]", "no %s (this node's network and its name in it)",
			   !p->c->mesh.network ? "Network" : "Node");
	}
	p->c->has_interface = p->seen_interface;
	return ret;
}

int conf_parse(struct conf *c, const char *path, const char *text, size_t len, struct conf_error *err)
{
	struct parser p = { .c = c, .err = err, .path = path };
	int ret;

	memset(c, 0, sizeof(*c));
	err->msg[0] = '\0';
	if (len > (size_t)CONF_FILE_MAX) {
		set_error(err, "%s: larger than %ld bytes", path, CONF_FILE_MAX);
		return -EFBIG;
	}
	c->path = strdup(path);
	if (!c->path)
		ret = -ENOMEM;
	else
		ret = name_from_path(c, path, err);
	if (!ret)
		ret = parse_lines(&p, text, len);
	if (ret == -ENOMEM && !err->msg[0])
		set_error(err, "%s: out of memory", path);
	if (ret)
		conf_free(c);
	return ret;
}

/* Read what fstat promised, and notice a file that grew since: cap is one more. */
static int read_whole(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len < cap) {
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*len += (size_t)n;
	}
	return -EFBIG;
}

/* The file is read into locked memory (it may hold keys) and wiped after parsing. */
static int load_fd(struct conf *c, const char *path, int fd, size_t size, struct conf_error *err)
{
	char *text = sodium_malloc(size + 1);
	size_t len;
	int ret;

	if (!text) {
		set_error(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	ret = read_whole(fd, text, size + 1, &len);
	if (ret)
		set_error(err, "%s: %s", path, ret == -EFBIG ? "it grew while being read" : strerror(-ret));
	else
		ret = conf_parse(c, path, text, len, err);
	sodium_free(text);
	return ret;
}

int conf_load(struct conf *c, const char *path, struct conf_error *err)
{
	struct stat st;
	int fd, ret;

	memset(c, 0, sizeof(*c));
	err->msg[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		set_error(err, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_error(err, "%s: not a regular file", path);
		ret = -EINVAL;
	} else if (st.st_size > CONF_FILE_MAX) {
		set_error(err, "%s: larger than %ld bytes", path, CONF_FILE_MAX);
		ret = -EFBIG;
	} else {
		ret = load_fd(c, path, fd, (size_t)st.st_size, err);
		c->file_known = ret == 0;
		c->file_mode = st.st_mode & 07777;
		c->file_uid = st.st_uid;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- endpoints ---------------------------------------------------------------------------------- */

/* The first address getaddrinfo gives, whichever family, as wg(8) takes it. */
static int resolve_one(struct conf *c, struct conf_peer *peer, struct conf_error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai;
	char host[NI_MAXHOST];
	const char *h, *port;
	size_t hostlen;
	int ret;

	if (!split_endpoint(peer->endpoint, &h, &hostlen, &port))
		return -EINVAL; /* conf_parse let it through: cannot happen */
	memcpy(host, h, hostlen);
	host[hostlen] = '\0';
	ret = getaddrinfo(host, port, &hints, &ai);
	if (ret) {
		set_error(err, "%.300s:%u: Endpoint: cannot resolve \"%.200s\": %s", c->path,
			  peer->endpoint_line, host, gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	if (ai->ai_addrlen <= sizeof(peer->endpoint_addr)) {
		memcpy(&peer->endpoint_addr, ai->ai_addr, ai->ai_addrlen);
		peer->endpoint_len = ai->ai_addrlen;
	}
	freeaddrinfo(ai);
	return 0;
}

int conf_resolve_endpoints(struct conf *c, struct conf_error *err)
{
	size_t i;
	int ret;

	for (i = 0; i < c->n_peers; i++) {
		if (!c->peers[i].endpoint)
			continue;
		ret = resolve_one(c, &c->peers[i], err);
		if (ret)
			return ret;
	}
	return 0;
}

bool conf_prefix_clear_host_bits(struct conf_prefix *pfx)
{
	size_t len = pfx->family == AF_INET ? 4 : 16, i;
	bool set = false;

	for (i = 0; i < len; i++) {
		unsigned int bits = pfx->cidr > i * 8 ? pfx->cidr - (unsigned int)i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);

		set = set || (pfx->addr[i] & (uint8_t)~mask);
		pfx->addr[i] &= mask;
	}
	return set;
}

void conf_path(const char *arg, char *out, size_t len)
{
	size_t n = strlen(arg);

	if (strchr(arg, '/') || (n > 5 && !strcmp(arg + n - 5, ".conf")))
		snprintf(out, len, "%s", arg);
	else
		snprintf(out, len, "%s/%s.conf", VEIL_CONF_DIR, arg);
}

static int write_whole(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory holding path, synced so that a rename in it survives a crash. */
static void sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int conf_replace_file(const char *path, const void *data, size_t len, const struct stat *like)
{
	char tmp[PATH_MAX + 8];
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Owner first: a chown clears set-id bits a chmod gave. */
	if (like && (fchown(fd, like->st_uid, like->st_gid) < 0 ||
		     fchmod(fd, like->st_mode & 07777) < 0))
		ret = -errno;
	if (!ret)
		ret = write_whole(fd, data, len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -EIO;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	else
		sync_dir_of(path);
	return ret;
}
