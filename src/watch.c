// SPDX-License-Identifier: MIT
/*
 * Following the interface from outside: its MTU, changed with ip(8) by
 * wg-quick or an operator and heard on rtnetlink's link group, and the
 * control socket's file, whose removal stops the daemon.
 */
#include "daemon_int.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "log.h"

void watch__set_mtu(struct daemon *d, unsigned int mtu)
{
	if (mtu > PKT_CAP)
		log_error("%s: MTU %u is above the %d bytes veil carries: larger packets are dropped",
			  d->cfg->ifname, mtu, PKT_CAP);
	wg_device_set_mtu(d->wg, mtu);
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
		return MNL_CB_OK;
	tb[type] = attr;
	return MNL_CB_OK;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct daemon *d = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };

	if (nlh->nlmsg_type != RTM_NEWLINK || (unsigned int)ifi->ifi_index != d->ifindex)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, tb);
	if (tb[IFLA_MTU]) {
		unsigned int mtu = mnl_attr_get_u32(tb[IFLA_MTU]);

		if (mtu != wg_device_mtu(d->wg)) {
			log_info("%s: MTU is now %u", d->cfg->ifname, mtu);
			watch__set_mtu(d, mtu);
		}
	}
	return MNL_CB_OK;
}

/*
 * wg-quick and operators change the MTU with ip(8); padding must follow it
 * (it never pads past the MTU: the kernel's calculate_skb_padding in
 * drivers/net/wireguard/send.c), so we listen to rtnetlink's link group as
 * wireguard-go does.
 */
static void netlink_cb(uv_poll_t *h, int status, int events)
{
	struct daemon *d = container_of(h, struct daemon, nl_poll);
	char buf[8192];
	ssize_t n;
	int i;

	(void)events;
	if (status < 0)
		return;
	for (i = 0; i < 16; i++) {
		n = mnl_socket_recvfrom(d->nl, buf, sizeof(buf));
		if (n <= 0)
			break;
		mnl_cb_run(buf, (size_t)n, 0, 0, link_msg_cb, d);
	}
}

void watch__netlink(struct daemon *d)
{
	int fd;

	d->ifindex = if_nametoindex(d->cfg->ifname);
	d->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!d->nl || mnl_socket_bind(d->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		log_error("%s: cannot watch rtnetlink (%s): MTU changes will not be followed",
			  d->cfg->ifname, strerror(errno));
		if (d->nl)
			mnl_socket_close(d->nl);
		d->nl = NULL;
		return;
	}
	fd = mnl_socket_get_fd(d->nl);
	if (uv_poll_init(&d->loop, &d->nl_poll, fd) == 0)
		uv_poll_start(&d->nl_poll, UV_READABLE, netlink_cb);
}

/* Deleting the control socket stops the daemon, as the cross-platform page asks. */
void watch__sock_watch_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
	struct daemon *d = container_of(h, struct daemon, sock_watch);
	struct stat st;

	(void)name;
	(void)events;
	if (status < 0 || stat(d->cfg->uapi_path, &st) == 0)
		return;
	log_info("%s: control socket %s removed, shutting down", d->cfg->ifname,
		 d->cfg->uapi_path);
	stop(d, 0);
}
