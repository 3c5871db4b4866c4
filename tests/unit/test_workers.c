// SPDX-License-Identifier: MIT
/*
 * The crypto workers (src/workers.c) against the same jobs run one by one on
 * the caller (wg_crypt_job_run under the keypair's own context): a batch of
 * seal jobs over four threads gives the same bytes; open jobs authenticate
 * what is intact and refuse what was damaged, under a wrong nonce or a wrong
 * key; 2,000 batches back to back (200 under valgrind), of sizes below
 * WORKERS_MIN_BATCH and above, seal and open mixed, each job checked; one
 * batch longer than a claim word counts; a job whose thread's context
 * cannot be keyed fails and leaves no plaintext; and the pool's limits. Six
 * keypairs over the two suites, so a thread's contexts are keyed again and
 * again within a batch. Four threads on a machine of two CPUs: they
 * interleave.
 * Built with -pthread; run under ThreadSanitizer by make check-tsan.
 */
#include "workers.c"

#include <sodium.h>
#include <stdlib.h>

#include "core/messages.h"
#include "test_util.h"

enum {
	KEYS = 6,	/* several per suite: a thread's context is keyed again and again */
	THREADS = 4,
	PAYLOAD_MAX = 1440,
	ROOM = DATA_HEADER_LEN + PAYLOAD_MAX + NOISE_AUTHTAG_LEN,
	BATCH_MAX = 128, /* the stress test's largest batch */
	STRESS_PAYLOAD = 64,
	STRESS_ROOM = DATA_HEADER_LEN + STRESS_PAYLOAD + NOISE_AUTHTAG_LEN,
};

/* Half ChaCha20-Poly1305, half AES-256-GCM; each keypair's key in both directions. */
static struct noise_keypair kps[KEYS];

static int keys_setup(void **state)
{
	struct test_rng_state rs = { 0x3057c0deULL };
	uint8_t key[32];
	int i;

	(void)state;
	for (i = 0; i < KEYS; i++) {
		test_rng_fill(&rs, key, sizeof(key));
		memcpy(kps[i].send_key, key, sizeof(key));
		memcpy(kps[i].recv_key, key, sizeof(key));
		kps[i].suite = i % 2 ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD;
		kps[i].serial = (uint64_t)i + 1;
		if (aead_init(&kps[i].send_ctx, i % 2, key, true) ||
		    aead_init(&kps[i].recv_ctx, i % 2, key, false))
			return -1;
	}
	sodium_memzero(key, sizeof(key));
	return 0;
}

static int keys_teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < KEYS; i++) {
		aead_free(&kps[i].send_ctx);
		aead_free(&kps[i].recv_ctx);
	}
	return 0;
}

static struct workers *start(unsigned int n)
{
	struct workers *w;

	assert_int_equal(workers_start(&w, n), 0);
	assert_non_null(w);
	assert_int_equal(workers_count(w), n);
	return w;
}

/* A seal job for key k: header, len bytes of random plaintext, then room for the tag. */
static void seal_job(struct wg_crypt_job *j, uint8_t *msg, int k, size_t len, uint64_t counter,
		     struct test_rng_state *rs)
{
	memset(msg, 0xee, DATA_HEADER_LEN + len + NOISE_AUTHTAG_LEN);
	le32_write(msg, MESSAGE_DATA);
	le64_write(msg + DATA_COUNTER, counter);
	test_rng_fill(rs, msg + DATA_HEADER_LEN, len);
	*j = (struct wg_crypt_job){ .key = &kps[k].send_ctx, .kp = &kps[k], .serial = kps[k].serial,
				    .msg = msg, .len = len, .counter = counter, .open = false,
				    .result = 99 };
}

/*
 * An open job for key k: a message of len payload bytes sealed here (its
 * plaintext left in plain), then maybe damaged: 1 a bit flipped in payload
 * or tag, 2 the wrong counter (nonce), 3 another key.
 */
