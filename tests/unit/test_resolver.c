// SPDX-License-Identifier: MIT
/*
 * The resolver child: the shapes of names the control socket accepts, when
 * a reply is taken (only for the request out, once), and a real child that
 * answers over its socketpair (a name from /etc/hosts, a literal, a
 * malformed name; a request of the wrong size gets no answer and does not
 * stop it), runs without any capability, and ends when the daemon's end
 * closes. A name that does not exist is not asked: it would go to DNS.
 */
#include "resolver.c"
#include "sandbox.c"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>

#include "test_util.h"

static void test_name_shapes(void **state)
{
	(void)state;
	assert_true(resolver_name_valid("peer.example.com:51820"));
	assert_true(resolver_name_valid("localhost:1"));
	assert_true(resolver_name_valid("my_host-2:65535"));
	assert_true(resolver_name_valid("[2001:db8::1]:51820"));
	assert_true(resolver_name_valid("[fe80::1%eth0]:51820"));
	assert_true(resolver_name_valid("192.0.2.1:51820"));

	assert_false(resolver_name_valid(""));
	assert_false(resolver_name_valid("peer.example.com"));
	assert_false(resolver_name_valid("peer.example.com:"));
	assert_false(resolver_name_valid(":51820"));
	assert_false(resolver_name_valid("peer:0"));
	assert_false(resolver_name_valid("peer:65536"));
	assert_false(resolver_name_valid("peer:+5"));
	assert_false(resolver_name_valid("peer:5x"));
	assert_false(resolver_name_valid("2001:db8::1:51820"));
	assert_false(resolver_name_valid("[2001:db8::1]51820"));
	assert_false(resolver_name_valid("[]:5"));
	assert_false(resolver_name_valid("a b:5"));
	assert_false(resolver_name_valid("a\nb:5"));
	assert_false(resolver_name_valid("a/b:5"));
}

static void test_name_too_long(void **state)
{
	char name[RESOLVER_NAME_MAX + 8];

	(void)state;
	memset(name, 'a', sizeof(name));
	strcpy(name + RESOLVER_NAME_MAX - 7, ":51820"); /* 264 + 6 bytes: fits */
	assert_true(resolver_name_valid(name));
	memset(name, 'a', sizeof(name));
	strcpy(name + RESOLVER_NAME_MAX - 6, ":51820"); /* one more: no room for the NUL */
	assert_false(resolver_name_valid(name));
}

/*
 * Replies taken only while their request is out, once: none before any
 * request, none of another generation, no second one, none after the name
 * changed. The child parses DNS answers; a child gone wrong must not move
 * a peer's endpoint when no lookup was asked.
 */
static void test_lookup_outstanding(void **state)
{
	struct resolver_lookup l = { 0 };
	struct resolver_reply rp = { .gen = 1 };

	(void)state;
	assert_false(resolver_lookup_take(&l, &rp)); /* nothing asked yet */
	rp.gen = 0;
	assert_false(resolver_lookup_take(&l, &rp)); /* not even the zero generation */
	resolver_lookup_sent(&l, 7);
	rp.gen = 6;
	assert_false(resolver_lookup_take(&l, &rp)); /* an older request's */
	rp.gen = 8;
	assert_false(resolver_lookup_take(&l, &rp)); /* one never sent */
	rp.gen = 7;
	assert_true(resolver_lookup_take(&l, &rp));
	assert_false(l.out);
	assert_false(resolver_lookup_take(&l, &rp)); /* the same reply again */
	resolver_lookup_sent(&l, 9);
	resolver_lookup_cancel(&l);
	rp.gen = 9;
	assert_false(resolver_lookup_take(&l, &rp)); /* for a name since replaced */
	resolver_lookup_sent(&l, 10);
	rp.gen = 10;
	assert_true(resolver_lookup_take(&l, &rp));
}

/*
 * The retry policy, one row a moment: a lookup is due once initiations have
 * gone unanswered for 10 s, and asked again no sooner than 15 s after the
 * last one (any time if never asked).
 */
