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
#include <spawn.h>
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

/*
 * What a secret's text must be: one base64 key, or a registry password.
 * decode gets the whole text (wiped by the caller) and fills out.
 */
struct decoder {
	int (*decode)(char *text, size_t len, void *out);
	void *out;
	const char *what; /* "one base64 key of 32 bytes" */
};

/* Not strchr(" \t\r\n", c): that finds the terminator for a NUL, and a NUL is no whitespace. */
static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One base64 key with whitespace around it, and nothing else (not even a NUL). */
static int key_from_text(char *text, size_t len, uint8_t out[static 32])
{
	size_t start = 0;

	while (len && blank(text[len - 1]))
		len--;
	while (start < len && blank(text[start]))
		start++;
	if (memchr(text + start, '\0', len - start))
		return -EINVAL;
	text[len] = '\0';
	return conf_parse_key(text + start, out);
}

static int decode_key(char *text, size_t len, void *out)
{
	return key_from_text(text, len, out);
}

/*
 * A password: one line of 1-255 bytes without NUL or control characters,
 * whitespace around it ignored; out is a char ** that gets it in locked
 * memory.
 */
static int decode_password(char *text, size_t len, void *out)
{
	size_t start = 0, i;
	char *p;

	while (len && blank(text[len - 1]))
		len--;
	while (start < len && (text[start] == ' ' || text[start] == '\t'))
		start++;
	if (start == len || len - start > 255)
		return -EINVAL;
	for (i = start; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return -EINVAL;
	p = sodium_malloc(len - start + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, text + start, len - start);
	p[len - start] = '\0';
	*(char **)out = p;
	return 0;
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
static int secret_from_path(const char *path, bool strict, const struct decoder *d, char *why,
			    size_t whylen)
{
	char buf[KEY_TEXT_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP)
			snprintf(why, whylen, "%s is a symbolic link (name the file itself)", path);
		else
			snprintf(why, whylen, "%s: %s", path, strerror(-ret));
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
	/* Its owner may read it and put another key in: root or we ourselves only. */
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(why, whylen, "%s belongs to uid %u, not to root (chown root it)", path,
			 (unsigned int)st.st_uid);
		ret = -EPERM;
		goto out;
	}
	if (st.st_size > KEY_TEXT_MAX) {
		snprintf(why, whylen, "%s is larger than %d bytes: not a key file", path, KEY_TEXT_MAX);
		ret = -EFBIG;
		goto out;
	}
	n = read_small(fd, buf, KEY_TEXT_MAX);
	ret = n < 0 ? (int)n : d->decode(buf, (size_t)n, d->out);
	if (ret)
		snprintf(why, whylen, "%s does not hold %s", path, d->what);
	sodium_memzero(buf, sizeof(buf));
out:
	close(fd);
	return ret;
}

static const char KEY_WHAT[] = "one base64 key of 32 bytes";

int key_from_file(const char *path, uint8_t out[static 32], char *why, size_t whylen)
{
	struct decoder d = { decode_key, out, KEY_WHAT };

	return secret_from_path(path, true, &d, why, whylen);
}

static int secret_from_credential(const char *name, const struct decoder *d, char *why,
				  size_t whylen)
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
	return secret_from_path(path, false, d, why, whylen);
}

