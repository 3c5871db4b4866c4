// SPDX-License-Identifier: MIT
/*
 * The control socket's backend (uapi.h's uapi_backend_ops): one handler
 * per key of a set request, be_get for a get, and be_set_end once a set is
 * applied. Each handler calls the engine, marks the peers whose timers
 * must be re-armed, and writes an audit line for a real change only: a
 * digest of each touched peer's allowed IPs, taken before and after a set,
 * tells a real change from a reload. Also the metrics listener's wiring
 * (src/httpd.c serves it). The connections themselves are src/control.c's.
 */
#include "daemon_int.h"

#include <errno.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sodium.h>

#include "httpd.h"
#include "log.h"
#include "uapi.h"

/* ---- keys, port, fwmark, peers ------------------------------------------- */

static int set_key(struct daemon *d, const uint8_t key[32], bool rotate)
{
	const struct noise_static_identity *id = wg_device_identity(d->wg);
	uint8_t before[32];
	struct wg_peer *p;
	bool had = id->has_identity;
	int err;

	memcpy(before, id->public_key, 32);
	err = rotate ? wg_device_rotate_private_key(d->wg, key) : wg_device_set_private_key(d->wg, key);
	/* The identity changes behind our const pointer: fetch it again. */
	id = wg_device_identity(d->wg);
	for (p = wg_device_peer_first(d->wg); p; p = wg_device_peer_next(p))
		peers__mark_dirty(p->user);
	if (!err && (had != id->has_identity || sodium_memcmp(before, id->public_key, 32)))
		audit__line(d, rotate ? "private_key_rotated" : id->has_identity ? "private_key_set" : "private_key_removed",
		      NULL, NULL);
	return err;
}

static int be_set_private_key(void *ctx, const uint8_t key[32])
{
	return set_key(ctx, key, false);
}

/* veil's own: the peers' sessions outlive the old key (a rotation). */
static int be_rotate_private_key(void *ctx, const uint8_t key[32])
{
	return set_key(ctx, key, true);
}

static int be_set_listen_port(void *ctx, uint16_t port)
{
	struct daemon *d = ctx;

	if (port && port == d->udp.port)
		return 0;
	if (datapath__listen_on(d, port))
		return -EADDRINUSE;
	audit__line(d, "listen_port_set", NULL, "port=%u", d->udp.port);
	return 0;
}

static int be_set_fwmark(void *ctx, uint32_t mark)
{
	struct daemon *d = ctx;

	if (mark == d->udp.fwmark)
		return 0;
	if (udp_set_fwmark(&d->udp, mark))
		return -EADDRINUSE;
	audit__line(d, "fwmark_set", NULL, "fwmark=0x%x", mark);
	return 0;
}

static int be_replace_peers(void *ctx)
{
	struct daemon *d = ctx;

	if (wg_device_peer_count(d->wg))
		audit__line(d, "peers_replaced", NULL, "removed=%zu", wg_device_peer_count(d->wg));
	wg_device_peers_clear(d->wg);
	return 0;
}

static int be_peer_select(void *ctx, const uint8_t pub[32], bool create, void **out)
{
	struct daemon *d = ctx;
	struct wg_peer *wp = wg_device_peer_lookup(d->wg, pub);
	struct vpeer *vp;
	int err;

	*out = wp;
	if (wp || !create)
		return 0;
	vp = slab_alloc(&d->vpeer_cache);
	if (!vp)
		return -ENOMEM;
	err = wg_device_peer_add(d->wg, pub, &wp);
	if (err == -EEXIST) {
		/*
		 * Our own public key: its lines are accepted and ignored, as the
		 * kernel's set_peer does (drivers/net/wireguard/netlink.c).
		 */
		slab_free(&d->vpeer_cache, vp);
		return 0;
	}
	if (err) {
		slab_free(&d->vpeer_cache, vp);
		if (err == -ENOSPC)
			log_error("%s: peer refused: the interface holds %u peers, the most it takes "
				  "(errno=%d)", d->cfg->ifname, WG_PEERS_MAX, -ENOSPC);
		return err;
	}
	vp->d = d;
	vp->wp = wp;
	wp->user = vp;
	uv_timer_init(&d->loop, &vp->timer);
	*out = wp;
	audit__line(d, "peer_added", pub, NULL);
	return 0;
}

static int be_peer_remove(void *ctx, void *peer)
{
	struct daemon *d = ctx;

	wg_device_peer_remove(d->wg, peer);
	return 0;
}

