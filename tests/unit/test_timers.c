// SPDX-License-Identifier: MIT
/*
 * Timers (the WireGuard paper, section 6): single timers at their exact deadlines, the rekey
 * predicates at their boundaries, and hours of scripted traffic driven by a
 * fake clock in 1 ms steps with a jitter source whose values we choose.
 */
#include "core/timers.c"

#include "test_util.h"

#define MS NSEC_PER_MSEC
#define SEC NSEC_PER_SEC
/* Start well away from 0, which means "not armed". */
#define START (1000 * SEC)
#define REL(x) (START + (uint64_t)(x))

/*
 * Scripted jitter: each draw yields the next entry of ms[], cycling. The raw
 * word is 334 * 1000 + ms: above wg_rng_uniform's rejection limit for 334 (it
 * is 2^32 mod 334 = 174), and reduced mod 334 it gives exactly ms. Any other
 * bound would give a different jitter and the deadlines below would miss.
 */
struct fake_rng {
	const uint32_t *ms;
	size_t n, draws;
	uint32_t last;
};

static void fake_fill(void *ctx, void *buf, size_t len)
{
	struct fake_rng *f = ctx;
	uint32_t v;

	assert_int_equal(len, sizeof(v));
	f->last = f->ms[f->draws++ % f->n];
	v = 334u * 1000u + f->last;
	memcpy(buf, &v, sizeof(v));
}

static const uint32_t jitters[] = { 0, 333, 1, 200, 17, 332, 100, 5, 250, 64, 2, 181, 299 };

struct fix {
	struct fake_rng f;
	struct wg_rng rng;
	struct timers t;
};

static void fix_init(struct fix *x, const uint32_t *ms, size_t n)
{
	memset(x, 0, sizeof(*x));
	x->f.ms = ms;
	x->f.n = n;
	x->rng.fill = fake_fill;
	x->rng.ctx = &x->f;
	timers_init(&x->t, &x->rng);
}

/* The only armed deadline is at: nothing fires 1 ms or 1 ns before it, then action does. */
static void expect_fire(struct timers *t, uint64_t at, unsigned int action)
{
	assert_int_equal(timers_next_deadline(t), at);
	assert_int_equal(timers_run(t, at - MS), 0);
	assert_int_equal(timers_run(t, at - 1), 0);
	assert_int_equal(timers_run(t, at), action);
}

static void test_init_idle(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);
	assert_int_equal(timers_run(&x.t, REL(100000 * SEC)), 0);
	assert_int_equal(x.f.draws, 0);
}

static void arm_persistent(struct timers *t, uint64_t now)
{
	assert_true(timers_set_persistent_keepalive(t, 25, now));
	timers_event_any_authenticated_packet_traversal(t, now);
}

/* Each timer alone, armed at START, fires exactly `after` later and only once. */
static const struct fire_row {
	void (*arm)(struct timers *t, uint64_t now);
	uint32_t jitter_ms;	/* what the rng hands out */
	size_t draws;		/* how many jitter draws arming takes */
	uint64_t after;
	unsigned int action;
} fire_rows[] = {
	/* 1 */ { timers_event_handshake_initiated, 0, 1, 5 * SEC,
		  TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE },
	/* 2 */ { timers_event_handshake_initiated, 1, 1, 5 * SEC + 1 * MS,
		  TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE },
	/* 3 */ { timers_event_handshake_initiated, 333, 1, 5 * SEC + 333 * MS,
		  TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE },
	/* 4 */ { timers_event_data_sent, 0, 1, 15 * SEC,
		  TIMERS_CLEAR_SOURCE | TIMERS_SEND_INITIATION },
	/* 5 */ { timers_event_data_sent, 333, 1, 15 * SEC + 333 * MS,
		  TIMERS_CLEAR_SOURCE | TIMERS_SEND_INITIATION },
	/* 6 */ { timers_event_data_received, 77, 0, 10 * SEC, TIMERS_SEND_KEEPALIVE },
	/* 7 */ { timers_event_session_derived, 77, 0, 540 * SEC, TIMERS_WIPE_KEYS },
	/* 8 */ { arm_persistent, 77, 0, 25 * SEC, TIMERS_SEND_KEEPALIVE },
};

