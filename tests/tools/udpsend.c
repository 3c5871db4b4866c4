// SPDX-License-Identifier: MIT
/*
 * Hostile datagrams for the namespace tests:
 *   udpsend ADDR PORT random SEED MINLEN MAXLEN  one datagram of every length in
 *                                                [MINLEN, MAXLEN], seeded content
 *   udpsend ADDR PORT malformed SEED             every message type with wrong
 *                                                lengths and non-zero reserved bytes
 *   udpsend ADDR PORT hex                        one hex payload a line on stdin
 * Whatever comes back within half a second of the last send is counted. One line:
 *   sent=N bytes=B replies=R
 * Exits 1 if a datagram could not be sent (other than for a full buffer, which
 * is retried) or, with -q ("quiet peer expected"), if anything came back.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/compiler.h"
#include "core/messages.h"

enum {
	MAX_DGRAM = 65507,
	DRAIN_MS = 500,
	SEND_RETRIES = 50,
};

struct sender {
	int s;
	unsigned long long sent, bytes, replies;
	bool failed;
	/* The seeded stream: ChaCha20 keyed by the seed, one block counter per draw. */
	uint8_t seed[randombytes_SEEDBYTES];
	uint64_t draws;
};

/* Deterministic bytes: the nth draw of the seeded stream. */
static void fill(struct sender *sd, uint8_t *buf, size_t len)
{
	uint8_t seed[randombytes_SEEDBYTES];

	memcpy(seed, sd->seed, sizeof(seed));
	le64_write(seed, le64_read(seed) ^ sd->draws++);
	randombytes_buf_deterministic(buf, len, seed);
}

static void drain(struct sender *sd, int timeout_ms)
{
	uint8_t buf[2048];
	struct pollfd p = { .fd = sd->s, .events = POLLIN };

	/* Bounded: a peer that never stops answering cannot keep us here. */
	for (int i = 0; i < 100000 && poll(&p, 1, timeout_ms) > 0; i++) {
		ssize_t n = recv(sd->s, buf, sizeof(buf), MSG_DONTWAIT);

		if (n >= 0)
			sd->replies++;
		else if (errno != ECONNREFUSED && errno != EAGAIN)
			break;
	}
}

/* Send one datagram; a full buffer or a stale ICMP error is retried. */
static void put(struct sender *sd, const uint8_t *buf, size_t len)
{
	for (int i = 0; i < SEND_RETRIES; i++) {
		if (send(sd->s, buf, len, 0) == (ssize_t)len) {
			sd->sent++;
			sd->bytes += len;
			/* Pace a little: the point is to reach the daemon, not to fill its buffer. */
			if (sd->sent % 32 == 0)
				drain(sd, 1);
			return;
		}
		if (errno != ECONNREFUSED && errno != ENOBUFS && errno != EAGAIN)
			break;
		drain(sd, 2);
	}
	perror("udpsend: send");
	sd->failed = true;
}

static void send_random(struct sender *sd, size_t min, size_t max)
{
	static uint8_t buf[MAX_DGRAM];

	for (size_t len = min; len <= max; len++) {
		fill(sd, buf, len);
		put(sd, buf, len);
	}
}

/* A message of len bytes whose first word is type, the rest seeded noise. */
static void send_typed(struct sender *sd, uint32_t type, size_t len)
{
	uint8_t buf[2048], word[4];

	fill(sd, buf, len);
	le32_write(word, type);
	memcpy(buf, word, len < 4 ? len : 4);
	put(sd, buf, len);
}

static void send_malformed(struct sender *sd)
{
	/* The right lengths are 148, 92, 64 and >= 32; each is met and missed by one. */
	static const size_t lens[] = { 0, 1, 2, 3, 4, 5, 8, 15, 16, 31, 32, 33, 47, 48,
				       63, 64, 65, 91, 92, 93, 147, 148, 149, 200, 1500 };
	static const size_t right[] = { 0, INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN,
					KEEPALIVE_LEN };
	static const uint32_t reserved[] = { 0x100, 0x10000, 0x1000000, 0xffffff00, 0x80000000 };
	static const uint32_t types[] = { 0, 1, 2, 3, 4, 5, 0xff, 0xffffffff };

	for (size_t t = 0; t < ARRAY_SIZE(types); t++)
		for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
			send_typed(sd, types[t], lens[i]);
	for (uint32_t t = 1; t <= 4; t++) {
		for (size_t r = 0; r < ARRAY_SIZE(reserved); r++) {
			send_typed(sd, t | reserved[r], right[t]);
			if (t == MESSAGE_DATA)
				send_typed(sd, t | reserved[r], 128);
		}
	}
	/* Transport messages of every small length, random receiver index. */
	for (size_t len = DATA_HEADER_LEN; len <= 96; len++)
		send_typed(sd, MESSAGE_DATA, len);
}

static void send_hex(struct sender *sd)
{
	static uint8_t buf[MAX_DGRAM];
	char *line = NULL;
	size_t cap = 0, len;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (sodium_hex2bin(buf, sizeof(buf), line, (size_t)n, NULL, &len, NULL)) {
			fprintf(stderr, "udpsend: bad hex line\n");
			sd->failed = true;
			break;
		}
		put(sd, buf, len);
	}
	free(line);
}

static int open_socket(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST }, *ai;
	int s;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "udpsend: bad address %s\n", host);
		return -1;
	}
	s = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("udpsend: connect");
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return s;
}

static void set_seed(struct sender *sd, const char *arg)
{
	crypto_generichash(sd->seed, sizeof(sd->seed), (const unsigned char *)arg, strlen(arg),
			   NULL, 0);
}

int main(int argc, char **argv)
{
	struct sender sd = { 0 };
	bool quiet = false;
	const char *mode;
	int opt;

	while ((opt = getopt(argc, argv, "q")) != -1) {
		if (opt != 'q')
			goto usage;
		quiet = true;
	}
	argc -= optind;
	argv += optind;
	if (argc < 3 || sodium_init() < 0)
		goto usage;
	mode = argv[2];
	sd.s = open_socket(argv[0], argv[1]);
	if (sd.s < 0)
		return 1;
	if (strcmp(mode, "random") == 0 && argc == 6) {
		long min = atol(argv[4]), max = atol(argv[5]);

		if (min < 0 || max < min || max > MAX_DGRAM)
			goto usage;
		set_seed(&sd, argv[3]);
		send_random(&sd, (size_t)min, (size_t)max);
	} else if (strcmp(mode, "malformed") == 0 && argc == 4) {
		set_seed(&sd, argv[3]);
		send_malformed(&sd);
	} else if (strcmp(mode, "hex") == 0 && argc == 3) {
		send_hex(&sd);
	} else {
		goto usage;
	}
	drain(&sd, DRAIN_MS);
	printf("sent=%llu bytes=%llu replies=%llu\n", sd.sent, sd.bytes, sd.replies);
	close(sd.s);
	return sd.failed || (quiet && sd.replies) ? 1 : 0;
usage:
	fprintf(stderr, "usage: udpsend [-q] ADDR PORT random SEED MINLEN MAXLEN\n"
			"       udpsend [-q] ADDR PORT malformed SEED\n"
			"       udpsend [-q] ADDR PORT hex < LINES\n");
	return 2;
}
