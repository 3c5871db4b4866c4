// SPDX-License-Identifier: MIT
/*
 * The crypto workers' scaling, where nothing but veild's batch path limits
 * the rate: batches of 64 transport messages of 1,420 bytes (a TUN batch,
 * or a 64 KB TCP segment cut up), sealed under one peer's keypair through
 * workers_run, as veild's send path does, with 1, 2, ... workers up to the
 * CPUs this process may use (one more than veild's default, which leaves a
 * core to the kernel's side of each packet). No I/O, no other process: on a machine with
 * N free cores it shows how the AEAD spreads over them. Then the same for
 * opening. Prints Gbit/s of payload per worker count and the ratio to one
 * worker; the best of a few rounds, as the machine is shared.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/aead.h"
#include "core/device.h"
#include "workers.h"

enum { JOBS = 64, PAYLOAD = 1420, MSG = DATA_HEADER_LEN + PAYLOAD + NOISE_AUTHTAG_LEN };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t msgs[JOBS][MSG], sealed[JOBS][MSG];
static struct noise_keypair kp; /* one peer's keypair: its key both ways */

/*
 * Payload Gbit/s of batches run on n workers, the best of three rounds of
 * secs seconds each. Only workers_run is timed: opening is in place, so each
 * open batch starts from fresh copies of the sealed messages, made untimed.
 */
static double rate(unsigned int n, bool open, double secs)
{
	struct wg_crypt_job jobs[JOBS];
	struct workers *w;
	double best = 0;
	uint64_t counter = 0;
	int round, i;

	if (workers_start(&w, n)) {
		fprintf(stderr, "bench_workers: cannot start %u workers\n", n);
		exit(1);
	}
	for (round = 0; round < 3; round++) {
		uint64_t batches = 0;
		double busy = 0, t0;

		while (busy < secs) {
			if (open)
				memcpy(msgs, sealed, sizeof(msgs));
			for (i = 0; i < JOBS; i++)
				jobs[i] = (struct wg_crypt_job){
					.key = open ? &kp.recv_ctx : &kp.send_ctx,
					.kp = &kp,
					.serial = kp.serial,
					.msg = msgs[i],
					.len = open ? MSG : PAYLOAD,
					.counter = open ? (uint64_t)i : counter++,
					.open = open,
				};
			t0 = now_s();
			workers_run(w, jobs, JOBS);
			busy += now_s() - t0;
			for (i = 0; i < JOBS; i++) {
				if (jobs[i].result) {
					fprintf(stderr, "bench_workers: job %d failed: %d\n", i,
						jobs[i].result);
					exit(1);
				}
			}
			batches++;
		}
		if ((double)batches * JOBS * PAYLOAD * 8 / busy / 1e9 > best)
			best = (double)batches * JOBS * PAYLOAD * 8 / busy / 1e9;
	}
	workers_stop(w);
	return best;
}

/* One suite's table: 1, 2, ... workers. */
static int suite(bool aes, unsigned int max)
{
	static const uint8_t key[32] = { 7 };
	struct wg_crypt_job j;
	double one_seal = 0, one_open = 0;
	unsigned int n;
	int i;

	memcpy(kp.send_key, key, sizeof(key));
	memcpy(kp.recv_key, key, sizeof(key));
	kp.suite = aes ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD;
	kp.serial++;
	if (aead_init(&kp.send_ctx, aes, key, true) || aead_init(&kp.recv_ctx, aes, key, false)) {
		fprintf(stderr, "bench_workers: no AEAD\n");
		return 1;
	}
	/* Messages sealed with counters 0..JOBS-1, for the open rounds. */
	for (i = 0; i < JOBS; i++) {
		memset(sealed[i], i, MSG);
		j = (struct wg_crypt_job){ .key = &kp.send_ctx, .kp = &kp, .serial = kp.serial,
					   .msg = sealed[i], .len = PAYLOAD, .counter = (uint64_t)i };
		if (wg_crypt_job_run(&j, &kp.send_ctx))
			return 1;
	}
	printf("crypto workers, %s, batches of %d x %d bytes, %u CPUs usable:\n",
	       aes ? "AES-256-GCM" : "ChaCha20-Poly1305", JOBS, PAYLOAD, max);
	for (n = 1; n <= max; n = n < 4 ? n + 1 : n * 2) {
		double s = rate(n, false, 0.3), o = rate(n, true, 0.3);

		if (n == 1) {
			one_seal = s;
			one_open = o;
		}
		printf("  %2u worker%s: seal %6.2f Gbit/s (%.2fx), open %6.2f Gbit/s (%.2fx)\n", n,
		       n == 1 ? " " : "s", s, s / one_seal, o, o / one_open);
	}
	aead_free(&kp.send_ctx);
	aead_free(&kp.recv_ctx);
	return 0;
}

int main(void)
{
	unsigned int max = workers_default() + 1; /* every usable CPU: nothing else runs here */

	if (aead_prepare())
		return 1;
	return suite(false, max) || suite(true, max);
}