static void open_job(struct wg_crypt_job *j, uint8_t *msg, uint8_t *plain, int k, size_t len,
		     uint64_t counter, int damage, struct test_rng_state *rs)
{
	struct wg_crypt_job s;
	size_t bit;

	seal_job(&s, msg, k, len, counter, rs);
	memcpy(plain, msg + DATA_HEADER_LEN, len);
	assert_int_equal(wg_crypt_job_run(&s, s.key), 0);
	*j = (struct wg_crypt_job){ .key = &kps[k].recv_ctx, .kp = &kps[k], .serial = kps[k].serial,
				    .msg = msg, .len = DATA_HEADER_LEN + len + NOISE_AUTHTAG_LEN,
				    .counter = counter, .open = true, .result = 99 };
	switch (damage) {
	case 1:
		bit = test_rng_next(rs) % ((len + NOISE_AUTHTAG_LEN) * 8);
		msg[DATA_HEADER_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		break;
	case 2:
		j->counter ^= 1ULL << (test_rng_next(rs) % 64);
		break;
	case 3:
		k = (k + 1 + (int)(test_rng_next(rs) % (KEYS - 1))) % KEYS;
		j->key = &kps[k].recv_ctx;
		j->kp = &kps[k];
		j->serial = kps[k].serial;
		break;
	}
}

/* The bytes a job covers: its whole message. */
static size_t span(const struct wg_crypt_job *j)
{
	return j->open ? j->len : DATA_HEADER_LEN + j->len + NOISE_AUTHTAG_LEN;
}

/*
 * Run jobs[0..n) over w, and a copy of each (in other, whose messages are
 * copies too) one by one here: every result and every byte must agree.
 */
static void run_and_compare(struct workers *w, struct wg_crypt_job *jobs, struct wg_crypt_job *ser,
			    uint8_t *ser_room, size_t room, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		ser[i] = jobs[i];
		ser[i].msg = ser_room + i * room;
		memcpy(ser[i].msg, jobs[i].msg, span(&jobs[i]));
		wg_crypt_job_run(&ser[i], ser[i].key);
	}
	workers_run(w, jobs, n);
	for (i = 0; i < n; i++) {
		if (jobs[i].result != ser[i].result)
			fail_msg("job %zu of %zu (%s, %zu bytes): result %d, alone %d", i, n,
				 jobs[i].open ? "open" : "seal", jobs[i].len, jobs[i].result, ser[i].result);
		if (memcmp(jobs[i].msg, ser[i].msg, span(&jobs[i])))
			fail_msg("job %zu of %zu (%s, %zu bytes): other bytes than alone", i, n,
				 jobs[i].open ? "open" : "seal", jobs[i].len);
	}
}

/* ---- one batch of each kind -------------------------------------------------------------- */

static void test_seal_matches_serial(void **state)
{
	enum { N = 200 };
	struct test_rng_state rs = { 0x5ea1ULL };
	struct wg_crypt_job jobs[N], ser[N];
	uint8_t *room = malloc(2 * N * ROOM), *plain = malloc(N * PAYLOAD_MAX);
	struct workers *w = start(THREADS);
	size_t i, len;

	(void)state;
	assert_non_null(room);
	assert_non_null(plain);
	for (i = 0; i < N; i++) {
		/* Every length class: empty (a keepalive), short, odd, full. */
		len = i == 0 ? 0 : i == 1 ? PAYLOAD_MAX : test_rng_next(&rs) % (PAYLOAD_MAX + 1);
		seal_job(&jobs[i], room + i * ROOM, (int)(test_rng_next(&rs) % KEYS), len,
			 test_rng_next(&rs), &rs);
		memcpy(plain + i * PAYLOAD_MAX, jobs[i].msg + DATA_HEADER_LEN, len);
	}
	run_and_compare(w, jobs, ser, room + N * ROOM, ROOM, N);
	for (i = 0; i < N; i++) {
		assert_int_equal(jobs[i].result, 0);
		/* Sealed in place: no plaintext left, the header untouched. */
		if (jobs[i].len >= 16)
			assert_memory_not_equal(jobs[i].msg + DATA_HEADER_LEN, plain + i * PAYLOAD_MAX, 16);
		assert_int_equal(le64_read(jobs[i].msg + DATA_COUNTER), jobs[i].counter);
	}
	workers_stop(w);
	free(room);
	free(plain);
}

