/* SPDX-License-Identifier: MIT */
/*
 * The mesh agent's insides, shared by its files and seen by nothing else:
 *   agent.c      its life, and the registry: calls, the watch, the lease,
 *                failover (what the agent says to etcd);
 *   reconcile.c  from the view to veild and the routing table: decide,
 *                plan, apply, audit, the local copy;
 *   rotate.c     this node's static-key rotation.
 */
#ifndef VEIL_MESH_AGENT_INT_H
#define VEIL_MESH_AGENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "agent.h"
#include "apply.h"
#include "conf.h"
#include "ctl.h"
#include "etcd.h"
#include "http.h"
#include "view.h"

enum {
	LEASE_TTL_S = 10,
	KEEPALIVE_MS = 3000,
	KEEPALIVE_TIMEOUT_MS = 2500,
	CALL_TIMEOUT_MS = 4000,
	LIST_TIMEOUT_MS = 15000,
	BACKOFF_MIN_MS = 250,
	BACKOFF_MAX_MS = 5000,
	LOGIN_BACKOFF_MS = 15000,
	RESYNC_MS = 10000,
	DEVICE_RETRY_MS = 1000,
	SAVE_DELAY_MS = 1000,
	COMPLAIN_AGAIN_MS = 30000,
	AUTH_TRIES = 3,
	/*
	 * Between a rotation's announcement (committed) and the switch: every
	 * agent stages the next key within this (the applied-change p99 is
	 * 136 ms at 20 nodes, docs/mesh.md); one that missed it loses nothing
	 * either, since sessions outlive the switch.
	 */
	STAGE_WAIT_MS = 1500,
	SWITCH_RETRY_MS = 1000,
	STAGED_POLL_MS = 500,
	/*
	 * A key still staged this long after its announcement (the publication
	 * is late: the registry went away after the switch) is greeted with a
	 * handshake, which veild retries every few seconds. Not sooner: an
	 * initiation the node cannot answer yet would hold back, by WireGuard's
	 * spacing of retries, the one the publication starts.
	 */
	STAGED_GREET_MS = 4000,
	/*
	 * After a greeting the handshake completes within milliseconds, and the
	 * node sends on the new session at once: looked for this often, for a
	 * while, so that its packets are not dropped for want of allowed IPs.
	 */
	STAGED_FAST_POLL_MS = 20,
	STAGED_FAST_FOR_MS = 3000,
	ROTATE_RETRY_S = 60,  /* a scheduled rotation that was refused is tried again after this */
};

enum task {
	T_AUTH = 1,
	T_LIST = 2,
	T_PUBLISH = 4,
	T_LEASE = 8,
	T_ALIVE = 16,
};

/* A host name's last lookup, for records whose endpoint names a host. */
struct lookup {
	struct lookup *next;
	char endpoint[MESH_ENDPOINT_LEN];
	struct sockaddr_storage addr;
	socklen_t len; /* 0: not (yet) resolved */
	bool pending;
	uv_getaddrinfo_t req;
	struct agent *a;
};

struct agent {
	uv_loop_t *loop;
	struct conf c;
	char *password; /* locked memory */
	struct mesh_view view;
	char copy_path[PATH_MAX];

	/* The registry. */
	struct http *http;
	size_t member;            /* the Registry URL in use */
	unsigned int failures;    /* network failures in a row, over members */
	unsigned int auth_errors; /* tokens refused in a row */
	char *token;              /* etcd's, locked memory; NULL: authenticate */
	int64_t lease;            /* 0: none */
	unsigned int todo;        /* enum task bits */
	struct http_req *call;
	unsigned int call_task;
	struct http_req *watch;
	bool watch_restart;       /* the watch was ended on purpose: start it again */
	bool watching;            /* the watch said "created" */
	char watch_error[200];    /* why the member ended the watch, for the failover's line */
	struct http_req *ka;
	struct etcd_stream stream;
	bool removed;             /* this node's record was deleted by someone else */
	bool published;           /* the registry holds this node's record as it should be */
	bool password_refused;    /* read the password again before the next login */

	/* veild and the routing table. */
	uint8_t public_key[32];
	bool have_key;
	unsigned int ifindex;
	uint64_t routes_verified; /* uv_now of the last time every route was added again */
	struct sockaddr_storage *registry_addrs;
	size_t n_registry_addrs;
	struct lookup *lookups; /* each allocated alone: a pending one must not move */
	size_t n_lookups;

	uv_timer_t retry, keepalive, apply_timer, save_timer;

	/* A static-key rotation (docs/mesh.md), one at a time. */
	enum rot_state { ROT_IDLE, ROT_ANNOUNCE, ROT_WAIT, ROT_PUBLISH } rot;
	uint8_t *rot_key;         /* the next private key, locked memory, until the switch */
	uint8_t rot_pub[32], rot_old[32];
	int64_t rot_revision;     /* the announcement's */
	uv_timer_t rot_timer;     /* the wait between the announcement and the switch */
	uv_timer_t every_timer;   /* RotateEvery */
	uv_timer_t staged_timer;  /* while a peer's next key is staged: has it answered a handshake? */
	uint64_t staged_fast_until; /* uv_now until which the staged keys are looked at often */
	int64_t key_since;        /* unix seconds this node's key became its own; 0: unknown */
	/*
	 * The first apply greets every peer: a veild started anew has no
	 * sessions, while its peers would send into theirs for 15 s.
	 */
	bool greet_all;
	bool waiting;             /* the retry timer runs: no call until it fires */
	unsigned int closing;     /* handles still closing */
	bool stopping;
	void (*stopped)(void *data);
	void *stopped_data;

	/* The last complaint, not repeated within COMPLAIN_AGAIN_MS. */
	char said[256];
	uint64_t said_at;
};

/* agent.c */
int64_t agent__now_s(void);
/* An error said once, and again only when it changes or after a while. */
void agent__complain(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *agent__member_url(const struct agent *a);
/* Start whatever registry call comes next, if nothing is under way. */
void agent__pump(struct agent *a);
/* The record this node should have in the registry. */
int agent__own_record(const struct agent *a, struct mesh_record *r);
/* Publish this node's record if the registry's differs. */
void agent__check_own_record(struct agent *a);
void agent__end_requests(struct agent *a);
void agent__load_copy(struct agent *a);

/* reconcile.c */
/* One line per change applied or refused: veild's audit format, and the mesh's facts. */
void agent__audit(const struct agent *a, const char *event, const struct mesh_node *n,
		  const uint8_t *key, int64_t revision, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void agent__apply(struct agent *a);
void agent__on_apply_timer(uv_timer_t *t);
void agent__schedule_apply(struct agent *a, uint64_t delay_ms);
void agent__save_now(struct agent *a);
void agent__schedule_save(struct agent *a);

/* rotate.c */
int64_t agent__key_age_from_registry(struct agent *a);
void agent__schedule_rotation(struct agent *a);
void agent__rotation_published(struct agent *a, int64_t revision);

#endif
