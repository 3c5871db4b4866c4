// SPDX-License-Identifier: MIT
/*
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, as WireGuard specifies it:
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss, {t}
 *   <- e, ee, se, psk, {}
 *
 * followed by the transport keypairs and their rotation. Step comments carry
 * the Noise tokens. Every function works on temporaries and commits to the
 * handshake state only on success, so a bad or replayed message never
 * disturbs a handshake in progress. Every temporary that held key material is
 * wiped at the single exit label.
 */
#include "noise.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "blake2s.h"
#include "curve25519.h"
#include "slab.h"
#include "timers.h"

const uint8_t noise_initial_chaining_key[NOISE_HASH_LEN] = {
	0x60, 0xe2, 0x6d, 0xae, 0xf3, 0x27, 0xef, 0xc0, 0x2e, 0xc3, 0x35, 0xe2, 0xa0, 0x25, 0xd2, 0xd0,
	0x16, 0xeb, 0x42, 0x06, 0xf8, 0x72, 0x77, 0xf5, 0x2d, 0x38, 0xd1, 0x98, 0x8b, 0x78, 0xcd, 0x36,
};

const uint8_t noise_initial_hash[NOISE_HASH_LEN] = {
	0x22, 0x11, 0xb3, 0x61, 0x08, 0x1a, 0xc5, 0x66, 0x69, 0x12, 0x43, 0xdb, 0x45, 0x8a, 0xd5, 0x32,
	0x2d, 0x9c, 0x6c, 0x66, 0x22, 0x93, 0xe8, 0xb7, 0x0e, 0xe1, 0x9c, 0x65, 0xba, 0x07, 0x9e, 0xf3,
};

static void mix_hash(uint8_t h[static NOISE_HASH_LEN], const uint8_t *in, size_t len)
{
	struct blake2s_state s;

	blake2s_init(&s, NOISE_HASH_LEN, NULL, 0);
	blake2s_update(&s, h, NOISE_HASH_LEN);
	blake2s_update(&s, in, len);
	blake2s_final(&s, h);
}

/* ck = KDF1(ck, in) */
static void mix_key1(uint8_t ck[static NOISE_HASH_LEN], const uint8_t *in, size_t len)
{
	blake2s_kdf(ck, NULL, NULL, ck, in, len);
}

/* (ck, k) = KDF2(ck, in) */
static void mix_key2(uint8_t ck[static NOISE_HASH_LEN], uint8_t k[static NOISE_SYMMETRIC_KEY_LEN], const uint8_t *in, size_t len)
{
	blake2s_kdf(ck, k, NULL, ck, in, len);
}

/* ck = KDF1(ck, DH(priv, pub)); false if the DH result is all zero. */
static bool mix_dh(uint8_t ck[static NOISE_HASH_LEN], const uint8_t priv[static NOISE_PRIVATE_KEY_LEN],
		   const uint8_t pub[static NOISE_PUBLIC_KEY_LEN])
{
	uint8_t shared[NOISE_PUBLIC_KEY_LEN];
	bool ok;

	ok = crypto_scalarmult(shared, priv, pub) == 0;
	if (ok)
		mix_key1(ck, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return ok;
}

static void aead_nonce(uint8_t nonce[static 12], uint64_t counter)
{
	memset(nonce, 0, 4);
	le64_write(nonce + 4, counter);
}

/* Handshake AEADs use a fresh key each time, so their counter is always zero. */
static void seal(uint8_t *out, const uint8_t *plain, size_t len, const uint8_t key[static NOISE_SYMMETRIC_KEY_LEN],
		 const uint8_t h[static NOISE_HASH_LEN])
{
	uint8_t nonce[12];

	aead_nonce(nonce, 0);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain, len, h, NOISE_HASH_LEN, NULL,
						  nonce, key);
}

static bool open_sealed(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[static NOISE_SYMMETRIC_KEY_LEN],
			const uint8_t h[static NOISE_HASH_LEN])
{
	uint8_t nonce[12], none[1];

	aead_nonce(nonce, 0);
	return crypto_aead_chacha20poly1305_ietf_decrypt(out ? out : none, NULL, NULL, in, len, h, NOISE_HASH_LEN,
							 nonce, key) == 0;
}

