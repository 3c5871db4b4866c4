/* SPDX-License-Identifier: MIT */
/*
 * One interface served by one libuv loop: the TUN fd and both UDP sockets
 * under uv_poll_t (so the data path uses plain batched syscalls), a timer
 * per peer, signals, and the UAPI control socket.
 */
#ifndef VEIL_DAEMON_H
#define VEIL_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "tun.h"

struct daemon_config {
	const char *ifname;
	int tun_fd;  /* already open TUN device */
	enum tun_mode tun_mode; /* what its reads and writes carry */
	bool offload; /* UDP GSO and GRO (VEIL_OFFLOAD, on unless "off") */
	int uapi_fd; /* already listening UAPI socket */
	const char *uapi_path;
	const char *keylog_path; /* VEIL_KEYLOG_FILE, or NULL */
	const char *user;        /* switch to this user once set up, or NULL */
	bool seccomp;            /* install the system-call filter */
	unsigned int workers;    /* threads sharing the AEAD (src/workers.h); 1: the loop's alone */
	/* Besides root, members of this group may use the control socket. */
	bool has_control_group;
	unsigned int control_gid;
	const unsigned int *control_uids; /* its members, resolved at start */
	size_t ncontrol_uids;
};

/* Runs until a signal, the interface's deletion or a fatal error. Returns the exit status. */
int daemon_run(const struct daemon_config *cfg, void (*ready)(void *arg), void *arg);

#endif
