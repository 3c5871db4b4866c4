// SPDX-License-Identifier: MIT
#include "udp.h"

#include <errno.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
	CMSG_SPACE_MAX = 96, /* a pktinfo and a UDP_SEGMENT */
	BATCH_MAX = 128,
	GSO_SEGMENTS_MAX = 64,  /* UDP_MAX_SEGMENTS of older kernels */
	GSO_BYTES_MAX = 65000,  /* one skb: under 64 KB with the headers */
};

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/*
 * Bursts of a batch per wake-up overflow the default socket buffers (about
 * 200 KB); ask for 7 MB as wireguard-go does, past rmem_max when we may.
 */
static void set_buffers(int fd)
{
	int size = 7 << 20;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int open_one(int family, uint16_t port, uint32_t fwmark, bool offload, uint16_t *bound)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} a;
	socklen_t len;
	int fd, one = 1, err;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
		len = sizeof(a.in4);
		if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0)
			goto fail;
	} else {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		len = sizeof(a.in6);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0)
			goto fail;
	}
	if (fwmark && setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0)
		goto fail;
	set_buffers(fd);
	/*
	 * GRO: a train sent with UDP_SEGMENT (ours) crosses a veth or loopback
	 * whole and arrives as one read, its segment size in a UDP_GRO cmsg.
	 * Without it the kernel cuts the train up for this socket.
	 */
	if (offload)
		setsockopt(fd, IPPROTO_UDP, UDP_GRO, &one, sizeof(one));
	if (bind(fd, &a.sa, len) < 0 || getsockname(fd, &a.sa, &len) < 0)
		goto fail;
	*bound = ntohs(family == AF_INET ? a.in4.sin_port : a.in6.sin6_port);
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int udp_open(struct udp_sockets *u, uint16_t port, uint32_t fwmark, bool offload)
{
	uint16_t bound = 0;
	int tries, fd4 = -1, fd6 = -1;

	/* With port 0 the v6 bind can lose a race for the v4 port: retry a few times. */
	for (tries = 0; tries < 10; tries++) {
		fd4 = open_one(AF_INET, port, fwmark, offload, &bound);
		if (fd4 < 0 && fd4 != -EAFNOSUPPORT)
			return fd4;
		fd6 = open_one(AF_INET6, fd4 >= 0 ? bound : port, fwmark, offload, &bound);
		if (fd6 >= 0 || fd6 == -EAFNOSUPPORT)
			break;
		if (fd4 >= 0)
			close(fd4);
		if (port || fd6 != -EADDRINUSE)
			return fd6;
	}
	if (tries == 10)
		return -EADDRINUSE; /* fd4 is already closed */
	if (fd4 < 0 && fd6 < 0)
		return -EAFNOSUPPORT;
	u->fd4 = fd4;
	u->fd6 = fd6 >= 0 ? fd6 : -1;
	u->port = bound;
	u->fwmark = fwmark;
	u->offload = offload;
	u->no_gso = !offload;
	return 0;
}

void udp_close(struct udp_sockets *u)
{
	if (u->fd4 >= 0)
		close(u->fd4);
	if (u->fd6 >= 0)
		close(u->fd6);
	u->fd4 = u->fd6 = -1;
}

int udp_set_fwmark(struct udp_sockets *u, uint32_t fwmark)
{
	if (u->fd4 >= 0 && setsockopt(u->fd4, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0)
		return -errno;
	if (u->fd6 >= 0 && setsockopt(u->fd6, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) < 0)
		return -errno;
	u->fwmark = fwmark;
	return 0;
}

static void read_cmsgs(struct msghdr *mh, struct udp_msg *m)
{
	struct wg_endpoint *ep = &m->ep;
	struct cmsghdr *c;

	ep->has_src = false;
	m->seg = 0;
	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
			int size;

			memcpy(&size, CMSG_DATA(c), sizeof(size));
			m->seg = size > 0 ? (size_t)size : 0;
		} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			ep->src.v4 = pi.ipi_addr;
			ep->src_ifindex = (unsigned int)pi.ipi_ifindex;
			ep->has_src = true;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			ep->src.v6 = pi.ipi6_addr;
			ep->src_ifindex = pi.ipi6_ifindex;
			ep->has_src = true;
		}
	}
}