/* h = HASH(HASH(CONSTRUCTION) || IDENTIFIER), the identifier the suite's (see noise.h). */
static void initial_hash(enum noise_suite suite, uint8_t h[static NOISE_HASH_LEN])
{
	static const char aes_id[] = NOISE_AES256GCM_IDENTIFIER;

	if (suite == NOISE_SUITE_WIREGUARD) {
		memcpy(h, noise_initial_hash, NOISE_HASH_LEN);
		return;
	}
	memcpy(h, noise_initial_chaining_key, NOISE_HASH_LEN);
	mix_hash(h, (const uint8_t *)aes_id, sizeof(aes_id) - 1);
}

static void new_ephemeral(uint8_t priv[static NOISE_PRIVATE_KEY_LEN], uint8_t pub[static NOISE_PUBLIC_KEY_LEN],
			  const struct wg_rng *rng)
{
	wg_rng_fill(rng, priv, NOISE_PRIVATE_KEY_LEN);
	curve25519_clamp_secret(priv);
	crypto_scalarmult_base(pub, priv);
}

void noise_tai64n(uint8_t out[static NOISE_TIMESTAMP_LEN], uint64_t unix_ns)
{
	uint64_t sec = 0x400000000000000aULL + unix_ns / NSEC_PER_SEC;
	/* Round down to 2^24 ns so the timestamp does not reveal a precise clock. */
	uint32_t nsec = (uint32_t)(unix_ns % NSEC_PER_SEC) & ~0xffffffu;
	int i;

	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(sec >> (56 - 8 * i));
	for (i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(nsec >> (24 - 8 * i));
}

void noise_identity_set(struct noise_static_identity *id,
		       const uint8_t private_key[static NOISE_PRIVATE_KEY_LEN])
{
	memcpy(id->private_key, private_key, NOISE_PRIVATE_KEY_LEN);
	id->has_identity = !sodium_is_zero(private_key, NOISE_PRIVATE_KEY_LEN);
	if (!id->has_identity) {
		sodium_memzero(id->public_key, sizeof(id->public_key));
		return;
	}
	/* Store the clamped scalar, as the kernel and wireguard-go report it. */
	curve25519_clamp_secret(id->private_key);
	crypto_scalarmult_base(id->public_key, id->private_key);
}

void noise_handshake_precompute(struct noise_handshake *hs, const struct noise_static_identity *id)
{
	if (!id->has_identity ||
	    crypto_scalarmult(hs->precomputed_static_static, id->private_key, hs->remote_static))
		sodium_memzero(hs->precomputed_static_static, sizeof(hs->precomputed_static_static));
}

void noise_handshake_init(struct noise_handshake *hs, const struct noise_static_identity *id,
			  const uint8_t remote_static[static NOISE_PUBLIC_KEY_LEN], const uint8_t *psk, void *peer)
{
	memset(hs, 0, sizeof(*hs));
	hs->entry.kind = INDEX_HANDSHAKE;
	hs->entry.peer = peer;
	memcpy(hs->remote_static, remote_static, NOISE_PUBLIC_KEY_LEN);
	noise_handshake_set_psk(hs, psk);
	noise_handshake_precompute(hs, id);
}

void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t *psk)
{
	if (psk)
		memcpy(hs->preshared_key, psk, NOISE_SYMMETRIC_KEY_LEN);
	else
		sodium_memzero(hs->preshared_key, sizeof(hs->preshared_key));
}

/*
 * Back to HANDSHAKE_ZEROED: the ephemeral keys, chaining key and hash of
 * the exchange are wiped. The peer's static key, PSK, precomputed DH, suite
 * and latest timestamp stay: they outlive every handshake.
 */
static void handshake_zero(struct noise_handshake *hs)
{
	sodium_memzero(hs->ephemeral_private, sizeof(hs->ephemeral_private));
	sodium_memzero(hs->remote_ephemeral, sizeof(hs->remote_ephemeral));
	sodium_memzero(hs->chaining_key, sizeof(hs->chaining_key));
	sodium_memzero(hs->hash, sizeof(hs->hash));
	hs->remote_index = 0;
	hs->state = HANDSHAKE_ZEROED;
}

