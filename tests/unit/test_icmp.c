// SPDX-License-Identifier: MIT
/*
 * The ICMP unreachable reply (src/icmp.c), one row per rule: a plain TCP
 * packet, an echo request, the biggest packet (IPv4) get an answer whose
 * addresses are swapped, whose checksums hold and which quotes the
 * packet; no answer to an ICMP error, to a multicast, broadcast or
 * unspecified source, to a multicast or broadcast destination, or to a
 * fragment that is not the first, as the kernel's rules go (RFC 1122
 * 3.2.2, RFC 4443 2.4 (e)), for IPv4 and IPv6 alike; and bad headers
 * (a short IHL, a truncated extension header) get none and are never
 * read past.
 */
#include "icmp.c"
#include "offload.c"

#include <arpa/inet.h>
#include <stdbool.h>

#include "core/compiler.h"
#include "test_util.h"


struct row {
	const char *what;
	int family;
	const char *src, *dst;
	uint8_t proto;    /* after the extension headers (IPv6) */
	uint8_t icmp_type; /* for ICMP and ICMPv6 */
	uint16_t frag;     /* IPv4: flags and offset; IPv6: offset and M, in a fragment header */
	bool hop_by_hop;   /* IPv6: a hop-by-hop header first */
	size_t payload;
	bool answered;
};

static const struct row rows[] = {
	{ "v4 tcp", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, true },
	{ "v4 echo request", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_ICMP, 8, 0, false, 56, true },
	{ "v4 big", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 1400, true },
	{ "v4 first fragment", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_TCP, 0, 0x2000, false, 40, true },
	{ "v4 icmp error", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_ICMP, 3, 0, false, 56, false },
	{ "v4 later fragment", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_TCP, 0, 0x2000 | 185, false, 40, false },
	{ "v4 last fragment", AF_INET, "192.0.2.1", "192.0.2.99", IPPROTO_TCP, 0, 1, false, 40, false },
	{ "v4 from multicast", AF_INET, "224.0.0.1", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 from 239/8", AF_INET, "239.255.0.1", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 from broadcast", AF_INET, "255.255.255.255", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 from unspecified", AF_INET, "0.0.0.0", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 from 0/8", AF_INET, "0.1.2.3", "192.0.2.99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 to multicast", AF_INET, "192.0.2.1", "239.1.1.1", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v4 to broadcast", AF_INET, "192.0.2.1", "255.255.255.255", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v6 tcp", AF_INET6, "fd00::1", "fd00::99", IPPROTO_TCP, 0, 0, false, 40, true },
	{ "v6 echo request", AF_INET6, "fd00::1", "fd00::99", IPPROTO_ICMPV6, 128, 0, false, 56, true },
	{ "v6 big", AF_INET6, "fd00::1", "fd00::99", IPPROTO_TCP, 0, 0, false, 1400, true },
	{ "v6 after hop-by-hop", AF_INET6, "fd00::1", "fd00::99", IPPROTO_TCP, 0, 0, true, 40, true },
	{ "v6 first fragment", AF_INET6, "fd00::1", "fd00::99", IPPROTO_TCP, 0, 0x0001, false, 40, true },
	{ "v6 icmp error", AF_INET6, "fd00::1", "fd00::99", IPPROTO_ICMPV6, 1, 0, false, 56, false },
	{ "v6 icmp error behind hop-by-hop", AF_INET6, "fd00::1", "fd00::99", IPPROTO_ICMPV6, 1, 0, true, 56, false },
	{ "v6 later fragment", AF_INET6, "fd00::1", "fd00::99", IPPROTO_TCP, 0, 185 << 3, false, 40, false },
	{ "v6 from multicast", AF_INET6, "ff02::1", "fd00::99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v6 from unspecified", AF_INET6, "::", "fd00::99", IPPROTO_TCP, 0, 0, false, 40, false },
	{ "v6 to multicast", AF_INET6, "fd00::1", "ff0e::1", IPPROTO_TCP, 0, 0, false, 40, false },
};

/* put16 and get16 come from offload.c. */

