/* SPDX-License-Identifier: MIT */
/*
 * TUN offloads, as a virtio-net device does them: the kernel hands veild
 * TCP segments of up to 64 KB (TSO) with a virtio_net_hdr in front, which
 * veild cuts into packets that fit the tunnel, checksums and all; and
 * decrypted TCP packets of one flow that arrive in one batch go back to the
 * kernel as one large segment (GRO), so its TCP stack sees one packet where
 * there were dozens. Pure functions on byte arrays, tested in
 * tests/unit/test_offload.c.
 */
#ifndef VEIL_OFFLOAD_H
#define VEIL_OFFLOAD_H

#include <linux/virtio_net.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Newer than Debian 12's headers (Linux 6.2): UDP segmentation offload. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

enum {
	VNET_HDR_LEN = sizeof(struct virtio_net_hdr),
	OFFLOAD_MAX = 65535, /* an IP packet's length field, and the most one TUN read brings */
	GRO_SEGMENTS_MAX = 64,
};

/* Internet checksum: add len bytes to a running sum; fold and complement it. */
uint32_t offload_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t offload_csum_fold(uint32_t sum);

/*
 * A packet the kernel left unchecksummed (VIRTIO_NET_HDR_F_NEEDS_CSUM, no
 * GSO): complete it in place. Returns 0 or -EINVAL for offsets outside it.
 */
int offload_finish_csum(const struct virtio_net_hdr *vh, uint8_t *pkt, size_t len);

/* Cutting one TSO segment into packets; see offload_tso_start. */
struct offload_tso {
	const uint8_t *pkt;
	size_t len, iphl, hlen, mss, off;
	uint32_t seq;
	uint16_t id;
	uint8_t proto;
	bool v6, udp;
};

/*
 * Check a segment the kernel handed over with gso_type TCPV4, TCPV6 or
 * UDP_L4 (a train of datagrams an application sent with UDP_SEGMENT) and
 * get ready to cut it: -EINVAL when its headers do not match the virtio
 * header (veild then drops it).
 */
int offload_tso_start(struct offload_tso *t, const struct virtio_net_hdr *vh, const uint8_t *pkt,
		      size_t len);
/*
 * Write the next packet, headers fixed (lengths, IPv4 ID and checksum, TCP
 * sequence and flags, the TCP or UDP checksum), to out, which holds at
 * least t->hlen + t->mss bytes. Returns its length, or 0 when the segment
 * is used up.
 */
size_t offload_tso_next(struct offload_tso *t, uint8_t *out);

struct offload_pkt {
	uint8_t *data;
	size_t len;
};

/*
 * How many packets from pkts[0] on go to the kernel as one write. For more
 * than one (consecutive segments of one TCP flow, or with udp, datagrams of
 * one UDP flow of one size but a shorter last), pkts[0]'s headers are
 * rewritten for the whole and *hlen is where each later packet's payload
 * starts; vh says how to cut it up again. A single packet goes as it is,
 * marked as checked: it passed the AEAD, as the kernel module reasons.
 */
size_t offload_gro(struct offload_pkt *pkts, size_t n, bool udp, struct virtio_net_hdr *vh,
		   size_t *hlen);

#endif
