// SPDX-License-Identifier: MIT
/*
 * veild's event loop. Callbacks stay thin: they find their context, call the
 * protocol engine (src/core/device.c) and act on its answer.
 *
 * Data path, UDP in: recvmmsg a batch into pool buffers, hand each datagram
 * to wg_device_receive (decrypted in place; the deliver upcall writes the
 * inner packet to the TUN fd). Data path, TUN in: read a batch, route each
 * packet to its peer and stage it; then, once per batch, encrypt each
 * touched peer's staged packets in place and send them with sendmmsg.
 * Per-peer timers are re-armed once per batch, for the peers it touched.
 *
 * Peer teardown order: the engine stops its timers and calls purge_staged,
 * then peer_removed, where the uv timer is stopped and closed; the daemon's
 * peer state is freed in the close callback, after the engine freed its part.
 */
#include "daemon.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/stat.h>

#include <sodium.h>
#include <uv.h>

#include "core/device.h"
#include "httpd.h"
#include "icmp.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "resolver.h"
#include "sandbox.h"
#include "core/slab.h"
#include "tun.h"
#include "uapi.h"
#include "udp.h"
#include "veil.h"

enum {
	BATCH = 64,
	PKT_CAP = VEIL_MTU_MAX, /* the largest inner packet we carry (jumbo MTU 9000 fits) */
	POOL_MAX = 8192,
	STAGED_MAX = MAX_PEER_QUEUED_PACKETS,
	/*
	 * Packets waiting for handshakes, all peers together, stay two batches
	 * short of the pool: a TUN batch (staged for peers with a session and
	 * sent at its end) and a UDP receive batch always find buffers,
	 * however many peers wait.
	 */
	STAGED_TOTAL_MAX = POOL_MAX - 2 * BATCH,
	POOL_RESERVE = BATCH / 2, /* half a TUN batch stays warm (receiving uses its own slots) */
	POOL_TRIM_MS = 5000,
	ANON_REASONS = 4, /* refusal reasons rate-limited apart */
	/*
	 * A peer's refused handshake messages, per reason: a forged response
	 * (its receiver index and mac1 are on the wire) fails its AEAD or DH
	 * (-EBADMSG) or finds no handshake (-EINVAL); an authentic initiation
	 * under the other suite is the third. Three slots, so a forger cannot
	 * make the reasons evict each other.
	 */
	PEER_REASONS = 3,
	/*
	 * A peer's endpoint host name is looked up again when an initiation
	 * goes out and initiations have gone unanswered for 10 s, then at
	 * most every 15 s while handshakes keep failing. Not a count of
	 * attempts: new traffic resets that count, as in the kernel.
	 */
	RESOLVE_AFTER_SEC = 10,
	RESOLVE_INTERVAL_SEC = 15,
	/*
	 * UDP receive slots: with offloads each takes a whole GRO train (64
	 * KB); without, one datagram. Decrypted packets wait in the slots for
	 * one TUN write per flow, RX_MAX at a time.
	 */
	RX_SLOTS_GRO = 32,
	RX_SLOT_GRO = 65536,
	RX_MAX = 256,
};

struct pkt {
	struct pkt *next;
	size_t len;
	uint8_t data[DATA_HEADER_LEN + PKT_CAP + MESSAGE_PADDING_MULTIPLE + NOISE_AUTHTAG_LEN];
};

/*
 * A peer waits on up to three work lists (timers to re-arm, packets to
 * send, allowed IPs to audit). The links are doubly linked so a removed
 * peer leaves every list at once, whatever is half done: a control
 * request split over several reads, a batch in progress.
 */
struct link {
	struct link *next, **pprev; /* pprev NULL: on no list */
};

/* One reason's failures: the first of each second gets a line, which counts the quiet ones. */
struct fail_limit {
	int err;
	uint64_t window, count;
};

struct vpeer {
	struct daemon *d;
	struct wg_peer *wp; /* NULL once the engine removed it */
	uv_timer_t timer;
	struct pkt *head, *tail; /* staged packets, oldest first, linked through next */
	unsigned int count;
	struct link dirty, flush, ips;
	uint8_t ips_before[16];
	char *ep_name;       /* "host:port" the operator's endpoint came from, or NULL */
	uint64_t resolved_at; /* when the last lookup was asked (monotonic ns) */
	uint64_t unanswered_since; /* first initiation since the last handshake, or 0 */
	struct resolver_lookup lookup; /* its name's lookup out, if any */
	struct fail_limit fail[PEER_REASONS]; /* refused handshake messages naming this peer */
};

struct upoll {
	uv_poll_t h;
	struct daemon *d;
	int fd;
};

struct daemon {
	uv_loop_t loop;
	const struct daemon_config *cfg;
	struct wg_device *wg;
	struct udp_sockets udp;
	struct upoll *udp4, *udp6;
	uv_poll_t tun_poll;
	int tun_fd;
	enum tun_mode tun_mode;
	uint8_t *tun_buf; /* one read with a virtio_net_hdr: up to 64 KB (all but TUN_PLAIN) */
	uint8_t *rx_arena; /* rx_slots UDP receive buffers of rx_slot bytes */
	size_t rx_slot;
	unsigned int rx_slots;
	struct offload_pkt rx[RX_MAX]; /* decrypted, for the TUN (all but TUN_PLAIN) */
	unsigned int nrx;
	uv_pipe_t uapi;
	uv_signal_t sigint, sigterm;
	uv_timer_t pool_trim;
	struct slab_cache pkt_cache;
	struct mnl_socket *nl;
	uv_poll_t nl_poll;
	unsigned int ifindex;
	uv_fs_event_t sock_watch;
	FILE *keylog;
	struct pkt *pool;
	size_t pool_count, pool_total;
	struct link *dirty_head, *flush_head, *ips_head;
	size_t staged_total; /* over all peers, kept below STAGED_TOTAL_MAX */
	struct slab_cache vpeer_cache;
	struct udp_msg tx[BATCH];
	struct pkt *tx_pkt[BATCH];
	struct vpeer *tx_peer[BATCH];
	unsigned int ntx;
	uint64_t icmp_window, icmp_count;
	struct metrics_daemon counters; /* what the engine does not count (too long packets) */
	struct fail_limit anon[ANON_REASONS];
	long who_uid, who_pid; /* the control-socket caller being served, or -1 */
	int resolver_fd;       /* -1: no resolver (host names stay as first resolved) */
	pid_t resolver_pid;    /* refused by the control socket, whatever its uid */
	uint32_t resolve_gen;  /* daemon-wide, so a reply never matches a re-created peer */
	int sock_dir;          /* the control socket's directory, to unlink it at exit; or -1 */
	struct httpd *httpd;   /* the metrics listener, or NULL */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_len; /* 0: no listener asked for */
	uv_poll_t resolver_poll;
	bool stopping; /* tearing down: one audit line, not one per peer */
	int exit_status;
};

