// SPDX-License-Identifier: MIT
/*
 * The receive and send paths (the WireGuard paper, sections 5 and 6), in the
 * order the kernel's receive.c and send.c take them, with the timer hooks
 * of its timers.c at the same points. The caller owns buffers and sockets; this file owns the
 * protocol decisions.
 *
 * Teardown order of a peer: stop its timers, purge its staged packets
 * (caller), drop its allowed IPs, wipe its keypairs and handshake (which
 * unhashes their indices), unlink it from the hash and list, wipe, free.
 */
#include "device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "curve25519.h"
#include "ratelimiter.h"
#include "slab.h"

/*
 * "Under load" (our own measure; the kernel's wg_receive_handshake_packet
 * counts its queue instead): more than UNDER_LOAD_THRESHOLD handshake
 * messages in one window of UNDER_LOAD_WINDOW; it then lasts
 * UNDER_LOAD_AFTER past the last window that crossed it. 128 per 1/8 s is
 * 1024 handshakes a second, about a fifth of what one core completes.
 */
#define UNDER_LOAD_WINDOW (NSEC_PER_SEC / 8)
#define UNDER_LOAD_THRESHOLD 128
#define UNDER_LOAD_AFTER NSEC_PER_SEC

struct wg_device {
	const struct wg_device_ops *ops;
	void *ctx;
	const struct wg_rng *rng;
	struct noise_static_identity *identity; /* sodium_malloc: guarded, locked */
	struct cookie_checker cookie;
	struct index_table *index;
	struct allowedips *allowedips;
	struct wg_peer **buckets;
	size_t nbuckets, npeers;
	size_t max_peers; /* WG_PEERS_MAX; tests lower it */
	struct wg_peer *list_head;
	uint8_t hash_key[16];
	unsigned int mtu;
	bool forced_load, was_under_load;
	uint64_t load_window_start, load_until;
	unsigned int load_count;
	struct ratelimiter *ratelimiter;
	struct slab_cache peer_cache; /* peers' memory goes back to the kernel when they go */
	struct slab_cache keypair_cache; /* sessions' keys, only while they live */
	struct wg_device_stats stats;
};

static void emit(struct wg_device *dev, struct wg_peer *peer, const struct wg_event_info *e)
{
	if (dev->ops->event)
		dev->ops->event(dev->ctx, peer, e);
}

/* An event that says nothing but its kind. */
static void emit_plain(struct wg_device *dev, struct wg_peer *peer, enum wg_event ev)
{
	struct wg_event_info e = { .ev = ev };

	emit(dev, peer, &e);
}

static const char *const refusal_names[WG_REFUSAL_COUNT] = {
	[WG_REFUSAL_NONE] = "none",
	[WG_REFUSAL_UNKNOWN_PEER] = "unknown peer",
	[WG_REFUSAL_BAD_AUTH] = "does not authenticate",
	[WG_REFUSAL_REPLAY] = "replayed timestamp",
	[WG_REFUSAL_FLOOD] = "initiation flood",
	[WG_REFUSAL_NO_IDENTITY] = "no private key",
	[WG_REFUSAL_AES_OFFERED] = "cipher mismatch",
	[WG_REFUSAL_CHACHA_OFFERED] = "cipher mismatch",
	[WG_REFUSAL_UNEXPECTED] = "no initiation in progress",
	[WG_REFUSAL_UNANSWERED] = "no answer",
	[WG_REFUSAL_OTHER] = "other",
};

const char *wg_refusal_name(enum wg_refusal r)
{
	return (unsigned int)r < WG_REFUSAL_COUNT ? refusal_names[r] : "other";
}

bool wg_refusal_is_suite_mismatch(enum wg_refusal r)
{
	return r == WG_REFUSAL_AES_OFFERED || r == WG_REFUSAL_CHACHA_OFFERED;
}

/* The reason behind a handshake step's -errno (noise.h lists them). */
static enum wg_refusal refusal_of(int err)
{
	switch (err) {
	case -ENOENT: return WG_REFUSAL_UNKNOWN_PEER;
	case -EBADMSG: return WG_REFUSAL_BAD_AUTH;
	case -EEXIST: return WG_REFUSAL_REPLAY;
	case -EBUSY: return WG_REFUSAL_FLOOD;
	case -ENOKEY: return WG_REFUSAL_NO_IDENTITY;
	case -ENOPROTOOPT: return WG_REFUSAL_AES_OFFERED;
	case -EPROTONOSUPPORT: return WG_REFUSAL_CHACHA_OFFERED;
	case -EINVAL: return WG_REFUSAL_UNEXPECTED;
	default: return WG_REFUSAL_OTHER;
	}
}

/* A handshake of peer failed (refused, or given up): counted, kept, told. */
static void peer_failed(struct wg_peer *peer, struct wg_now now, struct wg_event_info *e)
{
	peer->handshake_failures++;
	peer->last_failure = e->reason;
	peer->last_failure_wall = now.wall;
	emit(peer->dev, peer, e);
}

