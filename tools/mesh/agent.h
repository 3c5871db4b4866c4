/* SPDX-License-Identifier: MIT */
/*
 * The mesh agent: one node's link between an etcd registry and its veild.
 * It publishes this node's record and liveness, lists and then watches the
 * network's prefix, and applies what changed to veild and the routing
 * table. docs/mesh.md has the design, and what happens in each failure:
 * in short, the registry is never on the data path: nothing is removed
 * but by an explicit removal, and the local copy brings a node back with
 * its peers while the registry is away.
 */
#ifndef VEIL_MESH_AGENT_H
#define VEIL_MESH_AGENT_H

#include <uv.h>

#include "conf.h"

struct agent;

/*
 * c (a parsed file with a [Mesh] section; the agent owns it from here) and
 * password (in sodium_malloc memory; owned too). Loads the local copy and
 * applies it before the registry is reached. 0 or -errno (said in the log).
 */
int agent_new(uv_loop_t *loop, struct conf *c, char *password, struct agent **out);
/* Start talking to the registry. */
void agent_start(struct agent *a);
/* Rotate this node's static key now (docs/mesh.md); the result goes to the local copy. */
void agent_rotate(struct agent *a);
/*
 * Stop: give up the lease (this node shows as stale at once), save the
 * local copy, close every handle. Peers and routes stay as they are. done
 * is called once everything is closed; then agent_free.
 */
void agent_stop(struct agent *a, void (*done)(void *data), void *data);
void agent_free(struct agent *a);

#endif
