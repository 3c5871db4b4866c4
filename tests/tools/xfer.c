// SPDX-License-Identifier: MIT
/*
 * A TCP transfer with a checksum at both ends, for the namespace tests:
 *   xfer recv PORT            listen once (IPv4 and IPv6), print "BYTES HASH"
 *   xfer send ADDR PORT MB [SECONDS]
 *                             send MB megabytes of seeded pseudo-random data, print "BYTES HASH";
 *                             with SECONDS, paced to take at least that long
 * The hash is BLAKE2b-256 (libsodium's generichash) of every byte sent or received.
 * Both ends give up after 120 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static void print_result(unsigned long long bytes, crypto_generichash_state *st)
{
	unsigned char h[32];
	char hex[65];

	crypto_generichash_final(st, h, sizeof(h));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	printf("%llu %s\n", bytes, hex);
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 120 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int do_recv(const char *port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
	crypto_generichash_state st;
	unsigned long long total = 0;
	static unsigned char buf[65536];
	int s, c, zero = 0, one = 1;
	ssize_t n;

	s = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	set_timeouts(s);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
		perror("xfer recv");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	c = accept(s, NULL, NULL);
	if (c < 0) {
		perror("xfer accept");
		return 1;
	}
	set_timeouts(c);
	crypto_generichash_init(&st, NULL, 0, 32);
	while ((n = read(c, buf, sizeof(buf))) > 0) {
		crypto_generichash_update(&st, buf, (unsigned long long)n);
		total += (unsigned long long)n;
	}
	if (n < 0) {
		perror("xfer read");
		return 1;
	}
	print_result(total, &st);
	return 0;
}

/* Sleep until sent bytes are due, when the whole should take secs seconds. */
static void pace(unsigned long long sent, unsigned long long total, double secs,
		 const struct timespec *t0)
{
	struct timespec now, due;
	double at = secs * (double)sent / (double)total, el;

	clock_gettime(CLOCK_MONOTONIC, &now);
	el = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
	if (at <= el)
		return;
	due.tv_sec = (time_t)(at - el);
	due.tv_nsec = (long)((at - el - (double)due.tv_sec) * 1e9);
	nanosleep(&due, NULL);
}

static int do_send(const char *host, const char *port, const char *mb, double secs)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST }, *ai;
	unsigned long long total = strtoull(mb, NULL, 10) << 20, sent = 0;
	unsigned char buf[65536], seed[randombytes_SEEDBYTES] = { 7 };
	crypto_generichash_state st;
	struct timespec t0;
	int s;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "xfer: bad address %s\n", host);
		return 1;
	}
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	set_timeouts(s);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("xfer connect");
		return 1;
	}
	freeaddrinfo(ai);
	crypto_generichash_init(&st, NULL, 0, 32);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < total) {
		size_t n = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf), off = 0;

		seed[1] = (unsigned char)(sent >> 16);
		seed[2] = (unsigned char)(sent >> 24);
		randombytes_buf_deterministic(buf, n, seed);
		while (off < n) {
			ssize_t w = write(s, buf + off, n - off);

			if (w < 0) {
				perror("xfer write");
				return 1;
			}
			off += (size_t)w;
		}
		crypto_generichash_update(&st, buf, n);
		sent += n;
		if (secs > 0)
			pace(sent, total, secs, &t0);
	}
	shutdown(s, SHUT_WR);
	{
		char tmp[16];

		while (read(s, tmp, sizeof(tmp)) > 0)
			;
	}
	close(s);
	print_result(sent, &st);
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	if (argc == 3 && !strcmp(argv[1], "recv"))
		return do_recv(argv[2]);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "send"))
		return do_send(argv[2], argv[3], argv[4], argc == 6 ? strtod(argv[5], NULL) : 0);
	fprintf(stderr, "usage: xfer recv PORT | xfer send ADDR PORT MB [SECONDS]\n");
	return 2;
}