static void audit(struct daemon *d, const char *event, const uint8_t *pub, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- time and buffers ------------------------------------------------------ */

static struct wg_now now_of(struct daemon *d)
{
	struct timespec ts;
	struct wg_now n;

	(void)d;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n.mono = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	clock_gettime(CLOCK_REALTIME, &ts);
	n.wall = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	return n;
}

static struct pkt *pkt_get(struct daemon *d)
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
static void pool_trim_cb(uv_timer_t *t)
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

static void pkt_put(struct daemon *d, struct pkt *p)
{
	p->next = d->pool;
	d->pool = p;
	d->pool_count++;
}

/* ---- work lists --------------------------------------------------------------- */

static bool on_list(const struct link *l)
{
	return l->pprev != NULL;
}

static void link_push(struct link **head, struct link *l)
{
	if (on_list(l))
		return;
	l->next = *head;
	if (*head)
		(*head)->pprev = &l->next;
	*head = l;
	l->pprev = head;
}

static void link_del(struct link *l)
{
	if (!on_list(l))
		return;
	*l->pprev = l->next;
	if (l->next)
		l->next->pprev = l->pprev;
	l->next = NULL;
	l->pprev = NULL;
}

static struct link *link_pop(struct link **head)
{
	struct link *l = *head;

	if (l)
		link_del(l);
	return l;
}

/* ---- per-peer timers ------------------------------------------------------- */

static void mark_dirty(struct vpeer *vp)
{
	if (!vp->wp)
		return; /* removed: its timer is closing */
	link_push(&vp->d->dirty_head, &vp->dirty);
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

/* End of every callback: send what was staged, re-arm the timers it touched. */
static void finish_batch(struct daemon *d)
{
	struct wg_now now = now_of(d);
	struct link *l;

	while ((l = link_pop(&d->flush_head)))
		send_staged(container_of(l, struct vpeer, flush), now);
	flush_tx(d);
	while ((l = link_pop(&d->dirty_head)))
		arm_timer(container_of(l, struct vpeer, dirty), now);
}

static void peer_timer_cb(uv_timer_t *t)
{
	struct vpeer *vp = container_of(t, struct vpeer, timer);

	if (!vp->wp)
		return;
	wg_peer_run_timers(vp->wp, now_of(vp->d));
	mark_dirty(vp);
	finish_batch(vp->d);
}

/* ---- staging and sending ---------------------------------------------------- */

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
		pkt_put(vp->d, unstage(vp));
}

static void stage(struct vpeer *vp, struct pkt *p)
{
	struct daemon *d = vp->d;

	/*
	 * Bounded per peer: the oldest packet makes room (reference 2.4). A
	 * peer waiting for a handshake is also bounded by what all waiting
	 * peers hold; one with a session sends at the end of this batch.
	 */
	if (vp->count == STAGED_MAX) {
		pkt_put(d, unstage(vp));
	} else if (d->staged_total >= STAGED_TOTAL_MAX && !wg_peer_has_session(vp->wp)) {
		if (!vp->count) {
			pkt_put(d, p); /* others hold the whole budget */
			return;
		}
		pkt_put(d, unstage(vp));
	}
	p->next = NULL;
	if (vp->tail)
		vp->tail->next = p;
	else
		vp->head = p;
	vp->tail = p;
	vp->count++;
	d->staged_total++;
	link_push(&d->flush_head, &vp->flush);
}

static void flush_tx(struct daemon *d)
{
	unsigned int i;

	if (!d->ntx)
		return;
	udp_send_batch(&d->udp, d->tx, d->ntx);
	for (i = 0; i < d->ntx; i++) {
		struct vpeer *vp = d->tx_peer[i];

		if (d->tx[i].src_failed && vp && vp->wp)
			wg_peer_forget_source(vp->wp);
		pkt_put(d, d->tx_pkt[i]);
	}
	d->ntx = 0;
}

/* Encrypt staged packets in place and queue them for sendmmsg. Returns how many. */
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

		if (wg_peer_encrypt(wp, now, p->data, p->len, &len))
			break; /* no session yet: a handshake is under way */
		unstage(vp);
		if (d->ntx == BATCH)
			flush_tx(d);
		d->tx[d->ntx].buf = p->data;
		d->tx[d->ntx].len = len;
		d->tx[d->ntx].ep = wp->endpoint;
		d->tx_peer[d->ntx] = vp;
		d->tx_pkt[d->ntx++] = p;
		bytes += len;
		sent++;
	}
	/* What could not go waits for a handshake: back within the budget. */
	while (d->staged_total > STAGED_TOTAL_MAX && vp->count)
		pkt_put(d, unstage(vp));
	if (sent)
		wg_peer_sent(wp, now, bytes, true);
	mark_dirty(vp);
	return sent;
}

static void send_staged(struct vpeer *vp, struct wg_now now)
{
	send_staged_count(vp, now);
}

/* ---- the engine's upcalls ---------------------------------------------------- */

static void op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;
	int err = udp_send(&d->udp, ep, buf, len);

	if (err < 0)
		log_debug("%s: send failed: %s", d->cfg->ifname, strerror(-err));
	if (peer) {
		if (err == 1)
			wg_peer_forget_source(peer);
		mark_dirty(peer->user);
	}
}

static void flush_rx(struct daemon *d);

/*
 * With a virtio_net_hdr, decrypted packets wait (in the receive slots)
 * until the end of the receive round, when one flow's segments go to the
 * kernel as one write; without, each goes at once.
 */
static void op_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len)
{
	struct daemon *d = ctx;

	if (d->tun_mode == TUN_PLAIN) {
		if (write(d->tun_fd, pkt, len) < 0)
			log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
	} else {
		if (d->nrx == RX_MAX)
			flush_rx(d);
		d->rx[d->nrx].data = pkt;
		d->rx[d->nrx++].len = len;
	}
	mark_dirty(peer->user);
}

static size_t op_keypair_ready(void *ctx, struct wg_peer *peer)
{
	struct vpeer *vp = peer->user;

	(void)ctx;
	mark_dirty(vp);
	return send_staged_count(vp, now_of(vp->d));
}

