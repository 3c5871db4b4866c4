/* SPDX-License-Identifier: MIT */
/*
 * A cache of fixed-size objects carved from mmap'd slabs. Objects come back
 * zeroed and are wiped when freed; a slab whose objects are all free is
 * unmapped at once. That is the point: under mlockall glibc cannot hand
 * freed heap pages back to the kernel, but munmap always can, so memory used
 * by peers returns when they are removed.
 */
#ifndef VEIL_SLAB_H
#define VEIL_SLAB_H

#include <stddef.h>

struct slab;

struct slab_cache {
	size_t obj_size;  /* rounded up to 64 bytes, plus an 8-byte header */
	size_t per_slab;
	struct slab *partial; /* slabs with at least one free object */
	size_t slabs, objects;
};

void slab_cache_init(struct slab_cache *c, size_t obj_size);
/* A zeroed object, or NULL on ENOMEM. */
void *slab_alloc(struct slab_cache *c);
/* Wipes obj and returns it; unmaps its slab when the slab becomes empty. */
void slab_free(struct slab_cache *c, void *obj);

#endif
