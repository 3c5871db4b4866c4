// SPDX-License-Identifier: MIT
/*
 * Two (sometimes three) devices talking through an in-memory wire, on a fake
 * clock: the handshake, transport, rekeying, timers, cookies, allowed IPs,
 * roaming, key changes and hostile input, all through the same entry points
 * the daemon uses. The ops below play the daemon's part: a staging queue per
 * peer, a FIFO of datagrams (the "wire") and a record of what reached each
 * TUN device. Nothing sleeps; time jumps from one timer deadline to the next.
 */
#include "core/device.c"

#include <stdlib.h>

#include "core/index.h"
#include "test_util.h"

enum {
	NODE_A,
	NODE_B,
	NODE_C,
	NODES,
};

enum {
	MAX_PKT = DEFAULT_MTU,	/* largest inner packet the tests send */
	BUF_ROOM = 2048,	/* any datagram, hostile ones included */
	STAGE_MAX = MAX_PEER_QUEUED_PACKETS,
	WIRE_MAX = 512,
	LOG_HEAD = 256,		/* bytes of each datagram kept in the log */
	MAX_SEQ = 16384,
	MAX_HS = 256,
	EVENTS = WG_EVENT_UNDER_LOAD + 1,
};

#define SEC NSEC_PER_SEC
#define MSEC NSEC_PER_MSEC

/* The daemon's per-peer staging queue, in miniature. */
struct staged {
	size_t len;
	uint8_t data[MAX_PKT];
};

struct stage {
	struct staged q[STAGE_MAX];
	size_t head, count;
	unsigned int purges;
};

struct world;

struct node {
	struct world *w;
	int id;
	struct wg_device *dev;
	struct wg_peer *peer;		/* its entry for the node it talks to */
	struct test_rng_state rs;
	struct wg_rng rng;
	uint8_t priv[32], pub[32];
	struct wg_endpoint addr;	/* where it receives and what it sends from */
	uint8_t tun4[4], tun6[16];
	struct stage stage;
	bool blackholed;		/* everything it sends is lost */
	uint32_t tx_seq;
	uint64_t delivered;
	uint8_t seen[MAX_SEQ];		/* deliveries per sequence number */
	uint8_t last_rx[MAX_PKT];
	size_t last_rx_len;
	uint64_t verdicts[WG_DROP_COUNT]; /* of datagrams the wire brought it */
	uint64_t events[EVENTS];
	enum wg_refusal last_fail;	/* reason of the last HANDSHAKE_FAILED */
	struct wg_event_info last_event[EVENTS];
	uint64_t hs_at[MAX_HS];		/* completions of handshakes it initiated */
	size_t n_hs;
	uint64_t wire_bytes;		/* what it sent on behalf of a peer */
};

struct datagram {
	int from;
	size_t log;
	struct wg_endpoint src, dst;
	size_t len;
	uint8_t data[BUF_ROOM];
};

/* Every datagram ever sent, with its fate. */
struct logrec {
	uint64_t at;
	int from, to;
	bool has_peer;
	struct wg_endpoint dst;
	enum wg_drop verdict;
	size_t len;
	uint32_t type;
	uint8_t head[LOG_HEAD];
};

struct world {
	struct node n[NODES];
	struct wg_now now;
	uint64_t mono0, wall0;
	struct datagram wire[WIRE_MAX];
	size_t wire_head, wire_count;
	struct logrec *log;
	size_t nlog, caplog;
};

/* ---- inner IP packets ------------------------------------------------------ */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += be16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * A minimal but sound IPv4 or IPv6 packet of exactly len bytes (protocol
 * 253, "for experimentation"), whose payload is a function of seq.
 */
static void build_pkt(uint8_t *p, int family, const uint8_t *src, const uint8_t *dst,
		      uint32_t seq, size_t len)
{
	size_t hdr = family == AF_INET ? 20 : 40, i;

	assert_true(len >= hdr + 4 && len <= MAX_PKT);
	memset(p, 0, hdr);
	if (family == AF_INET) {
		p[0] = 0x45;
		put_be16(p + 2, len);
		p[8] = 64;
		p[9] = 253;
		memcpy(p + 12, src, 4);
		memcpy(p + 16, dst, 4);
		put_be16(p + 10, ip_checksum(p, 20));
	} else {
		p[0] = 0x60;
		put_be16(p + 4, len - 40);
		p[6] = 253;
		p[7] = 64;
		memcpy(p + 8, src, 16);
		memcpy(p + 24, dst, 16);
	}
	p[hdr] = (uint8_t)(seq >> 24);
	p[hdr + 1] = (uint8_t)(seq >> 16);
	p[hdr + 2] = (uint8_t)(seq >> 8);
	p[hdr + 3] = (uint8_t)seq;
	for (i = hdr + 4; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
}

/* A delivered packet must be exactly what build_pkt made: no padding, no damage. */
static uint32_t check_pkt(const uint8_t *p, size_t len)
{
	uint8_t want[MAX_PKT];
	const uint8_t *src, *dst;
	int family;
	size_t hdr;
	uint32_t seq;

	assert_true(len >= 24 && len <= MAX_PKT);
	if (p[0] >> 4 == 4) {
		family = AF_INET;
		hdr = 20;
		assert_int_equal(be16(p + 2), len);
		src = p + 12;
		dst = p + 16;
	} else {
		assert_int_equal(p[0] >> 4, 6);
		family = AF_INET6;
		hdr = 40;
		assert_int_equal(40 + be16(p + 4), len);
		src = p + 8;
		dst = p + 24;
	}
	seq = be32(p + hdr);
	build_pkt(want, family, src, dst, seq, len);
	assert_memory_equal(p, want, len);
	return seq;
}

/* ---- the ops: what the daemon would do -------------------------------------- */

static struct logrec *log_append(struct world *w)
{
	if (w->nlog == w->caplog) {
		size_t cap = w->caplog ? w->caplog * 2 : 1024;
		struct logrec *l = realloc(w->log, cap * sizeof(*l));

		assert_non_null(l);
		w->log = l;
		w->caplog = cap;
	}
	memset(&w->log[w->nlog], 0, sizeof(w->log[0]));
	return &w->log[w->nlog++];
}

static void op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	struct node *n = ctx;
	struct world *w = n->w;
	struct datagram *d;
	struct logrec *r;

	assert_true(len <= BUF_ROOM);
	assert_true(w->wire_count < WIRE_MAX);
	d = &w->wire[(w->wire_head + w->wire_count++) % WIRE_MAX];
	d->from = n->id;
	d->src = n->addr;
	d->dst = *ep;
	d->len = len;
	memcpy(d->data, buf, len);
	if (peer)
		n->wire_bytes += len;

	d->log = w->nlog;
	r = log_append(w);
	r->at = w->now.mono;
	r->from = n->id;
	r->to = -1;
	r->has_peer = peer != NULL;
	r->dst = *ep;
	r->verdict = WG_DROP_COUNT;
	r->len = len;
	r->type = message_type_of(buf, len);
	memcpy(r->head, buf, len < LOG_HEAD ? len : LOG_HEAD);
}

static void op_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len)
{
	struct node *n = ctx;
	uint32_t seq = check_pkt(pkt, len);

	assert_non_null(peer);
	assert_true(seq < MAX_SEQ);
	n->seen[seq]++;
	n->delivered++;
	memcpy(n->last_rx, pkt, len);
	n->last_rx_len = len;
}

/* Encrypt what is staged for peer with its current keypair; keep the rest staged. */
static size_t flush_stage(struct node *n, struct wg_peer *peer)
{
	struct stage *s = peer->user;
	struct wg_now now = n->w->now;
	uint8_t buf[BUF_ROOM];
	size_t sent = 0, bytes = 0, len;

	while (s->count) {
		const struct staged *p = &s->q[s->head];

		assert_true(wg_packet_room(p->len) <= sizeof(buf));
		memcpy(buf + DATA_HEADER_LEN, p->data, p->len);
		if (wg_peer_encrypt(peer, now, buf, p->len, &len))
			break;
		s->head = (s->head + 1) % STAGE_MAX;
		s->count--;
		n->dev->ops->send(n, peer, &peer->endpoint, buf, len);
		bytes += len;
		sent++;
	}
	if (sent)
		wg_peer_sent(peer, now, bytes, true);
	return sent;
}

static size_t op_keypair_ready(void *ctx, struct wg_peer *peer)
{
	return flush_stage(ctx, peer);
}

static void op_purge_staged(void *ctx, struct wg_peer *peer)
{
	struct stage *s = peer->user;

	(void)ctx;
	s->head = s->count = 0;
	s->purges++;
}

static void op_event(void *ctx, struct wg_peer *peer, const struct wg_event_info *e)
{
	struct node *n = ctx;

	(void)peer;
	assert_true((unsigned int)e->ev < EVENTS);
	n->events[e->ev]++;
	n->last_event[e->ev] = *e;
	if (e->ev == WG_EVENT_HANDSHAKE_FAILED)
		n->last_fail = e->reason;
	if (e->ev == WG_EVENT_HANDSHAKE_COMPLETE && e->initiator) {
		assert_true(n->n_hs < MAX_HS);
		n->hs_at[n->n_hs++] = n->w->now.mono;
	}
}

static void op_peer_removed(void *ctx, struct wg_peer *peer)
{
	struct node *n = ctx;

	if (n->peer == peer)
		n->peer = NULL;
}

static const struct wg_device_ops ops = {
	.send = op_send,
	.deliver = op_deliver,
	.keypair_ready = op_keypair_ready,
	.purge_staged = op_purge_staged,
	.event = op_event,
	.peer_removed = op_peer_removed,
};

/* Route a packet from the TUN side, stage it, and send whatever can go. */
static size_t tun_send(struct node *n, const uint8_t *pkt, size_t len)
{
	struct wg_peer *peer = wg_device_route(n->dev, pkt, len);
	struct stage *s;

	assert_non_null(peer);
	s = peer->user;
	if (s->count == STAGE_MAX) {
		s->head = (s->head + 1) % STAGE_MAX;
		s->count--;
	}
	s->q[(s->head + s->count) % STAGE_MAX].len = len;
	memcpy(s->q[(s->head + s->count) % STAGE_MAX].data, pkt, len);
	s->count++;
	return flush_stage(n, peer);
}

/* A fresh packet from one node's tunnel address to another's. */
static size_t send_pkt(struct node *from, const struct node *to, int family, size_t len)
{
	uint8_t pkt[MAX_PKT];

	if (family == AF_INET)
		build_pkt(pkt, family, from->tun4, to->tun4, from->tx_seq++, len);
	else
		build_pkt(pkt, family, from->tun6, to->tun6, from->tx_seq++, len);
	return tun_send(from, pkt, len);
}

