// SPDX-License-Identifier: MIT
/*
 * rtnetlink through libmnl (nl.h): one request at a time, each
 * acknowledged, the kernel's error returned as a negative errno.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "nl.h"

enum { DUMP_MAX_READS = 100000, NL_BUF = 32768 };

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	uint32_t seq;
	char buf[NL_BUF]; /* at least a page, as libmnl advises */
};

int nl_open(struct nl **out)
{
	struct nl *nl = calloc(1, sizeof(*nl));
	int ret;

	if (!nl)
		return -ENOMEM;
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		if (nl->sock)
			mnl_socket_close(nl->sock);
		free(nl);
		return ret;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	*out = nl;
	return 0;
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	free(nl);
}

static struct nlmsghdr *start(struct nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf);

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++nl->seq;
	return h;
}

/* Send, run the answers through cb until the ACK (or DONE for a dump). */
static int talk(struct nl *nl, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
	uint32_t seq = h->nlmsg_seq;
	int ret = MNL_CB_OK, reads;

	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return -errno;
	for (reads = 0; ret > MNL_CB_STOP && reads < DUMP_MAX_READS; reads++) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb, data);
	}
	if (ret < 0)
		return -errno;
	return ret == MNL_CB_STOP ? 0 : -EIO;
}

/* Requests without a dump end with an ACK, which mnl_cb_run reports as STOP. */
static int request(struct nl *nl, struct nlmsghdr *h)
{
	h->nlmsg_flags |= NLM_F_ACK;
	return talk(nl, h, NULL, NULL);
}

int nl_link_index(struct nl *nl, const char *ifname, unsigned int *index)
{
	(void)nl;
	*index = if_nametoindex(ifname);
	return *index ? 0 : -ENODEV;
}

static int link_change(struct nl *nl, unsigned int ifindex, uint16_t type, unsigned int flags,
		       unsigned int change, int mtu)
{
	struct nlmsghdr *h = start(nl, type, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
	if (mtu > 0)
		mnl_attr_put_u32(h, IFLA_MTU, (uint32_t)mtu);
	return request(nl, h);
}

int nl_link_set_mtu(struct nl *nl, unsigned int ifindex, unsigned int mtu)
{
	return link_change(nl, ifindex, RTM_NEWLINK, 0, 0, (int)mtu);
}

int nl_link_set_up(struct nl *nl, unsigned int ifindex, bool up)
{
	return link_change(nl, ifindex, RTM_NEWLINK, up ? IFF_UP : 0, IFF_UP, 0);
}

int nl_link_delete(struct nl *nl, unsigned int ifindex)
{
	return link_change(nl, ifindex, RTM_DELLINK, 0, 0, 0);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

int nl_addr(struct nl *nl, bool add, unsigned int ifindex, const struct conf_prefix *p)
{
	struct nlmsghdr *h = start(nl, add ? RTM_NEWADDR : RTM_DELADDR,
				   add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof(*ifa));

	ifa->ifa_family = (uint8_t)p->family;
	ifa->ifa_prefixlen = p->cidr;
	ifa->ifa_index = ifindex;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	mnl_attr_put(h, IFA_LOCAL, addr_len(p->family), p->addr);
	mnl_attr_put(h, IFA_ADDRESS, addr_len(p->family), p->addr);
	/* A tunnel has nobody to detect duplicates with: the address works at once. */
	if (p->family == AF_INET6 && add)
		mnl_attr_put_u32(h, IFA_FLAGS, IFA_F_NODAD);
	return request(nl, h);
}

int nl_route(struct nl *nl, bool add, unsigned int ifindex, uint32_t table,
	     const struct conf_prefix *dst)
{
	struct nlmsghdr *h = start(nl, add ? RTM_NEWROUTE : RTM_DELROUTE,
				   add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));
	struct conf_prefix p = *dst;
	size_t i;

	/* The kernel refuses a destination with host bits set. */
	for (i = 0; i < addr_len(p.family); i++) {
		unsigned int bits = p.cidr > i * 8 ? p.cidr - (unsigned int)i * 8 : 0;

		if (bits < 8)
			p.addr[i] &= (uint8_t)(0xff00 >> bits);
	}
	rt->rtm_family = (uint8_t)p.family;
	rt->rtm_dst_len = p.cidr;
	rt->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(h, RTA_TABLE, table);
	if (p.cidr)
		mnl_attr_put(h, RTA_DST, addr_len(p.family), p.addr);
	if (ifindex)
		mnl_attr_put_u32(h, RTA_OIF, ifindex);
	return request(nl, h);
}

int nl_rule(struct nl *nl, bool add, const struct nl_rule *r)
{
	struct nlmsghdr *h = start(nl, add ? RTM_NEWRULE : RTM_DELRULE,
				   add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	struct fib_rule_hdr *f = mnl_nlmsg_put_extra_header(h, sizeof(*f));

	f->family = (uint8_t)r->family;
	f->action = FR_ACT_TO_TBL;
	f->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	if (r->invert)
		f->flags |= FIB_RULE_INVERT;
	mnl_attr_put_u32(h, FRA_TABLE, r->table);
	if (r->priority)
		mnl_attr_put_u32(h, FRA_PRIORITY, r->priority);
	if (r->has_fwmark) {
		mnl_attr_put_u32(h, FRA_FWMARK, r->fwmark);
		mnl_attr_put_u32(h, FRA_FWMASK, 0xffffffff);
	}
	if (r->suppress_prefixlen >= 0)
		mnl_attr_put_u32(h, FRA_SUPPRESS_PREFIXLEN, (uint32_t)r->suppress_prefixlen);
	return request(nl, h);
}

struct table_query {
	uint32_t table;
	bool used;
};

static int route_attr(const struct nlattr *a, void *data)
{
	struct table_query *q = data;

	if (mnl_attr_get_type(a) == RTA_TABLE && mnl_attr_validate(a, MNL_TYPE_U32) >= 0 &&
	    mnl_attr_get_u32(a) == q->table)
		q->used = true;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *h, void *data)
{
	const struct rtmsg *rt = mnl_nlmsg_get_payload(h);
	struct table_query *q = data;

	if (rt->rtm_table == q->table)
		q->used = true;
	mnl_attr_parse(h, sizeof(*rt), route_attr, q);
	return MNL_CB_OK;
}

int nl_table_used(struct nl *nl, int family, uint32_t table, bool *used)
{
	struct nlmsghdr *h = start(nl, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));
	struct table_query q = { table, false };
	int ret;

	rt->rtm_family = (uint8_t)family;
	ret = talk(nl, h, route_cb, &q);
	*used = q.used;
	return ret;
}
