// SPDX-License-Identifier: MIT
/*
 * A handshake flood for the namespace tests:
 *   hsflood [-b SRCADDR] [-n MESSAGES] ADDR PORT PUBKEY SECONDS RATE
 * crafts MESSAGES (default 512) real handshake initiations to the interface whose
 * base64 public key is PUBKEY, from a fresh random identity it never reuses, each
 * with a valid mac1 and no mac2, and cycles through them at RATE a second for
 * SECONDS. The sender index differs from message to message, so every one needs
 * its own mac1: they are all computed up front with the protocol core
 * (noise_create_initiation, cookie_add_macs).
 *
 * Everything that comes back is read. A 64-byte cookie reply (type 3) addressed
 * to one of our sender indices is counted, and checked with cookie_consume_reply
 * against the mac1 of the message it answers. At the end, one line:
 *   sent=N blocked=B replies=R valid=V other=O seconds=S
 * blocked counts sends the socket refused (a full buffer).
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cookie.h"
#include "core/index.h"
#include "core/messages.h"
#include "core/noise.h"

enum {
	MAX_MESSAGES = 4096,
	BATCH = 64,
	DRAIN_MS = 500,
};

struct flood {
	uint8_t (*msg)[INITIATION_LEN];
	uint32_t *sender; /* sender index of msg[i] */
	size_t n;
	struct cookie_maker maker;
	unsigned long long sent, blocked, replies, valid, other;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Build f->n initiations to remote_pub from a new random identity. */
static int craft(struct flood *f, const uint8_t remote_pub[static 32])
{
	struct noise_static_identity id;
	struct noise_handshake hs;
	struct index_table *idx = index_table_new();
	uint8_t priv[32];
	int ret = -ENOMEM;

	if (!idx)
		return ret;
	randombytes_buf(priv, sizeof(priv));
	noise_identity_set(&id, priv);
	noise_handshake_init(&hs, &id, remote_pub, NULL, NULL);
	cookie_maker_init(&f->maker, remote_pub);
	for (size_t i = 0; i < f->n; i++) {
		ret = noise_create_initiation(&hs, &id, idx, f->msg[i], now_ns(CLOCK_REALTIME),
					      &wg_rng_system);
		if (ret)
			goto out;
		cookie_add_macs(&f->maker, f->msg[i], INITIATION_LEN, now_ns(CLOCK_MONOTONIC));
		f->sender[i] = le32_read(f->msg[i] + INITIATION_SENDER);
	}
	ret = 0;
out:
	noise_handshake_clear(&hs, idx);
	index_table_free(idx);
	sodium_memzero(&id, sizeof(id));
	sodium_memzero(priv, sizeof(priv));
	return ret;
}

/* Count one received datagram; a cookie reply must answer one of our messages. */
static void account(struct flood *f, const uint8_t *buf, ssize_t len)
{
	uint32_t receiver;

	if (len != COOKIE_REPLY_LEN || message_type_of(buf, (size_t)len) != MESSAGE_HANDSHAKE_COOKIE) {
		f->other++;
		return;
	}
	f->replies++;
	receiver = le32_read(buf + COOKIE_REPLY_RECEIVER);
	for (size_t i = 0; i < f->n; i++) {
		if (f->sender[i] != receiver)
			continue;
		memcpy(f->maker.last_mac1_sent, f->msg[i] + INITIATION_MAC1, COOKIE_LEN);
		f->maker.have_sent_mac1 = true;
		if (!cookie_consume_reply(&f->maker, buf, now_ns(CLOCK_MONOTONIC)))
			f->valid++;
		return;
	}
}

static void drain(struct flood *f, int s)
{
	uint8_t buf[2048];
	ssize_t n;

	while ((n = recv(s, buf, sizeof(buf), MSG_DONTWAIT)) >= 0 || errno == ECONNREFUSED)
		if (n >= 0)
			account(f, buf, n);
}

