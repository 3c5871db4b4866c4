// SPDX-License-Identifier: MIT
/*
 * Per-peer timer state machine (the WireGuard paper, section 6), as the
 * Linux kernel's timers.c and wireguard-go's timers.go implement it. Five one-shot
 * timers are kept as absolute deadlines (0 = not armed); events arm and
 * cancel them, and timers_run turns expired ones into actions for the caller.
 *
 * Each expiry handler runs with its deadline already cleared, so a handler
 * that wants to run again re-arms itself, just as a kernel timer callback
 * would call mod_timer.
 */
#include "timers.h"

#include <stddef.h>
#include <string.h>

#include "messages.h"

/*
 * True once lifetime has passed since birth. A birth in the future (which a
 * monotonic clock should never produce) counts as not expired rather than
 * wrapping around to a huge age.
 */
static bool has_expired(uint64_t birth, uint64_t lifetime, uint64_t now)
{
	return now >= birth && now - birth >= lifetime;
}

/* Uniform in [0, 334) ms, so that two peers that started together drift apart. */
static uint64_t jitter(const struct timers *t)
{
	return (uint64_t)wg_rng_uniform(t->rng, REKEY_TIMEOUT_JITTER_MAX_MS) * NSEC_PER_MSEC;
}

static uint64_t persistent_interval(const struct timers *t)
{
	return (uint64_t)t->persistent_keepalive_interval * NSEC_PER_SEC;
}

void timers_init(struct timers *t, const struct wg_rng *rng)
{
	memset(t, 0, sizeof(*t));
	t->rng = rng;
}

void timers_stop(struct timers *t)
{
	t->retransmit_at = 0;
	t->send_keepalive_at = 0;
	t->new_handshake_at = 0;
	t->zero_key_material_at = 0;
	t->persistent_keepalive_at = 0;
	t->need_another_keepalive = false;
}

/*
 * We sent data: if nothing authenticated comes back within 15 s (plus
 * jitter), the session is probably dead and a new handshake is due. Only the
 * first unanswered send arms it; later sends must not push it back.
 */
void timers_event_data_sent(struct timers *t, uint64_t now)
{
	if (!t->new_handshake_at)
		t->new_handshake_at = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter(t);
}

/*
 * We received data: answer with a keepalive in 10 s unless something else
 * goes out first. If the timer is already running, remember to send one more
 * after it fires instead of moving it.
 */
void timers_event_data_received(struct timers *t, uint64_t now)
{
	if (!t->send_keepalive_at)
		t->send_keepalive_at = now + KEEPALIVE_TIMEOUT;
	else
		t->need_another_keepalive = true;
}

/* Anything authenticated we send already tells the peer we are alive. */
void timers_event_any_authenticated_packet_sent(struct timers *t, uint64_t now)
{
	(void)now;
	t->send_keepalive_at = 0;
}

/* Anything authenticated from the peer proves the session still works. */
void timers_event_any_authenticated_packet_received(struct timers *t, uint64_t now)
{
	(void)now;
	t->new_handshake_at = 0;
}

void timers_event_any_authenticated_packet_traversal(struct timers *t, uint64_t now)
{
	if (t->persistent_keepalive_interval)
		t->persistent_keepalive_at = now + persistent_interval(t);
}

void timers_event_handshake_initiated(struct timers *t, uint64_t now)
{
	t->retransmit_at = now + REKEY_TIMEOUT + jitter(t);
	t->last_sent_handshake = now;
	t->have_sent_handshake = true;
}

/* A responder counts its response too, so it does not initiate right back. */
void timers_event_response_sent(struct timers *t, uint64_t now)
{
	t->last_sent_handshake = now;
	t->have_sent_handshake = true;
}

void timers_event_handshake_complete(struct timers *t, uint64_t now)
{
	(void)now;
	t->retransmit_at = 0;
	t->handshake_attempts = 0;
	t->sent_lastminute_handshake = false;
}

void timers_event_session_derived(struct timers *t, uint64_t now)
{
	t->zero_key_material_at = now + ZERO_KEY_MATERIAL_TIMEOUT;
}

bool timers_may_send_initiation(struct timers *t, uint64_t now, bool is_retry)
{
	if (!is_retry)
		t->handshake_attempts = 0;
	return !t->have_sent_handshake || has_expired(t->last_sent_handshake, REKEY_TIMEOUT, now);
}

/*
 * A change between two non-zero intervals re-arms from now; setting the same
 * interval again (wg syncconf does) leaves a running timer alone.
 */
bool timers_set_persistent_keepalive(struct timers *t, uint16_t interval_sec, uint64_t now)
{
	bool turned_on = !t->persistent_keepalive_interval && interval_sec;

	if (interval_sec == t->persistent_keepalive_interval)
		return false;
	t->persistent_keepalive_interval = interval_sec;
	t->persistent_keepalive_at = interval_sec ? now + persistent_interval(t) : 0;
	return turned_on;
}

