// SPDX-License-Identifier: MIT
/*
 * veilctl: keys, status and configuration of veil interfaces (and of any
 * daemon that speaks WireGuard's userspace API, wireguard-go included).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "ctl.h"
#include "meshctl.h"
#include "up.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct command commands[] = {
	{ "show", cmd_show, "show [IFNAME|all|interfaces] [--json]" },
	{ "showconf", cmd_showconf, "showconf IFNAME" },
	{ "set", cmd_set, "set IFNAME [options of wg set]" },
	{ "setconf", cmd_setconf, "setconf IFNAME FILE" },
	{ "syncconf", cmd_syncconf, "syncconf IFNAME FILE" },
	{ "up", cmd_up, "up NAME|FILE" },
	{ "down", cmd_down, "down NAME|FILE" },
	{ "reload", cmd_reload, "reload NAME|FILE" },
	{ "metrics", cmd_metrics, "metrics [IFNAME]" },
	{ "top", cmd_top, "top [IFNAME]" },
	{ "mesh", cmd_mesh, "mesh list|rotate|remove|revoke|admit|history ... (veilctl mesh for each)" },
	{ "genkey", cmd_genkey, "genkey" },
	{ "genpsk", cmd_genpsk, "genpsk" },
	{ "pubkey", cmd_pubkey, "pubkey < PRIVATE_KEY" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: veilctl COMMAND [ARGS]\n\nCommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  veilctl %s\n", commands[i].usage);
	fprintf(f, "\nNAME means " VEIL_CONF_DIR "/NAME.conf. veilctl --version prints the version.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (sodium_init() < 0) {
		fprintf(stderr, "veilctl: libsodium failed to initialise\n");
		return 1;
	}
	umask(077); /* key files and state are root's alone */
	if (argc < 2) {
		/* Like wg: no command shows every interface. */
		char *show[] = { "show", NULL };

		return cmd_show(1, show);
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("veilctl %s\n", VEIL_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "veilctl: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 1;
}