static void op_purge_staged(void *ctx, struct wg_peer *peer)
{
	(void)ctx;
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
static void op_peer_removed(void *ctx, struct wg_peer *peer)
{
	struct daemon *d = ctx;
	struct vpeer *vp = peer->user;
	unsigned int i;

	if (!d->stopping)
		audit(d, "peer_removed", peer->public_key, NULL);
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

static void fingerprint(const uint8_t *pub, char out[12])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	memcpy(out, b64, 11);
	out[11] = '\0';
}

/*
 * One structured line per change of configuration or key event: event name,
 * interface, peer fingerprint (never a key), who asked, and the time (added
 * by log_audit). uid=- pid=- means the daemon itself.
 */
static void audit(struct daemon *d, const char *event, const uint8_t *pub, const char *fmt, ...)
{
	char fp[12] = "-", extra[256] = "", who[48];
	va_list ap;

	if (pub)
		fingerprint(pub, fp);
	if (fmt) {
		extra[0] = ' ';
		va_start(ap, fmt);
		/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
		vsnprintf(extra + 1, sizeof(extra) - 1, fmt, ap);
		va_end(ap);
	}
	if (d->who_uid >= 0)
		snprintf(who, sizeof(who), "uid=%ld pid=%ld", d->who_uid, d->who_pid);
	else
		snprintf(who, sizeof(who), "uid=- pid=-");
	log_audit("event=%s iface=%s peer=%s %s%s", event, d->cfg->ifname, fp, who, extra);
}

/*
 * A refused handshake message costs its sender one packet: whether it
 * gets its line, at most one a second per reason (slots[0..n), a new
 * reason taking the stalest). True with *count the failures the line
 * stands for, this one and those kept quiet since the last line.
 */
static bool fail_limit_pass(struct fail_limit *slots, size_t n, int err, uint64_t now,
			    uint64_t *count)
{
	struct fail_limit *a = &slots[0];
	size_t i;

	for (i = 0; i < n; i++) {
		if (slots[i].err == err) {
			a = &slots[i];
			break;
		}
		if (slots[i].window < a->window)
			a = &slots[i];
	}
	if (a->err != err) {
		a->err = err;
		a->window = 0;
		a->count = 0;
	}
	a->count++;
	if (a->window && now - a->window < NSEC_PER_SEC)
		return false;
	a->window = now;
	*count = a->count;
	a->count = 0;
	return true;
}

/*
 * An initiation with a valid MAC1 but no peer behind it costs a stranger
 * one packet: report such failures at most once a second per reason, with
 * how many the line stands for, so they cannot flood the log.
 */
static void anonymous_failure(struct daemon *d, enum wg_refusal why)
{
	uint64_t count;

	if (!fail_limit_pass(d->anon, ANON_REASONS, (int)why, now_of(d).mono, &count))
		return;
	log_info("%s: handshake initiation from no known peer refused: %s", d->cfg->ifname,
		 wg_refusal_name(why));
	audit(d, "handshake_failed", NULL, "reason=\"%s\" count=%" PRIu64, wg_refusal_name(why),
	      count);
}

/* ---- endpoint host names, looked up again by the resolver child ------------- */

static void endpoint_str(const struct sockaddr *sa, char *out, size_t len);

/* Ask for vp's host name again, unless asked lately or a lookup is out. */
static void resolve_again(struct vpeer *vp)
{
	struct daemon *d = vp->d;
	struct resolver_request rq = { 0 };
	uint64_t now = now_of(d).mono;

	if (!vp->wp || !vp->ep_name || vp->lookup.out || d->resolver_fd < 0)
		return;
	if (vp->resolved_at && now - vp->resolved_at < (uint64_t)RESOLVE_INTERVAL_SEC * NSEC_PER_SEC)
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
 * RESOLVE_AFTER_SEC without an answer, ask for the name again.
 */
static void note_initiation(struct vpeer *vp)
{
	uint64_t now = now_of(vp->d).mono;

	if (!vp->unanswered_since)
		vp->unanswered_since = now;
	else if (now - vp->unanswered_since >= (uint64_t)RESOLVE_AFTER_SEC * NSEC_PER_SEC)
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
	fingerprint(wp->public_key, fp);
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
		endpoint_str((const struct sockaddr *)&wp->endpoint.addr, was, sizeof(was));
	endpoint_str((const struct sockaddr *)&rp->addr, now, sizeof(now));
	wg_peer_set_endpoint(wp, (const struct sockaddr *)&rp->addr, rp->len);
	mark_dirty(vp);
	log_info("%s: peer %s…: %s now resolves to %s (was %s)", d->cfg->ifname, fp, vp->ep_name,
		 now, was);
	audit(d, "endpoint_resolved", wp->public_key, "name=%s endpoint=%s was=%s", vp->ep_name,
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
	finish_batch(d);
}

static const char *suite_name(enum noise_suite suite)
{
	return suite == NOISE_SUITE_AES256GCM ? "aes256gcm" : "chacha20poly1305";
}

/* The peer's initiation is authentic but under the other cipher: say which, loudly. */
static void suite_mismatch(struct daemon *d, struct wg_peer *peer, const char *fp,
			   enum wg_refusal why, uint64_t count)
{
	bool aes = why == WG_REFUSAL_AES_OFFERED;
	const char *offered = suite_name(aes ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD);
	const char *ours = suite_name(aes ? NOISE_SUITE_WIREGUARD : NOISE_SUITE_AES256GCM);

	log_error("%s: peer %s…: handshake refused: cipher mismatch: the peer uses %s, this side "
		  "has cipher %s for it; both sides must set the same (never downgraded)",
		  d->cfg->ifname, fp, offered, ours);
	audit(d, "handshake_failed", peer->public_key,
	      "reason=\"cipher mismatch\" offered=%s configured=%s count=%" PRIu64, offered, ours,
	      count);
}

/*
 * A handshake message refused for a known peer: a forged response names
 * the peer its (visible) receiver index belongs to, so these lines are
 * rate-limited per peer and reason like the anonymous ones.
 */
static void peer_failure(struct daemon *d, struct wg_peer *peer, const char *fp,
			 enum wg_refusal why)
{
	struct vpeer *vp = peer->user;
	uint64_t count;

	if (!fail_limit_pass(vp->fail, PEER_REASONS, (int)why, now_of(d).mono, &count))
		return;
	if (wg_refusal_is_suite_mismatch(why)) {
		suite_mismatch(d, peer, fp, why, count);
		return;
	}
	log_info("%s: peer %s…: handshake message refused: %s", d->cfg->ifname, fp,
		 wg_refusal_name(why));
	audit(d, "handshake_failed", peer->public_key, "reason=\"%s\" count=%" PRIu64,
	      wg_refusal_name(why), count);
}

static void op_event(void *ctx, struct wg_peer *peer, const struct wg_event_info *e)
{
	struct daemon *d = ctx;
	char fp[12] = "-";

	/* Only these two events can come without a peer (device.h). */
	assert(peer || e->ev == WG_EVENT_UNDER_LOAD || e->ev == WG_EVENT_HANDSHAKE_FAILED);
	if (peer) {
		fingerprint(peer->public_key, fp);
		mark_dirty(peer->user);
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
		audit(d, e->rekey ? "rekey" : "handshake_completed",
		      peer->public_key, "role=%s", e->initiator ? "initiator" : "responder");
		break;
	case WG_EVENT_HANDSHAKE_FAILED:
		if (peer)
			peer_failure(d, peer, fp, e->reason);
		else
			anonymous_failure(d, e->reason);
		break;
	case WG_EVENT_GAVE_UP:
		log_info("%s: peer %s…: no handshake answer after %u attempts, dropping queue",
			 d->cfg->ifname, fp, e->attempt);
		audit(d, "handshake_failed", peer->public_key, "reason=\"no answer after %u attempts\"",
		      e->attempt);
		resolve_again(peer->user);
		break;
	case WG_EVENT_KEYS_WIPED:
		log_info("%s: peer %s…: session keys wiped after %u s of silence", d->cfg->ifname,
			 fp, e->after_sec);
		audit(d, "keypair_expired", peer->public_key, "reason=\"no session for %u s\"",
		      e->after_sec);
		break;
	case WG_EVENT_ENDPOINT_CHANGED:
		log_debug("%s: peer %s…: endpoint changed", d->cfg->ifname, fp);
		break;
	case WG_EVENT_UNDER_LOAD:
		log_info("%s: %s cookie mode (handshake load)", d->cfg->ifname,
			 e->on ? "entering" : "leaving");
		audit(d, e->on ? "cookie_mode_entered" : "cookie_mode_left", NULL, NULL);
		break;
	}
}

static void op_keylog(void *ctx, struct wg_peer *peer, const uint8_t eph[32])
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

static const struct wg_device_ops engine_ops = {
	.send = op_send,
	.deliver = op_deliver,
	.keypair_ready = op_keypair_ready,
	.purge_staged = op_purge_staged,
	.event = op_event,
	.peer_removed = op_peer_removed,
	.keylog = op_keylog,
};

/* ---- ICMP unreachable for packets with no peer ------------------------------ */

/* One packet to the TUN device, after a virtio_net_hdr when it takes one (flags: its flags). */
static void tun_write_one(struct daemon *d, uint8_t *pkt, size_t len, uint8_t flags)
{
	struct virtio_net_hdr vh = { .flags = flags };
	struct iovec iov[2] = { { &vh, VNET_HDR_LEN }, { pkt, len } };
	ssize_t r;

	if (d->tun_mode == TUN_PLAIN)
		r = write(d->tun_fd, pkt, len);
	else
		r = writev(d->tun_fd, iov, 2);
	if (r < 0)
		log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
}

/*
 * The decrypted packets of this receive round to the TUN device: a run of
 * one TCP flow's segments as one write (GRO), anything else alone.
 */
static void flush_rx(struct daemon *d)
{
	struct iovec iov[GRO_SEGMENTS_MAX + 1];
	struct virtio_net_hdr vh;
	unsigned int i = 0, k, n;
	size_t hlen;

	while (i < d->nrx) {
		n = (unsigned int)offload_gro(d->rx + i, d->nrx - i, d->tun_mode == TUN_USO, &vh, &hlen);
		iov[0].iov_base = &vh;
		iov[0].iov_len = VNET_HDR_LEN;
		iov[1].iov_base = d->rx[i].data;
		iov[1].iov_len = d->rx[i].len;
		for (k = 1; k < n; k++) {
			iov[k + 1].iov_base = d->rx[i + k].data + hlen;
			iov[k + 1].iov_len = d->rx[i + k].len - hlen;
		}
		if (writev(d->tun_fd, iov, (int)n + 1) < 0)
			log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
		i += n;
	}
	d->nrx = 0;
}

/*
 * Answer like the kernel module (src/icmp.c builds the reply), at most 10
 * a second, so a flood of such packets cannot turn into a flood of replies.
 */
static void icmp_unreachable(struct daemon *d, const uint8_t *pkt, size_t len, uint64_t now)
{
	uint8_t out[ICMP_REPLY_MAX];
	size_t n;

	if (now - d->icmp_window >= NSEC_PER_SEC) {
		d->icmp_window = now;
		d->icmp_count = 0;
	}
	if (++d->icmp_count > 10)
		return;
	n = icmp_unreachable_build(pkt, len, out);
	if (n)
		tun_write_one(d, out, n, 0);
}

/* ---- the data path ------------------------------------------------------------ */

static void stop(struct daemon *d, int status)
{
	d->exit_status = status;
	uv_stop(&d->loop);
}

/*
 * No buffer to spare (it should not happen: staging is capped below the
 * pool): take one packet off the fd into scratch and drop it, so a
 * level-triggered poll does not spin on data nobody reads.
 */
static void drain_one(int fd)
{
	static uint8_t scratch[65536];
	ssize_t r = read(fd, scratch, sizeof(scratch));

	(void)r;
}

/* A TUN read that brought nothing: the queue is empty, or the device is gone (we stop). */
static void tun_read_failed(struct daemon *d, ssize_t r)
{
	int err = r < 0 ? errno : EIO;

	if (err == EAGAIN || err == EINTR)
		return;
	/* The interface was deleted under us: stop cleanly, like wireguard-go. */
	log_info("%s: TUN device gone (%s), shutting down", d->cfg->ifname, strerror(err));
	stop(d, 0);
}

/* Hand a packet read from the TUN device to its peer, or answer and drop it. */
static void route(struct daemon *d, struct pkt *p, uint64_t now)
{
	struct wg_peer *wp = wg_device_route(d->wg, p->data + DATA_HEADER_LEN, p->len);

	if (!wp || !wg_device_identity(d->wg)->has_identity) {
		if (!wp)
			icmp_unreachable(d, p->data + DATA_HEADER_LEN, p->len, now);
		pkt_put(d, p);
		return;
	}
	stage(wp->user, p);
}

/* A packet from the TUN longer than we carry (the MTU is above PKT_CAP): counted, dropped. */
static void too_long(struct daemon *d)
{
	d->counters.too_long++;
	log_debug("%s: dropping a packet longer than the %d bytes veil carries", d->cfg->ifname,
		  PKT_CAP);
}

/* Without offloads: a batch of reads straight into packet buffers. */
static void tun_read_plain(struct daemon *d, uint64_t now)
{
	int i;

	for (i = 0; i < BATCH; i++) {
		struct pkt *p = pkt_get(d);
		ssize_t r;

		if (!p) {
			drain_one(d->tun_fd);
			break;
		}
		/*
		 * One byte more than we carry, to see a longer packet: the kernel
		 * truncates it to the buffer (or, on some versions, reports its
		 * whole length). The buffer has room past PKT_CAP for padding.
		 */
		r = read(d->tun_fd, p->data + DATA_HEADER_LEN, PKT_CAP + 1);
		if (r <= 0) {
			pkt_put(d, p);
			tun_read_failed(d, r);
			break;
		}
		if (r > PKT_CAP) {
			too_long(d);
			pkt_put(d, p);
			continue;
		}
		p->len = (size_t)r;
		route(d, p, now);
	}
}

/* A TCP segment or UDP train in tun_buf, cut into packets. Returns how many it made. */
static unsigned int tun_cut(struct daemon *d, const struct virtio_net_hdr *vh, size_t len,
			    uint64_t now)
{
	const uint8_t *seg = d->tun_buf + VNET_HDR_LEN;
	struct offload_tso t;
	unsigned int made = 0;
	struct pkt *p;

	if (offload_tso_start(&t, vh, seg, len)) {
		log_debug("%s: dropping a segment with a bad offload header", d->cfg->ifname);
		return 0;
	}
	if (t.hlen + t.mss > PKT_CAP) {
		too_long(d);
		return 0;
	}
	while ((p = pkt_get(d))) {
		p->len = offload_tso_next(&t, p->data + DATA_HEADER_LEN);
		if (!p->len) {
			pkt_put(d, p);
			break;
		}
		route(d, p, now);
		made++;
	}
	return made;
}

/*
 * With offloads: each read has a virtio_net_hdr. A plain packet lands in a
 * packet buffer directly (its checksum finished if the kernel left it); a
 * TCP segment or UDP train of up to 64 KB spills past it into tun_buf,
 * where it is made whole and cut. Reads stop once a batch's worth of
 * packets is staged, so no peer's queue (128) overflows before
 * finish_batch sends.
 */
static void tun_read_vnet(struct daemon *d, uint64_t now)
{
	uint8_t *spill = d->tun_buf + VNET_HDR_LEN + PKT_CAP;
	unsigned int made = 0, reads;
	struct virtio_net_hdr vh;

	for (reads = 0; reads < BATCH && made < BATCH; reads++) {
		struct pkt *p = pkt_get(d);
		struct iovec iov[3];
		size_t len;
		ssize_t r;

		if (!p) {
			drain_one(d->tun_fd);
			break;
		}
		iov[0].iov_base = &vh;
		iov[0].iov_len = VNET_HDR_LEN;
		iov[1].iov_base = p->data + DATA_HEADER_LEN;
		iov[1].iov_len = PKT_CAP;
		iov[2].iov_base = spill;
		iov[2].iov_len = OFFLOAD_MAX - PKT_CAP;
		r = readv(d->tun_fd, iov, 3);
		if (r <= VNET_HDR_LEN) {
			pkt_put(d, p);
			if (r > 0)
				continue;
			tun_read_failed(d, r);
			break;
		}
		len = (size_t)r - VNET_HDR_LEN;
		if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
			if (len > PKT_CAP)
				too_long(d);
			if (len > PKT_CAP ||
			    ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
			     offload_finish_csum(&vh, p->data + DATA_HEADER_LEN, len))) {
				pkt_put(d, p);
				continue;
			}
			p->len = len;
			route(d, p, now);
			made++;
			continue;
		}
		memcpy(d->tun_buf + VNET_HDR_LEN, p->data + DATA_HEADER_LEN, len < PKT_CAP ? len : PKT_CAP);
		pkt_put(d, p);
		made += tun_cut(d, &vh, len, now);
	}
}

static void tun_cb(uv_poll_t *h, int status, int events)
{
	struct daemon *d = container_of(h, struct daemon, tun_poll);

	(void)events;
	if (status < 0) {
		/* The interface was deleted under us: stop cleanly, like wireguard-go. */
		log_info("%s: TUN device gone (%s), shutting down", d->cfg->ifname,
			 uv_strerror(status));
		stop(d, 0);
		return;
	}
	if (d->tun_mode == TUN_PLAIN)
		tun_read_plain(d, now_of(d).mono);
	else
		tun_read_vnet(d, now_of(d).mono);
	finish_batch(d);
}

/*
 * A round receives into the slots, decrypts in place (a GRO read holds
 * several datagrams of seg bytes each) and, with offloads, writes what it
 * decrypted to the TUN device before the slots are used again.
 */
static void udp_cb(uv_poll_t *h, int status, int events)
{
	struct upoll *up = container_of(h, struct upoll, h);
	struct daemon *d = up->d;
	struct udp_msg msgs[BATCH];
	unsigned int n = d->rx_slots, i;
	int got, rounds;

	(void)events;
	if (status < 0)
		return;
	for (rounds = 0; rounds < 4; rounds++) {
		struct wg_now now;

		for (i = 0; i < n; i++) {
			msgs[i].buf = d->rx_arena + (size_t)i * d->rx_slot;
			msgs[i].len = d->rx_slot;
		}
		got = udp_recv_batch(up->fd, msgs, n);
		now = now_of(d);
		for (i = 0; got > 0 && i < (unsigned int)got; i++) {
			size_t len = msgs[i].len, off = 0, step;
			size_t seg = msgs[i].seg && msgs[i].seg < len ? msgs[i].seg : len;

			do { /* once for an empty (truncated) one, which the engine counts */
				step = len - off < seg ? len - off : seg;
				wg_device_receive(d->wg, now, &msgs[i].ep, msgs[i].buf + off, step);
				off += step;
			} while (off < len);
		}
		flush_rx(d);
		if (got < (int)n)
			break;
	}
	finish_batch(d);
}

static void close_free(uv_handle_t *h)
{
	free(container_of((uv_poll_t *)h, struct upoll, h));
}

static struct upoll *watch_udp(struct daemon *d, int fd)
{
	struct upoll *up;

	if (fd < 0)
		return NULL;
	up = calloc(1, sizeof(*up));
	if (!up)
		return NULL;
	up->d = d;
	up->fd = fd;
	if (uv_poll_init(&d->loop, &up->h, fd) || uv_poll_start(&up->h, UV_READABLE, udp_cb)) {
		free(up);
		return NULL;
	}
	return up;
}

static void unwatch(struct upoll **up)
{
	if (!*up)
		return;
	uv_poll_stop(&(*up)->h);
	uv_close((uv_handle_t *)&(*up)->h, close_free);
	*up = NULL;
}

static int listen_on(struct daemon *d, uint16_t port)
{
	struct udp_sockets nu;
	int err;

	err = udp_open(&nu, port, d->udp.fwmark, d->cfg->offload);
	if (err)
		return err;
	unwatch(&d->udp4);
	unwatch(&d->udp6);
	udp_close(&d->udp);
	d->udp = nu;
	d->udp4 = watch_udp(d, nu.fd4);
	d->udp6 = watch_udp(d, nu.fd6);
	log_info("%s: listening on UDP port %u", d->cfg->ifname, nu.port);
	return 0;
}

/* ---- the UAPI backend ---------------------------------------------------------- */

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
		mark_dirty(p->user);
	if (!err && (had != id->has_identity || sodium_memcmp(before, id->public_key, 32)))
		audit(d, rotate ? "private_key_rotated" : id->has_identity ? "private_key_set" : "private_key_removed",
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
	if (listen_on(d, port))
		return -EADDRINUSE;
	audit(d, "listen_port_set", NULL, "port=%u", d->udp.port);
	return 0;
}

static int be_set_fwmark(void *ctx, uint32_t mark)
{
	struct daemon *d = ctx;

	if (mark == d->udp.fwmark)
		return 0;
	if (udp_set_fwmark(&d->udp, mark))
		return -EADDRINUSE;
	audit(d, "fwmark_set", NULL, "fwmark=0x%x", mark);
	return 0;
}

static int be_replace_peers(void *ctx)
{
	struct daemon *d = ctx;

	if (wg_device_peer_count(d->wg))
		audit(d, "peers_replaced", NULL, "removed=%zu", wg_device_peer_count(d->wg));
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
		/* Our own public key: its lines are accepted and ignored (reference 9.3). */
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
	audit(d, "peer_added", pub, NULL);
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
		audit(ctx, wp->has_psk ? "psk_changed" : "psk_removed", wp->public_key, NULL);
	return 0;
}

static void endpoint_str(const struct sockaddr *sa, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}

static int be_peer_endpoint(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len)
{
	struct wg_peer *wp = peer;
	struct wg_endpoint ep = { 0 };
	char buf[64];

	memcpy(&ep.addr, sa, len < sizeof(ep.addr) ? len : sizeof(ep.addr));
	if (!wp->has_endpoint || !wg_endpoint_equal_addr(&wp->endpoint, &ep)) {
		endpoint_str(sa, buf, sizeof(buf));
		audit(ctx, "endpoint_set", wp->public_key, "endpoint=%s", buf);
	}
	wg_peer_set_endpoint(peer, sa, len);
	/* An address given by the operator replaces a name; veilctl sends the name after it. */
	free(((struct vpeer *)wp->user)->ep_name);
	((struct vpeer *)wp->user)->ep_name = NULL;
	mark_dirty(wp->user);
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
	audit(ctx, "endpoint_name_set", wp->public_key, "name=%s", *name ? name : "-");
	return 0;
}

static int be_peer_cipher(void *ctx, void *peer, int cipher)
{
	struct daemon *d = ctx;
	struct wg_peer *wp = peer;
	enum noise_suite suite = cipher == UAPI_CIPHER_AES256GCM ? NOISE_SUITE_AES256GCM
								 : NOISE_SUITE_WIREGUARD;
	char fp[12];

	fingerprint(wp->public_key, fp);
	if (suite == NOISE_SUITE_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
		log_error("%s: peer %s…: cipher aes256gcm refused: this CPU lacks the AES "
			  "instructions libsodium's AES-256-GCM needs", d->cfg->ifname, fp);
		return -EOPNOTSUPP;
	}
	if (!wg_peer_set_suite(wp, suite))
		return 0;
	/* Its sessions ended: the next packet starts a handshake under the new suite. */
	mark_dirty(wp->user);
	log_info("%s: peer %s…: cipher %s; sessions under the old one ended", d->cfg->ifname, fp,
		 suite_name(suite));
	audit(d, "cipher_set", wp->public_key, "cipher=%s", suite_name(suite));
	return 0;
}

static int be_peer_keepalive(void *ctx, void *peer, uint16_t interval)
{
	struct daemon *d = ctx;
	struct wg_peer *wp = peer;

	if (interval != wp->persistent_keepalive)
		audit(d, "keepalive_set", wp->public_key, "interval=%u", interval);
	wg_peer_set_persistent_keepalive(wp, interval, now_of(d));
	mark_dirty(wp->user);
	return 0;
}

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

	if (on_list(&vp->ips))
		return;
	ips_digest(wp, vp->ips_before);
	link_push(&d->ips_head, &vp->ips);
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
		endpoint_str(sa, where, sizeof(where));
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
	audit(d, "metrics_listen_set", NULL, "listen=%s", where);
	return 0;
}

