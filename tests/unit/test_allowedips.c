// SPDX-License-Identifier: MIT
/*
 * Allowed-IPs trie tests: a numbered table of hand-picked operations, a few
 * focused cases, and a seeded random run compared with a brute-force linear
 * scan (the idea of the kernel's horrible_allowedips). After every phase a
 * structural check walks the whole trie and recounts nodes and bytes.
 */
#include "core/allowedips.c"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>

enum { NOWNERS = 40 };

static struct allowedips_owner owners[NOWNERS];

static void reset_owners(void)
{
	memset(owners, 0, sizeof(owners));
}

static int owner_index(const struct allowedips_owner *o)
{
	return o ? (int)(o - owners) : -1;
}

/* Parses "a.b.c.d" or an IPv6 literal; fails the test on bad input. */
static int parse(const char *s, uint8_t addr[static 16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return AF_INET6;
	fail_msg("bad address literal %s", s);
	return -1;
}

/*
 * Structural check of one subtree. Returns some prefix node below n (every
 * subtree has one) after checking that all prefixes in n's subtree share
 * n->cidr bits with it, by induction over the children's answers.
 */
static const struct tnode *check_node(const struct tnode *n, bool v6,
				      size_t *count, size_t *memory)
{
	const struct tnode *rep[2] = { NULL, NULL }, *any = NULL;
	struct key kn, kc, k0, k1;

	assert_int_equal(!!(n->flags & NODE_V6), v6);
	*memory += node_size(n->flags);
	if (n->flags & NODE_OWNED) {
		assert_true(n->flags & NODE_FULL);
		assert_non_null(full_c(n)->owner);
		node_key(n, &kn);
		/* Stored keys have their host bits cleared. */
		kc = kn;
		key_mask(&kc, n->cidr);
		assert_true(kc.hi == kn.hi && kc.lo == kn.lo);
		(*count)++;
		any = n;
	} else {
		/* A node without an owner exists only to branch. */
		assert_non_null(n->child[0]);
		assert_non_null(n->child[1]);
	}
	for (unsigned int b = 0; b < 2; b++) {
		if (!n->child[b])
			continue;
		assert_true(n->child[b]->cidr > n->cidr);
		rep[b] = check_node(n->child[b], v6, count, memory);
		node_key(rep[b], &kc);
		assert_int_equal(key_bit(&kc, n->cidr), b);
		if (any) {
			node_key(any, &kn);
			assert_true(key_common(&kn, &kc) >= n->cidr);
		} else {
			any = rep[b];
		}
	}
	if (!(n->flags & NODE_OWNED)) {
		node_key(rep[0], &k0);
		node_key(rep[1], &k1);
		assert_int_equal(key_common(&k0, &k1), n->cidr);
	}
	return any;
}

static void check_trie(const struct allowedips *t)
{
	size_t count = 0, memory = 0, owned = 0;

	if (t->v4.root)
		check_node(t->v4.root, false, &count, &memory);
	if (t->v6.root)
		check_node(t->v6.root, true, &count, &memory);
	assert_int_equal(count, allowedips_count(t));
	assert_int_equal(memory, allowedips_memory(t));
	for (int i = 0; i < NOWNERS; i++)
		owned += owners[i].count;
	assert_int_equal(owned, count);
}

enum op { INS, DEL, DELOWNER, LOOK, COUNT };

struct row {
	enum op op;
	const char *addr;
	int cidr;	/* COUNT: expected prefix count */
	char owner;	/* 'A'.., or 0 for "no owner" in LOOK */
	int ret;	/* INS and DEL */
};

static const struct row rows[] = {
	/* Nested IPv4 prefixes with different owners. */
	{ INS, "192.168.4.0", 24, 'A', 0 },
	{ INS, "192.168.4.4", 32, 'B', 0 },
	{ INS, "192.168.0.0", 16, 'C', 0 },
	{ INS, "192.95.5.64", 27, 'D', 0 },
	{ INS, "192.95.5.65", 32, 'C', 0 },
	{ INS, "10.0.0.0", 8, 'F', 0 },
	{ INS, "10.1.0.0", 16, 'G', 0 },
	{ INS, "10.1.2.3", 32, 'H', 0 },
	{ LOOK, "8.8.8.8", 0, 0, 0 },
	{ INS, "0.0.0.0", 0, 'E', 0 },
	{ LOOK, "192.168.4.20", 0, 'A', 0 },
	{ LOOK, "192.168.4.4", 0, 'B', 0 },
	{ LOOK, "192.168.4.5", 0, 'A', 0 },
	{ LOOK, "192.168.200.182", 0, 'C', 0 },
	{ LOOK, "192.95.5.68", 0, 'D', 0 },
	{ LOOK, "192.95.5.65", 0, 'C', 0 },
	{ LOOK, "192.95.5.96", 0, 'E', 0 },
	{ LOOK, "192.95.5.63", 0, 'E', 0 },
	{ LOOK, "8.8.8.8", 0, 'E', 0 },
	{ LOOK, "10.2.3.4", 0, 'F', 0 },
	{ LOOK, "10.1.9.9", 0, 'G', 0 },
	{ LOOK, "10.1.2.3", 0, 'H', 0 },
	{ LOOK, "10.1.2.2", 0, 'G', 0 },
	{ LOOK, "11.1.2.3", 0, 'E', 0 },
	/* The same kind of nesting in IPv6, plus the extremes of the space. */
	{ INS, "2001:db8::", 32, 'A', 0 },
	{ INS, "2001:db8:1::", 48, 'B', 0 },
	{ INS, "2001:db8:1:2::", 64, 'C', 0 },
	{ INS, "2001:db8:1:2::5", 128, 'D', 0 },
	{ INS, "2001:db8:1:2:8000::", 65, 'H', 0 },
	{ LOOK, "2001:db9::1", 0, 0, 0 },
	{ INS, "::", 0, 'E', 0 },
	{ INS, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, 'F', 0 },
	{ INS, "::", 128, 'G', 0 },
	{ LOOK, "2001:db8::1", 0, 'A', 0 },
	{ LOOK, "2001:db8:1::1", 0, 'B', 0 },
	{ LOOK, "2001:db8:1:2::1", 0, 'C', 0 },
	{ LOOK, "2001:db8:1:2::5", 0, 'D', 0 },
	{ LOOK, "2001:db8:1:2::4", 0, 'C', 0 },
	{ LOOK, "2001:db8:1:2:8000::5", 0, 'H', 0 },
	{ LOOK, "2001:db8:1:2:7fff::5", 0, 'C', 0 },
	{ LOOK, "2001:db9::1", 0, 'E', 0 },
	{ LOOK, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0, 'F', 0 },
	{ LOOK, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 0, 'E', 0 },
	{ LOOK, "::", 0, 'G', 0 },
	{ LOOK, "::1", 0, 'E', 0 },
	/* A v4-mapped address is an IPv6 key, not an IPv4 one. */
	{ LOOK, "::ffff:10.1.2.3", 0, 'E', 0 },
	{ COUNT, NULL, 17, 0, 0 },
	/* Moving a prefix: same bits and length, another owner. */
	{ INS, "10.1.0.0", 16, 'A', 0 },
	{ LOOK, "10.1.9.9", 0, 'A', 0 },
	{ COUNT, NULL, 17, 0, 0 },
	{ DEL, "10.1.0.0", 16, 'G', -ENOENT },
	{ LOOK, "10.1.9.9", 0, 'A', 0 },
	{ DEL, "10.1.0.0", 16, 'A', 0 },
	{ LOOK, "10.1.9.9", 0, 'F', 0 },
	{ LOOK, "10.1.2.3", 0, 'H', 0 },
	{ DEL, "10.1.0.0", 16, 'A', -ENOENT },
	{ DEL, "10.0.0.0", 9, 'F', -ENOENT },
	{ DEL, "10.0.0.0", 7, 'F', -ENOENT },
	/* Host bits are ignored both ways. */
	{ INS, "192.95.5.70", 27, 'A', 0 },
	{ LOOK, "192.95.5.68", 0, 'A', 0 },
	{ DEL, "192.95.5.95", 27, 'A', 0 },
	{ LOOK, "192.95.5.68", 0, 'E', 0 },
	{ LOOK, "192.95.5.65", 0, 'C', 0 },
	{ INS, "2001:db8:1:2:ffff::", 64, 'B', 0 },
	{ LOOK, "2001:db8:1:2::1", 0, 'B', 0 },
	{ LOOK, "2001:db8:1:2:8000::5", 0, 'H', 0 },
	/* /0 is an ordinary entry. */
	{ DEL, "0.0.0.0", 0, 'A', -ENOENT },
	{ DEL, "1.2.3.4", 0, 'E', 0 },
	{ LOOK, "8.8.8.8", 0, 0, 0 },
	{ LOOK, "2001:db9::1", 0, 'E', 0 },
	{ DELOWNER, NULL, 0, 'E', 0 },
	{ LOOK, "2001:db9::1", 0, 0, 0 },
	{ LOOK, "::1", 0, 0, 0 },
	{ LOOK, "::", 0, 'G', 0 },
	/* Lengths beyond the family's width. */
	{ INS, "1.2.3.4", 33, 'A', -EINVAL },
	{ INS, "::1", 129, 'A', -EINVAL },
	{ DEL, "1.2.3.4", 33, 'A', -EINVAL },
	{ DEL, "::1", 255, 'A', -EINVAL },
	{ INS, "255.255.255.255", 32, 'B', 0 },
	{ LOOK, "255.255.255.255", 0, 'B', 0 },
	{ LOOK, "255.255.255.254", 0, 0, 0 },
	{ COUNT, NULL, 14, 0, 0 },
	{ DELOWNER, NULL, 0, 'A', 0 },
	{ DELOWNER, NULL, 0, 'B', 0 },
	{ DELOWNER, NULL, 0, 'C', 0 },
	{ DELOWNER, NULL, 0, 'D', 0 },
	{ DELOWNER, NULL, 0, 'F', 0 },
	{ DELOWNER, NULL, 0, 'G', 0 },
	{ LOOK, "10.1.2.3", 0, 'H', 0 },
	{ LOOK, "10.1.2.4", 0, 0, 0 },
	{ DELOWNER, NULL, 0, 'H', 0 },
	{ COUNT, NULL, 0, 0, 0 },
};

static void test_vectors(void **state)
{
	struct allowedips *t = allowedips_new();
	struct allowedips_owner *o;
	uint8_t addr[16];
	int family, ret;

	(void)state;
	reset_owners();
	assert_non_null(t);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];

		o = r->owner ? &owners[r->owner - 'A'] : NULL;
		family = r->addr ? parse(r->addr, addr) : 0;
		switch (r->op) {
		case INS:
			ret = allowedips_insert(t, family, addr,
						(uint8_t)r->cidr, o);
			if (ret != r->ret)
				fail_msg("row %zu: insert returned %d", i, ret);
			break;
		case DEL:
			ret = allowedips_remove(t, family, addr,
						(uint8_t)r->cidr, o);
			if (ret != r->ret)
				fail_msg("row %zu: remove returned %d", i, ret);
			break;
		case DELOWNER:
			allowedips_remove_owner(t, o);
			assert_null(o->head);
			assert_int_equal(o->count, 0);
			break;
		case LOOK:
			if (allowedips_lookup(t, family, addr) != o)
				fail_msg("row %zu: %s went to owner %d", i,
					 r->addr,
					 owner_index(allowedips_lookup(t, family, addr)));
			break;
		case COUNT:
			if (allowedips_count(t) != (size_t)r->cidr)
				fail_msg("row %zu: count %zu", i,
					 allowedips_count(t));
			break;
		}
		check_trie(t);
	}
	assert_int_equal(allowedips_memory(t), 0);
	allowedips_free(t);
}