struct wg_device *wg_device_new(const struct wg_device_ops *ops, void *ctx,
				const struct wg_rng *rng)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->ops = ops;
	dev->ctx = ctx;
	dev->rng = rng;
	dev->mtu = DEFAULT_MTU;
	dev->max_peers = WG_PEERS_MAX;
	dev->nbuckets = 64;
	dev->identity = sodium_malloc(sizeof(*dev->identity));
	dev->index = index_table_new();
	dev->allowedips = allowedips_new();
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant. */
	dev->buckets = calloc(dev->nbuckets, sizeof(*dev->buckets));
	if (!dev->identity || !dev->index || !dev->allowedips || !dev->buckets) {
		wg_device_free(dev);
		return NULL;
	}
	memset(dev->identity, 0, sizeof(*dev->identity));
	cookie_checker_init(&dev->cookie, NULL);
	wg_rng_fill(rng, dev->hash_key, sizeof(dev->hash_key));
	slab_cache_init(&dev->peer_cache, sizeof(struct wg_peer));
	slab_cache_init(&dev->keypair_cache, sizeof(struct noise_keypair));
	dev->ratelimiter = ratelimiter_new(dev->hash_key);
	if (!dev->ratelimiter) {
		wg_device_free(dev);
		return NULL;
	}
	return dev;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	if (dev->buckets)
		wg_device_peers_clear(dev);
	free(dev->buckets);
	ratelimiter_free(dev->ratelimiter);
	allowedips_free(dev->allowedips);
	index_table_free(dev->index);
	if (dev->identity)
		sodium_free(dev->identity);
	sodium_memzero(dev, sizeof(*dev));
	free(dev);
}

const struct noise_static_identity *wg_device_identity(const struct wg_device *dev)
{
	return dev->identity;
}

unsigned int wg_device_mtu(const struct wg_device *dev)
{
	return dev->mtu;
}

void wg_device_set_mtu(struct wg_device *dev, unsigned int mtu)
{
	dev->mtu = mtu;
}

const struct wg_device_stats *wg_device_stats(const struct wg_device *dev)
{
	return &dev->stats;
}

struct allowedips *wg_device_allowedips(struct wg_device *dev)
{
	return dev->allowedips;
}

/* ---- peers ---------------------------------------------------------------- */

static size_t bucket_of(const struct wg_device *dev, const uint8_t pub[static 32])
{
	uint8_t h[8];
	uint64_t v;

	/* Keyed SipHash: a caller cannot choose keys that pile into one bucket. */
	crypto_shorthash(h, pub, 32, dev->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (dev->nbuckets - 1));
}

static void rehash(struct wg_device *dev)
{
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as meant. */
	struct wg_peer **nb = calloc(dev->nbuckets * 2, sizeof(*nb)), *p;
	size_t b;

	if (!nb)
		return; /* Keep the old table: slower, still correct. */
	dev->nbuckets *= 2;
	for (p = dev->list_head; p; p = p->list_next) {
		b = bucket_of(dev, p->public_key);
		p->hash_next = nb[b];
		nb[b] = p;
	}
	free(dev->buckets);
	dev->buckets = nb;
}

struct wg_peer *wg_device_peer_lookup(const struct wg_device *dev, const uint8_t pub[static 32])
{
	struct wg_peer *p;

	for (p = dev->buckets[bucket_of(dev, pub)]; p; p = p->hash_next)
		if (sodium_memcmp(p->public_key, pub, 32) == 0)
			return p;
	return NULL;
}

int wg_device_peer_add(struct wg_device *dev, const uint8_t pub[static 32], struct wg_peer **out)
{
	struct wg_peer *peer;
	size_t b;

	if (dev->identity->has_identity && sodium_memcmp(pub, dev->identity->public_key, 32) == 0)
		return -EEXIST;
	if (wg_device_peer_lookup(dev, pub))
		return -EEXIST;
	if (dev->npeers >= dev->max_peers)
		return -ENOSPC;
	peer = slab_alloc(&dev->peer_cache);
	if (!peer)
		return -ENOMEM;
	peer->dev = dev;
	memcpy(peer->public_key, pub, 32);
	noise_handshake_init(&peer->handshake, dev->identity, pub, NULL, peer);
	noise_keypairs_init(&peer->keypairs, &dev->keypair_cache);
	cookie_maker_init(&peer->cookie, pub);
	timers_init(&peer->timers, dev->rng);

	if (dev->npeers + 1 > dev->nbuckets)
		rehash(dev);
	b = bucket_of(dev, pub);
	peer->hash_next = dev->buckets[b];
	dev->buckets[b] = peer;
	peer->list_next = dev->list_head;
	if (dev->list_head)
		dev->list_head->list_prev = peer;
	dev->list_head = peer;
	dev->npeers++;
	*out = peer;
	return 0;
}

