/* SPDX-License-Identifier: MIT */
/*
 * The transport AEAD (the WireGuard paper, 5.4.6): ChaCha20-Poly1305, or veil's
 * AES-256-GCM suite, with a 96-bit nonce and a 16-byte tag appended, as one
 * small interface over OpenSSL's libcrypto (EVP). A keypair keeps one
 * context per direction, keyed once when the handshake derives it, so a
 * packet costs one nonce and one pass. Why OpenSSL for this alone: measured
 * on the CI machine at 1,424 bytes it runs ChaCha20-Poly1305 1.5 times and
 * AES-256-GCM 1.7 times as fast as libsodium 1.0.18, and the AEAD was over
 * half of veild's time once the offloads were in (docs/performance.md).
 * libsodium keeps every other primitive, the handshake's AEAD included.
 */
#ifndef VEIL_AEAD_H
#define VEIL_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

struct aead_ctx {
	void *evp; /* EVP_CIPHER_CTX: OpenSSL cleanses its key schedule when freed */
};

/*
 * Once, at start, before any sandbox: initialise libcrypto without reading
 * a configuration file, load both ciphers and check that a sealed message
 * opens and a damaged one does not. 0 or -EIO.
 */
int aead_prepare(void) __must_check;
/* Key a context for one direction: 0, or -ENOMEM / -EIO. */
int aead_init(struct aead_ctx *c, bool aes256gcm, const uint8_t key[static 32], bool encrypt)
	__must_check;
/* Free (and so wipe) a context; a zeroed one is left alone. */
void aead_free(struct aead_ctx *c);
/*
 * Key a context made by aead_init again, for the same cipher and direction,
 * in place: nothing is allocated (a worker thread re-keys its own context
 * for each keypair it serves; src/workers.c). 0 or -EIO.
 */
int aead_rekey(struct aead_ctx *c, const uint8_t key[static 32]) __must_check;
/* Encrypt len bytes of in to out (which may be in) and append the tag: 0 or -EIO. */
int aead_seal(struct aead_ctx *c, uint8_t *out, const uint8_t *in, size_t len,
	      const uint8_t nonce[static 12]) __must_check;
/*
 * Check and decrypt len bytes (ciphertext and tag) of in to out (which may
 * be in): 0, or -EBADMSG (out then holds nothing to use).
 */
int aead_open(struct aead_ctx *c, uint8_t *out, const uint8_t *in, size_t len,
	      const uint8_t nonce[static 12]) __must_check;

#endif
