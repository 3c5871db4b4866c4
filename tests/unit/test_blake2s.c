// SPDX-License-Identifier: MIT
/* BLAKE2s, HMAC-BLAKE2s and the KDF against published vectors. */
#include "core/blake2s.c"

#include "test_util.h"

/*
 * BLAKE2s-256 of 00 01 .. n-1, unkeyed and keyed with 00..1f: the arrays
 * blake2s_testvecs and blake2s_keyed_testvecs of wireguard-linux-compat's
 * src/crypto/zinc/selftest/blake2s.c (the keyed ones are also in
 * golang.org/x/crypto's blake2s/blake2s_test.go).
 */
static const struct {
	size_t n;
	const char *unkeyed, *keyed;
} seq_vectors[] = {
	{ 0, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9",
	  "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49" },
	{ 1, "e34d74dbaf4ff4c6abd871cc220451d2ea2648846c7757fbaac82fe51ad64bea",
	  "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1" },
	{ 2, "ddad9ab15dac4549ba42f49d262496bef6c0bae1dd342a8808f8ea267c6e210c",
	  "6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803" },
	{ 3, "e8f91c6ef232a041452ab0e149070cdd7dd1769e75b3a5921be37876c45c9900",
	  "1d220dbe2ee134661fdf6d9e74b41704710556f2f6e5a091b227697445dbea6b" },
	{ 63, "e57cb79487dd57902432b250733813bd96a84efce59f650fac26e6696aefafc3",
	  "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd" },
	{ 64, "56f34e8b96557e90c1f24b52d0c89d51086acf1b00f634cf1dde9233b8eaaa3e",
	  "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4" },
	{ 65, "1b53ee94aaf34e4b159d48de352c7f0661d0a40edff95a0b1639b4090e974472",
	  "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8" },
};

/*
 * 16-byte keyed output (WireGuard's MAC), key 00..1f (32 bytes) and 00..0f
 * (16 bytes): computed with an independent RFC 7693 implementation (Python's
 * hashlib.blake2s with digest_size=16).
 */
static const struct {
	size_t n;
	const char *key32, *key16;
} mac_vectors[] = {
	{ 0, "9536f9b267655743dee97b8a670f9f53", "af4e5d3bb230e9ff9096ca6f7c501f76" },
	{ 1, "13bacfb85b48a1223c595f8c1e7e82cb", "881e42e7bb358082637c0a0fd7ec6c2f" },
	{ 63, "ece382a8bd5018f1de5da44b72cea75b", "2151a1ac11ef2763a427614c612b3de0" },
	{ 64, "f1efa90d2547036841ecd3627fafbc36", "dd55c51c98f8ab96ed272882941f0b6a" },
	{ 65, "811ff8686d23a435ecbd0bdafcd27b1b", "9018c671bb7e94a6d540a91765bbecad" },
	{ 200, "42a6f8ff590af21b512e9e088257aa34", "b8d300fa7937e4d1e67c8468df4c9a43" },
};

/* wireguard-go device/kdf_test.go. */
static const struct {
	const char *key, *input, *t1, *t2, *t3;
} kdf_vectors[] = {
	{ "746573742d6b6579", "746573742d696e707574",
	  "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
	  "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
	  "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24" },
	{ "776972656775617264", "776972656775617264",
	  "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
	  "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
	  "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160" },
	{ "", "",
	  "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
	  "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
	  "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e" },
};

static void seq(uint8_t *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		m[i] = (uint8_t)i;
}

