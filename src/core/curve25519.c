// SPDX-License-Identifier: MIT
/* X25519 private-key clamping (curve25519.h). No dependencies, so veilctl links it alone. */
#include "curve25519.h"

void curve25519_clamp_secret(uint8_t key[static NOISE_PRIVATE_KEY_LEN])
{
	key[0] &= 248;
	key[NOISE_PRIVATE_KEY_LEN - 1] = (uint8_t)((key[NOISE_PRIVATE_KEY_LEN - 1] & 127) | 64);
}
