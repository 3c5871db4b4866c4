/* SPDX-License-Identifier: MIT */
/*
 * mac1, mac2 and cookie replies (the WireGuard paper, 5.3, 5.4.4 and 5.4.7). The checker is the
 * responder's side (one per interface), the maker the initiator's (one per
 * peer). Pure: time and randomness come in as arguments.
 */
#ifndef VEIL_COOKIE_H
#define VEIL_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "messages.h"
#include "rng.h"

struct cookie_checker {
	uint8_t secret[NOISE_HASH_LEN];
	uint64_t secret_birth;
	bool have_secret;
	uint8_t mac1_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t encryption_key[NOISE_SYMMETRIC_KEY_LEN];
};

struct cookie_maker {
	uint8_t mac1_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t decryption_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t cookie[COOKIE_LEN];
	uint64_t cookie_birth;
	bool have_cookie;
	uint8_t last_mac1_sent[COOKIE_LEN];
	bool have_sent_mac1;
};

enum cookie_mac_state {
	COOKIE_MAC_INVALID,
	COOKIE_MAC_VALID_NO_COOKIE,
	COOKIE_MAC_VALID_WITH_COOKIE,
};

/* local_public may be NULL (no identity): every mac1 then fails. */
void cookie_checker_init(struct cookie_checker *c, const uint8_t *local_public);
void cookie_maker_init(struct cookie_maker *m, const uint8_t remote_public[static 32]);

/* Set mac1 and, with a fresh cookie, mac2 on an initiation or response we send. */
void cookie_add_macs(struct cookie_maker *m, uint8_t *msg, size_t len, uint64_t now);

/*
 * Check mac1 (and mac2 when check_cookie) of a received initiation or response.
 * src/src_len identify the datagram's source (address bytes then port, big-endian).
 */
enum cookie_mac_state cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
				      const uint8_t *src, size_t src_len, bool check_cookie,
				      uint64_t now, const struct wg_rng *rng);

/* Build the 64-byte reply to msg (whose mac2 failed) for the given source. */
void cookie_create_reply(struct cookie_checker *c, uint8_t out[static COOKIE_REPLY_LEN],
			 const uint8_t *msg, size_t len, const uint8_t *src, size_t src_len,
			 uint64_t now, const struct wg_rng *rng);

/* Consume a reply addressed to the peer owning m. 0, -EINVAL (nothing sent yet), -EBADMSG. */
int cookie_consume_reply(struct cookie_maker *m, const uint8_t msg[static COOKIE_REPLY_LEN],
			 uint64_t now) __must_check;

#endif
