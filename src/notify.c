// SPDX-License-Identifier: MIT
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

bool notify_wanted(void)
{
	const char *e = getenv("NOTIFY_SOCKET");

	return e && *e;
}

/* The manager's address from $NOTIFY_SOCKET; false when unset or unusable. */
static bool notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (!e || !*e || (e[0] != '/' && e[0] != '@'))
		return false;
	n = strlen(e);
	if (n >= sizeof(sun->sun_path))
		return false;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, e, n);
	if (e[0] == '@')
		sun->sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
	return true;
}

/* One datagram, optionally passing fd along. */
static int send_dgram(const char *text, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	char copy[256];
	struct iovec iov = { .iov_base = copy };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sockaddr_un sun;
	socklen_t len;
	int s, ret = 0;

	/* Our messages are a few short lines; sendmsg wants a writable buffer. */
	iov.iov_len = (size_t)snprintf(copy, sizeof(copy), "%s", text);
	if (iov.iov_len >= sizeof(copy))
		return -EMSGSIZE;
	if (!notify_addr(&sun, &len))
		return notify_wanted() ? -EINVAL : 0;
	msg.msg_name = &sun;
	msg.msg_namelen = len;
	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		control.h.cmsg_level = SOL_SOCKET;
		control.h.cmsg_type = SCM_RIGHTS;
		control.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&control.h), &fd, sizeof(int));
	}
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
		ret = -errno;
	close(s);
	return ret;
}

int notify_send(const char *text)
{
	return send_dgram(text, -1);
}

int notify_barrier(int timeout_ms)
{
	struct pollfd p;
	int fds[2], ret;

	if (!notify_wanted())
		return 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	ret = send_dgram("BARRIER=1", fds[1]);
	close(fds[1]);
	if (!ret) {
		p = (struct pollfd){ .fd = fds[0], .events = POLLIN };
		do
			ret = poll(&p, 1, timeout_ms);
		while (ret < 0 && errno == EINTR);
		ret = ret > 0 ? 0 : ret == 0 ? -ETIMEDOUT : -errno;
	}
	close(fds[0]);
	return ret;
}
