// SPDX-License-Identifier: MIT
/* veilctl genkey, genpsk and pubkey, in wg's formats: base64 of 32 bytes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"

static int print_key(const uint8_t *k)
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	int ret;

	sodium_bin2base64(b64, sizeof(b64), k, 32, sodium_base64_VARIANT_ORIGINAL);
	ret = printf("%s\n", b64) < 0 || fflush(stdout) ? 1 : 0;
	sodium_memzero(b64, sizeof(b64));
	return ret;
}

/* Random bytes in locked memory; clamped as an X25519 private key when asked. */
static int random_key(bool clamp)
{
	uint8_t *k = sodium_malloc(32);
	int ret;

	if (!k) {
		fprintf(stderr, "veilctl: out of locked memory\n");
		return 1;
	}
	randombytes_buf(k, 32);
	if (clamp) {
		k[0] &= 248;
		k[31] = (uint8_t)((k[31] & 127) | 64);
	}
	ret = print_key(k);
	sodium_free(k);
	return ret;
}

int cmd_genkey(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: veilctl genkey\n");
		return 1;
	}
	if (isatty(1))
		fprintf(stderr, "veilctl: warning: writing a private key to a terminal\n");
	return random_key(true);
}

int cmd_genpsk(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: veilctl genpsk\n");
		return 1;
	}
	return random_key(false);
}

int cmd_pubkey(int argc, char **argv)
{
	uint8_t *k = sodium_malloc(32), pub[32];
	char line[128];
	size_t n;
	int ret = 1;

	(void)argv;
	if (argc != 1 || !k) {
		fprintf(stderr, "Usage: veilctl pubkey < PRIVATE_KEY\n");
		goto out;
	}
	n = fread(line, 1, sizeof(line) - 1, stdin);
	line[n] = '\0';
	while (n && strchr(" \t\r\n", line[n - 1]))
		line[--n] = '\0';
	if (conf_parse_key(line, k)) {
		fprintf(stderr, "veilctl: standard input is not a base64 private key of 32 bytes\n");
		goto out;
	}
	crypto_scalarmult_base(pub, k);
	ret = print_key(pub);
out:
	sodium_memzero(line, sizeof(line));
	if (k)
		sodium_free(k);
	return ret;
}
