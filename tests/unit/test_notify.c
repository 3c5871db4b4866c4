// SPDX-License-Identifier: MIT
/*
 * The systemd notification client against a socket of our own: a path and
 * an abstract name, the text arriving as one datagram, the barrier that
 * returns once the fd it carried is closed and times out when nobody reads,
 * and a no-op without $NOTIFY_SOCKET.
 */
#include "notify.c"

#include <pthread.h>
#include <stdio.h>

#include "test_util.h"

/* A datagram socket bound to name ("/path" or "@abstract"). */
static int manager(const char *name)
{
	struct sockaddr_un sun;
	socklen_t len;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_true(notify_addr(&sun, &len));
	assert_int_equal(bind(s, (struct sockaddr *)&sun, len), 0);
	return s;
}

static void receive(int s, char *buf, size_t cap, int *fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(s, &msg, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	*fd = -1;
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
}

static void test_send_path_and_abstract(void **state)
{
	char path[64], buf[256], abstract[64];
	int s, fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/veil-notify-%d.sock", (int)getpid());
	unlink(path);
	s = manager(path);
	assert_true(notify_wanted());
	assert_int_equal(notify_send("READY=1\nSTATUS=up\n"), 0);
	receive(s, buf, sizeof(buf), &fd);
	assert_string_equal(buf, "READY=1\nSTATUS=up\n");
	assert_int_equal(fd, -1);
	close(s);
	unlink(path);

	snprintf(abstract, sizeof(abstract), "@veil-notify-%d", (int)getpid());
	s = manager(abstract);
	assert_int_equal(notify_send("MAINPID=42\n"), 0);
	receive(s, buf, sizeof(buf), &fd);
	assert_string_equal(buf, "MAINPID=42\n");
	close(s);
	/* Nobody listens any more: the error comes back. */
	assert_int_equal(notify_send("READY=1\n"), -ECONNREFUSED);
}

struct closer {
	int s;
	char got[64];
};

/* The manager's side of a barrier: read the message, close the fd it carried. */
static void *close_barrier(void *arg)
{
	struct closer *c = arg;
	struct pollfd p = { .fd = c->s, .events = POLLIN };
	int fd;

	if (poll(&p, 1, 5000) != 1)
		return NULL;
	receive(c->s, c->got, sizeof(c->got), &fd);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_barrier(void **state)
{
	char name[64];
	struct closer c;
	pthread_t t;

	(void)state;
	snprintf(name, sizeof(name), "@veil-barrier-%d", (int)getpid());
	c.s = manager(name);
	c.got[0] = '\0';
	assert_int_equal(pthread_create(&t, NULL, close_barrier, &c), 0);
	assert_int_equal(notify_barrier(5000), 0);
	pthread_join(t, NULL);
	assert_string_equal(c.got, "BARRIER=1");
	/* Nobody reads: the barrier gives up in time. */
	assert_int_equal(notify_barrier(100), -ETIMEDOUT);
	close(c.s);
}

static void test_unset_and_bad(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_false(notify_wanted());
	assert_int_equal(notify_send("READY=1\n"), 0);
	assert_int_equal(notify_barrier(10), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1\n"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_path_and_abstract),
		cmocka_unit_test(test_barrier),
		cmocka_unit_test(test_unset_and_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
