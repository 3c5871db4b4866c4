// SPDX-License-Identifier: MIT
/*
 * The per-peer glue under both the data path and the control plane: the
 * packet pool, the work lists a peer waits on, its staged packets and
 * their sending (encrypted in place, queued for one sendmmsg), its timer,
 * and the end of every batch, which sends what was staged and re-arms the
 * timers it touched. Also the engine's upcalls about a peer's queue and
 * its removal.
 *
 * Peer teardown order: the engine stops its timers and calls purge_staged,
 * then peer_removed, where the uv timer is stopped and closed; the daemon's
 * peer state is freed in the close callback, after the engine freed its part.
 */
#include "daemon_int.h"

#include <stdlib.h>

#include "udp.h"

/* ---- packet buffers ------------------------------------------------------ */

struct pkt *peers__pkt_get(struct daemon *d)
{
	struct pkt *p = d->pool;

	if (p) {
		d->pool = p->next;
		d->pool_count--;
		return p;
	}
	if (d->pool_total >= POOL_MAX)
		return NULL;
	p = slab_alloc(&d->pkt_cache);
	if (p)
		d->pool_total++;
	return p;
}

/*
 * The pool grows to what a burst needed (staged packets for many peers, a
 * full batch); once things are quiet it gives all but a reserve back, from
 * slabs, so the memory really returns to the kernel.
 */
void peers__pool_trim_cb(uv_timer_t *t)
{
	struct daemon *d = container_of(t, struct daemon, pool_trim);
	struct pkt *p;

	while (d->pool_count > POOL_RESERVE && (p = d->pool)) {
		d->pool = p->next;
		d->pool_count--;
		d->pool_total--;
		slab_free(&d->pkt_cache, p);
	}
}

void peers__pkt_put(struct daemon *d, struct pkt *p)
{
	p->next = d->pool;
	d->pool = p;
	d->pool_count++;
}

/* ---- work lists ---------------------------------------------------------- */

bool peers__on_list(const struct link *l)
{
	return l->pprev != NULL;
}

void peers__link_push(struct link **head, struct link *l)
{
	if (peers__on_list(l))
		return;
	l->next = *head;
	if (*head)
		(*head)->pprev = &l->next;
	*head = l;
	l->pprev = head;
}

static void link_del(struct link *l)
{
	if (!peers__on_list(l))
		return;
	*l->pprev = l->next;
	if (l->next)
		l->next->pprev = l->pprev;
	l->next = NULL;
	l->pprev = NULL;
}

struct link *peers__link_pop(struct link **head)
{
	struct link *l = *head;

	if (l)
		link_del(l);
	return l;
}

/* ---- per-peer timers ----------------------------------------------------- */

void peers__mark_dirty(struct vpeer *vp)
{
	if (!vp->wp)
		return; /* removed: its timer is closing */
	peers__link_push(&vp->d->dirty_head, &vp->dirty);
}

static void peer_timer_cb(uv_timer_t *t);

