// SPDX-License-Identifier: MIT
/*
 * Key hygiene: session keys are wiped when the zero-key-material timer fires,
 * when keypairs rotate out, and a peer's whole state (handshake, keypairs,
 * PSK) is wiped before its memory is freed.
 */
#include <stdlib.h>
#include <string.h>

/* Watch device.c's peer frees: a watched block must be all zero when freed. */
#include "core/slab.h"
static void *watched;
static size_t watched_len;
static int watched_freed, watched_dirty;
static void watch_free(struct slab_cache *c, void *p);
#define slab_free(c, p) watch_free(c, p)
#include "core/device.c"
#undef slab_free

#include "engine_stub.h"
#include "test_util.h"

static void watch_free(struct slab_cache *c, void *p)
{
	if (p && p == watched) {
		const uint8_t *b = p;
		size_t i;

		watched_freed++;
		for (i = 0; i < watched_len; i++)
			watched_dirty |= b[i] != 0;
	}
	slab_free(c, p);
}

struct link {
	struct wg_device *dev[2];
	struct wg_peer *peer[2];
	uint8_t wire[4][256];
	size_t wire_len[4];
	struct wg_endpoint from[4];
	int nwire;
};

static struct test_rng_state st = { 99 };
static const struct wg_rng rng = { test_rng_fill, &st };
static struct link L;

static int index_of(void *ctx)
{
	return ctx == &L.dev[0] ? 0 : 1;
}

static void op_send(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		    const uint8_t *buf, size_t len)
{
	(void)peer;
	(void)ep;
	assert_true(L.nwire < 4 && len <= 256);
	memcpy(L.wire[L.nwire], buf, len);
	L.wire_len[L.nwire] = len;
	L.from[L.nwire] = L.peer[1 - index_of(ctx)]->endpoint;
	L.nwire++;
}

static const struct wg_device_ops ops = {
	.send = op_send, .deliver = stub_deliver, .keypair_ready = stub_keypair_ready,
	.purge_staged = stub_purge_staged,
};

/* Deliver everything on the wire to the other side until quiet. */
static void pump(struct wg_now now)
{
	int rounds;

	for (rounds = 0; rounds < 8 && L.nwire; rounds++) {
		uint8_t buf[256];
		size_t len = L.wire_len[0];
		struct wg_endpoint src = L.from[0];
		int to;

		memcpy(buf, L.wire[0], len);
		/* A datagram's receiver is the device whose peer has the sender's endpoint. */
		to = src.addr.in4.sin_port == L.peer[0]->endpoint.addr.in4.sin_port ? 0 : 1;
		memmove(L.wire[0], L.wire[1], sizeof(L.wire[0]) * 3);
		memmove(L.wire_len, L.wire_len + 1, sizeof(L.wire_len[0]) * 3);
		memmove(L.from, L.from + 1, sizeof(L.from[0]) * 3);
		L.nwire--;
		wg_device_receive(L.dev[to], now, &src, buf, len);
	}
}

static void setup_link(void)
{
	uint8_t k[2][32], pub[2][32];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int i;

	memset(&L, 0, sizeof(L));
	for (i = 0; i < 2; i++) {
		wg_rng_fill(&rng, k[i], 32);
		crypto_scalarmult_base(pub[i], k[i]);
		L.dev[i] = wg_device_new(&ops, &L.dev[i], &rng);
		assert_non_null(L.dev[i]);
		assert_int_equal(wg_device_set_private_key(L.dev[i], k[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		assert_int_equal(wg_device_peer_add(L.dev[i], pub[1 - i], &L.peer[i]), 0);
		sa.sin_port = htons((uint16_t)(51000 + 1 - i));
		sa.sin_addr.s_addr = htonl(0xc6120001u + (uint32_t)(1 - i));
		wg_peer_set_endpoint(L.peer[i], (struct sockaddr *)&sa, sizeof(sa));
		wg_peer_set_psk(L.peer[i], k[0]);
	}
	sodium_memzero(k, sizeof(k));
}

static bool all_zero(const void *p, size_t len)
{
	return sodium_is_zero(p, len);
}

static void test_wipe_on_expiry(void **state)
{
	struct wg_now now = { 1000 * NSEC_PER_SEC, 1700000000ULL * NSEC_PER_SEC };
	int i;

	(void)state;
	setup_link();
	wg_peer_initiate(L.peer[0], now, false);
	pump(now);
	assert_non_null(L.peer[0]->keypairs.current);
	assert_false(all_zero(L.peer[0]->keypairs.current->send_key, 32));

	/* Silence until the zero-key-material timer: every slot and the handshake are zero. */
	now.mono += ZERO_KEY_MATERIAL_TIMEOUT;
	for (i = 0; i < 2; i++) {
		wg_peer_run_timers(L.peer[i], now);
		L.nwire = 0;
		assert_null(L.peer[i]->keypairs.current);
		assert_null(L.peer[i]->keypairs.next);
		assert_null(L.peer[i]->keypairs.previous);
		/* Their memory went back, wiped (slab_free; test_slab checks the wipe). */
		assert_int_equal(L.dev[i]->keypair_cache.objects, 0);
		assert_true(all_zero(L.peer[i]->handshake.chaining_key, 32));
		assert_true(all_zero(L.peer[i]->handshake.ephemeral_private, 32));
	}
	for (i = 0; i < 2; i++)
		wg_device_free(L.dev[i]);
}

static void test_wipe_on_peer_removal(void **state)
{
	struct wg_now now = { 2000 * NSEC_PER_SEC, 1700000000ULL * NSEC_PER_SEC };
	int i;

	(void)state;
	setup_link();
	wg_peer_initiate(L.peer[0], now, false);
	pump(now);
	assert_non_null(L.peer[1]->keypairs.current);
	assert_false(all_zero(L.peer[1]->handshake.preshared_key, 32));

	watched = L.peer[1];
	watched_len = sizeof(struct wg_peer);
	watched_freed = watched_dirty = 0;
	wg_device_peer_remove(L.dev[1], L.peer[1]);
	assert_int_equal(watched_freed, 1);
	assert_int_equal(watched_dirty, 0);
	watched = NULL;
	for (i = 0; i < 2; i++)
		wg_device_free(L.dev[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wipe_on_expiry),
		cmocka_unit_test(test_wipe_on_peer_removal),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("keywipe", tests, NULL, NULL);
}
