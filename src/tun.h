/* SPDX-License-Identifier: MIT */
/*
 * The Linux TUN device: IFF_TUN | IFF_NO_PI, one IP packet per read/write,
 * after a virtio_net_hdr when offloads are on (src/offload.h).
 */
#ifndef VEIL_TUN_H
#define VEIL_TUN_H

#include <stdbool.h>
#include <stddef.h>

enum tun_mode {
	TUN_PLAIN, /* bare packets */
	TUN_VNET,  /* a virtio_net_hdr on each packet, the kernel refused the offloads */
	TUN_TSO,   /* a virtio_net_hdr, TCP segments up to 64 KB, checksums left to us */
	TUN_USO,   /* TUN_TSO, and UDP trains both ways */
};

/*
 * Creates (or attaches to) ifname; returns the fd or a negative errno, and
 * in *mode what reads and writes carry.
 */
int tun_open(const char *ifname, bool want_offload, enum tun_mode *mode);
/* MTU through SIOCSIFMTU / SIOCGIFMTU on an AF_INET datagram socket. */
int tun_set_mtu(const char *ifname, unsigned int mtu);
int tun_get_mtu(const char *ifname, unsigned int *mtu);
int tun_ifindex(const char *ifname);

#endif
