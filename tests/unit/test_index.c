// SPDX-License-Identifier: MIT
/* The index table against a naive array, through growth and backward-shift deletes. */
#include "core/index.c"

#include <stdlib.h>

#include "test_util.h"

enum { N = 5000 };

static void test_random_against_naive(void **state)
{
	struct test_rng_state st = { 42 };
	const struct wg_rng rng = { test_rng_fill, &st };
	struct index_entry *e = calloc(N, sizeof(*e));
	struct index_table *t = index_table_new();
	size_t i, live = 0, round;

	(void)state;
	assert_non_null(e);
	assert_non_null(t);
	for (round = 0; round < 20 * N; round++) {
		i = (size_t)(test_rng_next(&st) % N);
		if (e[i].hashed) {
			index_table_remove(t, &e[i]);
			live--;
		} else {
			assert_int_equal(index_table_insert(t, &e[i], &rng), 0);
			live++;
		}
		if (round % 97 == 0) {
			size_t j;

			for (j = 0; j < N; j++) {
				struct index_entry *got = index_table_lookup(t, e[j].index);

				if (e[j].hashed)
					assert_ptr_equal(got, &e[j]);
				else
					assert_true(got == NULL || got != &e[j]);
			}
		}
		assert_int_equal(index_table_count(t), live);
	}
	for (i = 0; i < N; i++)
		index_table_remove(t, &e[i]);
	assert_int_equal(index_table_count(t), 0);
	index_table_free(t);
	free(e);
}

static void test_replace_keeps_number(void **state)
{
	struct test_rng_state st = { 7 };
	const struct wg_rng rng = { test_rng_fill, &st };
	struct index_entry a = { 0 }, b = { 0 };
	struct index_table *t = index_table_new();
	uint32_t n;

	(void)state;
	assert_int_equal(index_table_insert(t, &a, &rng), 0);
	n = a.index;
	index_table_replace(t, &a, &b);
	assert_false(a.hashed);
	assert_true(b.hashed);
	assert_int_equal(b.index, n);
	assert_ptr_equal(index_table_lookup(t, n), &b);
	/* Removing the stale entry is a no-op. */
	index_table_remove(t, &a);
	assert_ptr_equal(index_table_lookup(t, n), &b);
	index_table_remove(t, &b);
	assert_null(index_table_lookup(t, n));
	index_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_naive),
		cmocka_unit_test(test_replace_keeps_number),
	};

	return cmocka_run_group_tests_name("index", tests, NULL, NULL);
}
