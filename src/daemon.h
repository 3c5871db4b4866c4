/* SPDX-License-Identifier: MIT */
/*
 * One interface served by one libuv loop: the TUN fd and both UDP sockets
 * under uv_poll_t (so the data path uses plain batched syscalls), a timer
 * per peer, signals, and the UAPI control socket.
 */
#ifndef VEIL_DAEMON_H
#define VEIL_DAEMON_H

#include <stdbool.h>

struct daemon_config {
	const char *ifname;
	int tun_fd;  /* already open TUN device */
	int uapi_fd; /* already listening UAPI socket */
	const char *uapi_path;
	const char *keylog_path; /* VEIL_KEYLOG_FILE, or NULL */
};

/* Runs until a signal, the interface's deletion or a fatal error. Returns the exit status. */
int daemon_run(const struct daemon_config *cfg, void (*ready)(void *arg), void *arg);

#endif
