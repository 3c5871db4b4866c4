// SPDX-License-Identifier: MIT
/*
 * The handshake, cookies and transport: against a real capture from two
 * wireguard-go daemons, and between two in-process cores.
 */
#include "core/noise.c"

#include <stdlib.h>

#include "core/cookie.h"
#include "test_util.h"

/* ../shared/vectors/wireguard-go-capture.txt */
static const char *cap_init_priv = "a83bfa0102c2368f9b75fd75fa3df9ddf2d460c3c01835eff34c3c02daf7fb59";
static const char *cap_init_pub = "6335433c8d22e713e3fa7f92fa84a2e82a25631edd3d2b255f01bc3d33a0835a";
static const char *cap_resp_priv = "d89abd2e0baaec9c2e486f824d3c792142b21247aa86749d3bcd915da143354e";
static const char *cap_resp_pub = "0a25d7179735b64ce89d5d29fc714f992f658d9fab6496d06c70ea0ef6d66e24";
static const char *cap_psk = "03369a587d6ffd4a04289d5b9cc915665f84e7b1016304eb267e2698585f9c52";
static const char *cap_timestamp = "400000006b0a568e36000000";
static const char *cap_msg1 =
	"01000000fa4f18960e5205c863f4d7ccce921fa7ec1da6f3297fc09842daf5de2674b4ec583ee733efcbd515ae35db15"
	"cf08607737672800dd54c1ebf2826053752849619b0aec7e011a94c93c202330ad14188ad8a177c0e78b4278e5bbb74f"
	"d8d82873c5c95ff33333d1df7ae50c78ebe48726f0dc000351b2f3610d4dce2ed58af8d3000000000000000000000000"
	"00000000";
static const char *cap_msg2 =
	"02000000cce5ab3cfa4f1896da91d0a8c1afcdc8c5d5e988e0d58c837b600e9a138c61fd26691d542227eb6fa625c81d"
	"08b843c5a885e8ae254b494a28822ff03047e0e612eab0dc2f5a2b8500000000000000000000000000000000";
static const char *cap_transport[] = {
	"04000000cce5ab3c000000000000000024cf6006d40e4bf1d339c9401a4714a411433b8398bd75e047a070c497227955db0282b30ff3cbabe76aefae4823631a1b32c1a25266a5a22b6970c0832983520112abd5fb8b2c0845767be2a5358c9faa5631c5fdec829851047a515f211c79becbc077ff1ef98ad8399e46bd7a72a5",
	"04000000fa4f1896000000000000000066e485f212db02e7d449293e5c8ed9c81e572cfd1a70ff47610fc39ee3f90831f23225483e346c5a78c7c21bb634fe047b6d89d5289c38aba9699f491ff02b80193eb4c02e902585d7140466213d01abb8ed9e9526f169b559bdc3d2593884eb802bb292cb6f2df788956c753f05df22",
	"04000000cce5ab3c010000000000000029f6df205ada2acdd91d664e891735c78bd12e4ec9d768b16c690a95e4ebe867533aa98a93f3e02faf53efde89add9ad00770b920c1828411bb5b6426f9e835d2f29792dc91f727e8734d9f702de1e5af39ac66b7065b769380be5002e6f00ae2d336b61389e0497466ee41c2464b7f4",
	"04000000fa4f18960100000000000000e43b222259c20d5315640d63610d7576f5af1d68e9bc26e0db55e73f7d8fcf8f46a7699a60df921257c8ec6b2c9286ae8eb4e44d632d563f3541f50e77f78a135c52834b9728bda629327f0ee909cf473c47585f2fe3f132b510906c0128fce9f8fd037d0fd0b003efc409a586150328",
	"04000000cce5ab3c0200000000000000a62e12c8ef51ed98594e57fb9cc3edc38397c12e86ac4ad9f1eb00663a63dd72013f478ce510c22c219ae68b57e7593248ac583e4c0892b3bdb36c3cc9d01ba5f87ee48eab3a768a5d40cc83b238be381f143bd0e39efecb560a2ce64d82013ec2877dec4f609338db23778b57498883",
	"04000000fa4f1896020000000000000086b1030f5051b365176b68e53bee3c5e761c8aa732d3e2d094f7b2b97a6c38d0a64fb38ba34e8c5e47e6a02af1ae9caf939e6ab72bc0a88a1da89c44d73d59d74823dae1ac74c075a72fa43c77237664485cc4a9d2045e3b997852d0e1a4fb3d5360653aedced54e099133f4aa251249",
};

/* One side of a conversation: an identity, its cookie checker, one peer. */
struct side {
	struct noise_static_identity id;
	struct cookie_checker checker;
	struct noise_handshake hs;
	struct cookie_maker maker;
	struct noise_keypairs kps;
	struct index_table *idx;
	uint8_t looked_up[32];
	int lookups;
};