static void arm_timer(struct vpeer *vp, struct wg_now now)
{
	uint64_t deadline = wg_peer_next_deadline(vp->wp), ms;

	if (deadline == UINT64_MAX) {
		uv_timer_stop(&vp->timer);
		return;
	}
	ms = deadline > now.mono ? (deadline - now.mono + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC : 0;
	uv_timer_start(&vp->timer, peer_timer_cb, ms, 0);
}

static void flush_tx(struct daemon *d);
static void send_staged(struct vpeer *vp, struct wg_now now);

/*
 * End of every callback: send what was staged, re-arm the timers it
 * touched. With workers, every peer's packets are sealed together, as one
 * batch, just before they go.
 */
void peers__finish_batch(struct daemon *d)
{
	struct wg_now now = now_of(d);
	struct link *l;

	d->defer_seal = true;
	while ((l = peers__link_pop(&d->flush_head)))
		send_staged(container_of(l, struct vpeer, flush), now);
	d->defer_seal = false;
	flush_tx(d);
	while ((l = peers__link_pop(&d->dirty_head)))
		arm_timer(container_of(l, struct vpeer, dirty), now);
}

static void peer_timer_cb(uv_timer_t *t)
{
	struct vpeer *vp = container_of(t, struct vpeer, timer);

	if (!vp->wp)
		return;
	wg_peer_run_timers(vp->wp, now_of(vp->d));
	peers__mark_dirty(vp);
	peers__finish_batch(vp->d);
}

/* ---- staging and sending ------------------------------------------------- */

/* Take the oldest staged packet off the peer's queue. */
static struct pkt *unstage(struct vpeer *vp)
{
	struct pkt *p = vp->head;

	vp->head = p->next;
	if (!vp->head)
		vp->tail = NULL;
	vp->count--;
	vp->d->staged_total--;
	return p;
}

static void purge(struct vpeer *vp)
{
	while (vp->count)
		peers__pkt_put(vp->d, unstage(vp));
}

void peers__stage(struct vpeer *vp, struct pkt *p)
{
	struct daemon *d = vp->d;

	/*
	 * Bounded per peer: the oldest packet makes room, as in the kernel's
	 * wg_xmit (drivers/net/wireguard/device.c). A peer waiting for a
	 * handshake is also bounded by what all waiting peers hold; one with
	 * a session sends at the end of this batch.
	 */
	if (vp->count == STAGED_MAX) {
		peers__pkt_put(d, unstage(vp));
	} else if (d->staged_total >= STAGED_TOTAL_MAX && !wg_peer_has_session(vp->wp)) {
		if (!vp->count) {
			peers__pkt_put(d, p); /* others hold the whole budget */
			return;
		}
		peers__pkt_put(d, unstage(vp));
	}
	p->next = NULL;
	if (vp->tail)
		vp->tail->next = p;
	else
		vp->head = p;
	vp->tail = p;
	vp->count++;
	d->staged_total++;
	peers__link_push(&d->flush_head, &vp->flush);
}

/*
 * Seal what waits in the send batch, over the workers. A message whose
 * AEAD failed (it cannot, short of a thread's context refusing its key) leaves
 * the batch and its peer starts a handshake.
 */
static void seal_tx(struct daemon *d)
{
	unsigned int i, k;

	if (!parallel(d))
		d->nsealed = d->ntx; /* sealed as they were queued */
	if (d->nsealed == d->ntx)
		return;
	workers_run(d->workers, d->tx_job + d->nsealed, d->ntx - d->nsealed);
	for (i = k = d->nsealed; i < d->ntx; i++) {
		if (d->tx_job[i].result) {
			struct vpeer *vp = d->tx_peer[i];

			if (vp && vp->wp)
				wg_peer_encrypt_failed(vp->wp, now_of(d));
			peers__pkt_put(d, d->tx_pkt[i]);
			continue;
		}
		if (k != i) {
			d->tx[k] = d->tx[i];
			d->tx_pkt[k] = d->tx_pkt[i];
			d->tx_peer[k] = d->tx_peer[i];
			d->tx_job[k] = d->tx_job[i];
		}
		k++;
	}
	d->ntx = d->nsealed = k;
}

static void flush_tx(struct daemon *d)
{
	unsigned int i;

	seal_tx(d);
	if (!d->ntx)
		return;
	udp_send_batch(&d->udp, d->tx, d->ntx);
	for (i = 0; i < d->ntx; i++) {
		struct vpeer *vp = d->tx_peer[i];

		if (d->tx[i].src_failed && vp && vp->wp)
			wg_peer_forget_source(vp->wp);
		peers__pkt_put(d, d->tx_pkt[i]);
	}
	d->ntx = d->nsealed = 0;
}

/*
 * Encrypt staged packets in place and queue them for sendmmsg. Returns how
 * many. With workers, only the counters are taken here; the AEAD runs in
 * seal_tx, at once unless peers__finish_batch is gathering every peer's.
 */
static size_t send_staged_count(struct vpeer *vp, struct wg_now now)
{
	struct daemon *d = vp->d;
	struct wg_peer *wp = vp->wp;
	size_t sent = 0, bytes = 0, len;

	if (!wp->has_endpoint) {
		/* Nowhere to send: drop, as the kernel does (it also answers ICMP). */
		purge(vp);
		return 0;
	}
	while (vp->count) {
		struct pkt *p = vp->head;
		int err;

		if (d->ntx == BATCH)
			flush_tx(d);
		if (parallel(d))
			err = wg_peer_encrypt_begin(wp, now, p->data, p->len, &len, &d->tx_job[d->ntx]);
		else
			err = wg_peer_encrypt(wp, now, p->data, p->len, &len);
		if (err)
			break; /* no session yet: a handshake is under way */
		unstage(vp);
		d->tx[d->ntx].buf = p->data;
		d->tx[d->ntx].len = len;
		d->tx[d->ntx].ep = wp->endpoint;
		d->tx_peer[d->ntx] = vp;
		d->tx_pkt[d->ntx++] = p;
		bytes += len;
		sent++;
	}
	if (!d->defer_seal)
		seal_tx(d);
	/* What could not go waits for a handshake: back within the budget. */
	while (d->staged_total > STAGED_TOTAL_MAX && vp->count)
		peers__pkt_put(d, unstage(vp));
	if (sent)
		wg_peer_sent(wp, now, bytes, true);
	peers__mark_dirty(vp);
	return sent;
}

static void send_staged(struct vpeer *vp, struct wg_now now)
{
	send_staged_count(vp, now);
}

/* ---- the engine's upcalls about a peer ----------------------------------- */

size_t peers__op_keypair_ready(void *ctx, struct wg_peer *peer)
{
	struct vpeer *vp = peer->user;

	(void)ctx;
	peers__mark_dirty(vp);
	return send_staged_count(vp, now_of(vp->d));
}

void peers__op_purge_staged(void *ctx, struct wg_peer *peer)
{
	/* The peer's keypairs may go next: no job may still name one. */
	seal_tx(ctx);
	purge(peer->user);
}

static void free_vpeer(uv_handle_t *h)
{
	struct vpeer *vp = container_of((uv_timer_t *)h, struct vpeer, timer);

	slab_free(&vp->d->vpeer_cache, vp);
}

/*
 * Teardown of a peer: its staged packets go back to the pool, it leaves
 * every work list and the send batch, its timer stops, and the memory
 * goes only in the timer's close callback, after this loop iteration.
 */
void peers__op_peer_removed(void *ctx, struct wg_peer *peer)
{
	struct daemon *d = ctx;
	struct vpeer *vp = peer->user;
	unsigned int i;

	if (!d->stopping)
		audit__line(d, "peer_removed", peer->public_key, NULL);
	purge(vp);
	link_del(&vp->dirty);
	link_del(&vp->flush);
	link_del(&vp->ips);
	for (i = 0; i < d->ntx; i++)
		if (d->tx_peer[i] == vp)
			d->tx_peer[i] = NULL;
	vp->wp = NULL;
	free(vp->ep_name);
	vp->ep_name = NULL;
	uv_timer_stop(&vp->timer);
	uv_close((uv_handle_t *)&vp->timer, free_vpeer);
}
