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

/* now: monotonic and wall-clock nanoseconds, for ages and the scrape's time. */
void metrics_write(struct uapi_writer *w, const char *ifname, struct wg_device *dev,
		   struct wg_now now);

#endif
