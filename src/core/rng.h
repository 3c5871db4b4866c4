/* SPDX-License-Identifier: MIT */
/*
 * The core's one source of randomness. The daemon fills it from libsodium's
 * randombytes_buf; tests inject a seeded, repeatable generator.
 */
#ifndef VEIL_RNG_H
#define VEIL_RNG_H

#include <stddef.h>
#include <stdint.h>

struct wg_rng {
	void (*fill)(void *ctx, void *buf, size_t len);
	void *ctx;
};

static inline void wg_rng_fill(const struct wg_rng *rng, void *buf, size_t len)
{
	rng->fill(rng->ctx, buf, len);
}

static inline uint32_t wg_rng_u32(const struct wg_rng *rng)
{
	uint32_t v;

	rng->fill(rng->ctx, &v, sizeof(v));
	return v;
}

/* A value uniform in [0, bound); bound must be non-zero. */
static inline uint32_t wg_rng_uniform(const struct wg_rng *rng, uint32_t bound)
{
	uint32_t limit = (uint32_t)(-bound) % bound, v;

	do
		v = wg_rng_u32(rng);
	while (v < limit);
	return v % bound;
}

/* libsodium's system generator; defined in src/core/rng.c. */
extern const struct wg_rng wg_rng_system;

#endif
