/* SPDX-License-Identifier: MIT */
/*
 * Do-nothing callbacks for the engine's ops table (src/core/device.h), for
 * the tests, benchmarks and fuzz targets that drive a wg_device but care
 * only about some of its upcalls. A user names these in its own table next
 * to the callbacks it does write, e.g.
 *
 *	static const struct wg_device_ops ops = {
 *		.send = my_send, .deliver = stub_deliver,
 *		.keypair_ready = stub_keypair_ready, .purge_staged = stub_purge_staged,
 *	};
 *
 * or takes engine_stub_ops whole.
 */
#ifndef VEIL_ENGINE_STUB_H
#define VEIL_ENGINE_STUB_H

#include <stddef.h>
#include <stdint.h>

#include "core/device.h"

static inline void stub_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
			     const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)peer;
	(void)ep;
	(void)buf;
	(void)len;
}

static inline void stub_deliver(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len)
{
	(void)ctx;
	(void)peer;
	(void)pkt;
	(void)len;
}

/* Nothing is staged, so nothing goes out. */
static inline size_t stub_keypair_ready(void *ctx, struct wg_peer *peer)
{
	(void)ctx;
	(void)peer;
	return 0;
}

static inline void stub_purge_staged(void *ctx, struct wg_peer *peer)
{
	(void)ctx;
	(void)peer;
}

/* All four, for a device that is only configured and read (test_metrics). */
static const struct wg_device_ops engine_stub_ops __attribute__((unused)) = {
	.send = stub_send,
	.deliver = stub_deliver,
	.keypair_ready = stub_keypair_ready,
	.purge_staged = stub_purge_staged,
};

#endif