int key_from_credential(const char *name, uint8_t out[static 32], char *why, size_t whylen)
{
	struct decoder d = { decode_key, out, KEY_WHAT };

	return secret_from_credential(name, &d, why, whylen);
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
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
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

/*
 * /bin/sh -c command, stdin from /dev/null, stdout into out_fd, stderr
 * shared with us so the command can say what went wrong. The child stays
 * in our process group: a vault client may prompt on the terminal.
 */
static int spawn(const char *command, int out_fd, pid_t *pid)
{
	char *cmd = strdup(command); /* exec takes char *const argv[] */
	char sh[] = "sh", dash_c[] = "-c";
	char *const argv[] = { sh, dash_c, cmd, NULL };
	posix_spawn_file_actions_t fa;
	int ret;

	*pid = -1;
	if (!cmd)
		return -ENOMEM;
	ret = posix_spawn_file_actions_init(&fa);
	if (ret)
		goto out;
	ret = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!ret)
		ret = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (!ret)
		ret = posix_spawn(pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
out:
	free(cmd);
	return -ret;
}

/*
 * Wait for the child: at most what is left of the time, then kill and reap
 * it. Only the shell is killed: dash forks even for a lone command, so a
 * hung grandchild lives on (its stdout pipe closed). Killing a process
 * group would need the child in a group of its own, where a prompt on the
 * terminal stops it (SIGTTIN) and ^C no longer reaches it.
 */
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
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -ETIMEDOUT;
}

/* Turn what collect and reap saw into 0 or an error with its sentence. */
static int judge(ssize_t n, int ret, int status, char *buf, const struct decoder *d, char *why,
		 size_t whylen)
{
	if (n == -ETIMEDOUT || ret == -ETIMEDOUT) {
		snprintf(why, whylen, "command did not finish within %u ms", command_timeout_ms);
		return -ETIMEDOUT;
	}
	if (ret) {
		snprintf(why, whylen, "cannot wait for the command: %s", strerror(-ret));
		return ret;
	}
	/* Before the status: we closed the pipe on it, so SIGPIPE may be what it died of. */
	if (n == -E2BIG) {
		snprintf(why, whylen, "command output is longer than %d bytes", COMMAND_OUTPUT_MAX);
		return -E2BIG;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whylen, "command was killed by signal %d", WTERMSIG(status));
		return -ECHILD;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(why, whylen, "command exited with status %d", WEXITSTATUS(status));
		return -ECHILD;
	}
	if (n < 0 || d->decode(buf, (size_t)n, d->out)) {
		snprintf(why, whylen, "command output is not %s", d->what);
		return -EINVAL;
	}
	return 0;
}

static int secret_from_command(const char *command, const struct decoder *d, char *why,
			       size_t whylen)
{
	char buf[COMMAND_OUTPUT_MAX + 1];
	struct timespec t0;
	int fds[2], status = 0, ret;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot make a pipe: %s", strerror(-ret));
		return ret;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = spawn(command, fds[1], &pid);
	close(fds[1]);
	if (ret) {
		close(fds[0]);
		snprintf(why, whylen, "cannot run /bin/sh: %s", strerror(-ret));
		return ret;
	}
	n = collect(fds[0], buf, COMMAND_OUTPUT_MAX, &t0);
	close(fds[0]); /* a command still writing gets SIGPIPE */
	ret = reap(pid, &t0, &status);
	ret = judge(n, ret, status, buf, d, why, whylen);
	sodium_memzero(buf, sizeof(buf));
	return ret;
}