/* ---- the wire and the clock --------------------------------------------------- */

static struct node *node_at(struct world *w, const struct wg_endpoint *ep)
{
	int i;

	for (i = 0; i < NODES; i++)
		if (w->n[i].dev && wg_endpoint_equal_addr(&w->n[i].addr, ep))
			return &w->n[i];
	return NULL;
}

static bool wire_take(struct world *w, struct datagram *out)
{
	if (!w->wire_count)
		return false;
	*out = w->wire[w->wire_head];
	w->wire_head = (w->wire_head + 1) % WIRE_MAX;
	w->wire_count--;
	return true;
}

/* Deliver everything on the wire, including what the deliveries send back. */
static void pump(struct world *w)
{
	struct datagram d;
	unsigned int guard = 0;

	while (wire_take(w, &d)) {
		struct node *to = node_at(w, &d.dst);
		enum wg_drop v;

		assert_true(++guard < 100000);
		if (w->n[d.from].blackholed || !to)
			continue;
		v = wg_device_receive(to->dev, w->now, &d.src, d.data, d.len);
		to->verdicts[v]++;
		w->log[d.log].to = to->id;
		w->log[d.log].verdict = v;
	}
}

static void set_time(struct world *w, uint64_t mono)
{
	assert_true(mono >= w->now.mono);
	w->now.mono = mono;
	w->now.wall = w->wall0 + (mono - w->mono0);
}

static uint64_t next_deadline(const struct world *w)
{
	uint64_t next = UINT64_MAX, d;
	const struct wg_peer *p;
	int i;

	for (i = 0; i < NODES; i++) {
		if (!w->n[i].dev)
			continue;
		for (p = wg_device_peer_first(w->n[i].dev); p; p = wg_device_peer_next(p)) {
			d = wg_peer_next_deadline(p);
			if (d < next)
				next = d;
		}
	}
	return next;
}

static void run_timers(struct world *w)
{
	struct wg_peer *p;
	int i;

	for (i = 0; i < NODES; i++) {
		if (!w->n[i].dev)
			continue;
		for (p = wg_device_peer_first(w->n[i].dev); p; p = wg_device_peer_next(p))
			wg_peer_run_timers(p, w->now);
		pump(w);
	}
}

/* Jump from deadline to deadline up to mono, firing timers and pumping at each. */
static void advance_to(struct world *w, uint64_t mono)
{
	unsigned int guard = 0;
	uint64_t d;

	pump(w);
	while ((d = next_deadline(w)) <= mono) {
		assert_true(++guard < 1000000);
		set_time(w, d > w->now.mono ? d : w->now.mono);
		run_timers(w);
	}
	set_time(w, mono);
}

static void advance(struct world *w, uint64_t delta)
{
	advance_to(w, w->now.mono + delta);
}

/* ---- setting up ------------------------------------------------------------------ */

static void node_set_addr4(struct node *n, uint32_t host_addr, uint16_t port)
{
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.addr.in4.sin_family = AF_INET;
	n->addr.addr.in4.sin_port = htons(port);
	n->addr.addr.in4.sin_addr.s_addr = htonl(host_addr);
}

static void node_init(struct world *w, int id)
{
	struct node *n = &w->n[id];
	int i;

	n->w = w;
	n->id = id;
	n->rs.s = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	n->rng.fill = test_rng_fill;
	n->rng.ctx = &n->rs;
	n->dev = wg_device_new(&ops, n, &n->rng);
	assert_non_null(n->dev);
	for (i = 0; i < 32; i++)
		n->priv[i] = (uint8_t)(0x40 * (id + 1) + 13 * i + 1);
	assert_int_equal(wg_device_set_private_key(n->dev, n->priv), 0);
	memcpy(n->pub, wg_device_identity(n->dev)->public_key, 32);
	node_set_addr4(n, 0xc6120001u + (uint32_t)id, 51820); /* 198.18.0.x */
	n->tun4[0] = 192;
	n->tun4[1] = 0;
	n->tun4[2] = 2;
	n->tun4[3] = (uint8_t)(id + 1);
	n->tun6[0] = 0xfd;
	n->tun6[15] = (uint8_t)(id + 1);
}

/* n adds other as its peer: other's tunnel addresses, other's endpoint. */
static void node_link(struct node *n, const struct node *other)
{
	struct allowedips *t = wg_device_allowedips(n->dev);
	struct wg_peer *p;

	assert_int_equal(wg_device_peer_add(n->dev, other->pub, &p), 0);
	p->user = &n->stage;
	assert_int_equal(allowedips_insert(t, AF_INET, other->tun4, 32, &p->allowedips), 0);
	assert_int_equal(allowedips_insert(t, AF_INET6, other->tun6, 128, &p->allowedips), 0);
	wg_peer_set_endpoint(p, &other->addr.addr.sa, sizeof(struct sockaddr_in));
	n->peer = p;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w)
		return -1;
	w->mono0 = 1 * SEC; /* a clock shortly after boot */
	w->wall0 = 1700000000ULL * SEC;
	w->now.mono = w->mono0;
	w->now.wall = w->wall0;
	node_init(w, NODE_A);
	node_init(w, NODE_B);
	node_link(&w->n[NODE_A], &w->n[NODE_B]);
	node_link(&w->n[NODE_B], &w->n[NODE_A]);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	int i;

	for (i = 0; i < NODES; i++)
		wg_device_free(w->n[i].dev);
	free(w->log);
	free(w);
	return 0;
}

/* One packet each way at the current time; the first one starts the handshake. */
static void establish(struct world *w)
{
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint64_t da = a->delivered, db = b->delivered;

	send_pkt(a, b, AF_INET, 64);
	pump(w);
	assert_int_equal(b->delivered, db + 1);
	assert_int_equal(send_pkt(b, a, AF_INET, 64), 1);
	pump(w);
	assert_int_equal(a->delivered, da + 1);
	assert_non_null(a->peer->keypairs.current);
	assert_non_null(b->peer->keypairs.current);
}

static size_t count_sent(const struct world *w, size_t from_log, int from, uint32_t type)
{
	size_t i, c = 0;

	for (i = from_log; i < w->nlog; i++)
		if (w->log[i].from == from && w->log[i].type == type)
			c++;
	return c;
}

static uint64_t bad_verdicts(const struct node *n)
{
	uint64_t sum = 0;
	int i;

	for (i = WG_DROP_NONE + 1; i < WG_DROP_COUNT; i++)
		sum += n->verdicts[i];
	return sum;
}

static size_t keypairs_in_use(const struct wg_peer *p)
{
	return (p->keypairs.previous != NULL) + (p->keypairs.current != NULL) +
	       (p->keypairs.next != NULL);
}

/* ---- 1, 2: the first packet, IPv6, pre-shared keys ------------------------------ */

static void test_first_packet(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint8_t pkt[MAX_PKT];

	build_pkt(pkt, AF_INET, a->tun4, b->tun4, a->tx_seq++, 83);
	assert_int_equal(tun_send(a, pkt, 83), 0); /* no session: staged */
	assert_int_equal(a->stage.count, 1);
	assert_int_equal(w->wire_count, 1);
	assert_int_equal(b->delivered, 0);
	pump(w);

	/* Delivered intact: the 13 bytes of padding are gone. */
	assert_int_equal(b->delivered, 1);
	assert_int_equal(b->last_rx_len, 83);
	assert_memory_equal(b->last_rx, pkt, 83);
	assert_int_equal(a->stage.count, 0);

	/* initiation, response, the staged packet (no separate keepalive). */
	assert_int_equal(w->nlog, 3);
	assert_int_equal(w->log[0].from, NODE_A);
	assert_int_equal(w->log[0].type, MESSAGE_HANDSHAKE_INITIATION);
	assert_int_equal(w->log[0].len, 148);
	assert_int_equal(w->log[1].from, NODE_B);
	assert_int_equal(w->log[1].type, MESSAGE_HANDSHAKE_RESPONSE);
	assert_int_equal(w->log[1].len, 92);
	assert_int_equal(w->log[2].from, NODE_A);
	assert_int_equal(w->log[2].type, MESSAGE_DATA);
	assert_int_equal(w->log[2].len, 32 + 96);

	/* B answers at once: its keypair was confirmed by A's packet. */
	build_pkt(pkt, AF_INET, b->tun4, a->tun4, b->tx_seq++, 61);
	assert_int_equal(tun_send(b, pkt, 61), 1);
	pump(w);
	assert_int_equal(a->delivered, 1);
	assert_int_equal(a->last_rx_len, 61);
	assert_memory_equal(a->last_rx, pkt, 61);
	assert_int_equal(w->nlog, 4);
	assert_int_equal(w->log[3].len, 32 + 64);

	assert_int_equal(a->peer->tx_bytes, 148 + 128);
	assert_int_equal(b->peer->rx_bytes, 148 + 128);
	assert_int_equal(b->peer->tx_bytes, 92 + 96);
	assert_int_equal(a->peer->rx_bytes, 92 + 96);
	assert_int_equal(a->wire_bytes, a->peer->tx_bytes);
	assert_int_equal(b->wire_bytes, b->peer->tx_bytes);
	assert_int_equal(a->verdicts[WG_DROP_NONE], 2);
	assert_int_equal(b->verdicts[WG_DROP_NONE], 2);
	assert_int_equal(bad_verdicts(a) + bad_verdicts(b), 0);
	assert_int_equal(wg_device_stats(a->dev)->handshakes_completed, 1);
	assert_int_equal(wg_device_stats(b->dev)->handshakes_completed, 1);
	assert_int_equal(a->peer->last_handshake_wall, w->now.wall);
	assert_int_equal(b->peer->last_handshake_wall, w->now.wall);
	assert_int_equal(a->n_hs, 1);
	assert_int_equal(b->n_hs, 0); /* B was the responder */
}

/*
 * The responder's staged data goes out when the initiator's first packet
 * confirms the session. If it never gets an answer, a new handshake is due
 * after KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (the kernel's wg_timers_data_sent): the confirming
 * packet's own timer events must not cancel that timer afterwards.
 */
