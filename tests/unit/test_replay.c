// SPDX-License-Identifier: MIT
/*
 * Replay window: the kernel self-test's sequence, ring-word wrap, huge jumps,
 * the rejection limit, random permutations, and a naive model.
 */
#include "core/replay.c"

#include "test_util.h"

#define T ((uint64_t)COUNTER_WINDOW_SIZE + 1)
#define W ((uint64_t)COUNTER_WINDOW_SIZE)
#define RING ((uint64_t)COUNTER_BITS_TOTAL)

struct row {
	uint64_t counter;
	bool ok;
};

/* Feeds rows to a fresh window in order; a failure names the row number. */
static void run_rows(const struct row *rows, size_t n)
{
	struct replay_counter r;
	size_t i;

	replay_init(&r);
	for (i = 0; i < n; i++) {
		bool got = replay_check_and_set(&r, rows[i].counter);

		if (got != rows[i].ok)
			fail_msg("row %zu: counter %llu: got %d, want %d", i + 1,
				 (unsigned long long)rows[i].counter, got, rows[i].ok);
	}
}

/* The kernel's selftest/counter.c rows, by way of wireguard-go, T = 8129. */
static const struct row reference_rows[] = {
	/*  1 */ { 0, true },
	/*  2 */ { 1, true },
	/*  3 */ { 1, false },
	/*  4 */ { 9, true },
	/*  5 */ { 8, true },
	/*  6 */ { 7, true },
	/*  7 */ { 7, false },
	/*  8 */ { T, true },
	/*  9 */ { T - 1, true },
	/* 10 */ { T - 1, false },
	/* 11 */ { T - 2, true },
	/* 12 */ { 2, true },
	/* 13 */ { 2, false },
	/* 14 */ { T + 16, true },
	/* 15 */ { 3, false },
	/* 16 */ { T + 16, false },
	/* 17 */ { 4 * T, true },
	/* 18 */ { 4 * T - (T - 1), true },
	/* 19 */ { 10, false },
	/* 20 */ { 4 * T - T, false },
	/* 21 */ { 4 * T - (T + 1), false },
	/* 22 */ { 4 * T - (T - 2), true },
	/* 23 */ { 4 * T + 1 - T, false },
	/* 24 */ { 0, false },
	/* 25 */ { REJECT_AFTER_MESSAGES, false },
	/* 26 */ { REJECT_AFTER_MESSAGES - 1, true },
	/* 27 */ { REJECT_AFTER_MESSAGES, false },
};

/*
 * Around multiples of 64 * 128 the ring index wraps to word 0. Stale bits
 * left in a reused word must be cleared, and counters exactly 8128 below
 * greatest must still be judged from their own (old) word.
 */
static const struct row wrap_rows[] = {
	/*  1 */ { RING - 1, true },		/* word 127 */
	/*  2 */ { RING, true },		/* word 0 again */
	/*  3 */ { RING - 1, false },
	/*  4 */ { RING - W, true },		/* exactly the window below */
	/*  5 */ { RING - W - 1, false },	/* one past it */
	/*  6 */ { RING - W, false },
	/*  7 */ { 2 * RING - 1, true },	/* slide 127 words */
	/*  8 */ { 2 * RING - 1 - W, true },	/* word 0, which still holds RING */
	/*  9 */ { 2 * RING - 2 - W, false },
	/* 10 */ { RING, false },		/* its bit is stale but out of window */
	/* 11 */ { 2 * RING, true },		/* word 0 reused: cleared */
	/* 12 */ { 2 * RING - W, true },	/* word 1, cleared by row 7 */
	/* 13 */ { 2 * RING - W - 1, false },
	/* 14 */ { 2 * RING, false },
	/* 15 */ { 2 * RING - 64, true },	/* word 127 */
	/* 16 */ { 2 * RING - 64, false },
	/* 17 */ { 3 * RING + 63, true },	/* word 0, bit 63 */
	/* 18 */ { 3 * RING, true },		/* bit 0 of word 0 was RING's: cleared */
	/* 19 */ { 3 * RING - 1, true },
	/* 20 */ { 3 * RING - 1, false },
};