static void test_open_refuses_damage(void **state)
{
	enum { N = 200 };
	struct test_rng_state rs = { 0x0be11ULL };
	struct wg_crypt_job jobs[N], ser[N];
	uint8_t *room = malloc(2 * N * ROOM), *plain = malloc(N * PAYLOAD_MAX);
	struct workers *w = start(THREADS);
	int damage[N], bad = 0;
	size_t i, len;

	(void)state;
	assert_non_null(room);
	assert_non_null(plain);
	for (i = 0; i < N; i++) {
		len = test_rng_next(&rs) % (PAYLOAD_MAX + 1);
		damage[i] = i % 5 == 3 ? 1 + (int)(i / 5) % 3 : 0;
		bad += damage[i] != 0;
		open_job(&jobs[i], room + i * ROOM, plain + i * PAYLOAD_MAX,
			 (int)(test_rng_next(&rs) % KEYS), len, test_rng_next(&rs), damage[i], &rs);
	}
	run_and_compare(w, jobs, ser, room + N * ROOM, ROOM, N);
	for (i = 0; i < N; i++) {
		if (damage[i]) {
			assert_int_equal(jobs[i].result, -EBADMSG);
			continue;
		}
		assert_int_equal(jobs[i].result, 0);
		assert_memory_equal(jobs[i].msg + DATA_HEADER_LEN, plain + i * PAYLOAD_MAX,
				    jobs[i].len - DATA_MIN_LEN);
	}
	assert_int_equal(bad, 40);
	workers_stop(w);
	free(room);
	free(plain);
}

/* ---- many batches, one after the other ----------------------------------------------------- */

/* A batch's size: often below WORKERS_MIN_BATCH or right at it, else up to BATCH_MAX. */
static size_t batch_size(struct test_rng_state *rs)
{
	uint64_t r = test_rng_next(rs);

	switch (r % 8) {
	case 0:
		return (r >> 8) % WORKERS_MIN_BATCH; /* 0 .. 3: the caller alone */
	case 1:
		return WORKERS_MIN_BATCH + (r >> 8) % 2;
	default:
		return (r >> 8) % (BATCH_MAX + 1);
	}
}

/* Under valgrind (make check-valgrind), which runs one thread at a time and races nothing. */
static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}

static void test_many_batches(void **state)
{
	const size_t batches = under_valgrind() ? 200 : 2000;
	struct test_rng_state rs = { 0xba7c4e5ULL };
	struct wg_crypt_job jobs[BATCH_MAX], ser[BATCH_MAX];
	uint8_t *room = malloc(2 * BATCH_MAX * STRESS_ROOM), plain[STRESS_PAYLOAD];
	struct workers *w = start(THREADS);
	size_t b, i, n, len, sizes[3] = { 0 };
	int k;

	(void)state;
	assert_non_null(room);
	for (b = 0; b < batches; b++) {
		n = batch_size(&rs);
		sizes[n < WORKERS_MIN_BATCH ? 0 : n == WORKERS_MIN_BATCH ? 1 : 2]++;
		for (i = 0; i < n; i++) {
			uint64_t r = test_rng_next(&rs);

			len = r % (STRESS_PAYLOAD + 1);
			k = (int)((r >> 8) % KEYS);
			if (r >> 16 & 1)
				seal_job(&jobs[i], room + i * STRESS_ROOM, k, len, r >> 20, &rs);
			else
				open_job(&jobs[i], room + i * STRESS_ROOM, plain, k, len, r >> 20,
					 (r >> 17) % 8 == 0 ? 1 + (int)((r >> 24) % 3) : 0, &rs);
		}
		run_and_compare(w, jobs, ser, room + BATCH_MAX * STRESS_ROOM, STRESS_ROOM, n);
	}
	/* Every kind of size came up, many times. */
	assert_true(sizes[0] > batches / 20 && sizes[1] > batches / 40 && sizes[2] > batches / 2);
	workers_stop(w);
	free(room);
}

/* More jobs than one claim word counts (CLAIM_MAX): the batch runs in parts, every job once. */
static void test_longer_than_a_claim(void **state)
{
	enum { N = CLAIM_MAX + 4500, ROOM0 = DATA_HEADER_LEN + NOISE_AUTHTAG_LEN };
	struct test_rng_state rs = { 0x10e6ULL };
	struct wg_crypt_job *jobs = malloc(N * sizeof(*jobs)), *ser = malloc(N * sizeof(*ser));
	uint8_t *room = malloc(2 * (size_t)N * ROOM0);
	struct workers *w = start(THREADS);
	size_t i;

	(void)state;
	assert_true(jobs && ser && room);
	/* Keepalives: the tag is all there is to compare. */
	for (i = 0; i < N; i++)
		seal_job(&jobs[i], room + i * ROOM0, (int)(i % KEYS), 0, i, &rs);
	run_and_compare(w, jobs, ser, room + (size_t)N * ROOM0, ROOM0, N);
	workers_stop(w);
	free(jobs);
	free(ser);
	free(room);
}

