// SPDX-License-Identifier: MIT
/*
 * TUN offloads: the fast checksum against a naive one, cutting TSO segments
 * (IPv4 and IPv6: lengths, IDs, sequence numbers, flags, checksums checked
 * by a naive verifier, payload intact), finishing a partial checksum, and
 * joining segments again (GRO) only where the kernel's rules allow.
 */
#include "offload.c"

#include <stdlib.h>

#include "test_util.h"

/* Naive RFC 1071: big-endian words one at a time. */
static uint32_t naive_sum(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t naive_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* A checksummed region verifies when its sum, checksum included, is all ones. */
static void assert_tcp_ok(const uint8_t *pkt, size_t len, bool v6)
{
	size_t iphl = v6 ? 40 : (size_t)(pkt[0] & 15) * 4, tl = len - iphl;
	uint32_t sum = v6 ? naive_sum(0, pkt + 8, 32) : naive_sum(0, pkt + 12, 8);

	sum += 6 + (uint32_t)tl;
	assert_int_equal(naive_fold(naive_sum(sum, pkt + iphl, tl)), 0xffff);
	if (!v6) {
		assert_int_equal(naive_fold(naive_sum(0, pkt, iphl)), 0xffff);
		assert_int_equal(get16(pkt + 2), len);
	} else {
		assert_int_equal(get16(pkt + 4), len - 40);
	}
}

static void test_csum_matches_naive(void **state)
{
	uint8_t buf[300];
	size_t off, len;

	(void)state;
	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (uint8_t)(len * 37 + 11);
	for (off = 0; off < 9; off++)
		for (len = 0; len + off < sizeof(buf); len += 7)
			assert_int_equal(offload_csum_fold(offload_csum_add(5, buf + off, len)),
					 (uint16_t)~naive_fold(naive_sum(5, buf + off, len)));
}

enum { OPT = 12, PAY = 5000, MSS = 1400 };

/* A TCP segment as the kernel hands it over with TSO: lengths for the whole. */
static size_t make_segment(uint8_t *p, bool v6, uint8_t flags, size_t pay)
{
	size_t iphl = v6 ? 40 : 20, i, len = iphl + 20 + OPT + pay;
	uint8_t *th = p + iphl;

	memset(p, 0, iphl + 20 + OPT);
	if (v6) {
		p[0] = 0x60;
		p[1] = 0x0a; /* a traffic class and flow label to keep */
		put16(p + 4, (uint16_t)(len - 40));
		p[6] = 6;
		p[7] = 64;
		for (i = 0; i < 32; i++)
			p[8 + i] = (uint8_t)(0x20 + i);
	} else {
		p[0] = 0x45;
		put16(p + 2, (uint16_t)len);
		put16(p + 4, 0xfffe); /* the ID wraps while cutting */
		p[6] = 0x40;
		p[8] = 64;
		p[9] = 6;
		put32(p + 12, 0xc6120001);
		put32(p + 16, 0xc6120002);
	}
	put16(th, 40000);
	put16(th + 2, 5201);
	put32(th + 4, 0xfffff000); /* the sequence wraps too */
	put32(th + 8, 77);
	th[12] = (20 + OPT) / 4 << 4;
	th[13] = flags;
	put16(th + 14, 501);
	th[20] = 1;
	th[21] = 1;
	th[22] = 8;
	th[23] = 10;
	put32(th + 24, 0x01020304);
	put32(th + 28, 0x05060708);
	for (i = 0; i < pay; i++)
		p[iphl + 20 + OPT + i] = (uint8_t)(i * 7 + 3);
	return len;
}

static struct virtio_net_hdr tso_hdr(bool v6)
{
	struct virtio_net_hdr vh = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = (uint16_t)((v6 ? 40 : 20) + 20 + OPT),
		.gso_size = MSS,
		.csum_start = v6 ? 40 : 20,
		.csum_offset = 16,
	};

	return vh;
}

