// SPDX-License-Identifier: MIT
/*
 * Allowed IPs as two path-compressed binary tries (cryptokey routing, the
 * WireGuard paper, section 2; the kernel's allowedips.c).
 *
 * Every node has a bit length, cidr, and up to two children; a child's cidr
 * is larger than its parent's, and child[b] holds the prefixes whose bit
 * number cidr (counting from the most significant) is b. A chain of nodes
 * with one child each is never built: a node exists only if it carries an
 * owner or if its two subtrees diverge at its bit. So the invariants are:
 *
 *   - a node without an owner has exactly two children;
 *   - a node with an owner has zero, one or two children.
 *
 * Ownerless (branching) nodes store no key. The key of such a node is the
 * first cidr bits of any prefix below it, and nobody needs it except the
 * insertion, which fetches it from a descendant. Lookups never check a
 * branching node: they follow the address's bits down and check only the
 * prefixes they pass, stopping at the first one that does not match, since
 * everything under a mismatching prefix mismatches too.
 *
 * No parent pointers either: insertion and removal walk down from the root
 * and keep the address of the link they came through (at most 129 steps).
 */
#include "allowedips.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum node_flags {
	NODE_OWNED = 1 << 0,	/* carries an owner: a stored prefix */
	NODE_FULL = 1 << 1,	/* allocated as a struct allowedips_node */
	NODE_V6 = 1 << 2,	/* in the IPv6 trie (a full node has key6) */
};

/* What every node has; a bare branching node is only this (24 bytes). */
struct tnode {
	struct tnode *child[2];
	uint8_t cidr;
	uint8_t flags;
	/* A full IPv4 node keeps its key here, in what would be padding. */
	uint32_t key4;
};

/*
 * A node that can carry an owner. It stays full while it is ownerless only
 * if shrinking it to a bare branching node could not allocate.
 */
struct allowedips_node {
	struct tnode t;
	struct allowedips_owner *owner;
	struct allowedips_node *next;	/* the owner's list */
	struct allowedips_node **pprev;	/* the link pointing at us */
	uint64_t key6[];		/* IPv6 only: high then low half */
};

/* A full node and its embedded tnode share an address: either frees it. */
_Static_assert(offsetof(struct allowedips_node, t) == 0, "tnode must come first");

struct trie {
	struct tnode *root;
	uint8_t bits;
	bool v6;
};

struct allowedips {
	struct trie v4;
	struct trie v6;
	size_t count;
	size_t memory;
	size_t max; /* ALLOWEDIPS_MAX; tests lower it */
};

/*
 * An address or prefix as a 128-bit number, most significant bit first.
 * IPv4 uses the top 32 bits of hi, so one set of bit helpers serves both.
 */
struct key {
	uint64_t hi;
	uint64_t lo;
};

static inline struct allowedips_node *full(struct tnode *n)
{
	return container_of(n, struct allowedips_node, t);
}

static inline const struct allowedips_node *full_c(const struct tnode *n)
{
	return (const struct allowedips_node *)(const void *)
		((const char *)n - offsetof(struct allowedips_node, t));
}

