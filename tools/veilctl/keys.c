// SPDX-License-Identifier: MIT
/*
 * Keys from outside the configuration file (keys.h): a key file that only
 * its owner may read, a systemd credential, or a command's output. Each
 * holds one base64 key; every buffer that saw it is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

enum { KEY_TEXT_MAX = 256, COMMAND_OUTPUT_MAX = 4096 };

/* A command that runs longer than this is killed (a test lowers it). */
static unsigned int command_timeout_ms = 30000;

/* One base64 key with whitespace around it, and nothing else. */
static int key_from_text(char *text, size_t len, uint8_t out[static 32])
{
	size_t start = 0;

	while (len && strchr(" \t\r\n", text[len - 1]))
		len--;
	while (start < len && strchr(" \t\r\n", text[start]))
		start++;
	text[len] = '\0';
	return conf_parse_key(text + start, out);
}

/* Read a whole small file from fd into buf (wiped by the caller). */
static ssize_t read_small(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* strict: refuse a file that group or others may use (OpenSSH's rule for keys). */
static int key_from_path(const char *path, bool strict, uint8_t out[static 32], char *why,
			 size_t whylen)
{
	char buf[KEY_TEXT_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "%s: %s", path, errno == ELOOP ? "is a symbolic link" : strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		ret = -EINVAL;
		goto out;
	}
	if ((strict && (st.st_mode & 077)) || (st.st_mode & 022)) {
		snprintf(why, whylen, "%s is %s by group or others (chmod 600 it)", path,
			 strict ? "readable" : "writable");
		ret = -EPERM;
		goto out;
	}
	n = read_small(fd, buf, KEY_TEXT_MAX);
	ret = n < 0 ? (int)n : key_from_text(buf, (size_t)n, out);
	if (ret)
		snprintf(why, whylen, "%s does not hold one base64 key of 32 bytes", path);
	sodium_memzero(buf, sizeof(buf));
out:
	close(fd);
	return ret;
}

int key_from_file(const char *path, uint8_t out[static 32], char *why, size_t whylen)
{
	return key_from_path(path, true, out, why, whylen);
}

int key_from_credential(const char *name, uint8_t out[static 32], char *why, size_t whylen)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096];

	if (!dir || !*dir) {
		snprintf(why, whylen, "no $CREDENTIALS_DIRECTORY: not started by systemd with LoadCredential=");
		return -ENOENT;
	}
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
		snprintf(why, whylen, "a credential name has no '/'");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/* systemd makes credentials 0400 for the service's user: no stricter check. */
	return key_from_path(path, false, out, why, whylen);
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Collect the child's output until it closes stdout or the time is up. */
static ssize_t collect(int fd, char *buf, size_t cap, const struct timespec *t0)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	for (;;) {
		long left = (long)command_timeout_ms - elapsed_ms(t0);
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : (ssize_t)got;
		got += (size_t)n;
		if (got == cap)
			return -E2BIG;
	}
}

static pid_t spawn(const char *command, int out_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, 0);
		dup2(out_fd, 1);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Wait for the child: at most what is left of the time, then kill it. */
static int reap(pid_t pid, const struct timespec *t0, int *status)
{
	while (elapsed_ms(t0) < (long)command_timeout_ms) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -ETIMEDOUT;
}

int key_from_command(const char *command, uint8_t out[static 32], char *why, size_t whylen)
{
	char buf[COMMAND_OUTPUT_MAX + 1];
	struct timespec t0;
	int fds[2], status = 0, ret;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = spawn(command, fds[1]);
	close(fds[1]);
	if (pid < 0) {
		ret = -errno;
		close(fds[0]);
		snprintf(why, whylen, "cannot run the command: %s", strerror(-ret));
		return ret;
	}
	n = collect(fds[0], buf, COMMAND_OUTPUT_MAX, &t0);
	close(fds[0]);
	ret = reap(pid, &t0, &status);
	if (n == -ETIMEDOUT || ret == -ETIMEDOUT) {
		snprintf(why, whylen, "command did not finish within %u ms", command_timeout_ms);
		ret = -ETIMEDOUT;
	} else if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		snprintf(why, whylen, "command exited with status %d",
			 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		ret = -ECHILD;
	} else if (!ret && (n < 0 || key_from_text(buf, (size_t)n, out))) {
		snprintf(why, whylen, "command output is not a base64 key of 32 bytes");
		ret = -EINVAL;
	}
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

static const char *source_key_name(enum conf_key_source src, bool private)
{
	switch (src) {
	case KEYSRC_FILE:
		return private ? "PrivateKeyFile" : "PresharedKeyFile";
	case KEYSRC_CREDENTIAL:
		return private ? "PrivateKeyCredential" : "PresharedKeyCredential";
	case KEYSRC_COMMAND:
		return "PrivateKeyCommand";
	default:
		return private ? "PrivateKey" : "PresharedKey";
	}
}

static int load_one(const struct conf *c, struct conf_key *k, bool private, struct conf_error *err)
{
	char why[512] = "";
	int ret;

	if (k->source == KEYSRC_NONE || k->source == KEYSRC_INLINE)
		return 0;
	k->key = sodium_malloc(32);
	if (!k->key) {
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", c->path);
		return -ENOMEM;
	}
	if (k->source == KEYSRC_FILE)
		ret = key_from_file(k->arg, k->key, why, sizeof(why));
	else if (k->source == KEYSRC_CREDENTIAL)
		ret = key_from_credential(k->arg, k->key, why, sizeof(why));
	else
		ret = key_from_command(k->arg, k->key, why, sizeof(why));
	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "%.200s:%u: %s: %s", c->path, k->line,
			 source_key_name(k->source, private), why);
		sodium_free(k->key);
		k->key = NULL;
	}
	return ret;
}

int keys_load(struct conf *c, struct conf_error *err)
{
	size_t i;
	int ret = load_one(c, &c->private_key, true, err);

	for (i = 0; !ret && i < c->n_peers; i++)
		ret = load_one(c, &c->peers[i].psk, false, err);
	return ret;
}
