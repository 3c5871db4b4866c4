// SPDX-License-Identifier: MIT
#include "rng.h"

#include <string.h>

#include <sodium.h>

enum {
	POOL_BYTES = 256,
	SMALL_MAX = 8, /* jitter and index numbers; keys (32 bytes) always come fresh */
};

/*
 * Every data packet sent after one received arms a timer with jitter, so a
 * ping-pong of packets draws a few random bytes per packet; libsodium makes
 * one getrandom call per draw. Small draws come from a pool refilled 256
 * bytes at a time instead (what is handed out is wiped from it); anything
 * larger, key material above all, still comes straight from libsodium.
 * One pool per process, which runs one event loop.
 */
static void system_fill(void *ctx, void *buf, size_t len)
{
	static uint8_t pool[POOL_BYTES];
	static size_t left;
	uint8_t *p;

	(void)ctx;
	if (len > SMALL_MAX) {
		randombytes_buf(buf, len);
		return;
	}
	if (left < len) {
		randombytes_buf(pool, sizeof(pool));
		left = sizeof(pool);
	}
	p = pool + sizeof(pool) - left;
	memcpy(buf, p, len);
	sodium_memzero(p, len);
	left -= len;
}

const struct wg_rng wg_rng_system = { .fill = system_fill, .ctx = NULL };
