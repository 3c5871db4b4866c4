// SPDX-License-Identifier: MIT
/*
 * Allowed-IPs benchmark: a million prefixes per family spread over ten
 * thousand owners, then millions of lookups, the way the data path calls
 * them. Prints figures; exits non-zero only if a result is wrong (a lookup
 * that must hit misses, or memory is left after removing every owner).
 */
#include "core/allowedips.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum {
	NPREFIXES = 1000000,
	NOWNERS = 10000,
	NADDRS = 1 << 20,	/* lookup addresses per measurement */
	NROUNDS = 1,		/* passes over them */
	NSMALL = 10000,		/* prefixes in the small-table comparison */
	NCHECK = 20000,		/* last inserts checked for correctness */
};

struct prefix {
	uint8_t addr[16];
	uint8_t cidr;
	uint32_t owner;
};

static struct allowedips_owner owners[NOWNERS];
/* An owner belongs to one table, so the small table has its own. */
static struct allowedips_owner small_owners[NOWNERS];
static uint64_t rng_state = 0x0a11d3d1b5ULL;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_in_use(void)
{
	return mallinfo2().uordblks;
}

static void rnd_bytes(uint8_t *p, size_t len)
{
	uint64_t r = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			r = rnd();
		p[i] = (uint8_t)r;
		r >>= 8;
	}
}

/* An address inside p: its first cidr bits, then random bits. */
static void inside(const struct prefix *p, uint8_t *addr, size_t len)
{
	rnd_bytes(addr, len);
	for (size_t i = 0; i < len; i++) {
		unsigned int from = 8 * (unsigned int)i;

		if (p->cidr >= from + 8)
			addr[i] = p->addr[i];
		else if (p->cidr > from)
			addr[i] = (uint8_t)((p->addr[i] & (0xff00 >> (p->cidr - from))) |
					    (addr[i] & (0xff >> (p->cidr - from))));
	}
}

/* Times NROUNDS passes of lookups over addrs; returns lookups per second. */
static double time_lookups(const struct allowedips *t, int family,
			   const uint8_t *addrs, size_t len, size_t *hits)
{
	double start = now();

	*hits = 0;
	for (int round = 0; round < NROUNDS; round++)
		for (size_t i = 0; i < NADDRS; i++)
			*hits += allowedips_lookup(t, family, addrs + i * len) != NULL;
	return (double)NROUNDS * NADDRS / (now() - start);
}

/*
 * The same lookups against a table of NSMALL prefixes, which fits in cache:
 * at a million random prefixes every lookup is a chain of about twenty
 * dependent cache misses, and this shows what the trie costs without them.
 */
static double small_table(int family, const struct prefix *p, uint8_t *addrs,
			  size_t len)
{
	struct allowedips *t = allowedips_new();
	double rate = 0;
	size_t hits;

	if (!t)
		return 0;
	for (size_t i = 0; i < NSMALL; i++)
		if (allowedips_insert(t, family, p[i].addr, p[i].cidr,
				      &small_owners[p[i].owner]))
			goto out;
	for (size_t i = 0; i < NADDRS; i++)
		inside(&p[rnd() % NSMALL], addrs + i * len, len);
	rate = time_lookups(t, family, addrs, len, &hits);
	if (hits != (size_t)NROUNDS * NADDRS)
		rate = 0;
out:
	allowedips_free(t);
	memset(small_owners, 0, sizeof(small_owners));
	return rate;
}