static uint8_t seg_buf[OFFLOAD_MAX], out[8][2048];

/* Cut, check every packet, join again, check the whole. */
static void cut_and_join(bool v6)
{
	size_t len = make_segment(seg_buf, v6, 0x10 | 0x08 | 0x80, PAY), n[8], k = 0, hlen, i, at;
	size_t iphl = v6 ? 40 : 20, h = iphl + 20 + OPT;
	struct virtio_net_hdr vh = tso_hdr(v6), gv;
	struct offload_pkt pk[8];
	struct offload_tso t;
	uint8_t orig[OFFLOAD_MAX];

	memcpy(orig, seg_buf, len);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), 0);
	while ((n[k] = offload_tso_next(&t, out[k])))
		k++;
	assert_int_equal(k, 4);
	for (i = 0; i < k; i++) {
		uint8_t *th = out[i] + iphl;

		assert_int_equal(n[i], h + (i < 3 ? MSS : PAY - 3 * MSS));
		assert_tcp_ok(out[i], n[i], v6);
		assert_int_equal(get32(th + 4), (uint32_t)(0xfffff000u + i * MSS));
		/* CWR on the first only, PSH on the last only, ACK on all. */
		assert_int_equal(th[13], (i == 0 ? 0x80 : 0) | (i == k - 1 ? 0x08 : 0) | 0x10);
		if (!v6)
			assert_int_equal(get16(out[i] + 4), (uint16_t)(0xfffe + i));
		assert_memory_equal(out[i] + h, orig + h + i * MSS, n[i] - h);
		assert_memory_equal(th + 20, orig + iphl + 20, OPT);
	}

	/* GRO: the first (CWR) goes alone; the other three join. */
	for (i = 0; i < k; i++) {
		pk[i].data = out[i];
		pk[i].len = n[i];
	}
	assert_int_equal(offload_gro(pk, k, true, &gv, &hlen), 1);
	assert_int_equal(gv.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(gv.gso_type, 0);
	assert_int_equal(offload_gro(pk + 1, k - 1, true, &gv, &hlen), 3);
	assert_int_equal(hlen, h);
	assert_int_equal(gv.gso_type, v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(gv.gso_size, MSS);
	assert_int_equal(gv.hdr_len, h);
	assert_int_equal(gv.csum_start, iphl);
	assert_int_equal(gv.csum_offset, 16);
	assert_int_equal(gv.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	/* The joined whole: headers for its length, PSH from the last, a partial checksum. */
	{
		uint8_t whole[OFFLOAD_MAX];
		size_t wl = n[1];

		memcpy(whole, out[1], n[1]);
		for (i = 2; i < k; i++) {
			memcpy(whole + wl, out[i] + h, n[i] - h);
			wl += n[i] - h;
		}
		assert_int_equal(wl, len - MSS);
		assert_int_equal(whole[iphl + 13], 0x18);
		if (v6)
			assert_int_equal(get16(whole + 4), wl - 40);
		else
			assert_int_equal(naive_fold(naive_sum(0, whole, 20)), 0xffff);
		/* Finishing the partial checksum as the kernel would gives a valid packet. */
		assert_int_equal(offload_finish_csum(&gv, whole, wl), 0);
		assert_tcp_ok(whole, wl, v6);
		for (at = h; at < wl; at++)
			assert_int_equal(whole[at], orig[h + MSS + (at - h)]);
	}
}

static void test_tso_gro_v4(void **state)
{
	(void)state;
	cut_and_join(false);
}

static void test_tso_gro_v6(void **state)
{
	(void)state;
	cut_and_join(true);
}

static void test_tso_rejects(void **state)
{
	struct virtio_net_hdr vh = tso_hdr(false);
	struct offload_tso t;
	size_t len = make_segment(seg_buf, false, 0x10, PAY);

	(void)state;
	vh.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), -EINVAL);
	vh = tso_hdr(true); /* says IPv6, holds IPv4 */
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), -EINVAL);
	vh = tso_hdr(false);
	vh.gso_size = 0;
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), -EINVAL);
	vh = tso_hdr(false);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, 20 + 20 + OPT), -EINVAL);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, 30), -EINVAL);
	seg_buf[9] = 17;
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), -EINVAL);
	seg_buf[9] = 6;
	seg_buf[20 + 12] = 0x40; /* a TCP header of 16 bytes */
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), -EINVAL);
}