static void test_bad_family(void **state)
{
	struct allowedips *t = allowedips_new();
	uint8_t addr[16] = { 10 };

	(void)state;
	reset_owners();
	assert_int_equal(allowedips_insert(t, AF_UNIX, addr, 8, &owners[0]),
			 -EINVAL);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 8, NULL), -EINVAL);
	assert_int_equal(allowedips_remove(t, AF_UNSPEC, addr, 8, &owners[0]),
			 -EINVAL);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 8, &owners[0]), 0);
	assert_null(allowedips_lookup(t, AF_UNIX, addr));
	assert_ptr_equal(allowedips_lookup(t, AF_INET, addr), &owners[0]);
	/* The same bytes in the other family are another key. */
	assert_null(allowedips_lookup(t, AF_INET6, addr));
	allowedips_free(t);
}

/* The table's limit (lowered to 4 here): new prefixes refused, the table as it was. */
static void test_limit(void **state)
{
	struct allowedips *t = allowedips_new();
	uint8_t a[16] = { 10, 0, 0, 0 }, v6[16] = { 0xfd };
	uint8_t i;

	(void)state;
	reset_owners();
	assert_int_equal(t->max, ALLOWEDIPS_MAX);
	t->max = 4;
	/* 10.0.0.0/24 and 10.0.1.0/24 make a branching node at 10.0.0.0/23. */
	for (i = 0; i < 3; i++) {
		a[2] = i;
		assert_int_equal(allowedips_insert(t, AF_INET, a, 24, &owners[0]), 0);
	}
	assert_int_equal(allowedips_insert(t, AF_INET6, v6, 64, &owners[1]), 0);
	assert_int_equal(allowedips_count(t), 4);
	a[2] = 9;
	assert_int_equal(allowedips_insert(t, AF_INET, a, 24, &owners[0]), -ENOSPC);
	assert_int_equal(allowedips_insert(t, AF_INET6, a, 128, &owners[1]), -ENOSPC);
	/* On the branching node itself: a new prefix too. */
	a[2] = 0;
	assert_int_equal(allowedips_insert(t, AF_INET, a, 23, &owners[1]), -ENOSPC);
	assert_int_equal(allowedips_count(t), 4);
	check_trie(t);
	a[2] = 9;
	assert_null(allowedips_lookup(t, AF_INET, a));
	/* A prefix the table holds may change owner: nothing new. */
	a[2] = 1;
	assert_int_equal(allowedips_insert(t, AF_INET, a, 24, &owners[1]), 0);
	assert_ptr_equal(allowedips_lookup(t, AF_INET, a), &owners[1]);
	assert_int_equal(allowedips_insert(t, AF_INET, a, 24, &owners[1]), 0);
	/* Room again once one goes. */
	assert_int_equal(allowedips_remove(t, AF_INET6, v6, 64, &owners[1]), 0);
	a[2] = 9;
	assert_int_equal(allowedips_insert(t, AF_INET, a, 24, &owners[0]), 0);
	assert_int_equal(allowedips_count(t), 4);
	check_trie(t);
	allowedips_free(t);
}

