/* SPDX-License-Identifier: MIT */
/*
 * Per-source token bucket for handshake messages under load (the kernel's ratelimiter.c):
 * 20 a second with a burst of 5, IPv4 sources by address, IPv6 by /64, as
 * the kernel keys them. Only consulted after a valid mac2, so the source is
 * known to receive at its address.
 */
#ifndef VEIL_RATELIMITER_H
#define VEIL_RATELIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	RATELIMITER_PACKETS_PER_SECOND = 20,
	RATELIMITER_BURST = 5,
	RATELIMITER_MAX_ENTRIES = 8192,
};

struct ratelimiter;

struct ratelimiter *ratelimiter_new(const uint8_t hash_key[16]);
void ratelimiter_free(struct ratelimiter *rl);
/* family AF_INET (4 bytes) or AF_INET6 (16 bytes, only the /64 counts). */
bool ratelimiter_allow(struct ratelimiter *rl, int family, const uint8_t *addr, uint64_t now);
size_t ratelimiter_count(const struct ratelimiter *rl);

#endif
