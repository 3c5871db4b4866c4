/* SPDX-License-Identifier: MIT */
/*
 * The ICMP answer to a packet from the TUN device that no peer takes:
 * host unreachable (IPv4) or address unreachable (IPv6), from the
 * unreachable destination itself, as the kernel module answers. A pure
 * function on byte arrays, tested in tests/unit/test_icmp.c; the daemon
 * rate-limits and writes what it builds.
 */
#ifndef VEIL_ICMP_H
#define VEIL_ICMP_H

#include <stddef.h>
#include <stdint.h>

enum {
	ICMP_REPLY_MAX = 1280, /* IPv6's minimum MTU; IPv4 replies stay within 576 */
};

/* The reply to pkt (len bytes) in out, and its length; 0 when none is due. */
size_t icmp_unreachable_build(const uint8_t *pkt, size_t len, uint8_t out[static ICMP_REPLY_MAX]);

#endif