struct walked {
	int n;
	int family[4];
	char text[4][INET6_ADDRSTRLEN + 4];
	int stop_at;
};

static int collect(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct walked *w = ctx;
	char buf[INET6_ADDRSTRLEN];

	assert_true(w->n < 4);
	assert_non_null(inet_ntop(family, addr, buf, sizeof(buf)));
	w->family[w->n] = family;
	snprintf(w->text[w->n], sizeof(w->text[0]), "%s/%u", buf, cidr);
	w->n++;
	return w->n == w->stop_at ? 42 : 0;
}

static void test_walk_clears_host_bits(void **state)
{
	struct allowedips *t = allowedips_new();
	struct walked w = { 0 };
	uint8_t addr[16];

	(void)state;
	reset_owners();
	parse("192.168.1.77", addr);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 21, &owners[0]), 0);
	parse("2001:db8:aaaa:bbbb:cccc::dead:beef", addr);
	assert_int_equal(allowedips_insert(t, AF_INET6, addr, 50, &owners[0]), 0);
	parse("10.9.8.7", addr);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 32, &owners[1]), 0);

	assert_int_equal(owners[0].count, 2);
	assert_int_equal(allowedips_walk_owner(&owners[0], collect, &w), 0);
	assert_int_equal(w.n, 2);
	/* Most recently added first. */
	assert_int_equal(w.family[0], AF_INET6);
	assert_string_equal(w.text[0], "2001:db8:aaaa:8000::/50");
	assert_int_equal(w.family[1], AF_INET);
	assert_string_equal(w.text[1], "192.168.0.0/21");

	/* A non-zero return stops the walk and is passed through. */
	memset(&w, 0, sizeof(w));
	w.stop_at = 1;
	assert_int_equal(allowedips_walk_owner(&owners[0], collect, &w), 42);
	assert_int_equal(w.n, 1);

	memset(&w, 0, sizeof(w));
	assert_int_equal(allowedips_walk_owner(&owners[2], collect, &w), 0);
	assert_int_equal(w.n, 0);
	allowedips_free(t);
}