static struct test_rng_state rng_state = { 0x5eed1234abcdULL };
static const struct wg_rng rng = { test_rng_fill, &rng_state };

static struct noise_handshake *lookup_peer(void *ctx, const uint8_t pub[32])
{
	struct side *s = ctx;

	memcpy(s->looked_up, pub, 32);
	s->lookups++;
	return sodium_memcmp(pub, s->hs.remote_static, 32) == 0 ? &s->hs : NULL;
}

static struct slab_cache keypair_cache;

static void side_init(struct side *s, const uint8_t priv[32], const uint8_t peer_pub[32],
		      const uint8_t *psk)
{
	memset(s, 0, sizeof(*s));
	if (!keypair_cache.obj_size)
		slab_cache_init(&keypair_cache, sizeof(struct noise_keypair));
	noise_keypairs_init(&s->kps, &keypair_cache);
	noise_identity_set(&s->id, priv);
	cookie_checker_init(&s->checker, s->id.public_key);
	noise_handshake_init(&s->hs, &s->id, peer_pub, psk, s);
	cookie_maker_init(&s->maker, peer_pub);
	s->idx = index_table_new();
	assert_non_null(s->idx);
}

static void side_free(struct side *s)
{
	noise_keypairs_clear(&s->kps, s->idx);
	noise_handshake_clear(&s->hs, s->idx);
	assert_int_equal(index_table_count(s->idx), 0);
	/* Cleared keypairs went back to the cache (the other side's may still live). */
	assert_true(keypair_cache.objects <= 3);
	index_table_free(s->idx);
}

/* What the daemon does with a received initiation, minus the I/O. */
static int receive_initiation(struct side *s, const uint8_t *msg, size_t len, bool under_load,
			      uint64_t now)
{
	static const uint8_t src[6] = { 198, 18, 7, 1, 0xc7, 0x39 };
	struct noise_handshake *hs;
	enum cookie_mac_state mac;

	if (len != INITIATION_LEN || message_type_of(msg, len) != MESSAGE_HANDSHAKE_INITIATION)
		return -EBADMSG;
	mac = cookie_validate(&s->checker, msg, len, src, sizeof(src), under_load, now, &rng);
	if (mac == COOKIE_MAC_INVALID)
		return -EBADMSG;
	if (under_load && mac != COOKIE_MAC_VALID_WITH_COOKIE)
		return -EAGAIN;
	return noise_consume_initiation(msg, &s->id, lookup_peer, s, now, &hs);
}

static void test_capture_initiation(void **state)
{
	uint8_t priv[32], init_pub[32], psk[32], ts[12], msg[INITIATION_LEN];
	struct side resp;

	(void)state;
	unhex(priv, 32, cap_resp_priv);
	unhex(init_pub, 32, cap_init_pub);
	unhex(psk, 32, cap_psk);
	unhex(ts, 12, cap_timestamp);
	assert_int_equal(unhex(msg, sizeof(msg), cap_msg1), INITIATION_LEN);

	side_init(&resp, priv, init_pub, psk);
	{
		uint8_t want[32];

		unhex(want, 32, cap_resp_pub);
		assert_memory_equal(resp.id.public_key, want, 32);
	}
	assert_int_equal(cookie_validate(&resp.checker, msg, sizeof(msg), NULL, 0, false, 0, &rng),
			 COOKIE_MAC_VALID_NO_COOKIE);
	assert_int_equal(receive_initiation(&resp, msg, sizeof(msg), false, 1), 0);
	assert_memory_equal(resp.looked_up, init_pub, 32);
	assert_memory_equal(resp.hs.latest_timestamp, ts, 12);
	assert_int_equal(resp.hs.remote_index, 0x96184ffa);
	assert_int_equal(resp.hs.state, HANDSHAKE_CONSUMED_INITIATION);

	/* The same message again is a replay: refused, state unchanged. */
	{
		struct noise_handshake before;

		memcpy(&before, &resp.hs, sizeof(before));
		assert_int_equal(receive_initiation(&resp, msg, sizeof(msg), false, 1 + NSEC_PER_SEC),
				 -EEXIST);
		assert_memory_equal(&resp.hs, &before, sizeof(before));
	}
	side_free(&resp);
}