/* The packet a row describes, in pkt; its length. */
static size_t build(const struct row *r, uint8_t *pkt, size_t cap)
{
	size_t h = r->family == AF_INET ? 20 : 40, n;
	uint8_t *next;

	memset(pkt, 0, cap);
	if (r->family == AF_INET6 && r->hop_by_hop)
		h += 8;
	if (r->family == AF_INET6 && r->frag)
		h += 8;
	n = h + r->payload;
	assert_true(n <= cap);
	if (r->family == AF_INET) {
		pkt[0] = 0x45;
		put16(pkt + 2, (uint16_t)n);
		put16(pkt + 6, r->frag);
		pkt[8] = 64;
		pkt[9] = r->proto;
		assert_int_equal(inet_pton(AF_INET, r->src, pkt + 12), 1);
		assert_int_equal(inet_pton(AF_INET, r->dst, pkt + 16), 1);
		put16(pkt + 10, offload_csum_fold(offload_csum_add(0, pkt, 20)));
	} else {
		pkt[0] = 0x60;
		put16(pkt + 4, (uint16_t)(n - 40));
		pkt[7] = 64;
		assert_int_equal(inet_pton(AF_INET6, r->src, pkt + 8), 1);
		assert_int_equal(inet_pton(AF_INET6, r->dst, pkt + 24), 1);
		next = pkt + 6;
		h = 40;
		if (r->hop_by_hop) {
			*next = 0; /* hop-by-hop: 8 bytes, a PadN option */
			next = pkt + h;
			pkt[h + 2] = 1;
			pkt[h + 3] = 4;
			h += 8;
		}
		if (r->frag) {
			*next = 44;
			next = pkt + h;
			put16(pkt + h + 2, r->frag);
			h += 8;
		}
		*next = r->proto;
	}
	if (r->proto == IPPROTO_ICMP || r->proto == IPPROTO_ICMPV6)
		pkt[h] = r->icmp_type;
	else
		pkt[h + 12] = 0x50; /* a TCP header's data offset */
	return n;
}

/* The reply to pkt is well made: from its destination to its source, checksums right, quoting it. */
static void check_reply(const struct row *r, const uint8_t *pkt, size_t len, const uint8_t *out,
			size_t n)
{
	uint8_t pseudo[40];

	if (r->family == AF_INET) {
		size_t quote = len < 548 ? len : 548;

		assert_int_equal(n, 28 + quote);
		assert_true(n <= 576);
		assert_int_equal(out[0], 0x45);
		assert_int_equal(get16(out + 2), n);
		assert_int_equal(out[9], IPPROTO_ICMP);
		assert_memory_equal(out + 12, pkt + 16, 4);
		assert_memory_equal(out + 16, pkt + 12, 4);
		assert_int_equal(offload_csum_fold(offload_csum_add(0, out, 20)), 0);
		assert_int_equal(out[20], 3); /* destination unreachable */
		assert_int_equal(out[21], 1); /* host unreachable */
		assert_int_equal(offload_csum_fold(offload_csum_add(0, out + 20, n - 20)), 0);
		assert_memory_equal(out + 28, pkt, quote);
	} else {
		size_t quote = len < 1280 - 48 ? len : 1280 - 48;

		assert_int_equal(n, 48 + quote);
		assert_true(n <= 1280);
		assert_int_equal(out[0] >> 4, 6);
		assert_int_equal(get16(out + 4), n - 40);
		assert_int_equal(out[6], IPPROTO_ICMPV6);
		assert_memory_equal(out + 8, pkt + 24, 16);
		assert_memory_equal(out + 24, pkt + 8, 16);
		assert_int_equal(out[40], 1); /* destination unreachable */
		assert_int_equal(out[41], 3); /* address unreachable */
		memcpy(pseudo, out + 8, 32);
		memset(pseudo + 32, 0, 8);
		put16(pseudo + 34, (uint16_t)(n - 40));
		pseudo[39] = IPPROTO_ICMPV6;
		assert_int_equal(offload_csum_fold(offload_csum_add(offload_csum_add(0, pseudo, 40),
								    out + 40, n - 40)),
				 0);
		assert_memory_equal(out + 48, pkt, quote);
	}
}

static void test_rules(void **state)
{
	uint8_t pkt[2048], out[ICMP_REPLY_MAX + 64];
	size_t i, len, n, wrong = 0;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];

		len = build(r, pkt, sizeof(pkt));
		memset(out, 0xee, sizeof(out));
		n = icmp_unreachable_build(pkt, len, out);
		if (r->answered != (n != 0)) {
			print_error("%s: %s\n", r->what, n ? "answered" : "not answered");
			wrong++;
		} else if (n) {
			check_reply(r, pkt, len, out, n);
		}
		/* Nothing written past the reply's room. */
		assert_true(out[ICMP_REPLY_MAX] == 0xee);
	}
	assert_int_equal(wrong, 0);
}

/* Headers that lie about their length: no answer, nothing read past the packet. */
static void test_bad_headers(void **state)
{
	uint8_t pkt[64], out[ICMP_REPLY_MAX];
	size_t len;

	(void)state;
	/* IPv4 with an IHL under 5, and one past the packet. */
	len = build(&rows[0], pkt, sizeof(pkt));
	pkt[0] = 0x44;
	assert_int_equal(icmp_unreachable_build(pkt, len, out), 0);
	pkt[0] = 0x4f;
	assert_int_equal(icmp_unreachable_build(pkt, 40, out), 0);
	/* IPv6 whose hop-by-hop header runs past the end. */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x60;
	pkt[6] = 0;
	pkt[8] = 0xfd;
	pkt[24] = 0xfd;
	pkt[41] = 200; /* (200 + 1) * 8 bytes */
	assert_int_equal(icmp_unreachable_build(pkt, 48, out), 0);
	/* Too short for any header. */
	assert_int_equal(icmp_unreachable_build(pkt, 19, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_bad_headers),
	};

	return cmocka_run_group_tests_name("icmp", tests, NULL, NULL);
}
