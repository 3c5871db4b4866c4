/* SPDX-License-Identifier: MIT */
/*
 * Noise_IKpsk2 as WireGuard uses it (the WireGuard paper, 5.4.2-5.4.3), the
 * transport keypairs it yields (5.4.5, 5.4.6) and their previous/current/next
 * slots (the kernel's noise.c, add_new_keypair and wg_noise_received_with_keypair). Pure: time and randomness come in as arguments.
 */
#ifndef VEIL_NOISE_H
#define VEIL_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "compiler.h"
#include "index.h"
#include "messages.h"
#include "replay.h"
#include "rng.h"

/* The interface's static identity. The daemon keeps it in sodium_malloc memory. */
struct noise_static_identity {
	uint8_t private_key[NOISE_PRIVATE_KEY_LEN];
	uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
	bool has_identity;
};

enum noise_handshake_state {
	HANDSHAKE_ZEROED,
	HANDSHAKE_CREATED_INITIATION,
	HANDSHAKE_CONSUMED_INITIATION,
	HANDSHAKE_CREATED_RESPONSE,
	HANDSHAKE_CONSUMED_RESPONSE,
};

/*
 * The transport AEAD of a peer's sessions. WIREGUARD is WireGuard, bit for
 * bit. AES256GCM (veil's own, between veil peers) swaps only the transport
 * AEAD; the handshake keeps its primitives, but its initial hash mixes
 * NOISE_AES256GCM_IDENTIFIER instead of WireGuard's identifier, so every
 * handshake AEAD binds the suite and two sides that differ cannot complete.
 */
enum noise_suite {
	NOISE_SUITE_WIREGUARD = 0,
	NOISE_SUITE_AES256GCM = 1,
};
#define NOISE_SUITES 2
#define NOISE_AES256GCM_IDENTIFIER "veil v1 aes256gcm transport"

/* Per-peer handshake state (the kernel's noise.h, struct noise_handshake). */
struct noise_handshake {
	struct index_entry entry;
	enum noise_handshake_state state;
	uint8_t remote_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t precomputed_static_static[NOISE_PUBLIC_KEY_LEN];
	uint8_t preshared_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t ephemeral_private[NOISE_PRIVATE_KEY_LEN];
	uint8_t remote_ephemeral[NOISE_PUBLIC_KEY_LEN];
	uint8_t chaining_key[NOISE_HASH_LEN];
	uint8_t hash[NOISE_HASH_LEN];
	uint8_t latest_timestamp[NOISE_TIMESTAMP_LEN];
	uint32_t remote_index;
	uint64_t last_initiation_consumed;
	bool have_consumed_initiation;
	enum noise_suite suite; /* set after init; clear keeps it */
};

struct noise_keypair {
	struct index_entry entry;
	uint8_t send_key[NOISE_SYMMETRIC_KEY_LEN];
	uint8_t recv_key[NOISE_SYMMETRIC_KEY_LEN];
	struct aead_ctx send_ctx, recv_ctx; /* the keys above, keyed under suite */
	uint64_t send_counter;
	struct replay_counter replay;
	uint64_t created;
	uint64_t serial; /* unique per keypair made: tells a reused slab slot from this one */
	uint32_t remote_index;
	enum noise_suite suite;
	bool is_initiator;
	/* Cleared when the private key changes: the keypair may still receive. */
	bool sending_valid;
};

/*
 * Up to three keypairs, previous/current/next, or NULL. Each comes from
 * cache when a handshake yields it and goes back, wiped, when it rotates
 * out: an idle peer holds none (the kernel allocates them too; OpenBSD's
 * three fixed slots would cost every configured peer 3.4 KB).
 */
struct slab_cache;

struct noise_keypairs {
	struct slab_cache *cache;
	struct noise_keypair *previous, *current, *next;
};

void noise_keypairs_init(struct noise_keypairs *kps, struct slab_cache *cache);

/* The Noise protocol's initial chaining key and hash (the WireGuard paper, 5.4.2: C_i, H_i). */
extern const uint8_t noise_initial_chaining_key[NOISE_HASH_LEN];
extern const uint8_t noise_initial_hash[NOISE_HASH_LEN];

/* Identity: clamps and derives the public key; all-zero means "no identity". */
void noise_identity_set(struct noise_static_identity *id, const uint8_t private_key[static NOISE_PRIVATE_KEY_LEN]);

/*
 * Sets up hs for the peer with the given public key; psk may be NULL. The
 * static-static DH is precomputed; if it fails (or there is no identity) it
 * stays zero and handshakes with this peer are refused.
 */
void noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *id,
			  const uint8_t remote_static[static NOISE_PUBLIC_KEY_LEN], const uint8_t *psk, void *peer);
void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t *psk);
/* Recompute the static-static DH after the identity changed. */
void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id);
/* Wipe the in-progress handshake and drop its index. */
void noise_handshake_clear(struct noise_handshake *hs, struct index_table *idx);

/*
 * Fill msg (INITIATION_LEN) except mac1/mac2. wall_ns is Unix time in
 * nanoseconds for the TAI64N timestamp. 0 or -ENOKEY, -EINVAL, -ENOMEM.
 */
int noise_create_initiation(struct noise_handshake *hs, const struct noise_static_identity *id,
			    struct index_table *idx, uint8_t msg[static INITIATION_LEN],
			    uint64_t wall_ns, const struct wg_rng *rng) __must_check;

