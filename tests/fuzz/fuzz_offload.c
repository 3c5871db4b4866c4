// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the offload code (src/offload.c), which fuzz_packet
 * never reaches: the first input byte picks a mode.
 *
 *   even  GRO   a list of decrypted packets, mostly one flow's consecutive
 *               segments (TCP or UDP, v4 or v6, with options) with
 *               input-chosen breaks: another address, port, flag, TTL, a
 *               sequence gap, a longer or shorter payload, a length field
 *               that lies, raw bytes; fed to offload_gro as veild's
 *               flush_rx feeds them, with and without UDP joining
 *   odd   TSO   a random virtio_net_hdr and a packet (a well-formed
 *               segment of up to 64 KB, or raw bytes) fed to
 *               offload_tso_start and offload_tso_next, and a random
 *               checksum request to offload_finish_csum
 *
 * Properties checked besides memory safety (every packet and output buffer
 * is its own heap block of the exact size, so any write past one is an ASan
 * report):
 *   - GRO joins 1 to GRO_SEGMENTS_MAX packets, leaves a lone packet as it
 *     was, and every packet of a joined run shares the first's addresses,
 *     ports and protocol (and, for TCP, continues its sequence);
 *   - a joined run is a segment the cutter takes (its length fields say its
 *     length), and cutting it gives back each original payload, in order,
 *     with its own sequence number, and checksums that verify;
 *   - whatever the cutter takes, it cuts into packets of at most hlen + mss
 *     bytes whose payloads put together are the segment's, with length
 *     fields, sequence numbers and checksums right.
 * Payload bytes come from a generator seeded by the input, so a short input
 * still makes long packets.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	MAX_PKTS = 80, /* more than GRO_SEGMENTS_MAX */
	PKT_MAX = 1600,
	IP4_HLEN = 20,
	IP6_HLEN = 40,
	TCP_HLEN = 20,
	UDP_HLEN = 8,
	PROTO_TCP = 6,
	PROTO_UDP = 17,
};

__attribute__((noreturn)) static void fail(void)
{
	__builtin_trap();
}

#define CHECK(x)                \
	do {                    \
		if (!(x))       \
			fail(); \
	} while (0)

/* The input, read a byte at a time; zeros once it runs out. */
struct in {
	const uint8_t *p;
	size_t n;
	uint64_t s; /* the payload generator */
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	return (uint16_t)(u8(in) << 8 | u8(in));
}

static uint32_t u32(struct in *in)
{
	return (uint32_t)u16(in) << 16 | u16(in);
}

