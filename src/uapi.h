/* SPDX-License-Identifier: MIT */
/*
 * The cross-platform userspace API (https://www.wireguard.com/xplatform/): the text
 * protocol stock `wg` speaks over /var/run/wireguard/<IFNAME>.sock.
 *
 * This module does no I/O. The daemon feeds it the bytes it reads from one
 * connection and writes back the reply bytes it produces. A `set` is applied
 * line by line through the backend's ops table as the lines arrive; a `get`
 * asks the backend to describe itself through the uapi_get_* writers.
 *
 * Not thread-safe: one uapi_conn per connection, all calls on one thread.
 */
#ifndef VEIL_UAPI_H
#define VEIL_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/compiler.h"

/* Longest request line accepted, without its '\n'. Real lines are < 100 bytes. */
#define UAPI_LINE_MAX 4096
/*
 * A set line this long (without its '\n') fails the request at once with
 * errno=-5 and ends the connection: where wireguard-go's line scanner (Go's
 * bufio.Scanner, 64 KB) gives up. A longer line than UAPI_LINE_MAX but
 * shorter than this is read on without being kept, then refused like any
 * bad line.
 */
#define UAPI_LINE_LIMIT 65536

/*
 * A growable byte buffer for replies. Zero-initialise it. Replies to `get`
 * hold the private key in hex, so release bytes only through
 * uapi_buf_consume() and uapi_buf_free(), which wipe them.
 */
struct uapi_buf {
	char *data;
	size_t len, cap;
};

/* Drops the first n bytes (already written to the socket) and wipes them. */
void uapi_buf_consume(struct uapi_buf *b, size_t n);

/* Wipes and frees the storage; the buffer is then empty and reusable. */
void uapi_buf_free(struct uapi_buf *b);

/* Handed to the backend's get op; opaque, used only with uapi_get_*. */
struct uapi_writer;

/*
 * What the daemon implements. Every op returns 0 or a negative errno, which
 * becomes the reply's errno= value as is (as wireguard-go's: a failed rebind of
 * listen_port must return -EADDRINUSE). A NULL op answers -EOPNOTSUPP, except
 * set_begin and set_end, which are optional hooks.
 *
 * Peer handles are opaque to this module and valid until the end of the
 * request or until the module passes them to peer_remove, whichever is first.
 */
enum uapi_cipher {
	UAPI_CIPHER_CHACHA20POLY1305 = 0,
	UAPI_CIPHER_AES256GCM = 1,
};

struct uapi_backend_ops {
	/* Device keys. An all-zero private key removes it. */
	int (*set_private_key)(void *ctx, const uint8_t key[static 32]);
	/*
	 * veil's device key rotate_private_key: as private_key, but the
	 * sessions made under the old key go on (a rotation). Optional.
	 */
	int (*rotate_private_key)(void *ctx, const uint8_t key[static 32]);
	int (*set_listen_port)(void *ctx, uint16_t port);
	int (*set_fwmark)(void *ctx, uint32_t mark);
	int (*replace_peers)(void *ctx);
	/* veil's own device key metrics_listen: sa NULL turns the listener off. Optional. */
	int (*set_metrics_listen)(void *ctx, const struct sockaddr *sa, socklen_t len);

	/*
	 * Looks up the peer with this public key and creates it if absent and
	 * create is true. Sets *peer to its handle, or to NULL when there is no
	 * such peer (create false) or when the key must be ignored (it equals
	 * the device's own public key); the lines for a NULL peer are checked
	 * and discarded. To learn whether a peer is new, the module looks up
	 * first and creates in a second call only when the first found nothing.
	 */
	int (*peer_select)(void *ctx, const uint8_t pub[static 32], bool create, void **peer);
	int (*peer_remove)(void *ctx, void *peer);
	/* An all-zero key means no preshared key. */
	int (*peer_set_preshared_key)(void *ctx, void *peer, const uint8_t psk[static 32]);
	/* sa is a sockaddr_in or a sockaddr_in6 (sin6_scope_id filled in). */
	int (*peer_set_endpoint)(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len);
	/*
	 * veil's extension: "host:port" to look up again when handshakes fail,
	 * "" for none. Optional; without it the key is refused (-EINVAL).
	 */
	int (*peer_set_endpoint_name)(void *ctx, void *peer, const char *name);
	/*
	 * veil's extension: cipher=chacha20poly1305 (WireGuard's, the default)
	 * or cipher=aes256gcm, passed as enum uapi_cipher. Optional; without it
	 * the key is refused (-EINVAL), as wireguard-go refuses it.
	 */
	int (*peer_set_cipher)(void *ctx, void *peer, int cipher);
	int (*peer_set_keepalive)(void *ctx, void *peer, uint16_t interval);
	int (*peer_replace_allowed_ips)(void *ctx, void *peer);
	/*
	 * family is AF_INET (addr: 4 bytes) or AF_INET6 (16 bytes), network
	 * order, cidr already range-checked. Host bits are passed as received.
	 */
	int (*peer_add_allowed_ip)(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr);
	int (*peer_remove_allowed_ip)(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr);

