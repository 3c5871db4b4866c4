/* SPDX-License-Identifier: MIT */
/*
 * What the mesh agent does to the node: veild's peers through the control
 * socket (as `veilctl reload` does: a peer whose settings are equal is not
 * mentioned, so its session stays) and routes through rtnetlink. Only the
 * agent's own peers and routes are touched: static [Peer] sections, peers
 * added with `wg set` and routes it did not add are left alone.
 */
#ifndef VEIL_MESH_APPLY_H
#define VEIL_MESH_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "ctl.h"

struct nl;

/* One mesh peer as veild should hold it. */
struct apply_peer {
	/* public key, allowed IPs, keepalive, cipher; endpoint_len 0: leave the endpoint as it is */
	struct conf_peer peer;
	const char *endpoint_name; /* host:port veild looks up again, "" for an address */
	bool kick;                 /* start a handshake at once (a key that just took over) */
};

/*
 * One set request: want[] added or updated, remove[] removed where they run
 * (running is ctl_get's view). veild's own keys (cipher, endpoint_name)
 * go along where they differ. 0, or the daemon's -errno with why filled.
 */
int apply_peers(const char *ifname, const struct ctl_device *running, const struct apply_peer *want,
		size_t n, const uint8_t (*remove)[32], size_t n_remove, char *why, size_t whylen);

/*
 * Routes through the interface: every prefix of want[] that is not a
 * default route and not in *have is added (one that exists already is
 * taken as ours), and
 * every prefix of *have (what the agent added before) not in want is
 * deleted. With verify, every prefix of want[] is added again, so that a
 * route someone deleted is put back. *have becomes what the agent has
 * added; empty it when the link was made anew (its routes went with the
 * old one). 0 or the first -errno.
 */
int apply_routes(struct nl *nl, unsigned int ifindex, uint32_t table, const struct conf_prefix *want,
		 size_t n_want, bool verify, struct conf_prefix **have, size_t *n_have, char *why,
		 size_t whylen);

#endif
