// SPDX-License-Identifier: MIT
/*
 * Tokens are kept in nanoseconds: each packet costs 1/20 s, a bucket holds
 * at most 5 packets' worth. Entries idle for more than a second are full
 * again and carry no information, so they are dropped whenever the table
 * is swept (at most once a second); a full table refuses new sources rather
 * than growing without bound.
 */
#include "ratelimiter.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "messages.h"

#define PACKET_COST (NSEC_PER_SEC / RATELIMITER_PACKETS_PER_SECOND)
#define TOKEN_MAX (PACKET_COST * RATELIMITER_BURST)
#define BUCKETS 1024

struct entry {
	struct entry *next;
	uint64_t last, tokens;
	uint8_t key[9]; /* family tag, then 4 or 8 address bytes */
};

struct ratelimiter {
	struct entry *bucket[BUCKETS];
	uint8_t hash_key[16];
	size_t count;
	uint64_t last_sweep;
};

struct ratelimiter *ratelimiter_new(const uint8_t hash_key[16])
{
	struct ratelimiter *rl = calloc(1, sizeof(*rl));

	if (rl)
		memcpy(rl->hash_key, hash_key, 16);
	return rl;
}

void ratelimiter_free(struct ratelimiter *rl)
{
	struct entry *e, *n;
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < BUCKETS; i++)
		for (e = rl->bucket[i]; e; e = n) {
			n = e->next;
			free(e);
		}
	free(rl);
}

size_t ratelimiter_count(const struct ratelimiter *rl)
{
	return rl->count;
}

static void sweep(struct ratelimiter *rl, uint64_t now)
{
	struct entry **pp, *e;
	size_t i;

	for (i = 0; i < BUCKETS; i++) {
		for (pp = &rl->bucket[i]; (e = *pp);) {
			if (now - e->last > NSEC_PER_SEC) {
				*pp = e->next;
				free(e);
				rl->count--;
			} else {
				pp = &e->next;
			}
		}
	}
	rl->last_sweep = now;
}

bool ratelimiter_allow(struct ratelimiter *rl, int family, const uint8_t *addr, uint64_t now)
{
	uint8_t key[9] = { 0 }, h[8];
	struct entry *e;
	size_t b;

	key[0] = family == AF_INET6 ? 6 : 4;
	memcpy(key + 1, addr, family == AF_INET6 ? 8 : 4);
	crypto_shorthash(h, key, sizeof(key), rl->hash_key);
	b = ((size_t)h[0] | (size_t)h[1] << 8) % BUCKETS;

	if (now - rl->last_sweep > NSEC_PER_SEC)
		sweep(rl, now);
	for (e = rl->bucket[b]; e; e = e->next) {
		if (memcmp(e->key, key, sizeof(key)) != 0)
			continue;
		e->tokens += now - e->last;
		if (e->tokens > TOKEN_MAX)
			e->tokens = TOKEN_MAX;
		e->last = now;
		if (e->tokens < PACKET_COST)
			return false;
		e->tokens -= PACKET_COST;
		return true;
	}
	if (rl->count >= RATELIMITER_MAX_ENTRIES)
		return false;
	e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	memcpy(e->key, key, sizeof(key));
	e->last = now;
	e->tokens = TOKEN_MAX - PACKET_COST;
	e->next = rl->bucket[b];
	rl->bucket[b] = e;
	rl->count++;
	return true;
}
