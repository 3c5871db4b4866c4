/* SPDX-License-Identifier: MIT */
/*
 * The protocol engine of one interface: peers, the index table, allowed IPs,
 * the cookie checker, and what to do with every datagram received and every
 * packet to send. It performs no I/O: what must go out is handed to the
 * caller's ops (an upcall table, as OpenBSD's wg_noise does), and time comes
 * in with each call. The daemon drives it; so do the in-process tests and the
 * fuzz targets, through the very same entry points.
 */
#ifndef VEIL_DEVICE_H
#define VEIL_DEVICE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "allowedips.h"
#include "compiler.h"
#include "cookie.h"
#include "noise.h"
#include "rng.h"
#include "timers.h"

struct wg_now {
	uint64_t mono; /* monotonic nanoseconds: every timer and age */
	uint64_t wall; /* Unix nanoseconds: TAI64N and last-handshake time */
};

/* A remote address and the local address it last reached us on. */
struct wg_endpoint {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} src;
	unsigned int src_ifindex;
	bool has_src;
};

/* Why a received datagram was dropped: counted per device, shown by metrics later. */
enum wg_drop {
	WG_DROP_NONE = 0,
	WG_DROP_MALFORMED,     /* bad length or type */
	WG_DROP_BAD_MAC,       /* mac1 wrong */
	WG_DROP_COOKIE_SENT,   /* under load without a valid mac2: answered with a cookie */
	WG_DROP_RATELIMIT,     /* under load, valid mac2, but over 20 handshakes/s from this source */
	WG_DROP_HANDSHAKE,     /* handshake refused: unknown peer, bad AEAD, replay, flood */
	WG_DROP_COOKIE,        /* cookie reply refused */
	WG_DROP_NO_KEYPAIR,    /* transport for an unknown or expired index */
	WG_DROP_DECRYPT,       /* transport failed authentication */
	WG_DROP_REPLAY,        /* transport counter seen before or too old */
	WG_DROP_BAD_INNER,     /* decrypted packet is not a sound IPv4/IPv6 packet */
	WG_DROP_ALLOWEDIPS,    /* inner source not in the sending peer's allowed IPs */
	WG_DROP_COUNT,
};

/*
 * Why a handshake failed: a message refused, or no answer at all. The
 * handshake code (noise.c) returns -errno; the engine names the reason once,
 * here, so the glue never decodes errno values (or prints strerror's words
 * for them).
 */
enum wg_refusal {
	WG_REFUSAL_NONE = 0,
	WG_REFUSAL_UNKNOWN_PEER,	/* initiation from a static key we do not know */
	WG_REFUSAL_BAD_AUTH,		/* a handshake AEAD or DH failed */
	WG_REFUSAL_REPLAY,		/* initiation timestamp not newer than the last one */
	WG_REFUSAL_FLOOD,		/* initiations from the peer faster than allowed */
	WG_REFUSAL_NO_IDENTITY,		/* this interface has no private key */
	WG_REFUSAL_AES_OFFERED,		/* peer uses AES-256-GCM, we have ChaCha20-Poly1305 for it */
	WG_REFUSAL_CHACHA_OFFERED,	/* peer uses ChaCha20-Poly1305, we have AES-256-GCM */
	WG_REFUSAL_UNEXPECTED,		/* a response to no initiation in progress */
	WG_REFUSAL_UNANSWERED,		/* no answer after every retry */
	WG_REFUSAL_OTHER,
	WG_REFUSAL_COUNT,
};

/* A short name for logs and audit lines ("replayed timestamp"); never NULL. */
const char *wg_refusal_name(enum wg_refusal r);
/* Whether r is a cipher mismatch (one of the two *_OFFERED). */
bool wg_refusal_is_suite_mismatch(enum wg_refusal r);

/*
 * Events come with their peer, except UNDER_LOAD and a HANDSHAKE_FAILED whose
 * sender is unknown (peer NULL).
 */
enum wg_event {
	WG_EVENT_HANDSHAKE_SENT,        /* initiation sent (attempt, retry) */
	WG_EVENT_HANDSHAKE_COMPLETE,    /* a keypair is confirmed (initiator, rekey) */
	WG_EVENT_HANDSHAKE_FAILED,      /* a handshake message from this peer refused (reason) */
	WG_EVENT_GAVE_UP,               /* no answer after all retries (attempt: how many sent) */
	WG_EVENT_KEYS_WIPED,            /* zero_key_material fired (after_sec) */
	WG_EVENT_ENDPOINT_CHANGED,      /* roaming */
	WG_EVENT_UNDER_LOAD,            /* on: entering (true) or leaving */
};