static void be_set_end(void *ctx, int err)
{
	struct daemon *d = ctx;
	struct link *l;
	uint8_t after[16];

	(void)err;
	while ((l = link_pop(&d->ips_head))) {
		struct vpeer *vp = container_of(l, struct vpeer, ips);

		ips_digest(vp->wp, after);
		if (memcmp(after, vp->ips_before, sizeof(after)) != 0)
			audit(d, "allowed_ips_changed", vp->wp->public_key, "count=%zu",
			      vp->wp->allowedips.count);
	}
	finish_batch(d);
}

static const struct uapi_backend_ops uapi_ops = {
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

/* ---- the control socket ---------------------------------------------------------- */

/*
 * One connection. A reply being written stops everything else on it: the
 * rest of the read that brought the request waits in held, and the socket
 * is not read, so a client that pipelines requests without reading its
 * replies holds one reply in veild and then the kernel's socket buffers,
 * which stop it.
 */
struct uconn {
	uv_pipe_t pipe;
	struct daemon *d;
	struct uapi_conn *conn;
	struct ucred cred;
	char *held;       /* a read's bytes not fed yet (may hold a key), or NULL */
	size_t held_len, held_off;
	bool writing;     /* a reply is on its way out */
	bool reading;
	bool closing;
};

struct wreq {
	uv_write_t req;
	char *data;
	size_t len;
	struct uconn *uc;
	bool close_after;
};

static void drop_held(struct uconn *uc)
{
	if (!uc->held)
		return;
	sodium_memzero(uc->held, uc->held_len);
	free(uc->held);
	uc->held = NULL;
	uc->held_len = uc->held_off = 0;
}

static void uconn_closed(uv_handle_t *h)
{
	struct uconn *uc = container_of((uv_pipe_t *)h, struct uconn, pipe);

	drop_held(uc);
	uapi_conn_free(uc->conn);
	free(uc);
}

static void uconn_close(struct uconn *uc)
{
	if (uc->closing)
		return;
	uc->closing = true;
	uv_close((uv_handle_t *)&uc->pipe, uconn_closed);
}

static void uconn_pump(struct uconn *uc);

static void write_done(uv_write_t *req, int status)
{
	struct wreq *wr = container_of(req, struct wreq, req);
	struct uconn *uc = wr->uc;

	/* Replies carry private and pre-shared keys in hex. */
	sodium_memzero(wr->data, wr->len);
	free(wr->data);
	uc->writing = false;
	if (status < 0 || wr->close_after)
		uconn_close(uc);
	else
		uconn_pump(uc);
	free(wr);
}

/* Start writing out's bytes (taken over, wiped once written); false if it could not start. */
static bool send_reply(struct uconn *uc, struct uapi_buf *out, bool close_after)
{
	struct wreq *wr = calloc(1, sizeof(*wr));
	uv_buf_t b = uv_buf_init(out->data, (unsigned int)out->len);

	if (!wr)
		return false;
	wr->data = out->data;
	wr->len = out->len;
	wr->uc = uc;
	wr->close_after = close_after;
	if (uv_write(&wr->req, (uv_stream_t *)&uc->pipe, &b, 1, write_done)) {
		free(wr);
		return false;
	}
	*out = (struct uapi_buf){ 0 };
	uc->writing = true;
	return true;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = malloc(4096);
	buf->len = buf->base ? 4096 : 0;
}

static void uconn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/*
 * Feed what is held, one request at a time, each reply written before the
 * next request is looked at; read more only once nothing is held or being
 * written.
 */
static void uconn_pump(struct uconn *uc)
{
	struct daemon *d = uc->d;

	while (uc->held && !uc->writing && !uc->closing) {
		struct uapi_buf out = { 0 };
		size_t used;
		int ret;

		d->who_uid = (long)uc->cred.uid;
		d->who_pid = (long)uc->cred.pid;
		ret = uapi_conn_feed_one(uc->conn, uc->held + uc->held_off, uc->held_len - uc->held_off,
					 &out, &used);
		d->who_uid = d->who_pid = -1;
		uc->held_off += used;
		if (uc->held_off == uc->held_len)
			drop_held(uc);
		if ((out.len && !send_reply(uc, &out, ret != 0)) || (ret && !uc->writing))
			uconn_close(uc);
		uapi_buf_free(&out);
	}
	if (uc->closing)
		return;
	if (!uc->held && !uc->writing && !uc->reading)
		uc->reading = uv_read_start((uv_stream_t *)&uc->pipe, alloc_cb, uconn_read) == 0;
	else if ((uc->held || uc->writing) && uc->reading)
		uc->reading = uv_read_stop((uv_stream_t *)&uc->pipe) != 0;
}

static void uconn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct uconn *uc = container_of((uv_pipe_t *)s, struct uconn, pipe);

	/* libuv stops calling us once uv_read_stop ran, so nothing is held here. */
	assert(n <= 0 || !uc->held);
	if (n > 0) {
		uc->held = buf->base; /* fed by uconn_pump, freed (wiped) by drop_held */
		uc->held_len = (size_t)n;
		uc->held_off = 0;
		uconn_pump(uc);
		return;
	}
	if (n == UV_EOF) {
		/* A set without its empty line is applied and answered, as wireguard-go does. */
		struct uapi_buf out = { 0 };
		int ret;

		uc->d->who_uid = (long)uc->cred.uid;
		uc->d->who_pid = (long)uc->cred.pid;
		ret = uapi_conn_eof(uc->conn, &out);
		uc->d->who_uid = uc->d->who_pid = -1;
		if (ret < 0 || !out.len || !send_reply(uc, &out, true))
			uconn_close(uc);
		uapi_buf_free(&out);
	} else if (n < 0) {
		uconn_close(uc);
	}
	if (buf->base) {
		sodium_memzero(buf->base, buf->len);
		free(buf->base);
	}
}

