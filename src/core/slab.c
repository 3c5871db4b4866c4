// SPDX-License-Identifier: MIT
#include "slab.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <sodium.h>

/* Under AddressSanitizer, free objects are poisoned so a use after free still reports. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define poison(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define poison(p, n) ((void)(p), (void)(n))
#define unpoison(p, n) ((void)(p), (void)(n))
#endif

enum { SLAB_BYTES = 64 * 1024, OBJ_ALIGN = 64, HEADER = 64 };

struct slab {
	struct slab *next, *prev;
	void *free_list;
	size_t used;
};

/* Each object is preceded by a pointer to its slab. */
struct obj_head {
	struct slab *slab;
	uint8_t pad[OBJ_ALIGN - sizeof(struct slab *)];
};

void slab_cache_init(struct slab_cache *c, size_t obj_size)
{
	memset(c, 0, sizeof(*c));
	c->obj_size = sizeof(struct obj_head) + ((obj_size + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1));
	c->per_slab = (SLAB_BYTES - HEADER) / c->obj_size;
}

static void unlink_slab(struct slab_cache *c, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else if (c->partial == s)
		c->partial = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void push_partial(struct slab_cache *c, struct slab *s)
{
	s->prev = NULL;
	s->next = c->partial;
	if (c->partial)
		c->partial->prev = s;
	c->partial = s;
}

static struct slab *new_slab(struct slab_cache *c)
{
	struct slab *s;
	uint8_t *p;
	size_t i;

	if (!c->per_slab)
		return NULL;
	s = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	/* Fresh anonymous pages are zero: build the free list back to front. */
	p = (uint8_t *)s + HEADER;
	for (i = c->per_slab; i-- > 0;) {
		struct obj_head *h = (struct obj_head *)(void *)(p + i * c->obj_size);

		h->slab = s;
		*(void **)(h + 1) = s->free_list;
		s->free_list = h + 1;
	}
	c->slabs++;
	push_partial(c, s);
	return s;
}

void *slab_alloc(struct slab_cache *c)
{
	struct slab *s = c->partial ? c->partial : new_slab(c);
	void *obj;

	if (!s)
		return NULL;
	obj = s->free_list;
	unpoison(obj, c->obj_size - sizeof(struct obj_head));
	s->free_list = *(void **)obj;
	memset(obj, 0, c->obj_size - sizeof(struct obj_head));
	if (++s->used == c->per_slab)
		unlink_slab(c, s);
	c->objects++;
	return obj;
}

void slab_free(struct slab_cache *c, void *obj)
{
	struct obj_head *h;
	struct slab *s;

	if (!obj)
		return;
	h = (struct obj_head *)obj - 1;
	s = h->slab;
	sodium_memzero(obj, c->obj_size - sizeof(struct obj_head));
	if (s->used-- == c->per_slab)
		push_partial(c, s);
	*(void **)obj = s->free_list;
	s->free_list = obj;
	/* The free-list link stays readable; the rest is off limits. */
	poison((uint8_t *)obj + sizeof(void *), c->obj_size - sizeof(struct obj_head) - sizeof(void *));
	c->objects--;
	if (s->used == 0) {
		unlink_slab(c, s);
		unpoison(s, SLAB_BYTES);
		munmap(s, SLAB_BYTES);
		c->slabs--;
	}
}