static void test_capture_bit_flips(void **state)
{
	uint8_t priv[32], init_pub[32], psk[32], msg[INITIATION_LEN];
	size_t bit;

	(void)state;
	unhex(priv, 32, cap_resp_priv);
	unhex(init_pub, 32, cap_init_pub);
	unhex(psk, 32, cap_psk);
	unhex(msg, sizeof(msg), cap_msg1);

	for (bit = 0; bit < INITIATION_LEN * 8; bit++) {
		struct side resp;

		side_init(&resp, priv, init_pub, psk);
		msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/*
		 * Everything up to mac2 is covered by mac1 and the AEADs.
		 * mac2 is only examined under load (the WireGuard paper, 5.3), and
		 * then a flipped one fails too.
		 */
		if (bit < INITIATION_MAC2 * 8)
			assert_int_not_equal(receive_initiation(&resp, msg, sizeof(msg), false, 1), 0);
		assert_int_not_equal(receive_initiation(&resp, msg, sizeof(msg), true, 1), 0);
		assert_int_equal(resp.hs.state, HANDSHAKE_ZEROED);
		msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		side_free(&resp);
	}
	/* Truncated and extended copies are refused by length. */
	{
		struct side resp;
		uint8_t longer[INITIATION_LEN + 1];

		side_init(&resp, priv, init_pub, psk);
		assert_int_not_equal(receive_initiation(&resp, msg, sizeof(msg) - 1, false, 1), 0);
		memcpy(longer, msg, sizeof(msg));
		longer[INITIATION_LEN] = 0;
		assert_int_not_equal(receive_initiation(&resp, longer, sizeof(longer), false, 1), 0);
		side_free(&resp);
	}
}

/* The initiator's own key reproduces its public key; the wrong PSK still passes message 1. */
static void test_capture_keys_and_wrong_peer(void **state)
{
	uint8_t priv[32], pub[32], want[32], msg[INITIATION_LEN], other[32];
	struct noise_static_identity id;
	struct side resp;

	(void)state;
	unhex(priv, 32, cap_init_priv);
	unhex(want, 32, cap_init_pub);
	noise_identity_set(&id, priv);
	assert_memory_equal(id.public_key, want, 32);
	memcpy(pub, want, 32);

	/* A responder that does not know the initiator refuses with -ENOENT. */
	unhex(priv, 32, cap_resp_priv);
	unhex(msg, sizeof(msg), cap_msg1);
	memset(other, 0x42, sizeof(other));
	side_init(&resp, priv, other, NULL);
	assert_int_equal(receive_initiation(&resp, msg, sizeof(msg), false, 1), -ENOENT);
	assert_memory_equal(resp.looked_up, pub, 32);
	side_free(&resp);
}

static void test_capture_response_and_transport_parse(void **state)
{
	uint8_t msg[RESPONSE_LEN], data[256];
	size_t i, len;

	(void)state;
	assert_int_equal(unhex(msg, sizeof(msg), cap_msg2), RESPONSE_LEN);
	assert_int_equal(message_type_of(msg, sizeof(msg)), MESSAGE_HANDSHAKE_RESPONSE);
	assert_int_equal(le32_read(msg + RESPONSE_SENDER), 0x3cabe5cc);
	assert_int_equal(le32_read(msg + RESPONSE_RECEIVER), 0x96184ffa);
	assert_true(sodium_is_zero(msg + RESPONSE_MAC2, 16));
	for (i = 0; i < ARRAY_SIZE(cap_transport); i++) {
		len = unhex(data, sizeof(data), cap_transport[i]);
		assert_int_equal(len, 128);
		assert_int_equal(message_type_of(data, len), MESSAGE_DATA);
		/* Initiator to responder packets carry the responder's index. */
		assert_int_equal(le32_read(data + DATA_RECEIVER), i % 2 ? 0x96184ffa : 0x3cabe5cc);
		assert_int_equal(le64_read(data + DATA_COUNTER), i / 2);
		/* 128 - 32 = 96: a padded inner packet, a multiple of 16. */
		assert_int_equal((len - DATA_MIN_LEN) % MESSAGE_PADDING_MULTIPLE, 0);
	}
}

static void make_pair(struct side *a, struct side *b, bool with_psk)
{
	uint8_t pa[32], pb[32], pub_a[32], pub_b[32], psk[32];

	wg_rng_fill(&rng, pa, 32);
	wg_rng_fill(&rng, pb, 32);
	wg_rng_fill(&rng, psk, 32);
	crypto_scalarmult_base(pub_a, pa);
	crypto_scalarmult_base(pub_b, pb);
	side_init(a, pa, pub_b, with_psk ? psk : NULL);
	side_init(b, pb, pub_a, with_psk ? psk : NULL);
}

