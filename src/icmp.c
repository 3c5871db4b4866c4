// SPDX-License-Identifier: MIT
/*
 * When an ICMP error is due, as the kernel's rules go (RFC 1122 3.2.2,
 * RFC 4443 2.4 (e); net/ipv4/icmp.c, net/ipv6/icmp.c): never about an ICMP
 * error, never about a fragment but the first (whose transport header is
 * the only one that says what it was), never to a source that names no
 * single host (unspecified, multicast, broadcast), and never about a
 * packet sent to a group (multicast, broadcast), which would draw one
 * error from every member. A reply to such a source could go nowhere or
 * everywhere, and one that quotes a group address is a smurf amplifier.
 */
#include "icmp.h"

#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/ip_icmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "offload.h"

/* Where each field is, from the system's own header structures. */
enum {
	V4_HDR = sizeof(struct iphdr),
	V4_TOT_LEN = offsetof(struct iphdr, tot_len),
	V4_FRAG_OFF = offsetof(struct iphdr, frag_off),
	V4_TTL = offsetof(struct iphdr, ttl),
	V4_PROTOCOL = offsetof(struct iphdr, protocol),
	V4_CHECK = offsetof(struct iphdr, check),
	V4_SADDR = offsetof(struct iphdr, saddr),
	V4_DADDR = offsetof(struct iphdr, daddr),
	ICMP4_HDR = 8, /* type, code, checksum and the unused word (struct icmphdr) */
	ICMP4_TYPE = offsetof(struct icmphdr, type),
	ICMP4_CODE = offsetof(struct icmphdr, code),
	ICMP4_CHECKSUM = offsetof(struct icmphdr, checksum),
	V6_HDR = sizeof(struct ip6_hdr),
	V6_PLEN = offsetof(struct ip6_hdr, ip6_plen),
	V6_NXT = offsetof(struct ip6_hdr, ip6_nxt),
	V6_HLIM = offsetof(struct ip6_hdr, ip6_hlim),
	V6_SRC = offsetof(struct ip6_hdr, ip6_src),
	V6_DST = offsetof(struct ip6_hdr, ip6_dst),
	ICMP6_HDR = sizeof(struct icmp6_hdr),
	ICMP6_TYPE = offsetof(struct icmp6_hdr, icmp6_type),
	ICMP6_CODE = offsetof(struct icmp6_hdr, icmp6_code),
	ICMP6_CKSUM = offsetof(struct icmp6_hdr, icmp6_cksum),
	REPLY_HOP_LIMIT = 64,
	/* The reply stays within the minimum datagram (RFC 1812 4.3.2.3). */
	IP4_QUOTE_MAX = 576 - V4_HDR - ICMP4_HDR,
	IP6_QUOTE_MAX = ICMP_REPLY_MAX - V6_HDR - ICMP6_HDR,
	EXT_MAX = 8, /* extension headers looked through, at most */
};

