/* SPDX-License-Identifier: MIT */
/*
 * The table of local 32-bit indices: every live handshake and keypair owns a
 * random index, unique among them, which the peer echoes back as "receiver".
 * Entries are embedded in their owners; the table only points at them.
 */
#ifndef VEIL_INDEX_H
#define VEIL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "rng.h"

enum index_kind {
	INDEX_NONE = 0,
	INDEX_HANDSHAKE = 1,
	INDEX_KEYPAIR = 2,
};

struct index_entry {
	uint32_t index;
	uint8_t kind;
	bool hashed;
	void *peer;
};

struct index_table;

struct index_table *index_table_new(void);
void index_table_free(struct index_table *t);
/* Gives e a fresh random index unique in the table. 0 or -ENOMEM. */
int index_table_insert(struct index_table *t, struct index_entry *e,
		       const struct wg_rng *rng) __must_check;
/* new takes over old's index number and slot; old is left unhashed. */
void index_table_replace(struct index_table *t, struct index_entry *old,
			 struct index_entry *new_entry);
void index_table_remove(struct index_table *t, struct index_entry *e);
struct index_entry *index_table_lookup(const struct index_table *t, uint32_t index);
size_t index_table_count(const struct index_table *t);

#endif