static void test_retry_policy(void **state)
{
	static const struct {
		uint64_t since, now;
		bool due;
	} due[] = {
		{ 100 * NSEC_PER_SEC, 100 * NSEC_PER_SEC, false },
		{ 100 * NSEC_PER_SEC, 110 * NSEC_PER_SEC - 1, false },
		{ 100 * NSEC_PER_SEC, 110 * NSEC_PER_SEC, true },
		{ 100 * NSEC_PER_SEC, 500 * NSEC_PER_SEC, true },
	};
	static const struct {
		uint64_t asked, now;
		bool may;
	} ask[] = {
		{ 0, 1, true }, /* never asked */
		{ 200 * NSEC_PER_SEC, 200 * NSEC_PER_SEC, false },
		{ 200 * NSEC_PER_SEC, 215 * NSEC_PER_SEC - 1, false },
		{ 200 * NSEC_PER_SEC, 215 * NSEC_PER_SEC, true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(due) / sizeof(due[0]); i++)
		assert_int_equal(resolver_retry_due(due[i].since, due[i].now), due[i].due);
	for (i = 0; i < sizeof(ask) / sizeof(ask[0]); i++)
		assert_int_equal(resolver_may_ask(ask[i].asked, ask[i].now), ask[i].may);
}

/* One request and its reply, bounded by 10 s. */
static void ask(int fd, const char *name, uint32_t gen, struct resolver_reply *rp)
{
	struct resolver_request rq = { .gen = gen };
	struct pollfd p = { .fd = fd, .events = POLLIN };

	memset(rq.public_key, 0xab, sizeof(rq.public_key));
	snprintf(rq.name, sizeof(rq.name), "%s", name);
	assert_int_equal(send(fd, &rq, sizeof(rq), 0), sizeof(rq));
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(recv(fd, rp, sizeof(*rp), 0), sizeof(*rp));
	assert_int_equal(rp->gen, gen);
	assert_int_equal(rp->public_key[0], 0xab);
	assert_int_equal(rp->public_key[31], 0xab);
}

/* The resolver's pid: our only child. */
static pid_t child_of_us(void)
{
	char path[64], buf[256];
	FILE *f;
	pid_t pid = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(), getpid());
	f = fopen(path, "r");
	assert_non_null(f);
	if (fgets(buf, sizeof(buf), f))
		pid = (pid_t)atoi(buf);
	fclose(f);
	return pid;
}

static void test_child(void **state)
{
	struct resolver_reply rp;
	char path[64], line[256], addr[INET6_ADDRSTRLEN];
	const struct sockaddr_in *in4 = (const void *)&rp.addr;
	const struct sockaddr_in6 *in6 = (const void *)&rp.addr;
	bool caps_checked = false;
	pid_t pid;
	FILE *f;
	int fd, i;

	(void)state;
	pid_t started;

	assert_int_equal(resolver_start(&fd, &started), 0);
	pid = child_of_us();
	assert_true(pid > 0);
	assert_int_equal(pid, started);

	/* localhost is in every /etc/hosts. */
	ask(fd, "localhost:51820", 7, &rp);
	assert_int_equal(rp.err, 0);
	if (rp.addr.ss_family == AF_INET) {
		assert_int_equal(rp.len, sizeof(*in4));
		assert_int_equal(ntohs(in4->sin_port), 51820);
		inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof(addr));
		assert_string_equal(addr, "127.0.0.1");
	} else {
		assert_int_equal(rp.addr.ss_family, AF_INET6);
		assert_int_equal(rp.len, sizeof(*in6));
		assert_int_equal(ntohs(in6->sin6_port), 51820);
		assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	}
	/* A literal needs no lookup but goes the same way. */
	ask(fd, "[2001:db8::7]:9", 8, &rp);
	assert_int_equal(rp.err, 0);
	assert_int_equal(rp.addr.ss_family, AF_INET6);
	inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
	assert_string_equal(addr, "2001:db8::7");
	/*
	 * A malformed name is not even tried. (A name that does not exist
	 * would go to DNS, which a test machine may lack or answer slowly.)
	 */
	ask(fd, "not a name", 10, &rp);
	assert_int_equal(rp.err, EAI_NONAME);
	/*
	 * A datagram of the wrong size is dropped unanswered: the next reply
	 * must be the next request's (ask checks its generation).
	 */
	{
		uint8_t junk[sizeof(struct resolver_request) - 1];

		memset(junk, 0x5a, sizeof(junk));
		assert_int_equal(send(fd, junk, sizeof(junk), 0), sizeof(junk));
	}
	ask(fd, "[2001:db8::8]:9", 11, &rp);
	assert_int_equal(rp.err, 0);

	/* No capability left in the child. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		/* Never root, even when the daemon is. */
		if (!strncmp(line, "Uid:", 4))
			assert_int_not_equal(atoi(line + 5), 0);
		if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapPrm:", 7)) {
			assert_string_equal(line + 8, "0000000000000000\n");
			caps_checked = true;
		}
	}
	fclose(f);
	assert_true(caps_checked);

	/* Our end closes: the child exits (SIGCHLD is ignored, so nothing to reap). */
	close(fd);
	for (i = 0; i < 100 && kill(pid, 0) == 0; i++)
		usleep(20000);
	assert_int_not_equal(kill(pid, 0), 0);
	signal(SIGCHLD, SIG_DFL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_shapes),
		cmocka_unit_test(test_name_too_long),
		cmocka_unit_test(test_lookup_outstanding),
		cmocka_unit_test(test_retry_policy),
		cmocka_unit_test(test_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