static bool caller_allowed(const struct daemon *d, const struct ucred *cred)
{
	size_t i;

	/* Our own resolver child never configures us, whatever its uid and groups. */
	if (d->resolver_pid > 0 && cred->pid == d->resolver_pid)
		return false;
	if (cred->uid == 0)
		return true;
	if (!d->cfg->has_control_group)
		return false;
	if (cred->gid == d->cfg->control_gid)
		return true;
	for (i = 0; i < d->cfg->ncontrol_uids; i++)
		if (cred->uid == d->cfg->control_uids[i])
			return true;
	return false;
}

static void uapi_accept(uv_stream_t *server, int status)
{
	struct daemon *d = container_of((uv_pipe_t *)server, struct daemon, uapi);
	struct uconn *uc;
	/* uid -1 (nobody) in the refusal line if the credentials cannot be read. */
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	uc = calloc(1, sizeof(*uc));
	if (!uc)
		return;
	uc->d = d;
	uv_pipe_init(&d->loop, &uc->pipe, 0);
	if (uv_accept(server, (uv_stream_t *)&uc->pipe)) {
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	/* Only root (or the control group) may talk to the interface: the socket's mode says so, and so do we. */
	if (uv_fileno((uv_handle_t *)&uc->pipe, &fd) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || !caller_allowed(d, &cred)) {
		log_info("%s: control connection from uid %u refused", d->cfg->ifname,
			 (unsigned int)cred.uid);
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	uc->cred = cred;
	uc->conn = uapi_conn_new(&uapi_ops, d);
	if (!uc->conn) {
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	uconn_pump(uc);
}

/* ---- following the interface: MTU changes, socket file removal ------------------------ */

static void set_mtu(struct daemon *d, unsigned int mtu)
{
	if (mtu > PKT_CAP)
		log_error("%s: MTU %u is above the %d bytes veil carries: larger packets are dropped",
			  d->cfg->ifname, mtu, PKT_CAP);
	wg_device_set_mtu(d->wg, mtu);
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
		return MNL_CB_OK;
	tb[type] = attr;
	return MNL_CB_OK;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct daemon *d = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };

	if (nlh->nlmsg_type != RTM_NEWLINK || (unsigned int)ifi->ifi_index != d->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb);
	if (tb[IFLA_MTU]) {
		unsigned int mtu = mnl_attr_get_u32(tb[IFLA_MTU]);

		if (mtu != wg_device_mtu(d->wg)) {
			log_info("%s: MTU is now %u", d->cfg->ifname, mtu);
			set_mtu(d, mtu);
		}
	}
	return MNL_CB_OK;
}

/*
 * wg-quick and operators change the MTU with ip(8); padding must follow it
 * (reference 6.2), so we listen to rtnetlink's link group as wireguard-go does.
 */
static void netlink_cb(uv_poll_t *h, int status, int events)
{
	struct daemon *d = container_of(h, struct daemon, nl_poll);
	char buf[8192];
	ssize_t n;
	int i;

	(void)events;
	if (status < 0)
		return;
	for (i = 0; i < 16; i++) {
		n = mnl_socket_recvfrom(d->nl, buf, sizeof(buf));
		if (n <= 0)
			break;
		mnl_cb_run(buf, (size_t)n, 0, 0, link_msg_cb, d);
	}
}

static void watch_netlink(struct daemon *d)
{
	int fd;

	d->ifindex = if_nametoindex(d->cfg->ifname);
	d->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!d->nl || mnl_socket_bind(d->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		log_error("%s: cannot watch rtnetlink (%s): MTU changes will not be followed",
			  d->cfg->ifname, strerror(errno));
		if (d->nl)
			mnl_socket_close(d->nl);
		d->nl = NULL;
		return;
	}
	fd = mnl_socket_get_fd(d->nl);
	if (uv_poll_init(&d->loop, &d->nl_poll, fd) == 0)
		uv_poll_start(&d->nl_poll, UV_READABLE, netlink_cb);
}

/* Deleting the control socket stops the daemon, as the cross-platform page asks. */
static void sock_watch_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
	struct daemon *d = container_of(h, struct daemon, sock_watch);
	struct stat st;

	(void)name;
	(void)events;
	if (status < 0 || stat(d->cfg->uapi_path, &st) == 0)
		return;
	log_info("%s: control socket %s removed, shutting down", d->cfg->ifname,
		 d->cfg->uapi_path);
	stop(d, 0);
}

/* ---- set-up and teardown ------------------------------------------------------------ */

static void signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	log_info("%s: received signal %d, shutting down", d->cfg->ifname, signum);
	stop(d, 0);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	struct daemon *d = arg;

	if (uv_is_closing(h))
		return;
	/* Control connections are freed and wiped: a half-read request may hold a key. */
	if (h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&d->uapi)
		uconn_close(container_of((uv_pipe_t *)h, struct uconn, pipe));
	else
		uv_close(h, NULL);
}