/* Run a full handshake initiated by a; returns b's new (next) keypair. */
static void handshake(struct side *a, struct side *b, uint64_t now, uint64_t wall)
{
	uint8_t init[INITIATION_LEN], resp[RESPONSE_LEN];
	struct noise_keypair *ka, *kb;
	struct noise_handshake *hs;
	struct index_entry *e;

	assert_int_equal(noise_create_initiation(&a->hs, &a->id, a->idx, init, wall, &rng), 0);
	cookie_add_macs(&a->maker, init, sizeof(init), now);
	assert_int_equal(receive_initiation(b, init, sizeof(init), false, now), 0);
	assert_int_equal(noise_create_response(&b->hs, &b->id, b->idx, resp, &rng), 0);
	cookie_add_macs(&b->maker, resp, sizeof(resp), now);
	kb = noise_keypairs_derive(&b->kps, &b->hs, b->idx, now);
	assert_non_null(kb);
	assert_ptr_equal(b->kps.next, kb);

	assert_int_equal(cookie_validate(&a->checker, resp, sizeof(resp), NULL, 0, false, now, &rng),
			 COOKIE_MAC_VALID_NO_COOKIE);
	e = index_table_lookup(a->idx, le32_read(resp + RESPONSE_RECEIVER));
	assert_non_null(e);
	assert_int_equal(e->kind, INDEX_HANDSHAKE);
	hs = &((struct side *)e->peer)->hs;
	assert_ptr_equal(hs, &a->hs);
	assert_int_equal(noise_consume_response(resp, hs, &a->id), 0);
	ka = noise_keypairs_derive(&a->kps, hs, a->idx, now);
	assert_non_null(ka);
	assert_ptr_equal(a->kps.current, ka);
	assert_memory_equal(ka->send_key, kb->recv_key, 32);
	assert_memory_equal(ka->recv_key, kb->send_key, 32);
	assert_int_equal(ka->remote_index, kb->entry.index);
	assert_int_equal(kb->remote_index, ka->entry.index);
	assert_int_equal(a->hs.state, HANDSHAKE_ZEROED);
	assert_true(sodium_is_zero(a->hs.chaining_key, 32));
	assert_true(sodium_is_zero(b->hs.ephemeral_private, 32));
}

/* Send plain from one side to the other; returns the receiver's verdict. */
static int transfer(struct side *from, struct side *to, const uint8_t *plain, size_t len,
		    uint64_t now, uint8_t *wire, size_t *wire_len)
{
	uint8_t buf[2048], out[2048];
	struct noise_keypair *kp;
	struct index_entry *e;
	size_t padded = noise_padded_len(len, DEFAULT_MTU);
	int ret;

	memset(buf, 0, sizeof(buf));
	memcpy(buf + DATA_HEADER_LEN, plain, len);
	ret = noise_keypair_encrypt(from->kps.current, buf, buf + DATA_HEADER_LEN, padded, now);
	if (ret)
		return ret;
	*wire_len = DATA_HEADER_LEN + padded + NOISE_AUTHTAG_LEN;
	memcpy(wire, buf, *wire_len);

	e = index_table_lookup(to->idx, le32_read(wire + DATA_RECEIVER));
	if (!e || e->kind != INDEX_KEYPAIR)
		return -ENOENT;
	kp = container_of(e, struct noise_keypair, entry);
	ret = noise_keypair_decrypt(kp, out, wire, *wire_len, now);
	if (ret < 0)
		return ret;
	assert_int_equal((size_t)ret, padded);
	assert_memory_equal(out, plain, len);
	noise_keypairs_confirm(&to->kps, kp, to->idx);
	return 0;
}

static void exchange_both_ways(struct side *a, struct side *b, uint64_t now, int rounds)
{
	uint8_t plain[200], wire[2048];
	size_t wl;
	int i;

	for (i = 0; i < rounds; i++) {
		wg_rng_fill(&rng, plain, sizeof(plain));
		assert_int_equal(transfer(a, b, plain, (size_t)(i * 7) % sizeof(plain), now, wire, &wl), 0);
		assert_int_equal(transfer(b, a, plain, (size_t)(i * 13) % sizeof(plain), now, wire, &wl), 0);
	}
}

static void test_pair_handshake_and_transport(void **state)
{
	int psk;

	(void)state;
	for (psk = 0; psk <= 1; psk++) {
		struct side a, b;

		make_pair(&a, &b, psk);
		handshake(&a, &b, 1000, 1700000000ULL * NSEC_PER_SEC);
		/* The responder may not send before the initiator's first packet. */
		assert_null(b.kps.current);
		exchange_both_ways(&a, &b, 2000, 20);
		assert_non_null(b.kps.current);
		assert_null(b.kps.next);
		side_free(&a);
		side_free(&b);
	}
}

static void test_pair_mismatched_psk(void **state)
{
	uint8_t pa[32], pb[32], pub_a[32], pub_b[32], psk1[32], psk2[32];
	uint8_t init[INITIATION_LEN], resp[RESPONSE_LEN];
	struct side a, b;

	(void)state;
	wg_rng_fill(&rng, pa, 32);
	wg_rng_fill(&rng, pb, 32);
	memset(psk1, 1, 32);
	memset(psk2, 2, 32);
	crypto_scalarmult_base(pub_a, pa);
	crypto_scalarmult_base(pub_b, pb);
	side_init(&a, pa, pub_b, psk1);
	side_init(&b, pb, pub_a, psk2);
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 5, &rng), 0);
	cookie_add_macs(&a.maker, init, sizeof(init), 0);
	/* The PSK enters only in the response, so message 1 still passes... */
	assert_int_equal(receive_initiation(&b, init, sizeof(init), false, 0), 0);
	assert_int_equal(noise_create_response(&b.hs, &b.id, b.idx, resp, &rng), 0);
	/* ...and the initiator refuses the response. */
	assert_int_equal(noise_consume_response(resp, &a.hs, &a.id), -EBADMSG);
	assert_int_equal(a.hs.state, HANDSHAKE_CREATED_INITIATION);
	side_free(&a);
	side_free(&b);
}