static void test_single_timers(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(fire_rows); i++) {
		const struct fire_row *r = &fire_rows[i];
		struct fix x;

		uint64_t at = START + r->after;

		fix_init(&x, &r->jitter_ms, 1);
		r->arm(&x.t, START);
		/* One-shot: after firing nothing is left armed and nothing fires later. */
		if (x.f.draws != r->draws || timers_next_deadline(&x.t) != at ||
		    timers_run(&x.t, at - MS) != 0 || timers_run(&x.t, at - 1) != 0 ||
		    timers_run(&x.t, at) != r->action ||
		    timers_next_deadline(&x.t) != UINT64_MAX ||
		    timers_run(&x.t, REL(100000 * SEC)) != 0)
			fail_msg("row %zu", i + 1);
	}
}

/* A real (seeded) generator: jitter stays in whole ms within [0, 334) and covers it. */
static void test_jitter_range(void **state)
{
	struct test_rng_state st = { 42 };
	struct wg_rng rng = { .fill = test_rng_fill, .ctx = &st };
	uint64_t lo = UINT64_MAX, hi = 0, d;
	struct timers t;
	int i;

	(void)state;
	timers_init(&t, &rng);
	for (i = 0; i < 20000; i++) {
		timers_event_handshake_initiated(&t, START);
		d = t.retransmit_at - START - REKEY_TIMEOUT;
		t.new_handshake_at = 0;
		timers_event_data_sent(&t, START);
		assert_int_equal(d % MS, 0);
		assert_true(d < REKEY_TIMEOUT_JITTER_MAX_MS * MS);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		d = t.new_handshake_at - START - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
		assert_int_equal(d % MS, 0);
		assert_true(d < REKEY_TIMEOUT_JITTER_MAX_MS * MS);
	}
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 333 * MS);
}

/* Later sends do not push new_handshake back; anything received cancels it. */
static void test_new_handshake_rules(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	timers_event_data_sent(&x.t, START);			/* jitter 0 */
	timers_event_data_sent(&x.t, REL(3 * SEC));
	timers_event_data_sent(&x.t, REL(14 * SEC));
	assert_int_equal(x.f.draws, 1);
	assert_int_equal(timers_next_deadline(&x.t), REL(15 * SEC));
	timers_event_any_authenticated_packet_received(&x.t, REL(14 * SEC + 999 * MS));
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);
	assert_int_equal(timers_run(&x.t, REL(3600 * SEC)), 0);

	/* Once cancelled, the next send arms it afresh with the next jitter (333). */
	timers_event_data_sent(&x.t, REL(20 * SEC));
	expect_fire(&x.t, REL(35 * SEC + 333 * MS), TIMERS_CLEAR_SOURCE | TIMERS_SEND_INITIATION);
}

/* A second data packet while the keepalive is pending asks for one more. */
static void test_need_another_keepalive(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	timers_event_data_received(&x.t, START);
	timers_event_data_received(&x.t, REL(4 * SEC));
	assert_true(x.t.need_another_keepalive);
	expect_fire(&x.t, REL(10 * SEC), TIMERS_SEND_KEEPALIVE);
	assert_false(x.t.need_another_keepalive);
	expect_fire(&x.t, REL(20 * SEC), TIMERS_SEND_KEEPALIVE);
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);

	/* Anything we send cancels it, flag or not. */
	timers_event_data_received(&x.t, REL(30 * SEC));
	timers_event_any_authenticated_packet_sent(&x.t, REL(31 * SEC));
	assert_int_equal(timers_run(&x.t, REL(3600 * SEC)), 0);
}

/* session_derived re-arms the wipe every time. */
static void test_zero_key_material_rearm(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	timers_event_session_derived(&x.t, START);
	timers_event_session_derived(&x.t, REL(100 * SEC));
	assert_int_equal(timers_run(&x.t, REL(540 * SEC)), 0);
	expect_fire(&x.t, REL(640 * SEC), TIMERS_WIPE_KEYS);
}