static void test_unanswered_confirmation(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram d;
	uint64_t sent, t0;

	assert_int_equal(send_pkt(a, b, AF_INET, 100), 0);
	assert_true(wire_take(w, &d)); /* A's initiation */
	assert_int_equal(wg_device_receive(b->dev, w->now, &d.src, d.data, d.len), WG_DROP_NONE);
	/* B has data too before the session is confirmed: it waits, staged. */
	assert_int_equal(send_pkt(b, a, AF_INET, 100), 0);
	assert_int_equal(b->stage.count, 1);
	assert_true(wire_take(w, &d)); /* B's response: A sends its staged packet */
	assert_int_equal(d.data[0], MESSAGE_HANDSHAKE_RESPONSE);
	assert_int_equal(wg_device_receive(a->dev, w->now, &d.src, d.data, d.len), WG_DROP_NONE);
	assert_true(wire_take(w, &d)); /* A's data confirms B's session: B sends its packet */
	assert_int_equal(d.data[0], MESSAGE_DATA);
	assert_int_equal(wg_device_receive(b->dev, w->now, &d.src, d.data, d.len), WG_DROP_NONE);
	assert_int_equal(b->stage.count, 0);
	sent = b->events[WG_EVENT_HANDSHAKE_SENT];
	t0 = w->now.mono;

	a->blackholed = true; /* A hears B but never answers again */
	advance_to(w, t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - MSEC);
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_SENT], sent);
	advance_to(w, t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX_MS * MSEC);
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_SENT], sent + 1);
}

static void test_ipv6_with_psk(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint8_t psk[32], pkt[MAX_PKT];

	memset(psk, 0x5a, sizeof(psk));
	wg_peer_set_psk(a->peer, psk);
	wg_peer_set_psk(b->peer, psk);
	assert_true(a->peer->has_psk && b->peer->has_psk);

	/* A full-MTU packet is not padded at all. */
	build_pkt(pkt, AF_INET6, a->tun6, b->tun6, a->tx_seq++, MAX_PKT);
	assert_int_equal(tun_send(a, pkt, MAX_PKT), 0);
	pump(w);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(b->last_rx_len, MAX_PKT);
	assert_memory_equal(b->last_rx, pkt, MAX_PKT);
	assert_int_equal(w->log[2].len, 32 + MAX_PKT);

	build_pkt(pkt, AF_INET6, b->tun6, a->tun6, b->tx_seq++, 44);
	assert_int_equal(tun_send(b, pkt, 44), 1);
	pump(w);
	assert_int_equal(a->delivered, 1);
	assert_int_equal(a->last_rx_len, 44);
	assert_memory_equal(a->last_rx, pkt, 44);

	assert_int_equal(a->peer->tx_bytes, 148 + 32 + MAX_PKT);
	assert_int_equal(b->peer->rx_bytes, a->peer->tx_bytes);
	assert_int_equal(b->peer->tx_bytes, 92 + 32 + 48);
	assert_int_equal(a->peer->rx_bytes, b->peer->tx_bytes);
	assert_int_equal(bad_verdicts(a) + bad_verdicts(b), 0);
}

static void test_psk_mismatch(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint8_t psk_a[32], psk_b[32];
	uint64_t t0 = w->now.mono;

	memset(psk_a, 0x5a, sizeof(psk_a));
	memcpy(psk_b, psk_a, sizeof(psk_b));
	psk_b[31] ^= 1;
	wg_peer_set_psk(a->peer, psk_a);
	wg_peer_set_psk(b->peer, psk_b);

	send_pkt(a, b, AF_INET, 100);
	advance_to(w, t0 + 31 * SEC);

	/* B accepts each initiation (the psk comes later), A refuses each response. */
	assert_int_equal(b->delivered, 0);
	assert_null(a->peer->keypairs.current);
	assert_null(b->peer->keypairs.current);
	assert_true(count_sent(w, 0, NODE_A, MESSAGE_HANDSHAKE_INITIATION) >= 6);
	assert_int_equal(count_sent(w, 0, NODE_B, MESSAGE_HANDSHAKE_RESPONSE),
			 count_sent(w, 0, NODE_A, MESSAGE_HANDSHAKE_INITIATION));
	assert_int_equal(a->verdicts[WG_DROP_HANDSHAKE],
			 count_sent(w, 0, NODE_B, MESSAGE_HANDSHAKE_RESPONSE));
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_FAILED], a->verdicts[WG_DROP_HANDSHAKE]);
	/* Each refusal is counted on the peer, the latest kept with its reason and time. */
	assert_int_equal(a->peer->handshake_failures, a->events[WG_EVENT_HANDSHAKE_FAILED]);
	assert_int_equal(a->peer->last_failure, WG_REFUSAL_BAD_AUTH);
	assert_true(a->peer->last_failure_wall > w->now.wall - 6 * SEC);
	assert_true(a->peer->last_failure_wall <= w->now.wall);
	assert_int_equal(b->peer->handshake_failures, 0);
	assert_int_equal(b->peer->last_failure_wall, 0);
	assert_int_equal(count_sent(w, 0, NODE_A, MESSAGE_DATA), 0);
	assert_int_equal(a->stage.count, 1); /* still waiting for a session */
	assert_int_equal(wg_device_stats(a->dev)->handshakes_completed, 0);
	assert_int_equal(wg_device_stats(b->dev)->handshakes_completed, 0);

	/* Fixing the psk lets the next retry through, and the staged packet with it. */
	wg_peer_set_psk(b->peer, psk_a);
	advance(w, 6 * SEC);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(a->stage.count, 0);
}

/* ---- 3: hours of traffic ---------------------------------------------------------- */

static void test_hours_of_traffic(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	const unsigned int seconds = 2 * 3600;
	struct test_rng_state rs = { 0x7a11c0de5eedULL };
	unsigned int s;
	uint32_t i;

	for (s = 0; s < seconds; s++) {
		/* Either side may speak first, so both see a keypair reach its rekey age. */
		bool b_first = s > 0 && test_rng_next(&rs) & 1;

		if (b_first) {
			send_pkt(b, a, s % 2 ? AF_INET6 : AF_INET, 44 + (s * 53) % (MAX_PKT - 44));
			pump(w);
		}
		send_pkt(a, b, AF_INET, 24 + (s * 37) % (MAX_PKT - 24));
		pump(w);
		if (!b_first) {
			send_pkt(b, a, s % 2 ? AF_INET6 : AF_INET, 44 + (s * 53) % (MAX_PKT - 44));
			pump(w);
		}
		/*
		 * With no latency the initiator's confirmation (its staged data or
		 * else a keepalive) reaches B at once: B never holds a
		 * next keypair when the wire is quiet.
		 */
		assert_null(b->peer->keypairs.next);
		assert_int_equal(wg_device_stats(b->dev)->handshakes_completed, a->n_hs);
		/* Three slots, plus at most one handshake in flight. */
		assert_true(index_table_count(a->dev->index) <= 4);
		assert_true(index_table_count(b->dev->index) <= 4);
		assert_true(keypairs_in_use(a->peer) <= 3 && keypairs_in_use(b->peer) <= 3);
		assert_true(a->peer->keypairs.current->created + REKEY_AFTER_TIME + 2 * SEC >
			    w->now.mono);
		advance(w, SEC);
	}

	/* Nothing lost, nothing duplicated, nothing refused. */
	assert_int_equal(a->tx_seq, seconds);
	assert_int_equal(b->tx_seq, seconds);
	for (i = 0; i < seconds; i++) {
		assert_int_equal(b->seen[i], 1);
		assert_int_equal(a->seen[i], 1);
	}
	assert_int_equal(a->stage.count + b->stage.count, 0);
	assert_int_equal(bad_verdicts(a) + bad_verdicts(b), 0);
	assert_int_equal(a->peer->tx_bytes, b->peer->rx_bytes);
	assert_int_equal(b->peer->tx_bytes, a->peer->rx_bytes);
	assert_int_equal(a->wire_bytes, a->peer->tx_bytes);
	assert_int_equal(b->wire_bytes, b->peer->tx_bytes);

	/* Only the initiator rekeys on age: one handshake every 120 s and a bit. */
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_SENT], 0);
	assert_true(a->n_hs >= 55 && a->n_hs <= 62);
	for (i = 1; i < a->n_hs; i++) {
		uint64_t gap = a->hs_at[i] - a->hs_at[i - 1];

		assert_true(gap >= REKEY_AFTER_TIME && gap <= REKEY_AFTER_TIME + 2 * SEC);
	}
	assert_int_equal(wg_device_stats(a->dev)->handshakes_completed, a->n_hs);
	assert_int_equal(wg_device_stats(b->dev)->handshakes_completed, a->n_hs);
	assert_int_equal(count_sent(w, 0, NODE_A, MESSAGE_HANDSHAKE_INITIATION), a->n_hs);
}

/* ---- 4: silence ------------------------------------------------------------------- */

static void test_silence_wipes_keys(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint64_t t0 = w->now.mono;
	size_t mark;

	establish(w); /* both keypairs derived at t0 */
	mark = w->nlog;
	advance_to(w, t0 + ZERO_KEY_MATERIAL_TIMEOUT - 1);

	/* A answers B's last packet with one passive keepalive; B sends nothing. */
	assert_int_equal(w->nlog, mark + 1);
	assert_int_equal(w->log[mark].from, NODE_A);
	assert_int_equal(w->log[mark].len, KEEPALIVE_LEN);
	assert_int_equal(w->log[mark].at, t0 + KEEPALIVE_TIMEOUT);
	assert_int_equal(w->log[mark].verdict, WG_DROP_NONE);
	assert_non_null(a->peer->keypairs.current);
	assert_non_null(b->peer->keypairs.current);

	assert_true(wg_peer_has_session(a->peer));
	advance(w, 1);
	assert_null(a->peer->keypairs.current);
	assert_null(b->peer->keypairs.current);
	assert_false(wg_peer_has_session(a->peer));
	assert_int_equal(a->last_event[WG_EVENT_KEYS_WIPED].after_sec, ZERO_KEY_MATERIAL_TIMEOUT / SEC);
	assert_int_equal(keypairs_in_use(a->peer) + keypairs_in_use(b->peer), 0);
	assert_int_equal(index_table_count(a->dev->index), 0);
	assert_int_equal(index_table_count(b->dev->index), 0);
	assert_int_equal(a->events[WG_EVENT_KEYS_WIPED], 1);
	assert_int_equal(b->events[WG_EVENT_KEYS_WIPED], 1);
	assert_int_equal(wg_peer_next_deadline(a->peer), UINT64_MAX);
	assert_int_equal(wg_peer_next_deadline(b->peer), UINT64_MAX);

	advance(w, 3600 * SEC);
	assert_int_equal(w->nlog, mark + 1);

	/* New traffic simply starts a new session. */
	establish(w);
	assert_int_equal(bad_verdicts(a) + bad_verdicts(b), 0);
}

/* ---- 5: an unreachable peer -------------------------------------------------------- */