void noise_handshake_clear(struct noise_handshake *hs, struct index_table *idx)
{
	index_table_remove(idx, &hs->entry);
	handshake_zero(hs);
}

int noise_create_initiation(struct noise_handshake *hs, const struct noise_static_identity *id,
			    struct index_table *idx, uint8_t msg[static INITIATION_LEN],
			    uint64_t wall_ns, const struct wg_rng *rng)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], k[NOISE_SYMMETRIC_KEY_LEN], e_priv[NOISE_PRIVATE_KEY_LEN], ts[NOISE_TIMESTAMP_LEN];
	int ret = -ENOKEY;

	if (!id->has_identity || sodium_is_zero(hs->precomputed_static_static, NOISE_PUBLIC_KEY_LEN))
		goto out;

	memset(msg, 0, INITIATION_LEN);
	le32_write(msg, MESSAGE_HANDSHAKE_INITIATION);
	memcpy(ck, noise_initial_chaining_key, NOISE_HASH_LEN);
	initial_hash(hs->suite, h);
	mix_hash(h, hs->remote_static, NOISE_PUBLIC_KEY_LEN);

	/* e */
	new_ephemeral(e_priv, msg + INITIATION_EPHEMERAL, rng);
	mix_key1(ck, msg + INITIATION_EPHEMERAL, NOISE_PUBLIC_KEY_LEN);
	mix_hash(h, msg + INITIATION_EPHEMERAL, NOISE_PUBLIC_KEY_LEN);

	/* es */
	ret = -EINVAL;
	if (crypto_scalarmult(k, e_priv, hs->remote_static))
		goto out;
	mix_key2(ck, k, k, NOISE_PUBLIC_KEY_LEN);

	/* s */
	seal(msg + INITIATION_STATIC, id->public_key, NOISE_PUBLIC_KEY_LEN, k, h);
	mix_hash(h, msg + INITIATION_STATIC, NOISE_ENCRYPTED_LEN(NOISE_PUBLIC_KEY_LEN));

	/* ss */
	mix_key2(ck, k, hs->precomputed_static_static, NOISE_PUBLIC_KEY_LEN);

	/* {t} */
	noise_tai64n(ts, wall_ns);
	seal(msg + INITIATION_TIMESTAMP, ts, sizeof(ts), k, h);
	mix_hash(h, msg + INITIATION_TIMESTAMP, NOISE_ENCRYPTED_LEN(NOISE_TIMESTAMP_LEN));

	/* Every initiation gets a new sender index; the old one is dropped. */
	index_table_remove(idx, &hs->entry);
	ret = index_table_insert(idx, &hs->entry, rng);
	if (ret)
		goto out;
	le32_write(msg + INITIATION_SENDER, hs->entry.index);

	memcpy(hs->ephemeral_private, e_priv, NOISE_PRIVATE_KEY_LEN);
	memcpy(hs->chaining_key, ck, NOISE_HASH_LEN);
	memcpy(hs->hash, h, NOISE_HASH_LEN);
	hs->state = HANDSHAKE_CREATED_INITIATION;
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(e_priv, sizeof(e_priv));
	sodium_memzero(ts, sizeof(ts));
	return ret;
}