/* What an event says; the fields its comment above names are set, the rest zero. */
struct wg_event_info {
	enum wg_event ev;
	enum wg_refusal reason;
	unsigned int attempt;	/* SENT: this initiation's number, 1 the first; GAVE_UP: all sent */
	unsigned int after_sec;	/* KEYS_WIPED: seconds without a new session */
	bool retry;		/* SENT: a retransmission */
	bool initiator;		/* COMPLETE: we sent the initiation */
	bool rekey;		/* COMPLETE: the new session replaced one */
	bool on;		/* UNDER_LOAD */
};

struct wg_peer;
struct wg_device;

/*
 * The engine calls these from inside wg_device_receive, the timers and the
 * peer calls. None of them may remove a peer or change the private key: the
 * engine still holds the peer it called about.
 */
struct wg_device_ops {
	/* Send buf to ep. peer is NULL for cookie replies. */
	void (*send)(void *ctx, struct wg_peer *peer, const struct wg_endpoint *ep,
		     const uint8_t *buf, size_t len);
	/*
	 * A decrypted and checked IP packet for the TUN device. It lies in the
	 * buffer given to wg_device_receive, so the caller may keep it (and
	 * rewrite it) for as long as it keeps that buffer.
	 */
	void (*deliver)(void *ctx, struct wg_peer *peer, uint8_t *pkt, size_t len);
	/* peer has a usable keypair now: send its staged packets. Returns how many went out. */
	size_t (*keypair_ready)(void *ctx, struct wg_peer *peer);
	/* Drop peer's staged packets. */
	void (*purge_staged)(void *ctx, struct wg_peer *peer);
	/* Something worth a log line or a metric happened. May be NULL. */
	void (*event)(void *ctx, struct wg_peer *peer, const struct wg_event_info *e);
	/* peer is about to be freed (also when a key change removes it). May be NULL. */
	void (*peer_removed)(void *ctx, struct wg_peer *peer);
	/*
	 * Debugging aid: the ephemeral private key of a handshake message we
	 * just created, for a Wireshark key log. NULL (the default) disables it.
	 */
	void (*keylog)(void *ctx, struct wg_peer *peer, const uint8_t ephemeral_private[32]);
};

struct wg_peer {
	struct wg_device *dev;
	uint8_t public_key[NOISE_PUBLIC_KEY_LEN];
	struct noise_handshake handshake;
	struct noise_keypairs keypairs;
	struct cookie_maker cookie;
	struct timers timers;
	struct allowedips_owner allowedips;
	struct wg_endpoint endpoint;
	bool has_endpoint;
	bool has_psk;
	uint16_t persistent_keepalive;
	uint64_t rx_bytes, tx_bytes;
	/* For metrics: authenticated messages in, messages out (handshakes and keepalives too). */
	uint64_t rx_packets, tx_packets;
	uint64_t handshakes_completed;
	uint64_t handshake_failures; /* its messages refused, or no answer after every retry */
	/*
	 * The latest of those failures, for operators who have no log: why
	 * and when (wall clock, ns; 0: never).
	 */
	enum wg_refusal last_failure;
	uint64_t last_failure_wall;
	uint64_t last_handshake_wall;
	uint64_t allowedips_drops, replay_drops, decrypt_drops;
	struct wg_peer *hash_next;
	struct wg_peer *list_prev, *list_next;
	void *user; /* the daemon's per-peer state */
};

struct wg_device_stats {
	uint64_t drops[WG_DROP_COUNT];
	uint64_t cookie_replies_sent;
	uint64_t handshakes_completed;
};

struct wg_device *wg_device_new(const struct wg_device_ops *ops, void *ctx,
				const struct wg_rng *rng);
/* Removes every peer (purge_staged is called for each), wipes all keys. */
void wg_device_free(struct wg_device *dev);

