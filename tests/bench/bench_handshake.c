// SPDX-License-Identifier: MIT
/*
 * Handshakes completed per second per core, responder side: a device with
 * PEERS configured peers consumes one fresh initiation from each (mac1 check,
 * the Noise consume, the response with its two DHs, the keypair) through
 * wg_device_receive, the daemon's entry point. The initiations are made
 * beforehand and are not timed. One thread, so the figure is per core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/device.h"
#include "../unit/engine_stub.h"

enum { PEERS = 2000, ROUNDS = 3 };

static uint64_t responses;

static void op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)peer;
	(void)ep;
	(void)buf;
	responses += len == RESPONSE_LEN;
}

static const struct wg_device_ops ops = {
	.send = op_send, .deliver = stub_deliver, .keypair_ready = stub_keypair_ready,
	.purge_staged = stub_purge_staged,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	static struct noise_static_identity ids[PEERS];
	static struct noise_handshake hs[PEERS];
	static struct cookie_maker makers[PEERS];
	static uint8_t msgs[PEERS][INITIATION_LEN];
	struct wg_endpoint src = { 0 };
	struct index_table *idx = index_table_new();
	struct wg_device *dev;
	struct noise_static_identity rid;
	uint8_t key[32];
	double best = 0;
	int i, r;

	if (sodium_init() < 0 || !idx)
		return 1;
	dev = wg_device_new(&ops, NULL, &wg_rng_system);
	if (!dev)
		return 1;
	randombytes_buf(key, 32);
	noise_identity_set(&rid, key);
	if (wg_device_set_private_key(dev, key))
		return 1;
	for (i = 0; i < PEERS; i++) {
		struct wg_peer *p;

		randombytes_buf(key, 32);
		noise_identity_set(&ids[i], key);
		noise_handshake_init(&hs[i], &ids[i], rid.public_key, NULL, NULL);
		cookie_maker_init(&makers[i], rid.public_key);
		if (wg_device_peer_add(dev, ids[i].public_key, &p))
			return 1;
	}
	src.addr.in4.sin_family = AF_INET;
	for (r = 0; r < ROUNDS; r++) {
		struct wg_now now = { (uint64_t)(r + 1) * 600 * NSEC_PER_SEC,
				      (1700000000ULL + (uint64_t)r * 60) * NSEC_PER_SEC };
		double t0, dt;

		for (i = 0; i < PEERS; i++) {
			if (noise_create_initiation(&hs[i], &ids[i], idx, msgs[i], now.wall, &wg_rng_system))
				return 1;
			cookie_add_macs(&makers[i], msgs[i], INITIATION_LEN, now.mono);
		}
		responses = 0;
		t0 = now_s();
		for (i = 0; i < PEERS; i++) {
			/*
			 * The simulated clock moves 1/8 s per 100 messages so the
			 * load detector stays quiet: this measures the work of a
			 * handshake, not the cookie mode.
			 */
			if (i % 100 == 0)
				now.mono += NSEC_PER_SEC / 8;
			wg_device_receive(dev, now, &src, msgs[i], INITIATION_LEN);
		}
		dt = now_s() - t0;
		if (responses != PEERS) {
			fprintf(stderr, "bench_handshake: %llu responses for %d initiations\n",
				(unsigned long long)responses, PEERS);
			return 1;
		}
		if (PEERS / dt > best)
			best = PEERS / dt;
	}
	printf("handshakes: %.0f completed per second on one core (responder: mac1, consume, "
	       "response, keypair; best of %d rounds of %d)\n", best, ROUNDS, PEERS);
	for (i = 0; i < PEERS; i++)
		noise_handshake_clear(&hs[i], idx);
	index_table_free(idx);
	wg_device_free(dev);
	return 0;
}