/*
 * VEIL_KEYLOG_FILE holds the static private key with every session's keys,
 * and root opens it: never through a symbolic link (O_NOFOLLOW), mode 0600
 * whatever the umask, and an existing file only if it is a regular file
 * of ours (root's) with one link and no group or other bits, so that
 * nobody else can have planted it or read it. NULL, with why, otherwise.
 */
static FILE *open_keylog(const char *path, char *why, size_t whylen)
{
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "%s", errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		snprintf(why, whylen, "not a regular file");
	else if (st.st_uid != geteuid())
		snprintf(why, whylen, "it belongs to uid %u, not to %u", (unsigned int)st.st_uid,
			 (unsigned int)geteuid());
	else if (st.st_mode & 077)
		snprintf(why, whylen, "group or others may use it (mode %03o; chmod 600 it)",
			 (unsigned int)(st.st_mode & 0777));
	else if (st.st_nlink != 1)
		snprintf(why, whylen, "it has %lu hard links", (unsigned long)st.st_nlink);
	else if ((f = fdopen(fd, "a")))
		return f;
	else
		snprintf(why, whylen, "%s", strerror(errno));
	close(fd);
	return NULL;
}

/*
 * The control socket's directory, opened now so that at exit veild removes
 * its socket with unlinkat in that directory, the only unlink the seccomp
 * filter lets through. Returns -1 (nothing to remove) without a path.
 */
