// SPDX-License-Identifier: MIT
/*
 * genpeers N: a wg configuration with N [Peer] sections, random public keys,
 * one allowed IP each from 198.18.0.0/15 (test range), and an endpoint.
 * For the benchmarks' 10,000-peer memory and control-plane figures.
 */
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

int main(int argc, char **argv)
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	unsigned char pub[32];
	long n = argc == 2 ? strtol(argv[1], NULL, 10) : 0, i;

	if (n < 1 || n > 131000 || sodium_init() < 0) {
		fprintf(stderr, "usage: genpeers N (1..131000)\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		randombytes_buf(pub, sizeof(pub));
		sodium_bin2base64(b64, sizeof(b64), pub, sizeof(pub), sodium_base64_VARIANT_ORIGINAL);
		printf("[Peer]\nPublicKey = %s\nAllowedIPs = 198.%ld.%ld.%ld/32\nEndpoint = 198.18.0.2:%ld\n\n",
		       b64, 18 + i / 65536, (i / 256) % 256, i % 256, 1024 + i % 60000);
	}
	return 0;
}