/* Jumps of a whole ring or more must clear everything and nothing more. */
static const struct row jump_rows[] = {
	/*  1 */ { 5, true },
	/*  2 */ { 5 + 100000, true },
	/*  3 */ { 5 + 100000 - W, true },
	/*  4 */ { 5, false },
	/*  5 */ { 1ULL << 40, true },
	/*  6 */ { (1ULL << 40) - 1, true },
	/*  7 */ { (1ULL << 40) - W, true },
	/*  8 */ { (1ULL << 40) - W - 1, false },
	/*  9 */ { (1ULL << 40) + RING + 63, true },	/* same ring word as row 5 */
	/* 10 */ { (1ULL << 40) + RING, true },	/* row 5's bit must be gone */
	/* 11 */ { (1ULL << 40) + RING, false },
	/* 12 */ { 1ULL << 40, false },
	/* 13 */ { (1ULL << 40) + 5 * RING + 1, true },	/* several rings ahead */
	/* 14 */ { (1ULL << 40) + 5 * RING + 1 - W, true },
	/* 15 */ { (1ULL << 40) + 4 * RING + 1, false },
	/* 16 */ { (1ULL << 62) + 3, true },
	/* 17 */ { (1ULL << 62) + 3, false },
	/* 18 */ { (1ULL << 62) + 2, true },
};

/* The top of the counter space: the limit itself and above never pass. */
static const struct row limit_rows[] = {
	/*  1 */ { REJECT_AFTER_MESSAGES - 2 * T, true },
	/*  2 */ { REJECT_AFTER_MESSAGES + 1, false },
	/*  3 */ { UINT64_MAX, false },
	/*  4 */ { REJECT_AFTER_MESSAGES, false },
	/*  5 */ { REJECT_AFTER_MESSAGES - 2, true },
	/*  6 */ { REJECT_AFTER_MESSAGES - 1, true },
	/*  7 */ { REJECT_AFTER_MESSAGES - 1, false },
	/*  8 */ { REJECT_AFTER_MESSAGES, false },
	/*  9 */ { REJECT_AFTER_MESSAGES - 1 - W, true },
	/* 10 */ { REJECT_AFTER_MESSAGES - 2 - W, false },
	/* 11 */ { REJECT_AFTER_MESSAGES - 2 * T, false },
	/* 12 */ { UINT64_MAX, false },
	/* 13 */ { REJECT_AFTER_MESSAGES - 3, true },
};

static void test_reference_sequence(void **state)
{
	(void)state;
	run_rows(reference_rows, ARRAY_SIZE(reference_rows));
}

static void test_ring_wrap(void **state)
{
	(void)state;
	run_rows(wrap_rows, ARRAY_SIZE(wrap_rows));
}

static void test_huge_jumps(void **state)
{
	(void)state;
	run_rows(jump_rows, ARRAY_SIZE(jump_rows));
}

static void test_reject_limit(void **state)
{
	(void)state;
	run_rows(limit_rows, ARRAY_SIZE(limit_rows));
}

/* Every counter once in order passes; afterwards none passes again. */
static void test_in_order(void **state)
{
	struct replay_counter r;
	uint64_t c;

	(void)state;
	replay_init(&r);
	for (c = 0; c <= 20000; c++)
		if (!replay_check_and_set(&r, c))
			fail_msg("counter %llu refused", (unsigned long long)c);
	for (c = 0; c <= 20000; c++)
		if (replay_check_and_set(&r, c))
			fail_msg("counter %llu accepted twice", (unsigned long long)c);
	assert_true(replay_check_and_set(&r, 20001));
}