/* The top n bits set, n in 0..64 (a shift by 64 would be undefined). */
static inline uint64_t mask64(unsigned int n)
{
	return n ? ~(uint64_t)0 << (64 - n) : 0;
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline void key_load(struct key *k, bool v6, const uint8_t *addr)
{
	if (v6) {
		k->hi = load_be64(addr);
		k->lo = load_be64(addr + 8);
	} else {
		k->hi = (uint64_t)addr[0] << 56 | (uint64_t)addr[1] << 48 |
			(uint64_t)addr[2] << 40 | (uint64_t)addr[3] << 32;
		k->lo = 0;
	}
}

static void key_store(const struct key *k, bool v6, uint8_t *addr)
{
	if (v6) {
		store_be64(addr, k->hi);
		store_be64(addr + 8, k->lo);
	} else {
		for (int i = 0; i < 4; i++)
			addr[i] = (uint8_t)(k->hi >> (56 - 8 * i));
	}
}

static void key_mask(struct key *k, unsigned int cidr)
{
	k->hi &= mask64(cidr < 64 ? cidr : 64);
	k->lo &= mask64(cidr > 64 ? cidr - 64 : 0);
}

/* Bit b (0 is the most significant); b must be below 128. */
static inline unsigned int key_bit(const struct key *k, unsigned int b)
{
	if (b < 64)
		return (unsigned int)(k->hi >> (63 - b)) & 1;
	return (unsigned int)(k->lo >> (127 - b)) & 1;
}

/* The number of leading bits a and b share, 0..128. */
static unsigned int key_common(const struct key *a, const struct key *b)
{
	uint64_t x = a->hi ^ b->hi;

	if (x)
		return (unsigned int)__builtin_clzll(x);
	x = a->lo ^ b->lo;
	if (x)
		return 64 + (unsigned int)__builtin_clzll(x);
	return 128;
}

/* The key of a full node (branching nodes have none). */
static inline void node_key(const struct tnode *n, struct key *k)
{
	if (n->flags & NODE_V6) {
		k->hi = full_c(n)->key6[0];
		k->lo = full_c(n)->key6[1];
	} else {
		k->hi = (uint64_t)n->key4 << 32;
		k->lo = 0;
	}
}

/* Whether address k lies in the prefix of full node n. */
static inline bool node_match(const struct tnode *n, const struct key *k)
{
	struct key p;

	node_key(n, &p);
	return key_common(&p, k) >= n->cidr;
}

static size_t node_size(uint8_t flags)
{
	if (!(flags & NODE_FULL))
		return sizeof(struct tnode);
	return sizeof(struct allowedips_node) +
	       (flags & NODE_V6 ? 2 * sizeof(uint64_t) : 0);
}

static struct tnode *branch_new(struct allowedips *t, uint8_t cidr, bool v6)
{
	struct tnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->cidr = cidr;
	n->flags = v6 ? NODE_V6 : 0;
	t->memory += sizeof(*n);
	return n;
}

/* A new ownerless full node for prefix k/cidr; k is already masked. */
static struct allowedips_node *full_new(struct allowedips *t,
					const struct key *k, uint8_t cidr,
					bool v6)
{
	uint8_t flags = NODE_FULL | (v6 ? NODE_V6 : 0);
	size_t size = node_size(flags);
	struct allowedips_node *f = calloc(1, size);

	if (!f)
		return NULL;
	f->t.cidr = cidr;
	f->t.flags = flags;
	if (v6) {
		f->key6[0] = k->hi;
		f->key6[1] = k->lo;
	} else {
		f->t.key4 = (uint32_t)(k->hi >> 32);
	}
	t->memory += size;
	return f;
}

static void node_free(struct allowedips *t, struct tnode *n)
{
	t->memory -= node_size(n->flags);
	free(n);
}

/* Gives ownerless full node f to owner, at the head of its list. */
static void claim(struct allowedips *t, struct allowedips_node *f,
		  struct allowedips_owner *owner)
{
	f->owner = owner;
	f->next = owner->head;
	if (f->next)
		f->next->pprev = &f->next;
	f->pprev = &owner->head;
	owner->head = f;
	owner->count++;
	f->t.flags |= NODE_OWNED;
	t->count++;
}

static void release(struct allowedips *t, struct allowedips_node *f)
{
	*f->pprev = f->next;
	if (f->next)
		f->next->pprev = f->pprev;
	f->owner->count--;
	f->owner = NULL;
	f->next = NULL;
	f->pprev = NULL;
	f->t.flags &= (uint8_t)~NODE_OWNED;
	t->count--;
}

static int family_bits(int family)
{
	if (family == AF_INET)
		return 32;
	if (family == AF_INET6)
		return 128;
	return -1;
}

/*
 * The node at link already is k's (masked) prefix, maybe a bare branching
 * node, which then has to grow into a full one first.
 */
static int take_over(struct allowedips *t, struct trie *tr, struct tnode **link,
		     const struct key *k, struct allowedips_owner *owner)
{
	struct tnode *y = *link;
	struct allowedips_node *z;

	/* A bare branching node, or one left without an owner: a new prefix. */
	if (!(y->flags & NODE_OWNED) && t->count >= t->max)
		return -ENOSPC;
	if (!(y->flags & NODE_FULL)) {
		z = full_new(t, k, y->cidr, tr->v6);
		if (!z)
			return -ENOMEM;
		memcpy(z->t.child, y->child, sizeof(y->child));
		*link = &z->t;
		node_free(t, y);
		y = &z->t;
	}
	z = full(y);
	if (z->owner == owner)
		return 0;
	if (z->owner)
		release(t, z);
	claim(t, z, owner);
	return 0;
}

/*
 * Puts owner on k/cidr (k masked). Two walks: the first follows k's bits as
 * far as the trie goes and picks a stored prefix below that point. Every
 * node it passed is an ancestor of that prefix, so the number of leading
 * bits k shares with it, d, tells the second walk which of those nodes k
 * really belongs under, although their own keys are not stored.
 */
static int insert(struct allowedips *t, struct trie *tr, const struct key *k,
		  uint8_t cidr, struct allowedips_owner *owner)
{
	struct tnode **link = &tr->root, *x = tr->root, *y, *b;
	struct allowedips_node *z;
	struct key lk = { 0, 0 };
	unsigned int d = 0;

	if (x) {
		while (x->cidr < cidr && x->child[key_bit(k, x->cidr)])
			x = x->child[key_bit(k, x->cidr)];
		/* Ownerless nodes have two children, so this ends on a prefix. */
		while (!(x->flags & NODE_OWNED)) {
			assert(x->child[0] && x->child[1]);
			x = x->child[0];
		}
		node_key(x, &lk);
		d = key_common(k, &lk);
		if (d > cidr)
			d = cidr;
		while ((y = *link) && y->cidr < cidr && y->cidr <= d)
			link = &y->child[key_bit(k, y->cidr)];
	}
	y = *link;

	if (y && y->cidr == cidr && d == cidr)
		return take_over(t, tr, link, k, owner);

	if (t->count >= t->max)
		return -ENOSPC;
	z = full_new(t, k, cidr, tr->v6);
	if (!z)
		return -ENOMEM;
	if (y && d == cidr) {
		/* k/cidr covers y: it goes in between, above y. */
		/* No node is longer than the key, so cidr < y->cidr <= 128. */
		assert(cidr < y->cidr && y->cidr <= 128);
		z->t.child[key_bit(&lk, cidr)] = y;
	} else if (y) {
		/* k and y part ways at bit d: they need a branching node. */
		b = branch_new(t, (uint8_t)d, tr->v6);
		if (!b) {
			node_free(t, &z->t);
			return -ENOMEM;
		}
		b->child[key_bit(k, d)] = &z->t;
		b->child[key_bit(&lk, d)] = y;
		*link = b;
		claim(t, z, owner);
		return 0;
	}
	*link = &z->t;
	claim(t, z, owner);
	return 0;
}

/*
 * The link that holds the node for k/cidr if there is one, and in *plink the
 * link that holds its parent (NULL at the root).
 */
static struct tnode **find(struct trie *tr, const struct key *k, uint8_t cidr,
			   struct tnode ***plink)
{
	struct tnode **link = &tr->root, *n;

	*plink = NULL;
	while ((n = *link) && n->cidr < cidr) {
		*plink = link;
		link = &n->child[key_bit(k, n->cidr)];
	}
	return link;
}

/* Replaces the ownerless full node at link with a bare branching node. */
static void shrink(struct allowedips *t, struct tnode **link)
{
	struct tnode *n = *link, *b;

	b = branch_new(t, n->cidr, n->flags & NODE_V6);
	if (!b)
		return;	/* Keep the bigger node; it still works as a branch. */
	memcpy(b->child, n->child, sizeof(n->child));
	*link = b;
	node_free(t, n);
}

/*
 * The node at link has just lost its owner: drop it unless it branches, and
 * drop its parent too if that was a branching node left with one child.
 */
static void prune(struct allowedips *t, struct tnode **link,
		  struct tnode **plink)
{
	struct tnode *n = *link, *p;

	if (n->child[0] && n->child[1]) {
		if (n->flags & NODE_FULL)
			shrink(t, link);
		return;
	}
	*link = n->child[0] ? n->child[0] : n->child[1];
	node_free(t, n);
	if (*link || !plink)
		return;
	p = *plink;
	if (p->flags & NODE_OWNED)
		return;
	*plink = p->child[0] ? p->child[0] : p->child[1];
	node_free(t, p);
}

static void free_subtree(struct tnode *n)
{
	/* Recursion depth is bounded by the key length (129 levels). */
	if (!n)
		return;
	free_subtree(n->child[0]);
	free_subtree(n->child[1]);
	free(n);
}

struct allowedips *allowedips_new(void)
{
	struct allowedips *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->v4.bits = 32;
	t->v6.bits = 128;
	t->v6.v6 = true;
	t->max = ALLOWEDIPS_MAX;
	return t;
}

void allowedips_free(struct allowedips *t)
{
	if (!t)
		return;
	free_subtree(t->v4.root);
	free_subtree(t->v6.root);
	free(t);
}

int allowedips_insert(struct allowedips *t, int family, const uint8_t *addr,
		      uint8_t cidr, struct allowedips_owner *owner)
{
	int bits = family_bits(family);
	struct trie *tr = family == AF_INET6 ? &t->v6 : &t->v4;
	struct key k;

	if (bits < 0 || cidr > bits || !addr || !owner)
		return -EINVAL;
	key_load(&k, tr->v6, addr);
	key_mask(&k, cidr);
	return insert(t, tr, &k, cidr, owner);
}

int allowedips_remove(struct allowedips *t, int family, const uint8_t *addr,
		      uint8_t cidr, const struct allowedips_owner *owner)
{
	int bits = family_bits(family);
	struct trie *tr = family == AF_INET6 ? &t->v6 : &t->v4;
	struct tnode **link, **plink, *n;
	struct key k;

	if (bits < 0 || cidr > bits || !addr)
		return -EINVAL;
	key_load(&k, tr->v6, addr);
	key_mask(&k, cidr);
	link = find(tr, &k, cidr, &plink);
	n = *link;
	/* The walk ignores skipped bits, so check the key of what it found. */
	if (!n || n->cidr != cidr || !(n->flags & NODE_OWNED) ||
	    full(n)->owner != owner || !node_match(n, &k))
		return -ENOENT;
	release(t, full(n));
	prune(t, link, plink);
	return 0;
}

void allowedips_remove_owner(struct allowedips *t, struct allowedips_owner *owner)
{
	struct tnode **link, **plink;
	struct allowedips_node *f;
	struct trie *tr;
	struct key k;

	/* Each prefix is found again from the root, in O(depth). */
	while ((f = owner->head)) {
		/* The head's back link is the list head itself. */
		assert(f->pprev == &owner->head);
		tr = f->t.flags & NODE_V6 ? &t->v6 : &t->v4;
		node_key(&f->t, &k);
		link = find(tr, &k, f->t.cidr, &plink);
		assert(*link == &f->t);
		release(t, f);
		prune(t, link, plink);
	}
}

struct allowedips_owner *allowedips_lookup(const struct allowedips *t,
					   int family, const uint8_t *addr)
{
	const struct trie *tr = family == AF_INET6 ? &t->v6 : &t->v4;
	struct allowedips_owner *best = NULL;
	const struct tnode *n;
	struct key k;

	if (family_bits(family) < 0)
		return NULL;
	key_load(&k, tr->v6, addr);
	for (n = tr->root; n; n = n->child[key_bit(&k, n->cidr)]) {
		if (n->flags & NODE_OWNED) {
			if (!node_match(n, &k))
				break;
			best = full_c(n)->owner;
		}
		if (n->cidr == tr->bits)
			break;
	}
	return best;
}

int allowedips_walk_owner(const struct allowedips_owner *owner,
			  int (*cb)(void *ctx, int family, const uint8_t *addr,
				    uint8_t cidr),
			  void *ctx)
{
	const struct allowedips_node *f;
	uint8_t addr[16];
	struct key k;
	bool v6;
	int ret;

	for (f = owner->head; f; f = f->next) {
		v6 = f->t.flags & NODE_V6;
		node_key(&f->t, &k);
		key_store(&k, v6, addr);
		ret = cb(ctx, v6 ? AF_INET6 : AF_INET, addr, f->t.cidr);
		if (ret)
			return ret;
	}
	return 0;
}

size_t allowedips_count(const struct allowedips *t)
{
	return t->count;
}

size_t allowedips_memory(const struct allowedips *t)
{
	return t->memory;
}
