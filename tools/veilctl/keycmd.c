// SPDX-License-Identifier: MIT
/*
 * veilctl genkey, genpsk and pubkey, in wg's formats: base64 of 32 bytes
 * and a newline. Secrets stay in locked memory and go to standard output
 * with write(2), so no stdio buffer keeps a copy; every copy is wiped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/curve25519.h"
#include "ctl.h"

enum { B64_LEN = sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL), KEY_IN_MAX = 256 };

/* The key in base64 and a newline; the line is wiped after. Returns the exit code. */
static int print_key(const uint8_t k[static 32])
{
	char line[B64_LEN + 1];
	int ret;

	sodium_bin2base64(line, B64_LEN, k, 32, sodium_base64_VARIANT_ORIGINAL);
	line[B64_LEN - 1] = '\n';
	ret = ctl_write_out(line, B64_LEN);
	sodium_memzero(line, sizeof(line));
	if (ret)
		fprintf(stderr, "veilctl: cannot write the key: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}

/* Random bytes in locked memory; clamped as an X25519 private key when asked (RFC 7748, 5). */
static int random_key(bool clamp)
{
	uint8_t *k = sodium_malloc(32);
	int ret;

	if (!k) {
		fprintf(stderr, "veilctl: out of locked memory\n");
		return 1;
	}
	randombytes_buf(k, 32);
	if (clamp)
		curve25519_clamp_secret(k);
	ret = print_key(k);
	sodium_free(k);
	return ret;
}

static int no_arguments(int argc, const char *name)
{
	if (argc == 1)
		return 0;
	fprintf(stderr, "veilctl: usage: veilctl %s\n", name);
	return 1;
}

int cmd_genkey(int argc, char **argv)
{
	if (no_arguments(argc, argv[0]))
		return 1;
	if (isatty(STDOUT_FILENO))
		fprintf(stderr, "veilctl: warning: writing a private key to a terminal\n");
	return random_key(true);
}

int cmd_genpsk(int argc, char **argv)
{
	if (no_arguments(argc, argv[0]))
		return 1;
	return random_key(false);
}

/* Standard input, whole, into locked memory: at most KEY_IN_MAX bytes. */
static int read_stdin(char *buf, size_t *len)
{
	ssize_t n;

	*len = 0;
	do {
		n = read(STDIN_FILENO, buf + *len, KEY_IN_MAX + 1 - *len);
		if (n > 0)
			*len += (size_t)n;
	} while ((n > 0 && *len <= KEY_IN_MAX) || (n < 0 && errno == EINTR));
	if (n < 0)
		return -errno;
	buf[*len] = '\0';
	return *len > KEY_IN_MAX ? -EFBIG : 0;
}

int cmd_pubkey(int argc, char **argv)
{
	char *in = sodium_malloc(KEY_IN_MAX + 2), *s;
	uint8_t *k = sodium_malloc(32), pub[32];
	size_t len = 0;
	int ret = 1;

	if (no_arguments(argc, argv[0]))
		goto out;
	if (!in || !k) {
		fprintf(stderr, "veilctl: out of locked memory\n");
		goto out;
	}
	if (read_stdin(in, &len)) {
		fprintf(stderr, "veilctl: cannot read a private key from standard input\n");
		goto out;
	}
	while (len && strchr(" \t\r\n", in[len - 1]))
		in[--len] = '\0';
	for (s = in; *s && strchr(" \t\r\n", *s); s++)
		;
	if (conf_parse_key(s, k)) {
		fprintf(stderr, "veilctl: standard input is not a base64 private key of 32 bytes\n");
		goto out;
	}
	crypto_scalarmult_base(pub, k);
	ret = print_key(pub);
out:
	if (in)
		sodium_free(in);
	if (k)
		sodium_free(k);
	return ret;
}
