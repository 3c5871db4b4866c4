/* SPDX-License-Identifier: MIT */
/*
 * systemd's readiness protocol, written from its documentation
 * (sd_notify(3)): one datagram of "KEY=VALUE" lines to the unix socket
 * named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace).
 * Without $NOTIFY_SOCKET every call is a no-op returning 0.
 */
#ifndef VEIL_NOTIFY_H
#define VEIL_NOTIFY_H

#include <stdbool.h>

/* Send text (e.g. "READY=1\nMAINPID=42\n"). 0, or a negative errno. */
int notify_send(const char *text);

/*
 * Wait (at most timeout_ms) until the manager has processed everything
 * sent before: a BARRIER=1 datagram carries a pipe's write end, and the
 * manager closes it once it got there. Lets a process exit right after
 * notifying without its message being dropped as coming from nobody.
 */
int notify_barrier(int timeout_ms);

/* Whether $NOTIFY_SOCKET is set. */
bool notify_wanted(void);

#endif
