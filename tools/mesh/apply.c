// SPDX-License-Identifier: MIT
/*
 * Applying the mesh to veild and to the routing table (apply.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "apply.h"
#include "nl.h"

static const struct ctl_peer *running_peer(const struct ctl_device *d, const uint8_t key[static 32])
{
	size_t i;

	for (i = 0; i < d->n_peers; i++)
		if (!sodium_memcmp(d->peers[i].public_key, key, 32))
			return &d->peers[i];
	return NULL;
}

/* veild's keys for a peer, where they differ from what runs (all of them for a new peer). */
static void put_extensions(struct sbuf *b, const struct apply_peer *w, const struct ctl_peer *r)
{
	const char *name = w->endpoint_name ? w->endpoint_name : "";
	bool cipher = !r || !r->has_cipher || r->cipher != w->peer.cipher;
	bool ep_name = !r || strcmp(r->endpoint_name ? r->endpoint_name : "", name) != 0;
	char hex[65];

	if (!cipher && !ep_name)
		return;
	sodium_bin2hex(hex, sizeof(hex), w->peer.public_key, 32);
	sbuf_printf(b, "public_key=%s\nupdate_only=true\n", hex);
	if (cipher)
		sbuf_printf(b, "cipher=%s\n",
			    w->peer.cipher == CIPHER_AES256GCM ? "aes256gcm" : "chacha20poly1305");
	if (ep_name)
		sbuf_printf(b, "endpoint_name=%s\n", name);
}

int apply_peers(const char *ifname, const struct ctl_device *running, const struct apply_peer *want,
		size_t n, const uint8_t (*remove)[32], size_t n_remove, char *why, size_t whylen)
{
	struct conf_peer *peers = n ? calloc(n, sizeof(*peers)) : NULL;
	struct sbuf req = { 0 };
	size_t i;
	int ret = -ENOMEM;

	why[0] = '\0';
	if (n && !peers)
		goto out;
	for (i = 0; i < n; i++)
		peers[i] = want[i].peer;
	ret = ctl_build_sync_peers(peers, n, remove, n_remove, running, &req);
	if (ret)
		goto out;
	for (i = 0; i < n; i++) {
		put_extensions(&req, &want[i], running_peer(running, want[i].peer.public_key));
		/*
		 * Turning a persistent keepalive on sends one at once, and with no
		 * session that is a handshake: the key that took over is greeted now,
		 * not when a packet happens to need it. Then the interval goes back.
		 */
		if (want[i].kick) {
			char hex[65];

			sodium_bin2hex(hex, sizeof(hex), want[i].peer.public_key, 32);
			sbuf_printf(&req, "public_key=%s\nupdate_only=true\npersistent_keepalive_interval=0\n"
				    "persistent_keepalive_interval=1\npersistent_keepalive_interval=%u\n", hex,
				    want[i].peer.persistent_keepalive);
		}
	}
	sbuf_printf(&req, "\n");
	ret = req.failed ? -ENOMEM : 0;
	/* "set=1\n\n": nothing to say. */
	if (!ret && req.len > 7)
		ret = ctl_set(ifname, &req, why, whylen);
out:
	sbuf_free(&req);
	free(peers);
	return ret;
}

static bool same_prefix(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return a->family == b->family && a->cidr == b->cidr && !memcmp(a->addr, b->addr, 16);
}

static bool holds(const struct conf_prefix *v, size_t n, const struct conf_prefix *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (same_prefix(&v[i], p))
			return true;
	return false;
}

static void prefix_text(const struct conf_prefix *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, p->cidr);
}

int apply_routes(struct nl *nl, unsigned int ifindex, uint32_t table, const struct conf_prefix *want,
		 size_t n_want, bool verify, struct conf_prefix **have, size_t *n_have, char *why,
		 size_t whylen)
{
	struct conf_prefix *next = calloc(n_want + 1, sizeof(*next));
	char ps[64];
	size_t i, n_next = 0;
	int ret = 0, r;

	why[0] = '\0';
	if (!next)
		return -ENOMEM;
	for (i = 0; i < *n_have; i++) {
		if (holds(want, n_want, &(*have)[i]))
			continue;
		r = nl_route(nl, false, ifindex, table, &(*have)[i]);
		if (r && r != -ESRCH && r != -ENOENT && !ret) {
			prefix_text(&(*have)[i], ps, sizeof(ps));
			snprintf(why, whylen, "cannot delete the route to %s: %s", ps, strerror(-r));
			ret = r;
		}
	}
	for (i = 0; i < n_want; i++) {
		if (want[i].cidr == 0 || holds(next, n_next, &want[i]))
			continue;
		/* Added before: there still (the caller forgets them all when the link changes). */
		r = !verify && holds(*have, *n_have, &want[i]) ? 0 : nl_route(nl, true, ifindex, table, &want[i]);
		if (r == 0 || r == -EEXIST) {
			next[n_next++] = want[i];
		} else if (!ret) {
			prefix_text(&want[i], ps, sizeof(ps));
			snprintf(why, whylen, "cannot add the route to %s: %s", ps, strerror(-r));
			ret = r;
		}
	}
	free(*have);
	*have = next;
	*n_have = n_next;
	return ret;
}
