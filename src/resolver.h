/* SPDX-License-Identifier: MIT */
/*
 * Host names of peers' endpoints, looked up again when handshakes to them
 * keep failing. getaddrinfo blocks, reads files and talks to DNS servers,
 * none of which the daemon's event loop or its seccomp filter allow; so a
 * small child process, forked before any key exists and before the
 * sandbox, does the lookups. It holds no key, no tunnel or UDP socket and
 * no capability, and answers over a SOCK_SEQPACKET socketpair: one
 * request, one reply, matched by the peer's public key and a generation.
 */
#ifndef VEIL_RESOLVER_H
#define VEIL_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/compiler.h"

enum {
	/* "host:port" or "[v6]:port": a DNS name has at most 253 bytes. */
	RESOLVER_NAME_MAX = 272,
};

struct resolver_request {
	uint32_t gen;
	uint8_t public_key[32];
	char name[RESOLVER_NAME_MAX]; /* NUL-terminated */
};

struct resolver_reply {
	uint32_t gen;
	uint8_t public_key[32];
	int32_t err; /* 0, or getaddrinfo's EAI_* (negative) */
	uint32_t len; /* of addr: a sockaddr_in or sockaddr_in6 */
	struct sockaddr_storage addr;
};

/*
 * One peer's lookups. The child parses what DNS servers send, so its
 * replies are trusted no further than this: one is taken only while a
 * request for that very peer and generation is out, and only once.
 */
struct resolver_lookup {
	uint32_t gen; /* of the request out, or of the last one */
	bool out;     /* a request is out, not yet answered */
};

/*
 * The retry policy: a peer's endpoint host name is looked up again when
 * an initiation goes out and initiations have gone unanswered for
 * RESOLVER_AFTER_SEC, then at most every RESOLVER_INTERVAL_SEC while
 * handshakes keep failing. Not a count of attempts: new traffic resets
 * that count, as in the kernel. Times are monotonic nanoseconds.
 */
enum {
	RESOLVER_AFTER_SEC = 10,
	RESOLVER_INTERVAL_SEC = 15,
};

/* Whether initiations unanswered since unanswered_since have waited long enough at now. */
bool resolver_retry_due(uint64_t unanswered_since, uint64_t now);
/* Whether a peer whose name was last asked at asked (0: never) may be asked again at now. */
bool resolver_may_ask(uint64_t asked, uint64_t now);

/* A request with generation gen (daemon-wide, never reused) went out for this peer. */
void resolver_lookup_sent(struct resolver_lookup *l, uint32_t gen);
/* The peer's name changed: a reply still on its way is for the old one. */
void resolver_lookup_cancel(struct resolver_lookup *l);
/* Whether rp answers the request out (then it is out no longer); false for any other reply. */
bool resolver_lookup_take(struct resolver_lookup *l, const struct resolver_reply *rp);

/*
 * Fork the resolver; it runs as "nobody" with no capability (sandbox.h).
 * On success *fd is the daemon's end of the socketpair (non-blocking,
 * close-on-exec) and *pid the child's, which the control socket refuses.
 * The child ends when that end closes or the daemon dies.
 */
int __must_check resolver_start(int *fd, pid_t *pid);

/*
 * Whether name has the shape of "host:port" or "[address]:port" with a
 * port 1-65535 (the lookup itself judges the host). Used by the control
 * socket before it accepts a name.
 */
bool resolver_name_valid(const char *name);

#endif
