// SPDX-License-Identifier: MIT
/*
 * rtnetlink through libmnl (nl.h): one request at a time on one socket,
 * each acknowledged (NLM_F_ACK), the kernel's error returned as a negative
 * errno.
 *
 * Every answer is read to its very end (the ACK, or the DONE of a dump)
 * even after an error, so the next request never meets a stale message;
 * datagrams of an answer we gave up on (after a timeout) are skipped by
 * their sequence number. Reads are bounded in number and in time.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include "nl.h"

enum {
	NL_BUF = 32768,        /* the most the kernel puts in one dump datagram */
	NL_READS_MAX = 100000, /* datagrams per answer; a full BGP table takes ~3000 */
	NL_TIMEOUT_S = 10,     /* per read: the kernel answers at once or not at all */
	DUMP_TRIES = 3,        /* a dump the kernel interrupted (NLM_F_DUMP_INTR) is rerun */
};

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	uint32_t seq;
	/* Holds the request, then each datagram of its answer. */
	_Alignas(struct nlmsghdr) char buf[NL_BUF];
};

int nl_open(struct nl **out)
{
	struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
	struct nl *nl = calloc(1, sizeof(*nl));
	int ret = -ENOMEM;

	if (!nl)
		goto out;
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		ret = -errno;
		goto out;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	/* Any start will do: answers are also matched on our port id. */
	nl->seq = (uint32_t)time(NULL);
	*out = nl;
	nl = NULL;
	ret = 0;
out:
	nl_close(nl);
	return ret;
}

void nl_close(struct nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl);
}

/* A new request in nl->buf, with the next sequence number. */
static struct nlmsghdr *start(struct nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(nl->buf);

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = ++nl->seq;
	return h;
}

/* Adds take NLM_F_EXCL so that an existing object is -EEXIST, not success. */
static uint16_t add_flags(bool add)
{
	return add ? NLM_F_CREATE | NLM_F_EXCL : 0;
}

/* One datagram; -ETIMEDOUT when the kernel stays silent for NL_TIMEOUT_S. */
static ssize_t receive(struct nl *nl)
{
	ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, sizeof(nl->buf));

	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
}

/*
 * Whether this datagram ends the answer to seq: it holds the ACK (or error),
 * or the DONE of a dump. A DONE carries the dump's own error, put in *err.
 */
static bool answer_end(const void *buf, size_t len, uint32_t seq, int *err)
{
	const struct nlmsghdr *h = buf;
	int left = (int)len;

	for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
		if (h->nlmsg_seq != seq)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR)
			return true;
		if (h->nlmsg_type != NLMSG_DONE)
			continue;
		if (mnl_nlmsg_get_payload_len(h) >= sizeof(int))
			memcpy(err, mnl_nlmsg_get_payload(h), sizeof(int));
		return true;
	}
	return false;
}

/* Whether a datagram belongs to the answer to seq (the kernel never mixes answers in one). */
static bool ours(const void *buf, size_t len, uint32_t seq)
{
	const struct nlmsghdr *h = buf;

	return mnl_nlmsg_ok(h, (int)len) && h->nlmsg_seq == seq;
}

/*
 * Send h and run its answer through cb until the end. The first error wins
 * (the kernel's NLMSG_ERROR, a DONE's error, cb's, or -EINTR for an
 * interrupted dump), but the reading goes on to the end of the answer.
 */
static int talk(struct nl *nl, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
	uint32_t seq = h->nlmsg_seq;
	int ret = 0, done_err = 0, reads;
	bool end = false;

	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return -errno;
	for (reads = 0; !end && reads < NL_READS_MAX; reads++) {
		ssize_t n = receive(nl);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		if (!ours(nl->buf, (size_t)n, seq))
			continue;
		end = answer_end(nl->buf, (size_t)n, seq, &done_err);
		if (!ret && mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb, data) < 0)
			ret = -errno;
	}
	if (!ret && done_err)
		ret = done_err < 0 ? done_err : -done_err;
	return ret ? ret : end ? 0 : -EIO;
}