/*
 * Consume an initiation whose MACs were already checked. lookup maps the
 * decrypted static key to a peer's handshake (NULL if unknown). On success
 * *out is that handshake, in state CONSUMED_INITIATION. Nothing is changed
 * on failure: -ENOENT unknown peer, -EBADMSG bad AEAD or DH, -EEXIST replayed
 * timestamp, -EBUSY initiation flood, -ENOKEY no identity. An authentic,
 * fresh initiation under the other suite than the peer's (see noise_suite)
 * is -ENOPROTOOPT (it offered AES-256-GCM, the peer is set to WireGuard's)
 * or -EPROTONOSUPPORT (the reverse); its timestamp is then recorded (so a
 * replay of it is -EEXIST, like any replay) and *out names the peer's
 * handshake, whose state is otherwise unchanged, so the caller can say whose.
 */
int noise_consume_initiation(const uint8_t msg[static INITIATION_LEN],
			     const struct noise_static_identity *id,
			     struct noise_handshake *(*lookup)(void *ctx, const uint8_t pub[NOISE_PUBLIC_KEY_LEN]),
			     void *ctx, uint64_t now, struct noise_handshake **out) __must_check;

int noise_create_response(struct noise_handshake *hs, const struct noise_static_identity *id,
			  struct index_table *idx, uint8_t msg[static RESPONSE_LEN],
			  const struct wg_rng *rng) __must_check;

/* hs is the handshake found under the message's receiver index. */
int noise_consume_response(const uint8_t msg[static RESPONSE_LEN], struct noise_handshake *hs,
			   const struct noise_static_identity *id) __must_check;

/*
 * Derive the transport keypair from a completed handshake (the WireGuard
 * paper, 5.4.5) and place it in the slots (the kernel's add_new_keypair); the handshake is wiped. Returns the new keypair or NULL
 * if the handshake is in no state to derive one.
 */
struct noise_keypair *noise_keypairs_derive(struct noise_keypairs *kps, struct noise_handshake *hs,
					    struct index_table *idx, uint64_t now);
/* If kp is the responder's unconfirmed next keypair, promote it. True if so. */
bool noise_keypairs_confirm(struct noise_keypairs *kps, const struct noise_keypair *kp,
			    struct index_table *idx);
/* Wipe all three keypairs and drop their indices. */
void noise_keypairs_clear(struct noise_keypairs *kps, struct index_table *idx);
/* Make current and next unusable for sending (private key changed). */
void noise_keypairs_expire(struct noise_keypairs *kps);

/* Zero padding of a plaintext of len bytes (the WireGuard paper, 5.4.6). */
size_t noise_padded_len(size_t len, unsigned int mtu);

/*
 * Encrypt plain (len bytes, padding already included) into msg, which has
 * room for DATA_HEADER_LEN + len + NOISE_AUTHTAG_LEN bytes. msg and plain may
 * be msg + DATA_HEADER_LEN == plain (in place). -EKEYEXPIRED if kp must not
 * send any more.
 */
int noise_keypair_encrypt(struct noise_keypair *kp, uint8_t *msg, const uint8_t *plain,
			  size_t len, uint64_t now) __must_check;
/*
 * Authenticate and decrypt a data message into plain (room for len - 32
 * bytes; may be msg + DATA_HEADER_LEN), then check the replay window.
 * Returns the plaintext length or -EKEYEXPIRED, -EBADMSG, -EEXIST (replay).
 */
int noise_keypair_decrypt(struct noise_keypair *kp, uint8_t *plain, const uint8_t *msg,
			  size_t len, uint64_t now) __must_check;

/*
 * The same two operations in halves, for a caller that runs the AEAD
 * elsewhere (veild's workers, several threads): the halves that touch the
 * keypair's state (counter, replay window) on the caller's thread, the AEAD
 * in between under ctx, which is the keypair's own context or a copy of it.
 *
 * noise_keypair_seal_begin: -EKEYEXPIRED if kp must not send any more;
 * otherwise takes the next counter into *counter and writes the header.
 * noise_seal: encrypt len bytes of in to out (out may be in; the message's
 * payload is at msg + DATA_HEADER_LEN) under counter: 0 or -EIO.
 * noise_keypair_open_begin: the counter of a data message of len bytes, or
 * -EBADMSG (too short), -EKEYEXPIRED. noise_open: authenticate and decrypt
 * the payload in place: 0 or -EBADMSG. noise_keypair_open_done: the replay
 * window, for an authenticated counter only: false for a replay.
 */
int noise_keypair_seal_begin(struct noise_keypair *kp, uint8_t *msg, uint64_t now,
			     uint64_t *counter) __must_check;
int noise_seal(struct aead_ctx *ctx, uint8_t *out, const uint8_t *in, size_t len,
	       uint64_t counter) __must_check;
int noise_keypair_open_begin(const struct noise_keypair *kp, const uint8_t *msg, size_t len,
			     uint64_t now, uint64_t *counter) __must_check;
int noise_open(struct aead_ctx *ctx, uint8_t *msg, size_t len, uint64_t counter) __must_check;
bool noise_keypair_open_done(struct noise_keypair *kp, uint64_t counter) __must_check;

/* TAI64N of a Unix time in nanoseconds (the WireGuard paper, 5.4.2; the kernel's tai64n_now). */
void noise_tai64n(uint8_t out[static NOISE_TIMESTAMP_LEN], uint64_t unix_ns);

#endif