static int open_sock_dir(const char *path, const char **base)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	char dir[108];
	int fd;

	*base = NULL;
	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	fd = open(slash == path ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		*base = slash + 1;
	return fd;
}

/*
 * Fork the resolver while no key exists yet and before the sandbox (which
 * forbids fork). Without it veild still works; names are just not looked
 * up again.
 */
static void start_resolver(struct daemon *d)
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

int daemon_run(const struct daemon_config *cfg, void (*ready)(void *arg), void *arg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	const char *sock_name = NULL;
	struct pkt *p;
	unsigned int mtu;
	int err, status = 1;

	if (!d)
		return 1;
	d->cfg = cfg;
	d->sock_dir = open_sock_dir(cfg->uapi_path, &sock_name);
	d->tun_fd = cfg->tun_fd;
	d->tun_mode = cfg->tun_mode;
	d->rx_slots = cfg->offload ? RX_SLOTS_GRO : BATCH;
	d->rx_slot = cfg->offload ? RX_SLOT_GRO : sizeof(p->data);
	/* Both hold plaintext: wiped and freed at the end, like the pool. */
	d->rx_arena = malloc(d->rx_slots * d->rx_slot);
	if (d->tun_mode != TUN_PLAIN)
		d->tun_buf = malloc(VNET_HDR_LEN + OFFLOAD_MAX);
	if (!d->rx_arena || (d->tun_mode != TUN_PLAIN && !d->tun_buf)) {
		log_error("%s: out of memory for the packet buffers", cfg->ifname);
		goto out_free;
	}
	d->who_uid = d->who_pid = -1;
	d->resolver_fd = -1;
	slab_cache_init(&d->vpeer_cache, sizeof(struct vpeer));
	slab_cache_init(&d->pkt_cache, sizeof(struct pkt));
	d->udp.fd4 = d->udp.fd6 = -1;
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&d->loop))
		goto out_free;
	d->wg = wg_device_new(&engine_ops, d, &wg_rng_system);
	if (!d->wg)
		goto out_loop;
	if (!tun_get_mtu(cfg->ifname, &mtu))
		set_mtu(d, mtu);
	if (cfg->keylog_path) {
		char why[128];

		d->keylog = open_keylog(cfg->keylog_path, why, sizeof(why));
		if (!d->keylog)
			log_error("%s: VEIL_KEYLOG_FILE %s refused, no key log: %s", cfg->ifname,
				  cfg->keylog_path, why);
		else
			log_error("%s: WARNING: writing session keys and this interface's private key "
				  "to %s (VEIL_KEYLOG_FILE); anyone who reads it can decrypt this "
				  "interface's traffic and impersonate it to every peer",
				  cfg->ifname, cfg->keylog_path);
	}
	log_info("%s: offloads %s", cfg->ifname,
		 !cfg->offload		       ? "off (VEIL_OFFLOAD=off)"
		 : d->tun_mode == TUN_USO ? "on (TUN TSO, USO and checksum, UDP GSO and GRO)"
		 : d->tun_mode == TUN_TSO ? "on (TUN TSO and checksum, UDP GSO and GRO; no TUN USO)"
					   : "on for UDP (GSO, GRO); the kernel refused TUN TSO");
	err = listen_on(d, 0);
	if (err) {
		log_error("%s: cannot open UDP sockets: %s", cfg->ifname, strerror(-err));
		goto out_dev;
	}
	if (uv_poll_init(&d->loop, &d->tun_poll, d->tun_fd) ||
	    uv_poll_start(&d->tun_poll, UV_READABLE, tun_cb) ||
	    uv_pipe_init(&d->loop, &d->uapi, 0) || uv_pipe_open(&d->uapi, cfg->uapi_fd) ||
	    uv_listen((uv_stream_t *)&d->uapi, 16, uapi_accept)) {
		log_error("%s: cannot set up the event loop", cfg->ifname);
		goto out_dev;
	}
	uv_timer_init(&d->loop, &d->pool_trim);
	uv_timer_start(&d->pool_trim, pool_trim_cb, POOL_TRIM_MS, POOL_TRIM_MS);
	watch_netlink(d);
	if (cfg->uapi_path && uv_fs_event_init(&d->loop, &d->sock_watch) == 0)
		uv_fs_event_start(&d->sock_watch, sock_watch_cb, cfg->uapi_path, 0);
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sigterm);
	d->sigint.data = d->sigterm.data = d;
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	start_resolver(d);

	if (cfg->user) {
		err = sandbox_drop_user(cfg->user);
		if (err) {
			log_error("%s: cannot switch to user %s: %s", cfg->ifname, cfg->user,
				  err == -ENOENT ? "no such user" : strerror(-err));
			goto out_dev;
		}
		log_info("%s: running as user %s with CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and "
			 "CAP_IPC_LOCK only",
			 cfg->ifname, cfg->user);
		/* The directory is root's: this user could not remove the socket anyway. */
		if (d->sock_dir >= 0 && geteuid() != 0) {
			close(d->sock_dir);
			d->sock_dir = -1;
		}
	}
	err = sandbox_no_new_privs();
	if (err) {
		log_error("%s: cannot set no_new_privs: %s", cfg->ifname, strerror(-err));
		goto out_dev;
	}
	if (cfg->seccomp) {
		err = sandbox_seccomp(d->sock_dir);
		if (err) {
			log_error("%s: cannot install the seccomp filter: %s", cfg->ifname,
				  strerror(-err));
			goto out_dev;
		}
	}
	log_info("%s: interface ready (MTU %u)", cfg->ifname, wg_device_mtu(d->wg));
	if (ready)
		ready(arg);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	status = d->exit_status;