static void test_pair_flipped_bits_refused(void **state)
{
	uint8_t init[INITIATION_LEN], resp[RESPONSE_LEN], plain[64], wire[256];
	struct side a, b;
	size_t bit, wl;

	(void)state;
	make_pair(&a, &b, true);

	/* Response: any flipped bit before mac2 makes the initiator refuse it. */
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 7, &rng), 0);
	cookie_add_macs(&a.maker, init, sizeof(init), 0);
	assert_int_equal(receive_initiation(&b, init, sizeof(init), false, 0), 0);
	assert_int_equal(noise_create_response(&b.hs, &b.id, b.idx, resp, &rng), 0);
	cookie_add_macs(&b.maker, resp, sizeof(resp), 0);
	for (bit = 0; bit < RESPONSE_MAC2 * 8; bit++) {
		bool ok;

		resp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ok = message_type_of(resp, sizeof(resp)) == MESSAGE_HANDSHAKE_RESPONSE &&
		     cookie_validate(&a.checker, resp, sizeof(resp), NULL, 0, false, 0, &rng) !=
			     COOKIE_MAC_INVALID &&
		     le32_read(resp + RESPONSE_RECEIVER) == a.hs.entry.index &&
		     noise_consume_response(resp, &a.hs, &a.id) == 0;
		assert_false(ok);
		assert_int_equal(a.hs.state, HANDSHAKE_CREATED_INITIATION);
		resp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(noise_consume_response(resp, &a.hs, &a.id), 0);
	assert_non_null(noise_keypairs_derive(&a.kps, &a.hs, a.idx, 0));
	assert_non_null(noise_keypairs_derive(&b.kps, &b.hs, b.idx, 0));

	/* Transport: a flipped bit anywhere is refused and does not burn the counter. */
	memset(plain, 0x45, sizeof(plain));
	assert_int_equal(transfer(&a, &b, plain, sizeof(plain), 0, wire, &wl), 0);
	{
		uint8_t buf[256], out[256];
		struct noise_keypair *kp = b.kps.current;

		memset(buf, 0, sizeof(buf));
		memcpy(buf + DATA_HEADER_LEN, plain, sizeof(plain));
		assert_int_equal(noise_keypair_encrypt(a.kps.current, buf, buf + DATA_HEADER_LEN,
						       sizeof(plain), 0), 0);
		wl = DATA_HEADER_LEN + sizeof(plain) + NOISE_AUTHTAG_LEN;
		for (bit = DATA_COUNTER * 8; bit < wl * 8; bit++) {
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_true(noise_keypair_decrypt(kp, out, buf, wl, 0) < 0);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		assert_int_equal(noise_keypair_decrypt(kp, out, buf, wl, 0), (int)sizeof(plain));
		/* A replayed transport packet is refused. */
		assert_int_equal(noise_keypair_decrypt(kp, out, buf, wl, 0), -EEXIST);
	}
	side_free(&a);
	side_free(&b);
}

/* Rekey a few times, alternating initiators, with packets in flight across each rotation. */
static void test_pair_rekey_rotation(void **state)
{
	uint8_t plain[100], wire[256], out[256];
	uint64_t now = 10, wall = 1700000000ULL * NSEC_PER_SEC;
	struct noise_keypair *old_b;
	struct side a, b;
	size_t wl;
	int round;

	(void)state;
	make_pair(&a, &b, false);
	handshake(&a, &b, now, wall);
	exchange_both_ways(&a, &b, now, 3);
	memset(plain, 0x17, sizeof(plain));

	for (round = 0; round < 6; round++) {
		struct side *ini = round % 2 ? &b : &a, *resp = round % 2 ? &a : &b;
		uint8_t inflight[256];
		size_t inflight_len;

		now += REKEY_AFTER_TIME;
		wall += REKEY_AFTER_TIME;
		/* A packet from the responder, sent on the old session, arrives late. */
		assert_int_equal(transfer(resp, ini, plain, sizeof(plain), now, inflight, &inflight_len), 0);
		old_b = resp->kps.current;
		{
			/* Re-encrypt one more to deliver after the rotation. */
			uint8_t buf[256];

			memset(buf, 0, sizeof(buf));
			memcpy(buf + DATA_HEADER_LEN, plain, sizeof(plain));
			assert_int_equal(noise_keypair_encrypt(old_b, buf, buf + DATA_HEADER_LEN,
							       sizeof(plain), now), 0);
			memcpy(inflight, buf, sizeof(buf));
			inflight_len = DATA_HEADER_LEN + sizeof(plain) + NOISE_AUTHTAG_LEN;
		}
		handshake(ini, resp, now, wall);
		/* The initiator's previous keypair still accepts the late packet. */
		{
			struct index_entry *e = index_table_lookup(ini->idx, le32_read(inflight + DATA_RECEIVER));

			assert_non_null(e);
			assert_ptr_equal(container_of(e, struct noise_keypair, entry), ini->kps.previous);
			assert_int_equal(noise_keypair_decrypt(ini->kps.previous, out, inflight,
							       inflight_len, now), (int)sizeof(plain));
		}
		exchange_both_ways(&a, &b, now, 5);
		assert_int_equal(index_table_count(a.idx), 2);
		assert_int_equal(index_table_count(b.idx), 2);
	}
	/* Past REJECT_AFTER_TIME the keypair refuses to send. */
	now += REJECT_AFTER_TIME;
	assert_int_equal(transfer(&a, &b, plain, 10, now, wire, &wl), -EKEYEXPIRED);
	side_free(&a);
	side_free(&b);
}

/* Under load: no mac2 -> cookie reply -> the retried initiation carries a valid mac2. */
static void test_pair_cookie_round_trip(void **state)
{
	static const uint8_t src[6] = { 192, 0, 2, 1, 0xca, 0x6c };
	static const uint8_t other_src[6] = { 192, 0, 2, 2, 0xca, 0x6c };
	uint8_t init[INITIATION_LEN], reply[COOKIE_REPLY_LEN];
	uint64_t now = 50 * NSEC_PER_SEC;
	struct side a, b;

	(void)state;
	make_pair(&a, &b, true);
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 1, &rng), 0);
	cookie_add_macs(&a.maker, init, sizeof(init), now);
	assert_int_equal(cookie_validate(&b.checker, init, sizeof(init), src, sizeof(src), true, now, &rng),
			 COOKIE_MAC_VALID_NO_COOKIE);
	cookie_create_reply(&b.checker, reply, init, sizeof(init), src, sizeof(src), now, &rng);
	assert_int_equal(le32_read(reply), MESSAGE_HANDSHAKE_COOKIE);
	assert_int_equal(le32_read(reply + COOKIE_REPLY_RECEIVER), a.hs.entry.index);

	/* A flipped reply is refused; the genuine one is taken once. */
	reply[40] ^= 1;
	assert_int_equal(cookie_consume_reply(&a.maker, reply, now), -EBADMSG);
	reply[40] ^= 1;
	assert_int_equal(cookie_consume_reply(&a.maker, reply, now), 0);
	assert_int_equal(cookie_consume_reply(&a.maker, reply, now), -EINVAL);

	now += REKEY_TIMEOUT;
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 2, &rng), 0);
	cookie_add_macs(&a.maker, init, sizeof(init), now);
	assert_false(sodium_is_zero(init + INITIATION_MAC2, 16));
	assert_int_equal(cookie_validate(&b.checker, init, sizeof(init), src, sizeof(src), true, now, &rng),
			 COOKIE_MAC_VALID_WITH_COOKIE);
	/* The cookie is bound to the source address. */
	assert_int_equal(cookie_validate(&b.checker, init, sizeof(init), other_src, sizeof(other_src),
					 true, now, &rng), COOKIE_MAC_VALID_NO_COOKIE);
	assert_int_equal(receive_initiation(&b, init, sizeof(init), false, now), 0);

	/* After the responder's secret rotates, the old cookie no longer passes. */
	now += COOKIE_SECRET_MAX_AGE;
	assert_int_equal(cookie_validate(&b.checker, init, sizeof(init), src, sizeof(src), true, now, &rng),
			 COOKIE_MAC_VALID_NO_COOKIE);
	/* And the initiator stops attaching a stale cookie. */
	cookie_add_macs(&a.maker, init, sizeof(init), now);
	assert_true(sodium_is_zero(init + INITIATION_MAC2, 16));
	side_free(&a);
	side_free(&b);
}