/* Send up to want messages, cycling through them; returns how many went out. */
static size_t send_batch(struct flood *f, int s, size_t want)
{
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	int r;

	if (want > BATCH)
		want = BATCH;
	memset(mm, 0, sizeof(mm));
	for (size_t i = 0; i < want; i++) {
		iov[i].iov_base = f->msg[(f->sent + f->blocked + i) % f->n];
		iov[i].iov_len = INITIATION_LEN;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	r = sendmmsg(s, mm, (unsigned int)want, MSG_DONTWAIT);
	if (r < 0) {
		f->blocked += want;
		return 0;
	}
	f->sent += (unsigned long long)r;
	return (size_t)r;
}

static int flood(struct flood *f, int s, double seconds, double rate)
{
	uint64_t start = now_ns(CLOCK_MONOTONIC), end = start + (uint64_t)(seconds * 1e9), t;

	while ((t = now_ns(CLOCK_MONOTONIC)) < end) {
		/* Pace: by time t, rate * (t - start) messages are due. */
		unsigned long long due = (unsigned long long)(rate * (double)(t - start) / 1e9);
		struct pollfd p = { .fd = s, .events = POLLIN };

		while (f->sent + f->blocked < due)
			if (!send_batch(f, s, (size_t)(due - f->sent - f->blocked)))
				break;
		drain(f, s);
		poll(&p, 1, 1);
	}
	for (t = now_ns(CLOCK_MONOTONIC); now_ns(CLOCK_MONOTONIC) - t < DRAIN_MS * NSEC_PER_MSEC;) {
		struct pollfd p = { .fd = s, .events = POLLIN };

		poll(&p, 1, 50);
		drain(f, s);
	}
	printf("sent=%llu blocked=%llu replies=%llu valid=%llu other=%llu seconds=%.1f\n", f->sent,
	       f->blocked, f->replies, f->valid, f->other, (double)(end - start) / 1e9);
	return 0;
}

static int open_socket(const char *src, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST }, *ai, *bi;
	int s;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "hsflood: bad address %s\n", host);
		return -1;
	}
	s = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (s >= 0 && src) {
		hints.ai_flags |= AI_PASSIVE;
		if (getaddrinfo(src, NULL, &hints, &bi) || bind(s, bi->ai_addr, bi->ai_addrlen) < 0) {
			fprintf(stderr, "hsflood: cannot bind to %s\n", src);
			return -1;
		}
		freeaddrinfo(bi);
	}
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("hsflood connect");
		return -1;
	}
	freeaddrinfo(ai);
	return s;
}

int main(int argc, char **argv)
{
	struct flood f = { .n = 512 };
	const char *src = NULL;
	uint8_t pub[32];
	size_t publen;
	int opt, s, ret;

	while ((opt = getopt(argc, argv, "b:n:")) != -1) {
		if (opt == 'b')
			src = optarg;
		else if (opt == 'n')
			f.n = (size_t)atol(optarg);
		else
			goto usage;
	}
	if (argc - optind != 5 || f.n < 1 || f.n > MAX_MESSAGES)
		goto usage;
	if (sodium_init() < 0)
		return 1;
	if (sodium_base642bin(pub, sizeof(pub), argv[optind + 2], strlen(argv[optind + 2]), NULL,
			      &publen, NULL, sodium_base64_VARIANT_ORIGINAL) || publen != 32) {
		fprintf(stderr, "hsflood: bad public key\n");
		return 2;
	}
	f.msg = calloc(f.n, sizeof(*f.msg));
	f.sender = calloc(f.n, sizeof(*f.sender));
	if (!f.msg || !f.sender || craft(&f, pub)) {
		fprintf(stderr, "hsflood: cannot craft initiations\n");
		free(f.msg);
		free(f.sender);
		return 1;
	}
	s = open_socket(src, argv[optind], argv[optind + 1]);
	ret = s < 0 ? 1 : flood(&f, s, atof(argv[optind + 3]), atof(argv[optind + 4]));
	if (s >= 0)
		close(s);
	free(f.msg);
	free(f.sender);
	return ret;
usage:
	fprintf(stderr, "usage: hsflood [-b SRCADDR] [-n MESSAGES] ADDR PORT PUBKEY SECONDS RATE\n");
	return 2;
}