int key_from_command(const char *command, uint8_t out[static 32], char *why, size_t whylen)
{
	struct decoder d = { decode_key, out, KEY_WHAT };

	return secret_from_command(command, &d, why, whylen);
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

/* Messages name paths and commands as written: keep them on one line. */
static void one_line_msg(char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = '?';
}

static int load_one(const struct conf *c, struct conf_key *k, bool private, struct conf_error *err)
{
	char why[512] = "";
	int ret;

	/* Inline keys came with the file; a key already loaded is not read twice. */
	if (k->source == KEYSRC_NONE || k->source == KEYSRC_INLINE || k->key)
		return 0;
	k->key = sodium_malloc(32);
	if (!k->key) {
		snprintf(err->msg, sizeof(err->msg), "%.300s: out of memory", c->path);
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
		one_line_msg(err->msg);
		sodium_free(k->key);
		k->key = NULL;
	}
	return ret;
}

int keys_mesh_password(const struct conf *c, char **password, struct conf_error *err)
{
	const struct conf_mesh *m = &c->mesh;
	struct decoder d = { decode_password, password, "a password on one line (1-255 bytes)" };
	char why[512] = "";
	const char *key;
	int ret;

	*password = NULL;
	switch (m->password_source) {
	case KEYSRC_FILE:
		key = "RegistryPasswordFile";
		ret = secret_from_path(m->password_arg, true, &d, why, sizeof(why));
		break;
	case KEYSRC_CREDENTIAL:
		key = "RegistryPasswordCredential";
		ret = secret_from_credential(m->password_arg, &d, why, sizeof(why));
		break;
	case KEYSRC_COMMAND:
		key = "RegistryPasswordCommand";
		ret = secret_from_command(m->password_arg, &d, why, sizeof(why));
		break;
	default:
		snprintf(err->msg, sizeof(err->msg), "%.300s: [Mesh] has no registry password", c->path);
		return -EINVAL;
	}
	if (ret) {
		snprintf(err->msg, sizeof(err->msg), "%.200s:%u: %s: %s", c->path, m->password_line, key,
			 why);
		one_line_msg(err->msg);
	}
	return ret;
}

/* The first key written in the file itself, or NULL; *private says whose. */
static const struct conf_key *first_inline_key(const struct conf *c, bool *private)
{
	size_t i;

	*private = true;
	if (c->private_key.source == KEYSRC_INLINE)
		return &c->private_key;
	*private = false;
	for (i = 0; i < c->n_peers; i++)
		if (c->peers[i].psk.source == KEYSRC_INLINE)
			return &c->peers[i].psk;
	return NULL;
}

int keys_check_conf_file(const struct conf *c, struct conf_error *err)
{
	const struct conf_key *k;
	unsigned int mode = c->file_mode & 07777;
	bool private;

	if (!c->file_known || !(k = first_inline_key(c, &private)))
		return 0;
	if (mode & 077)
		snprintf(err->msg, sizeof(err->msg), "%.200s:%u: %s: the key is in %.200s, which is %s by group "
			 "or others (mode %04o; chmod 600 it, as for a key file)", c->path, k->line,
			 source_key_name(KEYSRC_INLINE, private), c->path,
			 mode & 044 ? "readable" : mode & 022 ? "writable" : "usable", mode);
	else if (c->file_uid != 0 && c->file_uid != (unsigned int)geteuid())
		snprintf(err->msg, sizeof(err->msg), "%.200s:%u: %s: the key is in %.200s, which belongs to uid "
			 "%u, not to root (chown root it, as for a key file)", c->path, k->line,
			 source_key_name(KEYSRC_INLINE, private), c->path, c->file_uid);
	else
		return 0;
	one_line_msg(err->msg);
	return -EPERM;
}

/*
 * A [Peer] whose key is the interface's own: veild (like the kernel and
 * wireguard-go) would take its lines and drop them in silence.
 */
static int own_key_as_peer(const struct conf *c, struct conf_error *err)
{
	uint8_t pub[32];
	size_t i;
	int ret = 0;

	if (!c->private_key.key)
		return 0;
	crypto_scalarmult_base(pub, c->private_key.key);
	for (i = 0; !ret && i < c->n_peers; i++) {
		if (sodium_memcmp(pub, c->peers[i].public_key, 32) != 0)
			continue;
		snprintf(err->msg, sizeof(err->msg), "%.300s:%u: [Peer]: its PublicKey is this interface's own "
			 "(from %s on line %u); a peer cannot be the interface itself", c->path, c->peers[i].line,
			 source_key_name(c->private_key.source, true), c->private_key.line);
		one_line_msg(err->msg);
		ret = -EINVAL;
	}
	sodium_memzero(pub, sizeof(pub));
	return ret;
}

int keys_load(struct conf *c, struct conf_error *err)
{
	size_t i;
	int ret = keys_check_conf_file(c, err);

	if (!ret)
		ret = load_one(c, &c->private_key, true, err);
	if (!ret)
		ret = own_key_as_peer(c, err);
	for (i = 0; !ret && i < c->n_peers; i++)
		ret = load_one(c, &c->peers[i].psk, false, err);
	return ret;
}