void wg_device_peer_remove(struct wg_device *dev, struct wg_peer *peer)
{
	struct wg_peer **pp;

	timers_stop(&peer->timers);
	dev->ops->purge_staged(dev->ctx, peer);
	if (dev->ops->peer_removed)
		dev->ops->peer_removed(dev->ctx, peer);
	allowedips_remove_owner(dev->allowedips, &peer->allowedips);
	noise_keypairs_clear(&peer->keypairs, dev->index);
	noise_handshake_clear(&peer->handshake, dev->index);

	for (pp = &dev->buckets[bucket_of(dev, peer->public_key)]; *pp; pp = &(*pp)->hash_next) {
		if (*pp == peer) {
			*pp = peer->hash_next;
			break;
		}
	}
	if (peer->list_prev)
		peer->list_prev->list_next = peer->list_next;
	else
		dev->list_head = peer->list_next;
	if (peer->list_next)
		peer->list_next->list_prev = peer->list_prev;
	dev->npeers--;
	sodium_memzero(peer, sizeof(*peer));
	slab_free(&dev->peer_cache, peer);
}

void wg_device_peers_clear(struct wg_device *dev)
{
	while (dev->list_head)
		wg_device_peer_remove(dev, dev->list_head);
}

struct wg_peer *wg_device_peer_first(const struct wg_device *dev)
{
	return dev->list_head;
}

struct wg_peer *wg_device_peer_next(const struct wg_peer *peer)
{
	return peer->list_next;
}

size_t wg_device_peer_count(const struct wg_device *dev)
{
	return dev->npeers;
}

/*
 * keep_sessions: the sessions made under the old identity go on until they
 * expire as sessions do (a rotation); otherwise they end at once.
 */
static int set_private_key(struct wg_device *dev, const uint8_t key[static 32], bool keep_sessions)
{
	struct noise_static_identity *id = dev->identity;
	struct wg_peer *peer, *next;

	uint8_t clamped[32];
	bool same;

	/* Compare clamped forms: a key differing only in clamped bits is the same identity. */
	memcpy(clamped, key, 32);
	curve25519_clamp_secret(clamped);
	same = id->has_identity ? sodium_memcmp(id->private_key, clamped, 32) == 0
				: sodium_is_zero(key, 32);
	sodium_memzero(clamped, sizeof(clamped));
	if (same)
		return 0;
	noise_identity_set(id, key);
	cookie_checker_init(&dev->cookie, id->has_identity ? id->public_key : NULL);

	for (peer = dev->list_head; peer; peer = next) {
		next = peer->list_next;
		if (id->has_identity && sodium_memcmp(peer->public_key, id->public_key, 32) == 0) {
			wg_device_peer_remove(dev, peer);
			continue;
		}
		/*
		 * New identity: handshakes restart under it. Sessions end too, but
		 * in a rotation: there the peers move to the new key by handshaking
		 * with it, and until then the session keys (which owe nothing to
		 * the static key once derived) carry the traffic.
		 */
		noise_handshake_clear(&peer->handshake, dev->index);
		noise_handshake_precompute(&peer->handshake, id);
		if (!keep_sessions)
			noise_keypairs_expire(&peer->keypairs);
		peer->timers.have_sent_handshake = false;
	}
	return 0;
}

int wg_device_set_private_key(struct wg_device *dev, const uint8_t key[static 32])
{
	return set_private_key(dev, key, false);
}

int wg_device_rotate_private_key(struct wg_device *dev, const uint8_t key[static 32])
{
	if (sodium_is_zero(key, 32))
		return -EINVAL; /* a rotation is to another key, not to none */
	return set_private_key(dev, key, true);
}

void wg_peer_set_psk(struct wg_peer *peer, const uint8_t *psk)
{
	peer->has_psk = psk && !sodium_is_zero(psk, 32);
	noise_handshake_set_psk(&peer->handshake, peer->has_psk ? psk : NULL);
}

bool wg_peer_has_session(const struct wg_peer *peer)
{
	return peer->keypairs.current != NULL;
}

void wg_peer_forget_source(struct wg_peer *peer)
{
	peer->endpoint.has_src = false;
}

void wg_peer_get_info(const struct wg_peer *peer, struct wg_peer_info *info)
{
	memset(info, 0, sizeof(*info));
	info->has_psk = peer->has_psk;
	if (peer->has_psk)
		memcpy(info->preshared_key, peer->handshake.preshared_key, NOISE_SYMMETRIC_KEY_LEN);
	info->suite = peer->handshake.suite;
}

bool wg_peer_session_age(const struct wg_peer *peer, uint64_t now, uint64_t *age)
{
	const struct noise_keypair *kp = peer->keypairs.current;

	if (!kp || now < kp->created)
		return false;
	*age = now - kp->created;
	return true;
}

bool wg_peer_set_suite(struct wg_peer *peer, enum noise_suite suite)
{
	struct wg_device *dev = peer->dev;

	if (peer->handshake.suite == suite)
		return false;
	/* Nothing of the old suite survives: sessions end, the next handshake uses the new one. */
	noise_keypairs_clear(&peer->keypairs, dev->index);
	noise_handshake_clear(&peer->handshake, dev->index);
	peer->handshake.suite = suite;
	peer->timers.have_sent_handshake = false;
	return true;
}