static void test_move_between_owners(void **state)
{
	struct allowedips *t = allowedips_new();
	uint8_t addr[16];

	(void)state;
	reset_owners();
	parse("172.16.0.0", addr);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 12, &owners[0]), 0);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 12, &owners[0]), 0);
	assert_int_equal(owners[0].count, 1);
	assert_int_equal(allowedips_insert(t, AF_INET, addr, 12, &owners[1]), 0);
	assert_int_equal(owners[0].count, 0);
	assert_null(owners[0].head);
	assert_int_equal(owners[1].count, 1);
	assert_int_equal(allowedips_count(t), 1);
	assert_int_equal(allowedips_remove(t, AF_INET, addr, 12, &owners[0]),
			 -ENOENT);
	assert_ptr_equal(allowedips_lookup(t, AF_INET, addr), &owners[1]);
	/* Removing the former owner must not take the prefix with it. */
	allowedips_remove_owner(t, &owners[0]);
	assert_ptr_equal(allowedips_lookup(t, AF_INET, addr), &owners[1]);
	check_trie(t);
	allowedips_free(t);
}

/* Exact node accounting, and branching nodes collapsing on removal. */
static void test_node_sizes(void **state)
{
	struct allowedips *t = allowedips_new();
	uint8_t a[16], b[16], c[16];

	(void)state;
	reset_owners();
	parse("10.0.0.0", a);
	parse("10.0.0.1", b);
	parse("10.0.0.0", c);
	assert_int_equal(allowedips_insert(t, AF_INET, a, 32, &owners[0]), 0);
	assert_int_equal(allowedips_memory(t), 48);
	assert_int_equal(allowedips_insert(t, AF_INET, b, 32, &owners[1]), 0);
	assert_int_equal(allowedips_memory(t), 48 + 48 + 24);
	/* A prefix landing on a branching node replaces it. */
	assert_int_equal(allowedips_insert(t, AF_INET, c, 31, &owners[2]), 0);
	assert_int_equal(allowedips_memory(t), 3 * 48);
	check_trie(t);
	/* And leaves a branching node behind when it goes. */
	assert_int_equal(allowedips_remove(t, AF_INET, c, 31, &owners[2]), 0);
	assert_int_equal(allowedips_memory(t), 48 + 48 + 24);
	check_trie(t);
	assert_int_equal(allowedips_remove(t, AF_INET, a, 32, &owners[0]), 0);
	assert_int_equal(allowedips_memory(t), 48);
	check_trie(t);
	assert_int_equal(allowedips_remove(t, AF_INET, b, 32, &owners[1]), 0);
	assert_int_equal(allowedips_memory(t), 0);
	assert_null(t->v4.root);

	parse("2001:db8::", a);
	assert_int_equal(allowedips_insert(t, AF_INET6, a, 128, &owners[0]), 0);
	assert_int_equal(allowedips_memory(t), 64);
	allowedips_remove_owner(t, &owners[0]);
	assert_int_equal(allowedips_memory(t), 0);
	allowedips_free(t);
}