static int bench_family(int family, unsigned int min_cidr)
{
	size_t len = family == AF_INET6 ? 16 : 4, n = 0, heap0, heap1, hits;
	unsigned int bits = 8 * (unsigned int)len;
	struct prefix *p = calloc(2 * NPREFIXES, sizeof(*p));
	uint8_t *addrs = malloc(NADDRS * len);
	struct allowedips *t = allowedips_new();
	const char *name = family == AF_INET6 ? "IPv6" : "IPv4";
	double start, ins, rm, rm1, rate_random, rate_inside, rate_small;
	size_t hits_random, count, mem;
	int ret = 1;

	if (!p || !addrs || !t)
		goto out;
	memset(owners, 0, sizeof(owners));

	/* Short prefixes repeat, so keep going until a million are stored. */
	heap0 = heap_in_use();
	start = now();
	while (allowedips_count(t) < NPREFIXES && n < 2 * NPREFIXES) {
		rnd_bytes(p[n].addr, len);
		p[n].cidr = (uint8_t)(min_cidr + rnd() % (bits - min_cidr + 1));
		p[n].owner = (uint32_t)(rnd() % NOWNERS);
		if (allowedips_insert(t, family, p[n].addr, p[n].cidr,
				      &owners[p[n].owner])) {
			fprintf(stderr, "%s: insert failed\n", name);
			goto out;
		}
		n++;
	}
	ins = now() - start;
	heap1 = heap_in_use();
	count = allowedips_count(t);
	mem = allowedips_memory(t);

	/*
	 * A full-length prefix is the longest match for its own address, and
	 * nothing inserted later can have taken it; any other stored prefix
	 * must at least match something.
	 */
	for (size_t i = n - NCHECK; i < n; i++) {
		uint8_t a[16];
		struct allowedips_owner *o;

		inside(&p[i], a, len);
		o = allowedips_lookup(t, family, a);
		if (!o || (p[i].cidr == bits && o != &owners[p[i].owner])) {
			fprintf(stderr, "%s: wrong lookup for prefix %zu\n", name, i);
			goto out;
		}
	}

	rnd_bytes(addrs, NADDRS * len);
	rate_random = time_lookups(t, family, addrs, len, &hits_random);
	for (size_t i = 0; i < NADDRS; i++)
		inside(&p[rnd() % n], addrs + i * len, len);
	rate_inside = time_lookups(t, family, addrs, len, &hits);
	if (hits != (size_t)NROUNDS * NADDRS) {
		fprintf(stderr, "%s: an address inside a prefix missed\n", name);
		goto out;
	}

	rate_small = small_table(family, p, addrs, len);
	if (rate_small == 0) {
		fprintf(stderr, "%s: small table lookups failed\n", name);
		goto out;
	}

	/* One peer among a million prefixes, then everybody. */
	start = now();
	allowedips_remove_owner(t, &owners[0]);
	rm1 = now() - start;
	start = now();
	for (int i = 0; i < NOWNERS; i++)
		allowedips_remove_owner(t, &owners[i]);
	rm = now() - start;
	if (allowedips_count(t) || allowedips_memory(t)) {
		fprintf(stderr, "%s: %zu prefixes, %zu bytes left after removal\n",
			name, allowedips_count(t), allowedips_memory(t));
		goto out;
	}

	printf("%s: %zu prefixes (/%u../%u) from %zu inserts over %d owners\n",
	       name, count, min_cidr, bits, n, NOWNERS);
	printf("  insert:  %.2f s, %.0f ns per insert\n", ins,
	       ins * 1e9 / (double)n);
	printf("  memory:  %.1f bytes/prefix (trie's count), %.1f (malloc's, with chunk overhead)\n",
	       (double)mem / (double)count, (double)(heap1 - heap0) / (double)count);
	printf("  lookup:  %.2f M/s random addresses (%.0f%% matched), %.2f M/s inside stored prefixes\n",
	       rate_random / 1e6, 100.0 * (double)hits_random / (NROUNDS * (double)NADDRS),
	       rate_inside / 1e6);
	printf("  lookup:  %.2f M/s inside prefixes of a %d-prefix table\n",
	       rate_small / 1e6, NSMALL);
	printf("  remove:  one owner (~%d prefixes) %.1f us, all owners %.2f s\n",
	       (int)(count / NOWNERS), rm1 * 1e6, rm);
	ret = 0;
out:
	allowedips_free(t);
	free(addrs);
	free(p);
	return ret;
}

int main(void)
{
	if (bench_family(AF_INET, 8) || bench_family(AF_INET6, 16))
		return 1;
	return 0;
}
