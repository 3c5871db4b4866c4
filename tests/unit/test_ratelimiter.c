// SPDX-License-Identifier: MIT
/* The handshake rate limiter at exact token boundaries, with a fake clock. */
#include "core/ratelimiter.c"

#include "test_util.h"

static const uint8_t hkey[16] = { 1, 2, 3 };

static void test_burst_then_rate(void **state)
{
	struct ratelimiter *rl = ratelimiter_new(hkey);
	const uint8_t a[4] = { 192, 0, 2, 1 }, b[4] = { 192, 0, 2, 2 };
	uint64_t now = 1000 * NSEC_PER_SEC;
	int i;

	(void)state;
	/* A burst of five passes, the sixth is refused. */
	for (i = 0; i < RATELIMITER_BURST; i++)
		assert_true(ratelimiter_allow(rl, AF_INET, a, now));
	assert_false(ratelimiter_allow(rl, AF_INET, a, now));
	/* Another source has its own bucket. */
	assert_true(ratelimiter_allow(rl, AF_INET, b, now));
	/* One packet's worth of time (50 ms) later exactly one more passes. */
	assert_false(ratelimiter_allow(rl, AF_INET, a, now + PACKET_COST - 1));
	assert_true(ratelimiter_allow(rl, AF_INET, a, now + PACKET_COST));
	assert_false(ratelimiter_allow(rl, AF_INET, a, now + PACKET_COST));
	/* Over ten seconds at 100/s offered, about 20/s get through. */
	{
		int passed = 0;
		uint64_t t;

		for (t = 0; t < 10 * NSEC_PER_SEC; t += 10 * NSEC_PER_MSEC)
			passed += ratelimiter_allow(rl, AF_INET, a, now + NSEC_PER_SEC + t);
		assert_in_range(passed, 200, 206);
	}
	ratelimiter_free(rl);
}

static void test_ipv6_by_prefix_and_sweep(void **state)
{
	struct ratelimiter *rl = ratelimiter_new(hkey);
	uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8 }, c[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1 };
	uint64_t now = 5 * NSEC_PER_SEC;
	int i;

	(void)state;
	for (i = 0; i < RATELIMITER_BURST; i++) {
		a[15] = (uint8_t)i; /* different hosts of one /64 share a bucket */
		assert_true(ratelimiter_allow(rl, AF_INET6, a, now));
	}
	a[15] = 99;
	assert_false(ratelimiter_allow(rl, AF_INET6, a, now));
	assert_true(ratelimiter_allow(rl, AF_INET6, c, now));
	assert_int_equal(ratelimiter_count(rl), 2);
	/* Idle entries are swept after a second. */
	assert_true(ratelimiter_allow(rl, AF_INET, (const uint8_t *)"\xc0\x00\x02\x09", now + 3 * NSEC_PER_SEC));
	assert_int_equal(ratelimiter_count(rl), 1);
	ratelimiter_free(rl);
}

static void test_table_is_bounded(void **state)
{
	struct ratelimiter *rl = ratelimiter_new(hkey);
	uint8_t a[4] = { 198, 18, 0, 0 };
	uint32_t i;
	int refused = 0;

	(void)state;
	for (i = 0; i < RATELIMITER_MAX_ENTRIES + 100; i++) {
		a[2] = (uint8_t)(i >> 8);
		a[3] = (uint8_t)i;
		a[1] = (uint8_t)(18 + (i >> 16));
		refused += !ratelimiter_allow(rl, AF_INET, a, NSEC_PER_SEC);
	}
	assert_int_equal(ratelimiter_count(rl), RATELIMITER_MAX_ENTRIES);
	assert_int_equal(refused, 100);
	ratelimiter_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_ipv6_by_prefix_and_sweep),
		cmocka_unit_test(test_table_is_bounded),
	};

	return cmocka_run_group_tests_name("ratelimiter", tests, NULL, NULL);
}
