/* SPDX-License-Identifier: MIT */
/*
 * The interface's two UDP sockets (IPv4 and IPv6 on one port), with the
 * local address of each received datagram (IP_PKTINFO / IPV6_RECVPKTINFO)
 * so that replies leave from the address the peer used.
 */
#ifndef VEIL_UDP_H
#define VEIL_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/device.h"

struct udp_sockets {
	int fd4, fd6;
	uint16_t port;
	uint32_t fwmark;
	bool offload; /* UDP_GRO asked for; trains (GSO) unless no_gso */
	bool no_gso;  /* offloads off, or the kernel refused a train: one datagram per message */
};

/*
 * Bind both families to port (0: the kernel picks one, then both share it).
 * With offload, sends go in UDP_SEGMENT trains and a read may bring several
 * datagrams of one train (UDP_GRO): its buffer needs 64 KB.
 */
int udp_open(struct udp_sockets *u, uint16_t port, uint32_t fwmark, bool offload) __must_check;
void udp_close(struct udp_sockets *u);
int udp_set_fwmark(struct udp_sockets *u, uint32_t fwmark) __must_check;

struct udp_msg {
	uint8_t *buf;
	size_t len; /* in: capacity for recv, length for send; out: received length */
	size_t seg; /* out (recv): 0, or datagrams of seg bytes (the last may be shorter) */
	struct wg_endpoint ep;
	bool src_failed; /* out (send): the remembered source no longer works */
};

/* Receive up to n datagrams with recvmmsg; returns the count or a negative errno. */
int udp_recv_batch(int fd, struct udp_msg *msgs, unsigned int n);
/* Send n datagrams with sendmmsg from each endpoint's remembered source. Returns how many went. */
int udp_send_batch(struct udp_sockets *u, struct udp_msg *msgs, unsigned int n);
/* 0 sent, 1 sent only after dropping the remembered source, or a negative errno. */
int udp_send(struct udp_sockets *u, const struct wg_endpoint *ep, const uint8_t *buf, size_t len);

#endif