void wg_peer_set_endpoint(struct wg_peer *peer, const struct sockaddr *sa, socklen_t len)
{
	memset(&peer->endpoint, 0, sizeof(peer->endpoint));
	if (len > sizeof(peer->endpoint.addr))
		len = sizeof(peer->endpoint.addr);
	memcpy(&peer->endpoint.addr, sa, len);
	peer->has_endpoint = true;
}

/* ---- sending --------------------------------------------------------------- */

static void send_to_peer(struct wg_peer *peer, const uint8_t *buf, size_t len)
{
	if (!peer->has_endpoint)
		return;
	peer->tx_bytes += len;
	peer->tx_packets++;
	peer->dev->ops->send(peer->dev->ctx, peer, &peer->endpoint, buf, len);
}

void wg_peer_initiate(struct wg_peer *peer, struct wg_now now, bool is_retry)
{
	struct wg_event_info e = { .ev = WG_EVENT_HANDSHAKE_SENT, .retry = is_retry };
	struct wg_device *dev = peer->dev;
	uint8_t msg[INITIATION_LEN];

	if (!timers_may_send_initiation(&peer->timers, now.mono, is_retry))
		return;
	if (noise_create_initiation(&peer->handshake, dev->identity, dev->index, msg, now.wall,
				    dev->rng))
		return;
	cookie_add_macs(&peer->cookie, msg, sizeof(msg), now.mono);
	if (dev->ops->keylog)
		dev->ops->keylog(dev->ctx, peer, peer->handshake.ephemeral_private);
	timers_event_any_authenticated_packet_traversal(&peer->timers, now.mono);
	timers_event_any_authenticated_packet_sent(&peer->timers, now.mono);
	send_to_peer(peer, msg, sizeof(msg));
	timers_event_handshake_initiated(&peer->timers, now.mono);
	e.attempt = peer->timers.handshake_attempts + 1;
	emit(dev, peer, &e);
}

int wg_crypt_job_run(struct wg_crypt_job *job, struct aead_ctx *ctx)
{
	uint8_t *payload = job->msg + DATA_HEADER_LEN;

	if (job->open)
		job->result = noise_open(ctx, job->msg, job->len, job->counter);
	else
		job->result = noise_seal(ctx, payload, payload, job->len, job->counter);
	return job->result;
}

/* A job on kp's context for its direction (open: receiving), not run yet. */
static void job_init(struct wg_crypt_job *job, struct noise_keypair *kp, uint8_t *msg, size_t len,
		     bool open)
{
	job->key = open ? &kp->recv_ctx : &kp->send_ctx;
	job->kp = kp;
	job->serial = kp->serial;
	job->msg = msg;
	job->len = len;
	job->open = open;
	job->result = 0;
}

const uint8_t *wg_crypt_job_key(const struct wg_crypt_job *job, bool *aes256gcm)
{
	*aes256gcm = job->kp->suite == NOISE_SUITE_AES256GCM;
	return job->open ? job->kp->recv_key : job->kp->send_key;
}

int wg_peer_encrypt_begin(struct wg_peer *peer, struct wg_now now, uint8_t *buf, size_t len,
			  size_t *out_len, struct wg_crypt_job *job)
{
	struct noise_keypair *kp = peer->keypairs.current;
	size_t padded = len ? noise_padded_len(len, peer->dev->mtu) : 0;

	if (!kp || noise_keypair_seal_begin(kp, buf, now.mono, &job->counter)) {
		wg_peer_initiate(peer, now, false);
		return -ENOKEY;
	}
	memset(buf + DATA_HEADER_LEN + len, 0, padded - len);
	job_init(job, kp, buf, padded, false);
	*out_len = DATA_HEADER_LEN + padded + NOISE_AUTHTAG_LEN;
	peer->tx_packets++; /* its bytes count in wg_peer_sent, once the batch went */
	return 0;
}

void wg_peer_encrypt_failed(struct wg_peer *peer, struct wg_now now)
{
	peer->tx_packets--;
	wg_peer_initiate(peer, now, false);
}

int wg_peer_encrypt(struct wg_peer *peer, struct wg_now now, uint8_t *buf, size_t len,
		    size_t *out_len)
{
	struct wg_crypt_job job;
	int ret = wg_peer_encrypt_begin(peer, now, buf, len, out_len, &job);

	if (ret)
		return ret;
	if (wg_crypt_job_run(&job, job.key)) {
		wg_peer_encrypt_failed(peer, now);
		return -ENOKEY;
	}
	return 0;
}

void wg_peer_sent(struct wg_peer *peer, struct wg_now now, size_t bytes, bool had_data)
{
	struct noise_keypair *kp = peer->keypairs.current;

	peer->tx_bytes += bytes;
	timers_event_any_authenticated_packet_traversal(&peer->timers, now.mono);
	timers_event_any_authenticated_packet_sent(&peer->timers, now.mono);
	if (had_data)
		timers_event_data_sent(&peer->timers, now.mono);
	if (kp && timers_want_rekey_on_send(kp->is_initiator, kp->created, kp->send_counter, now.mono))
		wg_peer_initiate(peer, now, false);
}