static void test_finish_csum_udp(void **state)
{
	uint8_t p[60] = { 0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2 };
	struct virtio_net_hdr vh = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20, .csum_offset = 6
	};
	uint32_t sum;
	size_t i;

	(void)state;
	put16(p + 20, 1000);
	put16(p + 22, 2000);
	put16(p + 24, 40);
	for (i = 28; i < 60; i++)
		p[i] = (uint8_t)i;
	/* The kernel leaves the pseudo-header's sum, uncomplemented, in the field. */
	put16(p + 26, naive_fold(naive_sum(17 + 40, p + 12, 8)));
	assert_int_equal(offload_finish_csum(&vh, p, sizeof(p)), 0);
	sum = naive_sum(17 + 40, p + 12, 8);
	assert_int_equal(naive_fold(naive_sum(sum, p + 20, 40)), 0xffff);
	vh.csum_offset = 39;
	assert_int_equal(offload_finish_csum(&vh, p, sizeof(p)), -EINVAL);
	vh.csum_start = 60;
	vh.csum_offset = 0;
	assert_int_equal(offload_finish_csum(&vh, p, sizeof(p)), -EINVAL);
}

/* Three MSS packets of one flow, cut from a segment without CWR. */
static void three(struct offload_pkt *pk, size_t *n)
{
	size_t len = make_segment(seg_buf, false, 0x10, 3 * MSS), k = 0;
	struct virtio_net_hdr vh = tso_hdr(false);
	struct offload_tso t;

	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), 0);
	while ((n[k] = offload_tso_next(&t, out[k]))) {
		pk[k].data = out[k];
		pk[k].len = n[k];
		k++;
	}
	assert_int_equal(k, 3);
}

static void test_gro_breaks(void **state)
{
	struct virtio_net_hdr vh;
	struct offload_pkt pk[3];
	size_t n[8], hlen, th = 20;

	(void)state;
	three(pk, n);
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 3);

	three(pk, n);
	out[1][th + 2] ^= 1; /* another destination port */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);

	three(pk, n);
	put32(out[2] + th + 4, get32(out[2] + th + 4) + 1); /* a gap */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 2);

	three(pk, n);
	out[2][th + 27] ^= 0xff; /* another timestamp */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 2);

	three(pk, n);
	out[1][th + 13] |= 0x01; /* FIN goes alone */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);

	three(pk, n);
	out[0][th + 13] |= 0x08; /* PSH ends a run: here at once */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);

	three(pk, n);
	out[1][8] = 63; /* another TTL */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);

	three(pk, n);
	put32(out[1] + th + 8, 78); /* another ACK */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);

	/* A short packet may end a run, not sit inside one. */
	three(pk, n);
	pk[1].len -= 100;
	put16(out[1] + 2, (uint16_t)pk[1].len);
	put32(out[2] + th + 4, get32(out[1] + th + 4) + MSS - 100);
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 2);

	/* A length field that disagrees with what arrived: alone. */
	three(pk, n);
	pk[0].len--;
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);
}

static void test_gro_size_limit(void **state)
{
	static uint8_t many[60][2048];
	struct offload_pkt pk[60];
	struct virtio_net_hdr vh;
	size_t i, hlen, h = 20 + 20 + OPT;

	(void)state;
	make_segment(seg_buf, false, 0x10, 0);
	for (i = 0; i < 60; i++) {
		memcpy(many[i], seg_buf, h);
		put16(many[i] + 2, (uint16_t)(h + MSS));
		put32(many[i] + 20 + 4, (uint32_t)(i * MSS));
		memset(many[i] + h, (int)i, MSS);
		pk[i].data = many[i];
		pk[i].len = h + MSS;
	}
	/* 46 packets of 1400 bytes fit under 65535 with one header; the 47th does not. */
	assert_int_equal(offload_gro(pk, 60, true, &vh, &hlen), (65535 - h) / MSS);
	assert_true(get16(many[0] + 2) <= 65535);
}

