// SPDX-License-Identifier: MIT
/*
 * A numbered UDP stream, for the namespace tests to see what a tunnel delivers:
 *   sequdp send ADDR PORT COUNT RATE [TRAIN]
 *                                      send COUNT datagrams numbered 0..COUNT-1, RATE a second;
 *                                      with TRAIN, TRAIN of them per send as one UDP_SEGMENT train
 *   sequdp recv PORT COUNT             count what arrives, print one summary line
 * The receiver prints "listening" once bound, then, when COUNT datagrams came in or
 * nothing came for 2 s (30 s at most in all):
 *   received=N unique=U duplicates=D lost=L reordered=R damaged=X overflow=O
 * "overflow" counts datagrams the kernel dropped because this socket's buffer was
 * full (SO_RXQ_OVFL): a busy receiver, not the tunnel. The buffer is 8 MB
 * (SO_RCVBUFFORCE, root) so that it rarely happens.
 * "damaged" counts datagrams whose bytes after the number are not what the
 * sender derived from it.
 * "reordered" counts datagrams numbered below the highest seen before them. Each
 * datagram carries a per-run tag so strays from another stream are not counted.
 */
#include <errno.h>
#include <netdb.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	PAYLOAD_LEN = 200,
	MAX_COUNT = 1000000,
	MAX_TRAIN = 64,
	IDLE_MS = 2000,
	TOTAL_MS = 30000,
	RECV_BUFFER = 8 * 1024 * 1024,
};

static const uint8_t tag[8] = { 's', 'e', 'q', 'u', 'd', 'p', '0', '1' };

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* Datagram seq: the tag, the number, then bytes derived from the number. */
static void fill(uint8_t *buf, long seq)
{
	for (int b = 0; b < 8; b++)
		buf[8 + b] = (uint8_t)((uint64_t)seq >> (8 * b));
	for (int b = 16; b < PAYLOAD_LEN; b++)
		buf[b] = (uint8_t)(seq * 31 + b);
}

static bool intact(const uint8_t *buf, long seq)
{
	for (int b = 16; b < PAYLOAD_LEN; b++)
		if (buf[b] != (uint8_t)(seq * 31 + b))
			return false;
	return true;
}

/* One sendmsg of n datagrams as a UDP_SEGMENT train (n 1: a plain send). */
static ssize_t send_train(int s, uint8_t *buf, size_t n)
{
	union {
		char c[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} u;
	uint16_t seg = PAYLOAD_LEN;
	struct iovec iov = { .iov_base = buf, .iov_len = n * PAYLOAD_LEN };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (n > 1) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.c;
		mh.msg_controllen = sizeof(u.c);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = IPPROTO_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
	}
	return sendmsg(s, &mh, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int do_send(const char *host, const char *port, long count, long rate, long train)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST }, *ai;
	static uint8_t buf[MAX_TRAIN * PAYLOAD_LEN];
	uint64_t start;
	long i, k, n;
	int s;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "sequdp: bad address %s\n", host);
		return 1;
	}
	s = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("sequdp connect");
		return 1;
	}
	freeaddrinfo(ai);
	start = now_ms();
	for (i = 0; i < count; i += n) {
		/* Pace: datagram i leaves no earlier than i / rate seconds after the start. */
		uint64_t due = start + (uint64_t)i * 1000 / (uint64_t)rate;

		n = count - i < train ? count - i : train;
		while (now_ms() < due)
			usleep(500);
		for (k = 0; k < n; k++) {
			memcpy(buf + k * PAYLOAD_LEN, tag, sizeof(tag));
			fill(buf + k * PAYLOAD_LEN, i + k);
		}
		/* A send error (no route yet, ICMP refused) is a loss the receiver will see. */
		if (send_train(s, buf, (size_t)n) < 0 && errno != ECONNREFUSED)
			perror("sequdp send");
	}
	close(s);
	printf("sent=%ld\n", count);
	return 0;
}

/* One datagram; *overflow becomes the socket's drop count when the kernel says it. */
static ssize_t recv_counted(int s, uint8_t *buf, size_t len, uint32_t *overflow)
{
	union {
		char c[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c,
			     .msg_controllen = sizeof(u.c) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(s, &mh, 0);

	for (c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
			memcpy(overflow, CMSG_DATA(c), sizeof(*overflow));
	return n;
}

static int do_recv(const char *port, long count)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
	long received = 0, unique = 0, dups = 0, reordered = 0, damaged = 0, highest = -1;
	uint64_t start, last;
	uint8_t buf[2048], *seen;
	int s, zero = 0, one = 1, size = RECV_BUFFER;
	uint32_t overflow = 0;

	seen = calloc((size_t)count, 1);
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	if (!seen || s < 0) {
		free(seen);
		return 1;
	}
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(s, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("sequdp bind");
		free(seen);
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	start = last = now_ms();
	while (unique < count && now_ms() - start < TOTAL_MS &&
	       (received == 0 || now_ms() - last < IDLE_MS)) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;
		long seq = 0;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv_counted(s, buf, sizeof(buf), &overflow);
		if (n != PAYLOAD_LEN || memcmp(buf, tag, sizeof(tag)) != 0)
			continue;
		for (int b = 7; b >= 0; b--)
			seq = seq << 8 | buf[8 + b];
		if (seq < 0 || seq >= count)
			continue;
		received++;
		last = now_ms();
		if (!intact(buf, seq))
			damaged++;
		if (seen[seq]) {
			dups++;
			continue;
		}
		seen[seq] = 1;
		unique++;
		if (seq < highest)
			reordered++;
		else
			highest = seq;
	}
	printf("received=%ld unique=%ld duplicates=%ld lost=%ld reordered=%ld damaged=%ld overflow=%u\n",
	       received, unique, dups, count - unique, reordered, damaged, overflow);
	free(seen);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "send")) {
		long count = atol(argv[4]), rate = atol(argv[5]), train = argc == 7 ? atol(argv[6]) : 1;

		if (count > 0 && count <= MAX_COUNT && rate > 0 && train > 0 && train <= MAX_TRAIN)
			return do_send(argv[2], argv[3], count, rate, train);
	}
	if (argc == 4 && !strcmp(argv[1], "recv")) {
		long count = atol(argv[3]);

		if (count > 0 && count <= MAX_COUNT)
			return do_recv(argv[2], count);
	}
	fprintf(stderr, "usage: sequdp send ADDR PORT COUNT RATE [TRAIN] | sequdp recv PORT COUNT\n");
	return 2;
}
