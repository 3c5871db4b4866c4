/* SPDX-License-Identifier: MIT */
/*
 * Per-peer timers (the WireGuard paper, section 6) as plain state: events go in with the time,
 * timers_run says which actions are due, and timers_next_deadline tells the
 * daemon when to call timers_run again. Nothing here reads a clock.
 *
 * The caller serialises all calls for one peer.
 */
#ifndef VEIL_TIMERS_H
#define VEIL_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "rng.h"

/* Bit mask returned by timers_run; the caller performs each bit set. */
enum timers_action {
	TIMERS_SEND_INITIATION = 1 << 0,	/* start a new handshake (not a retry) */
	TIMERS_SEND_INITIATION_RETRY = 1 << 1,	/* retransmit: send a retry initiation */
	TIMERS_SEND_KEEPALIVE = 1 << 2,		/* passive or persistent keepalive */
	TIMERS_CLEAR_SOURCE = 1 << 3,		/* forget the remembered local source address */
	TIMERS_GIVE_UP = 1 << 4,		/* attempts exhausted: drop staged packets */
	TIMERS_WIPE_KEYS = 1 << 5,		/* zero handshake and all three keypairs */
};

/* Public so a peer can embed it. Deadlines are monotonic ns; 0 = not armed. */
struct timers {
	uint64_t retransmit_at;
	uint64_t send_keepalive_at;
	uint64_t new_handshake_at;
	uint64_t zero_key_material_at;
	uint64_t persistent_keepalive_at;
	uint64_t last_sent_handshake;		/* initiation or response, for REKEY_TIMEOUT */
	bool have_sent_handshake;
	unsigned int handshake_attempts;
	bool need_another_keepalive;
	bool sent_lastminute_handshake;
	uint16_t persistent_keepalive_interval;	/* seconds, 0 = off */
	const struct wg_rng *rng;		/* jitter source */
};

void timers_init(struct timers *t, const struct wg_rng *rng);
/* Disarms everything (peer removed, device down); the caller stops feeding events. */
void timers_stop(struct timers *t);

/*
 * Events, named after where the send and receive paths call them
 * (the kernel's wg_timers_* calls in send.c and receive.c).
 */
void timers_event_data_sent(struct timers *t, uint64_t now);	/* non-keepalive data sent */
void timers_event_data_received(struct timers *t, uint64_t now); /* non-keepalive data received */
void timers_event_any_authenticated_packet_sent(struct timers *t, uint64_t now);
void timers_event_any_authenticated_packet_received(struct timers *t, uint64_t now);
void timers_event_any_authenticated_packet_traversal(struct timers *t, uint64_t now);
/* An initiation was sent: (re)arms retransmit and records last_sent_handshake. */
void timers_event_handshake_initiated(struct timers *t, uint64_t now);
/* A response was sent: records last_sent_handshake (the kernel's wg_packet_send_handshake_response). */
void timers_event_response_sent(struct timers *t, uint64_t now);
void timers_event_handshake_complete(struct timers *t, uint64_t now);
void timers_event_session_derived(struct timers *t, uint64_t now);

/*
 * Call before sending an initiation. A fresh request (is_retry false) resets
 * the attempt count. Returns false if an initiation or response went out less
 * than REKEY_TIMEOUT ago; the caller then sends nothing.
 */
bool timers_may_send_initiation(struct timers *t, uint64_t now, bool is_retry) __must_check;

/*
 * Sets the persistent keepalive interval in seconds (0 = off) and arms or
 * disarms its timer. Returns true when the interval went from 0 to non-zero:
 * the caller must send a keepalive now.
 */
bool timers_set_persistent_keepalive(struct timers *t, uint16_t interval_sec,
				     uint64_t now) __must_check;

/* Fires every timer whose deadline is <= now; returns the OR of their actions. */
unsigned int timers_run(struct timers *t, uint64_t now);
/* Earliest armed deadline, UINT64_MAX if none. */
uint64_t timers_next_deadline(const struct timers *t);

/* Rekey and expiry predicates (the WireGuard paper, 6.2 and 6.3) on plain numbers, for the keypair code. */
bool timers_want_rekey_on_send(bool is_initiator, uint64_t created, uint64_t send_counter,
			       uint64_t now);
/* Sets sent_lastminute_handshake, so it answers true once per session. */
bool timers_want_rekey_on_receive(struct timers *t, bool is_initiator, uint64_t created,
				  uint64_t now);
/* True once now - created >= REJECT_AFTER_TIME or counter >= REJECT_AFTER_MESSAGES. */
bool timers_keypair_expired(uint64_t created, uint64_t counter, uint64_t now);

#endif
