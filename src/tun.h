/* SPDX-License-Identifier: MIT */
/* The Linux TUN device: IFF_TUN | IFF_NO_PI, one IP packet per read/write. */
#ifndef VEIL_TUN_H
#define VEIL_TUN_H

#include <stddef.h>

/* Creates (or attaches to) ifname; returns the fd or a negative errno. */
int tun_open(const char *ifname);
/* MTU through SIOCSIFMTU / SIOCGIFMTU on an AF_INET datagram socket. */
int tun_set_mtu(const char *ifname, unsigned int mtu);
int tun_get_mtu(const char *ifname, unsigned int *mtu);
int tun_ifindex(const char *ifname);

#endif
