/* SPDX-License-Identifier: MIT */
/*
 * rtnetlink through libmnl: what `veilctl up` and `down` do to links,
 * addresses, routes and policy rules, without ip(8) and without a shell.
 * Every call returns 0 or a negative errno from the kernel's answer
 * (-EEXIST when adding what exists, -ENOENT/-ESRCH/-EADDRNOTAVAIL when
 * deleting what does not).
 */
#ifndef VEILCTL_NL_H
#define VEILCTL_NL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct nl;

int nl_open(struct nl **out);
void nl_close(struct nl *nl);

int nl_link_index(struct nl *nl, const char *ifname, unsigned int *index);
int nl_link_mtu(struct nl *nl, unsigned int ifindex, unsigned int *mtu);
int nl_link_set_mtu(struct nl *nl, unsigned int ifindex, unsigned int mtu);
int nl_link_set_up(struct nl *nl, unsigned int ifindex, bool up);
int nl_link_delete(struct nl *nl, unsigned int ifindex);

/* An address on a link (p->cidr is the prefix length). */
int nl_addr(struct nl *nl, bool add, unsigned int ifindex, const struct conf_prefix *p);

/* A route to dst through the link, in table (RT_TABLE_MAIN = 254), scope link. */
int nl_route(struct nl *nl, bool add, unsigned int ifindex, uint32_t table,
	     const struct conf_prefix *dst);

struct nl_rule {
	int family;          /* AF_INET or AF_INET6 */
	uint32_t priority;   /* 0: let the kernel choose */
	uint32_t table;
	bool has_fwmark;
	uint32_t fwmark;
	bool invert;         /* "not fwmark MARK" */
	int suppress_prefixlen; /* -1: none */
};

int nl_rule(struct nl *nl, bool add, const struct nl_rule *rule);

/* Whether any route of family exists in table (to pick a free table like wg-quick does). */
int nl_table_used(struct nl *nl, int family, uint32_t table, bool *used);

#endif
