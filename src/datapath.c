// SPDX-License-Identifier: MIT
/*
 * The data path. UDP in: recvmmsg a batch into receive slots, hand each
 * datagram to wg_device_receive (decrypted in place; the deliver upcall
 * writes the inner packet to the TUN fd, or with offloads gathers one
 * flow's segments into one write). TUN in: read a batch (with offloads,
 * cut TCP segments and UDP trains into packets), route each packet to its
 * peer and stage it (src/peers.c sends what was staged at the end of the
 * batch); a packet no peer takes gets an ICMP unreachable (src/icmp.c
 * builds it, this file writes it). Also the send upcall and the UDP
 * sockets' watches.
 */
#include "daemon_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "icmp.h"
#include "log.h"

/* ---- the engine's upcalls that send and deliver -------------------------- */

void datapath__op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	struct daemon *d = ctx;
	int err = udp_send(&d->udp, ep, buf, len);

	if (err < 0)
		log_debug("%s: send failed: %s", d->cfg->ifname, strerror(-err));
	if (peer) {
		if (err == 1)
			wg_peer_forget_source(peer);
		peers__mark_dirty(peer->user);
	}
}

static void flush_rx(struct daemon *d);

/*
 * With a virtio_net_hdr, decrypted packets wait (in the receive slots)
 * until the end of the receive round, when one flow's segments go to the
 * kernel as one write; without, each goes at once.
 */
void datapath__op_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len)
{
	struct daemon *d = ctx;

	if (d->tun_mode == TUN_PLAIN) {
		if (write(d->tun_fd, pkt, len) < 0)
			log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
	} else {
		if (d->nrx == RX_MAX)
			flush_rx(d);
		d->rx[d->nrx].data = pkt;
		d->rx[d->nrx++].len = len;
	}
	peers__mark_dirty(peer->user);
}

/* ---- writing to the TUN device ------------------------------------------- */

/* One packet to the TUN device, after a virtio_net_hdr when it takes one (flags: its flags). */
static void tun_write_one(struct daemon *d, uint8_t *pkt, size_t len, uint8_t flags)
{
	struct virtio_net_hdr vh = { .flags = flags };
	struct iovec iov[2] = { { &vh, VNET_HDR_LEN }, { pkt, len } };
	ssize_t r;

	if (d->tun_mode == TUN_PLAIN)
		r = write(d->tun_fd, pkt, len);
	else
		r = writev(d->tun_fd, iov, 2);
	if (r < 0)
		log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
}

/*
 * The decrypted packets of this receive round to the TUN device: a run of
 * one TCP flow's segments as one write (GRO), anything else alone.
 */
static void flush_rx(struct daemon *d)
{
	struct iovec iov[GRO_SEGMENTS_MAX + 1];
	struct virtio_net_hdr vh;
	unsigned int i = 0, k, n;
	size_t hlen;

	while (i < d->nrx) {
		n = (unsigned int)offload_gro(d->rx + i, d->nrx - i, d->tun_mode == TUN_USO, &vh, &hlen);
		iov[0].iov_base = &vh;
		iov[0].iov_len = VNET_HDR_LEN;
		iov[1].iov_base = d->rx[i].data;
		iov[1].iov_len = d->rx[i].len;
		for (k = 1; k < n; k++) {
			iov[k + 1].iov_base = d->rx[i + k].data + hlen;
			iov[k + 1].iov_len = d->rx[i + k].len - hlen;
		}
		if (writev(d->tun_fd, iov, (int)n + 1) < 0)
			log_debug("%s: TUN write failed: %s", d->cfg->ifname, strerror(errno));
		i += n;
	}
	d->nrx = 0;
}

/*
 * Answer like the kernel module (src/icmp.c builds the reply), at most 10
 * a second, so a flood of such packets cannot turn into a flood of replies.
 */
static void icmp_unreachable(struct daemon *d, const uint8_t *pkt, size_t len, uint64_t now)
{
	uint8_t out[ICMP_REPLY_MAX];
	size_t n;

	if (rate_window_hit(&d->icmp, now, NSEC_PER_SEC) > 10)
		return;
	n = icmp_unreachable_build(pkt, len, out);
	if (n)
		tun_write_one(d, out, n, 0);
}

/* ---- reading from the TUN device ----------------------------------------- */

/*
 * No buffer to spare (it should not happen: staging is capped below the
 * pool): take one packet off the fd into scratch and drop it, so a
 * level-triggered poll does not spin on data nobody reads.
 */
static void drain_one(int fd)
{
	static uint8_t scratch[65536];
	ssize_t r = read(fd, scratch, sizeof(scratch));

	(void)r;
}

/* A TUN read that brought nothing: the queue is empty, or the device is gone (we stop). */
static void tun_read_failed(struct daemon *d, ssize_t r)
{
	int err = r < 0 ? errno : EIO;

	if (err == EAGAIN || err == EINTR)
		return;
	/* The interface was deleted under us: stop cleanly, like wireguard-go. */
	log_info("%s: TUN device gone (%s), shutting down", d->cfg->ifname, strerror(err));
	stop(d, 0);
}

