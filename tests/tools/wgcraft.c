// SPDX-License-Identifier: MIT
/*
 * Handshake initiations that must be refused, for the namespace tests:
 *   wgcraft [-k KEYFILE] [-a SECONDS] [-c] [-n COUNT] ADDR PORT PUBKEY
 * crafts COUNT (default 4) real initiations to the interface whose base64 public
 * key is PUBKEY, with the protocol core (noise_create_initiation, then
 * cookie_add_macs for a valid mac1), sends them 50 ms apart and listens for one
 * second after the last.
 *   default  a fresh random identity: a peer the responder does not know
 *   -k FILE  the identity whose base64 private key is in FILE (a known peer)
 *   -a SECS  a timestamp SECS seconds old: a replay by the rules of 5.1
 *   -c       one bit of the encrypted static key flipped before mac1 is
 *            computed: mac1 holds, the AEAD does not
 * One line: sent=N responses=R cookies=C other=O. A handshake response
 * (type 2) means the responder accepted a message it must refuse: exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
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
	MAX_COUNT = 64,
	GAP_MS = 50,
	LISTEN_MS = 1000,
};

struct opts {
	const char *keyfile;
	uint64_t age_sec;
	bool corrupt;
	int count;
};

struct tally {
	unsigned long long sent, responses, cookies, other;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int read_key(const char *path, uint8_t key[static 32])
{
	char text[128];
	size_t len, keylen;
	int fd = open(path, O_RDONLY), ret = -EINVAL;
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		goto out;
	len = (size_t)n;
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	if (!sodium_base642bin(key, 32, text, len, NULL, &keylen, NULL,
			       sodium_base64_VARIANT_ORIGINAL) && keylen == 32)
		ret = 0;
out:
	sodium_memzero(text, sizeof(text));
	return ret;
}

/* Fill msg with one initiation to remote_pub as o says. */
static int craft(const struct opts *o, const uint8_t remote_pub[static 32],
		 uint8_t msg[static INITIATION_LEN])
{
	struct noise_static_identity id;
	struct noise_handshake hs;
	struct cookie_maker maker;
	struct index_table *idx = index_table_new();
	uint8_t priv[32];
	int ret = -ENOMEM;

	if (!idx)
		return ret;
	if (o->keyfile) {
		ret = read_key(o->keyfile, priv);
		if (ret)
			goto out;
	} else {
		randombytes_buf(priv, sizeof(priv));
	}
	noise_identity_set(&id, priv);
	noise_handshake_init(&hs, &id, remote_pub, NULL, NULL);
	cookie_maker_init(&maker, remote_pub);
	ret = noise_create_initiation(&hs, &id, idx, msg,
				      now_ns(CLOCK_REALTIME) - o->age_sec * NSEC_PER_SEC,
				      &wg_rng_system);
	if (ret)
		goto out;
	if (o->corrupt)
		msg[INITIATION_STATIC] ^= 0x01;
	cookie_add_macs(&maker, msg, INITIATION_LEN, now_ns(CLOCK_MONOTONIC));
out:
	noise_handshake_clear(&hs, idx);
	index_table_free(idx);
	sodium_memzero(&id, sizeof(id));
	sodium_memzero(priv, sizeof(priv));
	return ret;
}

static void listen_for(struct tally *t, int s, int ms)
{
	uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * NSEC_PER_MSEC, now;
	uint8_t buf[2048];

	while ((now = now_ns(CLOCK_MONOTONIC)) < end) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, (int)((end - now) / NSEC_PER_MSEC) + 1) <= 0)
			continue;
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			continue;
		switch (message_type_of(buf, (size_t)n)) {
		case MESSAGE_HANDSHAKE_RESPONSE:
			t->responses++;
			break;
		case MESSAGE_HANDSHAKE_COOKIE:
			t->cookies++;
			break;
		default:
			t->other++;
		}
	}
}

static int open_socket(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST }, *ai;
	int s;

	if (getaddrinfo(host, port, &hints, &ai)) {
		fprintf(stderr, "wgcraft: bad address %s\n", host);
		return -1;
	}
	s = socket(ai->ai_family, SOCK_DGRAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("wgcraft: connect");
		s = -1;
	}
	freeaddrinfo(ai);
	return s;
}

int main(int argc, char **argv)
{
	struct opts o = { .count = 4 };
	struct tally t = { 0 };
	uint8_t pub[32], msg[INITIATION_LEN];
	size_t publen;
	int opt, s;

	while ((opt = getopt(argc, argv, "k:a:cn:")) != -1) {
		if (opt == 'k')
			o.keyfile = optarg;
		else if (opt == 'a')
			o.age_sec = (uint64_t)atoll(optarg);
		else if (opt == 'c')
			o.corrupt = true;
		else if (opt == 'n')
			o.count = atoi(optarg);
		else
			goto usage;
	}
	if (argc - optind != 3 || o.count < 1 || o.count > MAX_COUNT)
		goto usage;
	if (sodium_init() < 0)
		return 1;
	if (sodium_base642bin(pub, sizeof(pub), argv[optind + 2], strlen(argv[optind + 2]), NULL,
			      &publen, NULL, sodium_base64_VARIANT_ORIGINAL) || publen != 32) {
		fprintf(stderr, "wgcraft: bad public key\n");
		return 2;
	}
	s = open_socket(argv[optind], argv[optind + 1]);
	if (s < 0)
		return 1;
	for (int i = 0; i < o.count; i++) {
		if (craft(&o, pub, msg)) {
			fprintf(stderr, "wgcraft: cannot craft an initiation\n");
			return 1;
		}
		if (send(s, msg, sizeof(msg), 0) == (ssize_t)sizeof(msg))
			t.sent++;
		listen_for(&t, s, GAP_MS);
	}
	listen_for(&t, s, LISTEN_MS);
	printf("sent=%llu responses=%llu cookies=%llu other=%llu\n", t.sent, t.responses,
	       t.cookies, t.other);
	close(s);
	return t.sent == (unsigned long long)o.count && !t.responses ? 0 : 1;
usage:
	fprintf(stderr, "usage: wgcraft [-k KEYFILE] [-a SECONDS] [-c] [-n COUNT] ADDR PORT PUBKEY\n");
	return 2;
}
