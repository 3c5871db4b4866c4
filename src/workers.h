/* SPDX-License-Identifier: MIT */
/*
 * veild's crypto workers: a batch of transport AEAD jobs (struct
 * wg_crypt_job, src/core/device.h) run on several threads, the loop's own
 * included, and workers_run returns once every job of the batch is done.
 * The loop's thread keeps everything else: counters are taken and replay
 * windows moved there, in order, before and after a batch, so a peer's
 * packets leave in the order they were staged and arrive in the order they
 * were received (docs/performance.md, "Several cores").
 *
 * Each thread seals and opens under contexts of its own, made once and
 * re-keyed in place for the keypair of each job (aead_rekey: no allocation
 * on the data path); the caller's are keyed to zeros after each batch, a
 * thread's when it goes idle. A batch too small to be worth waking anyone
 * runs on the calling thread alone, under the keypairs' own contexts,
 * exactly as without workers.
 */
#ifndef VEIL_WORKERS_H
#define VEIL_WORKERS_H

#include <stddef.h>

#include "core/compiler.h"
#include "core/device.h"

enum {
	WORKERS_MAX = 64,
	/* Fewer jobs than this run on the calling thread: a wake-up costs more. */
	WORKERS_MIN_BATCH = 4,
};

struct workers;

/*
 * How many workers to run by default: one less than the CPUs this process
 * may run on (sched_getaffinity), at least 1, at most WORKERS_MAX. The
 * loop's thread is a worker too, and the kernel's side of each packet (the
 * TUN device, the UDP stack, which took a third of the time in the
 * profile) needs a core of its own: on two CPUs a second worker only took
 * time from it (docs/performance.md, "Several cores").
 */
unsigned int workers_default(void);

/*
 * Start a pool of n workers, the calling thread being one of them: n - 1
 * threads. n == 1 starts none (every batch runs on the caller). 0, or
 * -EINVAL (n out of 1..WORKERS_MAX), -ENOMEM, or a pthread_create error.
 */
int workers_start(struct workers **out, unsigned int n) __must_check;
/* Stop and join the threads and free the pool (NULL is fine). */
void workers_stop(struct workers *w);
unsigned int workers_count(const struct workers *w);

/*
 * Run jobs[0..n) and return when all are done (each job's result set).
 * Only the thread that started the pool calls it.
 */
void workers_run(struct workers *w, struct wg_crypt_job *jobs, size_t n);

#endif