/*
 * No response to our initiation. Retry up to MAX_TIMER_HANDSHAKES times; the
 * caller's retry re-arms this timer through handshake_initiated. After that
 * give up: drop what is staged, stop owing the peer a keepalive, and make
 * sure the keys die eventually without pushing back a wipe already pending.
 */
static unsigned int expired_retransmit(struct timers *t, uint64_t now)
{
	if (t->handshake_attempts > MAX_TIMER_HANDSHAKES) {
		t->send_keepalive_at = 0;
		if (!t->zero_key_material_at)
			t->zero_key_material_at = now + ZERO_KEY_MATERIAL_TIMEOUT;
		return TIMERS_GIVE_UP;
	}
	t->handshake_attempts++;
	return TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE;
}

/*
 * The caller's keepalive normally cancels this timer again through
 * any_authenticated_packet_sent, as the kernel's asynchronous send does, so
 * the re-arm below matters only when that keepalive could not go out.
 */
static unsigned int expired_send_keepalive(struct timers *t, uint64_t now)
{
	if (t->need_another_keepalive) {
		t->need_another_keepalive = false;
		t->send_keepalive_at = now + KEEPALIVE_TIMEOUT;
	}
	return TIMERS_SEND_KEEPALIVE;
}

/* The source address may be why nothing came back, so forget it first. */
static unsigned int expired_new_handshake(struct timers *t, uint64_t now)
{
	(void)t;
	(void)now;
	return TIMERS_CLEAR_SOURCE | TIMERS_SEND_INITIATION;
}

static unsigned int expired_zero_key_material(struct timers *t, uint64_t now)
{
	(void)t;
	(void)now;
	return TIMERS_WIPE_KEYS;
}

static unsigned int expired_persistent_keepalive(struct timers *t, uint64_t now)
{
	(void)now;
	return t->persistent_keepalive_interval ? TIMERS_SEND_KEEPALIVE : 0;
}

/*
 * The expiry table. Order matters only when several timers expire in one
 * call: retransmit comes first so that giving up cancels a passive keepalive
 * due at the same moment, as it would have had it fired a tick earlier.
 */
static const struct {
	size_t at;	/* offset of the deadline in struct timers */
	unsigned int (*expired)(struct timers *t, uint64_t now);
} expiry_tbl[] = {
	{ offsetof(struct timers, retransmit_at), expired_retransmit },
	{ offsetof(struct timers, send_keepalive_at), expired_send_keepalive },
	{ offsetof(struct timers, new_handshake_at), expired_new_handshake },
	{ offsetof(struct timers, zero_key_material_at), expired_zero_key_material },
	{ offsetof(struct timers, persistent_keepalive_at), expired_persistent_keepalive },
};

unsigned int timers_run(struct timers *t, uint64_t now)
{
	unsigned int actions = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(expiry_tbl); i++) {
		uint64_t *at = (uint64_t *)(void *)((char *)t + expiry_tbl[i].at);

		if (*at && *at <= now) {
			*at = 0;
			actions |= expiry_tbl[i].expired(t, now);
		}
	}
	return actions;
}

uint64_t timers_next_deadline(const struct timers *t)
{
	uint64_t next = UINT64_MAX;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(expiry_tbl); i++) {
		const uint64_t *at = (const uint64_t *)(const void *)((const char *)t +
								      expiry_tbl[i].at);

		if (*at && *at < next)
			next = *at;
	}
	return next;
}

/*
 * Either side rekeys before the nonce space runs low; only the initiator of
 * the current session rekeys on age, so both ends do not initiate at once.
 */
bool timers_want_rekey_on_send(bool is_initiator, uint64_t created, uint64_t send_counter,
			       uint64_t now)
{
	return send_counter > REKEY_AFTER_MESSAGES ||
	       (is_initiator && has_expired(created, REKEY_AFTER_TIME, now));
}

/*
 * An initiator that has only been receiving (so never hit the send check)
 * gets one last chance at 165 s: a handshake now can finish before the
 * keypair is rejected at 180 s. Once per session, or every packet would ask.
 */
bool timers_want_rekey_on_receive(struct timers *t, bool is_initiator, uint64_t created,
				  uint64_t now)
{
	if (!is_initiator || t->sent_lastminute_handshake ||
	    !has_expired(created, REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT, now))
		return false;
	t->sent_lastminute_handshake = true;
	return true;
}

bool timers_keypair_expired(uint64_t created, uint64_t counter, uint64_t now)
{
	return counter >= REJECT_AFTER_MESSAGES || has_expired(created, REJECT_AFTER_TIME, now);
}