/* Hand a packet read from the TUN device to its peer, or answer and drop it. */
static void route(struct daemon *d, struct pkt *p, uint64_t now)
{
	struct wg_peer *wp = wg_device_route(d->wg, p->data + DATA_HEADER_LEN, p->len);

	if (!wp || !wg_device_identity(d->wg)->has_identity) {
		if (!wp)
			icmp_unreachable(d, p->data + DATA_HEADER_LEN, p->len, now);
		peers__pkt_put(d, p);
		return;
	}
	peers__stage(wp->user, p);
}

/* A packet from the TUN longer than we carry (the MTU is above PKT_CAP): counted, dropped. */
static void too_long(struct daemon *d)
{
	d->counters.too_long++;
	log_debug("%s: dropping a packet longer than the %d bytes veil carries", d->cfg->ifname,
		  PKT_CAP);
}

/* Without offloads: a batch of reads straight into packet buffers. */
static void tun_read_plain(struct daemon *d, uint64_t now)
{
	int i;

	for (i = 0; i < BATCH; i++) {
		struct pkt *p = peers__pkt_get(d);
		ssize_t r;

		if (!p) {
			drain_one(d->tun_fd);
			break;
		}
		/*
		 * One byte more than we carry, to see a longer packet: the kernel
		 * truncates it to the buffer (or, on some versions, reports its
		 * whole length). The buffer has room past PKT_CAP for padding.
		 */
		r = read(d->tun_fd, p->data + DATA_HEADER_LEN, PKT_CAP + 1);
		if (r <= 0) {
			peers__pkt_put(d, p);
			tun_read_failed(d, r);
			break;
		}
		if (r > PKT_CAP) {
			too_long(d);
			peers__pkt_put(d, p);
			continue;
		}
		p->len = (size_t)r;
		route(d, p, now);
	}
}

/* A TCP segment or UDP train in tun_buf, cut into packets. Returns how many it made. */
static unsigned int tun_cut(struct daemon *d, const struct virtio_net_hdr *vh, size_t len,
			    uint64_t now)
{
	const uint8_t *seg = d->tun_buf + VNET_HDR_LEN;
	struct offload_tso t;
	unsigned int made = 0;
	struct pkt *p;

	if (offload_tso_start(&t, vh, seg, len)) {
		log_debug("%s: dropping a segment with a bad offload header", d->cfg->ifname);
		return 0;
	}
	if (t.hlen + t.mss > PKT_CAP) {
		too_long(d);
		return 0;
	}
	while ((p = peers__pkt_get(d))) {
		p->len = offload_tso_next(&t, p->data + DATA_HEADER_LEN);
		if (!p->len) {
			peers__pkt_put(d, p);
			break;
		}
		route(d, p, now);
		made++;
	}
	return made;
}

/*
 * With offloads: each read has a virtio_net_hdr. A plain packet lands in a
 * packet buffer directly (its checksum finished if the kernel left it); a
 * TCP segment or UDP train of up to 64 KB spills past it into tun_buf,
 * where it is made whole and cut. Reads stop once a batch's worth of
 * packets is staged, so no peer's queue (128) overflows before
 * peers__finish_batch sends.
 */
static void tun_read_vnet(struct daemon *d, uint64_t now)
{
	uint8_t *spill = d->tun_buf + VNET_HDR_LEN + PKT_CAP;
	unsigned int made = 0, reads;
	struct virtio_net_hdr vh;

	for (reads = 0; reads < BATCH && made < BATCH; reads++) {
		struct pkt *p = peers__pkt_get(d);
		struct iovec iov[3];
		size_t len;
		ssize_t r;

		if (!p) {
			drain_one(d->tun_fd);
			break;
		}
		iov[0].iov_base = &vh;
		iov[0].iov_len = VNET_HDR_LEN;
		iov[1].iov_base = p->data + DATA_HEADER_LEN;
		iov[1].iov_len = PKT_CAP;
		iov[2].iov_base = spill;
		iov[2].iov_len = OFFLOAD_MAX - PKT_CAP;
		r = readv(d->tun_fd, iov, 3);
		if (r <= VNET_HDR_LEN) {
			peers__pkt_put(d, p);
			if (r > 0)
				continue;
			tun_read_failed(d, r);
			break;
		}
		len = (size_t)r - VNET_HDR_LEN;
		if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
			if (len > PKT_CAP)
				too_long(d);
			if (len > PKT_CAP ||
			    ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
			     offload_finish_csum(&vh, p->data + DATA_HEADER_LEN, len))) {
				peers__pkt_put(d, p);
				continue;
			}
			p->len = len;
			route(d, p, now);
			made++;
			continue;
		}
		memcpy(d->tun_buf + VNET_HDR_LEN, p->data + DATA_HEADER_LEN, len < PKT_CAP ? len : PKT_CAP);
		peers__pkt_put(d, p);
		made += tun_cut(d, &vh, len, now);
	}
}

