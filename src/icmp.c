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

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "offload.h"

enum {
	IP4_QUOTE_MAX = 576 - 28, /* the reply stays within the minimum datagram (RFC 1812 4.3.2.3) */
	IP6_QUOTE_MAX = ICMP_REPLY_MAX - 48,
	EXT_HOPS = 0,
	EXT_ROUTING = 43,
	EXT_FRAGMENT = 44,
	EXT_DSTOPTS = 60,
	EXT_MAX = 8, /* extension headers looked through, at most */
};

static void be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* 0.0.0.0/8, 224.0.0.0/4 (multicast) or 255.255.255.255: no single host. */
static bool v4_no_host(const uint8_t *a)
{
	return a[0] == 0 || (a[0] & 0xf0) == 0xe0 || (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

static bool v4_due(const uint8_t *pkt, size_t len)
{
	size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
	bool first = ((pkt[6] & 0x1f) | pkt[7]) == 0;

	if (ihl < 20 || ihl > len || !first)
		return false;
	if (v4_no_host(pkt + 12) || v4_no_host(pkt + 16))
		return false;
	/* Echo requests may be answered; other ICMP (errors above all) never. */
	return pkt[9] != IPPROTO_ICMP || (len > ihl && pkt[ihl] == 8);
}

static size_t v4_reply(const uint8_t *pkt, size_t len, uint8_t *out)
{
	size_t quote = len < IP4_QUOTE_MAX ? len : IP4_QUOTE_MAX, n = 20 + 8 + quote;

	out[0] = 0x45;
	be16_put(out + 2, (uint16_t)n);
	out[8] = 64;
	out[9] = IPPROTO_ICMP;
	memcpy(out + 12, pkt + 16, 4); /* from the unreachable destination */
	memcpy(out + 16, pkt + 12, 4);
	be16_put(out + 10, offload_csum_fold(offload_csum_add(0, out, 20)));
	out[20] = 3; /* destination unreachable */
	out[21] = 1; /* host unreachable */
	memcpy(out + 28, pkt, quote);
	be16_put(out + 22, offload_csum_fold(offload_csum_add(0, out + 20, 8 + quote)));
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
	size_t off = 40, i;
	uint8_t next = pkt[6];

	if (v6_no_host(pkt + 8) || pkt[24] == 0xff)
		return false;
	for (i = 0; i < EXT_MAX; i++) {
		if (next == EXT_FRAGMENT) {
			if (off + 8 > len)
				return false;
			if ((pkt[off + 2] << 8 | (pkt[off + 3] & 0xf8)) != 0)
				return false; /* offset not 0 */
			next = pkt[off];
			off += 8;
		} else if (next == EXT_HOPS || next == EXT_ROUTING || next == EXT_DSTOPTS) {
			if (off + 8 > len || off + ((size_t)pkt[off + 1] + 1) * 8 > len)
				return false;
			next = pkt[off];
			off += ((size_t)pkt[off + 1] + 1) * 8;
		} else {
			break;
		}
	}
	/* Informational messages (128 and up) may be answered; errors never. */
	return next != IPPROTO_ICMPV6 || (len > off && pkt[off] >= 128);
}

static size_t v6_reply(const uint8_t *pkt, size_t len, uint8_t *out)
{
	size_t quote = len < IP6_QUOTE_MAX ? len : IP6_QUOTE_MAX, n = 40 + 8 + quote;
	uint8_t pseudo[8] = { 0 };
	uint32_t sum;

	out[0] = 0x60;
	be16_put(out + 4, (uint16_t)(n - 40));
	out[6] = IPPROTO_ICMPV6;
	out[7] = 64;
	memcpy(out + 8, pkt + 24, 16); /* from the unreachable destination */
	memcpy(out + 24, pkt + 8, 16);
	out[40] = 1; /* destination unreachable */
	out[41] = 3; /* address unreachable */
	memcpy(out + 48, pkt, quote);
	be16_put(pseudo + 2, (uint16_t)(n - 40));
	pseudo[7] = IPPROTO_ICMPV6;
	sum = offload_csum_add(0, out + 8, 32);
	sum = offload_csum_add(sum, pseudo, 8);
	sum = offload_csum_add(sum, out + 40, n - 40);
	be16_put(out + 42, offload_csum_fold(sum));
	return n;
}

size_t icmp_unreachable_build(const uint8_t *pkt, size_t len, uint8_t out[static ICMP_REPLY_MAX])
{
	memset(out, 0, ICMP_REPLY_MAX);
	if (len >= 20 && pkt[0] >> 4 == 4 && v4_due(pkt, len))
		return v4_reply(pkt, len, out);
	if (len >= 40 && pkt[0] >> 4 == 6 && v6_due(pkt, len))
		return v6_reply(pkt, len, out);
	return 0;
}