int noise_consume_initiation(const uint8_t msg[static INITIATION_LEN],
			     const struct noise_static_identity *id,
			     struct noise_handshake *(*lookup)(void *ctx, const uint8_t pub[NOISE_PUBLIC_KEY_LEN]),
			     void *ctx, uint64_t now, struct noise_handshake **out)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], k[NOISE_SYMMETRIC_KEY_LEN], s[NOISE_PUBLIC_KEY_LEN], ts[NOISE_TIMESTAMP_LEN];
	const uint8_t *e = msg + INITIATION_EPHEMERAL;
	struct noise_handshake *hs;
	enum noise_suite suite;
	bool replay, flood;
	int ret = -ENOKEY;

	if (!id->has_identity)
		goto out;
	memcpy(ck, noise_initial_chaining_key, NOISE_HASH_LEN);

	/* e (the chaining key does not depend on the suite; the hash does) */
	mix_key1(ck, e, NOISE_PUBLIC_KEY_LEN);

	/* es */
	ret = -EBADMSG;
	if (crypto_scalarmult(k, id->private_key, e))
		goto out;
	mix_key2(ck, k, k, NOISE_PUBLIC_KEY_LEN);

	/*
	 * s, under each suite's hash in turn: the one that opens is the suite
	 * the initiator offers. WireGuard's comes first, so its path costs
	 * nothing more.
	 */
	for (suite = NOISE_SUITE_WIREGUARD; suite < NOISE_SUITES; suite++) {
		initial_hash(suite, h);
		mix_hash(h, id->public_key, NOISE_PUBLIC_KEY_LEN);
		mix_hash(h, e, NOISE_PUBLIC_KEY_LEN);
		if (open_sealed(s, msg + INITIATION_STATIC, NOISE_ENCRYPTED_LEN(NOISE_PUBLIC_KEY_LEN), k, h))
			break;
	}
	if (suite == NOISE_SUITES)
		goto out;
	mix_hash(h, msg + INITIATION_STATIC, NOISE_ENCRYPTED_LEN(NOISE_PUBLIC_KEY_LEN));

	/* The decrypted static key is how the responder learns who calls. */
	ret = -ENOENT;
	hs = lookup(ctx, s);
	if (!hs)
		goto out;

	/* ss */
	ret = -EBADMSG;
	if (sodium_is_zero(hs->precomputed_static_static, NOISE_PUBLIC_KEY_LEN))
		goto out;
	mix_key2(ck, k, hs->precomputed_static_static, NOISE_PUBLIC_KEY_LEN);

	/* {t} */
	if (!open_sealed(ts, msg + INITIATION_TIMESTAMP, NOISE_ENCRYPTED_LEN(NOISE_TIMESTAMP_LEN), k, h))
		goto out;
	mix_hash(h, msg + INITIATION_TIMESTAMP, NOISE_ENCRYPTED_LEN(NOISE_TIMESTAMP_LEN));

	/* The timestamp must be strictly newer: a replayed initiation fails here. */
	replay = memcmp(ts, hs->latest_timestamp, NOISE_TIMESTAMP_LEN) <= 0;
	flood = hs->have_consumed_initiation &&
		now - hs->last_initiation_consumed < INITIATION_MIN_INTERVAL;
	ret = replay ? -EEXIST : -EBUSY;
	if (replay || flood)
		goto out;
	memcpy(hs->latest_timestamp, ts, NOISE_TIMESTAMP_LEN);
	hs->last_initiation_consumed = now;
	hs->have_consumed_initiation = true;

	/*
	 * Authentic and fresh (the timestamp opened under the static-static
	 * key, and is newer than any before), so the peer may be named, and a
	 * replay of this very message is refused above as any replay is. But
	 * its suite is not ours for the peer: refused, never downgraded.
	 */
	if (suite != hs->suite) {
		ret = suite == NOISE_SUITE_AES256GCM ? -ENOPROTOOPT : -EPROTONOSUPPORT;
		*out = hs;
		goto out;
	}

	memcpy(hs->remote_ephemeral, e, NOISE_PUBLIC_KEY_LEN);
	memcpy(hs->chaining_key, ck, NOISE_HASH_LEN);
	memcpy(hs->hash, h, NOISE_HASH_LEN);
	hs->remote_index = le32_read(msg + INITIATION_SENDER);
	hs->state = HANDSHAKE_CONSUMED_INITIATION;
	*out = hs;
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(s, sizeof(s));
	sodium_memzero(ts, sizeof(ts));
	return ret;
}

/* The responder's and initiator's shared tail: psk, then {} over the empty string. */
static void mix_psk(uint8_t ck[static NOISE_HASH_LEN], uint8_t h[static NOISE_HASH_LEN], uint8_t k[static NOISE_SYMMETRIC_KEY_LEN],
		    const uint8_t psk[static NOISE_SYMMETRIC_KEY_LEN])
{
	uint8_t tau[NOISE_HASH_LEN];

	blake2s_kdf(ck, tau, k, ck, psk, NOISE_SYMMETRIC_KEY_LEN);
	mix_hash(h, tau, sizeof(tau));
	sodium_memzero(tau, sizeof(tau));
}

