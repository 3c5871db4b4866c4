// SPDX-License-Identifier: MIT
/*
 * BLAKE2s as specified in RFC 7693, section 3 (32-bit words, ten rounds,
 * rotations 16/12/8/7), written from the RFC's pseudocode.
 */
#include "blake2s.h"

#include <string.h>

#include <sodium.h>

#include "compiler.h"

static const uint32_t iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static const uint8_t sigma[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static inline uint32_t rotr(uint32_t x, unsigned int n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The G function of RFC 7693 section 3.1. */
#define G(a, b, c, d, x, y)                       \
	do {                                      \
		v[a] = v[a] + v[b] + (x);         \
		v[d] = rotr(v[d] ^ v[a], 16);     \
		v[c] = v[c] + v[d];               \
		v[b] = rotr(v[b] ^ v[c], 12);     \
		v[a] = v[a] + v[b] + (y);         \
		v[d] = rotr(v[d] ^ v[a], 8);      \
		v[c] = v[c] + v[d];               \
		v[b] = rotr(v[b] ^ v[c], 7);      \
	} while (0)

static void compress(struct blake2s_state *s, const uint8_t block[BLAKE2S_BLOCK_SIZE],
		     uint32_t inc, int last)
{
	uint32_t m[16], v[16];
	size_t i;
	int r;

	s->t[0] += inc;
	if (s->t[0] < inc)
		s->t[1]++;
	for (i = 0; i < 16; i++)
		m[i] = load32(block + 4 * i);
	for (i = 0; i < 8; i++) {
		v[i] = s->h[i];
		v[i + 8] = iv[i];
	}
	v[12] ^= s->t[0];
	v[13] ^= s->t[1];
	if (last)
		v[14] = ~v[14];
	for (r = 0; r < 10; r++) {
		const uint8_t *sg = sigma[r];

		G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
		G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
		G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
		G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
		G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
		G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
		G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
		G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
	}
	for (i = 0; i < 8; i++)
		s->h[i] ^= v[i] ^ v[i + 8];
	/* The message words may be key material (keyed MAC, HMAC pads). */
	sodium_memzero(m, sizeof(m));
	sodium_memzero(v, sizeof(v));
}

void blake2s_init(struct blake2s_state *s, size_t outlen, const uint8_t *key, size_t keylen)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->h, iv, sizeof(iv));
	/* Parameter block word 0: digest length, key length, fanout 1, depth 1. */
	s->h[0] ^= 0x01010000u ^ ((uint32_t)keylen << 8) ^ (uint32_t)outlen;
	s->outlen = outlen;
	if (keylen) {
		/* The key, zero-padded, is the first block (RFC 7693 3.3). */
		memcpy(s->buf, key, keylen);
		s->buflen = BLAKE2S_BLOCK_SIZE;
	}
}

void blake2s_update(struct blake2s_state *s, const uint8_t *in, size_t inlen)
{
	size_t fill;

	if (!inlen)
		return;
	/*
	 * Keep the last block buffered: only blake2s_final knows whether it is
	 * the final one, even when the input ends on a block boundary.
	 */
	fill = BLAKE2S_BLOCK_SIZE - s->buflen;
	if (inlen > fill) {
		memcpy(s->buf + s->buflen, in, fill);
		compress(s, s->buf, BLAKE2S_BLOCK_SIZE, 0);
		s->buflen = 0;
		in += fill;
		inlen -= fill;
		while (inlen > BLAKE2S_BLOCK_SIZE) {
			compress(s, in, BLAKE2S_BLOCK_SIZE, 0);
			in += BLAKE2S_BLOCK_SIZE;
			inlen -= BLAKE2S_BLOCK_SIZE;
		}
	}
	memcpy(s->buf + s->buflen, in, inlen);
	s->buflen += inlen;
}

void blake2s_final(struct blake2s_state *s, uint8_t *out)
{
	uint8_t full[BLAKE2S_HASH_SIZE];
	size_t i;

	memset(s->buf + s->buflen, 0, BLAKE2S_BLOCK_SIZE - s->buflen);
	compress(s, s->buf, (uint32_t)s->buflen, 1);
	for (i = 0; i < 8; i++) {
		full[4 * i] = (uint8_t)s->h[i];
		full[4 * i + 1] = (uint8_t)(s->h[i] >> 8);
		full[4 * i + 2] = (uint8_t)(s->h[i] >> 16);
		full[4 * i + 3] = (uint8_t)(s->h[i] >> 24);
	}
	memcpy(out, full, s->outlen);
	sodium_memzero(full, sizeof(full));
	sodium_memzero(s, sizeof(*s));
}

void blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
	     const uint8_t *in, size_t inlen)
{
	struct blake2s_state s;

	blake2s_init(&s, outlen, key, keylen);
	blake2s_update(&s, in, inlen);
	blake2s_final(&s, out);
}

void blake2s_hmac(uint8_t out[static BLAKE2S_HASH_SIZE], const uint8_t *key,
		  size_t keylen, const uint8_t *in, size_t inlen)
{
	struct blake2s_state s;
	uint8_t pad[BLAKE2S_BLOCK_SIZE], inner[BLAKE2S_HASH_SIZE];
	size_t i;

	/* WireGuard's keys never exceed a block, so the key is used as is. */
	memset(pad, 0, sizeof(pad));
	if (keylen)
		memcpy(pad, key, keylen);
	for (i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36;
	blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
	blake2s_update(&s, pad, sizeof(pad));
	blake2s_update(&s, in, inlen);
	blake2s_final(&s, inner);

	for (i = 0; i < sizeof(pad); i++)
		pad[i] ^= 0x36 ^ 0x5c;
	blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
	blake2s_update(&s, pad, sizeof(pad));
	blake2s_update(&s, inner, sizeof(inner));
	blake2s_final(&s, out);

	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

void blake2s_kdf(uint8_t t1[static 32], uint8_t *t2, uint8_t *t3,
		 const uint8_t ck[static 32], const uint8_t *x, size_t xlen)
{
	uint8_t prk[BLAKE2S_HASH_SIZE], buf[BLAKE2S_HASH_SIZE + 1];

	blake2s_hmac(prk, ck, 32, x, xlen);

	buf[0] = 1;
	blake2s_hmac(buf, prk, sizeof(prk), buf, 1);
	memcpy(t1, buf, BLAKE2S_HASH_SIZE);
	if (!t2)
		goto out;

	buf[BLAKE2S_HASH_SIZE] = 2;
	blake2s_hmac(buf, prk, sizeof(prk), buf, sizeof(buf));
	memcpy(t2, buf, BLAKE2S_HASH_SIZE);
	if (!t3)
		goto out;

	buf[BLAKE2S_HASH_SIZE] = 3;
	blake2s_hmac(buf, prk, sizeof(prk), buf, sizeof(buf));
	memcpy(t3, buf, BLAKE2S_HASH_SIZE);
out:
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(buf, sizeof(buf));
}
