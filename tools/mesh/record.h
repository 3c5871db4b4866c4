/* SPDX-License-Identifier: MIT */
/*
 * The mesh's records, and what an agent decides from them, with no I/O:
 * a node's record read and written as JSON, the network's policy, and from
 * every node's latest record which become peers and why the others are
 * refused. docs/mesh.md has the design; in short, under /veil/NETWORK/:
 *
 *   nodes/NODE   the node's record, written by that node's agent:
 *                {"version":1,"node":"site-a","public_key":"<base64>",
 *                 "endpoints":["host:port"],"prefixes":["10.1.0.0/24"],
 *                 "cipher":"chacha20poly1305"}
 *   alive/NODE   bound to the agent's lease: there while the agent runs
 *   policy       an administrator's: {"version":1,"exit_nodes":["gw"]}
 *
 * A record is refused, with a reason, when it does not parse, when it
 * claims what another node claimed first (by etcd's creation revision:
 * the same public key, an overlapping prefix), a default route without the
 * policy's leave, a registry member's address (the registry's own traffic
 * must never enter the tunnel), or what this node holds itself (its key,
 * its prefixes, its static peers). A refused record harms nobody else: a
 * node whose newer record is refused keeps the one applied before.
 */
#ifndef VEIL_MESH_RECORD_H
#define VEIL_MESH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

enum {
	MESH_RECORD_VERSION = 1,
	MESH_RECORD_MAX = 16384,  /* bytes of JSON; a larger value is refused unread */
	MESH_PREFIXES_MAX = 256,  /* per record */
	MESH_ENDPOINTS_MAX = 4,   /* per record; the first is used */
	MESH_ENDPOINT_LEN = 300,  /* "host:port" as written, with its NUL */
	MESH_WHY_LEN = 200,
};

/* A node's record, parsed and checked on its own (not yet against others). */
struct mesh_record {
	char node[CONF_MESH_NAME_MAX + 1];
	uint8_t public_key[32];
	char endpoint[MESH_ENDPOINT_LEN]; /* the first of "endpoints"; "" for none */
	struct conf_prefix *prefixes;
	size_t n_prefixes;
	enum conf_cipher cipher;
	/* A rotation (docs/mesh.md): the key the node moves to next; peers stage it. */
	bool has_next;
	uint8_t next_public_key[32];
	int64_t key_since;   /* unix seconds the public key became the node's; 0: unknown */
};

/*
 * Parse a record's JSON (len bytes) stored under nodes/NODE. 0, or -EINVAL
 * with why saying what is wrong in one line (never quoting more than a
 * short piece of the value); -ENOMEM. r is empty on error.
 */
int mesh_record_parse(struct mesh_record *r, const char *node, const char *json, size_t len,
		      char *why, size_t whylen);
/* The record's JSON, NUL-terminated (free it), or NULL without memory. */
char *mesh_record_format(const struct mesh_record *r);
int mesh_record_copy(struct mesh_record *dst, const struct mesh_record *src);
void mesh_record_free(struct mesh_record *r);
/* Same key, endpoint, prefixes (as a set, in order) and cipher. */
bool mesh_record_equal(const struct mesh_record *a, const struct mesh_record *b);
/* The first 11 characters of the public key's base64, as veild's audit lines name peers. */
void mesh_fingerprint(const uint8_t key[static 32], char out[static 12]);

/* The network's policy: which nodes may advertise a default route (an exit). */
struct mesh_policy {
	char **exit_nodes;
	size_t n_exit_nodes;
	/* Revocations (an administrator's, under revoked/): keys and node names. */
	uint8_t (*revoked_keys)[32];
	size_t n_revoked_keys;
	char **revoked_nodes;
	size_t n_revoked_nodes;
};

