/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the unit tests: hex decoding and a seeded RNG. */
#ifndef VEIL_TEST_UTIL_H
#define VEIL_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"

static inline int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex into out and returns the byte count; fails the test on bad input. */
static inline size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = strlen(hex) / 2, i;

	assert_true(strlen(hex) % 2 == 0);
	assert_true(n <= cap);
	for (i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		assert_true(hi >= 0 && lo >= 0);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n;
}

/* xorshift64*: a repeatable generator for tests; never for keys in production. */
struct test_rng_state {
	uint64_t s;
};

static inline uint64_t test_rng_next(struct test_rng_state *st)
{
	st->s ^= st->s >> 12;
	st->s ^= st->s << 25;
	st->s ^= st->s >> 27;
	return st->s * 0x2545F4914F6CDD1DULL;
}

static inline void test_rng_fill(void *ctx, void *buf, size_t len)
{
	struct test_rng_state *st = ctx;
	uint8_t *p = buf;

	while (len) {
		uint64_t v = test_rng_next(st);
		size_t n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

#endif