static void test_unreachable_gives_up(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint64_t t0 = w->now.mono, prev = 0, first_gap = 0;
	bool gaps_differ = false;
	size_t i, inits = 0, mark;

	a->blackholed = true;
	assert_int_equal(send_pkt(a, b, AF_INET, 100), 0);
	advance_to(w, t0 + 150 * SEC);

	for (i = 0; i < w->nlog; i++) {
		const struct logrec *r = &w->log[i];

		assert_int_equal(r->from, NODE_A);
		assert_int_equal(r->type, MESSAGE_HANDSHAKE_INITIATION);
		if (inits == 0) {
			assert_int_equal(r->at, t0);
		} else {
			uint64_t gap = r->at - prev;

			assert_true(gap >= REKEY_TIMEOUT &&
				    gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX_MS * MSEC);
			if (inits == 1)
				first_gap = gap;
			else if (gap != first_gap)
				gaps_differ = true;
		}
		prev = r->at;
		inits++;
	}
	assert_int_equal(inits, 20);
	assert_true(gaps_differ); /* the jitter is really random */
	assert_int_equal(a->stage.purges, 1);
	assert_int_equal(a->stage.count, 0);
	assert_int_equal(a->events[WG_EVENT_GAVE_UP], 1);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_SENT], 20);
	/* The events count the attempts themselves: the glue does no arithmetic. */
	assert_int_equal(a->last_event[WG_EVENT_HANDSHAKE_SENT].attempt, 20);
	assert_true(a->last_event[WG_EVENT_HANDSHAKE_SENT].retry);
	assert_int_equal(a->last_event[WG_EVENT_GAVE_UP].attempt, 20);
	assert_int_equal(a->last_event[WG_EVENT_GAVE_UP].reason, WG_REFUSAL_UNANSWERED);
	/* Giving up is a failure of its own: -ETIMEDOUT, at the time it happened. */
	assert_int_equal(a->peer->handshake_failures, 1);
	assert_int_equal(a->peer->last_failure, WG_REFUSAL_UNANSWERED);
	assert_true(a->peer->last_failure_wall > w->wall0 + (t0 - w->mono0) + 90 * SEC);
	assert_true(a->peer->last_failure_wall <= w->now.wall);
	assert_int_equal(b->peer->rx_bytes, 0);

	/* Nothing more, ever (the zero-key timer fires silently). */
	mark = w->nlog;
	advance(w, 3600 * SEC);
	assert_int_equal(w->nlog, mark);
	assert_int_equal(wg_peer_next_deadline(a->peer), UINT64_MAX);
	assert_int_equal(a->stage.purges, 1);
}

/* ---- 6: under load --------------------------------------------------------------------- */

static void test_cookie_round_trip(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	static const uint8_t zero[COOKIE_LEN];
	uint64_t t0 = w->now.mono, gap;

	wg_device_force_under_load(b->dev, true);
	assert_int_equal(send_pkt(a, b, AF_INET, 100), 0);
	pump(w);

	/* Initiation without mac2, answered with a cookie reply to its very source. */
	assert_int_equal(w->nlog, 2);
	assert_int_equal(w->log[0].type, MESSAGE_HANDSHAKE_INITIATION);
	assert_memory_equal(w->log[0].head + INITIATION_MAC2, zero, COOKIE_LEN);
	assert_int_equal(w->log[0].verdict, WG_DROP_COOKIE_SENT);
	assert_int_equal(w->log[1].from, NODE_B);
	assert_int_equal(w->log[1].type, MESSAGE_HANDSHAKE_COOKIE);
	assert_int_equal(w->log[1].len, COOKIE_REPLY_LEN);
	assert_false(w->log[1].has_peer);
	assert_true(wg_endpoint_equal_addr(&w->log[1].dst, &a->addr));
	assert_int_equal(w->log[1].verdict, WG_DROP_NONE);
	assert_int_equal(wg_device_stats(b->dev)->cookie_replies_sent, 1);
	assert_int_equal(b->verdicts[WG_DROP_COOKIE_SENT], 1);
	assert_int_equal(b->peer->rx_bytes, 0);
	assert_int_equal(a->peer->rx_bytes, 0); /* cookie replies are not counted */
	assert_true(wg_device_under_load(b->dev, w->now.mono));

	/* The cookie does not trigger a resend: the retransmit does, with mac2. */
	advance(w, 6 * SEC);
	assert_int_equal(w->log[2].from, NODE_A);
	assert_int_equal(w->log[2].type, MESSAGE_HANDSHAKE_INITIATION);
	gap = w->log[2].at - t0;
	assert_true(gap >= REKEY_TIMEOUT && gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX_MS * MSEC);
	assert_memory_not_equal(w->log[2].head + INITIATION_MAC2, zero, COOKIE_LEN);
	assert_int_equal(w->log[2].verdict, WG_DROP_NONE);
	assert_int_equal(w->log[3].type, MESSAGE_HANDSHAKE_RESPONSE);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(wg_device_stats(b->dev)->cookie_replies_sent, 1);

	/* Data flows both ways while B stays under load. */
	assert_int_equal(send_pkt(b, a, AF_INET, 70), 1);
	assert_int_equal(send_pkt(a, b, AF_INET6, 70), 1);
	pump(w);
	assert_int_equal(a->delivered, 1);
	assert_int_equal(b->delivered, 2);
	assert_int_equal(wg_device_stats(b->dev)->cookie_replies_sent, 1);
}

/* ---- 7: hostile input --------------------------------------------------------------------- */

static const struct logrec *first_sent(const struct world *w, int from, uint32_t type)
{
	size_t i;

	for (i = 0; i < w->nlog; i++)
		if (w->log[i].from == from && w->log[i].type == type)
			return &w->log[i];
	fail_msg("no message of type %u from node %d", type, from);
	return NULL;
}

static enum wg_drop feed(struct world *w, struct node *to, const struct wg_endpoint *src,
			 const uint8_t *msg, size_t len)
{
	uint8_t buf[BUF_ROOM];

	assert_true(len <= sizeof(buf));
	memcpy(buf, msg, len);
	return wg_device_receive(to->dev, w->now, src, buf, len);
}

static void test_hostile_input(void **state)
{
	static const struct {
		uint32_t type;
		size_t len;
	} wrong[] = {
		{ MESSAGE_HANDSHAKE_INITIATION, 4 },
		{ MESSAGE_HANDSHAKE_INITIATION, 147 },
		{ MESSAGE_HANDSHAKE_INITIATION, 149 },
		{ MESSAGE_HANDSHAKE_INITIATION, 1500 },
		{ MESSAGE_HANDSHAKE_RESPONSE, 91 },
		{ MESSAGE_HANDSHAKE_RESPONSE, 93 },
		{ MESSAGE_HANDSHAKE_RESPONSE, 148 },
		{ MESSAGE_HANDSHAKE_COOKIE, 63 },
		{ MESSAGE_HANDSHAKE_COOKIE, 65 },
		{ MESSAGE_HANDSHAKE_COOKIE, 92 },
		{ MESSAGE_DATA, 4 },
		{ MESSAGE_DATA, DATA_MIN_LEN - 1 },
		{ MESSAGE_INVALID, 148 },
		{ 5, 64 },
		{ 0x101, 148 },		/* reserved bytes must be zero */
		{ 0x1000004, 80 },
		{ 0xffffffff, 92 },
	};
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B], *c = &w->n[NODE_C];
	struct test_rng_state rs = { 0x0badc0ffee15bad5ULL };
	struct wg_endpoint evil;
	struct noise_keypair *kpa, *kpb;
	struct datagram cap, back;
	uint8_t buf[BUF_ROOM], init[INITIATION_LEN], resp[RESPONSE_LEN];
	uint32_t live_index, pending;
	uint64_t delivered_b, fails;
	size_t len, i, bit;
	int variant;

	establish(w);
	memcpy(init, first_sent(w, NODE_A, MESSAGE_HANDSHAKE_INITIATION)->head, sizeof(init));
	memcpy(resp, first_sent(w, NODE_B, MESSAGE_HANDSHAKE_RESPONSE)->head, sizeof(resp));
	kpa = a->peer->keypairs.current;
	kpb = b->peer->keypairs.current;

	/* A captured transport packet each way, then delivered as normal. */
	assert_int_equal(send_pkt(a, b, AF_INET, 60), 1);
	assert_true(wire_take(w, &cap));
	assert_int_equal(cap.len, 32 + 64);
	assert_int_equal(feed(w, b, &a->addr, cap.data, cap.len), WG_DROP_NONE);
	assert_int_equal(send_pkt(b, a, AF_INET, 60), 1);
	assert_true(wire_take(w, &back));
	assert_int_equal(feed(w, a, &b->addr, back.data, back.len), WG_DROP_NONE);
	live_index = le32_read(cap.data + DATA_RECEIVER);
	delivered_b = b->delivered;

	memset(&evil, 0, sizeof(evil));
	evil.addr.in4.sin_family = AF_INET;
	evil.addr.in4.sin_port = htons(666);
	evil.addr.in4.sin_addr.s_addr = htonl(0xcb007109); /* 203.0.113.9 */

	/*
	 * Random datagrams of every length: raw, then with each type word, with
	 * B's live receiver index planted where each type carries one.
	 */
	for (len = 0; len <= 1500; len++) {
		for (variant = 0; variant <= 4; variant++) {
			test_rng_fill(&rs, buf, len);
			if (variant && len >= 4)
				le32_write(buf, (uint32_t)variant);
			if (variant == MESSAGE_HANDSHAKE_RESPONSE && len >= 12)
				le32_write(buf + RESPONSE_RECEIVER, live_index);
			if ((variant == MESSAGE_HANDSHAKE_COOKIE || variant == MESSAGE_DATA) &&
			    len >= 8 && len % 2)
				le32_write(buf + 4, live_index);
			assert_int_not_equal(feed(w, b, &evil, buf, len), WG_DROP_NONE);
			assert_int_not_equal(feed(w, a, &evil, buf, len), WG_DROP_NONE);
		}
	}

	/* Every type with a wrong length, and types that do not exist. */
	for (i = 0; i < ARRAY_SIZE(wrong); i++) {
		memset(buf, 0, sizeof(buf));
		le32_write(buf, wrong[i].type);
		assert_int_equal(feed(w, b, &a->addr, buf, wrong[i].len), WG_DROP_MALFORMED);
	}

	/*
	 * A truncated or extended initiation, then the genuine one replayed,
	 * late enough that only its old timestamp can betray it.
	 */
	advance(w, 1 * SEC);
	assert_int_equal(w->wire_count, 0);
	fails = b->events[WG_EVENT_HANDSHAKE_FAILED];
	assert_int_equal(feed(w, b, &a->addr, init, INITIATION_LEN - 1), WG_DROP_MALFORMED);
	memcpy(buf, init, INITIATION_LEN);
	buf[INITIATION_LEN] = 0;
	assert_int_equal(feed(w, b, &a->addr, buf, INITIATION_LEN + 1), WG_DROP_MALFORMED);
	assert_int_equal(feed(w, b, &a->addr, init, INITIATION_LEN), WG_DROP_HANDSHAKE);
	assert_int_equal(b->events[WG_EVENT_HANDSHAKE_FAILED], fails + 1);
	assert_int_equal(b->last_fail, WG_REFUSAL_REPLAY);
	assert_int_equal(w->wire_count, 0); /* no response */
	assert_null(b->peer->keypairs.next);
	/* The response replayed to A finds no handshake under its receiver index. */
	assert_int_equal(feed(w, a, &b->addr, resp, RESPONSE_LEN), WG_DROP_HANDSHAKE);

	/* Every single-bit flip of a valid transport packet is refused. */
	for (bit = 0; bit < cap.len * 8; bit++) {
		enum wg_drop v;

		memcpy(buf, cap.data, cap.len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		v = wg_device_receive(b->dev, w->now, &a->addr, buf, cap.len);
		if (bit < 32)
			assert_int_equal(v, WG_DROP_MALFORMED);
		else if (bit < 64)
			assert_true(v == WG_DROP_NO_KEYPAIR || v == WG_DROP_DECRYPT);
		else
			assert_int_equal(v, WG_DROP_DECRYPT);
	}
	/* And the intact packet is a replay now. */
	assert_int_equal(feed(w, b, &a->addr, cap.data, cap.len), WG_DROP_REPLAY);
	assert_int_equal(feed(w, a, &b->addr, back.data, back.len), WG_DROP_REPLAY);

	/* A valid initiation from a key B does not know. */
	node_init(w, NODE_C);
	node_link(c, b);
	assert_int_equal(send_pkt(c, b, AF_INET, 60), 0);
	pump(w);
	assert_int_equal(b->verdicts[WG_DROP_HANDSHAKE], 1);
	assert_int_equal(w->log[w->nlog - 1].from, NODE_C);
	assert_int_equal(w->log[w->nlog - 1].type, MESSAGE_HANDSHAKE_INITIATION);
	assert_null(c->peer->keypairs.current);
	assert_int_equal(wg_device_peer_count(b->dev), 1);

	/* C's pending handshake index is no keypair; a forged cookie reply fails. */
	pending = le32_read(w->log[w->nlog - 1].head + INITIATION_SENDER);
	memset(buf, 0, sizeof(buf));
	le32_write(buf, MESSAGE_DATA);
	le32_write(buf + DATA_RECEIVER, pending);
	assert_int_equal(feed(w, c, &b->addr, buf, 80), WG_DROP_NO_KEYPAIR);
	le32_write(buf, MESSAGE_HANDSHAKE_COOKIE);
	assert_int_equal(feed(w, c, &b->addr, buf, COOKIE_REPLY_LEN), WG_DROP_COOKIE);
	assert_false(c->peer->cookie.have_cookie);

	/* None of it reached the TUN or disturbed the session. */
	assert_int_equal(b->delivered, delivered_b);
	assert_ptr_equal(a->peer->keypairs.current, kpa);
	assert_ptr_equal(b->peer->keypairs.current, kpb);
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &a->addr));
	assert_true(wg_endpoint_equal_addr(&a->peer->endpoint, &b->addr));
	advance(w, 2 * SEC);
	assert_false(wg_device_under_load(b->dev, w->now.mono));
	assert_int_equal(send_pkt(a, b, AF_INET6, 200), 1);
	assert_int_equal(send_pkt(b, a, AF_INET, 300), 1);
	pump(w);
	assert_int_equal(b->delivered, delivered_b + 1);
	assert_int_equal(a->delivered, 3);
	assert_ptr_equal(a->peer->keypairs.current, kpa);
	assert_ptr_equal(b->peer->keypairs.current, kpb);
}