int udp_recv_batch(int fd, struct udp_msg *msgs, unsigned int n)
{
	struct mmsghdr mm[BATCH_MAX];
	struct iovec iov[BATCH_MAX];
	/* cppcheck-suppress constVariable ; recvmmsg writes it through msg_control. */
	uint8_t cbuf[BATCH_MAX][CMSG_SPACE_MAX];
	unsigned int i;
	int got;

	if (n > BATCH_MAX)
		n = BATCH_MAX;
	memset(mm, 0, sizeof(mm[0]) * n);
	for (i = 0; i < n; i++) {
		iov[i].iov_base = msgs[i].buf;
		iov[i].iov_len = msgs[i].len;
		mm[i].msg_hdr.msg_name = &msgs[i].ep.addr;
		mm[i].msg_hdr.msg_namelen = sizeof(msgs[i].ep.addr);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = cbuf[i];
		mm[i].msg_hdr.msg_controllen = CMSG_SPACE_MAX;
	}
	got = recvmmsg(fd, mm, n, MSG_DONTWAIT, NULL);
	if (got < 0)
		return -errno;
	for (i = 0; i < (unsigned int)got; i++) {
		msgs[i].len = mm[i].msg_len;
		/* A datagram larger than the buffer is damaged: make it unparseable. */
		if (mm[i].msg_hdr.msg_flags & MSG_TRUNC)
			msgs[i].len = 0;
		read_cmsgs(&mm[i].msg_hdr, &msgs[i]);
	}
	return got;
}

