/* SPDX-License-Identifier: MIT */
/*
 * Sliding replay window for transport counters (the WireGuard paper, 5.4.6; RFC 6479).
 * One per receiving keypair; the caller serialises access to it.
 */
#ifndef VEIL_REPLAY_H
#define VEIL_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "messages.h"

struct replay_counter {
	uint64_t greatest;			/* highest counter accepted so far */
	uint64_t ring[COUNTER_BITS_TOTAL / 64];	/* one bit per counter, 128 words */
};

/* Empties the window: the next counter accepted may be anything, 0 included. */
void replay_init(struct replay_counter *r);

/*
 * Returns true if counter is fresh and marks it seen; false for a duplicate,
 * for a counter more than COUNTER_WINDOW_SIZE below the greatest one, and for
 * any counter at or past REJECT_AFTER_MESSAGES. Call it only after the
 * message has authenticated, or a forger could slide the window.
 */
bool replay_check_and_set(struct replay_counter *r, uint64_t counter) __must_check;

#endif
