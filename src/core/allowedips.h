/* SPDX-License-Identifier: MIT */
/*
 * Allowed IPs: the cryptokey routing table (the WireGuard paper, section 2).
 * Two longest-prefix-match tables, one for IPv4 and one for IPv6, map
 * prefixes to owners (peers). A prefix belongs to at most one owner;
 * overlapping prefixes of different lengths may belong to different owners.
 *
 * Each table is a path-compressed binary trie. A node is either a prefix
 * carrying an owner or a bare branching node that exists only because two
 * subtrees diverge at its bit. Branching nodes store no key, so they cost
 * 24 bytes; prefix nodes cost 48 (IPv4) or 64 (IPv6) bytes. There are fewer
 * branching nodes than prefixes, which bounds the cost of one prefix by
 * 72 (IPv4) or 88 (IPv6) bytes.
 *
 * Not thread-safe: the caller serialises writers against readers.
 */
#ifndef VEIL_ALLOWEDIPS_H
#define VEIL_ALLOWEDIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

struct allowedips_node;

/*
 * Embedded by the caller in its peer struct, zero-initialised. head is the
 * first of the owner's prefix nodes, which are doubly linked through the
 * nodes themselves, so removing one prefix is O(1) in the list and removing
 * a peer is O(its prefixes x trie depth), independent of the table size.
 * count is the number of prefixes the owner holds. Both are maintained by
 * this module; the caller only reads count.
 */
struct allowedips_owner {
	struct allowedips_node *head;
	size_t count;
};

/*
 * Prefixes one table holds at most, all owners together: twice the million
 * that make bench measures (about 90 bytes each, in locked memory). The
 * kernel module has no such limit; a daemon whose control socket may add
 * prefixes for ever must have one.
 */
#define ALLOWEDIPS_MAX (1u << 21)

/* Opaque: one IPv4 and one IPv6 trie plus accounting. */
struct allowedips;

/* Returns NULL when out of memory. */
struct allowedips *allowedips_new(void);

/*
 * Frees every node and the table. Owners that held prefixes are left with
 * dangling lists: the caller must zero them (or free them) afterwards.
 */
void allowedips_free(struct allowedips *t);

/*
 * family is AF_INET (addr: 4 bytes, network order) or AF_INET6 (16 bytes).
 * Bits beyond cidr are ignored. Inserting a prefix that another owner holds
 * moves it to this owner. Returns 0, -EINVAL (bad family, cidr too long, no
 * owner), -ENOSPC (a new prefix, and the table holds ALLOWEDIPS_MAX) or
 * -ENOMEM (the table is unchanged).
 */
int __must_check allowedips_insert(struct allowedips *t, int family,
				   const uint8_t *addr, uint8_t cidr,
				   struct allowedips_owner *owner);

/*
 * Removes exactly that prefix, and only if owner holds it. Returns 0 when
 * removed, -ENOENT when absent or held by another owner, -EINVAL on a bad
 * family or cidr. Never allocates in a way that can fail the removal.
 */
int allowedips_remove(struct allowedips *t, int family, const uint8_t *addr,
		      uint8_t cidr, const struct allowedips_owner *owner);

/* Removes every prefix of owner; owner is left empty. */
void allowedips_remove_owner(struct allowedips *t, struct allowedips_owner *owner);

/*
 * Longest-prefix match of a full address (4 or 16 bytes); NULL if nothing
 * matches or the family is unknown. The data path calls this once per
 * packet: it does not allocate or write.
 */
struct allowedips_owner *allowedips_lookup(const struct allowedips *t,
					   int family, const uint8_t *addr);

/*
 * Calls cb once per prefix of owner, with host bits cleared, most recently
 * added first. Stops at and returns the first non-zero value cb returns;
 * returns 0 otherwise. cb must not modify the table.
 */
int allowedips_walk_owner(const struct allowedips_owner *owner,
			  int (*cb)(void *ctx, int family, const uint8_t *addr,
				    uint8_t cidr),
			  void *ctx);

/* Number of prefixes stored, both families. */
size_t allowedips_count(const struct allowedips *t);

/* Bytes requested from malloc for trie nodes (not the table header). */
size_t allowedips_memory(const struct allowedips *t);

#endif
