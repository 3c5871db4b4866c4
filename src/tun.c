// SPDX-License-Identifier: MIT
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_flags(const char *ifname, short flags)
{
	struct ifreq ifr;
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = flags;
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/*
 * With offloads, reads and writes carry a virtio_net_hdr, and the kernel
 * may hand over TCP segments of up to 64 KB whose checksums are left to us
 * (TSO4, TSO6, CSUM; ECN-marked ones it cuts itself), and since Linux 6.2
 * UDP_SEGMENT trains (USO4, USO6), which we may also write to it. A kernel
 * that takes the header but not the offloads still gets the header on
 * every packet.
 */
/* Linux 6.2's UDP segmentation offload, newer than Debian 12's headers. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

int tun_open(const char *ifname, bool want_offload, enum tun_mode *mode)
{
	const unsigned int tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
	int fd;

	*mode = TUN_PLAIN;
	if (strlen(ifname) >= IFNAMSIZ)
		return -ENAMETOOLONG;
	if (want_offload) {
		fd = open_flags(ifname, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
		if (fd >= 0) {
			if (ioctl(fd, TUNSETOFFLOAD, tso | TUN_F_USO4 | TUN_F_USO6) == 0)
				*mode = TUN_USO;
			else if (ioctl(fd, TUNSETOFFLOAD, tso) == 0)
				*mode = TUN_TSO;
			else
				*mode = TUN_VNET;
			return fd;
		}
	}
	return open_flags(ifname, IFF_TUN | IFF_NO_PI);
}

static int ifreq_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (s < 0)
		return -errno;
	memset(ifr->ifr_name, 0, IFNAMSIZ);
	strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
	if (ioctl(s, req, ifr) < 0)
		err = -errno;
	close(s);
	return err;
}

int tun_set_mtu(const char *ifname, unsigned int mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return ifreq_ioctl(ifname, SIOCSIFMTU, &ifr);
}

int tun_get_mtu(const char *ifname, unsigned int *mtu)
{
	struct ifreq ifr;
	int err;

	memset(&ifr, 0, sizeof(ifr));
	err = ifreq_ioctl(ifname, SIOCGIFMTU, &ifr);
	if (!err)
		*mtu = (unsigned int)ifr.ifr_mtu;
	return err;
}

int tun_ifindex(const char *ifname)
{
	unsigned int i = if_nametoindex(ifname);

	return i ? (int)i : -errno;
}
