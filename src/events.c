// SPDX-License-Identifier: MIT
/*
 * What the engine reports (device.h's event upcall): a line in the log, an
 * audit line, and what an event sets off, chiefly the look-up of a peer's
 * endpoint host name again when handshakes to it go unanswered (the
 * resolver child does the look-ups, src/resolver.c; its replies come back
 * here). Also the key log (VEIL_KEYLOG_FILE) for Wireshark.
 */
#include "daemon_int.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

/* ---- endpoint host names, looked up again by the resolver child ---------- */

/* Ask for vp's host name again, unless asked lately or a lookup is out. */
static void resolve_again(struct vpeer *vp)
{
	struct daemon *d = vp->d;
	struct resolver_request rq = { 0 };
	uint64_t now = now_of(d).mono;

	if (!vp->wp || !vp->ep_name || vp->lookup.out || d->resolver_fd < 0)
		return;
	if (!resolver_may_ask(vp->resolved_at, now))
		return;
	rq.gen = ++d->resolve_gen;
	memcpy(rq.public_key, vp->wp->public_key, sizeof(rq.public_key));
	snprintf(rq.name, sizeof(rq.name), "%s", vp->ep_name);
	/* A full socket buffer means many lookups out already: this one waits for the next failure. */
	if (send(d->resolver_fd, &rq, sizeof(rq), MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(rq))
		return;
	resolver_lookup_sent(&vp->lookup, rq.gen);
	vp->resolved_at = now;
	log_debug("%s: looking up %s again", d->cfg->ifname, vp->ep_name);
}

/*
 * An initiation went out (a retry, or a fresh one for new traffic): after
 * RESOLVER_AFTER_SEC without an answer, ask for the name again.
 */
static void note_initiation(struct vpeer *vp)
{
	uint64_t now = now_of(vp->d).mono;

	if (!vp->unanswered_since)
		vp->unanswered_since = now;
	else if (resolver_retry_due(vp->unanswered_since, now))
		resolve_again(vp);
}

/* A reply: a changed address becomes the peer's endpoint, as if the operator had set it. */
static void resolved(struct daemon *d, const struct resolver_reply *rp)
{
	struct wg_peer *wp = wg_device_peer_lookup(d->wg, rp->public_key);
	struct vpeer *vp = wp ? wp->user : NULL;
	struct wg_endpoint ep = { 0 };
	char fp[12], was[64] = "none", now[64];

	/* Only the answer to the lookup out: the peer, its name, the request may have changed. */
	if (!vp || !vp->ep_name || !resolver_lookup_take(&vp->lookup, rp))
		return;
	audit__fingerprint(wp->public_key, fp);
	if (rp->err) {
		log_info("%s: peer %s…: cannot look up %s: %s", d->cfg->ifname, fp, vp->ep_name,
			 gai_strerror(rp->err));
		return;
	}
	if (rp->len > sizeof(ep.addr) ||
	    (rp->addr.ss_family != AF_INET && rp->addr.ss_family != AF_INET6))
		return;
	memcpy(&ep.addr, &rp->addr, rp->len);
	if (wp->has_endpoint && wg_endpoint_equal_addr(&wp->endpoint, &ep))
		return;
	if (wp->has_endpoint)
		audit__endpoint_str((const struct sockaddr *)&wp->endpoint.addr, was, sizeof(was));
	audit__endpoint_str((const struct sockaddr *)&rp->addr, now, sizeof(now));
	wg_peer_set_endpoint(wp, (const struct sockaddr *)&rp->addr, rp->len);
	peers__mark_dirty(vp);
	log_info("%s: peer %s…: %s now resolves to %s (was %s)", d->cfg->ifname, fp, vp->ep_name,
		 now, was);
	audit__line(d, "endpoint_resolved", wp->public_key, "name=%s endpoint=%s was=%s", vp->ep_name,
	      now, was);
}

static void resolver_cb(uv_poll_t *h, int status, int events)
{
	struct daemon *d = container_of(h, struct daemon, resolver_poll);
	struct resolver_reply rp;
	unsigned int i;

	(void)events;
	for (i = 0; status == 0 && i < BATCH; i++) {
		ssize_t n = recv(d->resolver_fd, &rp, sizeof(rp), MSG_DONTWAIT);

		if (n == (ssize_t)sizeof(rp)) {
			resolved(d, &rp);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		status = -1; /* EOF or an error: the child is gone */
	}
	if (status) {
		log_error("%s: the resolver process ended: endpoint host names will not be looked "
			  "up again", d->cfg->ifname);
		/* uv_close stops the watch at once; the descriptor may go right after. */
		uv_close((uv_handle_t *)h, NULL);
		close(d->resolver_fd);
		d->resolver_fd = -1;
	}
	peers__finish_batch(d);
}

/*
 * Fork the resolver while no key exists yet and before the sandbox (which
 * forbids fork). Without it veild still works; names are just not looked
 * up again.
 */
void events__start_resolver(struct daemon *d)
{
	int err = resolver_start(&d->resolver_fd, &d->resolver_pid);

	if (!err && (uv_poll_init(&d->loop, &d->resolver_poll, d->resolver_fd) ||
		     uv_poll_start(&d->resolver_poll, UV_READABLE, resolver_cb)))
		err = -EIO;
	if (err) {
		log_error("%s: cannot start the resolver process (%s): endpoint host names will "
			  "not be looked up again", d->cfg->ifname, strerror(-err));
		if (d->resolver_fd >= 0)
			close(d->resolver_fd);
		d->resolver_fd = -1;
	}
}

/* ---- the engine's events ------------------------------------------------- */

void events__op_event(void *ctx, struct wg_peer *peer, const struct wg_event_info *e)
{
	struct daemon *d = ctx;
	char fp[12] = "-";

	/* Only these two events can come without a peer (device.h). */
	assert(peer || e->ev == WG_EVENT_UNDER_LOAD || e->ev == WG_EVENT_HANDSHAKE_FAILED);
	if (peer) {
		audit__fingerprint(peer->public_key, fp);
		peers__mark_dirty(peer->user);
	}
	switch (e->ev) {
	case WG_EVENT_HANDSHAKE_SENT:
		log_debug("%s: peer %s…: sending handshake initiation%s", d->cfg->ifname, fp,
			  e->retry ? " (retry)" : "");
		note_initiation(peer->user);
		break;
	case WG_EVENT_HANDSHAKE_COMPLETE:
		log_info("%s: peer %s…: handshake complete (%s)", d->cfg->ifname, fp,
			 e->initiator ? "initiator" : "responder");
		((struct vpeer *)peer->user)->unanswered_since = 0;
		audit__line(d, e->rekey ? "rekey" : "handshake_completed",
		      peer->public_key, "role=%s", e->initiator ? "initiator" : "responder");
		break;
	case WG_EVENT_HANDSHAKE_FAILED:
		if (peer)
			audit__peer_failure(d, peer, fp, e->reason);
		else
			audit__anonymous_failure(d, e->reason);
		break;
	case WG_EVENT_GAVE_UP:
		log_info("%s: peer %s…: no handshake answer after %u attempts, dropping queue",
			 d->cfg->ifname, fp, e->attempt);
		audit__line(d, "handshake_failed", peer->public_key, "reason=\"no answer after %u attempts\"",
		      e->attempt);
		resolve_again(peer->user);
		break;
	case WG_EVENT_KEYS_WIPED:
		log_info("%s: peer %s…: session keys wiped after %u s of silence", d->cfg->ifname,
			 fp, e->after_sec);
		audit__line(d, "keypair_expired", peer->public_key, "reason=\"no session for %u s\"",
		      e->after_sec);
		break;
	case WG_EVENT_ENDPOINT_CHANGED:
		log_debug("%s: peer %s…: endpoint changed", d->cfg->ifname, fp);
		break;
	case WG_EVENT_UNDER_LOAD:
		log_info("%s: %s cookie mode (handshake load)", d->cfg->ifname,
			 e->on ? "entering" : "leaving");
		audit__line(d, e->on ? "cookie_mode_entered" : "cookie_mode_left", NULL, NULL);
		break;
	}
}

void events__op_keylog(void *ctx, struct wg_peer *peer, const uint8_t eph[32])
{
	struct daemon *d = ctx;
	const struct noise_static_identity *id = wg_device_identity(d->wg);
	char b[4][sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	struct wg_peer_info info;
	int i;

	if (!d->keylog)
		return;
	wg_peer_get_info(peer, &info);
	sodium_bin2base64(b[0], sizeof(b[0]), id->private_key, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b[1], sizeof(b[1]), peer->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b[2], sizeof(b[2]), eph, 32, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b[3], sizeof(b[3]), info.preshared_key, 32,
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(&info, sizeof(info));
	fprintf(d->keylog,
		"LOCAL_STATIC_PRIVATE_KEY = %s\nREMOTE_STATIC_PUBLIC_KEY = %s\n"
		"LOCAL_EPHEMERAL_PRIVATE_KEY = %s\nPRESHARED_KEY = %s\n",
		b[0], b[1], b[2], b[3]);
	fflush(d->keylog);
	for (i = 0; i < 4; i++)
		sodium_memzero(b[i], sizeof(b[i]));
}