static void test_replayed_and_flooded_initiations(void **state)
{
	uint8_t init1[INITIATION_LEN], init2[INITIATION_LEN];
	uint64_t now = 100 * NSEC_PER_SEC, wall = 1700000000ULL * NSEC_PER_SEC;
	struct side a, b;

	(void)state;
	make_pair(&a, &b, false);
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init1, wall, &rng), 0);
	cookie_add_macs(&a.maker, init1, sizeof(init1), now);
	assert_int_equal(receive_initiation(&b, init1, sizeof(init1), false, now), 0);
	/* Replayed much later: still refused by the timestamp. */
	assert_int_equal(receive_initiation(&b, init1, sizeof(init1), false, now + 3600 * NSEC_PER_SEC),
			 -EEXIST);
	/* A newer one within 20 ms is a flood; after 20 ms it passes. */
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init2, wall + NSEC_PER_SEC, &rng), 0);
	cookie_add_macs(&a.maker, init2, sizeof(init2), now);
	assert_int_equal(receive_initiation(&b, init2, sizeof(init2), false, now + 19 * NSEC_PER_MSEC),
			 -EBUSY);
	assert_int_equal(receive_initiation(&b, init2, sizeof(init2), false, now + 20 * NSEC_PER_MSEC), 0);
	side_free(&a);
	side_free(&b);
}

