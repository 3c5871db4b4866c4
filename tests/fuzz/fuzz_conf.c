// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for veilctl's configuration parser (tools/veilctl/conf.c):
 * each input is a whole file. A file that parses must make sense (a valid
 * interface name, every peer with a key, prefixes in range, keys in locked
 * memory); a file that does not must leave the conf empty and explain
 * itself in one line that starts with the file name. Either way conf_free
 * must release everything (ASan's leak check runs at exit).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "conf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		__builtin_trap();
	return 0;
}

static void check_prefixes(const struct conf_prefix *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((p[i].family != 2 && p[i].family != 10) || p[i].cidr > (p[i].family == 2 ? 32 : 128))
			__builtin_trap();
}

static void check_parsed(const struct conf *c)
{
	size_t i;

	if (!c->name || !conf_valid_ifname(c->name) || !c->path)
		__builtin_trap();
	if ((c->private_key.source == KEYSRC_INLINE) != (c->private_key.key != NULL))
		__builtin_trap();
	check_prefixes(c->addresses, c->n_addresses);
	for (i = 0; i < c->n_peers; i++) {
		if (sodium_is_zero(c->peers[i].public_key, 32))
			__builtin_trap();
		check_prefixes(c->peers[i].allowed_ips, c->peers[i].n_allowed_ips);
	}
}

static void check_refused(const struct conf *c, const struct conf_error *err)
{
	if (!sodium_is_zero((const unsigned char *)c, sizeof(*c)))
		__builtin_trap();
	if (strncmp(err->msg, "fuzz.conf", 9) != 0 || strchr(err->msg, '\n'))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_error err;
	struct conf c;

	if (conf_parse(&c, "fuzz.conf", (const char *)data, size, &err) == 0) {
		check_parsed(&c);
		conf_free(&c);
	} else {
		check_refused(&c, &err);
	}
	return 0;
}
