// SPDX-License-Identifier: MIT
/*
 * X25519 clamping (RFC 7748, section 5): numbered rows of a key before and
 * after, and the clamped key of RFC 7748's section 6.1 Alice, whose public
 * key the RFC gives.
 */
#include "core/curve25519.c"

#include <sodium.h>

#include "test_util.h"

static void test_clamp_rows(void **state)
{
	static const struct {
		uint8_t in_first, in_last, out_first, out_last;
	} rows[] = {
		/* 0 */ { 0x00, 0x00, 0x00, 0x40 },
		/* 1 */ { 0xff, 0xff, 0xf8, 0x7f },
		/* 2 */ { 0x07, 0x80, 0x00, 0x40 },
		/* 3 */ { 0x08, 0x40, 0x08, 0x40 },
		/* 4 */ { 0xf9, 0x3f, 0xf8, 0x7f },
	};
	uint8_t k[NOISE_PRIVATE_KEY_LEN];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(k, 0xa5, sizeof(k));
		k[0] = rows[i].in_first;
		k[31] = rows[i].in_last;
		curve25519_clamp_secret(k);
		if (k[0] != rows[i].out_first || k[31] != rows[i].out_last)
			fail_msg("row %zu: %02x..%02x, want %02x..%02x", i, k[0], k[31],
				 rows[i].out_first, rows[i].out_last);
		for (j = 1; j < 31; j++)
			assert_int_equal(k[j], 0xa5); /* the middle is never touched */
	}
}

/* RFC 7748, 6.1: Alice's key, clamped, still gives her public key, and clamping twice is once. */
static void test_rfc7748_alice(void **state)
{
	uint8_t k[32], again[32], pub[32], want[32];

	(void)state;
	assert_int_equal(unhex(k, sizeof(k), "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"), 32);
	assert_int_equal(unhex(want, sizeof(want), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"), 32);
	curve25519_clamp_secret(k);
	assert_int_equal(k[0], 0x70);
	assert_int_equal(k[31], 0x6a);
	memcpy(again, k, sizeof(k));
	curve25519_clamp_secret(again);
	assert_memory_equal(again, k, sizeof(k));
	assert_int_equal(crypto_scalarmult_base(pub, k), 0);
	assert_memory_equal(pub, want, sizeof(pub));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clamp_rows),
		cmocka_unit_test(test_rfc7748_alice),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