/* ---- failures and limits ---------------------------------------------------------------- */

/*
 * A thread context that cannot be keyed (here: the AES-256-GCM ones of every
 * thread are gone) fails its job, and a seal leaves no plaintext; the other
 * suite's jobs of the batch are done.
 */
static void test_unkeyable_context(void **state)
{
	enum { N = 16 };
	struct test_rng_state rs = { 0xdeadc0deULL };
	struct wg_crypt_job jobs[N];
	uint8_t *room = malloc(N * ROOM), plain[PAYLOAD_MAX];
	struct workers *w = start(THREADS);
	size_t i;
	int d;

	(void)state;
	assert_non_null(room);
	for (i = 0; i < THREADS; i++)
		for (d = 0; d < 2; d++)
			aead_free(&w->share[i].ctx[1][d]);
	for (i = 0; i < N; i++) {
		if (i % 4 >= 2)
			open_job(&jobs[i], room + i * ROOM, plain, (int)(i % KEYS), 100, i, 0, &rs);
		else
			seal_job(&jobs[i], room + i * ROOM, (int)(i % KEYS), 100, i, &rs);
	}
	workers_run(w, jobs, N);
	for (i = 0; i < N; i++) {
		if (jobs[i].kp->suite == NOISE_SUITE_WIREGUARD) {
			assert_int_equal(jobs[i].result, 0);
		} else if (jobs[i].open) {
			assert_int_equal(jobs[i].result, -EBADMSG);
		} else {
			assert_int_equal(jobs[i].result, -EIO);
			assert_true(sodium_is_zero(jobs[i].msg + DATA_HEADER_LEN, jobs[i].len));
		}
	}
	workers_stop(w);
	free(room);
}

static void test_limits(void **state)
{
	static const unsigned int sizes[] = { 1, 2, THREADS, WORKERS_MAX };
	struct test_rng_state rs = { 0x11a175ULL };
	struct wg_crypt_job jobs[8], ser[8];
	uint8_t room[2 * 8 * 64];
	struct workers *w = (struct workers *)&rs;
	cpu_set_t old, one;
	size_t i, s;
	int cpu, want;

	(void)state;
	assert_int_equal(workers_start(&w, 0), -EINVAL);
	assert_null(w);
	w = (struct workers *)&rs;
	assert_int_equal(workers_start(&w, WORKERS_MAX + 1), -EINVAL);
	assert_null(w);
	assert_int_equal(workers_count(NULL), 1);
	workers_stop(NULL);

	/* Each size starts, counts itself, runs a batch and stops. */
	for (s = 0; s < ARRAY_SIZE(sizes); s++) {
		w = start(sizes[s]);
		for (i = 0; i < 8; i++)
			seal_job(&jobs[i], room + i * 64, (int)(i % KEYS), 20, i, &rs);
		run_and_compare(w, jobs, ser, room + 8 * 64, 64, 8);
		workers_stop(w);
	}

	/*
	 * The default is one less than the CPUs of the affinity mask, at least
	 * one and at most WORKERS_MAX: one when the mask holds one CPU.
	 */
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	assert_true(workers_default() >= 1);
	want = CPU_COUNT(&old) - 1;
	want = want < 1 ? 1 : want > WORKERS_MAX ? WORKERS_MAX : want;
	assert_int_equal(workers_default(), want);
	for (cpu = 0; !CPU_ISSET(cpu, &old); cpu++)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	assert_int_equal(workers_default(), 1);
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_matches_serial),
		cmocka_unit_test(test_open_refuses_damage),
		cmocka_unit_test(test_many_batches),
		cmocka_unit_test(test_longer_than_a_claim),
		cmocka_unit_test(test_unkeyable_context),
		cmocka_unit_test(test_limits),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