/* ---- 8: allowed IPs ------------------------------------------------------------------------ */

/* Encrypt an arbitrary inner packet for peer, past routing and staging. */
static void send_inner(struct node *n, struct wg_peer *peer, const uint8_t *pkt, size_t len)
{
	uint8_t buf[BUF_ROOM];
	size_t out;

	memcpy(buf + DATA_HEADER_LEN, pkt, len);
	assert_int_equal(wg_peer_encrypt(peer, n->w->now, buf, len, &out), 0);
	n->dev->ops->send(n, peer, &peer->endpoint, buf, out);
	wg_peer_sent(peer, n->w->now, out, true);
}

static void test_allowed_ips(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	const uint8_t spoof4[4] = { 192, 0, 2, 99 };
	uint8_t spoof6[16] = { 0xfd }, pkt[MAX_PKT];
	uint64_t delivered;

	spoof6[15] = 0x99;
	establish(w);
	delivered = b->delivered;

	build_pkt(pkt, AF_INET, spoof4, b->tun4, a->tx_seq++, 80);
	assert_int_equal(tun_send(a, pkt, 80), 1);
	pump(w);
	assert_int_equal(b->verdicts[WG_DROP_ALLOWEDIPS], 1);
	assert_int_equal(b->peer->allowedips_drops, 1);
	assert_int_equal(b->delivered, delivered);

	build_pkt(pkt, AF_INET6, spoof6, b->tun6, a->tx_seq++, 80);
	assert_int_equal(tun_send(a, pkt, 80), 1);
	pump(w);
	assert_int_equal(b->verdicts[WG_DROP_ALLOWEDIPS], 2);
	assert_int_equal(b->peer->allowedips_drops, 2);
	assert_int_equal(b->delivered, delivered);

	/* A packet whose IP header claims more than was sent. */
	build_pkt(pkt, AF_INET, a->tun4, b->tun4, a->tx_seq++, 80);
	put_be16(pkt + 2, 81);
	send_inner(a, a->peer, pkt, 80);
	/* Neither IPv4 nor IPv6. */
	pkt[0] = 0x55;
	send_inner(a, a->peer, pkt, 80);
	pump(w);
	assert_int_equal(b->verdicts[WG_DROP_BAD_INNER], 2);
	assert_int_equal(b->delivered, delivered);

	/* Give the addresses to A's entry on B: now they pass. */
	assert_int_equal(allowedips_insert(wg_device_allowedips(b->dev), AF_INET, spoof4, 32,
					   &b->peer->allowedips), 0);
	assert_int_equal(allowedips_insert(wg_device_allowedips(b->dev), AF_INET6, spoof6, 128,
					   &b->peer->allowedips), 0);
	build_pkt(pkt, AF_INET, spoof4, b->tun4, a->tx_seq++, 80);
	assert_int_equal(tun_send(a, pkt, 80), 1);
	build_pkt(pkt, AF_INET6, spoof6, b->tun6, a->tx_seq++, 90);
	assert_int_equal(tun_send(a, pkt, 90), 1);
	pump(w);
	assert_int_equal(b->delivered, delivered + 2);
	assert_int_equal(b->last_rx_len, 90);
	assert_memory_equal(b->last_rx, pkt, 90);
	assert_int_equal(b->peer->allowedips_drops, 2);
	assert_int_equal(b->verdicts[WG_DROP_ALLOWEDIPS], 2);
}

/* ---- 9: roaming --------------------------------------------------------------------------------- */

static void test_roaming(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct wg_endpoint old = a->addr, other;
	const struct logrec *r;
	struct datagram cap;
	uint8_t buf[BUF_ROOM];
	uint64_t changes;

	establish(w);
	changes = b->events[WG_EVENT_ENDPOINT_CHANGED];
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &old));

	/* Unauthenticated or replayed packets from elsewhere move nothing. */
	assert_int_equal(send_pkt(a, b, AF_INET, 50), 1);
	assert_true(wire_take(w, &cap));
	assert_int_equal(feed(w, b, &old, cap.data, cap.len), WG_DROP_NONE);
	memset(&other, 0, sizeof(other));
	other.addr.in4.sin_family = AF_INET;
	other.addr.in4.sin_port = htons(4444);
	other.addr.in4.sin_addr.s_addr = htonl(0xcb007105);
	assert_int_equal(feed(w, b, &other, cap.data, cap.len), WG_DROP_REPLAY);
	memcpy(buf, cap.data, cap.len);
	buf[cap.len - 1] ^= 1;
	assert_int_equal(wg_device_receive(b->dev, w->now, &other, buf, cap.len), WG_DROP_DECRYPT);
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &old));
	assert_int_equal(b->events[WG_EVENT_ENDPOINT_CHANGED], changes);

	/* A moves to another address and port (a NAT rebinding). */
	node_set_addr4(a, 0xc612004d, 40000); /* 198.18.0.77 */
	assert_int_equal(send_pkt(a, b, AF_INET, 50), 1);
	pump(w);
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &a->addr));
	assert_int_equal(b->events[WG_EVENT_ENDPOINT_CHANGED], changes + 1);
	assert_int_equal(send_pkt(b, a, AF_INET, 50), 1);
	pump(w);
	r = &w->log[w->nlog - 1];
	assert_int_equal(r->from, NODE_B);
	assert_true(wg_endpoint_equal_addr(&r->dst, &a->addr));
	assert_int_equal(r->to, NODE_A);
	assert_int_equal(r->verdict, WG_DROP_NONE);
	assert_int_equal(a->delivered, 2);

	/* And on to IPv6: 2001:db8::1 port 51821. */
	memset(&a->addr, 0, sizeof(a->addr));
	a->addr.addr.in6.sin6_family = AF_INET6;
	a->addr.addr.in6.sin6_port = htons(51821);
	a->addr.addr.in6.sin6_addr.s6_addr[0] = 0x20;
	a->addr.addr.in6.sin6_addr.s6_addr[1] = 0x01;
	a->addr.addr.in6.sin6_addr.s6_addr[2] = 0x0d;
	a->addr.addr.in6.sin6_addr.s6_addr[3] = 0xb8;
	a->addr.addr.in6.sin6_addr.s6_addr[15] = 1;
	assert_int_equal(send_pkt(a, b, AF_INET6, 50), 1);
	pump(w);
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &a->addr));
	assert_int_equal(b->events[WG_EVENT_ENDPOINT_CHANGED], changes + 2);
	assert_int_equal(send_pkt(b, a, AF_INET6, 50), 1);
	pump(w);
	r = &w->log[w->nlog - 1];
	assert_true(wg_endpoint_equal_addr(&r->dst, &a->addr));
	assert_int_equal(r->to, NODE_A);
	assert_int_equal(a->delivered, 3);
	assert_int_equal(bad_verdicts(a), 0);
}

/* Deliver one datagram taken off the wire, from a source of the test's choosing. */
static enum wg_drop deliver_from(struct world *w, struct datagram *d, const struct wg_endpoint *src)
{
	struct node *to = node_at(w, &d->dst);