void wg_peer_send_keepalive(struct wg_peer *peer, struct wg_now now)
{
	uint8_t buf[KEEPALIVE_LEN];
	size_t len;

	if (!peer->has_endpoint)
		return;
	if (wg_peer_encrypt(peer, now, buf, 0, &len))
		return;
	peer->dev->ops->send(peer->dev->ctx, peer, &peer->endpoint, buf, len);
	wg_peer_sent(peer, now, len, false);
}

void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t interval, struct wg_now now)
{
	peer->persistent_keepalive = interval;
	if (timers_set_persistent_keepalive(&peer->timers, interval, now.mono) && peer->dev->identity->has_identity)
		wg_peer_send_keepalive(peer, now);
}

uint64_t wg_peer_next_deadline(const struct wg_peer *peer)
{
	return timers_next_deadline(&peer->timers);
}

uint64_t wg_peer_run_timers(struct wg_peer *peer, struct wg_now now)
{
	struct wg_device *dev = peer->dev;
	unsigned int act = timers_run(&peer->timers, now.mono);

	if (act & TIMERS_CLEAR_SOURCE)
		peer->endpoint.has_src = false;
	if (act & TIMERS_GIVE_UP) {
		struct wg_event_info e = { .ev = WG_EVENT_GAVE_UP, .reason = WG_REFUSAL_UNANSWERED,
					   .attempt = peer->timers.handshake_attempts + 1 };

		dev->ops->purge_staged(dev->ctx, peer);
		peer_failed(peer, now, &e);
	}
	if (act & TIMERS_SEND_INITIATION_RETRY)
		wg_peer_initiate(peer, now, true);
	if (act & TIMERS_SEND_INITIATION)
		wg_peer_initiate(peer, now, false);
	if (act & TIMERS_SEND_KEEPALIVE)
		wg_peer_send_keepalive(peer, now);
	if (act & TIMERS_WIPE_KEYS) {
		struct wg_event_info e = {
			.ev = WG_EVENT_KEYS_WIPED,
			.after_sec = (unsigned int)(ZERO_KEY_MATERIAL_TIMEOUT / NSEC_PER_SEC),
		};

		noise_keypairs_clear(&peer->keypairs, dev->index);
		noise_handshake_clear(&peer->handshake, dev->index);
		emit(dev, peer, &e);
	}
	return timers_next_deadline(&peer->timers);
}

/* ---- receiving ------------------------------------------------------------- */

size_t wg_endpoint_cookie_bytes(const struct wg_endpoint *ep, uint8_t out[static 18])
{
	if (ep->addr.sa.sa_family == AF_INET6) {
		memcpy(out, &ep->addr.in6.sin6_addr, 16);
		memcpy(out + 16, &ep->addr.in6.sin6_port, 2);
		return 18;
	}
	memcpy(out, &ep->addr.in4.sin_addr, 4);
	memcpy(out + 4, &ep->addr.in4.sin_port, 2);
	return 6;
}

bool wg_endpoint_equal_addr(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (a->addr.sa.sa_family != b->addr.sa.sa_family)
		return false;
	if (a->addr.sa.sa_family == AF_INET6)
		return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
		       !memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, 16) &&
		       a->addr.in6.sin6_scope_id == b->addr.in6.sin6_scope_id;
	return a->addr.in4.sin_port == b->addr.in4.sin_port &&
	       a->addr.in4.sin_addr.s_addr == b->addr.in4.sin_addr.s_addr;
}

bool wg_endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
	if (a->addr.sa.sa_family != b->addr.sa.sa_family)
		return false;
	if (a->addr.sa.sa_family == AF_INET6)
		return a->addr.in6.sin6_port == b->addr.in6.sin6_port &&
		       !memcmp(&a->addr.in6.sin6_addr, &b->addr.in6.sin6_addr, 16) &&
		       a->addr.in6.sin6_scope_id == b->addr.in6.sin6_scope_id &&
		       a->has_src == b->has_src && (!a->has_src || !memcmp(&a->src.v6, &b->src.v6, 16));
	return a->addr.in4.sin_port == b->addr.in4.sin_port &&
	       a->addr.in4.sin_addr.s_addr == b->addr.in4.sin_addr.s_addr &&
	       a->has_src == b->has_src && (!a->has_src || a->src.v4.s_addr == b->src.v4.s_addr);
}

/* Roaming (the WireGuard paper, 2.1): the endpoint follows every authenticated packet. */
static void update_endpoint(struct wg_peer *peer, const struct wg_endpoint *src)
{
	if (peer->has_endpoint && wg_endpoint_equal(&peer->endpoint, src))
		return;
	peer->endpoint = *src;
	peer->has_endpoint = true;
	emit_plain(peer->dev, peer, WG_EVENT_ENDPOINT_CHANGED);
}

