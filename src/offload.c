// SPDX-License-Identifier: MIT
#include "offload.h"

#include <errno.h>
#include <string.h>

/*
 * Header offsets (RFC 791, RFC 8200, RFC 9293). TCP flags, byte 13:
 * CWR 0x80, URG 0x20, PSH 0x08, RST 0x04, SYN 0x02, FIN 0x01.
 */
enum {
	IP4_TOTLEN = 2,
	IP4_ID = 4,
	IP4_FRAG = 6,
	IP4_PROTO = 9,
	IP4_CSUM = 10,
	IP4_ADDRS = 12,
	IP4_HLEN = 20,
	IP6_PLEN = 4,
	IP6_NEXT = 6,
	IP6_ADDRS = 8,
	IP6_HLEN = 40,
	TCP_SEQ = 4,
	TCP_ACK = 8,
	TCP_DOFF = 12,
	TCP_FLAGS = 13,
	TCP_WIN = 14,
	TCP_CSUM = 16,
	TCP_HLEN = 20,
	UDP_LEN = 4,
	UDP_CSUM = 6,
	UDP_HLEN = 8,
	PROTO_TCP = 6,
	PROTO_UDP = 17,
	TH_FIN = 0x01,
	TH_SYN = 0x02,
	TH_RST = 0x04,
	TH_PSH = 0x08,
	TH_URG = 0x20,
	TH_CWR = 0x80,
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/*
 * The one's-complement sum does not care for byte order (RFC 1071 2B): add
 * native words eight bytes at a time, fold, and turn the result into the
 * big-endian word sum the callers keep.
 */
uint32_t offload_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t acc = 0, w;
	uint16_t h;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		acc += (w & 0xffffffffu) + (w >> 32);
	}
	for (; len >= 2; p += 2, len -= 2) {
		memcpy(&h, p, 2);
		acc += h;
	}
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (len)
		acc += p[0];
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	h = (uint16_t)acc;
	h = (uint16_t)(h >> 8 | h << 8);
#else
	if (len)
		acc += (uint64_t)p[0] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	h = (uint16_t)acc;
#endif
	return sum + h;
}

uint16_t offload_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The TCP or UDP pseudo-header of a packet's addresses for a transport length. */
static uint32_t pseudo_sum(const uint8_t *pkt, bool v6, uint8_t proto, size_t l4_len)
{
	uint32_t sum = v6 ? offload_csum_add(0, pkt + IP6_ADDRS, 32) : offload_csum_add(0, pkt + IP4_ADDRS, 8);

	return sum + proto + (uint32_t)l4_len;
}

int offload_finish_csum(const struct virtio_net_hdr *vh, uint8_t *pkt, size_t len)
{
	size_t start = vh->csum_start, at = start + vh->csum_offset;
	uint16_t c;

	if (start >= len || at + 2 > len)
		return -EINVAL;
	/* The field holds the pseudo-header's sum already; the sum covers it. */
	c = offload_csum_fold(offload_csum_add(0, pkt + start, len - start));
	if (!c && vh->csum_offset == UDP_CSUM)
		c = 0xffff; /* 0 means "no checksum" in UDP */
	put16(pkt + at, c);
	return 0;
}

int offload_tso_start(struct offload_tso *t, const struct virtio_net_hdr *vh, const uint8_t *pkt,
		      size_t len)
{
	int type = vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	size_t thl;

	memset(t, 0, sizeof(*t));
	t->udp = type == VIRTIO_NET_HDR_GSO_UDP_L4;
	if (type != VIRTIO_NET_HDR_GSO_TCPV4 && type != VIRTIO_NET_HDR_GSO_TCPV6 && !t->udp)
		return -EINVAL;
	/* An IPv4 train of tiny datagrams is shorter than an IPv6 header: each version its own minimum. */
	if (len < IP4_HLEN)
		return -EINVAL;
	t->v6 = pkt[0] >> 4 == 6;
	if (pkt[0] >> 4 != (t->v6 ? 6 : 4) || (!t->udp && t->v6 != (type == VIRTIO_NET_HDR_GSO_TCPV6)) ||
	    (t->v6 && len < IP6_HLEN))
		return -EINVAL;
	t->proto = t->udp ? PROTO_UDP : PROTO_TCP;
	if (t->v6) {
		t->iphl = IP6_HLEN;
		if (pkt[IP6_NEXT] != t->proto)
			return -EINVAL; /* extension headers: the kernel does not send them here */
	} else {
		t->iphl = (size_t)(pkt[0] & 0x0f) * 4;
		if (t->iphl < 20 || pkt[IP4_PROTO] != t->proto)
			return -EINVAL;
	}
	if (len < t->iphl + (t->udp ? UDP_HLEN : TCP_HLEN))
		return -EINVAL;
	thl = t->udp ? UDP_HLEN : (size_t)(pkt[t->iphl + TCP_DOFF] >> 4) * 4;
	t->hlen = t->iphl + thl;
	t->mss = vh->gso_size;
	if (thl < UDP_HLEN || (!t->udp && thl < TCP_HLEN) || t->hlen >= len || !t->mss ||
	    len > OFFLOAD_MAX)
		return -EINVAL;
	t->pkt = pkt;
	t->len = len;
	t->off = t->hlen;
	t->seq = get32(pkt + t->iphl + TCP_SEQ);
	t->id = get16(pkt + IP4_ID);
	return 0;
}

