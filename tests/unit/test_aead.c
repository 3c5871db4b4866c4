// SPDX-License-Identifier: MIT
/*
 * The transport AEAD over OpenSSL against an independent implementation:
 * what it seals, libsodium opens byte for byte (ChaCha20-Poly1305 and, where
 * the CPU has AES instructions, AES-256-GCM), and what libsodium seals it
 * opens; in place as the data path uses it; a damaged ciphertext, tag or
 * nonce, a wrong key or the other suite never opens; and the start-up
 * self-test passes.
 */
#include "core/aead.c"

#include <sodium.h>

#include "test_util.h"

static struct test_rng_state rs = { 0xaeadULL };
static const struct wg_rng rng = { test_rng_fill, &rs };

static int sodium_seal(bool aes, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *n,
		       const uint8_t *k)
{
	return aes ? crypto_aead_aes256gcm_encrypt(out, NULL, in, len, NULL, 0, NULL, n, k)
		   : crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, NULL, 0, NULL, n, k);
}

static int sodium_open(bool aes, uint8_t *out, const uint8_t *in, size_t len, const uint8_t *n,
		       const uint8_t *k)
{
	return aes ? crypto_aead_aes256gcm_decrypt(out, NULL, NULL, in, len, NULL, 0, n, k)
		   : crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, NULL, 0, n, k);
}

static void both_ways(bool aes)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 63, 64, 65, 1420, 1424, 9000 };
	uint8_t key[32], nonce[12], plain[9100], ours[9200], theirs[9200], back[9200];
	struct aead_ctx s, o;
	size_t i;

	wg_rng_fill(&rng, key, sizeof(key));
	assert_int_equal(aead_init(&s, aes, key, true), 0);
	assert_int_equal(aead_init(&o, aes, key, false), 0);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];

		wg_rng_fill(&rng, plain, len);
		wg_rng_fill(&rng, nonce, sizeof(nonce));
		/* Ours sealed equals libsodium's, and opens in libsodium. */
		assert_int_equal(aead_seal(&s, ours, plain, len, nonce), 0);
		assert_int_equal(sodium_seal(aes, theirs, plain, len, nonce, key), 0);
		assert_memory_equal(ours, theirs, len + 16);
		assert_int_equal(sodium_open(aes, back, ours, len + 16, nonce, key), 0);
		if (len)
			assert_memory_equal(back, plain, len);
		/* In place, as the data path does it. */
		memcpy(back, plain, len);
		assert_int_equal(aead_seal(&s, back, back, len, nonce), 0);
		assert_memory_equal(back, theirs, len + 16);
		assert_int_equal(aead_open(&o, back, back, len + 16, nonce), 0);
		if (len)
			assert_memory_equal(back, plain, len);
		/* Damage anywhere, the tag included, or another nonce: never opens. */
		memcpy(back, theirs, len + 16);
		back[(len * 7) % (len + 16)] ^= 0x40;
		assert_int_equal(aead_open(&o, back, back, len + 16, nonce), -EBADMSG);
		memcpy(back, theirs, len + 16);
		nonce[11] ^= 1;
		assert_int_equal(aead_open(&o, back, back, len + 16, nonce), -EBADMSG);
		nonce[11] ^= 1;
		/* And the context still works after a failure. */
		memcpy(back, theirs, len + 16);
		assert_int_equal(aead_open(&o, back, back, len + 16, nonce), 0);
	}
	assert_int_equal(aead_open(&o, back, theirs, 15, nonce), -EBADMSG);
	aead_free(&s);
	aead_free(&o);
	aead_free(&o); /* twice is harmless */
}

static void test_chacha_matches_libsodium(void **state)
{
	(void)state;
	both_ways(false);
}

static void test_aes_matches_libsodium(void **state)
{
	(void)state;
	if (!crypto_aead_aes256gcm_is_available())
		skip();
	both_ways(true);
}

static void test_wrong_key_or_suite(void **state)
{
	uint8_t key[32], other[32], nonce[12] = { 0 }, buf[200], plain[184] = { 9 };
	struct aead_ctx s, o;

	(void)state;
	wg_rng_fill(&rng, key, sizeof(key));
	memcpy(other, key, sizeof(other));
	other[31] ^= 1;
	assert_int_equal(aead_init(&s, false, key, true), 0);
	assert_int_equal(aead_seal(&s, buf, plain, sizeof(plain), nonce), 0);
	assert_int_equal(aead_init(&o, false, other, false), 0);
	assert_int_equal(aead_open(&o, plain, buf, sizeof(buf), nonce), -EBADMSG);
	aead_free(&o);
	assert_int_equal(aead_init(&o, true, key, false), 0);
	assert_int_equal(aead_open(&o, plain, buf, sizeof(buf), nonce), -EBADMSG);
	aead_free(&o);
	aead_free(&s);
	/* A zeroed context refuses rather than crashes. */
	memset(&o, 0, sizeof(o));
	assert_int_equal(aead_open(&o, plain, buf, sizeof(buf), nonce), -EBADMSG);
	assert_int_equal(aead_seal(&o, buf, plain, 16, nonce), -EIO);
}

static void test_prepare(void **state)
{
	(void)state;
	assert_int_equal(aead_prepare(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepare),
		cmocka_unit_test(test_chacha_matches_libsodium),
		cmocka_unit_test(test_aes_matches_libsodium),
		cmocka_unit_test(test_wrong_key_or_suite),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
