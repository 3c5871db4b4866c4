// SPDX-License-Identifier: MIT
#include "aead.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

enum { TAG_LEN = 16 };

int aead_prepare(void)
{
	static const uint8_t key[32] = { 1 }, nonce[12] = { 2 };
	uint8_t buf[64 + TAG_LEN], plain[64];
	struct aead_ctx s, o;
	int aes, err = 0;

	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1)
		return -EIO;
	for (aes = 0; aes < 2 && !err; aes++) {
		memset(plain, 0x5a, sizeof(plain));
		s.evp = o.evp = NULL;
		err = aead_init(&s, aes, key, true) || aead_init(&o, aes, key, false) ||
		      aead_seal(&s, buf, plain, sizeof(plain), nonce) ||
		      aead_open(&o, buf, buf, sizeof(buf), nonce) || memcmp(buf, plain, sizeof(plain)) != 0;
		if (!err)
			err = aead_seal(&s, buf, plain, sizeof(plain), nonce);
		if (!err) {
			buf[3] ^= 1; /* a damaged message must not open */
			err = !aead_open(&o, buf, buf, sizeof(buf), nonce);
		}
		aead_free(&s);
		aead_free(&o);
	}
	return err ? -EIO : 0;
}

int aead_init(struct aead_ctx *c, bool aes256gcm, const uint8_t key[static 32], bool encrypt)
{
	const EVP_CIPHER *cipher = aes256gcm ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	c->evp = NULL;
	if (!ctx)
		return -ENOMEM;
	if (EVP_CipherInit_ex(ctx, cipher, NULL, key, NULL, encrypt ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return -EIO;
	}
	c->evp = ctx;
	return 0;
}

void aead_free(struct aead_ctx *c)
{
	EVP_CIPHER_CTX_free(c->evp);
	c->evp = NULL;
}

int aead_rekey(struct aead_ctx *c, const uint8_t key[static 32])
{
	/* No cipher: the context keeps its own and its provider's state, only the key changes. */
	if (!c->evp || EVP_CipherInit_ex(c->evp, NULL, NULL, key, NULL, -1) != 1)
		return -EIO;
	return 0;
}

int aead_seal(struct aead_ctx *c, uint8_t *out, const uint8_t *in, size_t len,
	      const uint8_t nonce[static 12])
{
	EVP_CIPHER_CTX *ctx = c->evp;
	int n = 0, fin = 0;

	if (!ctx || len > INT_MAX - TAG_LEN ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, out, &n, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + len) != 1)
		return -EIO;
	return 0;
}

int aead_open(struct aead_ctx *c, uint8_t *out, const uint8_t *in, size_t len,
	      const uint8_t nonce[static 12])
{
	EVP_CIPHER_CTX *ctx = c->evp;
	uint8_t tag[TAG_LEN];
	int n = 0, fin = 0;

	if (!ctx || len < TAG_LEN || len - TAG_LEN > INT_MAX)
		return -EBADMSG;
	len -= TAG_LEN;
	/* The tag first: with out == in, decrypting overwrites nothing it needs, but be plain. */
	memcpy(tag, in + len, TAG_LEN);
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, in, (int)len) != 1 ||
	    EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1 || (size_t)n + (size_t)fin != len)
		return -EBADMSG;
	return 0;
}