	assert_non_null(to);
	return wg_device_receive(to->dev, w->now, src, d->data, d->len);
}

/*
 * The initiator moves between its initiation and its first data packet. The
 * responder learns the new address from that packet and must send what it
 * had staged there, not to where the initiation came from (the kernel sets
 * the endpoint before it confirms the keypair and sends staged packets).
 */
static void test_roaming_during_handshake(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram d;
	const struct logrec *r;

	/* B has a packet for A, but its own initiation is lost. */
	b->blackholed = true;
	assert_int_equal(send_pkt(b, a, AF_INET, 90), 0);
	pump(w);
	b->blackholed = false;
	assert_int_equal(b->stage.count, 1);

	/* A initiates; initiation and response cross normally. */
	assert_int_equal(send_pkt(a, b, AF_INET, 60), 0);
	assert_true(wire_take(w, &d));
	assert_int_equal(deliver_from(w, &d, &a->addr), WG_DROP_NONE);
	assert_true(wire_take(w, &d));
	assert_int_equal(d.len, RESPONSE_LEN);
	assert_int_equal(deliver_from(w, &d, &b->addr), WG_DROP_NONE);

	/* A's data (the key confirmation) arrives from a new address. */
	assert_true(wire_take(w, &d));
	assert_int_equal(message_type_of(d.data, d.len), MESSAGE_DATA);
	node_set_addr4(a, 0xc612004d, 40000);
	assert_int_equal(deliver_from(w, &d, &a->addr), WG_DROP_NONE);
	assert_int_equal(b->delivered, 1);
	assert_int_equal(b->stage.count, 0);
	assert_true(wg_endpoint_equal_addr(&b->peer->endpoint, &a->addr));

	r = &w->log[w->nlog - 1];
	assert_int_equal(r->from, NODE_B);
	assert_int_equal(r->type, MESSAGE_DATA);
	assert_true(wg_endpoint_equal_addr(&r->dst, &a->addr));
	pump(w);
	assert_int_equal(a->delivered, 1);
}

/* ---- 10: removing a peer, changing the private key ------------------------------------------ */

static void test_peer_remove(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram cap;
	uint8_t pkt[MAX_PKT];
	uint64_t delivered;

	establish(w);
	assert_int_equal(send_pkt(a, b, AF_INET, 70), 1);
	assert_true(wire_take(w, &cap));
	/*
	 * Something staged on B too, so removal must purge it: a session that
	 * may not send (as after a key change), and no new initiation yet
	 * because B's response went out less than REKEY_TIMEOUT ago.
	 */
	b->peer->keypairs.current->sending_valid = false;
	assert_int_equal(send_pkt(b, a, AF_INET, 70), 0);
	assert_int_equal(b->stage.count, 1);
	assert_int_equal(w->wire_count, 0);
	delivered = b->delivered;

	wg_device_peer_remove(b->dev, b->peer);
	assert_null(b->peer);
	assert_int_equal(b->stage.count, 0);
	assert_int_equal(b->stage.purges, 1);
	assert_int_equal(wg_device_peer_count(b->dev), 0);
	assert_int_equal(index_table_count(b->dev->index), 0);
	build_pkt(pkt, AF_INET, b->tun4, a->tun4, 0, 40);
	assert_null(wg_device_route(b->dev, pkt, 40));

	/* A's packets, captured or new, find no keypair on B. */
	assert_int_equal(feed(w, b, &a->addr, cap.data, cap.len), WG_DROP_NO_KEYPAIR);
	send_pkt(a, b, AF_INET, 70);
	pump(w);
	assert_int_equal(b->verdicts[WG_DROP_NO_KEYPAIR], 1);
	assert_int_equal(b->delivered, delivered);

	/* A gives up on the session in time; its initiations are refused. */
	advance(w, 30 * SEC);
	assert_true(b->verdicts[WG_DROP_HANDSHAKE] >= 1);
	assert_int_equal(b->delivered, delivered);
	assert_int_equal(wg_device_stats(b->dev)->handshakes_completed, 1);
}

/* The peer limit (lowered to 3 here): the next peer refused, room again after a removal. */
static void test_peer_limit(void **state)
{
	struct world *w = *state;
	struct wg_device *dev = w->n[NODE_A].dev;
	struct wg_peer *p[4];
	uint8_t pub[32];
	size_t i, had = wg_device_peer_count(dev);

	assert_int_equal(dev->max_peers, WG_PEERS_MAX);
	dev->max_peers = had + 3;
	memset(pub, 0x5a, sizeof(pub));
	for (i = 0; i < 3; i++) {
		pub[0] = (uint8_t)i;
		assert_int_equal(wg_device_peer_add(dev, pub, &p[i]), 0);
		p[i]->user = &w->n[NODE_A].stage; /* what the callbacks expect */
	}
	pub[0] = 3;
	assert_int_equal(wg_device_peer_add(dev, pub, &p[3]), -ENOSPC);
	assert_null(wg_device_peer_lookup(dev, pub));
	assert_int_equal(wg_device_peer_count(dev), had + 3);
	wg_device_peer_remove(dev, p[1]);
	assert_int_equal(wg_device_peer_add(dev, pub, &p[3]), 0);
	p[3]->user = &w->n[NODE_A].stage;
	assert_ptr_equal(wg_device_peer_lookup(dev, pub), p[3]);
	assert_int_equal(wg_device_peer_count(dev), had + 3);
}

static void test_private_key_change(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint8_t new_priv[32];
	size_t mark;
	int i;

	establish(w);
	for (i = 0; i < 32; i++)
		new_priv[i] = (uint8_t)(0xa5 ^ (7 * i));

	/* Setting the same key again changes nothing. */
	assert_int_equal(wg_device_set_private_key(b->dev, b->priv), 0);
	assert_true(b->peer->keypairs.current->sending_valid);

	mark = w->nlog;
	assert_int_equal(wg_device_set_private_key(b->dev, new_priv), 0);
	assert_non_null(b->peer->keypairs.current);
	assert_false(b->peer->keypairs.current->sending_valid);
	assert_memory_not_equal(wg_device_identity(b->dev)->public_key, b->pub, 32);

	/* B can no longer send on the old session; it starts a handshake at once. */
	assert_int_equal(send_pkt(b, a, AF_INET, 70), 0);
	assert_int_equal(b->stage.count, 1);
	assert_int_equal(w->nlog, mark + 1);
	assert_int_equal(w->log[mark].type, MESSAGE_HANDSHAKE_INITIATION);
	pump(w);
	/* A does not know B's new key. */
	assert_int_equal(w->log[mark].verdict, WG_DROP_HANDSHAKE);
	assert_int_equal(a->delivered, 1);

	/* The old session can still receive, as in the kernel. */
	assert_int_equal(send_pkt(a, b, AF_INET, 70), 1);
	pump(w);
	assert_int_equal(b->delivered, 2);

	/* A's own handshakes (mac1 for the old key) are refused by B. */
	advance(w, 20 * SEC);
	assert_true(b->verdicts[WG_DROP_BAD_MAC] >= 1);
	assert_int_equal(a->delivered, 1);

	/* A learns B's new public key: a fresh handshake, and B's staged packet goes out. */
	memcpy(b->priv, new_priv, 32);
	memcpy(b->pub, wg_device_identity(b->dev)->public_key, 32);
	wg_device_peer_remove(a->dev, a->peer);
	node_link(a, b);
	assert_int_equal(send_pkt(a, b, AF_INET, 70), 0);
	pump(w);
	assert_int_equal(b->delivered, 3);
	assert_int_equal(a->delivered, 2);
	assert_int_equal(b->stage.count, 0);
	assert_true(b->peer->keypairs.current->sending_valid);
	assert_int_equal(send_pkt(b, a, AF_INET6, 90), 1);
	pump(w);
	assert_int_equal(a->delivered, 3);

	/* Taking A's own private key removes the peer with that public key (kernel netlink.c set_device). */
	assert_int_equal(wg_device_set_private_key(b->dev, a->priv), 0);
	assert_null(b->peer);
	assert_int_equal(wg_device_peer_count(b->dev), 0);
	assert_int_equal(index_table_count(b->dev->index), 0);
}

/* ---- what the core tells the glue ------------------------------------------------- */

/* Each -errno of noise.h has its reason, and each reason its own name. */
static void test_refusal_names(void **state)
{
	static const struct {
		int err;
		enum wg_refusal why;
		const char *name;
		bool suite;
	} rows[] = {
		{ -ENOENT, WG_REFUSAL_UNKNOWN_PEER, "unknown peer", false },
		{ -EBADMSG, WG_REFUSAL_BAD_AUTH, "does not authenticate", false },
		{ -EEXIST, WG_REFUSAL_REPLAY, "replayed timestamp", false },
		{ -EBUSY, WG_REFUSAL_FLOOD, "initiation flood", false },
		{ -ENOKEY, WG_REFUSAL_NO_IDENTITY, "no private key", false },
		{ -ENOPROTOOPT, WG_REFUSAL_AES_OFFERED, "cipher mismatch", true },
		{ -EPROTONOSUPPORT, WG_REFUSAL_CHACHA_OFFERED, "cipher mismatch", true },
		{ -EINVAL, WG_REFUSAL_UNEXPECTED, "no initiation in progress", false },
		{ -EIO, WG_REFUSAL_OTHER, "other", false },
	};
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(refusal_of(rows[i].err), rows[i].why);
		assert_string_equal(wg_refusal_name(rows[i].why), rows[i].name);
		assert_int_equal(wg_refusal_is_suite_mismatch(rows[i].why), rows[i].suite);
	}
	assert_string_equal(wg_refusal_name(WG_REFUSAL_UNANSWERED), "no answer");
	for (r = 0; r < WG_REFUSAL_COUNT; r++)
		assert_non_null(wg_refusal_name((enum wg_refusal)r));
	assert_string_equal(wg_refusal_name(WG_REFUSAL_COUNT), "other");
}

