// SPDX-License-Identifier: MIT
/*
 * The slab cache: zeroed objects, no overlap, slabs unmapped once empty, and
 * a freed object wiped at once (it held keys), not only when it is handed out
 * again.
 */
#include "core/slab.c"

#include <stdlib.h>

#include "test_util.h"

enum { N = 1000, SIZE = 4072 };

static void test_alloc_free_all(void **state)
{
	static uint8_t *objs[N];
	struct slab_cache c;
	size_t i, j;

	(void)state;
	slab_cache_init(&c, SIZE);
	assert_true(c.per_slab >= 15);
	for (i = 0; i < N; i++) {
		objs[i] = slab_alloc(&c);
		assert_non_null(objs[i]);
		assert_int_equal((uintptr_t)objs[i] % 64, 0);
		for (j = 0; j < SIZE; j++)
			assert_int_equal(objs[i][j], 0);
		memset(objs[i], (int)(i & 0xff) | 1, SIZE);
	}
	assert_int_equal(c.objects, N);
	assert_int_equal(c.slabs, (N + c.per_slab - 1) / c.per_slab);
	/* No two objects overlap: each still holds its own pattern. */
	for (i = 0; i < N; i++)
		for (j = 0; j < SIZE; j += 512)
			assert_int_equal(objs[i][j], (uint8_t)((i & 0xff) | 1));
	/* Free in a scrambled order; every slab goes away at the end. */
	for (i = 0; i < N; i++)
		slab_free(&c, objs[(i * 7919) % N]);
	assert_int_equal(c.objects, 0);
	assert_int_equal(c.slabs, 0);
	assert_null(c.partial);
}

static void test_reuse_and_random(void **state)
{
	static uint8_t *objs[N];
	struct test_rng_state st = { 5 };
	struct slab_cache c;
	size_t i, live = 0, round;

	(void)state;
	slab_cache_init(&c, 100);
	memset(objs, 0, sizeof(objs));
	for (round = 0; round < 50000; round++) {
		i = (size_t)(test_rng_next(&st) % N);
		if (objs[i]) {
			/* It still holds what we wrote: nobody else got it. */
			assert_int_equal(objs[i][0], (uint8_t)i);
			slab_free(&c, objs[i]);
			objs[i] = NULL;
			live--;
		} else {
			objs[i] = slab_alloc(&c);
			assert_non_null(objs[i]);
			assert_int_equal(objs[i][99], 0);
			objs[i][0] = (uint8_t)i;
			live++;
		}
		assert_int_equal(c.objects, live);
		assert_true(c.slabs * c.per_slab >= live);
	}
	for (i = 0; i < N; i++)
		slab_free(&c, objs[i]);
	assert_int_equal(c.slabs, 0);
}

/*
 * slab_free wipes: a freed object in a slab that stays mapped (a neighbour
 * still lives) holds nothing of what it held, beyond the free-list link at
 * its start. slab_alloc zeroes too, so no test through allocations alone
 * could tell a missing wipe.
 */
static void test_free_wipes(void **state)
{
	struct slab_cache c;
	uint8_t *keep, *obj;
	size_t j;

	(void)state;
	slab_cache_init(&c, 256);
	keep = slab_alloc(&c);
	obj = slab_alloc(&c);
	assert_non_null(keep);
	assert_non_null(obj);
	memset(obj, 0xa5, 256);
	slab_free(&c, obj);
	assert_int_equal(c.slabs, 1);
	/* Freed objects are poisoned under ASan: this read is the test's, on purpose. */
	unpoison(obj, c.obj_size - sizeof(struct obj_head));
	for (j = sizeof(void *); j < c.obj_size - sizeof(struct obj_head); j++)
		if (obj[j] != 0)
			fail_msg("byte %zu of a freed object still holds %#x", j, obj[j]);
	poison(obj + sizeof(void *), c.obj_size - sizeof(struct obj_head) - sizeof(void *));
	slab_free(&c, keep);
	assert_int_equal(c.slabs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_free_all),
		cmocka_unit_test(test_reuse_and_random),
		cmocka_unit_test(test_free_wipes),
	};

	return cmocka_run_group_tests_name("slab", tests, NULL, NULL);
}
