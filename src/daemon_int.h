/* SPDX-License-Identifier: MIT */
/*
 * veild's private header: what the daemon's files share and nobody else
 * sees. The shared types (struct daemon, the per-peer glue struct vpeer,
 * the packet buffer struct pkt), the limits they are sized by, a few
 * inline helpers, and each file's small internal API, declared below in
 * the order the files stand in, lowest first:
 *
 *   audit.c     fingerprints, audit lines, rate-limited handshake failures
 *   peers.c     packet pool, work lists, staging, timers, the batch's end
 *   events.c    the engine's events, the key log, endpoint look-ups again
 *   datapath.c  TUN reads and TSO cutting, UDP receive, delivery, ICMP
 *   backend.c   the control socket's handlers (be_*), the metrics listener
 *   control.c   the control socket's connections and the caller check
 *   watch.c     the MTU watch (rtnetlink) and the socket-file watch
 *   daemon.c    start-up and teardown (daemon_run)
 *
 * Each file calls only the files listed before it, never one after it, so
 * no two of them depend on each other. docs/layout.md says which file to
 * open for what.
 */
#ifndef VEIL_DAEMON_INT_H
#define VEIL_DAEMON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <uv.h>

#include "core/device.h"
#include "core/slab.h"
#include "daemon.h"
#include "metrics.h"
#include "offload.h"
#include "resolver.h"
#include "tun.h"
#include "udp.h"
#include "veil.h"
#include "workers.h"

struct httpd;
struct mnl_socket;
struct uapi_backend_ops;

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
	 * UDP receive slots: with offloads each takes a whole GRO train (64
	 * KB); without, one datagram. Decrypted packets wait in the slots for
	 * one TUN write per flow, RX_MAX at a time.
	 */
	RX_SLOTS_GRO = 32,
	RX_SLOT_GRO = 65536,
	RX_MAX = 256,
	/*
	 * With workers: received datagrams of a round wait here for their AEAD
	 * to run as one batch, RXQ_MAX at a time.
	 */
	RXQ_MAX = 1024,
};

/* A received datagram waiting for its batch (with workers): job is its index in rxq_job, or -1. */
struct rx_seg {
	uint8_t *buf;
	size_t len;
	const struct wg_endpoint *ep;
	int job;
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


/*
 * Events counted in windows of a fixed length: the first event after a
 * window has run out opens the next one. Each rate limit of the daemon is
 * one: ICMP replies, and lines about refused handshakes.
 */
struct rate_window {
	uint64_t start; /* when the window opened (monotonic ns); 0: none yet */
	uint64_t count; /* events in it so far */
};

/* Counts one event at now; returns how many the window has seen, this one included. */
static inline uint64_t rate_window_hit(struct rate_window *w, uint64_t now, uint64_t period)
{
	if (!w->start || now - w->start >= period) {
		w->start = now;
		w->count = 0;
	}
	return ++w->count;
}

/* One reason's failures: the first of each second gets a line, which counts the quiet ones. */
struct fail_limit {
	int err;
	struct rate_window w;
	uint64_t quiet; /* failures since the last line, kept quiet */
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
	/*
	 * With workers (more than one), the send batch's AEAD runs as one batch
	 * over them: tx_job[i] seals tx[i]; those below nsealed are done. The
	 * keypairs they name stay alive until then: jobs wait only through
	 * peers__finish_batch's loop (defer_seal), where no keypair goes.
	 */
	struct workers *workers;
	struct wg_crypt_job tx_job[BATCH];
	unsigned int nsealed;
	bool defer_seal;
	struct rx_seg *rxq;	       /* received datagrams waiting for their batch */
	struct wg_crypt_job *rxq_job; /* the data messages among them */
	unsigned int nrxq, nrxq_job;
	struct rate_window icmp; /* ICMP replies written, 10 a second at most */
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

/* ---- inline helpers ------------------------------------------------------------ */

/* Whether the AEAD runs in batches over several threads (src/workers.c). */
static inline bool parallel(const struct daemon *d)
{
	return workers_count(d->workers) > 1;
}

static inline struct wg_now now_of(struct daemon *d)
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

/* Leave the loop; daemon_run returns status. */
static inline void stop(struct daemon *d, int status)
{
	d->exit_status = status;
	uv_stop(&d->loop);
}

/* ---- audit.c: what lines say, and how often ------------------------------------ */

void audit__fingerprint(const uint8_t *pub, char out[12]);
void audit__endpoint_str(const struct sockaddr *sa, char *out, size_t len);
const char *audit__suite_name(enum noise_suite suite);
void audit__line(struct daemon *d, const char *event, const uint8_t *pub, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void audit__anonymous_failure(struct daemon *d, enum wg_refusal why);
void audit__peer_failure(struct daemon *d, struct wg_peer *peer, const char *fp, enum wg_refusal why);

/* ---- peers.c: buffers, work lists, staging, timers -------------------------------- */

struct pkt *peers__pkt_get(struct daemon *d);
void peers__pkt_put(struct daemon *d, struct pkt *p);
void peers__pool_trim_cb(uv_timer_t *t);
bool peers__on_list(const struct link *l);
void peers__link_push(struct link **head, struct link *l);
struct link *peers__link_pop(struct link **head);
/* The peer's timer is re-armed at the end of this batch. */
void peers__mark_dirty(struct vpeer *vp);
/* End of every callback: send what was staged, re-arm the timers it touched. */
void peers__finish_batch(struct daemon *d);
/* Queue p (from the pool) on vp, which sends it at the end of the batch or after a handshake. */
void peers__stage(struct vpeer *vp, struct pkt *p);
/* The engine's upcalls about a peer's queue and its removal (device.h). */
size_t peers__op_keypair_ready(void *ctx, struct wg_peer *peer);
void peers__op_purge_staged(void *ctx, struct wg_peer *peer);
void peers__op_peer_removed(void *ctx, struct wg_peer *peer);

/* ---- events.c: engine events, key log, endpoint names ------------------------------ */

void events__op_event(void *ctx, struct wg_peer *peer, const struct wg_event_info *e);
void events__op_keylog(void *ctx, struct wg_peer *peer, const uint8_t eph[32]);
/* Fork the resolver child and watch its replies (before the sandbox). */
void events__start_resolver(struct daemon *d);

/* ---- datapath.c: TUN and UDP ------------------------------------------------------- */

void datapath__op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep, const uint8_t *buf,
	     size_t len);
void datapath__op_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len);
void datapath__tun_cb(uv_poll_t *h, int status, int events);
/* Open the UDP sockets on port (0: any) and watch them, in place of the old ones. */
int datapath__listen_on(struct daemon *d, uint16_t port);
void datapath__unwatch(struct upoll **up);

/* ---- backend.c: the control socket's handlers -------------------------------------- */

extern const struct uapi_backend_ops uapi_ops;

/* ---- control.c: the control socket -------------------------------------------------- */

void control__uapi_accept(uv_stream_t *server, int status);
/* uv_walk's callback at teardown: closes every handle, wiping control connections. */
void control__close_walk(uv_handle_t *h, void *arg);

/* ---- watch.c: following the interface ---------------------------------------------- */

void watch__set_mtu(struct daemon *d, unsigned int mtu);
void watch__netlink(struct daemon *d);
void watch__sock_watch_cb(uv_fs_event_t *h, const char *name, int events, int status);

#endif