/* A train of UDP datagrams as an application sent it with UDP_SEGMENT. */
static size_t make_udp_train(uint8_t *p, bool v6, size_t pay)
{
	size_t iphl = v6 ? 40 : 20, i, len = iphl + 8 + pay;

	memset(p, 0, iphl + 8);
	if (v6) {
		p[0] = 0x60;
		put16(p + 4, (uint16_t)(len - 40));
		p[6] = 17;
		p[7] = 64;
		for (i = 0; i < 32; i++)
			p[8 + i] = (uint8_t)(0x40 + i);
	} else {
		p[0] = 0x45;
		put16(p + 2, (uint16_t)len);
		put16(p + 4, 7);
		p[8] = 64;
		p[9] = 17;
		put32(p + 12, 0xc0000201);
		put32(p + 16, 0xc0000202);
	}
	put16(p + iphl, 5000);
	put16(p + iphl + 2, 6000);
	put16(p + iphl + 4, (uint16_t)(len - iphl));
	for (i = 0; i < pay; i++)
		p[iphl + 8 + i] = (uint8_t)(i * 13 + 1);
	return len;
}

static void assert_udp_ok(const uint8_t *pkt, size_t len, bool v6)
{
	size_t iphl = v6 ? 40 : 20, ul = len - iphl;
	uint32_t sum = v6 ? naive_sum(0, pkt + 8, 32) : naive_sum(0, pkt + 12, 8);

	assert_int_equal(get16(pkt + iphl + 4), ul);
	assert_int_not_equal(get16(pkt + iphl + 6), 0);
	assert_int_equal(naive_fold(naive_sum(sum + 17 + (uint32_t)ul, pkt + iphl, ul)), 0xffff);
	if (!v6)
		assert_int_equal(naive_fold(naive_sum(0, pkt, 20)), 0xffff);
}

/* USO: cut a train into datagrams, check each, join them again. */
static void udp_cut_and_join(bool v6)
{
	enum { SEG = 1000, N = 5, LAST = 333 };
	size_t iphl = v6 ? 40 : 20, h = iphl + 8, n[8], k = 0, i, hlen;
	size_t len = make_udp_train(seg_buf, v6, (N - 1) * SEG + LAST);
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				     .gso_type = VIRTIO_NET_HDR_GSO_UDP_L4,
				     .hdr_len = (uint16_t)h,
				     .gso_size = SEG,
				     .csum_start = (uint16_t)iphl,
				     .csum_offset = 6 },
			       gv;
	struct offload_pkt pk[8];
	struct offload_tso t;
	uint8_t orig[OFFLOAD_MAX];

	memcpy(orig, seg_buf, len);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), 0);
	while ((n[k] = offload_tso_next(&t, out[k]))) {
		pk[k].data = out[k];
		pk[k].len = n[k];
		k++;
	}
	assert_int_equal(k, N);
	for (i = 0; i < k; i++) {
		assert_int_equal(n[i], h + (i < N - 1 ? SEG : LAST));
		assert_udp_ok(out[i], n[i], v6);
		assert_memory_equal(out[i] + h, orig + h + i * SEG, n[i] - h);
		if (!v6)
			assert_int_equal(get16(out[i] + 4), 7 + i);
	}
	/* Without USO toward the kernel, datagrams go one by one. */
	assert_int_equal(offload_gro(pk, k, false, &gv, &hlen), 1);
	/* With it: one write, cut again at SEG. */
	assert_int_equal(offload_gro(pk, k, true, &gv, &hlen), N);
	assert_int_equal(gv.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
	assert_int_equal(gv.gso_size, SEG);
	assert_int_equal(gv.csum_offset, 6);
	assert_int_equal(hlen, h);
	{
		uint8_t whole[OFFLOAD_MAX];
		size_t wl = n[0];

		memcpy(whole, out[0], n[0]);
		for (i = 1; i < k; i++) {
			memcpy(whole + wl, out[i] + h, n[i] - h);
			wl += n[i] - h;
		}
		assert_int_equal(wl, len);
		assert_int_equal(offload_finish_csum(&gv, whole, wl), 0);
		assert_udp_ok(whole, wl, v6);
		assert_memory_equal(whole + h, orig + h, len - h);
	}
}