/* Drives the retransmit timer through n expiries, retrying each time. */
static uint64_t retry_n(struct fix *x, uint64_t now, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		now += REKEY_TIMEOUT + x->f.last * MS;
		expect_fire(&x->t, now, TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE);
		assert_int_equal(x->t.handshake_attempts, i + 1);
		assert_true(timers_may_send_initiation(&x->t, now, true));
		timers_event_handshake_initiated(&x->t, now);
	}
	return now;
}

/*
 * Giving up: the wipe already pending from a derived session is not pushed
 * back, and a passive keepalive due at the same instant is cancelled rather
 * than sent (retransmit runs first).
 */
static void test_give_up_details(void **state)
{
	struct fix x;
	uint64_t now;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	timers_event_session_derived(&x.t, START);
	assert_true(timers_may_send_initiation(&x.t, REL(1 * SEC), false));
	timers_event_handshake_initiated(&x.t, REL(1 * SEC));
	now = retry_n(&x, REL(1 * SEC), MAX_TIMER_HANDSHAKES + 1);
	assert_int_equal(x.t.handshake_attempts, 19);

	now += REKEY_TIMEOUT + x.f.last * MS;
	timers_event_data_received(&x.t, now - KEEPALIVE_TIMEOUT);
	assert_int_equal(x.t.send_keepalive_at, now);
	assert_int_equal(timers_run(&x.t, now - 1), 0);
	assert_int_equal(timers_run(&x.t, now), TIMERS_GIVE_UP);
	assert_int_equal(x.t.send_keepalive_at, 0);
	assert_int_equal(x.t.retransmit_at, 0);
	assert_int_equal(x.t.zero_key_material_at, REL(540 * SEC));

	/* A fresh request starts counting again. */
	assert_true(timers_may_send_initiation(&x.t, now, false));
	assert_int_equal(x.t.handshake_attempts, 0);
}

/* At most one initiation or response per REKEY_TIMEOUT; retries keep their count. */
static void test_may_send_initiation(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	assert_true(timers_may_send_initiation(&x.t, START, false));
	timers_event_handshake_initiated(&x.t, START);
	assert_false(timers_may_send_initiation(&x.t, REL(4999 * MS), false));
	assert_false(timers_may_send_initiation(&x.t, REL(5 * SEC - 1), false));
	assert_true(timers_may_send_initiation(&x.t, REL(5 * SEC), false));

	timers_event_response_sent(&x.t, REL(20 * SEC));
	assert_false(timers_may_send_initiation(&x.t, REL(24999 * MS), false));
	assert_true(timers_may_send_initiation(&x.t, REL(25 * SEC), false));

	x.t.handshake_attempts = 7;
	assert_true(timers_may_send_initiation(&x.t, REL(30 * SEC), true));
	assert_int_equal(x.t.handshake_attempts, 7);
	assert_false(timers_may_send_initiation(&x.t, REL(24 * SEC), true));
	assert_int_equal(x.t.handshake_attempts, 7);
	assert_false(timers_may_send_initiation(&x.t, REL(24 * SEC), false));
	assert_int_equal(x.t.handshake_attempts, 0);
}

static void test_persistent_keepalive_settings(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	/* Off: traversal arms nothing. */
	timers_event_any_authenticated_packet_traversal(&x.t, START);
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);

	assert_true(timers_set_persistent_keepalive(&x.t, 25, START));
	assert_int_equal(timers_next_deadline(&x.t), REL(25 * SEC));
	/* The same value again (wg syncconf) changes nothing. */
	assert_false(timers_set_persistent_keepalive(&x.t, 25, REL(10 * SEC)));
	assert_int_equal(timers_next_deadline(&x.t), REL(25 * SEC));
	/* Another non-zero value re-arms but needs no immediate keepalive. */
	assert_false(timers_set_persistent_keepalive(&x.t, 40, REL(10 * SEC)));
	assert_int_equal(timers_next_deadline(&x.t), REL(50 * SEC));
	/* Off disarms. */
	assert_false(timers_set_persistent_keepalive(&x.t, 0, REL(11 * SEC)));
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);
	timers_event_any_authenticated_packet_traversal(&x.t, REL(12 * SEC));
	assert_int_equal(timers_run(&x.t, REL(3600 * SEC)), 0);
	/* The largest interval the UAPI allows. */
	assert_true(timers_set_persistent_keepalive(&x.t, 65535, REL(3600 * SEC)));
	expect_fire(&x.t, REL((3600 + 65535) * SEC), TIMERS_SEND_KEEPALIVE);
	/* An expiry racing a switch-off sends nothing. */
	timers_event_any_authenticated_packet_traversal(&x.t, REL(70000 * SEC));
	assert_int_equal(timers_next_deadline(&x.t), REL((70000 + 65535) * SEC));
	x.t.persistent_keepalive_interval = 0;
	assert_int_equal(timers_run(&x.t, REL((70000 + 65535) * SEC)), 0);
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);
}