/* A request that is not a dump: answered by its ACK, after cb's messages if any. */
static int request(struct nl *nl, struct nlmsghdr *h, mnl_cb_t cb, void *data)
{
	h->nlmsg_flags |= NLM_F_ACK;
	return talk(nl, h, cb, data);
}

static int link_cb(const struct nlmsghdr *h, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	unsigned int *index = data;

	if (h->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(h) < sizeof(*ifi)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	*index = (unsigned int)ifi->ifi_index;
	return MNL_CB_OK;
}

/* Asked of the kernel through our socket, so that it is the same namespace's answer. */
int nl_link_index(struct nl *nl, const char *ifname, unsigned int *index)
{
	struct nlmsghdr *h;
	struct ifinfomsg *ifi;
	int ret;

	*index = 0;
	/* No link has a longer name; the kernel would say -EINVAL. */
	if (strnlen(ifname, IFNAMSIZ) >= IFNAMSIZ)
		return -ENODEV;
	h = start(nl, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(h, IFLA_IFNAME, ifname);
	ret = request(nl, h, link_cb, index);
	if (!ret && !*index)
		ret = -ENODEV;
	return ret;
}

/* RTM_GETLINK, RTM_NEWLINK or RTM_DELLINK on one link; the caller adds attributes. */
static struct nlmsghdr *link_start(struct nl *nl, uint16_t type, unsigned int ifindex,
				   unsigned int flags, unsigned int change)
{
	struct nlmsghdr *h = start(nl, type, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)ifindex;
	ifi->ifi_flags = flags;
	ifi->ifi_change = change;
	return h;
}

static int mtu_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == IFLA_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		*(unsigned int *)data = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int mtu_cb(const struct nlmsghdr *h, void *data)
{
	if (h->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(h) < sizeof(struct ifinfomsg)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	return mnl_attr_parse(h, sizeof(struct ifinfomsg), mtu_attr_cb, data);
}

int nl_link_mtu(struct nl *nl, unsigned int ifindex, unsigned int *mtu)
{
	struct nlmsghdr *h = link_start(nl, RTM_GETLINK, ifindex, 0, 0);

	*mtu = 0;
	return request(nl, h, mtu_cb, mtu);
}

int nl_link_set_mtu(struct nl *nl, unsigned int ifindex, unsigned int mtu)
{
	struct nlmsghdr *h = link_start(nl, RTM_NEWLINK, ifindex, 0, 0);

	mnl_attr_put_u32(h, IFLA_MTU, mtu);
	return request(nl, h, NULL, NULL);
}

/* ifi_change says which flags to touch: only IFF_UP, whatever the others are. */
int nl_link_set_up(struct nl *nl, unsigned int ifindex, bool up)
{
	struct nlmsghdr *h = link_start(nl, RTM_NEWLINK, ifindex, up ? IFF_UP : 0, IFF_UP);

	return request(nl, h, NULL, NULL);
}

int nl_link_delete(struct nl *nl, unsigned int ifindex)
{
	struct nlmsghdr *h = link_start(nl, RTM_DELLINK, ifindex, 0, 0);

	return request(nl, h, NULL, NULL);
}

/* Bytes of an address of family; 0 for a family we do not route. */
static size_t addr_len(int family)
{
	if (family == AF_INET)
		return 4;
	return family == AF_INET6 ? 16 : 0;
}

int nl_addr(struct nl *nl, bool add, unsigned int ifindex, const struct conf_prefix *p)
{
	size_t len = addr_len(p->family);
	struct nlmsghdr *h;
	struct ifaddrmsg *ifa;

	if (!len)
		return -EAFNOSUPPORT;
	h = start(nl, add ? RTM_NEWADDR : RTM_DELADDR, add_flags(add));
	ifa = mnl_nlmsg_put_extra_header(h, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)p->family;
	ifa->ifa_prefixlen = p->cidr;
	ifa->ifa_index = ifindex;
	/* IPv4 names its own address IFA_LOCAL; an equal IFA_ADDRESS says "no peer". */
	if (p->family == AF_INET)
		mnl_attr_put(h, IFA_LOCAL, len, p->addr);
	mnl_attr_put(h, IFA_ADDRESS, len, p->addr);
	/* A tunnel has nobody to detect duplicates with: the address works at once. */
	if (add && p->family == AF_INET6)
		mnl_attr_put_u32(h, IFA_FLAGS, IFA_F_NODAD);
	return request(nl, h, NULL, NULL);
}

/*
 * The header's table field has 8 bits; RTA_TABLE has the full 32, and the
 * kernel takes it over the header. Larger tables go as RT_TABLE_UNSPEC.
 */
static uint8_t header_table(uint32_t table)
{
	return table <= 0xff ? (uint8_t)table : RT_TABLE_UNSPEC;
}

/*
 * Deleting matches on protocol, scope and link as well, so down removes
 * only the routes up added.
 */
int nl_route(struct nl *nl, bool add, unsigned int ifindex, uint32_t table,
	     const struct conf_prefix *dst)
{
	size_t len = addr_len(dst->family);
	struct conf_prefix net = *dst;
	struct nlmsghdr *h;
	struct rtmsg *rt;

	if (!len)
		return -EAFNOSUPPORT;
	/* The kernel refuses a route to a prefix with host bits. */
	conf_prefix_clear_host_bits(&net);
	h = start(nl, add ? RTM_NEWROUTE : RTM_DELROUTE, add_flags(add));
	rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));
	rt->rtm_family = (uint8_t)dst->family;
	rt->rtm_dst_len = dst->cidr;
	rt->rtm_table = header_table(table);
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(h, RTA_TABLE, table);
	/* A default route (cidr 0) has no destination at all. */
	if (dst->cidr)
		mnl_attr_put(h, RTA_DST, len, net.addr);
	mnl_attr_put_u32(h, RTA_OIF, ifindex);
	return request(nl, h, NULL, NULL);
}

/*
 * Without a priority the kernel picks one below the first rule's (a new
 * rule each time), so NLM_F_EXCL finds no duplicate; a delete without one
 * removes the first rule that matches.
 */
int nl_rule(struct nl *nl, bool add, const struct nl_rule *r)
{
	struct nlmsghdr *h;
	struct fib_rule_hdr *f;

	if (!addr_len(r->family))
		return -EAFNOSUPPORT;
	h = start(nl, add ? RTM_NEWRULE : RTM_DELRULE, add_flags(add));
	f = mnl_nlmsg_put_extra_header(h, sizeof(*f));
	f->family = (uint8_t)r->family;
	f->action = FR_ACT_TO_TBL;
	f->table = header_table(r->table);
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
	return request(nl, h, NULL, NULL);
}

struct table_query {
	uint32_t table;
	bool used;
};

static int route_table_attr(const struct nlattr *a, void *data)
{
	uint32_t *table = data;

	if (mnl_attr_get_type(a) == RTA_TABLE && mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
		*table = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

/* Tables above 255 show as RT_TABLE_COMPAT in the header: RTA_TABLE has the real one. */
static int route_cb(const struct nlmsghdr *h, void *data)
{
	const struct rtmsg *rt = mnl_nlmsg_get_payload(h);
	struct table_query *q = data;
	uint32_t table;

	if (h->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(h) < sizeof(*rt)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	table = rt->rtm_table;
	mnl_attr_parse(h, sizeof(*rt), route_table_attr, &table);
	if (table == q->table)
		q->used = true;
	return MNL_CB_OK;
}

/* On an error *used is true: a caller looking for a free table skips this one. */
int nl_table_used(struct nl *nl, int family, uint32_t table, bool *used)
{
	struct table_query q = { .table = table };
	int ret = -EINTR, tries;

	/* Routes changing during the dump make it inconsistent: run it again. */
	for (tries = 0; ret == -EINTR && tries < DUMP_TRIES; tries++) {
		struct nlmsghdr *h = start(nl, RTM_GETROUTE, NLM_F_DUMP);
		struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof(*rt));

		rt->rtm_family = (uint8_t)family;
		q.used = false;
		ret = talk(nl, h, route_cb, &q);
	}
	*used = ret ? true : q.used;
	return ret;
}