void wg_device_force_under_load(struct wg_device *dev, bool on)
{
	dev->forced_load = on;
}

bool wg_device_under_load(struct wg_device *dev, uint64_t now)
{
	bool load = dev->forced_load || (dev->load_until && now < dev->load_until);

	if (load != dev->was_under_load) {
		struct wg_event_info e = { .ev = WG_EVENT_UNDER_LOAD, .on = load };

		dev->was_under_load = load;
		emit(dev, NULL, &e);
	}
	return load;
}

static void count_handshake(struct wg_device *dev, uint64_t now)
{
	if (now - dev->load_window_start >= UNDER_LOAD_WINDOW) {
		dev->load_window_start = now;
		dev->load_count = 0;
	}
	if (++dev->load_count > UNDER_LOAD_THRESHOLD)
		dev->load_until = now + UNDER_LOAD_AFTER;
}

static struct noise_handshake *lookup_handshake(void *ctx, const uint8_t pub[32])
{
	struct wg_peer *peer = wg_device_peer_lookup(ctx, pub);

	return peer ? &peer->handshake : NULL;
}

/* mac1 always; mac2 under load, answering with a cookie reply when it is missing. */
static enum wg_drop check_macs(struct wg_device *dev, struct wg_now now,
			       const struct wg_endpoint *src, const uint8_t *buf, size_t len)
{
	uint8_t srcb[18], reply[COOKIE_REPLY_LEN];
	size_t srclen = wg_endpoint_cookie_bytes(src, srcb);
	bool load;
	enum cookie_mac_state st;

	count_handshake(dev, now.mono);
	load = wg_device_under_load(dev, now.mono);
	st = cookie_validate(&dev->cookie, buf, len, srcb, srclen, load, now.mono, dev->rng);
	if (st == COOKIE_MAC_INVALID)
		return WG_DROP_BAD_MAC;
	if (!load)
		return WG_DROP_NONE;
	if (st == COOKIE_MAC_VALID_WITH_COOKIE) {
		/* The source proved it receives at its address: now limit its rate. */
		const uint8_t *a = src->addr.sa.sa_family == AF_INET6
					   ? (const uint8_t *)&src->addr.in6.sin6_addr
					   : (const uint8_t *)&src->addr.in4.sin_addr;

		if (!ratelimiter_allow(dev->ratelimiter, src->addr.sa.sa_family, a, now.mono))
			return WG_DROP_RATELIMIT;
		return WG_DROP_NONE;
	}
	cookie_create_reply(&dev->cookie, reply, buf, len, srcb, srclen, now.mono, dev->rng);
	dev->ops->send(dev->ctx, NULL, src, reply, sizeof(reply));
	dev->stats.cookie_replies_sent++;
	return WG_DROP_COOKIE_SENT;
}

/*
 * An authenticated message of len bytes came from peer: count it and tell
 * the timers. Each receive path calls it before it sends anything.
 */
static void received_authenticated(struct wg_peer *peer, struct wg_now now, size_t len)
{
	peer->rx_bytes += len;
	peer->rx_packets++;
	timers_event_any_authenticated_packet_received(&peer->timers, now.mono);
	timers_event_any_authenticated_packet_traversal(&peer->timers, now.mono);
}

static enum wg_drop receive_initiation(struct wg_device *dev, struct wg_now now,
				       const struct wg_endpoint *src, const uint8_t *buf, size_t len)
{
	uint8_t resp[RESPONSE_LEN];
	struct noise_handshake *hs = NULL;
	struct wg_peer *peer;
	enum wg_drop drop;
	int ret;

	if (len != INITIATION_LEN)
		return WG_DROP_MALFORMED;
	drop = check_macs(dev, now, src, buf, len);
	if (drop)
		return drop;
	ret = noise_consume_initiation(buf, dev->identity, lookup_handshake, dev, now.mono, &hs);
	if (ret) {
		struct wg_event_info e = { .ev = WG_EVENT_HANDSHAKE_FAILED, .reason = refusal_of(ret) };

		/* A suite mismatch comes from an authentic peer, which is named. */
		if (wg_refusal_is_suite_mismatch(e.reason))
			peer_failed(hs->entry.peer, now, &e);
		else if (e.reason != WG_REFUSAL_UNKNOWN_PEER)
			emit(dev, NULL, &e);
		return WG_DROP_HANDSHAKE;
	}
	peer = hs->entry.peer;
	update_endpoint(peer, src);
	received_authenticated(peer, now, len);

	if (noise_create_response(hs, dev->identity, dev->index, resp, dev->rng))
		return WG_DROP_HANDSHAKE;
	cookie_add_macs(&peer->cookie, resp, sizeof(resp), now.mono);
	if (dev->ops->keylog)
		dev->ops->keylog(dev->ctx, peer, hs->ephemeral_private);
	if (!noise_keypairs_derive(&peer->keypairs, hs, dev->index, now.mono))
		return WG_DROP_HANDSHAKE;
	timers_event_session_derived(&peer->timers, now.mono);
	timers_event_response_sent(&peer->timers, now.mono);
	timers_event_any_authenticated_packet_traversal(&peer->timers, now.mono);
	timers_event_any_authenticated_packet_sent(&peer->timers, now.mono);
	send_to_peer(peer, resp, sizeof(resp));
	return WG_DROP_NONE;
}