int noise_create_response(struct noise_handshake *hs, const struct noise_static_identity *id,
			  struct index_table *idx, uint8_t msg[static RESPONSE_LEN],
			  const struct wg_rng *rng)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], k[NOISE_SYMMETRIC_KEY_LEN], e_priv[NOISE_PRIVATE_KEY_LEN];
	uint8_t *e = msg + RESPONSE_EPHEMERAL;
	int ret = -EINVAL;

	if (hs->state != HANDSHAKE_CONSUMED_INITIATION || !id->has_identity)
		goto out;
	memset(msg, 0, RESPONSE_LEN);
	le32_write(msg, MESSAGE_HANDSHAKE_RESPONSE);
	le32_write(msg + RESPONSE_RECEIVER, hs->remote_index);
	memcpy(ck, hs->chaining_key, NOISE_HASH_LEN);
	memcpy(h, hs->hash, NOISE_HASH_LEN);

	/* e */
	new_ephemeral(e_priv, e, rng);
	mix_key1(ck, e, NOISE_PUBLIC_KEY_LEN);
	mix_hash(h, e, NOISE_PUBLIC_KEY_LEN);

	/* ee, se */
	if (!mix_dh(ck, e_priv, hs->remote_ephemeral) || !mix_dh(ck, e_priv, hs->remote_static))
		goto out;

	/* psk, {} */
	mix_psk(ck, h, k, hs->preshared_key);
	seal(msg + RESPONSE_EMPTY, NULL, 0, k, h);
	mix_hash(h, msg + RESPONSE_EMPTY, NOISE_AUTHTAG_LEN);

	index_table_remove(idx, &hs->entry);
	ret = index_table_insert(idx, &hs->entry, rng);
	if (ret)
		goto out;
	le32_write(msg + RESPONSE_SENDER, hs->entry.index);

	memcpy(hs->ephemeral_private, e_priv, NOISE_PRIVATE_KEY_LEN);
	memcpy(hs->chaining_key, ck, NOISE_HASH_LEN);
	memcpy(hs->hash, h, NOISE_HASH_LEN);
	hs->state = HANDSHAKE_CREATED_RESPONSE;
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(e_priv, sizeof(e_priv));
	return ret;
}

int noise_consume_response(const uint8_t msg[static RESPONSE_LEN], struct noise_handshake *hs,
			   const struct noise_static_identity *id)
{
	uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN], k[NOISE_SYMMETRIC_KEY_LEN];
	const uint8_t *e = msg + RESPONSE_EPHEMERAL;
	int ret = -EINVAL;

	if (hs->state != HANDSHAKE_CREATED_INITIATION || !id->has_identity)
		goto out;
	memcpy(ck, hs->chaining_key, NOISE_HASH_LEN);
	memcpy(h, hs->hash, NOISE_HASH_LEN);

	/* e */
	mix_key1(ck, e, NOISE_PUBLIC_KEY_LEN);
	mix_hash(h, e, NOISE_PUBLIC_KEY_LEN);

	/* ee, se */
	ret = -EBADMSG;
	if (!mix_dh(ck, hs->ephemeral_private, e) || !mix_dh(ck, id->private_key, e))
		goto out;

	/* psk, {} */
	mix_psk(ck, h, k, hs->preshared_key);
	if (!open_sealed(NULL, msg + RESPONSE_EMPTY, NOISE_AUTHTAG_LEN, k, h))
		goto out;
	mix_hash(h, msg + RESPONSE_EMPTY, NOISE_AUTHTAG_LEN);

	memcpy(hs->remote_ephemeral, e, NOISE_PUBLIC_KEY_LEN);
	memcpy(hs->chaining_key, ck, NOISE_HASH_LEN);
	memcpy(hs->hash, h, NOISE_HASH_LEN);
	hs->remote_index = le32_read(msg + RESPONSE_SENDER);
	hs->state = HANDSHAKE_CONSUMED_RESPONSE;
	ret = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(k, sizeof(k));
	return ret;
}

