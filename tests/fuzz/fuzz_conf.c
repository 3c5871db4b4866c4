// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for veilctl's configuration parser (tools/veilctl/conf.c):
 * each input is a whole file named fuzz.conf. A file that parses must make
 * sense: the name "fuzz", every peer with a non-zero key, prefixes in range,
 * each key source with what it needs (an inline key in locked memory, an
 * argument for the others), every list entry present. A file that does not
 * parse must leave the conf all zero and explain itself in one printable
 * line that starts with the file name. Either way conf_free must release
 * everything (ASan's leak check runs at exit) and leave the conf zeroed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>
#include <sys/socket.h>

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

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_prefixes(const struct conf_prefix *p, size_t n)
{
	size_t i;

	check(n == 0 || p != NULL);
	for (i = 0; i < n; i++) {
		check(p[i].family == AF_INET || p[i].family == AF_INET6);
		check(p[i].cidr <= (p[i].family == AF_INET ? 32 : 128));
	}
}

static void check_strings(char *const *v, size_t n)
{
	size_t i;

	check(n == 0 || v != NULL);
	for (i = 0; i < n; i++)
		check(v[i] != NULL && v[i][0] != '\0' && strchr(v[i], '\n') == NULL);
}

/* Inline: a key and no argument. File, credential, command: an argument, no key yet. */
static void check_key(const struct conf_key *k)
{
	switch (k->source) {
	case KEYSRC_NONE:
		check(k->key == NULL && k->arg == NULL && k->line == 0);
		break;
	case KEYSRC_INLINE:
		check(k->key != NULL && k->arg == NULL && k->line > 0);
		break;
	case KEYSRC_CREDENTIAL:
		check(k->arg != NULL && strchr(k->arg, '/') == NULL);
		/* fall through */
	default:
		check(k->key == NULL && k->arg != NULL && k->arg[0] != '\0' && k->line > 0);
		break;
	}
}

static void check_peer(const struct conf *c, size_t i)
{
	const struct conf_peer *p = &c->peers[i];
	size_t j;

	check(!sodium_is_zero(p->public_key, 32) && p->line > 0);
	check(p->psk.source != KEYSRC_COMMAND); /* there is no PresharedKeyCommand */
	check_key(&p->psk);
	check_prefixes(p->allowed_ips, p->n_allowed_ips);
	check((p->endpoint == NULL) == (p->endpoint_line == 0) && p->endpoint_len == 0);
	check(p->has_keepalive || p->persistent_keepalive == 0);
	for (j = 0; j < i; j++)
		check(memcmp(c->peers[j].public_key, p->public_key, 32) != 0);
}

static void check_parsed(const struct conf *c)
{
	size_t i;

	check(c->path != NULL && strcmp(c->path, "fuzz.conf") == 0);
	check(c->name != NULL && strcmp(c->name, "fuzz") == 0 && conf_valid_ifname(c->name));
	check_key(&c->private_key);
	check_prefixes(c->addresses, c->n_addresses);
	check(!c->has_mtu || (c->mtu >= 68 && c->mtu <= 65535));
	check(c->table == TABLE_ID ? c->table_id != 0 : c->table_id == 0);
	check_strings(c->dns, c->n_dns);
	check_strings(c->pre_up.cmd, c->pre_up.n);
	check_strings(c->post_up.cmd, c->post_up.n);
	check_strings(c->pre_down.cmd, c->pre_down.n);
	check_strings(c->post_down.cmd, c->post_down.n);
	check(c->n_peers == 0 || c->peers != NULL);
	for (i = 0; i < c->n_peers; i++)
		check_peer(c, i);
}

static void check_refused(const struct conf *c, const struct conf_error *err)
{
	size_t i, n = strnlen(err->msg, sizeof(err->msg));

	check(sodium_is_zero((const unsigned char *)c, sizeof(*c)));
	check(n < sizeof(err->msg) && strncmp(err->msg, "fuzz.conf:", 10) == 0 && n > 10);
	for (i = 0; i < n; i++)
		check((unsigned char)err->msg[i] >= 0x20 && err->msg[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_error err;
	struct conf c;

	memset(&err, 0x5a, sizeof(err));
	if (conf_parse(&c, "fuzz.conf", (const char *)data, size, &err) == 0) {
		check_parsed(&c);
		conf_free(&c);
		check(sodium_is_zero((const unsigned char *)&c, sizeof(c)));
	} else {
		check_refused(&c, &err);
	}
	return 0;
}