static void handshake_complete(struct wg_peer *peer, struct wg_now now, bool initiator)
{
	struct wg_event_info e = { .ev = WG_EVENT_HANDSHAKE_COMPLETE, .initiator = initiator };

	timers_event_handshake_complete(&peer->timers, now.mono);
	peer->last_handshake_wall = now.wall;
	peer->handshakes_completed++;
	peer->dev->stats.handshakes_completed++;
	/* A session replaced by this one (now the previous) makes it a rekey. */
	e.rekey = peer->keypairs.previous != NULL;
	emit(peer->dev, peer, &e);
}

static enum wg_drop receive_response(struct wg_device *dev, struct wg_now now,
				     const struct wg_endpoint *src, const uint8_t *buf, size_t len)
{
	struct index_entry *e;
	struct wg_peer *peer;
	enum wg_drop drop;
	int ret;

	if (len != RESPONSE_LEN)
		return WG_DROP_MALFORMED;
	drop = check_macs(dev, now, src, buf, len);
	if (drop)
		return drop;
	e = index_table_lookup(dev->index, le32_read(buf + RESPONSE_RECEIVER));
	if (!e || e->kind != INDEX_HANDSHAKE)
		return WG_DROP_HANDSHAKE;
	peer = e->peer;
	ret = noise_consume_response(buf, &peer->handshake, dev->identity);
	if (ret) {
		struct wg_event_info fe = { .ev = WG_EVENT_HANDSHAKE_FAILED, .reason = refusal_of(ret) };

		peer_failed(peer, now, &fe);
		return WG_DROP_HANDSHAKE;
	}
	if (!noise_keypairs_derive(&peer->keypairs, &peer->handshake, dev->index, now.mono))
		return WG_DROP_HANDSHAKE;
	update_endpoint(peer, src);
	timers_event_session_derived(&peer->timers, now.mono);
	handshake_complete(peer, now, true);
	/*
	 * Timer events of this packet before anything is sent: data sent
	 * below arms the new-handshake timer, which a received event after it
	 * would cancel again.
	 */
	received_authenticated(peer, now, len);
	/* Key confirmation: staged data, or else an empty keepalive (the kernel's wg_receive_handshake_packet). */
	if (!dev->ops->keypair_ready(dev->ctx, peer))
		wg_peer_send_keepalive(peer, now);
	return WG_DROP_NONE;
}

static enum wg_drop receive_cookie(struct wg_device *dev, struct wg_now now, const uint8_t *buf,
				   size_t len)
{
	struct index_entry *e;
	struct wg_peer *peer;

	if (len != COOKIE_REPLY_LEN)
		return WG_DROP_MALFORMED;
	e = index_table_lookup(dev->index, le32_read(buf + COOKIE_REPLY_RECEIVER));
	if (!e)
		return WG_DROP_COOKIE;
	peer = e->peer;
	if (cookie_consume_reply(&peer->cookie, buf, now.mono))
		return WG_DROP_COOKIE;
	return WG_DROP_NONE;
}

/* Length and inner source address of a decrypted IP packet (the kernel's wg_packet_consume_data_done). */
static bool inner_packet(const uint8_t *p, size_t len, size_t *tot, int *family,
			 const uint8_t **addr)
{
	if (len >= 20 && p[0] >> 4 == 4) {
		*tot = (size_t)p[2] << 8 | p[3];
		*family = AF_INET;
		*addr = p + 12;
		return *tot >= 20 && *tot <= len;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		*tot = 40 + ((size_t)p[4] << 8 | p[5]);
		*family = AF_INET6;
		*addr = p + 8;
		return *tot <= len;
	}
	return false;
}

/* The first half of a data message: its keypair and counter (noise_keypair_open_begin). */
static enum wg_drop open_begin(struct wg_device *dev, struct wg_now now, uint8_t *buf,
			       size_t len, struct wg_crypt_job *job)
{
	struct noise_keypair *kp;
	struct index_entry *e;

	if (len < DATA_MIN_LEN)
		return WG_DROP_MALFORMED;
	e = index_table_lookup(dev->index, le32_read(buf + DATA_RECEIVER));
	if (!e || e->kind != INDEX_KEYPAIR)
		return WG_DROP_NO_KEYPAIR;
	kp = container_of(e, struct noise_keypair, entry);
	if (noise_keypair_open_begin(kp, buf, len, now.mono, &job->counter))
		return WG_DROP_NO_KEYPAIR;
	job_init(job, kp, buf, len, true);
	return WG_DROP_NONE;
}

