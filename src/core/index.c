// SPDX-License-Identifier: MIT
/*
 * Open addressing with linear probing. Indices are uniformly random, so the
 * index itself is the hash. Deletion shifts later members of the probe run
 * back, so there are no tombstones and lookups stay short.
 */
#include "index.h"

#include <errno.h>
#include <stdlib.h>

struct index_table {
	struct index_entry **slots;
	size_t mask;
	size_t count;
};

enum { INITIAL_SLOTS = 64 };

struct index_table *index_table_new(void)
{
	struct index_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant. */
	t->slots = calloc(INITIAL_SLOTS, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	t->mask = INITIAL_SLOTS - 1;
	return t;
}

void index_table_free(struct index_table *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

static size_t find_slot(const struct index_table *t, uint32_t index)
{
	size_t i = index & t->mask;

	while (t->slots[i] && t->slots[i]->index != index)
		i = (i + 1) & t->mask;
	return i;
}

static int grow(struct index_table *t)
{
	struct index_entry **old = t->slots;
	size_t old_size = t->mask + 1, i;

	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant. */
	t->slots = calloc(old_size * 2, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->mask = old_size * 2 - 1;
	for (i = 0; i < old_size; i++)
		if (old[i])
			t->slots[find_slot(t, old[i]->index)] = old[i];
	free(old);
	return 0;
}

int index_table_insert(struct index_table *t, struct index_entry *e,
		       const struct wg_rng *rng)
{
	size_t i;
	int ret;

	/* Keep the load under one half so probe runs stay short. */
	if ((t->count + 1) * 2 > t->mask + 1) {
		ret = grow(t);
		if (ret)
			return ret;
	}
	for (;;) {
		e->index = wg_rng_u32(rng);
		i = find_slot(t, e->index);
		if (!t->slots[i])
			break;
	}
	t->slots[i] = e;
	e->hashed = true;
	t->count++;
	return 0;
}

void index_table_replace(struct index_table *t, struct index_entry *old,
			 struct index_entry *new_entry)
{
	size_t i;

	if (!old->hashed)
		return;
	i = find_slot(t, old->index);
	new_entry->index = old->index;
	new_entry->hashed = true;
	t->slots[i] = new_entry;
	old->hashed = false;
}

void index_table_remove(struct index_table *t, struct index_entry *e)
{
	size_t i, j, home;

	if (!e->hashed)
		return;
	i = find_slot(t, e->index);
	t->slots[i] = NULL;
	e->hashed = false;
	t->count--;
	/* Backward-shift: move up every entry whose home is not in (i, j]. */
	for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
		home = t->slots[j]->index & t->mask;
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
}

struct index_entry *index_table_lookup(const struct index_table *t, uint32_t index)
{
	return t->slots[find_slot(t, index)];
}

size_t index_table_count(const struct index_table *t)
{
	return t->count;
}
