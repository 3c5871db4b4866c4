// SPDX-License-Identifier: MIT
/*
 * The resolver child (resolver.h), and the retry policy that says when the
 * daemon asks it (src/events.c sends the requests). Teardown: the daemon
 * closes its end of the socketpair (or dies, and PR_SET_PDEATHSIG ends the
 * child); the child's recv returns 0 and it exits. SIGCHLD is ignored in
 * the daemon, so the child never lingers as a zombie.
 */
#include "resolver.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/messages.h"
#include "sandbox.h"

enum { CHILD_FD = 3 };

/* Split "host:port" or "[v6]:port" in place: host and port point into buf. */
static bool split(char *buf, char **host, char **port)
{
	char *colon;

	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close || close[1] != ':' || close == buf + 1)
			return false;
		*close = '\0';
		*host = buf + 1;
		*port = close + 2;
		return true;
	}
	colon = strchr(buf, ':');
	if (!colon || colon == buf || strchr(colon + 1, ':'))
		return false;
	*colon = '\0';
	*host = buf;
	*port = colon + 1;
	return true;
}

static bool port_valid(const char *p)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)p[0]))
		return false;
	errno = 0;
	v = strtoul(p, &end, 10);
	return !errno && !*end && v >= 1 && v <= 65535;
}

bool resolver_name_valid(const char *name)
{
	char buf[RESOLVER_NAME_MAX], *host, *port;
	size_t len = strnlen(name, sizeof(buf)), i;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, name, len + 1);
	if (!split(buf, &host, &port) || !port_valid(port))
		return false;
	/* Letters, digits and what names and addresses use; no spaces, no controls. */
	for (i = 0; host[i]; i++)
		if (!isalnum((unsigned char)host[i]) && !strchr(".-_:%", host[i]))
			return false;
	return true;
}

bool resolver_retry_due(uint64_t unanswered_since, uint64_t now)
{
	return now - unanswered_since >= (uint64_t)RESOLVER_AFTER_SEC * NSEC_PER_SEC;
}

bool resolver_may_ask(uint64_t asked, uint64_t now)
{
	return !asked || now - asked >= (uint64_t)RESOLVER_INTERVAL_SEC * NSEC_PER_SEC;
}

void resolver_lookup_sent(struct resolver_lookup *l, uint32_t gen)
{
	l->gen = gen;
	l->out = true;
}

void resolver_lookup_cancel(struct resolver_lookup *l)
{
	l->out = false;
}

bool resolver_lookup_take(struct resolver_lookup *l, const struct resolver_reply *rp)
{
	if (!l->out || rp->gen != l->gen)
		return false;
	l->out = false;
	return true;
}

/* The first address getaddrinfo gives, whichever family, as wg(8) and veilctl take it. */
static void lookup(const struct resolver_request *rq, struct resolver_reply *rp)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV }, *ai, *a;
	char buf[RESOLVER_NAME_MAX], *host, *port;

	memset(rp, 0, sizeof(*rp));
	rp->gen = rq->gen;
	memcpy(rp->public_key, rq->public_key, sizeof(rp->public_key));
	memcpy(buf, rq->name, sizeof(buf));
	buf[sizeof(buf) - 1] = '\0';
	if (!resolver_name_valid(buf) || !split(buf, &host, &port)) {
		rp->err = EAI_NONAME;
		return;
	}
	rp->err = getaddrinfo(host, port, &hints, &ai);
	if (rp->err)
		return;
	rp->err = EAI_FAMILY;
	for (a = ai; a; a = a->ai_next) {
		if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
		    a->ai_addrlen <= sizeof(rp->addr)) {
			memcpy(&rp->addr, a->ai_addr, a->ai_addrlen);
			rp->len = (uint32_t)a->ai_addrlen;
			rp->err = 0;
			break;
		}
	}
	freeaddrinfo(ai);
}

static void __attribute__((noreturn)) child_main(void)
{
	struct resolver_request rq;
	struct resolver_reply rp;

	for (;;) {
		ssize_t n = recv(CHILD_FD, &rq, sizeof(rq), 0);

		if (n == 0)
			_exit(0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		if ((size_t)n != sizeof(rq))
			continue;
		lookup(&rq, &rp);
		if (send(CHILD_FD, &rp, sizeof(rp), MSG_NOSIGNAL) < 0 && errno != EINTR)
			_exit(1);
	}
}

/*
 * In the child: keep only our end of the socketpair (as fd 3), stdin,
 * stdout and stderr; never outlive the daemon; give up every privilege
 * (root's uid included).
 */
static void __attribute__((noreturn)) child_start(int fd, pid_t parent)
{
	sigset_t all;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(0);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_NAME, "veild-resolver");
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
		_exit(1);
	if (close_range(CHILD_FD + 1, ~0U, 0) < 0)
		_exit(1);
	if (sandbox_resolver() < 0)
		_exit(1);
	child_main();
}

int resolver_start(int *fd, pid_t *child)
{
	pid_t parent = getpid(), pid;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Our child exits on its own; nobody waits for it. */
	signal(SIGCHLD, SIG_IGN);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (pid == 0) {
		close(sv[0]);
		child_start(sv[1], parent);
	}
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		ret = -errno;
		close(sv[0]);
		return ret;
	}
	*fd = sv[0];
	*child = pid;
	return 0;
}