void noise_keypairs_init(struct noise_keypairs *kps, struct slab_cache *cache)
{
	memset(kps, 0, sizeof(*kps));
	kps->cache = cache;
}

/* Drop a keypair's index and give its memory back; slab_free wipes it. */
static void keypair_wipe(struct noise_keypairs *kps, struct noise_keypair *kp,
			 struct index_table *idx)
{
	if (!kp)
		return;
	index_table_remove(idx, &kp->entry);
	aead_free(&kp->send_ctx);
	aead_free(&kp->recv_ctx);
	slab_free(kps->cache, kp);
}

/* Keypairs made so far, by every device of the process: their serial numbers. */
static uint64_t keypair_serial;

struct noise_keypair *noise_keypairs_derive(struct noise_keypairs *kps, struct noise_handshake *hs,
					    struct index_table *idx, uint64_t now)
{
	struct noise_keypair *kp;
	bool initiator;

	if (hs->state == HANDSHAKE_CONSUMED_RESPONSE)
		initiator = true;
	else if (hs->state == HANDSHAKE_CREATED_RESPONSE)
		initiator = false;
	else
		return NULL;
	kp = slab_alloc(kps->cache);
	if (!kp)
		return NULL; /* no memory: as if the handshake had failed, nothing rotated */
	if (initiator)
		blake2s_kdf(kp->send_key, kp->recv_key, NULL, hs->chaining_key, NULL, 0);
	else
		blake2s_kdf(kp->recv_key, kp->send_key, NULL, hs->chaining_key, NULL, 0);
	if (aead_init(&kp->send_ctx, hs->suite == NOISE_SUITE_AES256GCM, kp->send_key, true) ||
	    aead_init(&kp->recv_ctx, hs->suite == NOISE_SUITE_AES256GCM, kp->recv_key, false)) {
		aead_free(&kp->send_ctx);
		slab_free(kps->cache, kp); /* wipes the keys */
		return NULL;
	}

	/*
	 * Slot rotation (the kernel's noise.c add_new_keypair). The initiator may use its new keypair
	 * at once; the responder parks it in next until the initiator's first
	 * transport message confirms it.
	 */
	if (initiator) {
		if (kps->next) {
			keypair_wipe(kps, kps->previous, idx);
			keypair_wipe(kps, kps->current, idx);
			kps->previous = kps->next;
			kps->current = NULL;
			kps->next = NULL;
		} else {
			keypair_wipe(kps, kps->previous, idx);
			kps->previous = kps->current;
			kps->current = NULL;
		}
	} else {
		keypair_wipe(kps, kps->next, idx);
		keypair_wipe(kps, kps->previous, idx);
		kps->next = NULL;
		kps->previous = NULL;
	}
	kp->entry.kind = INDEX_KEYPAIR;
	kp->entry.peer = hs->entry.peer;
	kp->suite = hs->suite;
	replay_init(&kp->replay);
	kp->created = now;
	kp->serial = ++keypair_serial;
	kp->is_initiator = initiator;
	kp->remote_index = hs->remote_index;
	kp->sending_valid = true;
	/* The keypair takes over the handshake's index number (the kernel's wg_index_hashtable_replace). */
	index_table_replace(idx, &hs->entry, &kp->entry);

	if (initiator)
		kps->current = kp;
	else
		kps->next = kp;

	handshake_zero(hs);
	return kp;
}

bool noise_keypairs_confirm(struct noise_keypairs *kps, const struct noise_keypair *kp,
			    struct index_table *idx)
{
	if (!kp || kp != kps->next)
		return false;
	keypair_wipe(kps, kps->previous, idx);
	kps->previous = kps->current;
	kps->current = kps->next;
	kps->next = NULL;
	return true;
}

void noise_keypairs_clear(struct noise_keypairs *kps, struct index_table *idx)
{
	keypair_wipe(kps, kps->previous, idx);
	keypair_wipe(kps, kps->current, idx);
	keypair_wipe(kps, kps->next, idx);
	kps->previous = kps->current = kps->next = NULL;
}

