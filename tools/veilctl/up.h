/* SPDX-License-Identifier: MIT */
/*
 * veilctl up, down and reload: one configuration file brings up, takes
 * down, or updates in place a whole interface (daemon, keys and peers,
 * addresses, MTU, link state, routes, policy rules, DNS, hooks).
 */
#ifndef VEILCTL_UP_H
#define VEILCTL_UP_H

#include "conf.h" /* VEIL_CONF_DIR */

#include "veil.h" /* VEIL_STATE_DIR */
/*
 * The account `up` runs veild as (veild --user): the Debian package's
 * postinst and `make install` create it. Without it, "nobody"; without
 * that, root, each with a warning. VEIL_USER in the environment decides
 * instead (empty: root).
 */
#ifndef VEIL_DAEMON_USER
#define VEIL_DAEMON_USER "_veil"
#endif

/* NAME means VEIL_CONF_DIR/NAME.conf; anything with a '/' or ending in .conf is a path. */
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_reload(int argc, char **argv);

#endif