/* Low-order points (an all-zero DH result, RFC 7748, 6.1) and a missing identity are refused. */
static void test_zero_dh_refused(void **state)
{
	uint8_t priv[32], zero_pub[32] = { 0 }, msg[INITIATION_LEN];
	struct noise_static_identity id, none;
	struct noise_handshake hs;
	struct index_table *idx = index_table_new();

	(void)state;
	memset(priv, 7, sizeof(priv));
	noise_identity_set(&id, priv);
	noise_handshake_init(&hs, &id, zero_pub, NULL, NULL);
	assert_true(sodium_is_zero(hs.precomputed_static_static, 32));
	assert_int_equal(noise_create_initiation(&hs, &id, idx, msg, 1, &rng), -ENOKEY);

	memset(priv, 0, sizeof(priv));
	noise_identity_set(&none, priv);
	assert_false(none.has_identity);
	assert_int_equal(index_table_count(idx), 0);
	index_table_free(idx);
}

static void test_padding(void **state)
{
	static const struct { size_t len; unsigned int mtu; size_t want; } rows[] = {
		{ 0, 1420, 0 }, { 1, 1420, 16 }, { 45, 1420, 48 }, { 48, 1420, 48 },
		{ 1410, 1420, 1420 }, { 1419, 1420, 1420 }, { 1420, 1420, 1420 },
		{ 1421, 1420, 1436 }, { 45, 0, 48 }, { 1500, 1500, 1500 }, { 1490, 1500, 1500 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(rows); i++)
		assert_int_equal(noise_padded_len(rows[i].len, rows[i].mtu), rows[i].want);
}

static void test_tai64n(void **state)
{
	uint8_t ts[12], want[12];

	(void)state;
	/* The capture's timestamp: seconds 0x6b0a568e, nanoseconds 905969664. */
	noise_tai64n(ts, 0x6b0a5684ULL * NSEC_PER_SEC + 905969664ULL + 12345);
	unhex(want, 12, cap_timestamp);
	assert_memory_equal(ts, want, 12);
}


/* ---- the AES-256-GCM suite ---- */

/* The suite's initial hash is WireGuard's recipe with veil's identifier. */
static void test_suite_initial_hash(void **state)
{
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char wg_id[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	static const char aes_id[] = "veil v1 aes256gcm transport";
	uint8_t ck[32], want[32], got[32];

	(void)state;
	blake2s(ck, 32, NULL, 0, (const uint8_t *)construction, sizeof(construction) - 1);
	assert_memory_equal(ck, noise_initial_chaining_key, 32);
	memcpy(want, ck, 32);
	mix_hash(want, (const uint8_t *)wg_id, sizeof(wg_id) - 1);
	initial_hash(NOISE_SUITE_WIREGUARD, got);
	assert_memory_equal(got, want, 32);
	memcpy(want, ck, 32);
	mix_hash(want, (const uint8_t *)aes_id, sizeof(aes_id) - 1);
	initial_hash(NOISE_SUITE_AES256GCM, got);
	assert_memory_equal(got, want, 32);
	assert_memory_not_equal(got, noise_initial_hash, 32);
}

static void test_suite_aes_handshake_and_transport(void **state)
{
	uint8_t plain[1400], wire[2048];
	struct noise_keypair *kp;
	struct index_entry *e;
	struct side a, b;
	size_t wl;

	(void)state;
	if (!crypto_aead_aes256gcm_is_available())
		skip();
	make_pair(&a, &b, true);
	a.hs.suite = b.hs.suite = NOISE_SUITE_AES256GCM;
	handshake(&a, &b, 1000, 1700000000ULL * NSEC_PER_SEC);
	assert_int_equal(a.kps.current->suite, NOISE_SUITE_AES256GCM);
	assert_int_equal(b.kps.next->suite, NOISE_SUITE_AES256GCM);
	exchange_both_ways(&a, &b, 2000, 20);

	/* The wire carries AES-256-GCM: libsodium's AES opens it with the session key. */
	wg_rng_fill(&rng, plain, sizeof(plain));
	assert_int_equal(transfer(&a, &b, plain, sizeof(plain), 3000, wire, &wl), 0);
	{
		uint8_t nonce[12] = { 0 }, out[2048];
		unsigned long long outlen;

		memcpy(nonce + 4, wire + DATA_COUNTER, 8);
		assert_int_equal(crypto_aead_aes256gcm_decrypt(out, &outlen, NULL, wire + DATA_HEADER_LEN,
							       wl - DATA_HEADER_LEN, NULL, 0, nonce,
							       a.kps.current->send_key),
				 0);
		assert_memory_equal(out, plain, sizeof(plain));
	}
	/* A keypair never opens a message of the other suite, even with the same keys. */
	e = index_table_lookup(b.idx, le32_read(wire + DATA_RECEIVER));
	assert_non_null(e);
	kp = container_of(e, struct noise_keypair, entry);
	kp->suite = NOISE_SUITE_WIREGUARD;
	aead_free(&kp->recv_ctx);
	assert_int_equal(aead_init(&kp->recv_ctx, false, kp->recv_key, false), 0);
	{
		uint8_t out[2048];

		le64_write(wire + DATA_COUNTER, 1000000); /* fresh for the replay window */
		assert_int_equal(noise_keypair_decrypt(kp, out, wire, wl, 3000), -EBADMSG);
	}
	side_free(&a);
	side_free(&b);
}

/* Differing suites fail at the first message, naming the peer, and change nothing. */
static void test_suite_mismatch(void **state)
{
	uint8_t init[INITIATION_LEN], ts_before[NOISE_TIMESTAMP_LEN];
	struct noise_handshake *hs;
	int dir;

	(void)state;
	for (dir = 0; dir < 2; dir++) {
		struct side a, b;

		make_pair(&a, &b, dir == 1);
		a.hs.suite = dir ? NOISE_SUITE_WIREGUARD : NOISE_SUITE_AES256GCM;
		b.hs.suite = dir ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD;
		memcpy(ts_before, b.hs.latest_timestamp, sizeof(ts_before));
		assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 77, &rng), 0);
		hs = NULL;
		assert_int_equal(noise_consume_initiation(init, &b.id, lookup_peer, &b, 0, &hs),
				 dir ? -EPROTONOSUPPORT : -ENOPROTOOPT);
		assert_ptr_equal(hs, &b.hs);
		assert_int_equal(b.hs.state, HANDSHAKE_ZEROED);
		/* Its timestamp counts: replayed, it is a replay, and names nobody. */
		assert_memory_not_equal(b.hs.latest_timestamp, ts_before, sizeof(ts_before));
		hs = NULL;
		assert_int_equal(noise_consume_initiation(init, &b.id, lookup_peer, &b,
							  INITIATION_MIN_INTERVAL * 2, &hs),
				 -EEXIST);
		assert_null(hs);
		/* Once the responder agrees, a new initiation goes through. */
		b.hs.suite = a.hs.suite;
		assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 78ULL * NSEC_PER_SEC,
							 &rng), 0);
		assert_int_equal(noise_consume_initiation(init, &b.id, lookup_peer, &b,
							  INITIATION_MIN_INTERVAL * 4, &hs), 0);
		side_free(&a);
		side_free(&b);
	}
}