static void test_uso_v4(void **state)
{
	(void)state;
	udp_cut_and_join(false);
}

static void test_uso_v6(void **state)
{
	(void)state;
	udp_cut_and_join(true);
}

/*
 * A train shorter than an IPv6 header: four 1-byte datagrams over IPv4 (32
 * bytes), as GRO joins them and as the kernel may hand them over. The
 * cutter once refused anything under 40 bytes (found by fuzz_offload).
 */
static void test_uso_tiny_v4(void **state)
{
	struct virtio_net_hdr vh = { .gso_type = VIRTIO_NET_HDR_GSO_UDP_L4, .gso_size = 1 };
	struct offload_tso t;
	uint8_t dg[4][29];
	size_t len = make_udp_train(seg_buf, false, 4), i;

	(void)state;
	assert_int_equal(len, 32);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, len), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(offload_tso_next(&t, dg[i]), 29);
		assert_udp_ok(dg[i], 29, false);
		assert_int_equal(dg[i][28], seg_buf[28 + i]);
	}
	assert_int_equal(offload_tso_next(&t, dg[0]), 0);
	/* Shorter than an IPv4 header, or than its own: refused. */
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, 19), -EINVAL);
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, 28), -EINVAL);
	seg_buf[0] = 0x60;
	assert_int_equal(offload_tso_start(&t, &vh, seg_buf, 32), -EINVAL);
}

static void test_udp_gro_breaks(void **state)
{
	struct virtio_net_hdr vh;
	struct offload_pkt pk[3];
	size_t i, hlen, len = make_udp_train(seg_buf, false, 500);

	(void)state;
	for (i = 0; i < 3; i++) {
		memcpy(out[i], seg_buf, len);
		pk[i].data = out[i];
		pk[i].len = len;
	}
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 3);
	for (i = 0; i < 3; i++)
		memcpy(out[i], seg_buf, len);
	out[1][20 + 1] ^= 1; /* another source port */
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);
	/* A longer datagram after the first cannot join; a shorter one ends the run. */
	for (i = 0; i < 3; i++)
		memcpy(out[i], seg_buf, len);
	len = make_udp_train(out[1], false, 400);
	pk[1].len = len;
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 2);
	len = make_udp_train(out[0], false, 400);
	pk[0].len = len;
	pk[1].len = make_udp_train(out[1], false, 500);
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);
	/* A UDP length that disagrees with the IP length: alone. */
	pk[0].len = make_udp_train(out[0], false, 500);
	put16(out[0] + 24, 100);
	assert_int_equal(offload_gro(pk, 3, true, &vh, &hlen), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_matches_naive), cmocka_unit_test(test_tso_gro_v4),
		cmocka_unit_test(test_tso_gro_v6),	   cmocka_unit_test(test_tso_rejects),
		cmocka_unit_test(test_finish_csum_udp),   cmocka_unit_test(test_gro_breaks),
		cmocka_unit_test(test_gro_size_limit),	   cmocka_unit_test(test_uso_v4),
		cmocka_unit_test(test_uso_tiny_v4),
		cmocka_unit_test(test_uso_v6),		   cmocka_unit_test(test_udp_gro_breaks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