/* timers_stop disarms all five; next_deadline reports the earliest of several. */
static void test_stop_and_next_deadline(void **state)
{
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	assert_true(timers_set_persistent_keepalive(&x.t, 7, START));
	timers_event_session_derived(&x.t, START);
	timers_event_data_sent(&x.t, START);		/* 15 s */
	timers_event_handshake_initiated(&x.t, START);	/* 5.333 s */
	timers_event_data_received(&x.t, START);		/* 10 s */
	assert_int_equal(timers_next_deadline(&x.t), REL(5333 * MS));
	assert_int_equal(timers_run(&x.t, REL(5333 * MS)),
			 TIMERS_SEND_INITIATION_RETRY | TIMERS_CLEAR_SOURCE);
	assert_int_equal(timers_next_deadline(&x.t), REL(7 * SEC));
	assert_int_equal(timers_run(&x.t, REL(10 * SEC)), TIMERS_SEND_KEEPALIVE);
	assert_int_equal(timers_next_deadline(&x.t), REL(15 * SEC));

	timers_event_handshake_initiated(&x.t, REL(10 * SEC));
	timers_event_data_received(&x.t, REL(10 * SEC));
	timers_event_any_authenticated_packet_traversal(&x.t, REL(10 * SEC));
	timers_stop(&x.t);
	assert_int_equal(timers_next_deadline(&x.t), UINT64_MAX);
	assert_int_equal(timers_run(&x.t, REL(100000 * SEC)), 0);
}

/* Rekey on send: 120 s for the initiator only, the message limit for both. */
static const struct {
	bool initiator;
	uint64_t created, counter, now;
	bool want;
} send_rows[] = {
	/*  1 */ { true, START, 0, REL(119999 * MS), false },
	/*  2 */ { true, START, 0, REL(120 * SEC - 1), false },
	/*  3 */ { true, START, 0, REL(120 * SEC), true },
	/*  4 */ { true, START, 0, REL(10000 * SEC), true },
	/*  5 */ { false, START, 0, REL(120 * SEC), false },
	/*  6 */ { false, START, 0, REL(10000 * SEC), false },
	/*  7 */ { false, START, REKEY_AFTER_MESSAGES, REL(1 * SEC), false },
	/*  8 */ { false, START, REKEY_AFTER_MESSAGES + 1, REL(1 * SEC), true },
	/*  9 */ { true, START, REKEY_AFTER_MESSAGES, REL(119999 * MS), false },
	/* 10 */ { true, START, REKEY_AFTER_MESSAGES + 1, REL(1 * SEC), true },
	/* 11 */ { true, REL(500 * SEC), 0, REL(100 * SEC), false },	/* created "later" */
};

static void test_rekey_on_send(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(send_rows); i++)
		if (timers_want_rekey_on_send(send_rows[i].initiator, send_rows[i].created,
					      send_rows[i].counter, send_rows[i].now) !=
		    send_rows[i].want)
			fail_msg("row %zu", i + 1);
}