/* Session, PSK, suite, sticky source and rekey, as the glue asks for them. */
static void test_peer_state(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct wg_peer_info info;
	uint8_t psk[32];
	uint64_t age;

	assert_false(wg_peer_has_session(a->peer));
	assert_false(wg_peer_session_age(a->peer, w->now.mono, &age));
	memset(&info, 0xff, sizeof(info));
	wg_peer_get_info(a->peer, &info);
	assert_false(info.has_psk);
	assert_true(sodium_is_zero(info.preshared_key, sizeof(info.preshared_key)));
	assert_int_equal(info.suite, NOISE_SUITE_WIREGUARD);
	assert_true(wg_peer_set_suite(a->peer, NOISE_SUITE_AES256GCM));
	wg_peer_get_info(a->peer, &info);
	assert_int_equal(info.suite, NOISE_SUITE_AES256GCM);
	assert_true(wg_peer_set_suite(a->peer, NOISE_SUITE_WIREGUARD));

	memset(psk, 0x33, sizeof(psk));
	wg_peer_set_psk(a->peer, psk);
	wg_peer_set_psk(b->peer, psk);
	wg_peer_get_info(a->peer, &info);
	assert_true(info.has_psk);
	assert_memory_equal(info.preshared_key, psk, sizeof(psk));

	establish(w);
	assert_true(wg_peer_has_session(a->peer));
	/* Each side authenticated two messages: a handshake message and one data packet. */
	assert_int_equal(a->peer->rx_packets, 2);
	assert_int_equal(b->peer->rx_packets, 2);
	assert_true(wg_peer_session_age(a->peer, w->now.mono + 5 * SEC, &age));
	assert_int_equal(age, w->now.mono + 5 * SEC - a->peer->keypairs.current->created);
	assert_int_equal(a->last_event[WG_EVENT_HANDSHAKE_SENT].attempt, 1);
	assert_false(a->last_event[WG_EVENT_HANDSHAKE_SENT].retry);
	assert_true(a->last_event[WG_EVENT_HANDSHAKE_COMPLETE].initiator);
	assert_false(a->last_event[WG_EVENT_HANDSHAKE_COMPLETE].rekey);
	assert_false(b->last_event[WG_EVENT_HANDSHAKE_COMPLETE].initiator);
	assert_false(b->last_event[WG_EVENT_HANDSHAKE_COMPLETE].rekey);

	/* A second handshake replaces the session: a rekey, on both sides. */
	advance(w, REKEY_TIMEOUT + SEC);
	wg_peer_initiate(a->peer, w->now, false);
	pump(w);
	assert_true(a->last_event[WG_EVENT_HANDSHAKE_COMPLETE].rekey);
	assert_int_equal(send_pkt(a, b, AF_INET, 64), 1);
	pump(w);
	assert_true(b->last_event[WG_EVENT_HANDSHAKE_COMPLETE].rekey);
	assert_false(b->last_event[WG_EVENT_HANDSHAKE_COMPLETE].initiator);

	a->peer->endpoint.has_src = true;
	wg_peer_forget_source(a->peer);
	assert_false(a->peer->endpoint.has_src);
}

/* ---- 11: the split path (veild's crypto workers) ------------------------------------------ */

enum { SPLIT_MAX = 16 };

/*
 * Send count packets of len bytes from n to its peer as veild does with
 * workers: every counter taken first (wg_peer_encrypt_begin), the jobs run
 * afterwards in reverse order (threads finish them in any order), then all
 * sent in the order they were begun. The counters taken go to counters.
 */
static void split_send(struct node *n, const struct node *to, size_t count, size_t len,
		       uint64_t *counters)
{
	struct wg_peer *peer = n->peer;
	struct wg_now now = n->w->now;
	struct wg_crypt_job jobs[SPLIT_MAX];
	uint8_t buf[SPLIT_MAX][BUF_ROOM];
	size_t out[SPLIT_MAX], bytes = 0, i;

	assert_true(count <= SPLIT_MAX);
	for (i = 0; i < count; i++) {
		build_pkt(buf[i] + DATA_HEADER_LEN, AF_INET, n->tun4, to->tun4, n->tx_seq++, len);
		assert_int_equal(wg_peer_encrypt_begin(peer, now, buf[i], len, &out[i], &jobs[i]), 0);
		assert_false(jobs[i].open);
		assert_int_equal(le64_read(buf[i] + DATA_COUNTER), jobs[i].counter);
		counters[i] = jobs[i].counter;
	}
	for (i = count; i-- > 0;)
		assert_int_equal(wg_crypt_job_run(&jobs[i], jobs[i].key), 0);
	for (i = 0; i < count; i++) {
		n->dev->ops->send(n, peer, &peer->endpoint, buf[i], out[i]);
		bytes += out[i];
	}
	if (count)
		wg_peer_sent(peer, now, bytes, true);
}

/*
 * Receive d[0..count) as veild does with workers (datapath.c, rxq_flush):
 * wg_device_open_begin for each in the order they came, the jobs run in
 * reverse order, then, in the order order gives (NULL: as they came),
 * wg_device_receive_opened, or wg_device_receive for what was not a data
 * message of a keypair that may receive it. verdict[i] is d[i]'s. Returns
 * how many went through the halves.
 */
static size_t split_receive(struct world *w, struct datagram *d, size_t count, const size_t *order,
			    enum wg_drop *verdict)
{
	struct wg_crypt_job jobs[2 * SPLIT_MAX];
	bool halves[2 * SPLIT_MAX];
	struct node *to;
	size_t i, k, n = 0;

	assert_true(count <= 2 * SPLIT_MAX);
	for (i = 0; i < count; i++) {
		to = node_at(w, &d[i].dst);
		assert_non_null(to);
		halves[i] = wg_device_open_begin(to->dev, w->now, d[i].data, d[i].len, &jobs[i]);
		if (!halves[i])
			continue;
		n++;
		assert_true(jobs[i].open);
		assert_int_equal(jobs[i].counter, le64_read(d[i].data + DATA_COUNTER));
	}
	for (i = count; i-- > 0;)
		if (halves[i])
			wg_crypt_job_run(&jobs[i], jobs[i].key);
	for (k = 0; k < count; k++) {
		i = order ? order[k] : k;
		to = node_at(w, &d[i].dst);
		if (halves[i])
			verdict[i] = wg_device_receive_opened(to->dev, w->now, &d[i].src, d[i].data,
							      d[i].len, &jobs[i]);
		else
			verdict[i] = wg_device_receive(to->dev, w->now, &d[i].src, d[i].data, d[i].len);
		to->verdicts[verdict[i]]++;
	}
	return n;
}

/* Take every datagram off the wire (at most max): how many. */
static size_t wire_take_all(struct world *w, struct datagram *d, size_t max)
{
	size_t n = 0;

	while (n < max && wire_take(w, &d[n]))
		n++;
	assert_int_equal(w->wire_count, 0);
	return n;
}

/*
 * Sealed in halves, a message is the very message wg_peer_encrypt makes
 * under the same counter; opened in halves, it is delivered as
 * wg_device_receive delivers it, with the same bookkeeping.
 */
static void test_split_equals_one_call(void **state)
{
	static const size_t lens[] = { 24, 61, 100, 1000, MAX_PKT };
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	uint8_t pkt[MAX_PKT], one[BUF_ROOM], two[BUF_ROOM];
	struct noise_keypair *kp;
	struct wg_crypt_job job;
	struct datagram d[2];
	size_t i, one_len, two_len;
	uint64_t c, rx_bytes, rx_packets, delivered, none;
	enum wg_drop v;

	establish(w);
	kp = a->peer->keypairs.current;
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		build_pkt(pkt, AF_INET, a->tun4, b->tun4, a->tx_seq++, lens[i]);
		c = kp->send_counter;
		memcpy(one + DATA_HEADER_LEN, pkt, lens[i]);
		assert_int_equal(wg_peer_encrypt(a->peer, w->now, one, lens[i], &one_len), 0);
		kp->send_counter = c; /* the same counter again, for the comparison alone */
		memset(two, 0xee, sizeof(two));
		memcpy(two + DATA_HEADER_LEN, pkt, lens[i]);
		assert_int_equal(wg_peer_encrypt_begin(a->peer, w->now, two, lens[i], &two_len, &job), 0);
		assert_int_equal(job.counter, c);
		assert_ptr_equal(job.kp, kp);
		assert_ptr_equal(job.key, &kp->send_ctx);
		assert_int_equal(job.serial, kp->serial);
		assert_int_equal(kp->send_counter, c + 1);
		assert_int_equal(two_len, one_len);
		assert_int_equal(wg_crypt_job_run(&job, job.key), 0);
		assert_memory_equal(two, one, one_len);
	}

	/* B takes one message of each pair whole and the other in halves: the same outcome. */
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		assert_int_equal(send_pkt(a, b, AF_INET, lens[i]), 1);
		assert_int_equal(send_pkt(a, b, AF_INET, lens[i]), 1);
		assert_int_equal(wire_take_all(w, d, 2), 2);
		rx_bytes = b->peer->rx_bytes;
		rx_packets = b->peer->rx_packets;
		delivered = b->delivered;
		none = wg_device_stats(b->dev)->drops[WG_DROP_NONE];
		assert_int_equal(feed(w, b, &d[0].src, d[0].data, d[0].len), WG_DROP_NONE);
		assert_int_equal(b->last_rx_len, lens[i]);
		assert_int_equal(b->peer->rx_bytes - rx_bytes, d[0].len);
		assert_int_equal(b->peer->rx_packets - rx_packets, 1);
		assert_int_equal(b->delivered - delivered, 1);
		assert_int_equal(wg_device_stats(b->dev)->drops[WG_DROP_NONE] - none, 1);
		assert_int_equal(split_receive(w, &d[1], 1, NULL, &v), 1);
		assert_int_equal(v, WG_DROP_NONE);
		assert_int_equal(b->last_rx_len, lens[i]);
		assert_int_equal(b->peer->rx_bytes - rx_bytes, d[0].len + d[1].len);
		assert_int_equal(b->peer->rx_packets - rx_packets, 2);
		assert_int_equal(b->delivered - delivered, 2);
		assert_int_equal(wg_device_stats(b->dev)->drops[WG_DROP_NONE] - none, 2);
	}
	assert_int_equal(bad_verdicts(b), 0);

	/* Anything but a data message of a known keypair is not for the halves. */
	memset(one, 0, sizeof(one));
	le32_write(one, MESSAGE_DATA);
	le32_write(one + DATA_RECEIVER, 0x12345678);
	assert_false(wg_device_open_begin(b->dev, w->now, one, 80, &job));
	assert_false(wg_device_open_begin(b->dev, w->now, one, DATA_MIN_LEN - 1, &job));
	le32_write(one, MESSAGE_HANDSHAKE_INITIATION);
	assert_false(wg_device_open_begin(b->dev, w->now, one, INITIATION_LEN, &job));
}

