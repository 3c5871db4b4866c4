/* SPDX-License-Identifier: MIT */
/*
 * BLAKE2s (RFC 7693) and the constructions WireGuard builds on it:
 * HMAC-BLAKE2s (RFC 2104) and the HKDF-style KDF with one to three outputs.
 * libsodium only has BLAKE2b, so this is ours.
 */
#ifndef VEIL_BLAKE2S_H
#define VEIL_BLAKE2S_H

#include <stddef.h>
#include <stdint.h>

enum blake2s_lengths {
	BLAKE2S_BLOCK_SIZE = 64,
	BLAKE2S_HASH_SIZE = 32,
	BLAKE2S_KEY_SIZE = 32,
};

struct blake2s_state {
	uint32_t h[8];
	uint32_t t[2];
	uint8_t buf[BLAKE2S_BLOCK_SIZE];
	size_t buflen;
	size_t outlen;
};

/* outlen 1..32; key may be NULL when keylen is 0; keylen 0..32. */
void blake2s_init(struct blake2s_state *s, size_t outlen, const uint8_t *key, size_t keylen);
void blake2s_update(struct blake2s_state *s, const uint8_t *in, size_t inlen);
/* Writes outlen bytes and wipes the state. */
void blake2s_final(struct blake2s_state *s, uint8_t *out);

void blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
	     const uint8_t *in, size_t inlen);

/* HMAC over BLAKE2s-256; keylen at most one block. */
void blake2s_hmac(uint8_t out[static BLAKE2S_HASH_SIZE], const uint8_t *key,
		  size_t keylen, const uint8_t *in, size_t inlen);

/*
 * KDF1/2/3 of the WireGuard paper (5.4, the kernel's noise.c kdf()): HKDF with
 * salt = chaining key, IKM = x,
 * empty info. t2 and t3 may be NULL for fewer outputs.
 */
void blake2s_kdf(uint8_t t1[static 32], uint8_t *t2, uint8_t *t3,
		 const uint8_t ck[static 32], const uint8_t *x, size_t xlen);

#endif