/* An initiation sealed under neither suite's hash is just a bad message. */
static void test_suite_neither(void **state)
{
	uint8_t init[INITIATION_LEN];
	struct noise_handshake *hs = NULL;
	struct side a, b;

	(void)state;
	make_pair(&a, &b, false);
	a.hs.suite = NOISE_SUITE_AES256GCM;
	assert_int_equal(noise_create_initiation(&a.hs, &a.id, a.idx, init, 77, &rng), 0);
	init[INITIATION_STATIC + 3] ^= 1;
	assert_int_equal(noise_consume_initiation(init, &b.id, lookup_peer, &b, 0, &hs), -EBADMSG);
	assert_null(hs);
	assert_int_equal(b.lookups, 0);
	side_free(&a);
	side_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capture_initiation),
		cmocka_unit_test(test_capture_bit_flips),
		cmocka_unit_test(test_capture_keys_and_wrong_peer),
		cmocka_unit_test(test_capture_response_and_transport_parse),
		cmocka_unit_test(test_pair_handshake_and_transport),
		cmocka_unit_test(test_pair_mismatched_psk),
		cmocka_unit_test(test_pair_flipped_bits_refused),
		cmocka_unit_test(test_pair_rekey_rotation),
		cmocka_unit_test(test_pair_cookie_round_trip),
		cmocka_unit_test(test_replayed_and_flooded_initiations),
		cmocka_unit_test(test_zero_dh_refused),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_tai64n),
		cmocka_unit_test(test_suite_initial_hash),
		cmocka_unit_test(test_suite_aes_handshake_and_transport),
		cmocka_unit_test(test_suite_mismatch),
		cmocka_unit_test(test_suite_neither),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("noise", tests, NULL, NULL);
}