size_t offload_tso_next(struct offload_tso *t, uint8_t *out)
{
	size_t seg, l4_len, n;
	uint8_t *th = out + t->iphl;
	uint16_t c;
	bool first = t->off == t->hlen, last;

	if (t->off >= t->len)
		return 0;
	seg = t->len - t->off < t->mss ? t->len - t->off : t->mss;
	last = t->off + seg == t->len;
	n = t->hlen + seg;
	memcpy(out, t->pkt, t->hlen);
	memcpy(out + t->hlen, t->pkt + t->off, seg);
	if (t->v6) {
		put16(out + IP6_PLEN, (uint16_t)(n - IP6_HLEN));
	} else {
		put16(out + IP4_TOTLEN, (uint16_t)n);
		put16(out + IP4_ID, t->id++);
		put16(out + IP4_CSUM, 0);
		put16(out + IP4_CSUM, offload_csum_fold(offload_csum_add(0, out, t->iphl)));
	}
	l4_len = n - t->iphl;
	if (t->udp) {
		put16(th + UDP_LEN, (uint16_t)l4_len);
		put16(th + UDP_CSUM, 0);
		c = offload_csum_fold(offload_csum_add(pseudo_sum(out, t->v6, t->proto, l4_len), th, l4_len));
		put16(th + UDP_CSUM, c ? c : 0xffff);
	} else {
		put32(th + TCP_SEQ, t->seq + (uint32_t)(t->off - t->hlen));
		if (!first)
			th[TCP_FLAGS] &= (uint8_t)~TH_CWR;
		if (!last)
			th[TCP_FLAGS] &= (uint8_t)~(TH_FIN | TH_PSH);
		put16(th + TCP_CSUM, 0);
		c = offload_csum_fold(offload_csum_add(pseudo_sum(out, t->v6, t->proto, l4_len), th, l4_len));
		put16(th + TCP_CSUM, c);
	}
	t->off += seg;
	return n;
}

/* A TCP or UDP packet that may join others: its layout, or false. */
struct l4_view {
	bool v6, udp;
	size_t iphl, hlen, payload;
	uint32_t seq;
	uint8_t flags;
};

static bool l4_view(const uint8_t *p, size_t len, struct l4_view *v)
{
	uint8_t proto;
	size_t thl;

	if (len < 20)
		return false;
	v->v6 = p[0] >> 4 == 6;
	if (v->v6) {
		if (len < IP6_HLEN + UDP_HLEN || get16(p + IP6_PLEN) + (size_t)IP6_HLEN != len)
			return false;
		v->iphl = IP6_HLEN;
		proto = p[IP6_NEXT];
	} else {
		/* No options, no fragments: only plain packets are worth joining. */
		if (p[0] != 0x45 || get16(p + IP4_TOTLEN) != len || (get16(p + IP4_FRAG) & 0x3fff) ||
		    len < 20 + UDP_HLEN)
			return false;
		v->iphl = 20;
		proto = p[IP4_PROTO];
	}
	v->udp = proto == PROTO_UDP;
	if (v->udp) {
		v->hlen = v->iphl + UDP_HLEN;
		v->payload = len - v->hlen;
		v->flags = 0;
		v->seq = 0;
		return get16(p + v->iphl + UDP_LEN) == len - v->iphl && v->payload;
	}
	if (proto != PROTO_TCP || len < v->iphl + TCP_HLEN)
		return false;
	thl = (size_t)(p[v->iphl + TCP_DOFF] >> 4) * 4;
	v->hlen = v->iphl + thl;
	if (thl < TCP_HLEN || v->hlen >= len)
		return false; /* pure ACKs go alone */
	v->payload = len - v->hlen;
	v->seq = get32(p + v->iphl + TCP_SEQ);
	v->flags = p[v->iphl + TCP_FLAGS];
	return !(v->flags & (TH_SYN | TH_FIN | TH_RST | TH_URG | TH_CWR));
}