static int be_peer_psk(void *ctx, void *peer, const uint8_t psk[32])
{
	struct wg_peer *wp = peer;
	struct wg_peer_info old;
	bool same;

	wg_peer_get_info(wp, &old);
	same = old.has_psk ? sodium_memcmp(old.preshared_key, psk, 32) == 0 : sodium_is_zero(psk, 32);
	sodium_memzero(&old, sizeof(old));
	wg_peer_set_psk(wp, psk);
	if (!same)
		audit__line(ctx, wp->has_psk ? "psk_changed" : "psk_removed", wp->public_key, NULL);
	return 0;
}

static int be_peer_endpoint(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len)
{
	struct wg_peer *wp = peer;
	struct wg_endpoint ep = { 0 };
	char buf[64];

	memcpy(&ep.addr, sa, len < sizeof(ep.addr) ? len : sizeof(ep.addr));
	if (!wp->has_endpoint || !wg_endpoint_equal_addr(&wp->endpoint, &ep)) {
		audit__endpoint_str(sa, buf, sizeof(buf));
		audit__line(ctx, "endpoint_set", wp->public_key, "endpoint=%s", buf);
	}
	wg_peer_set_endpoint(peer, sa, len);
	/* An address given by the operator replaces a name; veilctl sends the name after it. */
	free(((struct vpeer *)wp->user)->ep_name);
	((struct vpeer *)wp->user)->ep_name = NULL;
	peers__mark_dirty(wp->user);
	return 0;
}

static int be_peer_endpoint_name(void *ctx, void *peer, const char *name)
{
	struct wg_peer *wp = peer;
	struct vpeer *vp = wp->user;
	char *copy = NULL;

	if (*name && !resolver_name_valid(name))
		return -EINVAL;
	if (vp->ep_name ? !strcmp(vp->ep_name, name) : !*name)
		return 0; /* unchanged (every reload sends it): keep the lookup state */
	if (*name) {
		copy = strdup(name);
		if (!copy)
			return -ENOMEM;
	}
	free(vp->ep_name);
	vp->ep_name = copy;
	resolver_lookup_cancel(&vp->lookup);
	vp->resolved_at = 0;
	audit__line(ctx, "endpoint_name_set", wp->public_key, "name=%s", *name ? name : "-");
	return 0;
}

static int be_peer_cipher(void *ctx, void *peer, int cipher)
{
	struct daemon *d = ctx;
	struct wg_peer *wp = peer;
	enum noise_suite suite = cipher == UAPI_CIPHER_AES256GCM ? NOISE_SUITE_AES256GCM
								 : NOISE_SUITE_WIREGUARD;
	char fp[12];

	audit__fingerprint(wp->public_key, fp);
	if (suite == NOISE_SUITE_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
		log_error("%s: peer %s…: cipher aes256gcm refused: this CPU lacks the AES "
			  "instructions libsodium's AES-256-GCM needs", d->cfg->ifname, fp);
		return -EOPNOTSUPP;
	}
	if (!wg_peer_set_suite(wp, suite))
		return 0;
	/* Its sessions ended: the next packet starts a handshake under the new suite. */
	peers__mark_dirty(wp->user);
	log_info("%s: peer %s…: cipher %s; sessions under the old one ended", d->cfg->ifname, fp,
		 audit__suite_name(suite));
	audit__line(d, "cipher_set", wp->public_key, "cipher=%s", audit__suite_name(suite));
	return 0;
}

static int be_peer_keepalive(void *ctx, void *peer, uint16_t interval)
{
	struct daemon *d = ctx;
	struct wg_peer *wp = peer;

	if (interval != wp->persistent_keepalive)
		audit__line(d, "keepalive_set", wp->public_key, "interval=%u", interval);
	wg_peer_set_persistent_keepalive(wp, interval, now_of(d));
	peers__mark_dirty(wp->user);
	return 0;
}

/* ---- allowed IPs, and their digest --------------------------------------- */

/* An order-independent digest of a peer's allowed IPs, to log only real changes. */
static int digest_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	uint8_t *acc = ctx, in[18] = { 0 }, h[16];
	size_t i;

	in[0] = (uint8_t)family;
	in[1] = cidr;
	memcpy(in + 2, addr, family == AF_INET6 ? 16 : 4);
	crypto_generichash(h, sizeof(h), in, sizeof(in), NULL, 0);
	for (i = 0; i < sizeof(h); i++)
		acc[i] ^= h[i];
	return 0;
}

