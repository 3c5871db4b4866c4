/* SPDX-License-Identifier: MIT */
/*
 * WireGuard wire layout and protocol constants, as the WireGuard paper gives
 * them (5.4.2-5.4.7 for the messages, 6.1 for the timing constants) and the
 * kernel's messages.h names them. Everything the core, the daemon and
 * the tests agree on lives here, grouped in named enums.
 *
 * Times in the core are plain uint64_t nanoseconds on a monotonic clock that
 * the caller supplies; nothing in src/core/ reads a clock itself.
 */
#ifndef VEIL_MESSAGES_H
#define VEIL_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_SEC 1000000000ULL

enum noise_lengths {
	NOISE_PUBLIC_KEY_LEN = 32,
	NOISE_PRIVATE_KEY_LEN = 32,
	NOISE_SYMMETRIC_KEY_LEN = 32,
	NOISE_TIMESTAMP_LEN = 12,
	NOISE_AUTHTAG_LEN = 16,
	NOISE_HASH_LEN = 32,
};

#define NOISE_ENCRYPTED_LEN(plain_len) ((plain_len) + NOISE_AUTHTAG_LEN)

enum cookie_values {
	COOKIE_SECRET_MAX_AGE_SEC = 120,
	COOKIE_SECRET_LATENCY_SEC = 5,
	COOKIE_NONCE_LEN = 24,
	COOKIE_LEN = 16,
};

enum counter_values {
	COUNTER_BITS_TOTAL = 8192,
	COUNTER_REDUNDANT_BITS = 64,
	COUNTER_WINDOW_SIZE = COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS,
};

enum limits {
	/* 2^60 and 2^64 - 2^13 - 1, as wireguard-go and the whitepaper. */
	REKEY_AFTER_TIME_SEC = 120,
	REJECT_AFTER_TIME_SEC = 180,
	REKEY_TIMEOUT_SEC = 5,
	REKEY_TIMEOUT_JITTER_MAX_MS = 334,
	KEEPALIVE_TIMEOUT_SEC = 10,
	REKEY_ATTEMPT_TIME_SEC = 90,
	MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME_SEC / REKEY_TIMEOUT_SEC,
	INITIATIONS_PER_SECOND = 50,
	MAX_PEER_QUEUED_PACKETS = 128,
	MESSAGE_PADDING_MULTIPLE = 16,
	DEFAULT_MTU = 1420,
};

#define REKEY_AFTER_MESSAGES (1ULL << 60)
#define REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))

#define REKEY_AFTER_TIME ((uint64_t)REKEY_AFTER_TIME_SEC * NSEC_PER_SEC)
#define REJECT_AFTER_TIME ((uint64_t)REJECT_AFTER_TIME_SEC * NSEC_PER_SEC)
#define REKEY_TIMEOUT ((uint64_t)REKEY_TIMEOUT_SEC * NSEC_PER_SEC)
#define KEEPALIVE_TIMEOUT ((uint64_t)KEEPALIVE_TIMEOUT_SEC * NSEC_PER_SEC)
#define REKEY_ATTEMPT_TIME ((uint64_t)REKEY_ATTEMPT_TIME_SEC * NSEC_PER_SEC)
#define COOKIE_SECRET_MAX_AGE ((uint64_t)COOKIE_SECRET_MAX_AGE_SEC * NSEC_PER_SEC)
#define COOKIE_SECRET_LATENCY ((uint64_t)COOKIE_SECRET_LATENCY_SEC * NSEC_PER_SEC)
#define INITIATION_MIN_INTERVAL (NSEC_PER_SEC / INITIATIONS_PER_SECOND)
#define ZERO_KEY_MATERIAL_TIMEOUT (REJECT_AFTER_TIME * 3)

enum message_type {
	MESSAGE_INVALID = 0,
	MESSAGE_HANDSHAKE_INITIATION = 1,
	MESSAGE_HANDSHAKE_RESPONSE = 2,
	MESSAGE_HANDSHAKE_COOKIE = 3,
	MESSAGE_DATA = 4,
};

/* Offsets and sizes of the four messages (the WireGuard paper, 5.4.2-5.4.7). */
enum message_layout {
	MESSAGE_HEADER_LEN = 4,
	MESSAGE_MACS_LEN = 32,

	INITIATION_LEN = 148,
	INITIATION_SENDER = 4,
	INITIATION_EPHEMERAL = 8,
	INITIATION_STATIC = 40,
	INITIATION_TIMESTAMP = 88,
	INITIATION_MAC1 = 116,
	INITIATION_MAC2 = 132,

	RESPONSE_LEN = 92,
	RESPONSE_SENDER = 4,
	RESPONSE_RECEIVER = 8,
	RESPONSE_EPHEMERAL = 12,
	RESPONSE_EMPTY = 44,
	RESPONSE_MAC1 = 60,
	RESPONSE_MAC2 = 76,

	COOKIE_REPLY_LEN = 64,
	COOKIE_REPLY_RECEIVER = 4,
	COOKIE_REPLY_NONCE = 8,
	COOKIE_REPLY_COOKIE = 32,

	DATA_RECEIVER = 4,
	DATA_COUNTER = 8,
	DATA_HEADER_LEN = 16,
	DATA_MIN_LEN = DATA_HEADER_LEN + NOISE_AUTHTAG_LEN,
	KEEPALIVE_LEN = DATA_MIN_LEN,
};

static inline uint32_t le32_read(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void le32_write(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint64_t le64_read(const uint8_t *p)
{
	return (uint64_t)le32_read(p) | (uint64_t)le32_read(p + 4) << 32;
}

static inline void le64_write(uint8_t *p, uint64_t v)
{
	le32_write(p, (uint32_t)v);
	le32_write(p + 4, (uint32_t)(v >> 32));
}

/* The message type is the whole first little-endian word: reserved bytes must be zero. */
static inline uint32_t message_type_of(const uint8_t *msg, size_t len)
{
	return len >= MESSAGE_HEADER_LEN ? le32_read(msg) : MESSAGE_INVALID;
}

#endif