const struct noise_static_identity *wg_device_identity(const struct wg_device *dev);
/* All zero removes the key. A peer with the new public key is removed (the kernel's netlink.c set_device). */
int wg_device_set_private_key(struct wg_device *dev, const uint8_t key[static 32]) __must_check;
/*
 * The same, but each peer's sessions go on until they expire (a static-key
 * rotation, docs/mesh.md): -EINVAL for the all-zero key.
 */
int wg_device_rotate_private_key(struct wg_device *dev, const uint8_t key[static 32]) __must_check;
unsigned int wg_device_mtu(const struct wg_device *dev);
void wg_device_set_mtu(struct wg_device *dev, unsigned int mtu);
/* Tests and operators may force cookie mode; otherwise load is measured (see device.c). */
void wg_device_force_under_load(struct wg_device *dev, bool on);
bool wg_device_under_load(struct wg_device *dev, uint64_t now);
const struct wg_device_stats *wg_device_stats(const struct wg_device *dev);
struct allowedips *wg_device_allowedips(struct wg_device *dev);

/*
 * Peers an interface holds at most, the kernel module's limit (which
 * answers -ENOMEM there; -ENOSPC here says what happened).
 */
#define WG_PEERS_MAX (1u << 20)

/*
 * Peers. Adding our own public key is refused with -EEXIST, a peer past
 * WG_PEERS_MAX with -ENOSPC.
 */
int wg_device_peer_add(struct wg_device *dev, const uint8_t pub[static 32],
		       struct wg_peer **out) __must_check;
struct wg_peer *wg_device_peer_lookup(const struct wg_device *dev, const uint8_t pub[static 32]);
void wg_device_peer_remove(struct wg_device *dev, struct wg_peer *peer);
void wg_device_peers_clear(struct wg_device *dev);
struct wg_peer *wg_device_peer_first(const struct wg_device *dev);
struct wg_peer *wg_device_peer_next(const struct wg_peer *peer);
size_t wg_device_peer_count(const struct wg_device *dev);

void wg_peer_set_psk(struct wg_peer *peer, const uint8_t *psk);
/* Whether peer has a keypair to send with (its current session). */
bool wg_peer_has_session(const struct wg_peer *peer);
/*
 * Forget the local address peer was last reached on, so the next send
 * lets the kernel choose (the address went away, or a send from it failed).
 */
void wg_peer_forget_source(struct wg_peer *peer);

/* What the control socket's get and the metrics show of a peer's protocol state. */
struct wg_peer_info {
	uint8_t preshared_key[NOISE_SYMMETRIC_KEY_LEN]; /* all zero without one */
	bool has_psk;
	enum noise_suite suite;
};
/* Copies peer's state into info; the caller wipes info->preshared_key after use. */
void wg_peer_get_info(const struct wg_peer *peer, struct wg_peer_info *info);
/* How old (ns) peer's current session is at monotonic now; false without one. */
bool wg_peer_session_age(const struct wg_peer *peer, uint64_t now, uint64_t *age) __must_check;
/*
 * The transport suite (noise.h). A change ends the peer's sessions and any
 * handshake in progress; the next handshake uses the new suite. Returns
 * whether it changed. The caller checks that AES-256-GCM is available.
 */
bool wg_peer_set_suite(struct wg_peer *peer, enum noise_suite suite);
void wg_peer_set_endpoint(struct wg_peer *peer, const struct sockaddr *sa, socklen_t len);
/* Changing the interval from 0 sends a keepalive at once (the kernel's netlink.c set_peer). */
void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t interval, struct wg_now now);

/*
 * Process one received datagram. buf is modified (decrypted in place).
 * Returns WG_DROP_NONE when it was accepted, otherwise the reason.
 */
enum wg_drop wg_device_receive(struct wg_device *dev, struct wg_now now,
			       const struct wg_endpoint *src, uint8_t *buf, size_t len);

/*
 * One transport AEAD, apart from the engine's bookkeeping, so that the
 * daemon can run a batch of them on several threads (src/workers.c). The
 * engine fills it on the loop's thread (wg_peer_encrypt_begin,
 * wg_device_open_begin); wg_crypt_job_run does the AEAD on any thread,
 * under ctx: the keypair's own context (key) when no other thread uses it,
 * or a context of that thread's own keyed with wg_crypt_job_key. The
 * keypair must stay alive until the run: the daemon runs its jobs before it
 * returns to the loop.
 */