/* Counters taken ahead of the AEAD rise by one each time and are never taken twice. */
static void test_split_counters(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram d[SPLIT_MAX];
	enum wg_drop v[SPLIT_MAX];
	uint64_t counters[SPLIT_MAX], next, tx, sent;
	struct noise_keypair *kp;
	struct wg_crypt_job job;
	uint8_t buf[BUF_ROOM];
	size_t round, count, i, out;
	uint32_t seq;

	establish(w);
	kp = a->peer->keypairs.current;
	next = kp->send_counter;
	for (round = 0; round < 40; round++) {
		count = 1 + round % SPLIT_MAX;
		split_send(a, b, count, 40 + round, counters);
		for (i = 0; i < count; i++)
			assert_int_equal(counters[i], next++);
		assert_int_equal(wire_take_all(w, d, SPLIT_MAX), count);
		assert_int_equal(split_receive(w, d, count, NULL, v), count);
		for (i = 0; i < count; i++)
			assert_int_equal(v[i], WG_DROP_NONE);
		/* The one-call path between batches takes the next counter, no other. */
		if (round % 3 == 0) {
			assert_int_equal(send_pkt(a, b, AF_INET, 50), 1);
			assert_int_equal(wire_take_all(w, d, 1), 1);
			assert_int_equal(le64_read(d[0].data + DATA_COUNTER), next++);
			assert_int_equal(split_receive(w, d, 1, NULL, v), 1);
			assert_int_equal(v[0], WG_DROP_NONE);
		}
	}
	assert_ptr_equal(a->peer->keypairs.current, kp);

	/*
	 * A job whose AEAD failed: the message never goes, its packet is not
	 * counted, a handshake starts, and its counter is not taken again.
	 */
	advance(w, REKEY_TIMEOUT + SEC);
	assert_int_equal(w->wire_count, 0);
	sent = a->events[WG_EVENT_HANDSHAKE_SENT];
	tx = a->peer->tx_packets;
	build_pkt(buf + DATA_HEADER_LEN, AF_INET, a->tun4, b->tun4, a->tx_seq++, 60);
	assert_int_equal(wg_peer_encrypt_begin(a->peer, w->now, buf, 60, &out, &job), 0);
	assert_int_equal(job.counter, next++);
	wg_peer_encrypt_failed(a->peer, w->now);
	assert_int_equal(a->events[WG_EVENT_HANDSHAKE_SENT], sent + 1);
	assert_int_equal(a->peer->tx_packets, tx + 1); /* the initiation alone */
	assert_int_equal(wire_take_all(w, d, 1), 1);
	assert_int_equal(message_type_of(d[0].data, d[0].len), MESSAGE_HANDSHAKE_INITIATION);
	split_send(a, b, 1, 60, counters);
	assert_int_equal(counters[0], next);

	/* Every packet B was given arrived once. */
	pump(w);
	for (seq = 0; seq < a->tx_seq; seq++)
		if (seq != a->tx_seq - 2) /* the failed one */
			assert_int_equal(b->seen[seq], 1);
	assert_int_equal(b->seen[a->tx_seq - 2], 0);
	assert_int_equal(bad_verdicts(b), 0);
}

/* The same message opened twice, in one batch or in two: the second is a replay. */
static void test_split_replay(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram d[4];
	enum wg_drop v[2];
	uint64_t counter, delivered, replays;

	establish(w);
	split_send(a, b, 1, 64, &counter);
	assert_int_equal(wire_take_all(w, d, 1), 1);
	/* Copies: a message is opened in place. */
	d[1] = d[2] = d[3] = d[0];
	delivered = b->delivered;
	replays = b->peer->replay_drops;
	assert_int_equal(split_receive(w, d, 2, NULL, v), 2);
	assert_int_equal(v[0], WG_DROP_NONE);
	assert_int_equal(v[1], WG_DROP_REPLAY);
	assert_int_equal(b->delivered, delivered + 1);
	assert_int_equal(b->peer->replay_drops, replays + 1);
	/* Again later, in halves or whole. */
	assert_int_equal(split_receive(w, &d[2], 1, NULL, v), 1);
	assert_int_equal(v[0], WG_DROP_REPLAY);
	assert_int_equal(feed(w, b, &a->addr, d[3].data, d[3].len), WG_DROP_REPLAY);
	assert_int_equal(b->delivered, delivered + 1);
	assert_int_equal(b->peer->replay_drops, replays + 3);
	assert_int_equal(wg_device_stats(b->dev)->drops[WG_DROP_REPLAY], 3);
}

/*
 * Opened together, received out of the order they came (3, 1, 2), in order,
 * or with copies among them: each message is accepted once, whatever the
 * order, and never twice. (veild itself keeps the order they came.)
 */
static void test_split_out_of_order(void **state)
{
	static const size_t shuffled[3] = { 2, 0, 1 }, backwards[6] = { 5, 4, 3, 2, 1, 0 };
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct datagram d[6], copy[3];
	enum wg_drop v[6];
	uint64_t counters[3], delivered;
	uint32_t first, seq;
	size_t i, accepted;

	establish(w);
	first = a->tx_seq;
	delivered = b->delivered;
	split_send(a, b, 3, 100, counters);
	assert_int_equal(wire_take_all(w, d, 3), 3);
	memcpy(copy, d, sizeof(copy));
	assert_int_equal(split_receive(w, d, 3, shuffled, v), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(v[i], WG_DROP_NONE);
	assert_int_equal(b->delivered, delivered + 3);
	assert_int_equal(split_receive(w, copy, 3, NULL, v), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(v[i], WG_DROP_REPLAY);

	/* In order. */
	split_send(a, b, 3, 100, counters);
	assert_int_equal(wire_take_all(w, d, 3), 3);
	memcpy(copy, d, sizeof(copy));
	assert_int_equal(split_receive(w, d, 3, NULL, v), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(v[i], WG_DROP_NONE);
	assert_int_equal(split_receive(w, copy, 3, shuffled, v), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(v[i], WG_DROP_REPLAY);

	/* Two messages, each three times in one batch, received backwards: each once. */
	split_send(a, b, 2, 100, counters);
	assert_int_equal(wire_take_all(w, d, 2), 2);
	for (i = 2; i < 6; i++)
		d[i] = d[i % 2];
	assert_int_equal(split_receive(w, d, 6, backwards, v), 6);
	for (i = accepted = 0; i < 6; i++)
		accepted += v[i] == WG_DROP_NONE;
	assert_int_equal(accepted, 2);
	assert_int_equal(v[4], WG_DROP_NONE);
	assert_int_equal(v[5], WG_DROP_NONE);

	for (seq = first; seq < a->tx_seq; seq++)
		assert_int_equal(b->seen[seq], 1);
	assert_int_equal(b->delivered, delivered + 8);
	assert_int_equal(b->verdicts[WG_DROP_REPLAY], 10);
	assert_int_equal(b->peer->replay_drops, 10);
}

/*
 * A keypair replaced between wg_device_open_begin and
 * wg_device_receive_opened: its message is dropped (WG_DROP_NO_KEYPAIR) and
 * nothing is delivered. First a serial that changed (a new keypair in the
 * old one's place), then a real rotation within one batch: B gets two
 * messages under its previous keypair with A's next initiation between
 * them, which wipes that keypair (the kernel's add_new_keypair) after the
 * first message was received and before the second.
 */
static void test_split_keypair_replaced(void **state)
{
	struct world *w = *state;
	struct node *a = &w->n[NODE_A], *b = &w->n[NODE_B];
	struct noise_keypair *k1;
	struct wg_crypt_job job;
	struct datagram d[3];
	enum wg_drop v[3];
	uint64_t counters[2], delivered, no_keypair;
	uint32_t first;

	establish(w);
	split_send(a, b, 1, 64, counters);
	assert_int_equal(wire_take_all(w, d, 1), 1);
	assert_true(wg_device_open_begin(b->dev, w->now, d[0].data, d[0].len, &job));
	assert_int_equal(wg_crypt_job_run(&job, job.key), 0);
	delivered = b->delivered;
	job.kp->serial++;
	assert_int_equal(wg_device_receive_opened(b->dev, w->now, &a->addr, d[0].data, d[0].len, &job),
			 WG_DROP_NO_KEYPAIR);
	assert_int_equal(b->delivered, delivered);
	assert_int_equal(wg_device_stats(b->dev)->drops[WG_DROP_NO_KEYPAIR], 1);
	/* The same job, the serial as it was: that alone made the difference. */
	job.kp->serial--;
	assert_int_equal(wg_device_receive_opened(b->dev, w->now, &a->addr, d[0].data, d[0].len, &job),
			 WG_DROP_NONE);
	assert_int_equal(b->delivered, delivered + 1);

	/* Two messages under K1, held back. */
	k1 = b->peer->keypairs.current;
	first = a->tx_seq;
	split_send(a, b, 2, 64, counters);
	assert_int_equal(wire_take_all(w, d, 2), 2);
	d[2] = d[1];
	/* A rekeys: K2 is confirmed on B, K1 becomes its previous keypair. */
	advance(w, REKEY_TIMEOUT + SEC);
	wg_peer_initiate(a->peer, w->now, false);
	pump(w);
	assert_ptr_not_equal(b->peer->keypairs.current, k1);
	assert_ptr_equal(b->peer->keypairs.previous, k1);
	/* A starts another handshake. */
	advance(w, REKEY_TIMEOUT + SEC);
	wg_peer_initiate(a->peer, w->now, false);
	assert_int_equal(wire_take_all(w, &d[1], 1), 1);
	assert_int_equal(message_type_of(d[1].data, d[1].len), MESSAGE_HANDSHAKE_INITIATION);

	/* One batch: K1's first message, the initiation, K1's second message. */
	delivered = b->delivered;
	no_keypair = wg_device_stats(b->dev)->drops[WG_DROP_NO_KEYPAIR];
	assert_int_equal(split_receive(w, d, 3, NULL, v), 2);
	assert_int_equal(v[0], WG_DROP_NONE);
	assert_int_equal(v[1], WG_DROP_NONE);
	assert_int_equal(v[2], WG_DROP_NO_KEYPAIR);
	assert_null(b->peer->keypairs.previous);
	assert_non_null(b->peer->keypairs.next);
	assert_int_equal(b->delivered, delivered + 1);
	assert_int_equal(b->seen[first], 1);
	assert_int_equal(b->seen[first + 1], 0);
	assert_int_equal(wg_device_stats(b->dev)->drops[WG_DROP_NO_KEYPAIR], no_keypair + 1);

	/* The handshake completes and the session carries on. */
	pump(w);
	assert_int_equal(send_pkt(a, b, AF_INET, 64), 1);
	pump(w);
	assert_int_equal(b->delivered, delivered + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_packet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unanswered_confirmation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_with_psk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_psk_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hours_of_traffic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence_wipes_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cookie_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allowed_ips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roaming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roaming_during_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_key_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_limit, setup, teardown),
		cmocka_unit_test(test_refusal_names),
		cmocka_unit_test_setup_teardown(test_peer_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_equals_one_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_keypair_replaced, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