/* Rekey on receive: initiator only, from 165 s, once per session. */
static void test_rekey_on_receive(void **state)
{
	uint64_t c2 = REL(200 * SEC);
	struct fix x;

	(void)state;
	fix_init(&x, jitters, ARRAY_SIZE(jitters));
	assert_false(timers_want_rekey_on_receive(&x.t, true, START, REL(164999 * MS)));
	assert_false(timers_want_rekey_on_receive(&x.t, true, START, REL(165 * SEC - 1)));
	assert_false(timers_want_rekey_on_receive(&x.t, false, START, REL(170 * SEC)));
	assert_false(x.t.sent_lastminute_handshake);
	assert_true(timers_want_rekey_on_receive(&x.t, true, START, REL(165 * SEC)));
	assert_true(x.t.sent_lastminute_handshake);
	assert_false(timers_want_rekey_on_receive(&x.t, true, START, REL(165 * SEC)));
	assert_false(timers_want_rekey_on_receive(&x.t, true, START, REL(179 * SEC)));

	/* A completed handshake starts a new session and allows one more. */
	timers_event_handshake_complete(&x.t, c2);
	assert_false(timers_want_rekey_on_receive(&x.t, true, c2, c2 + 164999 * MS));
	assert_true(timers_want_rekey_on_receive(&x.t, true, c2, c2 + 165 * SEC));
	assert_false(timers_want_rekey_on_receive(&x.t, true, c2, c2 + 166 * SEC));
}

static const struct {
	uint64_t created, counter, now;
	bool expired;
} expiry_rows[] = {
	/* 1 */ { START, 0, REL(179999 * MS), false },
	/* 2 */ { START, 0, REL(180 * SEC - 1), false },
	/* 3 */ { START, 0, REL(180 * SEC), true },
	/* 4 */ { START, REJECT_AFTER_MESSAGES - 1, REL(1 * SEC), false },
	/* 5 */ { START, REJECT_AFTER_MESSAGES, REL(1 * SEC), true },
	/* 6 */ { START, UINT64_MAX, START, true },
	/* 7 */ { START, REKEY_AFTER_MESSAGES + 1, REL(179 * SEC), false },
	/* 8 */ { REL(500 * SEC), 0, REL(100 * SEC), false },
};

static void test_keypair_expired(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(expiry_rows); i++)
		if (timers_keypair_expired(expiry_rows[i].created, expiry_rows[i].counter,
					   expiry_rows[i].now) != expiry_rows[i].expired)
			fail_msg("row %zu", i + 1);
}

/*
 * The simulator plays the daemon's part: it calls the events in the order of
 * the kernel's wg_timers_* calls in send.c and receive.c, performs the actions timers_run
 * returns, and logs what it sent and when. Time moves in 1 ms steps, so an
 * action that fired a millisecond early or late shows up in the log.
 */
enum { LOG_MAX = 256 };

struct sim {
	struct fix x;
	uint64_t now;
	uint64_t respond_delay;	/* peer answers initiations after this; 0 = never */
	uint64_t respond_at;
	bool session, initiator;
	uint64_t created, send_counter;

	unsigned int initiations, fresh, retries, clears, keepalives, give_ups, wipes;
	uint64_t init_at[LOG_MAX], keepalive_at[LOG_MAX];
	uint32_t init_jitter[LOG_MAX];
	uint64_t give_up_at, wipe_at;
};

static void sim_init(struct sim *s)
{
	memset(s, 0, sizeof(*s));
	fix_init(&s->x, jitters, ARRAY_SIZE(jitters));
	s->now = START;
}

static void sim_send_initiation(struct sim *s, bool is_retry)
{
	size_t draws = s->x.f.draws;

	if (!timers_may_send_initiation(&s->x.t, s->now, is_retry))
		return;
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	timers_event_any_authenticated_packet_sent(&s->x.t, s->now);
	timers_event_handshake_initiated(&s->x.t, s->now);
	assert_int_equal(s->x.f.draws, draws + 1);
	assert_true(s->initiations < LOG_MAX);
	s->init_jitter[s->initiations] = s->x.f.last;
	s->init_at[s->initiations++] = s->now;
	if (s->respond_delay)
		s->respond_at = s->now + s->respond_delay;
}

static void sim_send_keepalive(struct sim *s)
{
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	timers_event_any_authenticated_packet_sent(&s->x.t, s->now);
	assert_true(s->keepalives < LOG_MAX);
	s->keepalive_at[s->keepalives++] = s->now;
}