static void ips_digest(struct wg_peer *wp, uint8_t out[16])
{
	memset(out, 0, 16);
	allowedips_walk_owner(&wp->allowedips, digest_ip, out);
	out[0] ^= (uint8_t)wp->allowedips.count;
}

static void touch_ips(struct daemon *d, struct wg_peer *wp)
{
	struct vpeer *vp = wp->user;

	if (peers__on_list(&vp->ips))
		return;
	ips_digest(wp, vp->ips_before);
	peers__link_push(&d->ips_head, &vp->ips);
}

static int be_peer_replace_allowed_ips(void *ctx, void *peer)
{
	struct daemon *d = ctx;

	touch_ips(d, peer);
	allowedips_remove_owner(wg_device_allowedips(d->wg), &((struct wg_peer *)peer)->allowedips);
	return 0;
}

static int be_peer_add_allowed_ip(void *ctx, void *peer, int family, const uint8_t *addr,
				  uint8_t cidr)
{
	struct daemon *d = ctx;
	int err;

	touch_ips(d, peer);
	err = allowedips_insert(wg_device_allowedips(d->wg), family, addr, cidr,
				&((struct wg_peer *)peer)->allowedips);
	if (err == -ENOSPC)
		log_error("%s: allowed IP refused: the interface holds %u prefixes, the most it takes "
			  "(errno=%d)", d->cfg->ifname, ALLOWEDIPS_MAX, -ENOSPC);
	return err;
}

static int be_peer_remove_allowed_ip(void *ctx, void *peer, int family, const uint8_t *addr,
				     uint8_t cidr)
{
	struct daemon *d = ctx;
	int err;

	touch_ips(d, peer);
	err = allowedips_remove(wg_device_allowedips(d->wg), family, addr, cidr,
				&((struct wg_peer *)peer)->allowedips);
	/* Removing a prefix the peer does not hold is not an error for wg. */
	return err == -ENOENT ? 0 : err;
}

/* ---- get and metrics ----------------------------------------------------- */

struct walk_ctx {
	struct uapi_writer *w;
};

static int walk_ip(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct walk_ctx *wc = ctx;

	uapi_get_allowed_ip(wc->w, family, addr, cidr);
	return 0;
}

static int be_get(void *ctx, struct uapi_writer *w)
{
	struct daemon *d = ctx;
	const struct noise_static_identity *id = wg_device_identity(d->wg);
	struct wg_peer *p;

	uapi_get_device(w, id->has_identity ? id->private_key : NULL, d->udp.port, d->udp.fwmark);
	uapi_get_metrics_listen(w, d->metrics_len ? (const struct sockaddr *)&d->metrics_addr : NULL);
	for (p = wg_device_peer_first(d->wg); p; p = wg_device_peer_next(p)) {
		struct uapi_peer_info info;
		struct walk_ctx wc = { w };
		struct metrics_failure why;
		struct wg_peer_info core;

		memset(&info, 0, sizeof(info));
		memcpy(info.public_key, p->public_key, 32);
		wg_peer_get_info(p, &core);
		memcpy(info.preshared_key, core.preshared_key, 32);
		info.endpoint = p->has_endpoint ? &p->endpoint.addr.sa : NULL;
		info.last_handshake_sec = p->last_handshake_wall / NSEC_PER_SEC;
		info.last_handshake_nsec = (uint32_t)(p->last_handshake_wall % NSEC_PER_SEC);
		info.rx_bytes = p->rx_bytes;
		info.tx_bytes = p->tx_bytes;
		info.persistent_keepalive = p->persistent_keepalive;
		info.cipher = core.suite == NOISE_SUITE_AES256GCM ? UAPI_CIPHER_AES256GCM
								  : UAPI_CIPHER_CHACHA20POLY1305;
		info.endpoint_name = ((struct vpeer *)p->user)->ep_name;
		/* Refused handshakes, for an operator without syslog (veil_get=1 only). */
		info.handshake_failures = p->handshake_failures;
		info.last_failure_sec = p->last_failure_wall / NSEC_PER_SEC;
		if (p->last_failure_wall) {
			metrics_describe_failure(p, &why);
			info.last_failure = why.text;
		}
		uapi_get_peer(w, &info);
		sodium_memzero(info.preshared_key, sizeof(info.preshared_key));
		sodium_memzero(core.preshared_key, sizeof(core.preshared_key));
		allowedips_walk_owner(&p->allowedips, walk_ip, &wc);
	}
	return 0;
}

static int be_metrics(void *ctx, struct uapi_writer *w)
{
	struct daemon *d = ctx;

	metrics_write(w, d->cfg->ifname, d->wg, &d->counters, now_of(d));
	return 0;
}