void noise_keypairs_expire(struct noise_keypairs *kps)
{
	if (kps->current)
		kps->current->sending_valid = false;
	if (kps->next)
		kps->next->sending_valid = false;
}

size_t noise_padded_len(size_t len, unsigned int mtu)
{
	size_t x, padded;

	if (!mtu)
		return (len + MESSAGE_PADDING_MULTIPLE - 1) & ~(size_t)(MESSAGE_PADDING_MULTIPLE - 1);
	x = len > mtu ? len % mtu : len;
	padded = (x + MESSAGE_PADDING_MULTIPLE - 1) & ~(size_t)(MESSAGE_PADDING_MULTIPLE - 1);
	if (padded > mtu)
		padded = mtu;
	return len + (padded - x);
}

int noise_keypair_seal_begin(struct noise_keypair *kp, uint8_t *msg, uint64_t now,
			     uint64_t *counter)
{
	if (!kp->sending_valid || timers_keypair_expired(kp->created, kp->send_counter, now))
		return -EKEYEXPIRED;
	*counter = kp->send_counter++;
	le32_write(msg, MESSAGE_DATA);
	le32_write(msg + DATA_RECEIVER, kp->remote_index);
	le64_write(msg + DATA_COUNTER, *counter);
	return 0;
}

int noise_seal(struct aead_ctx *ctx, uint8_t *out, const uint8_t *in, size_t len,
	       uint64_t counter)
{
	uint8_t nonce[12];

	aead_nonce(nonce, counter);
	/*
	 * Both AEADs take a 96-bit nonce and append a 16-byte tag: the message is
	 * the same shape. Encryption is in place, so a failure must not let the
	 * buffer go out.
	 */
	if (aead_seal(ctx, out, in, len, nonce)) {
		sodium_memzero(out, len + NOISE_AUTHTAG_LEN);
		return -EIO;
	}
	return 0;
}

int noise_keypair_encrypt(struct noise_keypair *kp, uint8_t *msg, const uint8_t *plain,
			  size_t len, uint64_t now)
{
	uint64_t n;
	int ret = noise_keypair_seal_begin(kp, msg, now, &n);

	return ret ? ret : noise_seal(&kp->send_ctx, msg + DATA_HEADER_LEN, plain, len, n);
}

int noise_keypair_open_begin(const struct noise_keypair *kp, const uint8_t *msg, size_t len,
			     uint64_t now, uint64_t *counter)
{
	if (len < DATA_MIN_LEN)
		return -EBADMSG;
	*counter = le64_read(msg + DATA_COUNTER);
	if (!kp->entry.hashed || timers_keypair_expired(kp->created, *counter, now))
		return -EKEYEXPIRED;
	return 0;
}

int noise_open(struct aead_ctx *ctx, uint8_t *msg, size_t len, uint64_t counter)
{
	uint8_t nonce[12];

	aead_nonce(nonce, counter);
	/* A keypair opens only under its own suite: a message under the other one fails here. */
	if (aead_open(ctx, msg + DATA_HEADER_LEN, msg + DATA_HEADER_LEN, len - DATA_HEADER_LEN, nonce))
		return -EBADMSG;
	return 0;
}

bool noise_keypair_open_done(struct noise_keypair *kp, uint64_t counter)
{
	/* The replay window moves only for authenticated counters. */
	return replay_check_and_set(&kp->replay, counter);
}

int noise_keypair_decrypt(struct noise_keypair *kp, uint8_t *plain, const uint8_t *msg,
			  size_t len, uint64_t now)
{
	uint8_t nonce[12];
	uint64_t n;
	int ret = noise_keypair_open_begin(kp, msg, len, now, &n);

	if (ret)
		return ret;
	aead_nonce(nonce, n);
	if (aead_open(&kp->recv_ctx, plain, msg + DATA_HEADER_LEN, len - DATA_HEADER_LEN, nonce))
		return -EBADMSG;
	if (!noise_keypair_open_done(kp, n))
		return -EEXIST;
	return (int)(len - DATA_MIN_LEN);
}