/* Without a session the packet is staged and a handshake started instead (the kernel's wg_packet_send_staged_packets). */
static void sim_send_data(struct sim *s)
{
	if (!s->session) {
		sim_send_initiation(s, false);
		return;
	}
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	timers_event_any_authenticated_packet_sent(&s->x.t, s->now);
	timers_event_data_sent(&s->x.t, s->now);
	if (timers_want_rekey_on_send(s->initiator, s->created, ++s->send_counter, s->now))
		sim_send_initiation(s, false);
}

static void sim_receive(struct sim *s, bool data)
{
	if (s->session && timers_want_rekey_on_receive(&s->x.t, s->initiator, s->created, s->now))
		sim_send_initiation(s, false);
	timers_event_any_authenticated_packet_received(&s->x.t, s->now);
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	if (data)
		timers_event_data_received(&s->x.t, s->now);
}

/* We initiated: the response completes the handshake and a keepalive confirms it. */
static void sim_receive_response(struct sim *s)
{
	timers_event_session_derived(&s->x.t, s->now);
	timers_event_handshake_complete(&s->x.t, s->now);
	timers_event_any_authenticated_packet_received(&s->x.t, s->now);
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	s->session = true;
	s->initiator = true;
	s->created = s->now;
	s->send_counter = 0;
	timers_event_any_authenticated_packet_traversal(&s->x.t, s->now);
	timers_event_any_authenticated_packet_sent(&s->x.t, s->now);
}

static void sim_tick(struct sim *s)
{
	uint64_t due;
	unsigned int act;

	if (s->respond_at == s->now) {
		s->respond_at = 0;
		sim_receive_response(s);
	}
	due = timers_next_deadline(&s->x.t);
	/* Every deadline here is a whole millisecond, so none may be overdue. */
	assert_true(due >= s->now);
	act = timers_run(&s->x.t, s->now);
	assert_int_equal(act != 0, due == s->now);
	if (act & TIMERS_CLEAR_SOURCE)
		s->clears++;
	if (act & TIMERS_GIVE_UP) {
		s->give_ups++;
		s->give_up_at = s->now;
	}
	if (act & TIMERS_SEND_INITIATION_RETRY) {
		s->retries++;
		sim_send_initiation(s, true);
	}
	if (act & TIMERS_SEND_INITIATION) {
		s->fresh++;
		sim_send_initiation(s, false);
	}
	if (act & TIMERS_SEND_KEEPALIVE)
		sim_send_keepalive(s);
	if (act & TIMERS_WIPE_KEYS) {
		s->wipes++;
		s->wipe_at = s->now;
		s->session = false;
	}
}

/* Runs every millisecond after now up to and including until. */
static void sim_advance(struct sim *s, uint64_t until)
{
	assert_true(until >= s->now && (until - s->now) % MS == 0);
	while (s->now < until) {
		s->now += MS;
		sim_tick(s);
	}
}

/* Initiations i.. must follow each other at 5 s plus the jitter each one drew. */
static uint64_t check_retry_chain(const struct sim *s, unsigned int first, unsigned int n)
{
	uint64_t at = s->init_at[first];
	unsigned int i;

	for (i = first; i < first + n; i++) {
		if (s->init_at[i] != at)
			fail_msg("initiation %u at %llu, want %llu", i,
				 (unsigned long long)s->init_at[i], (unsigned long long)at);
		at += REKEY_TIMEOUT + s->init_jitter[i] * MS;
	}
	return at;
}

/*
 * Nobody answers: 1 + 19 = 20 initiations, the give-up at the 20th expiry,
 * the wipe 540 s after that, then silence for the rest of the hour. Fresh
 * data afterwards starts the whole cycle again from zero attempts.
 */