/* A seeded generator, so that any failure replays identically. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd_below(unsigned int n)
{
	return (unsigned int)(rnd() % n);
}

enum { NBASES = 6, MAXREF = 12000 };

static uint8_t bases[2][NBASES][16];

static int rnd_family(void)
{
	return rnd() & 1 ? AF_INET6 : AF_INET;
}

/*
 * An address near one of a few bases: a random number of leading bits come
 * from the base and the rest are random, so prefixes overlap and nest.
 */
static void rnd_addr(int family, uint8_t addr[static 16])
{
	int v6 = family == AF_INET6, bits = v6 ? 128 : 32;
	int keep = rnd() & 1 ? (int)rnd_below((unsigned int)bits + 1) :
			       bits / 2 + (int)rnd_below((unsigned int)bits / 2 + 1);
	const uint8_t *base = bases[v6][rnd_below(NBASES)];

	memset(addr, 0, 16);
	for (int i = 0; i < bits / 8; i++) {
		uint8_t r = (uint8_t)rnd();
		int from = i * 8;

		if (keep >= from + 8)
			addr[i] = base[i];
		else if (keep <= from)
			addr[i] = r;
		else
			addr[i] = (uint8_t)((base[i] & (0xff00 >> (keep - from))) |
					    (r & (0xff >> (keep - from))));
	}
}

