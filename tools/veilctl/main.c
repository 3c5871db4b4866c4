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
	const char *what; /* one line under the usage in --help (no option words: docs.sh reads them) */
};

static const struct command commands[] = {
	{ "show", cmd_show, "show [IFNAME|all|interfaces] [--json]",
	  "interfaces and peers: endpoints, handshakes, transfer, refused handshakes (keys hidden)" },
	{ "showconf", cmd_showconf, "showconf IFNAME",
	  "the running configuration in the file format, keys included, as wg showconf" },
	{ "set", cmd_set, "set IFNAME [options of wg set]", "change the running interface, as wg set does" },
	{ "setconf", cmd_setconf, "setconf IFNAME FILE",
	  "replace the running keys, port and peers with the file's, as wg setconf" },
	{ "syncconf", cmd_syncconf, "syncconf IFNAME FILE",
	  "make the running keys, port and peers the file's; unchanged peers keep their sessions" },
	{ "up", cmd_up, "up NAME|FILE",
	  "bring up an interface from its file: veild, keys, peers, addresses, MTU, routes, DNS, hooks" },
	{ "down", cmd_down, "down NAME|FILE",
	  "undo what up did, from its state file (also when the file is broken or gone)" },
	{ "reload", cmd_reload, "reload NAME|FILE",
	  "apply what changed in the file, all or nothing, and say what changed" },
	{ "metrics", cmd_metrics, "metrics [IFNAME]",
	  "counters in the Prometheus text format (for node_exporter's textfile collector)" },
	{ "top", cmd_top, "top [IFNAME]", "a live view: peers, endpoints, rates, refused handshakes; q quits" },
	{ "mesh", cmd_mesh, "mesh list|rotate|remove|revoke|admit|history ... (veilctl mesh for each)",
	  "a mesh's nodes, this node's key rotation, and the administrator's commands" },
	{ "genkey", cmd_genkey, "genkey", "a new private key, in base64" },
	{ "genpsk", cmd_genpsk, "genpsk", "a new pre-shared key, in base64" },
	{ "pubkey", cmd_pubkey, "pubkey < PRIVATE_KEY", "the public key of the private key on standard input" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: veilctl COMMAND [ARGS]\n\nCommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  veilctl %s\n      %s\n", commands[i].usage, commands[i].what);
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
