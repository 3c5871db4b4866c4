/* SPDX-License-Identifier: MIT */
/*
 * An interface's counters in the Prometheus text exposition format
 * (version 0.0.4), for `veilctl metrics` and node_exporter's textfile
 * collector. No key material: peers are named by their public keys.
 */
#ifndef VEIL_METRICS_H
#define VEIL_METRICS_H

#include <stdint.h>

#include "core/device.h"
#include "uapi.h"

/* What veild counts outside the protocol engine. */
struct metrics_daemon {
	uint64_t too_long; /* packets from the TUN longer than veild carries, dropped */
};

/* now: monotonic and wall-clock nanoseconds, for ages and the scrape's time. */
void metrics_write(struct uapi_writer *w, const char *ifname, struct wg_device *dev,
		   const struct metrics_daemon *md, struct wg_now now);

/*
 * Why a peer's latest handshake failed (struct wg_peer's last_failure), for
 * operators without a log: kind is a label value ("cipher_mismatch",
 * "unanswered", "bad_response", "unexpected_response" or "other"), text a
 * sentence for veilctl show.
 */
struct metrics_failure {
	const char *kind;
	char text[160];
};
void metrics_describe_failure(const struct wg_peer *p, struct metrics_failure *out);

#endif