static void shuffle(uint64_t *v, size_t n, struct test_rng_state *st)
{
	size_t i;

	for (i = n - 1; i > 0; i--) {
		size_t j = (size_t)(test_rng_next(st) % (i + 1));
		uint64_t tmp = v[i];

		v[i] = v[j];
		v[j] = tmp;
	}
}

/*
 * W + 1 consecutive counters (the window plus greatest) in random order, each
 * offered twice: the first offer passes and the second does not. Bases sit
 * on and around ring-word and whole-ring boundaries.
 */
static void test_permutations(void **state)
{
	static const uint64_t bases[] = {
		0, 1, 63, 64, RING - 100, 3 * RING, 7 * RING - 1,
		(1ULL << 33) + 5, REJECT_AFTER_MESSAGES - W - 1,
	};
	static uint64_t offers[2 * (COUNTER_WINDOW_SIZE + 1)];
	static bool seen[COUNTER_WINDOW_SIZE + 1];
	struct test_rng_state st = { 0x9e3779b97f4a7c15ULL };
	struct replay_counter r;
	size_t b, i, n = 2 * (size_t)T;

	(void)state;
	for (b = 0; b < ARRAY_SIZE(bases); b++) {
		replay_init(&r);
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < n; i++)
			offers[i] = bases[b] + i / 2;
		shuffle(offers, n, &st);
		for (i = 0; i < n; i++) {
			uint64_t off = offers[i] - bases[b];
			bool got = replay_check_and_set(&r, offers[i]);

			if (got == seen[off])
				fail_msg("base %zu offer %zu: counter %llu got %d", b, i,
					 (unsigned long long)offers[i], got);
			seen[off] = true;
		}
		for (i = 0; i < T; i++)
			assert_false(replay_check_and_set(&r, bases[b] + i));
	}
}

/*
 * Random walks against the obvious model: a counter passes if it is below
 * the limit, never seen, and either new or within W of the greatest seen.
 */
enum { MODEL_SPAN = 1 << 22 };

static uint64_t next_counter(struct test_rng_state *st, uint64_t g)
{
	uint64_t r = test_rng_next(st), pick = r % 32, x = r >> 8;

	if (pick == 0)
		return g + x % (3 * RING);		/* past the whole ring */
	if (pick == 1)
		return g + RING * (1 + x % 2) + x % 3;	/* onto the same ring word */
	if (pick < 10)
		return g + x % 64;
	if (pick == 10)
		return g > W ? g - W : 0;		/* the window's last counter */
	if (pick == 11)
		return g > W ? g - W - 1 : 0;		/* just outside it */
	return g - (g < W + 200 ? x % (g + 1) : x % (W + 200));
}

static void test_model(void **state)
{
	static bool seen[MODEL_SPAN];
	struct replay_counter r;
	unsigned int seed, ops, accepted = 0;

	(void)state;
	for (seed = 1; seed <= 20; seed++) {
		struct test_rng_state st = { seed * 0x2545F4914F6CDD1DULL };
		uint64_t g = 0, c;

		replay_init(&r);
		memset(seen, 0, sizeof(seen));
		for (ops = 0; ops < 100000; ops++) {
			bool want, got;

			c = next_counter(&st, g);
			if (c >= MODEL_SPAN)
				break;
			want = !seen[c] && (c > g || g - c <= W);
			got = replay_check_and_set(&r, c);
			if (got != want)
				fail_msg("seed %u op %u: counter %llu greatest %llu: got %d", seed,
					 ops, (unsigned long long)c, (unsigned long long)g, got);
			if (got) {
				seen[c] = true;
				accepted++;
				if (c > g)
					g = c;
			}
		}
	}
	/* Guard against a walk that never exercised the accepting side. */
	assert_true(accepted > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_sequence),
		cmocka_unit_test(test_ring_wrap),
		cmocka_unit_test(test_huge_jumps),
		cmocka_unit_test(test_reject_limit),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_permutations),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
