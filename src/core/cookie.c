// SPDX-License-Identifier: MIT
/*
 * WireGuard's DoS mitigation (the WireGuard paper, 5.3 and 5.4.4; the
 * kernel's cookie.c). mac1
 * proves the sender knows our public key; under load, mac2 proves it can
 * receive at its source address, because the cookie it is keyed with was sent
 * there encrypted in a cookie reply.
 */
#include "cookie.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "blake2s.h"

static const uint8_t label_mac1[8] = "mac1----";
static const uint8_t label_cookie[8] = "cookie--";

static void derive_key(uint8_t out[static 32], const uint8_t label[static 8],
		       const uint8_t pub[static 32])
{
	struct blake2s_state s;

	blake2s_init(&s, 32, NULL, 0);
	blake2s_update(&s, label, 8);
	blake2s_update(&s, pub, 32);
	blake2s_final(&s, out);
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t *local_public)
{
	sodium_memzero(c, sizeof(*c));
	if (!local_public)
		return;
	derive_key(c->mac1_key, label_mac1, local_public);
	derive_key(c->encryption_key, label_cookie, local_public);
}

void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[static 32])
{
	sodium_memzero(m, sizeof(*m));
	derive_key(m->mac1_key, label_mac1, remote_public);
	derive_key(m->decryption_key, label_cookie, remote_public);
}

/* mac1 covers the message up to mac1, mac2 up to mac2 (mac1 included). */
static void mac(uint8_t out[static COOKIE_LEN], const uint8_t *key, size_t keylen,
		const uint8_t *msg, size_t covered)
{
	blake2s(out, COOKIE_LEN, key, keylen, msg, covered);
}

static void current_cookie(struct cookie_checker *c, uint8_t out[static COOKIE_LEN],
			   const uint8_t *src, size_t src_len, uint64_t now,
			   const struct wg_rng *rng)
{
	/* The secret changes lazily, at first use after it has aged out. */
	if (!c->have_secret || now - c->secret_birth >= COOKIE_SECRET_MAX_AGE) {
		wg_rng_fill(rng, c->secret, sizeof(c->secret));
		c->secret_birth = now;
		c->have_secret = true;
	}
	mac(out, c->secret, sizeof(c->secret), src, src_len);
}

void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now)
{
	uint8_t *mac1 = msg + len - MESSAGE_MACS_LEN, *mac2 = mac1 + COOKIE_LEN;

	mac(mac1, m->mac1_key, sizeof(m->mac1_key), msg, len - MESSAGE_MACS_LEN);
	memcpy(m->last_mac1_sent, mac1, COOKIE_LEN);
	m->have_sent_mac1 = true;

	/* The responder's secret may be up to its latency older than ours. */
	if (m->have_cookie &&
	    now - m->cookie_birth < COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY)
		mac(mac2, m->cookie, sizeof(m->cookie), msg, len - COOKIE_LEN);
	else
		memset(mac2, 0, COOKIE_LEN);
}

enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const uint8_t *src, size_t src_len, bool check_cookie,
				      uint64_t now, const struct wg_rng *rng)
{
	const uint8_t *mac1 = msg + len - MESSAGE_MACS_LEN, *mac2 = mac1 + COOKIE_LEN;
	uint8_t computed[COOKIE_LEN], cookie[COOKIE_LEN];
	enum cookie_mac_state ret = COOKIE_MAC_INVALID;

	if (len < MESSAGE_MACS_LEN + MESSAGE_HEADER_LEN || sodium_is_zero(c->mac1_key, 32))
		goto out;
	mac(computed, c->mac1_key, sizeof(c->mac1_key), msg, len - MESSAGE_MACS_LEN);
	if (crypto_verify_16(computed, mac1))
		goto out;
	ret = COOKIE_MAC_VALID_NO_COOKIE;
	if (!check_cookie)
		goto out;
	current_cookie(c, cookie, src, src_len, now, rng);
	mac(computed, cookie, sizeof(cookie), msg, len - COOKIE_LEN);
	if (crypto_verify_16(computed, mac2) == 0)
		ret = COOKIE_MAC_VALID_WITH_COOKIE;
out:
	sodium_memzero(cookie, sizeof(cookie));
	return ret;
}

void cookie_create_reply(struct cookie_checker *c, uint8_t out[static COOKIE_REPLY_LEN],
			 const uint8_t *msg, size_t len, const uint8_t *src, size_t src_len,
			 uint64_t now, const struct wg_rng *rng)
{
	const uint8_t *mac1 = msg + len - MESSAGE_MACS_LEN;
	uint8_t cookie[COOKIE_LEN];

	le32_write(out, MESSAGE_HANDSHAKE_COOKIE);
	/* The receiver is the triggering message's sender field, bytes 4..7. */
	memcpy(out + COOKIE_REPLY_RECEIVER, msg + 4, 4);
	wg_rng_fill(rng, out + COOKIE_REPLY_NONCE, COOKIE_NONCE_LEN);
	current_cookie(c, cookie, src, src_len, now, rng);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + COOKIE_REPLY_COOKIE, NULL, cookie,
						   COOKIE_LEN, mac1, COOKIE_LEN, NULL,
						   out + COOKIE_REPLY_NONCE, c->encryption_key);
	sodium_memzero(cookie, sizeof(cookie));
}

int cookie_consume_reply(struct cookie_maker *m, const uint8_t msg[static COOKIE_REPLY_LEN],
			 uint64_t now)
{
	uint8_t cookie[COOKIE_LEN];
	int ret = -EINVAL;

	if (!m->have_sent_mac1)
		goto out;
	ret = -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, msg + COOKIE_REPLY_COOKIE,
						       COOKIE_LEN + NOISE_AUTHTAG_LEN,
						       m->last_mac1_sent, COOKIE_LEN,
						       msg + COOKIE_REPLY_NONCE, m->decryption_key))
		goto out;
	memcpy(m->cookie, cookie, COOKIE_LEN);
	m->cookie_birth = now;
	m->have_cookie = true;
	/* One cookie per mac1 we sent: a second reply to the same message is refused. */
	m->have_sent_mac1 = false;
	ret = 0;
out:
	sodium_memzero(cookie, sizeof(cookie));
	return ret;
}
