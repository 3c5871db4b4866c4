/* SPDX-License-Identifier: MIT */
/*
 * An agent's view of its network: every node's latest record, liveness and
 * what the agent applied, the policy, the routes it added; kept up to date
 * from the registry's list and watch events, and saved as the local copy
 * (VEIL_MESH_DIR/IFNAME.json, 0600, written whole and renamed into place)
 * after each change applied. A node restarted while the registry is down
 * comes back from it with its peers, and `veilctl mesh list` reads it.
 */
#ifndef VEIL_MESH_VIEW_H
#define VEIL_MESH_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"
#include "record.h"

#include "veil.h" /* VEIL_MESH_DIR */

enum { VIEW_KEY_MAX = 160 };

struct mesh_view {
	char network[CONF_MESH_NAME_MAX + 1];
	char node[CONF_MESH_NAME_MAX + 1];
	char ifname[16];
	char prefix[VIEW_KEY_MAX];  /* "/veil/NETWORK/" */
	int64_t revision;           /* the registry's, last seen */
	struct mesh_node *nodes;
	size_t n, cap;
	char *policy_raw;           /* NULL: no policy record */
	struct mesh_policy policy;  /* parsed; empty when absent or refused */
	char policy_why[MESH_WHY_LEN];
	struct conf_prefix *routes; /* what the agent added */
	size_t n_routes;
	/* For veilctl mesh list. */
	int64_t saved;              /* unix seconds */
	bool connected;             /* the agent was watching the registry */
	/* The agent's rotations ended so far, and how the last one ended (veilctl mesh rotate). */
	unsigned int rotations;
	char rotation_result[200];
};

/* What an event changed. */
enum view_change { VIEW_NOTHING = 0, VIEW_RECORD = 1, VIEW_ALIVE = 2, VIEW_POLICY = 4 };

int view_init(struct mesh_view *v, const char *network, const char *node, const char *ifname);
void view_free(struct mesh_view *v);
struct mesh_node *view_find(struct mesh_view *v, const char *name);

/*
 * A key of the registry was written (value given) or deleted (value NULL)
 * at revision; now (unix seconds) dates liveness. Returns a view_change
 * mask or -ENOMEM. Keys outside the network's prefix change nothing.
 */
int view_apply(struct mesh_view *v, const char *key, const char *value, size_t len,
	       int64_t create_revision, int64_t mod_revision, int64_t now);
/* A whole list: whatever it lacks was deleted while nobody watched. Mask or -ENOMEM. */
int view_replace(struct mesh_view *v, const struct etcd_range *r, int64_t now);

/* The local copy. load: -ENOENT when there is none; why says what is wrong otherwise. */
int view_save(const struct mesh_view *v, const char *path);
int view_load(struct mesh_view *v, const char *path, char *why, size_t whylen);
/* VEIL_MESH_DIR (or $VEIL_MESH_DIR)/IFNAME.json. */
void view_path(const char *ifname, char *out, size_t len);
/* The directories above a copy's path, made 0700 where missing. 0 or -errno. */
int view_make_dir(const char *path);

#endif
