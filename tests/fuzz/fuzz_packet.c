// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the receive path: every input ends in
 * wg_device_receive() of device A, which has a private key and peers with
 * allowed IPs and endpoints. Random bytes alone stop at mac1 or at the
 * AEAD, so the first input byte picks a mode that gets past the crypto:
 *
 *   0 RAW     the rest of the input is one datagram, as is
 *   1 CRAFT   a second in-process device B (A's peer) makes a genuine
 *             initiation, response, cookie reply, transport or keepalive
 *             message; input-chosen mutations (bit flips, overwrites,
 *             truncation, extension) are applied before A receives it
 *   2 INNER   after a real handshake, B encrypts the rest of the input as
 *             the inner packet: the inner IP parse and allowed-IPs check
 *   3 SCRIPT  a tiny lossy network between A and B driven by opcodes:
 *             deliver, drop, replay, reorder, mutate, send data, advance
 *             the clock and run timers, roam, force load, rekey...
 *
 * Keys are fixed (the wireguard-go capture's, so its message 1 is a valid
 * RAW seed); randomness comes from xorshift seeded by a hash of the input,
 * and the clock is fake. Both devices are created and freed for each input,
 * so a run depends on its input alone and leaks show up at once.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "core/device.h"
#include "core/messages.h"
#include "../unit/engine_stub.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wireguard-go capture (../../shared/vectors): A is its responder, B its initiator. */
static const uint8_t key_a[32] = {
	0xd8, 0x9a, 0xbd, 0x2e, 0x0b, 0xaa, 0xec, 0x9c, 0x2e, 0x48, 0x6f, 0x82, 0x4d, 0x3c, 0x79, 0x21,
	0x42, 0xb2, 0x12, 0x47, 0xaa, 0x86, 0x74, 0x9d, 0x3b, 0xcd, 0x91, 0x5d, 0xa1, 0x43, 0x35, 0x4e,
};
static const uint8_t key_b[32] = {
	0xa8, 0x3b, 0xfa, 0x01, 0x02, 0xc2, 0x36, 0x8f, 0x9b, 0x75, 0xfd, 0x75, 0xfa, 0x3d, 0xf9, 0xdd,
	0xf2, 0xd4, 0x60, 0xc3, 0xc0, 0x18, 0x35, 0xef, 0xf3, 0x4c, 0x3c, 0x02, 0xda, 0xf7, 0xfb, 0x59,
};
static const uint8_t psk_ab[32] = {
	0x03, 0x36, 0x9a, 0x58, 0x7d, 0x6f, 0xfd, 0x4a, 0x04, 0x28, 0x9d, 0x5b, 0x9c, 0xc9, 0x15, 0x66,
	0x5f, 0x84, 0xe7, 0xb1, 0x01, 0x63, 0x04, 0xeb, 0x26, 0x7e, 0x26, 0x98, 0x58, 0x5f, 0x9c, 0x52,
};
/* A third identity: a peer of A that never talks (its prefixes make the allowed-IPs check bite). */
static const uint8_t key_c[32] = { 0x70, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99 };
static uint8_t pub_a[32], pub_b[32], pub_c[32];

enum { MODE_RAW, MODE_CRAFT, MODE_INNER, MODE_SCRIPT, MODE_COUNT };
enum { QUEUE_LEN = 8, PKT_MAX = 2048, SCRIPT_MAX_OPS = 256 };

/* ---- input reader ---- */

struct input {
	const uint8_t *p;
	size_t len;
};

static uint8_t take_u8(struct input *in)
{
	uint8_t v = 0;

	if (in->len) {
		v = *in->p++;
		in->len--;
	}
	return v;
}

static uint16_t take_u16(struct input *in)
{
	uint16_t hi = take_u8(in);

	return (uint16_t)(hi << 8 | take_u8(in));
}

/* Up to max bytes; returns how many were taken. */
static size_t take_bytes(struct input *in, size_t max, const uint8_t **out)
{
	size_t n = in->len < max ? in->len : max;

	*out = in->p;
	in->p += n;
	in->len -= n;
	return n;
}

/* ---- deterministic environment ---- */

/* xorshift64*, as tests/unit/test_util.h: repeatable, never for real keys. */
static uint64_t rng_state;

static void rng_fill(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;

	(void)ctx;
	while (len) {
		uint64_t v;
		size_t n = len < 8 ? len : 8;

		rng_state ^= rng_state >> 12;
		rng_state ^= rng_state << 25;
		rng_state ^= rng_state >> 27;
		v = rng_state * 0x2545F4914F6CDD1DULL;
		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

static const struct wg_rng rng = { rng_fill, NULL };

/* FNV-1a of the whole input: the seed, so each input replays exactly. */
static uint64_t seed_of(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* ---- the network between A and B ---- */

struct pkt {
	size_t len;
	uint8_t data[PKT_MAX];
};

/* One device and what it sent, oldest first; further sends are lost. */
struct node {
	struct wg_device *dev;
	struct wg_peer *peer;	/* its view of the other node */
	struct wg_endpoint addr; /* where the other node sees it coming from */
	struct pkt out[QUEUE_LEN];
	size_t nout;
	size_t delivered, events;
};

static struct node node_a, node_b;
static struct wg_peer *peer_c; /* on A */
static struct wg_now now;
static bool trace; /* FUZZ_TRACE=1: one line per datagram received, to follow a reproducer */

__attribute__((noreturn)) static void fail(void)
{
	__builtin_trap();
}

static void on_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	struct node *n = ctx;
	uint32_t type = message_type_of(buf, len);

	(void)peer;
	(void)ep;
	/* Everything the core sends is one of the four well-formed messages. */
	if (len > PKT_MAX ||
	    (type == MESSAGE_HANDSHAKE_INITIATION && len != INITIATION_LEN) ||
	    (type == MESSAGE_HANDSHAKE_RESPONSE && len != RESPONSE_LEN) ||
	    (type == MESSAGE_HANDSHAKE_COOKIE && len != COOKIE_REPLY_LEN) ||
	    (type == MESSAGE_DATA && (len < DATA_MIN_LEN || (len - DATA_MIN_LEN) % 16)) ||
	    type < MESSAGE_HANDSHAKE_INITIATION || type > MESSAGE_DATA)
		fail();
	if (n->nout == QUEUE_LEN)
		return;
	memcpy(n->out[n->nout].data, buf, len);
	n->out[n->nout].len = len;
	n->nout++;
}

/* cppcheck-suppress constParameter ; the deliver callback's signature. */
static void on_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len)
{
	struct node *n = ctx;

	/* Only the peer with a session can deliver, and only a whole IP header. */
	if (peer != n->peer || len < 20)
		fail();
	n->delivered++;
	(void)pkt;
}

static void on_event(void *ctx, struct wg_peer *peer, const struct wg_event_info *e)
{
	struct node *n = ctx;

	(void)peer;
	(void)e;
	n->events++;
}

static const struct wg_device_ops device_ops = {
	.send = on_send,
	.deliver = on_deliver,
	.keypair_ready = stub_keypair_ready,
	.purge_staged = stub_purge_staged,
	.event = on_event,
};

static void endpoint_v4(struct wg_endpoint *ep, const char *addr, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in4.sin_family = AF_INET;
	ep->addr.in4.sin_port = htons(port);
	inet_pton(AF_INET, addr, &ep->addr.in4.sin_addr);
}

static void endpoint_v6(struct wg_endpoint *ep, const char *addr, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->addr.in6.sin6_family = AF_INET6;
	ep->addr.in6.sin6_port = htons(port);
	inet_pton(AF_INET6, addr, &ep->addr.in6.sin6_addr);
}

static void allow(struct node *n, struct wg_peer *peer, const char *addr, uint8_t cidr)
{
	uint8_t a[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	inet_pton(family, addr, a);
	if (allowedips_insert(wg_device_allowedips(n->dev), family, a, cidr, &peer->allowedips))
		fail();
}

static struct wg_peer *add_peer(struct node *n, const uint8_t pub[32], const struct wg_endpoint *ep,
				const uint8_t *psk)
{
	struct wg_peer *peer;

	if (wg_device_peer_add(n->dev, pub, &peer))
		fail();
	if (ep)
		wg_peer_set_endpoint(peer, &ep->addr.sa, sizeof(ep->addr));
	wg_peer_set_psk(peer, psk);
	return peer;
}

/* A and B know each other; A also knows C. Nothing has been sent yet. */
static void network_up(void)
{
	memset(&node_a, 0, sizeof(node_a));
	memset(&node_b, 0, sizeof(node_b));
	now.mono = 1000 * NSEC_PER_SEC;
	now.wall = 1700000000ULL * NSEC_PER_SEC;
	endpoint_v4(&node_a.addr, "198.18.7.2", 51002);
	endpoint_v4(&node_b.addr, "198.18.7.1", 51001);

	node_a.dev = wg_device_new(&device_ops, &node_a, &rng);
	node_b.dev = wg_device_new(&device_ops, &node_b, &rng);
	if (!node_a.dev || !node_b.dev || wg_device_set_private_key(node_a.dev, key_a) ||
	    wg_device_set_private_key(node_b.dev, key_b))
		fail();
	node_a.peer = add_peer(&node_a, pub_b, &node_b.addr, psk_ab);
	node_b.peer = add_peer(&node_b, pub_a, &node_a.addr, psk_ab);
	peer_c = add_peer(&node_a, pub_c, NULL, NULL);
	allow(&node_a, node_a.peer, "10.0.0.2", 32);
	allow(&node_a, node_a.peer, "10.9.0.0", 16);
	allow(&node_a, node_a.peer, "fd00::2", 128);
	allow(&node_a, node_a.peer, "fd00:9::", 32);
	allow(&node_a, peer_c, "10.0.0.0", 8);
	allow(&node_a, peer_c, "::", 0);
	allow(&node_b, node_b.peer, "0.0.0.0", 0);
	allow(&node_b, node_b.peer, "::", 0);
}

static void network_down(void)
{
	wg_device_free(node_a.dev);
	wg_device_free(node_b.dev);
	node_a.dev = node_b.dev = NULL;
}

/* The other node of n. */
static struct node *other(const struct node *n)
{
	return n == &node_a ? &node_b : &node_a;
}

/* Receive a copy in a buffer of exactly len bytes, so ASan sees any overread. */
static enum wg_drop receive(struct node *to, const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum wg_drop drop;

	if (!copy)
		fail();
	memcpy(copy, buf, len);
	drop = wg_device_receive(to->dev, now, &other(to)->addr, copy, len);
	free(copy);
	if (trace)
		fprintf(stderr, "%c receives type %u, %zu bytes: drop %d\n", to == &node_a ? 'A' : 'B',
			message_type_of(buf, len), len, (int)drop);
	if (drop >= WG_DROP_COUNT)
		fail();
	return drop;
}

static void queue_pop(struct node *n, struct pkt *p)
{
	if (p)
		*p = n->out[0];
	memmove(&n->out[0], &n->out[1], (n->nout - 1) * sizeof(n->out[0]));
	n->nout--;
}

/* Pass the oldest message from one node to the other. */
static enum wg_drop forward(struct node *from)
{
	struct pkt p;

	if (!from->nout)
		return WG_DROP_COUNT;
	queue_pop(from, &p);
	return receive(other(from), p.data, p.len);
}

static void forward_all(void)
{
	int rounds;

	for (rounds = 0; rounds < 4 * QUEUE_LEN && (node_a.nout || node_b.nout); rounds++) {
		forward(&node_a);
		forward(&node_b);
	}
}

/*
 * A real handshake, A initiating; with confirm, A's keepalive also reaches
 * B, so B's session is confirmed and B may send. Returns false if it failed.
 */
static bool handshake(bool confirm)
{
	node_a.nout = node_b.nout = 0;
	wg_peer_initiate(node_a.peer, now, false);
	if (forward(&node_a) != WG_DROP_NONE || forward(&node_b) != WG_DROP_NONE)
		return false;
	if (confirm && forward(&node_a) != WG_DROP_NONE)
		return false;
	node_a.nout = node_b.nout = 0;
	return true;
}

/* from encrypts len plaintext bytes for its peer into p. Returns false without a session. */
static bool seal(struct node *from, const uint8_t *plain, size_t len, struct pkt *p)
{
	if (len > wg_device_mtu(from->dev) || wg_packet_room(len) > PKT_MAX)
		len = wg_device_mtu(from->dev);
	memset(p->data, 0, sizeof(p->data));
	memcpy(p->data + DATA_HEADER_LEN, plain, len);
	if (wg_peer_encrypt(from->peer, now, p->data, len, &p->len))
		return false;
	wg_peer_sent(from->peer, now, p->len, len > 0);
	return true;
}

/*
 * One input-chosen mutation of p: 4 bytes (kind, offset, value). Offsets
 * wrap around the current length; lengths stay within the buffer.
 */
static void mutate(struct pkt *p, struct input *in)
{
	uint8_t kind = take_u8(in), val;
	uint16_t off = take_u16(in);
	size_t n;

	val = take_u8(in);
	switch (kind % 5) {
	case 0:
		if (p->len)
			p->data[off % p->len] ^= (uint8_t)(1u << (val % 8));
		break;
	case 1:
		if (p->len)
			p->data[off % p->len] = val;
		break;
	case 2:
		p->len = off % (p->len + 1);
		break;
	case 3:
		n = val % 64;
		if (p->len + n <= PKT_MAX) {
			memset(p->data + p->len, val, n);
			p->len += n;
		}
		break;
	default:
		/* A 32-bit little-endian field (indices, counters) set to a nearby value. */
		if (p->len >= 4) {
			size_t at = off % (p->len - 3);

			le32_write(p->data + at, le32_read(p->data + at) + (uint32_t)(int8_t)val);
		}
		break;
	}
}

/* ---- modes ---- */

static void mode_raw(struct input *in)
{
	const uint8_t *buf;
	size_t len = take_bytes(in, PKT_MAX, &buf);

	receive(&node_a, buf, len);
}

/*
 * Build a genuine message for A (kind picked by the input), mutate it,
 * deliver it. Layout: kind, flags, count, count x 4 mutation bytes, then
 * the inner payload for the transport kinds.
 */
static void mode_craft(struct input *in)
{
	uint8_t kind = take_u8(in) % 5, flags = take_u8(in), nmut = take_u8(in) % 8, i;
	struct input muts;
	const uint8_t *plain;
	struct pkt p;
	size_t len;

	muts.len = take_bytes(in, (size_t)nmut * 4, &muts.p);
	switch (kind) {
	case 0: /* initiation from B */
		wg_peer_initiate(node_b.peer, now, false);
		break;
	case 1: /* response from B to A's initiation */
		wg_peer_initiate(node_a.peer, now, false);
		forward(&node_a);
		break;
	case 2: /* cookie reply from a loaded B */
		wg_device_force_under_load(node_b.dev, true);
		wg_peer_initiate(node_a.peer, now, false);
		forward(&node_a);
		break;
	default: /* transport data (3) or a keepalive (4) from B */
		if (!handshake(true))
			fail(); /* nothing was mutated yet: it must work */
		len = take_bytes(in, kind == 3 ? PKT_MAX : 0, &plain);
		if (!seal(&node_b, plain, len, &node_b.out[0]))
			fail();
		node_b.nout = 1;
		break;
	}
	if (!node_b.nout)
		fail(); /* B always answers these */
	queue_pop(&node_b, &p);
	for (i = 0; i < nmut; i++)
		mutate(&p, &muts);

	/* Conditions at A, set only now so that the message itself was built normally. */
	if (flags & 1)
		wg_device_force_under_load(node_a.dev, true);
	if (flags & 2)
		endpoint_v6(&node_b.addr, "2001:db8::2", 51002);
	if (flags & 4)
		node_b.addr.addr.in4.sin_port ^= htons(1); /* roamed to another port */
	receive(&node_a, p.data, p.len);
	/* Whatever A answered goes back: B's side of the same paths. */
	forward_all();
}

/* B sends the rest of the input as the inner packet of a real session. */
static void mode_inner(struct input *in)
{
	const uint8_t *plain;
	size_t len = take_bytes(in, PKT_MAX, &plain);
	struct pkt p;

	if (!handshake(true) || !seal(&node_b, plain, len, &p))
		fail();
	receive(&node_a, p.data, p.len);
}

/* Sends input-chosen bytes as data from n (staged as the daemon would, or started a handshake). */
static void script_send(struct node *n, struct input *in)
{
	const uint8_t *plain;
	size_t len = take_bytes(in, take_u8(in), &plain);
	struct pkt p;

	if (seal(n, plain, len, &p))
		on_send(n, n->peer, &n->peer->endpoint, p.data, p.len);
}

static void script_control(struct input *in)
{
	uint8_t arg = take_u8(in), k[32];

	switch (arg % 12) {
	case 10:
	case 11:
		/* One side's transport suite: equal suites talk AES-256-GCM, differing ones refuse. */
		wg_peer_set_suite(arg % 12 == 10 ? node_a.peer : node_b.peer,
				  take_u8(in) & 1 ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD);
		break;
	case 0:
		wg_device_force_under_load(node_a.dev, !wg_device_under_load(node_a.dev, now.mono));
		break;
	case 1:
		wg_device_force_under_load(node_b.dev, !wg_device_under_load(node_b.dev, now.mono));
		break;
	case 2:
		endpoint_v4(&node_b.addr, "203.0.113.9", take_u16(in));
		break;
	case 3:
		endpoint_v6(&node_b.addr, "2001:db8::9", take_u16(in));
		break;
	case 4:
		wg_peer_send_keepalive(node_a.peer, now);
		break;
	case 5:
		wg_peer_send_keepalive(node_b.peer, now);
		break;
	case 6:
		wg_peer_set_persistent_keepalive(node_a.peer, take_u8(in), now);
		break;
	case 7:
		/* A mismatched PSK: the next handshake fails until it is put back. */
		memset(k, take_u8(in), sizeof(k));
		wg_peer_set_psk(node_a.peer, k[0] & 1 ? psk_ab : k);
		break;
	case 8:
		/* A changes its identity and back: its sessions are expired. */
		memcpy(k, key_a, sizeof(k));
		k[5] ^= 1;
		if (wg_device_set_private_key(node_a.dev, k) ||
		    wg_device_set_private_key(node_a.dev, key_a))
			fail();
		break;
	default:
		wg_device_set_mtu(node_a.dev, 576u + take_u8(in) * 4u);
		break;
	}
}

static void run_timers(void)
{
	struct wg_peer *p;

	for (p = wg_device_peer_first(node_a.dev); p; p = wg_device_peer_next(p))
		wg_peer_run_timers(p, now);
	for (p = wg_device_peer_first(node_b.dev); p; p = wg_device_peer_next(p))
		wg_peer_run_timers(p, now);
}

static void mode_script(struct input *in)
{
	const uint8_t *raw;
	struct pkt p;
	size_t ops, len;
	uint16_t dt;

	if (take_u8(in) & 1)
		handshake(true);
	for (ops = 0; ops < SCRIPT_MAX_OPS && in->len; ops++) {
		/* Bit 7 picks the node acting, bit 6 is a flag, the rest the opcode. */
		uint8_t op = take_u8(in);
		struct node *n = op & 0x80 ? &node_b : &node_a;

		switch ((op & 0x3f) % 10) {
		case 0: /* deliver n's oldest message */
			forward(n);
			break;
		case 1: /* deliver it mutated */
			if (n->nout) {
				queue_pop(n, &p);
				mutate(&p, in);
				receive(other(n), p.data, p.len);
			}
			break;
		case 2: /* deliver a copy, keep the original: a replay */
			if (n->nout)
				receive(other(n), n->out[0].data, n->out[0].len);
			break;
		case 3: /* lose it */
			if (n->nout)
				queue_pop(n, NULL);
			break;
		case 4: /* reorder the two oldest */
			if (n->nout >= 2) {
				p = n->out[0];
				n->out[0] = n->out[1];
				n->out[1] = p;
			}
			break;
		case 5:
			script_send(n, in);
			break;
		case 6: /* time passes: up to about 11 minutes, in 10 ms steps */
			dt = take_u16(in);
			now.mono += (uint64_t)dt * 10 * NSEC_PER_MSEC;
			now.wall += (uint64_t)dt * 10 * NSEC_PER_MSEC;
			run_timers();
			break;
		case 7:
			wg_peer_initiate(n->peer, now, op & 0x40);
			break;
		case 8: /* an arbitrary datagram to A */
			len = take_bytes(in, take_u8(in), &raw);
			receive(&node_a, raw, len);
			break;
		default:
			script_control(in);
			break;
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	trace = getenv("FUZZ_TRACE") != NULL;
	crypto_scalarmult_base(pub_a, key_a);
	crypto_scalarmult_base(pub_b, key_b);
	crypto_scalarmult_base(pub_c, key_c);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	uint8_t mode = take_u8(&in);

	rng_state = seed_of(data, size);
	network_up();
	switch (mode % MODE_COUNT) {
	case MODE_RAW:
		mode_raw(&in);
		break;
	case MODE_CRAFT:
		mode_craft(&in);
		break;
	case MODE_INNER:
		mode_inner(&in);
		break;
	default:
		mode_script(&in);
		break;
	}
	network_down();
	return 0;
}