struct ref {
	int family;
	uint8_t addr[16];	/* host bits cleared */
	uint8_t cidr;
	int owner;		/* -1 when removed */
};

static struct ref refs[MAXREF];
static size_t nrefs;

static void clear_host(uint8_t addr[static 16], int family, unsigned int cidr)
{
	unsigned int bytes = family == AF_INET6 ? 16 : 4;

	for (unsigned int i = 0; i < bytes; i++) {
		if (cidr >= 8 * i + 8)
			continue;
		if (cidr <= 8 * i)
			addr[i] = 0;
		else
			addr[i] &= (uint8_t)(0xff00 >> (cidr - 8 * i));
	}
}

static bool prefix_has(const struct ref *r, int family, const uint8_t *addr)
{
	uint8_t a[16];

	if (r->owner < 0 || r->family != family)
		return false;
	memcpy(a, addr, 16);
	clear_host(a, family, r->cidr);
	return !memcmp(a, r->addr, 16);
}

static struct ref *ref_find(int family, const uint8_t *addr, uint8_t cidr)
{
	for (size_t i = 0; i < nrefs; i++)
		if (refs[i].owner >= 0 && refs[i].family == family &&
		    refs[i].cidr == cidr && !memcmp(refs[i].addr, addr, 16))
			return &refs[i];
	return NULL;
}

/* The brute-force reference: the longest live prefix containing addr. */
static int ref_lookup(int family, const uint8_t *addr)
{
	const struct ref *best = NULL;

	for (size_t i = 0; i < nrefs; i++)
		if (prefix_has(&refs[i], family, addr) &&
		    (!best || refs[i].cidr > best->cidr))
			best = &refs[i];
	return best ? best->owner : -1;
}

static size_t ref_count(int owner)
{
	size_t n = 0;

	for (size_t i = 0; i < nrefs; i++)
		n += owner < 0 ? refs[i].owner >= 0 : refs[i].owner == owner;
	return n;
}

static int ref_walk_cb(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	int *owner = ctx;
	uint8_t a[16] = { 0 };
	struct ref *r;

	memcpy(a, addr, family == AF_INET6 ? 16 : 4);
	r = ref_find(family, a, cidr);
	if (!r || r->owner != *owner)
		return -1;
	return 0;
}

static void compare(const struct allowedips *t, int lookups)
{
	uint8_t addr[16];
	int family, want, got;

	check_trie(t);
	assert_int_equal(allowedips_count(t), ref_count(-1));
	for (int i = 0; i < NOWNERS; i++) {
		assert_int_equal(owners[i].count, ref_count(i));
		assert_int_equal(allowedips_walk_owner(&owners[i], ref_walk_cb, &i), 0);
	}
	for (int i = 0; i < lookups; i++) {
		family = rnd_family();
		rnd_addr(family, addr);
		want = ref_lookup(family, addr);
		got = owner_index(allowedips_lookup(t, family, addr));
		if (want != got)
			fail_msg("lookup %d: want owner %d, got %d", i, want, got);
	}
}

