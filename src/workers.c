// SPDX-License-Identifier: MIT
/*
 * The crypto workers (workers.h). One batch at a time: the caller publishes
 * the jobs, wakes the sleeping threads, takes jobs itself and then waits
 * until every job is done. Jobs are claimed one by one from a single word
 * that holds the batch's number, its size and the next job, so a thread
 * that wakes late for a batch already finished claims nothing, and never a
 * job of the next batch. Between batches a thread spins briefly (SPIN),
 * then sleeps on a futex: nothing spins on an idle tunnel.
 */
#include "workers.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/aead.h"

enum {
	/* Jobs per batch the claim word can count; a longer batch runs in parts. */
	CLAIM_MAX = 0xffff,
	/*
	 * How long (pause instructions, some tens of microseconds) the caller
	 * spins for the last jobs, and a thread for the next batch, before it
	 * sleeps: under load batches follow each other closely, and waking a
	 * sleeping thread costs about as much as a batch (a virtual CPU's
	 * wake-up is tens of microseconds).
	 */
	SPIN = 2000,
};

/*
 * A thread's own contexts, one per suite and direction, made once and
 * re-keyed in place for each keypair it serves (no allocation on the data
 * path), and each keyed to zeros again when the thread goes idle.
 */
struct share {
	struct aead_ctx ctx[2][2];		  /* [AES-256-GCM?][open?] */
	const struct noise_keypair *kp[2][2]; /* whose key each holds, or NULL */
	uint64_t serial[2][2];
};

/*
 * The words threads write often sit on cache lines of their own (claim,
 * gen, done), which costs padding on purpose.
 */
struct workers { /* NOLINT(clang-analyzer-optin.performance.Padding): see above */
	unsigned int n; /* threads in all, the caller's included */
	unsigned int started; /* threads created (n - 1 once up) */
	pthread_t threads[WORKERS_MAX];
	struct share share[WORKERS_MAX]; /* share[0] is the caller's */
	struct wg_crypt_job *jobs;
	/* batch number << 32 | size << 16 | next job: what a thread may claim */
	_Alignas(64) _Atomic uint64_t claim;
	_Alignas(64) _Atomic uint32_t gen; /* the batch number, which threads sleep on */
	_Atomic uint32_t sleepers;
	_Atomic bool stop;
	_Alignas(64) _Atomic uint32_t done; /* jobs finished in this batch; the caller sleeps on it */
	_Atomic uint32_t waiting;
	_Atomic uint32_t running; /* threads that reached thread_main */
};

struct thread_arg {
	struct workers *w;
	unsigned int index;
};

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

unsigned int workers_default(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	n = CPU_COUNT(&set) - 1;
	if (n < 1)
		return 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned int)n;
}

unsigned int workers_count(const struct workers *w)
{
	return w ? w->n : 1;
}

static const uint8_t zero_key[32];

/* This thread's context for job, keyed with its keypair's key; NULL if it cannot be. */
static struct aead_ctx *context_for(struct share *s, const struct wg_crypt_job *j)
{
	bool aes;
	const uint8_t *key = wg_crypt_job_key(j, &aes);
	int dir = j->open ? 1 : 0;

	if (s->kp[aes][dir] != j->kp || s->serial[aes][dir] != j->serial) {
		s->kp[aes][dir] = NULL;
		if (aead_rekey(&s->ctx[aes][dir], key))
			return NULL;
		s->kp[aes][dir] = j->kp;
		s->serial[aes][dir] = j->serial;
	}
	return &s->ctx[aes][dir];
}

/* Key every context that holds a keypair's key to zeros: nothing of it stays here. */
static void wipe_share(struct share *s)
{
	int a, d;

	for (a = 0; a < 2; a++)
		for (d = 0; d < 2; d++)
			if (s->kp[a][d]) {
				s->kp[a][d] = NULL;
				if (aead_rekey(&s->ctx[a][d], zero_key))
					aead_free(&s->ctx[a][d]); /* cannot be: OpenSSL wipes it as it frees */
			}
}

/* Take the next job of batch gen, if there is one left. */
static bool claim(struct workers *w, uint32_t gen, uint32_t *index)
{
	uint64_t c = atomic_load(&w->claim);

	for (;;) {
		uint32_t size = (uint32_t)(c >> 16) & CLAIM_MAX, next = (uint32_t)c & CLAIM_MAX;

		if ((uint32_t)(c >> 32) != gen || next >= size)
			return false;
		if (atomic_compare_exchange_weak(&w->claim, &c, c + 1)) {
			*index = next;
			return true;
		}
	}
}

/* Run jobs of batch gen until none is left. */
static void run_share(struct workers *w, struct share *s, uint32_t gen, uint32_t size)
{
	uint32_t i;

	while (claim(w, gen, &i)) {
		struct wg_crypt_job *j = &w->jobs[i];
		struct aead_ctx *ctx = context_for(s, j);

		if (ctx) {
			wg_crypt_job_run(j, ctx);
		} else {
			/* No context: the job fails, and a message to seal never leaves. */
			j->result = j->open ? -EBADMSG : -EIO;
			if (!j->open)
				memset(j->msg + DATA_HEADER_LEN, 0, j->len);
		}
		if (atomic_fetch_add(&w->done, 1) + 1 == size && atomic_load(&w->waiting))
			futex_wake(&w->done);
	}
}