static void test_sim_handshake_never_completes(void **state)
{
	static struct sim s;
	unsigned int i;
	uint64_t give_up;

	(void)state;
	sim_init(&s);
	sim_send_data(&s);
	sim_advance(&s, REL(3600 * SEC));
	assert_int_equal(s.initiations, 20);
	assert_int_equal(s.retries, 19);
	assert_int_equal(s.fresh, 0);
	assert_int_equal(s.clears, 19);
	assert_int_equal(s.give_ups, 1);
	assert_int_equal(s.wipes, 1);
	assert_int_equal(s.keepalives, 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(s.init_jitter[i], jitters[i % ARRAY_SIZE(jitters)]);
	assert_int_equal(s.init_at[0], START);
	give_up = check_retry_chain(&s, 0, 20);
	assert_int_equal(s.give_up_at, give_up);
	assert_int_equal(s.wipe_at, give_up + 540 * SEC);
	assert_int_equal(timers_next_deadline(&s.x.t), UINT64_MAX);

	sim_send_data(&s);
	sim_advance(&s, REL(5400 * SEC));
	assert_int_equal(s.initiations, 40);
	assert_int_equal(s.init_at[20], REL(3600 * SEC));
	give_up = check_retry_chain(&s, 20, 20);
	assert_int_equal(s.give_ups, 2);
	assert_int_equal(s.give_up_at, give_up);
	assert_int_equal(s.wipes, 2);
	assert_int_equal(s.wipe_at, give_up + 540 * SEC);
}

/*
 * Data both ways every 2 s for a minute, then the peer goes silent after
 * our last send at 60 s: new_handshake fires 15 s + jitter later, 20
 * initiations go unanswered, and the wipe comes 540 s after the session was
 * derived (already pending, so the give-up does not push it back). No
 * passive keepalive is ever due, since we always spoke last.
 */
static void test_sim_peer_goes_silent(void **state)
{
	static struct sim s;
	uint32_t new_handshake_jitter = 0;
	unsigned int k;

	(void)state;
	sim_init(&s);
	s.respond_delay = 50 * MS;
	sim_send_data(&s);
	sim_advance(&s, REL(50 * MS));
	assert_true(s.session);
	s.respond_delay = 0;
	for (k = 1; k <= 30; k++) {
		sim_advance(&s, REL(2 * k * SEC));
		sim_send_data(&s);
		new_handshake_jitter = s.x.f.last;
		if (k < 30) {
			sim_advance(&s, REL(2 * k * SEC + 100 * MS));
			sim_receive(&s, true);
		}
	}
	sim_advance(&s, REL(75 * SEC + new_handshake_jitter * MS - MS));
	assert_int_equal(s.initiations, 1);
	sim_advance(&s, REL(3600 * SEC));

	assert_int_equal(s.initiations, 21);
	assert_int_equal(s.fresh, 1);
	assert_int_equal(s.retries, 19);
	assert_int_equal(s.clears, 20);
	assert_int_equal(s.init_at[1], REL(75 * SEC + new_handshake_jitter * MS));
	assert_int_equal(s.give_up_at, check_retry_chain(&s, 1, 20));
	assert_int_equal(s.give_ups, 1);
	assert_int_equal(s.wipes, 1);
	assert_int_equal(s.wipe_at, REL(540 * SEC + 50 * MS));
	assert_int_equal(s.keepalives, 0);
}

/*
 * Three hours of healthy traffic: we send every 3 s, the peer answers 1 s
 * later. As initiator we rekey on the first send at least 120 s into each
 * session: sessions start 50 ms after sends at multiples of 123 s, so the
 * initiations land exactly there. Nothing else fires. Then both fall quiet:
 * one passive keepalive answers the last data 10 s later, and the keys are
 * wiped 540 s after the last session began.
 */
static void test_sim_long_session(void **state)
{
	static struct sim s;
	unsigned int k, m;

	(void)state;
	sim_init(&s);
	s.respond_delay = 50 * MS;
	sim_send_data(&s);
	for (k = 1; k <= 3600; k++) {
		sim_advance(&s, REL(3 * k * SEC));
		sim_send_data(&s);
		sim_advance(&s, REL((3 * k + 1) * SEC));
		sim_receive(&s, true);
	}
	assert_int_equal(s.initiations, 88);
	for (m = 0; m < 88; m++)
		assert_int_equal(s.init_at[m], REL(123 * m * SEC));
	assert_int_equal(s.fresh + s.retries + s.clears + s.give_ups + s.wipes + s.keepalives, 0);

	sim_advance(&s, REL(14400 * SEC));
	assert_int_equal(s.keepalives, 1);
	assert_int_equal(s.keepalive_at[0], REL(10811 * SEC));
	assert_int_equal(s.wipes, 1);
	assert_int_equal(s.wipe_at, REL((123 * 87 + 540) * SEC + 50 * MS));
	assert_int_equal(s.initiations, 88);
	assert_int_equal(s.fresh + s.retries + s.give_ups, 0);
}

/*
 * Persistent keepalive 25 s on an idle link: the switch-on keepalive, then
 * one every 25 s for an hour. A received packet restarts the interval;
 * switching off stops them. Persistent keepalives draw no jitter.
 */
static void test_sim_persistent_keepalive(void **state)
{
	static struct sim s;
	unsigned int k;

	(void)state;
	sim_init(&s);
	assert_true(timers_set_persistent_keepalive(&s.x.t, 25, s.now));
	sim_send_keepalive(&s);
	sim_advance(&s, REL(3600 * SEC));
	assert_int_equal(s.keepalives, 1 + 144);
	for (k = 0; k <= 144; k++)
		assert_int_equal(s.keepalive_at[k], REL(25 * k * SEC));

	sim_advance(&s, REL(3610 * SEC));
	sim_receive(&s, false);
	sim_advance(&s, REL(3700 * SEC));
	assert_int_equal(s.keepalives, 145 + 3);
	assert_int_equal(s.keepalive_at[145], REL(3635 * SEC));
	assert_int_equal(s.keepalive_at[146], REL(3660 * SEC));
	assert_int_equal(s.keepalive_at[147], REL(3685 * SEC));

	assert_false(timers_set_persistent_keepalive(&s.x.t, 0, s.now));
	sim_advance(&s, REL(7300 * SEC));
	assert_int_equal(s.keepalives, 148);
	assert_int_equal(s.x.f.draws, 0);
	assert_int_equal(s.initiations + s.wipes + s.give_ups, 0);
}

/*
 * Passive keepalive: data received and not answered gets a keepalive exactly
 * 10 s later. Answered data gets none, and neither does data that arrives
 * while one is pending: our keepalive cancels the extra one it asked for.
 */
static void test_sim_passive_keepalive(void **state)
{
	static struct sim s;

	(void)state;
	sim_init(&s);
	s.session = true;	/* as responder: no rekey on age */
	s.created = START;
	sim_receive(&s, true);
	sim_advance(&s, REL(100 * SEC));
	assert_int_equal(s.keepalives, 1);
	assert_int_equal(s.keepalive_at[0], REL(10 * SEC));

	sim_receive(&s, true);
	sim_advance(&s, REL(103 * SEC));
	sim_send_data(&s);
	sim_advance(&s, REL(104 * SEC));
	sim_receive(&s, false);
	sim_advance(&s, REL(3700 * SEC));
	assert_int_equal(s.keepalives, 1);

	sim_receive(&s, true);
	sim_advance(&s, REL(3704 * SEC));
	sim_receive(&s, true);
	sim_advance(&s, REL(7300 * SEC));
	assert_int_equal(s.keepalives, 2);
	assert_int_equal(s.keepalive_at[1], REL(3710 * SEC));
	assert_int_equal(s.initiations + s.give_ups + s.wipes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_idle),
		cmocka_unit_test(test_single_timers),
		cmocka_unit_test(test_jitter_range),
		cmocka_unit_test(test_new_handshake_rules),
		cmocka_unit_test(test_need_another_keepalive),
		cmocka_unit_test(test_zero_key_material_rearm),
		cmocka_unit_test(test_give_up_details),
		cmocka_unit_test(test_may_send_initiation),
		cmocka_unit_test(test_persistent_keepalive_settings),
		cmocka_unit_test(test_stop_and_next_deadline),
		cmocka_unit_test(test_rekey_on_send),
		cmocka_unit_test(test_rekey_on_receive),
		cmocka_unit_test(test_keypair_expired),
		cmocka_unit_test(test_sim_handshake_never_completes),
		cmocka_unit_test(test_sim_peer_goes_silent),
		cmocka_unit_test(test_sim_long_session),
		cmocka_unit_test(test_sim_persistent_keepalive),
		cmocka_unit_test(test_sim_passive_keepalive),
	};

	return cmocka_run_group_tests_name("timers", tests, NULL, NULL);
}
