/* SPDX-License-Identifier: MIT */
/*
 * veilctl's side of the mesh (docs/mesh.md): starting and stopping an
 * interface's agent (veil-meshd) for up, down and reload, the peers the
 * agent manages (which reload and SaveConfig leave alone), and the
 * commands `veilctl mesh list` and `veilctl mesh remove`.
 */
#ifndef VEILCTL_MESHCTL_H
#define VEILCTL_MESHCTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

/*
 * Start the agent for c (a file with [Mesh]) in the background; it applies
 * its local copy before this returns. *pid is the agent's. Errors are said
 * on stderr (the agent's own reason when it gives one). 0 or -errno.
 */
int meshctl_start(const struct conf *c, pid_t *pid);
/* Stop the agent with this pid if it is one (a pid reused by another program is left alone). */
void meshctl_stop(pid_t pid);
/*
 * The public keys of the peers the interface's agent has put into veild,
 * from its local copy (none when there is no copy). Free *keys.
 */
int meshctl_managed_keys(const char *ifname, uint8_t (**keys)[32], size_t *n);
/* The interface left its mesh: the routes its agent added and its local copy go. */
void meshctl_forget(const struct conf *c);

int cmd_mesh(int argc, char **argv);
/* The administrator's commands (meshadmin.c); each returns the exit code. */
int meshctl_remove(int argc, char **argv);
int meshctl_revoke(int argc, char **argv);
int meshctl_admit(int argc, char **argv);
int meshctl_history(int argc, char **argv);

#endif
