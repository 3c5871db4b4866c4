// SPDX-License-Identifier: MIT
/*
 * A bad network for the namespace tests, in user space: a UDP relay between two
 * WireGuard endpoints that drops, duplicates, delays and reorders datagrams the way
 * netem's "loss L% duplicate D% reorder R% delay Tms" does, for kernels built
 * without sch_netem.
 *   udpmangle [-l LOSS] [-d DUP] [-r REORDER] [-D DELAY_MS] [-t SECONDS]
 *             A_SIDE_ADDR A_SIDE_PORT A_ADDR A_PORT B_SIDE_ADDR B_SIDE_PORT B_ADDR B_PORT
 * (percentages). What arrives on A_SIDE (from A) leaves from B_SIDE to B; what
 * arrives on B_SIDE leaves from A_SIDE to A. Each datagram is dropped with
 * probability LOSS, else sent twice with probability DUP; each copy goes out at
 * once with probability REORDER and otherwise after DELAY_MS, so that it overtakes
 * the delayed ones before it (netem's reordering). Runs SECONDS (default 120) or
 * until SIGTERM, then prints per direction:
 *   a->b: in=N lost=L duplicated=D reordered=R
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

enum {
	QUEUE_LEN = 8192,
	MAX_DGRAM = 2048,
	BURST = 64,
};

struct delayed {
	uint64_t due;
	int dir;
	size_t len;
	uint8_t buf[MAX_DGRAM];
};

struct side {
	int fd;                 /* bound at X_SIDE: receives from X, sends to X */
	struct sockaddr_in to;  /* X itself */
	unsigned long in, lost, duplicated, reordered;
};

static struct side sides[2];
static struct delayed *queue; /* FIFO: every delayed copy waits the same time */
static size_t qhead, qlen;
static unsigned int loss, duplicate, reorder;
static uint64_t delay_ns;
static volatile sig_atomic_t stop;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool chance(unsigned int percent)
{
	return randombytes_uniform(100) < percent;
}

/* Send on side out (to its remote); errors are a loss like any other. */
static void emit(int out, const uint8_t *buf, size_t len)
{
	sendto(sides[out].fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&sides[out].to,
	       sizeof(sides[out].to));
}

static void one_copy(struct side *in, int out, const uint8_t *buf, size_t len)
{
	struct delayed *d;

	if (!delay_ns || chance(reorder)) {
		if (delay_ns)
			in->reordered++;
		emit(out, buf, len);
		return;
	}
	if (qlen == QUEUE_LEN) {
		in->lost++;
		return;
	}
	d = &queue[(qhead + qlen++) % QUEUE_LEN];
	d->due = now_ns() + delay_ns;
	d->dir = out;
	d->len = len;
	memcpy(d->buf, buf, len);
}

/* A datagram arrived on side i: it goes out of the other side. */
static void mangle(int i, const uint8_t *buf, size_t len)
{
	struct side *in = &sides[i];

	in->in++;
	if (chance(loss)) {
		in->lost++;
		return;
	}
	one_copy(in, !i, buf, len);
	if (chance(duplicate)) {
		in->duplicated++;
		one_copy(in, !i, buf, len);
	}
}

static void flush_due(void)
{
	uint64_t t = now_ns();

	while (qlen && queue[qhead].due <= t) {
		emit(queue[qhead].dir, queue[qhead].buf, queue[qhead].len);
		qhead = (qhead + 1) % QUEUE_LEN;
		qlen--;
	}
}

static void relay(double seconds)
{
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
	uint8_t buf[MAX_DGRAM];

	while (!stop && now_ns() < end) {
		struct pollfd p[2] = { { .fd = sides[0].fd, .events = POLLIN },
				       { .fd = sides[1].fd, .events = POLLIN } };
		struct timespec ts = { .tv_nsec = 100000000 };

		if (qlen) {
			uint64_t t = now_ns(), due = queue[qhead].due;

			ts.tv_nsec = due > t ? (long)(due - t) : 0;
		}
		if (ppoll(p, 2, &ts, NULL) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			for (int n = 0; n < BURST; n++) {
				ssize_t r = recv(sides[i].fd, buf, sizeof(buf), MSG_DONTWAIT);

				if (r < 0)
					break;
				mangle(i, buf, (size_t)r);
			}
		}
		flush_due();
	}
	printf("a->b: in=%lu lost=%lu duplicated=%lu reordered=%lu\n", sides[0].in, sides[0].lost,
	       sides[0].duplicated, sides[0].reordered);
	printf("b->a: in=%lu lost=%lu duplicated=%lu reordered=%lu\n", sides[1].in, sides[1].lost,
	       sides[1].duplicated, sides[1].reordered);
}

static int addr(struct sockaddr_in *sa, const char *host, const char *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(port));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int open_side(struct side *s, char **a)
{
	struct sockaddr_in local;
	int size = 4 << 20;

	if (addr(&local, a[0], a[1]) || addr(&s->to, a[2], a[3]))
		return -1;
	s->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return bind(s->fd, (struct sockaddr *)&local, sizeof(local));
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	double seconds = 120;
	int opt;

	while ((opt = getopt(argc, argv, "l:d:r:D:t:")) != -1) {
		switch (opt) {
		case 'l': loss = (unsigned int)atoi(optarg); break;
		case 'd': duplicate = (unsigned int)atoi(optarg); break;
		case 'r': reorder = (unsigned int)atoi(optarg); break;
		case 'D': delay_ns = (uint64_t)(atof(optarg) * 1e6); break;
		case 't': seconds = atof(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 8)
		goto usage;
	if (sodium_init() < 0 || !(queue = calloc(QUEUE_LEN, sizeof(*queue))))
		return 1;
	if (open_side(&sides[0], argv + optind) || open_side(&sides[1], argv + optind + 4)) {
		perror("udpmangle");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("relaying\n");
	fflush(stdout);
	relay(seconds);
	return 0;
usage:
	fprintf(stderr, "usage: udpmangle [-l LOSS] [-d DUP] [-r REORDER] [-D DELAY_MS] [-t SECONDS]\n"
			"       A_SIDE_ADDR A_SIDE_PORT A_ADDR A_PORT B_SIDE_ADDR B_SIDE_PORT B_ADDR B_PORT\n");
	return 2;
}
