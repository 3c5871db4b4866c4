/* SPDX-License-Identifier: MIT */
/*
 * The one X25519 helper the core, the daemon and veilctl share: clamping a
 * private key (RFC 7748, section 5, decodeScalar25519). libsodium's
 * crypto_scalarmult clamps internally, so the clamp changes no public key;
 * it matters for the key a tool prints or stores, which must be the one the
 * kernel and wireguard-go report (the kernel's curve25519_clamp_secret).
 */
#ifndef VEIL_CURVE25519_H
#define VEIL_CURVE25519_H

#include <stdint.h>

#include "messages.h"

/* Clear the three low bits and the top bit, set bit 254, in place. */
void curve25519_clamp_secret(uint8_t key[static NOISE_PRIVATE_KEY_LEN]);

#endif