out_dev:
	/* Peers first (their timers close), then every handle, then the keys. */
	d->stopping = true;
	if (d->wg)
		audit(d, "interface_stopped", NULL, "peers=%zu", wg_device_peer_count(d->wg));
	wg_device_free(d->wg);
	d->wg = NULL;
	unwatch(&d->udp4);
	unwatch(&d->udp6);
	udp_close(&d->udp);
	httpd_stop(d->httpd); /* its handles close here, not in the walk below */
	d->httpd = NULL;
	uv_walk(&d->loop, close_walk, d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (d->nl)
		mnl_socket_close(d->nl);
	if (d->resolver_fd >= 0)
		close(d->resolver_fd); /* the child sees EOF and exits */
	if (d->sock_dir >= 0 && sock_name)
		unlinkat(d->sock_dir, sock_name, 0);
out_loop:
	uv_loop_close(&d->loop);
out_free:
	while ((p = d->pool)) {
		d->pool = p->next;
		slab_free(&d->pkt_cache, p); /* wipes: packets held plaintext */
	}
	if (d->keylog)
		fclose(d->keylog);
	if (d->sock_dir >= 0)
		close(d->sock_dir);
	if (d->rx_arena) {
		sodium_memzero(d->rx_arena, d->rx_slots * d->rx_slot);
		free(d->rx_arena);
	}
	if (d->tun_buf) {
		sodium_memzero(d->tun_buf, VNET_HDR_LEN + OFFLOAD_MAX);
		free(d->tun_buf);
	}
	free(d);
	return status;
}