void datapath__tun_cb(uv_poll_t *h, int status, int events)
{
	struct daemon *d = container_of(h, struct daemon, tun_poll);

	(void)events;
	if (status < 0) {
		/* The interface was deleted under us: stop cleanly, like wireguard-go. */
		log_info("%s: TUN device gone (%s), shutting down", d->cfg->ifname,
			 uv_strerror(status));
		stop(d, 0);
		return;
	}
	if (d->tun_mode == TUN_PLAIN)
		tun_read_plain(d, now_of(d).mono);
	else
		tun_read_vnet(d, now_of(d).mono);
	peers__finish_batch(d);
}

/* ---- receiving from UDP -------------------------------------------------- */

/*
 * With workers: the datagrams queued so far, their AEAD as one batch over
 * the workers, then each, in the order it arrived, through the rest of the
 * engine (wg_device_receive_opened, or wg_device_receive for what is not
 * a data message of a known keypair).
 */
static void rxq_flush(struct daemon *d, struct wg_now now)
{
	unsigned int i;

	workers_run(d->workers, d->rxq_job, d->nrxq_job);
	for (i = 0; i < d->nrxq; i++) {
		struct rx_seg *s = &d->rxq[i];

		if (s->job >= 0)
			wg_device_receive_opened(d->wg, now, s->ep, s->buf, s->len, &d->rxq_job[s->job]);
		else
			wg_device_receive(d->wg, now, s->ep, s->buf, s->len);
	}
	d->nrxq = d->nrxq_job = 0;
}

/* One received datagram: to the engine at once, or with workers into the batch. */
static void rx_one(struct daemon *d, struct wg_now now, const struct wg_endpoint *ep, uint8_t *buf,
		   size_t len)
{
	struct rx_seg *s;

	if (!parallel(d)) {
		wg_device_receive(d->wg, now, ep, buf, len);
		return;
	}
	if (d->nrxq == RXQ_MAX)
		rxq_flush(d, now);
	s = &d->rxq[d->nrxq++];
	s->buf = buf;
	s->len = len;
	s->ep = ep;
	s->job = -1;
	if (wg_device_open_begin(d->wg, now, buf, len, &d->rxq_job[d->nrxq_job]))
		s->job = (int)d->nrxq_job++;
}

/*
 * A round receives into the slots, decrypts in place (a GRO read holds
 * several datagrams of seg bytes each) and, with offloads, writes what it
 * decrypted to the TUN device before the slots are used again.
 */
static void udp_cb(uv_poll_t *h, int status, int events)
{
	struct upoll *up = container_of(h, struct upoll, h);
	struct daemon *d = up->d;
	struct udp_msg msgs[BATCH];
	unsigned int n = d->rx_slots, i;
	int got, rounds;

	(void)events;
	if (status < 0)
		return;
	for (rounds = 0; rounds < 4; rounds++) {
		struct wg_now now;

		for (i = 0; i < n; i++) {
			msgs[i].buf = d->rx_arena + (size_t)i * d->rx_slot;
			msgs[i].len = d->rx_slot;
		}
		got = udp_recv_batch(up->fd, msgs, n);
		now = now_of(d);
		for (i = 0; got > 0 && i < (unsigned int)got; i++) {
			size_t len = msgs[i].len, off = 0, step;
			size_t seg = msgs[i].seg && msgs[i].seg < len ? msgs[i].seg : len;

			do { /* once for an empty (truncated) one, which the engine counts */
				step = len - off < seg ? len - off : seg;
				rx_one(d, now, &msgs[i].ep, msgs[i].buf + off, step);
				off += step;
			} while (off < len);
		}
		if (d->nrxq)
			rxq_flush(d, now);
		flush_rx(d);
		if (got < (int)n)
			break;
	}
	peers__finish_batch(d);
}

static void close_free(uv_handle_t *h)
{
	free(container_of((uv_poll_t *)h, struct upoll, h));
}

static struct upoll *watch_udp(struct daemon *d, int fd)
{
	struct upoll *up;

	if (fd < 0)
		return NULL;
	up = calloc(1, sizeof(*up));
	if (!up)
		return NULL;
	up->d = d;
	up->fd = fd;
	if (uv_poll_init(&d->loop, &up->h, fd) || uv_poll_start(&up->h, UV_READABLE, udp_cb)) {
		free(up);
		return NULL;
	}
	return up;
}

void datapath__unwatch(struct upoll **up)
{
	if (!*up)
		return;
	uv_poll_stop(&(*up)->h);
	uv_close((uv_handle_t *)&(*up)->h, close_free);
	*up = NULL;
}

int datapath__listen_on(struct daemon *d, uint16_t port)
{
	struct udp_sockets nu;
	int err;

	err = udp_open(&nu, port, d->udp.fwmark, d->cfg->offload);
	if (err)
		return err;
	datapath__unwatch(&d->udp4);
	datapath__unwatch(&d->udp6);
	udp_close(&d->udp);
	d->udp = nu;
	d->udp4 = watch_udp(d, nu.fd4);
	d->udp6 = watch_udp(d, nu.fd6);
	log_info("%s: listening on UDP port %u", d->cfg->ifname, nu.port);
	return 0;
}