struct wg_crypt_job {
	struct aead_ctx *key;		/* the keypair's context for this direction */
	struct noise_keypair *kp;	/* whose: an opened message is checked against it again */
	uint64_t serial;		/* kp's serial when the job was made */
	uint8_t *msg;			/* the message: header, payload, tag */
	size_t len;			/* seal: payload bytes (padded); open: the message's bytes */
	uint64_t counter;
	bool open;
	int result; /* of the run: 0, -EIO (seal) or -EBADMSG (open) */
};

/* Run one job under ctx; sets and returns job->result. */
int wg_crypt_job_run(struct wg_crypt_job *job, struct aead_ctx *ctx);
/*
 * The key a job runs under (its keypair's, for its direction), for a
 * thread's own context (aead_rekey), and whether it is AES-256-GCM's.
 */
const uint8_t *wg_crypt_job_key(const struct wg_crypt_job *job, bool *aes256gcm);

/*
 * wg_device_receive in halves. wg_device_open_begin: true when buf is a data
 * message for a keypair that may receive it, with job filled; false for
 * anything else, which goes to wg_device_receive as it is. After the job
 * ran, wg_device_receive_opened does the rest (replay window, timers,
 * allowed IPs, delivery) and returns what wg_device_receive would: a
 * keypair gone or replaced meanwhile drops the message (WG_DROP_NO_KEYPAIR).
 * Messages must reach wg_device_receive_opened and wg_device_receive in the
 * order they arrived.
 */
bool wg_device_open_begin(struct wg_device *dev, struct wg_now now, uint8_t *buf, size_t len,
			  struct wg_crypt_job *job) __must_check;
enum wg_drop wg_device_receive_opened(struct wg_device *dev, struct wg_now now,
				      const struct wg_endpoint *src, uint8_t *buf, size_t len,
				      const struct wg_crypt_job *job);

/* The peer an outgoing IP packet is routed to (by destination), or NULL. */
struct wg_peer *wg_device_route(const struct wg_device *dev, const uint8_t *pkt, size_t len);

/*
 * Encrypt one outgoing packet for peer. The plaintext is at buf +
 * DATA_HEADER_LEN (len bytes; zero for a keepalive); buf must have room for
 * wg_packet_room(len) bytes. On success *out_len is the message length.
 * -ENOKEY: no usable keypair (keep the packet staged; a handshake was started).
 */
int wg_peer_encrypt(struct wg_peer *peer, struct wg_now now, uint8_t *buf, size_t len,
		    size_t *out_len) __must_check;
/*
 * wg_peer_encrypt without the AEAD: the counter is taken and the header
 * written; the payload is sealed when job runs. A job whose run failed
 * (the message must not go) is reported with wg_peer_encrypt_failed.
 */
int wg_peer_encrypt_begin(struct wg_peer *peer, struct wg_now now, uint8_t *buf, size_t len,
			  size_t *out_len, struct wg_crypt_job *job) __must_check;
void wg_peer_encrypt_failed(struct wg_peer *peer, struct wg_now now);
/* After a batch of wg_peer_encrypt calls went out: timers and the rekey check. */
void wg_peer_sent(struct wg_peer *peer, struct wg_now now, size_t bytes, bool had_data);
void wg_peer_send_keepalive(struct wg_peer *peer, struct wg_now now);
/* Start a handshake unless one was sent in the last REKEY_TIMEOUT. */
void wg_peer_initiate(struct wg_peer *peer, struct wg_now now, bool is_retry);

/* Run the peer's expired timers; returns the next deadline (UINT64_MAX if none). */
uint64_t wg_peer_run_timers(struct wg_peer *peer, struct wg_now now);
uint64_t wg_peer_next_deadline(const struct wg_peer *peer);

static inline size_t wg_packet_room(size_t len)
{
	return DATA_HEADER_LEN + len + MESSAGE_PADDING_MULTIPLE + NOISE_AUTHTAG_LEN;
}

/* Cookie source bytes of an endpoint: address then port, big-endian (kernel's form). */
size_t wg_endpoint_cookie_bytes(const struct wg_endpoint *ep, uint8_t out[static 18]);
bool wg_endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b);
/* Same remote address and port, whatever local source each remembers. */
bool wg_endpoint_equal_addr(const struct wg_endpoint *a, const struct wg_endpoint *b);

#endif