/* ---- the metrics listener ------------------------------------------------ */

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
}

static int render_metrics(void *ctx, struct uapi_buf *out)
{
	return uapi_render(out, be_metrics, ctx);
}

static uint16_t port_of(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET ? ((const struct sockaddr_in *)(const void *)sa)->sin_port
					: ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port;
}

/*
 * The listener for sa, opened before the old one closes: a refused address
 * (not on this host, a port in use) leaves the old listener serving. Only
 * when the old one holds the very port (another address of the host, or
 * the wildcard) does it close first, and it is opened again if the new one
 * still cannot be.
 */
static int open_listener(struct daemon *d, const struct sockaddr *sa, socklen_t len,
			 struct httpd **out)
{
	const struct sockaddr *old = (const struct sockaddr *)&d->metrics_addr;
	int err = httpd_start(&d->loop, sa, len, render_metrics, d, out);

	if (err != -EADDRINUSE || !d->httpd || port_of(old) != port_of(sa))
		return err;
	httpd_stop(d->httpd);
	d->httpd = NULL;
	err = httpd_start(&d->loop, sa, len, render_metrics, d, out);
	if (err && httpd_start(&d->loop, old, d->metrics_len, render_metrics, d, &d->httpd)) {
		log_error("%s: the metrics listener is gone: its old address could not be opened again",
			  d->cfg->ifname);
		d->metrics_len = 0;
	}
	return err;
}

static int be_set_metrics_listen(void *ctx, const struct sockaddr *sa, socklen_t len)
{
	struct daemon *d = ctx;
	struct httpd *h = NULL;
	char where[64] = "off";
	int err;

	if (len == d->metrics_len && (!len || !memcmp(&d->metrics_addr, sa, len)))
		return 0; /* as it is (every reload says it again) */
	if (sa) {
		audit__endpoint_str(sa, where, sizeof(where));
		if (port_of(sa) == 0)
			return -EINVAL; /* a scraper must know where to come */
		err = open_listener(d, sa, len, &h);
		if (err) {
			log_error("%s: cannot serve metrics on %s: %s%s", d->cfg->ifname, where,
				  strerror(-err), d->httpd ? " (the listener before it goes on)" : "");
			return err;
		}
	}
	httpd_stop(d->httpd);
	d->httpd = h;
	d->metrics_len = 0;
	if (sa) {
		memcpy(&d->metrics_addr, sa, len);
		d->metrics_len = len;
		log_info("%s: serving metrics on http://%s/metrics", d->cfg->ifname, where);
		if (!is_loopback(sa))
			log_error("%s: WARNING: metrics on %s name every peer's public key to anyone "
				  "who can reach it; prefer a loopback address", d->cfg->ifname, where);
	}
	audit__line(d, "metrics_listen_set", NULL, "listen=%s", where);
	return 0;
}

/* ---- the end of a set ---------------------------------------------------- */

static void be_set_end(void *ctx, int err)
{
	struct daemon *d = ctx;
	struct link *l;
	uint8_t after[16];

	(void)err;
	while ((l = peers__link_pop(&d->ips_head))) {
		struct vpeer *vp = container_of(l, struct vpeer, ips);

		ips_digest(vp->wp, after);
		if (memcmp(after, vp->ips_before, sizeof(after)) != 0)
			audit__line(d, "allowed_ips_changed", vp->wp->public_key, "count=%zu",
			      vp->wp->allowedips.count);
	}
	peers__finish_batch(d);
}

const struct uapi_backend_ops uapi_ops = {
	.set_private_key = be_set_private_key,
	.rotate_private_key = be_rotate_private_key,
	.set_listen_port = be_set_listen_port,
	.set_fwmark = be_set_fwmark,
	.replace_peers = be_replace_peers,
	.peer_select = be_peer_select,
	.peer_remove = be_peer_remove,
	.peer_set_preshared_key = be_peer_psk,
	.peer_set_endpoint = be_peer_endpoint,
	.peer_set_endpoint_name = be_peer_endpoint_name,
	.peer_set_cipher = be_peer_cipher,
	.metrics = be_metrics,
	.set_metrics_listen = be_set_metrics_listen,
	.peer_set_keepalive = be_peer_keepalive,
	.peer_replace_allowed_ips = be_peer_replace_allowed_ips,
	.peer_add_allowed_ip = be_peer_add_allowed_ip,
	.peer_remove_allowed_ip = be_peer_remove_allowed_ip,
	.set_end = be_set_end,
	.get = be_get,
};