	/*
	 * set_begin runs when the `set=1` line arrives; set_end runs once the
	 * request ends, before the reply, with the error being reported (0 on
	 * success). Lines in between may arrive over several feeds. If the
	 * connection is freed in the middle of a set, set_end gets -EIO.
	 */
	void (*set_begin)(void *ctx);
	void (*set_end)(void *ctx, int err);

	/*
	 * Describes the device: uapi_get_device once, then for each peer
	 * uapi_get_peer followed by its uapi_get_allowed_ip lines. The module
	 * appends "errno=0\n\n" on success; on error it drops what was written
	 * and replies with the error alone. It serves get=1 and veil's own
	 * veil_get=1, for which uapi_get_peer adds the peer's cipher and
	 * endpoint_name and uapi_get_metrics_listen its line (wg's get parser
	 * would refuse them in a get=1 reply). Every value a set accepts comes
	 * back whole, however long.
	 */
	int (*get)(void *ctx, struct uapi_writer *w);
	/*
	 * veil's own operation "metrics=1": the interface's counters in the
	 * Prometheus text format, written with uapi_put_text, then errno=0
	 * as after a get. Optional: without it the operation is unknown.
	 */
	int (*metrics)(void *ctx, struct uapi_writer *w);
};

/* One peer as `get` reports it. */
struct uapi_peer_info {
	uint8_t public_key[32];
	uint8_t preshared_key[32];	/* all zeros when none */
	const struct sockaddr *endpoint; /* sockaddr_in or sockaddr_in6, or NULL */
	uint64_t last_handshake_sec;	/* wall clock, both 0 if never */
	uint32_t last_handshake_nsec;
	uint64_t tx_bytes, rx_bytes;
	uint16_t persistent_keepalive;
	/* veil_get=1 only: enum uapi_cipher, and "host:port" or NULL/"" for none. */
	int cipher;
	const char *endpoint_name;
	/*
	 * veil_get=1 only: handshakes refused or given up, and the latest's
	 * wall-clock second (0: never) and reason, one line of text (control
	 * characters are written as '?').
	 */
	uint64_t handshake_failures;
	uint64_t last_failure_sec;
	const char *last_failure;
};

/* private_key is emitted only if non-NULL; listen_port and fwmark only if non-zero. */
void uapi_get_device(struct uapi_writer *w, const uint8_t *private_key, uint16_t listen_port,
		     uint32_t fwmark);
/*
 * veil_get=1 only, after uapi_get_device: where the metrics listener is
 * (sa a sockaddr_in or sockaddr_in6; NULL: none, nothing written).
 */
void uapi_get_metrics_listen(struct uapi_writer *w, const struct sockaddr *sa);
void uapi_get_peer(struct uapi_writer *w, const struct uapi_peer_info *p);
/* Runs fn with a writer on out (for a reply outside a connection: the metrics page). */
int uapi_render(struct uapi_buf *out, int (*fn)(void *ctx, struct uapi_writer *w), void *ctx);
/* Free text for metrics: whole lines, no empty one (it would end the reply). */
void uapi_put_text(struct uapi_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* family AF_INET or AF_INET6; addr in network order. */
void uapi_get_allowed_ip(struct uapi_writer *w, int family, const uint8_t *addr, uint8_t cidr);

/* Per-connection parser state. */
struct uapi_conn;

/* Returns NULL when out of memory. ops and ctx must outlive the connection. */
struct uapi_conn *uapi_conn_new(const struct uapi_backend_ops *ops, void *ctx);

/*
 * The client closed its side: a set without its empty line (or its last
 * line's '\n') is finished as if they had come, and its reply appended to
 * out, as wireguard-go applies and answers it. Returns 1 (close once out
 * is flushed) or a negative errno. Nothing else is answered.
 */
int __must_check uapi_conn_eof(struct uapi_conn *c, struct uapi_buf *out);

/* Ends an unfinished set (set_end with -EIO), wipes the buffers and frees. NULL is a no-op. */
void uapi_conn_free(struct uapi_conn *c);

/*
 * Consumes len received bytes and appends any replies to out. Returns 0 to
 * keep reading, 1 when the connection must be closed once out is flushed
 * (unknown operation, garbage after `get=1`), or a negative errno (-ENOMEM)
 * when it must be closed at once. After a non-zero return, further feeds
 * return 1 and do nothing.
 *
 * The parser buffers at most one line; out grows with every reply, so the
 * caller should stop reading while a large reply is still unflushed: see
 * uapi_conn_feed_one.
 */
int __must_check uapi_conn_feed(struct uapi_conn *c, const char *data, size_t len,
				struct uapi_buf *out);
/*
 * As uapi_conn_feed, but it stops after the request that appended a reply
 * to out; *used says how many bytes of data it consumed. A daemon feeds
 * the rest only once that reply is written, so a client that pipelines
 * requests without reading holds one reply in the daemon's memory, never
 * one per request.
 */
int __must_check uapi_conn_feed_one(struct uapi_conn *c, const char *data, size_t len,
				    struct uapi_buf *out, size_t *used);

#endif
