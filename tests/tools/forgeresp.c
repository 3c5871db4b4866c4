// SPDX-License-Identifier: MIT
/*
 * Forged handshake responses, for the namespace tests:
 *   forgeresp [-n COUNT] ADDR PORT PUBKEY
 * listens on ADDR PORT (where the initiator believes its peer is) for one
 * handshake initiation, for at most 20 seconds, and answers it with COUNT
 * (default 1000) forged responses, 1.2 ms apart, then one more after 1.1
 * seconds. (Faster, they would put the initiator under load, where a
 * message without a valid mac2 gets a cookie reply and goes no further.) Each carries the initiator's live sender index (seen on the
 * wire) and a valid mac1 (computed from PUBKEY, the initiator's public key,
 * which is no secret), but a random ephemeral and a random empty field, so
 * the initiator must refuse each one, naming the peer the index belongs to.
 * One line: sent=N index=0x...; exit 1 when no initiation came.
 */
#include <arpa/inet.h>
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
#include "core/messages.h"

enum { WAIT_MS = 20000, TAIL_MS = 1100, GAP_US = 1200 };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int bind_to(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST }, *ai;
	int s;

	if (getaddrinfo(addr, port, &hints, &ai))
		return -1;
	s = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && bind(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		close(s);
		s = -1;
	}
	freeaddrinfo(ai);
	return s;
}

/* The first initiation to arrive: its sender index and where it came from. */
static int wait_initiation(int s, uint8_t index[4], struct sockaddr_storage *from, socklen_t *len)
{
	uint64_t end = mono_ns() + (uint64_t)WAIT_MS * NSEC_PER_MSEC, now;
	uint8_t buf[2048];

	while ((now = mono_ns()) < end) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)((end - now) / NSEC_PER_MSEC) + 1) <= 0)
			continue;
		*len = sizeof(*from);
		n = recvfrom(s, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)from, len);
		if (n == INITIATION_LEN && message_type_of(buf, (size_t)n) == MESSAGE_HANDSHAKE_INITIATION) {
			memcpy(index, buf + INITIATION_SENDER, 4);
			return 0;
		}
	}
	return -ETIMEDOUT;
}

/* One forged response to index, with a valid mac1 for the initiator. */
static void forge(struct cookie_maker *m, const uint8_t index[4], uint8_t msg[static RESPONSE_LEN])
{
	memset(msg, 0, RESPONSE_LEN);
	msg[0] = MESSAGE_HANDSHAKE_RESPONSE;
	randombytes_buf(msg + RESPONSE_SENDER, 4);
	memcpy(msg + RESPONSE_RECEIVER, index, 4);
	randombytes_buf(msg + RESPONSE_EPHEMERAL, RESPONSE_MAC1 - RESPONSE_EPHEMERAL);
	cookie_add_macs(m, msg, RESPONSE_LEN, mono_ns());
}

int main(int argc, char **argv)
{
	uint8_t pub[32], index[4], msg[RESPONSE_LEN];
	struct sockaddr_storage from;
	struct cookie_maker maker;
	socklen_t len;
	size_t keylen;
	long count = 1000, i, sent = 0;
	int c, s;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n')
			goto usage;
		count = strtol(optarg, NULL, 10);
		if (count < 1 || count > 1000000)
			goto usage;
	}
	if (argc - optind != 3 || sodium_init() < 0 ||
	    sodium_base642bin(pub, sizeof(pub), argv[optind + 2], strlen(argv[optind + 2]), NULL,
			      &keylen, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    keylen != 32)
		goto usage;
	s = bind_to(argv[optind], argv[optind + 1]);
	if (s < 0) {
		perror("forgeresp: bind");
		return 2;
	}
	if (wait_initiation(s, index, &from, &len)) {
		fprintf(stderr, "forgeresp: no initiation within %d ms\n", WAIT_MS);
		return 1;
	}
	cookie_maker_init(&maker, pub);
	for (i = 0; i <= count; i++) {
		/* The last one past the one-second window: the line that counts those before. */
		usleep(i == count ? TAIL_MS * 1000 : GAP_US);
		forge(&maker, index, msg);
		if (sendto(s, msg, sizeof(msg), 0, (struct sockaddr *)&from, len) == (ssize_t)sizeof(msg))
			sent++;
	}
	printf("sent=%ld index=0x%02x%02x%02x%02x\n", sent, index[3], index[2], index[1], index[0]);
	close(s);
	return 0;
usage:
	fprintf(stderr, "usage: forgeresp [-n COUNT] ADDR PORT PUBKEY\n");
	return 2;
}