int mesh_policy_parse(struct mesh_policy *p, const char *json, size_t len, char *why, size_t whylen);
void mesh_policy_free(struct mesh_policy *p);
bool mesh_policy_exit(const struct mesh_policy *p, const char *node);
bool mesh_policy_key_revoked(const struct mesh_policy *p, const uint8_t key[static 32]);
bool mesh_policy_node_revoked(const struct mesh_policy *p, const char *node);
/* Add or take away a revocation (view.c keeps them from revoked/keys/ and revoked/nodes/). */
int mesh_policy_revoke_key(struct mesh_policy *p, const uint8_t key[static 32], bool revoked);
int mesh_policy_revoke_node(struct mesh_policy *p, const char *node, bool revoked);
/*
 * A revoked key's name under revoked/keys/: its base64url form without
 * padding (43 characters, no '/'). mesh_key_from_name reads it back.
 */
void mesh_key_name(const uint8_t key[static 32], char out[static 44]);
int mesh_key_from_name(const char *name, uint8_t key[static 32]);

enum mesh_verdict {
	MESH_NONE,     /* no peer: nothing valid and nothing applied before */
	MESH_SELF,     /* this node's own record */
	MESH_ACCEPTED, /* the latest record is the peer */
	MESH_KEPT,     /* the latest is refused; the record applied before stays the peer */
};

/* One node as an agent knows it. */
struct mesh_node {
	char name[CONF_MESH_NAME_MAX + 1];
	/* The registry's latest: present while the key exists. */
	bool present;
	int64_t create_revision, mod_revision;
	char *raw;                   /* the value as stored (NUL-terminated), for the local copy */
	bool parsed;                 /* latest parsed; else parse_error says why */
	struct mesh_record latest;
	char parse_error[MESH_WHY_LEN];
	/* The record this agent applied last, and the revision it came with. */
	bool applied;
	struct mesh_record current;
	int64_t current_revision;
	/* Liveness (the alive key), for veilctl mesh list. */
	bool alive;
	int64_t stale_since;         /* unix seconds the alive key went; 0: never seen alive */
	/* Set by mesh_decide. */
	enum mesh_verdict verdict;
	char why[MESH_WHY_LEN];      /* why the latest record is refused ("" when it is not) */
	struct conf_prefix *use;     /* the prefixes the peer gets: the record's, less conflicts */
	size_t n_use;
	int64_t staged_at;           /* the agent's: when (uv_now) it saw the next key staged */
	bool staged_greeted;         /* and whether it greeted it since */
	int64_t refusal_logged;      /* the mod_revision whose refusal was audited, */
	char refusal_said[MESH_WHY_LEN]; /* and its reason: a new reason is said again */
};

/* What this node knows of itself, that the records must not contradict. */
struct mesh_local {
	const char *node;
	const uint8_t *public_key;             /* 32 bytes, or NULL while unknown */
	const struct conf_prefix *own;         /* Advertise */
	size_t n_own;
	const struct conf_peer *static_peers;  /* the file's [Peer] sections */
	size_t n_static_peers;
	const struct sockaddr_storage *registry; /* the registry members' addresses */
	size_t n_registry;
};

/*
 * Decide every node's verdict, why and use: records in order of creation
 * revision (then name), each accepted unless it conflicts with the local
 * facts or with a record accepted before it. Every agent that sees the same
 * registry decides the same, but for MESH_KEPT, which depends on what it
 * applied. 0 or -ENOMEM.
 */
int mesh_decide(struct mesh_node *nodes, size_t n, const struct mesh_policy *policy,
		const struct mesh_local *local);
/* The record a node's peer is made of (NULL: no peer). */
const struct mesh_record *mesh_node_peer(const struct mesh_node *node);
/* "self", "accepted", "kept", "refused", "removed" or "none": for the copy and veilctl mesh list. */
const char *mesh_node_state(const struct mesh_node *node);
void mesh_node_free(struct mesh_node *node);

/* Whether a prefix is a default route (0.0.0.0/0, ::/0). */
bool mesh_prefix_default(const struct conf_prefix *p);
/* Whether addr (AF_INET or AF_INET6) lies in p. */
bool mesh_prefix_holds(const struct conf_prefix *p, const struct sockaddr_storage *addr);

#endif