static void be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t be16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* 0.0.0.0/8, 224.0.0.0/4 (multicast) or 255.255.255.255: no single host. */
static bool v4_no_host(const uint8_t *a)
{
	return a[0] == 0 || (a[0] & 0xf0) == 0xe0 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

static bool v4_due(const uint8_t *pkt, size_t len)
{
	size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
	bool first = (be16_get(pkt + V4_FRAG_OFF) & IP_OFFMASK) == 0;

	if (ihl < V4_HDR || ihl > len || !first)
		return false;
	if (v4_no_host(pkt + V4_SADDR) || v4_no_host(pkt + V4_DADDR))
		return false;
	/* Echo requests may be answered; other ICMP (errors above all) never. */
	return pkt[V4_PROTOCOL] != IPPROTO_ICMP || (len > ihl && pkt[ihl + ICMP4_TYPE] == ICMP_ECHO);
}

static size_t v4_reply(const uint8_t *pkt, size_t len, uint8_t *out)
{
	size_t quote = len < IP4_QUOTE_MAX ? len : IP4_QUOTE_MAX, n = V4_HDR + ICMP4_HDR + quote;
	uint8_t *icmp = out + V4_HDR;

	out[0] = 4 << 4 | V4_HDR / 4; /* version, header length in words */
	be16_put(out + V4_TOT_LEN, (uint16_t)n);
	out[V4_TTL] = REPLY_HOP_LIMIT;
	out[V4_PROTOCOL] = IPPROTO_ICMP;
	memcpy(out + V4_SADDR, pkt + V4_DADDR, 4); /* from the unreachable destination */
	memcpy(out + V4_DADDR, pkt + V4_SADDR, 4);
	be16_put(out + V4_CHECK, offload_csum_fold(offload_csum_add(0, out, V4_HDR)));
	icmp[ICMP4_TYPE] = ICMP_DEST_UNREACH;
	icmp[ICMP4_CODE] = ICMP_HOST_UNREACH;
	memcpy(icmp + ICMP4_HDR, pkt, quote);
	be16_put(icmp + ICMP4_CHECKSUM, offload_csum_fold(offload_csum_add(0, icmp, ICMP4_HDR + quote)));
	return n;
}

/* :: or ff00::/8. */
static bool v6_no_host(const uint8_t *a)
{
	static const uint8_t zero[16];

	return a[0] == 0xff || memcmp(a, zero, 16) == 0;
}

/*
 * Past the extension headers (as far as EXT_MAX of them) to the
 * transport: no reply for a fragment that is not the first or for an
 * ICMPv6 error, nor when the headers run past the packet.
 */
static bool v6_due(const uint8_t *pkt, size_t len)
{
	size_t off = V6_HDR, i;
	uint8_t next = pkt[V6_NXT];

	if (v6_no_host(pkt + V6_SRC) || pkt[V6_DST] == 0xff)
		return false;
	for (i = 0; i < EXT_MAX; i++) {
		struct ip6_frag frag;
		struct ip6_ext ext;

		if (next == IPPROTO_FRAGMENT) {
			if (off + sizeof(frag) > len)
				return false;
			memcpy(&frag, pkt + off, sizeof(frag));
			if (frag.ip6f_offlg & IP6F_OFF_MASK)
				return false; /* not the first fragment */
			next = frag.ip6f_nxt;
			off += sizeof(frag);
		} else if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS) {
			/* ip6e_len counts 8-byte units past the first. */
			if (off + 8 > len)
				return false;
			memcpy(&ext, pkt + off, sizeof(ext));
			if (off + ((size_t)ext.ip6e_len + 1) * 8 > len)
				return false;
			next = ext.ip6e_nxt;
			off += ((size_t)ext.ip6e_len + 1) * 8;
		} else {
			break;
		}
	}
	/* Informational messages may be answered; errors never. */
	return next != IPPROTO_ICMPV6 || (len > off && (pkt[off + ICMP6_TYPE] & ICMP6_INFOMSG_MASK));
}

static size_t v6_reply(const uint8_t *pkt, size_t len, uint8_t *out)
{
	size_t quote = len < IP6_QUOTE_MAX ? len : IP6_QUOTE_MAX, n = V6_HDR + ICMP6_HDR + quote;
	uint8_t *icmp = out + V6_HDR;
	uint8_t pseudo[8] = { 0 }; /* RFC 8200 8.1: upper-layer length, zeros, next header */
	uint32_t sum;

	out[0] = 6 << 4; /* version */
	be16_put(out + V6_PLEN, (uint16_t)(n - V6_HDR));
	out[V6_NXT] = IPPROTO_ICMPV6;
	out[V6_HLIM] = REPLY_HOP_LIMIT;
	memcpy(out + V6_SRC, pkt + V6_DST, 16); /* from the unreachable destination */
	memcpy(out + V6_DST, pkt + V6_SRC, 16);
	icmp[ICMP6_TYPE] = ICMP6_DST_UNREACH;
	icmp[ICMP6_CODE] = ICMP6_DST_UNREACH_ADDR;
	memcpy(icmp + ICMP6_HDR, pkt, quote);
	be16_put(pseudo + 2, (uint16_t)(n - V6_HDR));
	pseudo[7] = IPPROTO_ICMPV6;
	sum = offload_csum_add(0, out + V6_SRC, 32);
	sum = offload_csum_add(sum, pseudo, 8);
	sum = offload_csum_add(sum, icmp, n - V6_HDR);
	be16_put(icmp + ICMP6_CKSUM, offload_csum_fold(sum));
	return n;
}

size_t icmp_unreachable_build(const uint8_t *pkt, size_t len, uint8_t out[static ICMP_REPLY_MAX])
{
	memset(out, 0, ICMP_REPLY_MAX);
	if (len >= V4_HDR && pkt[0] >> 4 == 4 && v4_due(pkt, len))
		return v4_reply(pkt, len, out);
	if (len >= V6_HDR && pkt[0] >> 4 == 6 && v6_due(pkt, len))
		return v6_reply(pkt, len, out);
	return 0;
}