/* One random step: mostly inserts, some moves, removals and peer removals. */
static void random_step(struct allowedips *t)
{
	unsigned int dice = rnd_below(200);
	uint8_t addr[16];
	int family = rnd_family(), owner = (int)rnd_below(NOWNERS);
	struct ref *r;
	uint8_t cidr;

	/* Short prefixes are rarer, so that some lookups find nothing. */
	if (family == AF_INET6)
		cidr = (uint8_t)(rnd() & 63 ? 16 + rnd_below(113) : rnd_below(129));
	else
		cidr = (uint8_t)(rnd() & 63 ? 8 + rnd_below(25) : rnd_below(33));

	if (dice < 130 && nrefs < MAXREF) {
		rnd_addr(family, addr);
		assert_int_equal(allowedips_insert(t, family, addr, cidr,
						   &owners[owner]), 0);
		clear_host(addr, family, cidr);
		r = ref_find(family, addr, cidr);
		if (!r) {
			r = &refs[nrefs++];
			r->family = family;
			memcpy(r->addr, addr, 16);
			r->cidr = cidr;
		}
		r->owner = owner;
	} else if (dice < 198 && nrefs) {
		/* Remove an entry, sometimes asking as the wrong owner. */
		r = &refs[rnd_below((unsigned int)nrefs)];
		if (r->owner < 0)
			return;
		if (dice < 140 && owner != r->owner) {
			assert_int_equal(allowedips_remove(t, r->family, r->addr,
							   r->cidr, &owners[owner]),
					 -ENOENT);
			return;
		}
		assert_int_equal(allowedips_remove(t, r->family, r->addr, r->cidr,
						   &owners[r->owner]), 0);
		assert_int_equal(allowedips_remove(t, r->family, r->addr, r->cidr,
						   &owners[r->owner]), -ENOENT);
		r->owner = -1;
	} else {
		allowedips_remove_owner(t, &owners[owner]);
		for (size_t i = 0; i < nrefs; i++)
			if (refs[i].owner == owner)
				refs[i].owner = -1;
	}
}

static void random_run(uint64_t seed, int steps)
{
	struct allowedips *t = allowedips_new();

	rng_state = seed;
	reset_owners();
	nrefs = 0;
	for (int f = 0; f < 2; f++)
		for (int i = 0; i < NBASES; i++)
			for (int j = 0; j < 16; j++)
				bases[f][i][j] = (uint8_t)rnd();
	for (int i = 1; i <= steps; i++) {
		random_step(t);
		if (i % 1000 == 0)
			compare(t, 300);
	}
	compare(t, 20000);

	/* Empty it one prefix at a time: every byte must come back. */
	for (size_t i = 0; i < nrefs; i++)
		if (refs[i].owner >= 0)
			assert_int_equal(allowedips_remove(t, refs[i].family,
							   refs[i].addr, refs[i].cidr,
							   &owners[refs[i].owner]), 0);
	assert_int_equal(allowedips_count(t), 0);
	assert_int_equal(allowedips_memory(t), 0);
	assert_null(t->v4.root);
	assert_null(t->v6.root);
	allowedips_free(t);
}

static void test_random_vs_linear_scan(void **state)
{
	(void)state;
	random_run(0x5eed0001, 15000);
}

static void test_random_vs_linear_scan_other_seed(void **state)
{
	(void)state;
	random_run(0xa110ed1ULL << 20, 15000);
}

/* Fill, then drop every owner; memory must return to zero every cycle. */
static void test_insert_remove_owner_cycles(void **state)
{
	struct allowedips *t = allowedips_new();
	uint8_t addr[16];
	int family;

	(void)state;
	rng_state = 7;
	reset_owners();
	for (int cycle = 0; cycle < 5; cycle++) {
		for (int i = 0; i < 3000; i++) {
			family = rnd_family();
			rnd_addr(family, addr);
			assert_int_equal(allowedips_insert(t, family, addr,
					 (uint8_t)rnd_below(family == AF_INET6 ? 129 : 33),
					 &owners[rnd_below(NOWNERS)]), 0);
		}
		check_trie(t);
		for (int i = 0; i < NOWNERS; i++)
			allowedips_remove_owner(t, &owners[i]);
		assert_int_equal(allowedips_count(t), 0);
		assert_int_equal(allowedips_memory(t), 0);
	}
	allowedips_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_bad_family),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_walk_clears_host_bits),
		cmocka_unit_test(test_move_between_owners),
		cmocka_unit_test(test_node_sizes),
		cmocka_unit_test(test_random_vs_linear_scan),
		cmocka_unit_test(test_random_vs_linear_scan_other_seed),
		cmocka_unit_test(test_insert_remove_owner_cycles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