static uint8_t gen(struct in *in)
{
	in->s ^= in->s << 13;
	in->s ^= in->s >> 7;
	in->s ^= in->s << 17;
	return (uint8_t)in->s;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* ---- well-formed packets ---- */

struct flow {
	bool v6, udp;
	uint8_t src[16], dst[16];
	uint16_t sport, dport, win;
	uint32_t seq, ack;
	uint8_t tos, ttl, optlen, opts[40];
};

static void read_flow(struct in *in, struct flow *f, bool udp_allowed)
{
	uint8_t b = u8(in);
	size_t i;

	memset(f, 0, sizeof(*f));
	f->v6 = b & 1;
	f->udp = udp_allowed && (b & 2);
	for (i = 0; i < 16; i++) {
		f->src[i] = u8(in);
		f->dst[i] = u8(in);
	}
	f->sport = u16(in);
	f->dport = u16(in);
	f->seq = u32(in);
	f->ack = u32(in);
	f->win = u16(in);
	f->tos = u8(in);
	f->ttl = u8(in);
	f->optlen = f->udp ? 0 : (uint8_t)((b >> 2) % 11 * 4);
	for (i = 0; i < f->optlen; i++)
		f->opts[i] = u8(in);
}

/* The headers' length for the flow: IP, then TCP (with options) or UDP. */
static size_t hdr_len(const struct flow *f)
{
	return (f->v6 ? IP6_HLEN : IP4_HLEN) + (f->udp ? UDP_HLEN : TCP_HLEN + f->optlen);
}

/* One packet of the flow with payload bytes, at seq; its length. Checksums are left zero. */
static size_t build(struct in *in, const struct flow *f, uint32_t seq, uint8_t flags, size_t payload,
		    uint8_t *p)
{
	size_t iphl = f->v6 ? IP6_HLEN : IP4_HLEN, h = hdr_len(f), n = h + payload, i;
	uint8_t *th = p + iphl;

	memset(p, 0, h);
	if (f->v6) {
		p[0] = (uint8_t)(0x60 | f->tos >> 4);
		p[1] = (uint8_t)(f->tos << 4);
		put16(p + 4, (uint16_t)(n - IP6_HLEN));
		p[6] = f->udp ? PROTO_UDP : PROTO_TCP;
		p[7] = f->ttl;
		memcpy(p + 8, f->src, 16);
		memcpy(p + 24, f->dst, 16);
	} else {
		p[0] = 0x45;
		p[1] = f->tos;
		put16(p + 2, (uint16_t)n);
		p[6] = 0x40; /* DF */
		p[8] = f->ttl;
		p[9] = f->udp ? PROTO_UDP : PROTO_TCP;
		memcpy(p + 12, f->src, 4);
		memcpy(p + 16, f->dst, 4);
	}
	put16(th, f->sport);
	put16(th + 2, f->dport);
	if (f->udp) {
		put16(th + 4, (uint16_t)(n - iphl));
	} else {
		put32(th + 4, seq);
		put32(th + 8, f->ack);
		th[12] = (uint8_t)((TCP_HLEN + f->optlen) / 4 << 4);
		th[13] = flags;
		put16(th + 14, f->win);
		memcpy(th + TCP_HLEN, f->opts, f->optlen);
	}
	for (i = h; i < n; i++)
		p[i] = gen(in);
	return n;
}

/* ---- checks shared by both modes ---- */

/* Whether the transport checksum of a packet (IP header at p, n bytes) verifies. */
static bool l4_csum_ok(const uint8_t *p, size_t n, bool v6, size_t iphl, uint8_t proto)
{
	uint32_t sum = v6 ? offload_csum_add(0, p + 8, 32) : offload_csum_add(0, p + 12, 8);

	sum += proto + (uint32_t)(n - iphl);
	return offload_csum_fold(offload_csum_add(sum, p + iphl, n - iphl)) == 0;
}

/*
 * Cut seg (len bytes) as vh says, each packet into a buffer of exactly
 * hlen + mss bytes; want[k] and want_len[k], when given, are the payloads
 * the packets must carry and seqs their sequence numbers. Returns how many.
 */
static size_t cut_and_check(const struct virtio_net_hdr *vh, const uint8_t *seg, size_t len,
			    const uint8_t *const *want, const size_t *want_len, const uint32_t *seqs,
			    size_t nwant)
{
	struct offload_tso t;
	size_t count = 0, off, total = 0;
	uint32_t seq0;

	if (offload_tso_start(&t, vh, seg, len))
		return 0;
	CHECK(t.mss >= 1 && t.hlen < len && t.len == len);
	seq0 = get32(seg + t.iphl + 4);
	off = t.hlen;
	for (;;) {
		uint8_t *out = malloc(t.hlen + t.mss);
		size_t n, payload;

		CHECK(out);
		n = offload_tso_next(&t, out);
		if (!n) {
			free(out);
			break;
		}
		CHECK(n > t.hlen && n <= t.hlen + t.mss);
		payload = n - t.hlen;
		CHECK(off + payload <= len);
		CHECK(memcmp(out + t.hlen, seg + off, payload) == 0);
		/* The headers but lengths, IDs, checksums, sequence and flags are the segment's. */
		CHECK(memcmp(out + (t.v6 ? 8 : 12), seg + (t.v6 ? 8 : 12), t.v6 ? 32 : 8) == 0);
		CHECK(memcmp(out + t.iphl, seg + t.iphl, 4) == 0);
		if (t.v6) {
			CHECK(get16(out + 4) == n - IP6_HLEN);
		} else {
			CHECK(get16(out + 2) == n);
			CHECK(offload_csum_fold(offload_csum_add(0, out, t.iphl)) == 0);
		}
		if (t.udp) {
			CHECK(get16(out + t.iphl + 4) == n - t.iphl);
			CHECK(get16(out + t.iphl + 6) != 0);
		} else {
			CHECK(get32(out + t.iphl + 4) == seq0 + (uint32_t)(off - t.hlen));
		}
		CHECK(l4_csum_ok(out, n, t.v6, t.iphl, t.proto));
		if (want) {
			CHECK(count < nwant);
			CHECK(payload == want_len[count]);
			CHECK(memcmp(out + t.hlen, want[count], payload) == 0);
			CHECK(t.udp || get32(out + t.iphl + 4) == seqs[count]);
		}
		free(out);
		off += payload;
		total += payload;
		count++;
	}
	CHECK(total == len - t.hlen);
	CHECK(count == (len - t.hlen + t.mss - 1) / t.mss);
	CHECK(!want || count == nwant);
	return count;
}

/* ---- GRO ---- */

struct gro_case {
	struct offload_pkt pkts[MAX_PKTS];
	uint8_t *orig[MAX_PKTS]; /* copies, before GRO rewrote any header */
	size_t n;
};

/* Packet j of the case: usually the flow's next segment, with input-chosen breaks. */
static void add_packet(struct in *in, struct gro_case *c, const struct flow *f, uint32_t *seq,
		       size_t mss)
{
	uint8_t buf[PKT_MAX + 128], op = u8(in), m = op & 0x80 ? u8(in) : 0, flags = 0x10; /* ACK */
	size_t len, payload = mss, iphl = f->v6 ? IP6_HLEN : IP4_HLEN;

	if ((op & 0x0f) == 0) {
		len = u8(in) % 160;
		for (size_t i = 0; i < len; i++)
			buf[i] = u8(in);
	} else {
		if (op & 0x10)
			payload = u16(in) % (mss + 1);
		if (op & 0x20)
			payload = mss + 1 + u8(in) % 64;
		if (op & 0x40)
			*seq += u8(in) + 1u;
		if ((op & 0x0f) == 1)
			flags |= (uint8_t)(1u << (u8(in) % 8));
		if (payload > PKT_MAX - hdr_len(f))
			payload = PKT_MAX - hdr_len(f);
		len = build(in, f, *seq, flags, payload, buf);
		*seq += (uint32_t)payload;
		/* One byte of the headers overwritten: an address, a port, a length... */
		if (m)
			buf[u8(in) % (iphl + (f->udp ? UDP_HLEN : TCP_HLEN + f->optlen))] ^= m;
	}
	c->pkts[c->n].data = malloc(len ? len : 1);
	c->orig[c->n] = malloc(len ? len : 1);
	CHECK(c->pkts[c->n].data && c->orig[c->n]);
	memcpy(c->pkts[c->n].data, buf, len);
	memcpy(c->orig[c->n], buf, len);
	c->pkts[c->n].len = len;
	c->n++;
}

/* The run of k packets from i that GRO joined into pkts[i] (headers) and the others' payloads. */
static void check_run(struct gro_case *c, size_t i, size_t k, const struct virtio_net_hdr *vh,
		      size_t hlen)
{
	const uint8_t *want[GRO_SEGMENTS_MAX];
	size_t want_len[GRO_SEGMENTS_MAX], total = 0, j;
	uint32_t seqs[GRO_SEGMENTS_MAX];
	const uint8_t *h = c->orig[i];
	bool v6 = h[0] >> 4 == 6;
	size_t iphl = v6 ? IP6_HLEN : IP4_HLEN;
	uint8_t *seg, *p;

	CHECK(k <= GRO_SEGMENTS_MAX && hlen > iphl && hlen == vh->hdr_len);
	for (j = 0; j < k; j++) {
		const uint8_t *o = c->orig[i + j];

		CHECK(c->pkts[i + j].len > hlen);
		/* Addresses, ports, protocol: the first packet's. */
		CHECK(o[0] >> 4 == h[0] >> 4);
		CHECK(memcmp(o + (v6 ? 8 : 12), h + (v6 ? 8 : 12), v6 ? 32 : 8) == 0);
		CHECK(o[v6 ? 6 : 9] == h[v6 ? 6 : 9]);
		CHECK(memcmp(o + iphl, h + iphl, 4) == 0);
		want[j] = o + hlen;
		want_len[j] = c->pkts[i + j].len - hlen;
		seqs[j] = get32(o + iphl + 4);
		if (j && h[v6 ? 6 : 9] == PROTO_TCP)
			CHECK(seqs[j] == seqs[j - 1] + (uint32_t)want_len[j - 1]);
		total += j ? want_len[j] : c->pkts[i].len;
	}
	/* The joined segment as veild writes it to the TUN device, in one exact block. */
	seg = malloc(total);
	CHECK(seg);
	p = seg;
	memcpy(p, c->pkts[i].data, c->pkts[i].len);
	p += c->pkts[i].len;
	for (j = 1; j < k; j++) {
		memcpy(p, c->pkts[i + j].data + hlen, c->pkts[i + j].len - hlen);
		p += c->pkts[i + j].len - hlen;
	}
	CHECK(v6 ? get16(seg + 4) + (size_t)IP6_HLEN == total : get16(seg + 2) == total);
	CHECK(cut_and_check(vh, seg, total, want, want_len, seqs, k) == k);
	free(seg);
}

static void gro(struct in *in)
{
	struct gro_case c = { .n = 0 };
	struct flow f;
	struct virtio_net_hdr vh;
	bool udp = u8(in) & 1;
	size_t n, mss, i, k, hlen;
	uint32_t seq;

	read_flow(in, &f, true);
	mss = 1 + u16(in) % 1460;
	n = 1 + u8(in) % MAX_PKTS;
	seq = f.seq;
	while (c.n < n)
		add_packet(in, &c, &f, &seq, mss);
	for (i = 0; i < c.n; i += k) {
		k = offload_gro(c.pkts + i, c.n - i, udp, &vh, &hlen);
		CHECK(k >= 1 && k <= c.n - i && k <= GRO_SEGMENTS_MAX);
		if (k == 1) {
			/* A lone packet goes as it is, marked as checked. */
			CHECK(memcmp(c.pkts[i].data, c.orig[i], c.pkts[i].len) == 0);
			CHECK(vh.flags == VIRTIO_NET_HDR_F_DATA_VALID && vh.gso_type == 0);
			continue;
		}
		CHECK(udp || vh.gso_type != VIRTIO_NET_HDR_GSO_UDP_L4);
		check_run(&c, i, k, &vh, hlen);
	}
	for (i = 0; i < c.n; i++) {
		free(c.pkts[i].data);
		free(c.orig[i]);
	}
}

/* ---- TSO ---- */

static void tso(struct in *in)
{
	struct virtio_net_hdr vh, cs;
	struct flow f;
	uint8_t *seg;
	size_t len, h, i;
	uint8_t kind = u8(in);

	memset(&vh, 0, sizeof(vh));
	vh.flags = u8(in);
	vh.gso_size = kind & 0x80 ? u16(in) : (uint16_t)(1 + u16(in) % 9000);
	vh.hdr_len = u16(in);
	vh.csum_start = u16(in);
	vh.csum_offset = u16(in);
	if (kind & 1) {
		/* Raw bytes and a raw header: only memory safety. */
		vh.gso_type = u8(in);
		len = u16(in) % 2048;
		seg = malloc(len ? len : 1);
		CHECK(seg);
		for (i = 0; i < len; i++)
			seg[i] = u8(in);
	} else {
		read_flow(in, &f, true);
		h = hdr_len(&f);
		len = h + u16(in) % (OFFLOAD_MAX - h + 1);
		seg = malloc(len);
		CHECK(seg);
		build(in, &f, f.seq, (uint8_t)(0x10 | (u8(in) & 0x09)), len - h, seg); /* ACK, maybe PSH, FIN */
		vh.gso_type = f.udp ? VIRTIO_NET_HDR_GSO_UDP_L4
			      : f.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
		if (kind & 2)
			vh.gso_type = u8(in); /* the wrong type now and then */
		if (kind & 4 && len)
			seg[u8(in) % (h < len ? h : len)] ^= (uint8_t)(u8(in) | 1);
	}
	cut_and_check(&vh, seg, len, NULL, NULL, NULL, 0);
	/* A checksum the kernel left undone, at input-chosen offsets. */
	cs = vh;
	if (!offload_finish_csum(&cs, seg, len))
		CHECK(cs.csum_start < len && (size_t)cs.csum_start + cs.csum_offset + 2 <= len);
	free(seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0x9e3779b97f4a7c15ULL };
	size_t i;

	if (size < 1)
		return 0;
	for (i = 0; i < size && i < 8; i++)
		in.s = in.s * 31 + data[i] + 1;
	if (u8(&in) & 1)
		tso(&in);
	else
		gro(&in);
	return 0;
}