static void *thread_main(void *arg)
{
	struct thread_arg *ta = arg;
	struct workers *w = ta->w;
	struct share *s = &w->share[ta->index];
	uint32_t seen = 0, gen;
	int spun = SPIN; /* asleep until the first batch */

	free(ta);
	atomic_fetch_add(&w->running, 1);
	futex_wake(&w->running);
	for (;;) {
		gen = atomic_load(&w->gen);
		if (atomic_load(&w->stop))
			break;
		if (gen == seen && spun < SPIN) {
			spun++;
			cpu_relax();
			continue;
		}
		if (gen == seen) {
			wipe_share(s); /* idle: no key stays in this thread's contexts */
			atomic_fetch_add(&w->sleepers, 1);
			futex_wait(&w->gen, seen);
			atomic_fetch_sub(&w->sleepers, 1);
			continue;
		}
		seen = gen;
		spun = 0;
		run_share(w, s, gen, (uint32_t)(atomic_load(&w->claim) >> 16) & CLAIM_MAX);
	}
	return NULL;
}

static void free_pool(struct workers *w)
{
	unsigned int i;
	int a, d;

	for (i = 0; i < w->n; i++)
		for (a = 0; a < 2; a++)
			for (d = 0; d < 2; d++)
				aead_free(&w->share[i].ctx[a][d]);
	free(w);
}

/* Each thread's four contexts (made here, before any sandbox: OpenSSL may load what it needs). */
static int make_shares(struct workers *w)
{
	unsigned int i;
	int a, d, err;

	for (i = 0; i < w->n; i++)
		for (a = 0; a < 2; a++)
			for (d = 0; d < 2; d++) {
				err = aead_init(&w->share[i].ctx[a][d], a, zero_key, !d);
				if (err)
					return err;
			}
	return 0;
}

void workers_stop(struct workers *w)
{
	unsigned int i;

	if (!w)
		return;
	atomic_store(&w->stop, true);
	atomic_fetch_add(&w->gen, 1);
	futex_wake(&w->gen);
	for (i = 0; i < w->started; i++)
		pthread_join(w->threads[i], NULL);
	free_pool(w);
}

int workers_start(struct workers **out, unsigned int n)
{
	struct workers *w;
	sigset_t all, old;
	int err = 0;

	*out = NULL;
	if (n < 1 || n > WORKERS_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->n = n;
	if (n > 1) {
		err = make_shares(w);
		if (err) {
			free_pool(w);
			return err;
		}
	}
	/* Signals stay with the loop's thread: the threads start with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (w->started < n - 1) {
		struct thread_arg *ta = malloc(sizeof(*ta));

		if (!ta) {
			err = -ENOMEM;
			break;
		}
		ta->w = w;
		ta->index = w->started + 1;
		err = -pthread_create(&w->threads[w->started], NULL, thread_main, ta);
		if (err) {
			free(ta);
			break;
		}
		pthread_setname_np(w->threads[w->started], "veild-crypto");
		w->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		workers_stop(w);
		return err;
	}
	/*
	 * Return once every thread runs: libc's start of a thread makes system
	 * calls (rseq) that the seccomp filter, installed next, would refuse.
	 */
	for (uint32_t up; (up = atomic_load(&w->running)) < w->started;)
		futex_wait(&w->running, up);
	*out = w;
	return 0;
}

/* One batch of at most CLAIM_MAX jobs over every thread. */
static void run_batch(struct workers *w, struct wg_crypt_job *jobs, uint32_t n)
{
	uint32_t gen = atomic_load(&w->gen) + 1, d;
	int spin;

	w->jobs = jobs;
	atomic_store(&w->done, 0);
	atomic_store(&w->claim, (uint64_t)gen << 32 | (uint64_t)n << 16);
	atomic_store(&w->gen, gen);
	if (atomic_load(&w->sleepers))
		futex_wake(&w->gen);
	run_share(w, &w->share[0], gen, n);
	wipe_share(&w->share[0]); /* the caller's keep no key past its batch */
	for (spin = 0; atomic_load(&w->done) != n; spin++) {
		if (spin < SPIN) {
			cpu_relax();
			continue;
		}
		atomic_store(&w->waiting, 1);
		d = atomic_load(&w->done);
		if (d != n)
			futex_wait(&w->done, d);
		atomic_store(&w->waiting, 0);
	}
}

void workers_run(struct workers *w, struct wg_crypt_job *jobs, size_t n)
{
	size_t i;

	if (!w || w->n == 1 || n < WORKERS_MIN_BATCH) {
		/* Not worth a wake-up: here, under the keypairs' own contexts. */
		for (i = 0; i < n; i++)
			wg_crypt_job_run(&jobs[i], jobs[i].key);
		return;
	}
	for (i = 0; i < n; i += CLAIM_MAX)
		run_batch(w, jobs + i, (uint32_t)(n - i < CLAIM_MAX ? n - i : CLAIM_MAX));
}