static size_t write_pktinfo(const struct wg_endpoint *ep, uint8_t *cbuf)
{
	struct cmsghdr *c = (struct cmsghdr *)(void *)cbuf;

	if (!ep->has_src)
		return 0;
	memset(cbuf, 0, CMSG_SPACE_MAX);
	if (ep->addr.sa.sa_family == AF_INET) {
		struct in_pktinfo pi = { .ipi_spec_dst = ep->src.v4 };

		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	{
		struct in6_pktinfo pi = { .ipi6_addr = ep->src.v6, .ipi6_ifindex = ep->src_ifindex };

		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
}

static int fd_for(struct udp_sockets *u, const struct wg_endpoint *ep)
{
	return ep->addr.sa.sa_family == AF_INET6 ? u->fd6 : u->fd4;
}

static socklen_t name_len(const struct wg_endpoint *ep)
{
	return ep->addr.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						 : sizeof(struct sockaddr_in);
}

int udp_send(struct udp_sockets *u, const struct wg_endpoint *ep, const uint8_t *buf, size_t len)
{
	uint8_t cbuf[CMSG_SPACE_MAX];
	/*
	 * NOLINTBEGIN(performance-no-int-to-ptr): sendmsg never writes through
	 * these; the uintptr_t round trip only drops const (-Wcast-qual).
	 */
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct msghdr mh = {
		.msg_name = (void *)(uintptr_t)&ep->addr,
		.msg_namelen = name_len(ep),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	/* NOLINTEND(performance-no-int-to-ptr) */
	int fd = fd_for(u, ep);

	if (fd < 0)
		return -EAFNOSUPPORT;
	mh.msg_controllen = write_pktinfo(ep, cbuf);
	mh.msg_control = mh.msg_controllen ? cbuf : NULL;
	if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
		return 0;
	/*
	 * The remembered source address may have gone away (roaming, an
	 * address removed): let the kernel choose, and tell the caller.
	 */
	if (mh.msg_controllen && errno != EAGAIN && errno != ENOBUFS) {
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		if (sendmsg(fd, &mh, MSG_DONTWAIT) >= 0)
			return 1;
	}
	return -errno;
}

/* Whether two datagrams take the same path: same destination, same source. */
static bool same_path(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (!wg_endpoint_equal_addr(a, b) || a->has_src != b->has_src)
		return false;
	if (!a->has_src)
		return true;
	if (a->addr.sa.sa_family == AF_INET)
		return a->src.v4.s_addr == b->src.v4.s_addr;
	return !memcmp(&a->src.v6, &b->src.v6, sizeof(a->src.v6)) && a->src_ifindex == b->src_ifindex;
}

/*
 * How many datagrams from msgs[start] can go as one UDP_SEGMENT train: same
 * path and family, all as long as the first except a shorter last one.
 */
static unsigned int train_len(const struct udp_sockets *u, const struct udp_msg *msgs,
			      unsigned int start, unsigned int n)
{
	size_t size = msgs[start].len, bytes = size;
	unsigned int end = start + 1;

	if (u->no_gso)
		return 1;
	while (end < n && end - start < GSO_SEGMENTS_MAX && msgs[end - 1].len == size &&
	       msgs[end].len <= size && bytes + msgs[end].len <= GSO_BYTES_MAX &&
	       same_path(&msgs[end].ep, &msgs[start].ep)) {
		bytes += msgs[end].len;
		end++;
	}
	return end - start;
}

static size_t write_segment(uint8_t *cbuf, size_t used, uint16_t size)
{
	struct cmsghdr *c = (struct cmsghdr *)(void *)(cbuf + used);

	memset(c, 0, CMSG_SPACE(sizeof(size)));
	c->cmsg_level = IPPROTO_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(size));
	memcpy(CMSG_DATA(c), &size, sizeof(size));
	return used + CMSG_SPACE(sizeof(size));
}

/*
 * Datagrams to one peer go in trains: one message of several iovecs and a
 * UDP_SEGMENT size, which the kernel sends as one skb and cuts up late
 * (GSO), instead of one trip through the UDP stack per datagram. A kernel
 * or device that refuses it turns it off for these sockets.
 */
int udp_send_batch(struct udp_sockets *u, struct udp_msg *msgs, unsigned int n)
{
	struct mmsghdr mm[BATCH_MAX];
	struct iovec iov[BATCH_MAX];
	uint8_t cbuf[BATCH_MAX][CMSG_SPACE_MAX];
	unsigned int first[BATCH_MAX], count[BATCH_MAX];
	unsigned int i, t, trains = 0, start = 0, sent = 0;

	if (n > BATCH_MAX)
		n = BATCH_MAX;
	for (i = 0; i < n; i++) {
		iov[i].iov_base = msgs[i].buf;
		iov[i].iov_len = msgs[i].len;
		msgs[i].src_failed = false;
	}
	for (i = 0; i < n; i += count[trains++]) {
		struct msghdr *h = &mm[trains].msg_hdr;
		size_t used;

		first[trains] = i;
		count[trains] = train_len(u, msgs, i, n);
		memset(&mm[trains], 0, sizeof(mm[trains]));
		h->msg_name = &msgs[i].ep.addr;
		h->msg_namelen = name_len(&msgs[i].ep);
		h->msg_iov = &iov[i];
		h->msg_iovlen = count[trains];
		used = write_pktinfo(&msgs[i].ep, cbuf[trains]);
		if (count[trains] > 1)
			used = write_segment(cbuf[trains], used, (uint16_t)msgs[i].len);
		h->msg_controllen = used;
		h->msg_control = used ? cbuf[trains] : NULL;
	}
	/* One sendmmsg per run of trains of the same family. */
	while (start < trains) {
		int fd = fd_for(u, &msgs[first[start]].ep), r;
		unsigned int end = start + 1;

		while (end < trains && msgs[first[end]].ep.addr.sa.sa_family ==
					       msgs[first[start]].ep.addr.sa.sa_family)
			end++;
		if (fd < 0) {
			start = end;
			continue;
		}
		r = sendmmsg(fd, mm + start, end - start, MSG_DONTWAIT);
		if (r <= 0) {
			/*
			 * One at a time, so one bad datagram does not stall the rest; a
			 * train refused for its segmentation (EIO, EINVAL, EOPNOTSUPP)
			 * means no GSO here from now on.
			 */
			if (count[start] > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP))
				u->no_gso = true;
			for (t = 0; t < count[start]; t++) {
				struct udp_msg *m = &msgs[first[start] + t];

				if (udp_send(u, &m->ep, m->buf, m->len) == 1)
					m->src_failed = true;
			}
			r = 1;
		}
		if ((unsigned int)r > end - start)
			r = (int)(end - start); /* sendmmsg never says more; the analyser cannot know */
		for (t = start; t < start + (unsigned int)r; t++)
			sent += count[t];
		start += (unsigned int)r;
	}
	return (int)sent;
}