static void test_rfc7693_abc(void **state)
{
	uint8_t out[32], want[32];

	(void)state;
	unhex(want, sizeof(want), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
	blake2s(out, 32, NULL, 0, (const uint8_t *)"abc", 3);
	assert_memory_equal(out, want, 32);
}

static void test_sequence_vectors(void **state)
{
	uint8_t m[256], key[32], out[32], want[32];
	size_t i;

	(void)state;
	seq(key, sizeof(key));
	for (i = 0; i < ARRAY_SIZE(seq_vectors); i++) {
		seq(m, seq_vectors[i].n);
		unhex(want, 32, seq_vectors[i].unkeyed);
		blake2s(out, 32, NULL, 0, m, seq_vectors[i].n);
		assert_memory_equal(out, want, 32);
		unhex(want, 32, seq_vectors[i].keyed);
		blake2s(out, 32, key, 32, m, seq_vectors[i].n);
		assert_memory_equal(out, want, 32);
	}
}

static void test_mac16(void **state)
{
	uint8_t m[256], key[32], out[16], want[16];
	size_t i;

	(void)state;
	seq(key, sizeof(key));
	for (i = 0; i < ARRAY_SIZE(mac_vectors); i++) {
		seq(m, mac_vectors[i].n);
		unhex(want, 16, mac_vectors[i].key32);
		blake2s(out, 16, key, 32, m, mac_vectors[i].n);
		assert_memory_equal(out, want, 16);
		unhex(want, 16, mac_vectors[i].key16);
		blake2s(out, 16, key, 16, m, mac_vectors[i].n);
		assert_memory_equal(out, want, 16);
	}
}

/* Feeding the input in any split must give the one-shot digest. */
static void test_streaming_splits(void **state)
{
	uint8_t m[300], key[32], whole[32], part[32];
	struct blake2s_state s;
	size_t len, cut, keylen;

	(void)state;
	seq(m, sizeof(m));
	seq(key, sizeof(key));
	for (keylen = 0; keylen <= 32; keylen += 32) {
		for (len = 0; len <= sizeof(m); len += 13) {
			blake2s(whole, 32, key, keylen, m, len);
			for (cut = 0; cut <= len; cut += 7) {
				blake2s_init(&s, 32, key, keylen);
				blake2s_update(&s, m, cut);
				blake2s_update(&s, m + cut, len - cut);
				blake2s_final(&s, part);
				assert_memory_equal(whole, part, 32);
			}
		}
	}
}

static void test_hmac(void **state)
{
	static const char msg[] = "The quick brown fox jumps over the lazy dog";
	uint8_t out[32], want[32];

	(void)state;
	/* Python: hmac.new(b'key', msg, hashlib.blake2s). */
	unhex(want, 32, "f93215bb90d4af4c3061cd932fb169fb8bb8a91d0b4022baea1271e1323cd9a0");
	blake2s_hmac(out, (const uint8_t *)"key", 3, (const uint8_t *)msg, strlen(msg));
	assert_memory_equal(out, want, 32);
}

static void test_kdf(void **state)
{
	uint8_t key[32], in[32], t1[32], t2[32], t3[32], want[32], ck[32];
	size_t i, keylen, inlen;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(kdf_vectors); i++) {
		keylen = unhex(key, sizeof(key), kdf_vectors[i].key);
		inlen = unhex(in, sizeof(in), kdf_vectors[i].input);
		/*
		 * wireguard-go's test passes keys shorter than 32 bytes; HMAC
		 * zero-pads them, so a zero-padded 32-byte chaining key is the
		 * same key.
		 */
		memset(ck, 0, sizeof(ck));
		memcpy(ck, key, keylen);
		blake2s_kdf(t1, t2, t3, ck, in, inlen);
		unhex(want, 32, kdf_vectors[i].t1);
		assert_memory_equal(t1, want, 32);
		unhex(want, 32, kdf_vectors[i].t2);
		assert_memory_equal(t2, want, 32);
		unhex(want, 32, kdf_vectors[i].t3);
		assert_memory_equal(t3, want, 32);

		/* KDF1 and KDF2 return the same leading outputs. */
		memset(t1, 0, 32);
		memset(t2, 0, 32);
		blake2s_kdf(t1, t2, NULL, ck, in, inlen);
		unhex(want, 32, kdf_vectors[i].t2);
		assert_memory_equal(t2, want, 32);
		memset(t1, 0, 32);
		blake2s_kdf(t1, NULL, NULL, ck, in, inlen);
		unhex(want, 32, kdf_vectors[i].t1);
		assert_memory_equal(t1, want, 32);
	}
}

/* The protocol's initial chaining key and hash (the WireGuard paper, 5.4.2: C_i, H_i). */
static void test_protocol_constants(void **state)
{
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	uint8_t ck[32], h[32], want[32];
	struct blake2s_state s;

	(void)state;
	blake2s(ck, 32, NULL, 0, (const uint8_t *)construction, strlen(construction));
	unhex(want, 32, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
	assert_memory_equal(ck, want, 32);
	blake2s_init(&s, 32, NULL, 0);
	blake2s_update(&s, ck, 32);
	blake2s_update(&s, (const uint8_t *)identifier, strlen(identifier));
	blake2s_final(&s, h);
	unhex(want, 32, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
	assert_memory_equal(h, want, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7693_abc),
		cmocka_unit_test(test_sequence_vectors),
		cmocka_unit_test(test_mac16),
		cmocka_unit_test(test_streaming_splits),
		cmocka_unit_test(test_hmac),
		cmocka_unit_test(test_kdf),
		cmocka_unit_test(test_protocol_constants),
	};

	return cmocka_run_group_tests_name("blake2s", tests, NULL, NULL);
}