/*
 * Whether b's headers match a's wherever the kernel's GRO wants them
 * equal: addresses, ports, TOS or traffic class and flow label, TTL; for
 * TCP also ACK, window and every option byte (PSH may differ).
 */
static bool same_flow(const uint8_t *a, const uint8_t *b, const struct l4_view *v)
{
	const uint8_t *ta = a + v->iphl, *tb = b + v->iphl;

	if (v->v6) {
		if (memcmp(a, b, 4) != 0 || memcmp(a + IP6_NEXT, b + IP6_NEXT, 34) != 0)
			return false;
	} else if (memcmp(a, b, 2) != 0 || memcmp(a + IP4_FRAG, b + IP4_FRAG, 4) != 0 ||
		   memcmp(a + IP4_ADDRS, b + IP4_ADDRS, 8) != 0) {
		return false;
	}
	if (v->udp)
		return !memcmp(ta, tb, 4);
	return !memcmp(ta, tb, 4) && !memcmp(ta + TCP_ACK, tb + TCP_ACK, 5) &&
	       (ta[TCP_FLAGS] & ~TH_PSH) == (tb[TCP_FLAGS] & ~TH_PSH) &&
	       !memcmp(ta + TCP_WIN, tb + TCP_WIN, 2) &&
	       !memcmp(ta + TCP_HLEN, tb + TCP_HLEN, v->hlen - v->iphl - TCP_HLEN);
}

/* Whether p may follow q in a run that f heads. */
static bool joins(const struct l4_view *f, const struct l4_view *q, const struct l4_view *p)
{
	if (p->v6 != f->v6 || p->udp != f->udp || p->hlen != f->hlen || q->payload != f->payload ||
	    p->payload > f->payload)
		return false;
	return f->udp || (!(q->flags & TH_PSH) && p->seq == q->seq + (uint32_t)q->payload);
}

size_t offload_gro(struct offload_pkt *pkts, size_t n, bool udp, struct virtio_net_hdr *vh,
		   size_t *hlen)
{
	struct l4_view f, q, p;
	size_t i, total;
	uint8_t *h = pkts[0].data, *th;

	memset(vh, 0, sizeof(*vh));
	vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	*hlen = 0;
	if (!l4_view(h, pkts[0].len, &f) || (f.udp && !udp) || f.flags & TH_PSH)
		return 1;
	q = f;
	total = pkts[0].len;
	for (i = 1; i < n && i < GRO_SEGMENTS_MAX; i++) {
		if (!l4_view(pkts[i].data, pkts[i].len, &p) || !joins(&f, &q, &p) ||
		    total + p.payload > OFFLOAD_MAX || !same_flow(h, pkts[i].data, &f))
			break;
		total += p.payload;
		q = p;
	}
	if (i == 1)
		return 1;
	/* The first packet's headers now describe the whole. */
	if (f.v6) {
		put16(h + IP6_PLEN, (uint16_t)(total - IP6_HLEN));
	} else {
		put16(h + IP4_TOTLEN, (uint16_t)total);
		put16(h + IP4_CSUM, 0);
		put16(h + IP4_CSUM, offload_csum_fold(offload_csum_add(0, h, f.iphl)));
	}
	th = h + f.iphl;
	/* A partial checksum, as a NIC would expect it: the pseudo-header's sum, uncomplemented. */
	if (f.udp) {
		put16(th + UDP_LEN, (uint16_t)(total - f.iphl));
		put16(th + UDP_CSUM,
		      (uint16_t)~offload_csum_fold(pseudo_sum(h, f.v6, PROTO_UDP, total - f.iphl)));
		vh->gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
		vh->csum_offset = UDP_CSUM;
	} else {
		th[TCP_FLAGS] |= q.flags & TH_PSH;
		put16(th + TCP_CSUM,
		      (uint16_t)~offload_csum_fold(pseudo_sum(h, f.v6, PROTO_TCP, total - f.iphl)));
		vh->gso_type = f.v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
		vh->csum_offset = TCP_CSUM;
	}
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->hdr_len = (uint16_t)f.hlen;
	vh->gso_size = (uint16_t)f.payload;
	vh->csum_start = (uint16_t)f.iphl;
	*hlen = f.hlen;
	return i;
}
