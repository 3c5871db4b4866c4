// SPDX-License-Identifier: MIT
/*
 * One control-socket request sent slowly, for the namespace tests:
 *   uapislow SOCKET < REQUEST
 * sends REQUEST (read from standard input) as it is, except that a line
 * "@pause" is not sent: there the tool waits 300 ms, so the daemon reads
 * what came before it on its own and must keep a half-done request across
 * reads. Prints the reply (up to the empty line that ends it, 5 s at most)
 * and exits 0 only if the reply is "errno=0".
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { REPLY_MAX = 65536, WAIT_MS = 5000 };

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, "uapislow: socket path too long\n");
		return -1;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("uapislow: connect");
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static int send_request(int s)
{
	char line[4096];
	const struct timespec pause = { 0, 300L * 1000 * 1000 };

	while (fgets(line, sizeof(line), stdin)) {
		size_t n = strlen(line);

		if (strcmp(line, "@pause\n") == 0) {
			nanosleep(&pause, NULL);
			continue;
		}
		if (send(s, line, n, MSG_NOSIGNAL) != (ssize_t)n) {
			perror("uapislow: send");
			return -1;
		}
	}
	return 0;
}

/* Read until the reply's empty line, EOF or WAIT_MS; returns its length. */
static size_t read_reply(int s, char *buf, size_t cap)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	size_t len = 0;

	while (len + 1 < cap && !strstr(buf, "\n\n")) {
		ssize_t r;

		if (poll(&p, 1, WAIT_MS) <= 0)
			break;
		r = recv(s, buf + len, cap - 1 - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
	}
	return len;
}

int main(int argc, char **argv)
{
	static char reply[REPLY_MAX];
	int s;

	if (argc != 2) {
		fprintf(stderr, "usage: uapislow SOCKET < REQUEST\n");
		return 2;
	}
	s = connect_to(argv[1]);
	if (s < 0)
		return 1;
	if (send_request(s)) {
		close(s);
		return 1;
	}
	read_reply(s, reply, sizeof(reply));
	close(s);
	fputs(reply[0] ? reply : "(no reply)\n", stdout);
	return strncmp(reply, "errno=0\n", 8) == 0 ? 0 : 1;
}