/* The second half, once the AEAD ran: the kernel's wg_packet_rx_poll and what it calls. */
static enum wg_drop receive_opened(struct wg_device *dev, struct wg_now now,
				   const struct wg_endpoint *src, uint8_t *buf, size_t len,
				   const struct wg_crypt_job *job)
{
	uint8_t *plain = buf + DATA_HEADER_LEN;
	struct noise_keypair *kp = job->kp;
	struct wg_peer *peer = kp->entry.peer;
	size_t n = len - DATA_MIN_LEN, tot;
	const uint8_t *addr;
	bool confirmed;
	int family;

	if (job->result) {
		peer->decrypt_drops++;
		return WG_DROP_DECRYPT;
	}
	if (!noise_keypair_open_done(kp, job->counter)) {
		peer->replay_drops++;
		return WG_DROP_REPLAY;
	}

	/* Endpoint first: the staged packets sent below must go to the new address. */
	update_endpoint(peer, src);
	confirmed = noise_keypairs_confirm(&peer->keypairs, kp, dev->index);
	if (confirmed)
		handshake_complete(peer, now, false);
	if (kp == peer->keypairs.current &&
	    timers_want_rekey_on_receive(&peer->timers, kp->is_initiator, kp->created, now.mono))
		wg_peer_initiate(peer, now, false);
	/* As for the response: this packet's timer events before the staged data goes. */
	received_authenticated(peer, now, len);
	if (confirmed)
		dev->ops->keypair_ready(dev->ctx, peer);
	if (n == 0)
		return WG_DROP_NONE; /* keepalive */
	timers_event_data_received(&peer->timers, now.mono);

	if (!inner_packet(plain, n, &tot, &family, &addr))
		return WG_DROP_BAD_INNER;
	/* Cryptokey routing: the inner source must belong to this peer. */
	if (allowedips_lookup(dev->allowedips, family, addr) != &peer->allowedips) {
		peer->allowedips_drops++;
		return WG_DROP_ALLOWEDIPS;
	}
	dev->ops->deliver(dev->ctx, peer, plain, tot);
	return WG_DROP_NONE;
}

static enum wg_drop receive_data(struct wg_device *dev, struct wg_now now,
				 const struct wg_endpoint *src, uint8_t *buf, size_t len)
{
	struct wg_crypt_job job;
	enum wg_drop drop = open_begin(dev, now, buf, len, &job);

	if (drop)
		return drop;
	wg_crypt_job_run(&job, job.key);
	return receive_opened(dev, now, src, buf, len, &job);
}

bool wg_device_open_begin(struct wg_device *dev, struct wg_now now, uint8_t *buf, size_t len,
			  struct wg_crypt_job *job)
{
	return message_type_of(buf, len) == MESSAGE_DATA &&
	       open_begin(dev, now, buf, len, job) == WG_DROP_NONE;
}

enum wg_drop wg_device_receive_opened(struct wg_device *dev, struct wg_now now,
				      const struct wg_endpoint *src, uint8_t *buf, size_t len,
				      const struct wg_crypt_job *job)
{
	struct index_entry *e = index_table_lookup(dev->index, le32_read(buf + DATA_RECEIVER));
	enum wg_drop drop = WG_DROP_NO_KEYPAIR;

	/* A keypair that went (or whose slot a new one took) since the job was made: dropped. */
	if (e && e->kind == INDEX_KEYPAIR && container_of(e, struct noise_keypair, entry) == job->kp &&
	    job->kp->serial == job->serial)
		drop = receive_opened(dev, now, src, buf, len, job);
	dev->stats.drops[drop]++;
	return drop;
}

enum wg_drop wg_device_receive(struct wg_device *dev, struct wg_now now,
			       const struct wg_endpoint *src, uint8_t *buf, size_t len)
{
	enum wg_drop drop;

	switch (message_type_of(buf, len)) {
	case MESSAGE_HANDSHAKE_INITIATION:
		drop = receive_initiation(dev, now, src, buf, len);
		break;
	case MESSAGE_HANDSHAKE_RESPONSE:
		drop = receive_response(dev, now, src, buf, len);
		break;
	case MESSAGE_HANDSHAKE_COOKIE:
		drop = receive_cookie(dev, now, buf, len);
		break;
	case MESSAGE_DATA:
		drop = receive_data(dev, now, src, buf, len);
		break;
	default:
		drop = WG_DROP_MALFORMED;
		break;
	}
	dev->stats.drops[drop]++;
	return drop;
}

struct wg_peer *wg_device_route(const struct wg_device *dev, const uint8_t *pkt, size_t len)
{
	struct allowedips_owner *o = NULL;

	if (len >= 20 && pkt[0] >> 4 == 4)
		o = allowedips_lookup(dev->allowedips, AF_INET, pkt + 16);
	else if (len >= 40 && pkt[0] >> 4 == 6)
		o = allowedips_lookup(dev->allowedips, AF_INET6, pkt + 24);
	return o ? container_of(o, struct wg_peer, allowedips) : NULL;
}
