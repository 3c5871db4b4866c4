// SPDX-License-Identifier: MIT
/*
 * The mesh agent (agent.h). Three things run at once on one libuv loop:
 *
 *   calls     one request at a time to the registry, from a set of tasks
 *             (authenticate, list, publish this node's record, take a
 *             lease, write the liveness key), in that order of need;
 *   the watch one long request whose body is the stream of changes under
 *             /veil/NETWORK/ from the revision after the list;
 *   the lease's keepalive, every few seconds, which also tells whether the
 *             member still answers.
 *
 * A call, watch or keepalive that fails on the network moves everything to
 * the next member (at once the first time, then with a growing pause); a
 * token etcd no longer takes is renewed; a compacted revision, or an
 * outage of every member, makes the agent list again. Changes reach veild
 * through `apply`, run on the loop's next turn after any change and every
 * RESYNC_MS to mend what drifted (veild restarted, a route deleted).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif
#include "apply.h"
#include "ctl.h"
#include "etcd.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "nl.h"
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

static void pump(struct agent *a);
static void schedule_apply(struct agent *a, uint64_t delay_ms);
static void schedule_save(struct agent *a);
static int64_t key_age_from_registry(struct agent *a);
static void schedule_rotation(struct agent *a);
static void on_every_timer(uv_timer_t *t);
static void rotation_published(struct agent *a, int64_t revision);

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* An error said once, and again only when it changes or after a while. */
static void complain(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void complain(struct agent *a, const char *fmt, ...)
{
	char line[sizeof(a->said)];
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!strcmp(line, a->said) && uv_now(a->loop) - a->said_at < COMPLAIN_AGAIN_MS)
		return;
	snprintf(a->said, sizeof(a->said), "%s", line);
	a->said_at = uv_now(a->loop);
	log_error("%s", line);
}

static const char *member_url(const struct agent *a)
{
	return a->c.mesh.registry[a->member];
}

static struct http_req *post(struct agent *a, const char *path, const char *body, long timeout_ms,
			     http_done_cb done, http_chunk_cb chunk)
{
	char url[1024];

	etcd_url(member_url(a), path, url, sizeof(url));
	return http_post(a->http, url, body, a->token, timeout_ms, done, chunk, a);
}

/* ---- keys ---------------------------------------------------------------------------------------- */

static void key_of(const struct agent *a, const char *what, char *out, size_t len)
{
	snprintf(out, len, "%s%s/%s", a->view.prefix, what, a->c.mesh.node);
}

/* The record this node should have in the registry. */
static int own_record(const struct agent *a, struct mesh_record *r)
{
	const struct conf_mesh *m = &a->c.mesh;

	memset(r, 0, sizeof(*r));
	snprintf(r->node, sizeof(r->node), "%s", m->node);
	memcpy(r->public_key, a->public_key, 32);
	snprintf(r->endpoint, sizeof(r->endpoint), "%s", m->endpoint ? m->endpoint : "");
	r->cipher = m->cipher;
	r->key_since = a->key_since;
	/* Announced, peers stage the next key until the switch. */
	if (a->rot == ROT_ANNOUNCE || a->rot == ROT_WAIT) {
		r->has_next = true;
		memcpy(r->next_public_key, a->rot_pub, 32);
	}
	if (m->n_advertise) {
		r->prefixes = malloc(m->n_advertise * sizeof(*r->prefixes));
		if (!r->prefixes)
			return -ENOMEM;
		memcpy(r->prefixes, m->advertise, m->n_advertise * sizeof(*r->prefixes));
		r->n_prefixes = m->n_advertise;
	}
	return 0;
}

/* Whether the registry's record of this node is what it should be. */
static bool own_record_current(struct agent *a)
{
	struct mesh_node *self = view_find(&a->view, a->c.mesh.node);
	struct mesh_record want;
	bool same;

	if (!self || !self->present || !self->parsed || own_record(a, &want))
		return false;
	same = mesh_record_equal(&want, &self->latest);
	mesh_record_free(&want);
	return same;
}

static bool self_present(struct agent *a)
{
	struct mesh_node *self = view_find(&a->view, a->c.mesh.node);

	return self && self->present;
}

/*
 * This node's record went, and not by this agent's hand: an administrator
 * took the node out (veilctl mesh remove). Publishing it again would undo
 * that, so the agent stops publishing until it is started again.
 */
static void self_removed(struct agent *a, bool was_present)
{
	if (!was_present || self_present(a) || a->removed)
		return;
	a->removed = true;
	a->todo &= ~T_PUBLISH;
	log_error("this node's record %snodes/%s was removed from the registry (veilctl mesh remove?): "
		  "its peers stay, and it is not published again until the agent restarts",
		  a->view.prefix, a->c.mesh.node);
}

static void check_own_record(struct agent *a)
{
	if (!a->have_key || a->removed || own_record_current(a))
		return;
	a->todo |= T_PUBLISH;
}

/* ---- failures ------------------------------------------------------------------------------------ */

static void end_requests(struct agent *a)
{
	/* A call cut short is done again at the next member: a publication is not lost. */
	if (a->call)
		a->todo |= a->call_task;
	http_cancel(a->call);
	a->call = NULL;
	http_cancel(a->watch);
	a->watch = NULL;
	http_cancel(a->ka);
	a->ka = NULL;
	a->watching = false;
	etcd_stream_reset(&a->stream);
}

static void on_retry(uv_timer_t *t)
{
	struct agent *a = t->data;

	a->waiting = false;
	pump(a);
}

static void wait_then_pump(struct agent *a, uint64_t ms)
{
	a->waiting = true;
	uv_timer_start(&a->retry, on_retry, ms, 0);
}

/*
 * The member did not answer, or broke off: everything moves to the next
 * one. The first move is at once; then a pause that doubles up to a limit.
 * After every member has failed in a row, the next success lists again.
 */
static void member_failed(struct agent *a, const char *what, int err)
{
	size_t n = a->c.mesh.n_registry;
	uint64_t pause = 0;

	complain(a, "registry %s: %s: %s; trying %s", member_url(a), what,
		 err == -EPROTO ? "TLS failed (certificate or key refused, or a member certificate the CA "
				  "did not sign)"
				: strerror(-err),
		 a->c.mesh.registry[(a->member + 1) % n]);
	end_requests(a);
	if (a->view.connected) {
		a->view.connected = false;
		schedule_save(a);
	}
	a->failures++;
	if (a->failures >= n)
		a->todo |= T_LIST;
	a->member = (a->member + 1) % n;
	if (a->failures > 1) {
		pause = BACKOFF_MIN_MS << (a->failures - 2 < 5 ? a->failures - 2 : 5);
		pause = pause > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pause;
	}
	wait_then_pump(a, pause);
}

/*
 * The password etcd refused may have been corrected since: read its source
 * again (file, credential or command) for the next try.
 */
static void reread_password(struct agent *a)
{
	struct conf_error err = { "" };
	char *password = NULL;

	if (keys_mesh_password(&a->c, &password, &err)) {
		complain(a, "%s", err.msg);
		return;
	}
	if (a->password)
		sodium_free(a->password);
	a->password = password;
}

/* etcd said no. Returns whether the task should simply be tried again now. */
static void refused(struct agent *a, unsigned int task, const char *what, const struct etcd_error *e)
{
	a->todo |= task;
	switch (e->kind) {
	case ETCD_ERR_AUTH:
		if (a->token)
			sodium_free(a->token);
		a->token = NULL;
		a->todo |= T_AUTH;
		if (++a->auth_errors < AUTH_TRIES) {
			pump(a);
			return;
		}
		a->auth_errors = 0;
		complain(a, "registry %s: %s: the token keeps being refused: %s", member_url(a), what,
			 e->message);
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	case ETCD_ERR_LOGIN:
		complain(a, "registry %s: etcd refused user \"%s\" with this password (RegistryUser, "
			 "RegistryPassword...): %s", member_url(a), a->c.mesh.user, e->message);
		a->password_refused = true;
		wait_then_pump(a, LOGIN_BACKOFF_MS);
		return;
	case ETCD_ERR_PERMISSION:
		complain(a, "registry %s: %s: user \"%s\" may not (its etcd role must read %s and write "
			 "%snodes/%s and %salive/%s): %s", member_url(a), what, a->c.mesh.user,
			 a->view.prefix, a->view.prefix, a->c.mesh.node, a->view.prefix, a->c.mesh.node,
			 e->message);
		wait_then_pump(a, LOGIN_BACKOFF_MS);
		return;
	case ETCD_ERR_UNAVAILABLE:
		member_failed(a, what, -EAGAIN);
		return;
	case ETCD_ERR_COMPACTED:
		a->todo |= T_LIST;
		pump(a);
		return;
	default:
		complain(a, "registry %s: %s: %s", member_url(a), what, e->message);
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	}
}

/* A success from the member: it answers. */
static void answered(struct agent *a)
{
	a->failures = 0;
}

/* ---- calls ----------------------------------------------------------------------------------------- */

static void on_call(struct http_req *req, int err, long status, const char *body, size_t len, void *data);

static const char *task_name(unsigned int t)
{
	switch (t) {
	case T_AUTH:
		return "authenticate";
	case T_LIST:
		return "list";
	case T_PUBLISH:
		return "publish this node's record";
	case T_LEASE:
		return "take a lease";
	default:
		return "write the liveness key";
	}
}

static void start_call(struct agent *a, unsigned int task, const char *path, char *body, long timeout)
{
	if (!body) {
		complain(a, "out of memory");
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	}
	a->todo &= ~task;
	a->call_task = task;
	a->call = post(a, path, body, timeout, on_call, NULL);
	if (task == T_AUTH)
		etcd_free_secret(body);
	else
		free(body);
	if (!a->call) {
		a->todo |= task;
		complain(a, "cannot start a request to the registry");
		wait_then_pump(a, BACKOFF_MAX_MS);
	}
}

static void call_publish(struct agent *a)
{
	struct mesh_record r;
	char key[VIEW_KEY_MAX + 80], *json;

	if (!a->have_key || a->removed || own_record(a, &r))
		return;
	json = mesh_record_format(&r);
	mesh_record_free(&r);
	key_of(a, "nodes", key, sizeof(key));
	start_call(a, T_PUBLISH, "/v3/kv/put", json ? etcd_body_put(key, json, 0) : NULL,
		   CALL_TIMEOUT_MS);
	free(json);
}

static void call_alive(struct agent *a)
{
	char key[VIEW_KEY_MAX + 80], value[96];

	key_of(a, "alive", key, sizeof(key));
	snprintf(value, sizeof(value), "{\"since\":%" PRId64 ",\"version\":\"%s\"}", now_s(),
		 VEIL_VERSION);
	start_call(a, T_ALIVE, "/v3/kv/put", etcd_body_put(key, value, a->lease), CALL_TIMEOUT_MS);
}

/* ---- the watch ------------------------------------------------------------------------------------- */

static int on_watch_msg(const char *json, size_t len, void *data)
{
	struct agent *a = data;
	struct etcd_watch_msg m;
	struct etcd_error e;
	int mask = 0, ret;
	bool canceled;
	size_t i;

	if (etcd_reply_error(200, json, len, &e)) {
		/*
		 * The member ends the stream with an error (it stops, it lost its
		 * leader): the watch is closed and on_watch_done moves on.
		 */
		snprintf(a->watch_error, sizeof(a->watch_error), "%s", e.message);
		return -ECANCELED;
	}
	if (etcd_parse_watch(json, len, &m)) {
		complain(a, "registry %s: a watch message that is not etcd's", member_url(a));
		return -EPROTO;
	}
	if (m.canceled && !m.compact_revision && m.cancel_reason[0]) {
		/* Refused at creation: a token to renew, or a permission the role lacks. */
		if (strstr(m.cancel_reason, "invalid auth token") || strstr(m.cancel_reason, "user name is empty")) {
			a->todo |= T_AUTH;
			a->watch_restart = true;
		} else {
			snprintf(a->watch_error, sizeof(a->watch_error), "%s", m.cancel_reason);
		}
		etcd_watch_msg_free(&m);
		return -ECANCELED;
	}
	if (m.created && !m.canceled) {
		a->watching = true;
		a->view.connected = true;
		a->failures = 0;
		log_info("watching %s at %s from revision %" PRId64, a->view.prefix, member_url(a),
			 a->view.revision + 1);
		schedule_save(a);
	}
	for (i = 0; i < m.n; i++) {
		struct etcd_kv *kv = &m.events[i].kv;
		bool put = m.events[i].type == ETCD_PUT, was = self_present(a);

		ret = view_apply(&a->view, kv->key, put ? kv->value : NULL, kv->value_len,
				 kv->create_revision, kv->mod_revision, now_s());
		mask |= ret > 0 ? ret : 0;
		self_removed(a, was);
	}
	if (m.canceled && m.compact_revision > 0) {
		log_info("revision %" PRId64 " was compacted away (now %" PRId64 "): listing again",
			 a->view.revision + 1, m.compact_revision);
		a->todo |= T_LIST;
		a->watch_restart = true;
	}
	canceled = m.canceled;
	etcd_watch_msg_free(&m);
	if (mask & VIEW_ALIVE)
		schedule_save(a);
	if (mask & (VIEW_RECORD | VIEW_POLICY))
		schedule_apply(a, 0);
	return canceled ? -ECANCELED : 0;
}

static int on_watch_chunk(struct http_req *req, const char *chunk, size_t len, void *data)
{
	struct agent *a = data;

	(void)req;
	return etcd_stream_feed(&a->stream, chunk, len, on_watch_msg, a);
}

static void on_watch_done(struct http_req *req, int err, long status, const char *body, size_t len,
			  void *data)
{
	struct agent *a = data;
	struct etcd_error e;

	(void)req;
	a->watch = NULL;
	a->watching = false;
	etcd_stream_reset(&a->stream);
	if (a->stopping)
		return;
	if (a->watch_restart) {
		a->watch_restart = false;
		pump(a);
		return;
	}
	if (!err && etcd_reply_error(status, body, len, &e)) {
		refused(a, 0, "watch", &e);
		return;
	}
	if (strstr(a->watch_error, "permission denied")) {
		e.kind = ETCD_ERR_PERMISSION;
		snprintf(e.message, sizeof(e.message), "%s", a->watch_error);
		a->watch_error[0] = '\0';
		refused(a, 0, "watch", &e);
		return;
	}
	if (a->watch_error[0]) {
		complain(a, "registry %s: the member ended the watch: %s", member_url(a), a->watch_error);
		a->watch_error[0] = '\0';
	}
	member_failed(a, "the watch ended", err && err != -ECANCELED ? err : -ECONNRESET);
}

static void start_watch(struct agent *a)
{
	char *body = etcd_body_watch(a->view.prefix, a->view.revision + 1);

	etcd_stream_reset(&a->stream);
	a->watch = body ? post(a, "/v3/watch", body, 0, on_watch_done, on_watch_chunk) : NULL;
	free(body);
	if (!a->watch) {
		complain(a, "cannot start the watch");
		wait_then_pump(a, BACKOFF_MAX_MS);
	}
}

/* ---- the lease ----------------------------------------------------------------------------------- */

static void on_keepalive(struct http_req *req, int err, long status, const char *body, size_t len,
			 void *data)
{
	struct agent *a = data;
	struct etcd_error e;
	int64_t id, ttl;

	(void)req;
	a->ka = NULL;
	if (err) {
		member_failed(a, "lease keepalive", err);
		return;
	}
	if (etcd_reply_error(status, body, len, &e)) {
		if (strstr(e.message, "lease not found")) {
			a->lease = 0;
			a->todo |= T_LEASE | T_ALIVE;
			pump(a);
			return;
		}
		refused(a, 0, "lease keepalive", &e);
		return;
	}
	answered(a);
	if (etcd_parse_lease(body, len, &id, &ttl) || ttl <= 0) {
		/* Expired while we were away: a new lease, and the liveness key again. */
		a->lease = 0;
		a->todo |= T_LEASE | T_ALIVE;
		pump(a);
	}
}

static void on_keepalive_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	char *body;

	if (a->stopping || a->waiting || !a->lease || a->ka || !a->watch)
		return;
	body = etcd_body_lease_keepalive(a->lease);
	a->ka = body ? post(a, "/v3/lease/keepalive", body, KEEPALIVE_TIMEOUT_MS, on_keepalive, NULL)
		     : NULL;
	free(body);
}

/* ---- the calls' answers -------------------------------------------------------------------------- */

static void listed(struct agent *a, const char *body, size_t len)
{
	struct etcd_range r;
	bool was;
	int mask;

	if (etcd_parse_range(body, len, &r)) {
		complain(a, "registry %s: a list reply that is not etcd's", member_url(a));
		a->todo |= T_LIST;
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	}
	was = self_present(a);
	mask = view_replace(&a->view, &r, now_s());
	self_removed(a, was);
	log_info("listed %zu keys under %s at revision %" PRId64, r.n, a->view.prefix, r.revision);
	a->view.revision = r.revision;
	etcd_range_free(&r);
	/* The watch goes on from the list's revision. */
	http_cancel(a->watch);
	a->watch = NULL;
	a->watching = false;
	check_own_record(a);
	if (mask)
		schedule_apply(a, 0);
}

static void on_call(struct http_req *req, int err, long status, const char *body, size_t len, void *data)
{
	struct agent *a = data;
	unsigned int task = a->call_task;
	struct etcd_error e;
	int64_t ttl;

	(void)req;
	a->call = NULL;
	if (err) {
		a->todo |= task;
		member_failed(a, task_name(task), err);
		return;
	}
	if (etcd_reply_error(status, body, len, &e)) {
		if (task == T_AUTH && strstr(e.message, "not enabled")) {
			/* A registry without authentication: nothing to log in to. */
			log_info("registry %s has no authentication enabled", member_url(a));
			pump(a);
			return;
		}
		refused(a, task, task_name(task), &e);
		return;
	}
	answered(a);
	switch (task) {
	case T_AUTH:
		if (etcd_parse_auth(body, len, &a->token)) {
			a->todo |= T_AUTH;
			complain(a, "registry %s: an authenticate reply without a token", member_url(a));
			wait_then_pump(a, BACKOFF_MAX_MS);
			return;
		}
		break;
	case T_LIST:
		a->auth_errors = 0;
		listed(a, body, len);
		break;
	case T_PUBLISH: {
		int64_t rev = 0;

		etcd_parse_revision(body, len, &rev);
		log_info("published this node's record (%s, revision %" PRId64 ")", a->view.prefix, rev);
		rotation_published(a, rev);
		break;
	}
	case T_LEASE:
		if (etcd_parse_lease(body, len, &a->lease, &ttl))
			a->todo |= T_LEASE;
		break;
	default:
		break;
	}
	pump(a);
}

/* Start whatever comes next, if nothing is under way. */
static void pump(struct agent *a)
{
	if (a->stopping || a->waiting || a->call)
		return;
	if ((a->todo & T_AUTH) && a->password_refused) {
		a->password_refused = false;
		reread_password(a);
	}
	if (a->todo & T_AUTH)
		start_call(a, T_AUTH, "/v3/auth/authenticate",
			   etcd_body_auth(a->c.mesh.user, a->password), CALL_TIMEOUT_MS);
	else if (a->todo & T_LIST)
		start_call(a, T_LIST, "/v3/kv/range", etcd_body_range_prefix(a->view.prefix, 0),
			   LIST_TIMEOUT_MS);
	else if (!a->watch)
		start_watch(a);
	if (a->call || a->waiting || !a->watch)
		return;
	if (a->todo & T_PUBLISH)
		call_publish(a);
	else if (a->todo & T_LEASE)
		start_call(a, T_LEASE, "/v3/lease/grant", etcd_body_lease_grant(LEASE_TTL_S),
			   CALL_TIMEOUT_MS);
	else if ((a->todo & T_ALIVE) && a->lease)
		call_alive(a);
}

/* ---- endpoints --------------------------------------------------------------------------------- */

static void on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct lookup *l = req->data;

	l->pending = false;
	if (status == UV_ECANCELED) {
		/* The agent stops. */
	} else if (status == 0 && ai && ai->ai_addrlen <= sizeof(l->addr)) {
		memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
		l->len = ai->ai_addrlen;
		schedule_apply(l->a, 0);
	} else {
		log_error("cannot resolve the endpoint %s: %s", l->endpoint,
			  status ? uv_strerror(status) : "no address");
	}
	uv_freeaddrinfo(ai);
}

/* host and port of "host:port" or "[v6]:port". */
static void split(const char *ep, char *host, size_t hostlen, const char **port)
{
	const char *colon = strrchr(ep, ':');
	size_t n;

	*port = colon ? colon + 1 : "";
	n = colon ? (size_t)(colon - ep) : strlen(ep);
	if (ep[0] == '[' && n >= 2) {
		ep++;
		n -= 2;
	}
	snprintf(host, hostlen, "%.*s", (int)n, ep);
}

/* A literal address now; a host name from the last lookup (one is started if none). */
static bool endpoint_addr(struct agent *a, const char *ep, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[NI_MAXHOST];
	const char *port;
	struct lookup *l;

	split(ep, host, sizeof(host), &port);
	if (getaddrinfo(host, port, &hints, &ai) == 0) {
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		*len = ai->ai_addrlen;
		freeaddrinfo(ai);
		return true;
	}
	for (l = a->lookups; l; l = l->next) {
		if (strcmp(l->endpoint, ep) != 0)
			continue;
		if (!l->len)
			return false;
		*ss = l->addr;
		*len = l->len;
		return true;
	}
	/* One lookup per name, kept while the agent runs; veild looks the name up again later. */
	if (a->n_lookups >= 4096 || !(l = calloc(1, sizeof(*l))))
		return false;
	l->next = a->lookups;
	a->lookups = l;
	a->n_lookups++;
	snprintf(l->endpoint, sizeof(l->endpoint), "%s", ep);
	l->a = a;
	l->req.data = l;
	hints.ai_flags = AI_NUMERICSERV;
	l->pending = uv_getaddrinfo(a->loop, &l->req, on_lookup, host, port, &hints) == 0;
	return false;
}

/* ---- applying --------------------------------------------------------------------------------- */

static void prefixes_text(const struct conf_prefix *p, size_t n, char *out, size_t len)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < n && o + 60 < len; i++) {
		char a[INET6_ADDRSTRLEN] = "?";

		inet_ntop(p[i].family, p[i].addr, a, sizeof(a));
		o += (size_t)snprintf(out + o, len - o, "%s%s/%u", i ? "," : "", a, p[i].cidr);
	}
	if (i < n)
		snprintf(out + o, len - o, ",...");
	if (!n)
		snprintf(out, len, "-");
}

static void audit(const struct agent *a, const char *event, const struct mesh_node *n,
		  const uint8_t *key, int64_t revision, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* One line per change applied or refused: veild's audit format, and the mesh's facts. */
static void audit(const struct agent *a, const char *event, const struct mesh_node *n,
		  const uint8_t *key, int64_t revision, const char *fmt, ...)
{
	char fp[12] = "-", extra[600] = "";
	va_list ap;

	if (key)
		mesh_fingerprint(key, fp);
	if (fmt) {
		extra[0] = ' ';
		va_start(ap, fmt);
		/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
		vsnprintf(extra + 1, sizeof(extra) - 1, fmt, ap);
		va_end(ap);
	}
	log_audit("event=%s iface=%s network=%s node=%s peer=%s revision=%" PRId64 "%s", event,
		  a->view.ifname, a->view.network, n->name, fp, revision, extra);
}

static void say_refusals(struct agent *a)
{
	size_t i;

	if (a->view.policy_raw && a->view.policy_why[0])
		complain(a, "the network's policy (%spolicy) is refused: %s", a->view.prefix,
			 a->view.policy_why);
	for (i = 0; i < a->view.n; i++) {
		struct mesh_node *n = &a->view.nodes[i];

		if (!n->present || !n->why[0] ||
		    (n->refusal_logged == n->mod_revision && !strcmp(n->refusal_said, n->why)))
			continue;
		n->refusal_logged = n->mod_revision;
		snprintf(n->refusal_said, sizeof(n->refusal_said), "%s", n->why);
		log_error("node %s's record (revision %" PRId64 ") is refused: %s%s", n->name,
			  n->mod_revision, n->why,
			  n->verdict == MESH_KEPT ? "; its peer stays as it was" : "");
		audit(a, "mesh_refused", n, n->parsed ? n->latest.public_key : NULL, n->mod_revision,
		      "reason=\"%s\"", n->why);
	}
}

static enum conf_cipher pair_cipher(const struct agent *a, const struct mesh_record *r)
{
	return a->c.mesh.cipher == CIPHER_AES256GCM && r->cipher == CIPHER_AES256GCM ? CIPHER_AES256GCM
										     : CIPHER_DEFAULT;
}

/* What veild should hold for one node's peer. */
static void want_peer(struct agent *a, const struct mesh_node *n, const struct ctl_device *dev,
		      struct apply_peer *w)
{
	const struct mesh_record *r = mesh_node_peer(n);
	const struct ctl_peer *running = NULL;
	size_t i;

	memset(w, 0, sizeof(*w));
	memcpy(w->peer.public_key, r->public_key, 32);
	w->peer.allowed_ips = n->use;
	w->peer.n_allowed_ips = n->n_use;
	w->peer.has_keepalive = true;
	w->peer.persistent_keepalive = a->c.mesh.keepalive;
	w->peer.cipher = pair_cipher(a, r);
	w->endpoint_name = "";
	/*
	 * A key that took over (a rotation, a node come back with a new key) or
	 * a peer just added: handshake now. The other side may hold sessions
	 * this side no longer has (it was removed, revoked, or veild restarted),
	 * and would send into them until its own timers gave up (15 s).
	 */
	w->kick = a->greet_all || !n->applied || sodium_memcmp(n->current.public_key, r->public_key, 32) != 0;
	for (i = 0; i < dev->n_peers; i++)
		if (!sodium_memcmp(dev->peers[i].public_key, r->public_key, 32))
			running = &dev->peers[i];
	if (!r->endpoint[0])
		return;
	if (ctl_endpoint_is_name(r->endpoint))
		w->endpoint_name = r->endpoint;
	/*
	 * Roaming moves a peer's endpoint; the record's is set again only when
	 * the record changed it, or the peer has none.
	 */
	if (running && running->endpoint_len && n->applied &&
	    !sodium_memcmp(n->current.public_key, r->public_key, 32) &&
	    !strcmp(n->current.endpoint, r->endpoint))
		return;
	if (endpoint_addr(a, r->endpoint, &w->peer.endpoint_addr, &w->peer.endpoint_len))
		return;
	w->peer.endpoint_len = 0;
}

/*
 * A rotating node's next key, staged: a second peer with the same endpoint
 * and no allowed IPs, so that a handshake with the new key can complete the
 * moment the node switches, while its traffic still goes to the current one.
 */
static void want_staged(struct agent *a, const struct mesh_record *r, const struct ctl_device *dev,
			struct apply_peer *w)
{
	bool running_with_endpoint = false;
	size_t i;

	memset(w, 0, sizeof(*w));
	memcpy(w->peer.public_key, r->next_public_key, 32);
	w->peer.has_keepalive = true;
	w->peer.cipher = pair_cipher(a, r);
	w->endpoint_name = r->endpoint[0] && ctl_endpoint_is_name(r->endpoint) ? r->endpoint : "";
	for (i = 0; i < dev->n_peers; i++)
		if (!sodium_memcmp(dev->peers[i].public_key, r->next_public_key, 32))
			running_with_endpoint = dev->peers[i].endpoint_len > 0;
	if (r->endpoint[0] && !running_with_endpoint &&
	    !endpoint_addr(a, r->endpoint, &w->peer.endpoint_addr, &w->peer.endpoint_len))
		w->peer.endpoint_len = 0;
}

/*
 * A staged key that completed a handshake: only the node holding its private
 * key could, so the node has switched, whatever the registry says yet. The
 * move its publication would bring is made now (the record is taken as
 * published locally; the real one, when it comes, says the same). Without
 * this, a node that switched while the registry went away would stay cut
 * off from each peer whose session needs a new handshake.
 */
static void on_staged_timer(uv_timer_t *t);

static bool any_staged(const struct agent *a)
{
	size_t i;

	for (i = 0; i < a->view.n; i++)
		if (a->view.nodes[i].applied && a->view.nodes[i].current.has_next)
			return true;
	return false;
}

/* A handshake with this peer now (persistent keepalive turned on and back off). */
static void greet(struct agent *a, const uint8_t key[static 32])
{
	struct sbuf req = { 0 };
	char hex[65], why[256];

	sodium_bin2hex(hex, sizeof(hex), key, 32);
	sbuf_printf(&req, "set=1\npublic_key=%s\nupdate_only=true\npersistent_keepalive_interval=0\n"
		    "persistent_keepalive_interval=1\npersistent_keepalive_interval=0\n\n", hex);
	if (!req.failed)
		ctl_set(a->view.ifname, &req, why, sizeof(why));
	sbuf_free(&req);
}

static void check_staged(struct agent *a)
{
	struct ctl_device dev = { 0 };
	char why[256], next[12];
	bool moved = false, staged = false;
	uint64_t now = uv_now(a->loop);
	size_t i, j;

	if (ctl_get(a->view.ifname, &dev, why, sizeof(why)))
		return;
	for (i = 0; i < a->view.n; i++) {
		struct mesh_node *n = &a->view.nodes[i];

		if (!n->applied || !n->current.has_next || !n->latest.has_next ||
		    sodium_memcmp(n->latest.next_public_key, n->current.next_public_key, 32))
			continue;
		staged = true;
		if (!n->staged_at)
			n->staged_at = (int64_t)now;
		if (now - (uint64_t)n->staged_at >= STAGED_GREET_MS && !n->staged_greeted) {
			n->staged_greeted = true;
			greet(a, n->latest.next_public_key);
			a->staged_fast_until = now + STAGED_FAST_FOR_MS;
		}
		for (j = 0; j < dev.n_peers; j++) {
			if (sodium_memcmp(dev.peers[j].public_key, n->latest.next_public_key, 32) ||
			    !dev.peers[j].last_handshake_sec)
				continue;
			memcpy(n->latest.public_key, n->latest.next_public_key, 32);
			n->latest.has_next = false;
			n->latest.key_since = now_s();
			mesh_fingerprint(n->latest.public_key, next);
			log_info("node %s's next key %s answered a handshake: it has switched; moving to it "
				 "before its publication arrives", n->name, next);
			moved = true;
		}
	}
	ctl_device_free(&dev);
	if (moved)
		schedule_apply(a, 0);
	else if (staged)
		uv_timer_start(&a->staged_timer, on_staged_timer,
			       now < a->staged_fast_until ? STAGED_FAST_POLL_MS : STAGED_POLL_MS, 0);
}

static void on_staged_timer(uv_timer_t *t)
{
	check_staged(t->data);
}

/* After veild took it: what was applied is now current, each change said once. */
static void applied(struct agent *a)
{
	char now[400], was[400];
	size_t i;

	for (i = 0; i < a->view.n; i++) {
		struct mesh_node *n = &a->view.nodes[i];
		const struct mesh_record *r = mesh_node_peer(n);

		if (!r) {
			bool revoked = n->applied && (mesh_policy_node_revoked(&a->view.policy, n->name) ||
						      mesh_policy_key_revoked(&a->view.policy, n->current.public_key) ||
						      (n->current.has_next &&
						       mesh_policy_key_revoked(&a->view.policy, n->current.next_public_key)));

			if (n->applied)
				audit(a, revoked ? "mesh_revoked" : "mesh_removed", n, n->current.public_key,
				      revoked ? a->view.revision : n->mod_revision, NULL);
			if (n->applied)
				log_info("node %s is no longer a peer%s", n->name, revoked ? ": it is revoked" : "");
			mesh_record_free(&n->current);
			n->applied = false;
			continue;
		}
		if (n->verdict != MESH_ACCEPTED)
			continue;
		if (r->has_next && (!n->applied || !n->current.has_next ||
				    sodium_memcmp(n->current.next_public_key, r->next_public_key, 32))) {
			char next[12];

			mesh_fingerprint(r->next_public_key, next);
			audit(a, "mesh_key_staged", n, r->public_key, n->mod_revision, "next=%s", next);
		}
		prefixes_text(n->use, n->n_use, now, sizeof(now));
		if (!n->applied) {
			audit(a, "mesh_joined", n, r->public_key, n->mod_revision, "endpoint=%s prefixes=%s",
			      r->endpoint[0] ? r->endpoint : "-", now);
		} else if (sodium_memcmp(n->current.public_key, r->public_key, 32)) {
			char old[12];

			mesh_fingerprint(n->current.public_key, old);
			audit(a, "mesh_key_changed", n, r->public_key, n->mod_revision, "was=%s", old);
		} else {
			if (strcmp(n->current.endpoint, r->endpoint) != 0)
				audit(a, "mesh_endpoint_changed", n, r->public_key, n->mod_revision,
				      "endpoint=%s was=%s", r->endpoint[0] ? r->endpoint : "-",
				      n->current.endpoint[0] ? n->current.endpoint : "-");
			prefixes_text(n->current.prefixes, n->current.n_prefixes, was, sizeof(was));
			if (strcmp(now, was) != 0)
				audit(a, "mesh_prefixes_changed", n, r->public_key, n->mod_revision,
				      "prefixes=%s was=%s", now, was);
			if (n->current.cipher != r->cipher)
				audit(a, "mesh_cipher_changed", n, r->public_key, n->mod_revision, "cipher=%s",
				      r->cipher == CIPHER_AES256GCM ? "aes256gcm" : "chacha20poly1305");
		}
		if (n->applied && mesh_record_equal(&n->current, r))
			continue;
		if (mesh_record_copy(&n->current, r) == 0) {
			n->applied = true;
			n->current_revision = n->mod_revision;
			if (!n->current.has_next) {
				n->staged_at = 0;
				n->staged_greeted = false;
			}
		}
	}
}

static uint32_t route_table(const struct agent *a)
{
	if (a->c.table == TABLE_ID)
		return a->c.table_id;
	return 254; /* main */
}

static int apply_route_set(struct agent *a)
{
	struct conf_prefix *want = NULL;
	size_t n_want = 0, i, cap = 0;
	char why[256];
	unsigned int ifindex;
	struct nl *nl;
	int ret;

	if (a->c.table == TABLE_OFF)
		return 0;
	for (i = 0; i < a->view.n; i++)
		cap += mesh_node_peer(&a->view.nodes[i]) ? a->view.nodes[i].n_use : 0;
	want = calloc(cap + 1, sizeof(*want));
	if (!want || nl_open(&nl)) {
		free(want);
		return -ENOMEM;
	}
	for (i = 0; i < a->view.n; i++) {
		const struct mesh_node *n = &a->view.nodes[i];

		if (mesh_node_peer(n) && n->n_use) {
			memcpy(want + n_want, n->use, n->n_use * sizeof(*want));
			n_want += n->n_use;
		}
	}
	ret = nl_link_index(nl, a->view.ifname, &ifindex);
	if (!ret) {
		/* Every RESYNC_MS each route is added again: one deleted by hand comes back. */
		bool verify = uv_now(a->loop) - a->routes_verified >= RESYNC_MS;

		if (ifindex != a->ifindex)
			a->view.n_routes = 0; /* a new link: the old one's routes went with it */
		a->ifindex = ifindex;
		if (verify)
			a->routes_verified = uv_now(a->loop);
		ret = apply_routes(nl, ifindex, route_table(a), want, n_want, verify, &a->view.routes,
				   &a->view.n_routes, why, sizeof(why));
		if (ret)
			complain(a, "%s: %s", a->view.ifname, why);
	}
	nl_close(nl);
	free(want);
	return ret;
}

static void local_facts(const struct agent *a, struct mesh_local *l)
{
	memset(l, 0, sizeof(*l));
	l->node = a->c.mesh.node;
	l->public_key = a->have_key ? a->public_key : NULL;
	l->own = a->c.mesh.advertise;
	l->n_own = a->c.mesh.n_advertise;
	l->static_peers = a->c.peers;
	l->n_static_peers = a->c.n_peers;
	l->registry = a->registry_addrs;
	l->n_registry = a->n_registry_addrs;
}

/* veild's key: known once its private key is set; a change means the record must be published. */
static void learn_key(struct agent *a, const struct ctl_device *dev)
{
	if (!dev->private_key || sodium_is_zero(dev->public_key, 32))
		return;
	if (a->have_key && !sodium_memcmp(a->public_key, dev->public_key, 32))
		return;
	memcpy(a->public_key, dev->public_key, 32);
	a->have_key = true;
	a->key_since = key_age_from_registry(a);
	check_own_record(a);
	schedule_rotation(a);
	pump(a);
}

/* The peers veild should have, and the keys to take away: those the agent put there before. */
static bool wanted(const struct apply_peer *want, size_t n, const uint8_t key[static 32])
{
	size_t j;

	for (j = 0; j < n; j++)
		if (!sodium_memcmp(want[j].peer.public_key, key, 32))
			return true;
	return false;
}

/*
 * The peers veild should have (each node's, and a rotating node's next key
 * staged), and the keys to take away: those the agent put there before and
 * wants no more.
 */
static int plan(struct agent *a, const struct ctl_device *dev, struct apply_peer **want, size_t *n_want,
		uint8_t (**remove)[32], size_t *n_remove)
{
	size_t i;

	*want = calloc(2 * a->view.n + 1, sizeof(**want));
	*remove = calloc(2 * a->view.n + 1, sizeof(**remove));
	*n_want = *n_remove = 0;
	if (!*want || !*remove)
		return -ENOMEM;
	for (i = 0; i < a->view.n; i++) {
		const struct mesh_node *n = &a->view.nodes[i];
		const struct mesh_record *r = mesh_node_peer(n);

		if (!r)
			continue;
		want_peer(a, n, dev, &(*want)[(*n_want)++]);
		if (r->has_next)
			want_staged(a, r, dev, &(*want)[(*n_want)++]);
	}
	for (i = 0; i < a->view.n; i++) {
		const struct mesh_node *n = &a->view.nodes[i];

		if (!n->applied)
			continue;
		if (!wanted(*want, *n_want, n->current.public_key))
			memcpy((*remove)[(*n_remove)++], n->current.public_key, 32);
		if (n->current.has_next && !wanted(*want, *n_want, n->current.next_public_key))
			memcpy((*remove)[(*n_remove)++], n->current.next_public_key, 32);
	}
	return 0;
}

static void save_now(struct agent *a)
{
	int ret;

	a->view.saved = now_s();
	ret = view_save(&a->view, a->copy_path);
	if (ret)
		complain(a, "cannot write the local copy %s: %s", a->copy_path, strerror(-ret));
}

static void on_save_timer(uv_timer_t *t)
{
	save_now(t->data);
	malloc_trim(0);
}

/* Liveness and connection changes: saved within SAVE_DELAY_MS, at most that often. */
static void schedule_save(struct agent *a)
{
	if (!a->stopping && !uv_is_active((uv_handle_t *)&a->save_timer))
		uv_timer_start(&a->save_timer, on_save_timer, SAVE_DELAY_MS, 0);
}

static void apply(struct agent *a)
{
	struct ctl_device dev = { 0 };
	struct apply_peer *want = NULL;
	uint8_t(*remove)[32] = NULL;
	size_t n_want = 0, n_remove = 0;
	struct mesh_local l;
	char why[256] = "";
	int ret;

	ret = ctl_get(a->view.ifname, &dev, why, sizeof(why));
	if (ret) {
		complain(a, "%s: cannot read veild's peers: %s", a->view.ifname, why[0] ? why : strerror(-ret));
		schedule_apply(a, DEVICE_RETRY_MS);
		return;
	}
	learn_key(a, &dev);
	local_facts(a, &l);
	ret = mesh_decide(a->view.nodes, a->view.n, &a->view.policy, &l);
	if (!ret) {
		say_refusals(a);
		ret = plan(a, &dev, &want, &n_want, &remove, &n_remove);
	}
	if (!ret)
		ret = apply_peers(a->view.ifname, &dev, want, n_want, (const uint8_t(*)[32])remove,
				  n_remove, why, sizeof(why));
	if (ret) {
		complain(a, "%s: veild refused the mesh's peers: %s%s%s", a->view.ifname, strerror(-ret),
			 why[0] ? ": " : "", why);
		schedule_apply(a, DEVICE_RETRY_MS);
	} else {
		a->greet_all = false;
		applied(a);
		if (!a->stopping && any_staged(a) && !uv_is_active((uv_handle_t *)&a->staged_timer))
			uv_timer_start(&a->staged_timer, on_staged_timer, STAGED_POLL_MS, 0);
		if (apply_route_set(a))
			schedule_apply(a, DEVICE_RETRY_MS);
		uv_timer_start(&a->save_timer, on_save_timer, 0, 0);
	}
	free(want);
	free(remove);
	ctl_device_free(&dev);
}

static void on_apply_timer(uv_timer_t *t)
{
	struct agent *a = t->data;

	apply(a);
	if (!uv_is_active((uv_handle_t *)&a->apply_timer))
		uv_timer_start(&a->apply_timer, on_apply_timer, RESYNC_MS, 0);
}

static void schedule_apply(struct agent *a, uint64_t delay_ms)
{
	if (a->stopping)
		return;
	if (uv_is_active((uv_handle_t *)&a->apply_timer) &&
	    uv_timer_get_due_in(&a->apply_timer) <= delay_ms)
		return;
	uv_timer_start(&a->apply_timer, on_apply_timer, delay_ms, 0);
}

/* ---- rotation ---------------------------------------------------------------------------------------- */
/*
 * A static-key rotation, on `veilctl mesh rotate` (SIGUSR1) or RotateEvery:
 *   1. announce: this node's record names the next public key; every agent
 *      stages it as a second peer, without allowed IPs (mesh_key_staged);
 *   2. wait STAGE_WAIT_MS after the announcement is committed;
 *   3. switch: veild takes the new private key and keeps its sessions
 *      (rotate_private_key); then the key file is rewritten (file source);
 *   4. publish: the record's public key is the new one; every agent moves
 *      the allowed IPs and endpoint to the staged peer, drops the old one
 *      and starts a handshake at once (mesh_key_changed).
 * docs/mesh.md says why no pair is left without a usable key at any step.
 */

/* When this node's key became its own: the registry's word if it is the same key, else now. */
static int64_t key_age_from_registry(struct agent *a)
{
	struct mesh_node *self = view_find(&a->view, a->c.mesh.node);

	if (self && self->present && self->parsed && self->latest.key_since > 0 &&
	    !sodium_memcmp(self->latest.public_key, a->public_key, 32))
		return self->latest.key_since;
	return now_s();
}

static void rotation_done(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A rotation ends (done, refused or given up): veilctl mesh rotate reads the result in the copy. */
static void rotation_done(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(a->view.rotation_result, sizeof(a->view.rotation_result), fmt, ap);
	va_end(ap);
	a->view.rotations++;
	if (a->rot_key)
		sodium_free(a->rot_key);
	a->rot_key = NULL;
	a->rot = ROT_IDLE;
	schedule_save(a);
	/* A refused one is tried again later, not at once: its cause (the registry away) may last. */
	if (strncmp(a->view.rotation_result, "rotated", 7) != 0 && a->c.mesh.rotate_every && a->have_key)
		uv_timer_start(&a->every_timer, on_every_timer, (uint64_t)ROTATE_RETRY_S * 1000, 0);
	else
		schedule_rotation(a);
}

/* The next private key: a fresh one for a key file, else what the source holds now. */
static int next_key(struct agent *a, char *why, size_t whylen)
{
	const struct conf_key *k = &a->c.private_key;
	int ret = 0;

	a->rot_key = sodium_malloc(32);
	if (!a->rot_key)
		return -ENOMEM;
	switch (k->source) {
	case KEYSRC_FILE:
		randombytes_buf(a->rot_key, 32);
		a->rot_key[0] &= 248;
		a->rot_key[31] = (a->rot_key[31] & 127) | 64;
		break;
	case KEYSRC_CREDENTIAL:
		ret = key_from_credential(k->arg, a->rot_key, why, whylen);
		break;
	case KEYSRC_COMMAND:
		ret = key_from_command(k->arg, a->rot_key, why, whylen);
		break;
	default:
		snprintf(why, whylen, "an inline PrivateKey cannot be rotated: use PrivateKeyFile");
		ret = -EINVAL;
	}
	if (!ret && crypto_scalarmult_base(a->rot_pub, a->rot_key)) {
		snprintf(why, whylen, "the new key is not a usable X25519 key");
		ret = -EINVAL;
	}
	if (!ret && !sodium_memcmp(a->rot_pub, a->public_key, 32)) {
		snprintf(why, whylen, "%s still holds the current key: put the next key there first",
			 k->source == KEYSRC_CREDENTIAL ? "the credential" : "the key command's output");
		ret = -EEXIST;
	}
	return ret;
}

void agent_rotate(struct agent *a)
{
	char why[512] = "", fp[12];
	int ret;

	if (a->rot != ROT_IDLE) {
		log_info("a rotation is under way already");
		return;
	}
	if (!a->have_key || a->removed || !a->view.connected) {
		rotation_done(a, "refused: %s", !a->have_key ? "veild has no key yet"
						: a->removed ? "this node was removed from the registry"
							     : "the registry is not reached (try again once it is)");
		log_error("rotation %s", a->view.rotation_result);
		return;
	}
	ret = next_key(a, why, sizeof(why));
	if (ret) {
		rotation_done(a, "refused: %s", why);
		log_error("rotation %s", a->view.rotation_result);
		return;
	}
	memcpy(a->rot_old, a->public_key, 32);
	mesh_fingerprint(a->rot_pub, fp);
	log_info("rotating this node's key: announcing the next one, %s", fp);
	a->rot = ROT_ANNOUNCE;
	a->todo |= T_PUBLISH;
	pump(a);
}

/* The base64 key and a newline, to a fresh 0600 file renamed over the key file. */
static int write_key_file(const char *path, const uint8_t key[static 32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL) + 1];
	char tmp[PATH_MAX];
	size_t len;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sodium_bin2base64(b64, sizeof(b64) - 1, key, 32, sodium_base64_VARIANT_ORIGINAL);
	len = strlen(b64);
	b64[len++] = '\n';
	if (write(fd, b64, len) != (ssize_t)len || fsync(fd) < 0)
		ret = -EIO;
	if (close(fd) < 0 && !ret)
		ret = -EIO;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	sodium_memzero(b64, sizeof(b64));
	return ret;
}

static int switch_veild(struct agent *a, char *why, size_t whylen)
{
	struct sbuf req = { 0 };
	char hex[65];
	int ret;

	sodium_bin2hex(hex, sizeof(hex), a->rot_key, 32);
	sbuf_printf(&req, "set=1\nrotate_private_key=%s\n\n", hex);
	sodium_memzero(hex, sizeof(hex));
	ret = req.failed ? -ENOMEM : ctl_set(a->view.ifname, &req, why, whylen);
	sbuf_free(&req);
	return ret;
}

/* Step 3, once the wait is over: veild first, then the key file. */
static void on_rot_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	char why[256] = "", old[12], now[12];
	int ret;

	if (a->rot != ROT_WAIT)
		return;
	/* A switch the registry cannot hear of would leave the peers on the old key: wait for it. */
	if (!a->view.connected) {
		log_info("the rotation's switch waits for the registry");
		uv_timer_start(&a->rot_timer, on_rot_timer, SWITCH_RETRY_MS, 0);
		return;
	}
	ret = switch_veild(a, why, sizeof(why));
	if (ret) {
		/* Given up: the record goes back to the current key alone, and the peers unstage. */
		rotation_done(a, "failed: veild refused the new key: %s%s%s", strerror(-ret),
			      why[0] ? ": " : "", why);
		log_error("rotation %s", a->view.rotation_result);
		a->todo |= T_PUBLISH;
		pump(a);
		return;
	}
	if (a->c.private_key.source == KEYSRC_FILE) {
		ret = write_key_file(a->c.private_key.arg, a->rot_key);
		if (ret)
			log_error("veild runs on the new key, but %s could not be rewritten (%s): veild "
				  "would come back on the old key", a->c.private_key.arg, strerror(-ret));
	}
	mesh_fingerprint(a->rot_old, old);
	mesh_fingerprint(a->rot_pub, now);
	memcpy(a->public_key, a->rot_pub, 32);
	a->key_since = now_s();
	sodium_free(a->rot_key);
	a->rot_key = NULL;
	a->rot = ROT_PUBLISH;
	log_audit("event=mesh_key_switched iface=%s network=%s node=%s peer=%s was=%s revision=%" PRId64,
		  a->view.ifname, a->view.network, a->c.mesh.node, now, old, a->rot_revision);
	a->todo |= T_PUBLISH;
	pump(a);
}

/* A publication went through: it may be a rotation's step. */
static void rotation_published(struct agent *a, int64_t revision)
{
	char old[12], next[12];

	mesh_fingerprint(a->rot_old, old);
	mesh_fingerprint(a->rot_pub, next);
	if (a->rot == ROT_ANNOUNCE) {
		a->rot = ROT_WAIT;
		a->rot_revision = revision;
		log_audit("event=mesh_rotation_announced iface=%s network=%s node=%s peer=%s next=%s "
			  "revision=%" PRId64, a->view.ifname, a->view.network, a->c.mesh.node, old, next,
			  revision);
		uv_timer_start(&a->rot_timer, on_rot_timer, STAGE_WAIT_MS, 0);
	} else if (a->rot == ROT_PUBLISH) {
		log_audit("event=mesh_rotated iface=%s network=%s node=%s peer=%s was=%s revision=%" PRId64,
			  a->view.ifname, a->view.network, a->c.mesh.node, next, old, revision);
		rotation_done(a, "rotated: %s -> %s at revision %" PRId64, old, next, revision);
	}
}

static void on_every_timer(uv_timer_t *t)
{
	agent_rotate(t->data);
}

/*
 * RotateEvery: the next rotation at the key's age plus the period, less a
 * jitter drawn anew each time (up to a tenth of the period), so that a
 * fleet whose keys were made together does not rotate together.
 */
static void schedule_rotation(struct agent *a)
{
	uint64_t period = a->c.mesh.rotate_every, jitter = 0, due_in;
	int64_t due, now = now_s();

	if (!period || !a->have_key || a->stopping)
		return;
	if (period >= 10)
		jitter = randombytes_uniform((uint32_t)(period / 10 < UINT32_MAX ? period / 10 : UINT32_MAX));
	due = a->key_since + (int64_t)(period - jitter);
	due_in = due > now ? (uint64_t)(due - now) : 1;
	log_info("next rotation in %" PRIu64 " s (RotateEvery %" PRIu64 " s, less %" PRIu64 " s of jitter)",
		 due_in, period, jitter);
	uv_timer_start(&a->every_timer, on_every_timer, due_in * 1000, 0);
}

/* ---- life ------------------------------------------------------------------------------------------ */

/* The host of https://host[:port][/], without brackets. */
static void url_host(const char *url, char *host, size_t len)
{
	const char *h = url + 8, *end;

	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = h + strcspn(h, ":/");
	}
	snprintf(host, len, "%.*s", (int)(end ? end - h : (long)strlen(h)), h);
}

/* The registry members' addresses: no record may route them into the tunnel. */
static int registry_addrs(struct agent *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *p;
	char host[NI_MAXHOST];
	size_t i;

	for (i = 0; i < a->c.mesh.n_registry; i++) {
		url_host(a->c.mesh.registry[i], host, sizeof(host));
		if (getaddrinfo(host, NULL, &hints, &ai)) {
			log_error("cannot resolve the registry member %s: records are not checked "
				  "against its address", a->c.mesh.registry[i]);
			continue;
		}
		for (p = ai; p; p = p->ai_next) {
			struct sockaddr_storage *g = realloc(a->registry_addrs,
							     (a->n_registry_addrs + 1) * sizeof(*g));

			if (!g) {
				freeaddrinfo(ai);
				return -ENOMEM;
			}
			a->registry_addrs = g;
			memset(&g[a->n_registry_addrs], 0, sizeof(*g));
			memcpy(&g[a->n_registry_addrs++], p->ai_addr, p->ai_addrlen);
		}
		freeaddrinfo(ai);
	}
	return 0;
}

/* This node's own Advertise must not route a registry member into the tunnel either. */
static int check_advertise(const struct agent *a)
{
	size_t i, j;

	for (i = 0; i < a->c.mesh.n_advertise; i++) {
		for (j = 0; j < a->n_registry_addrs; j++) {
			if (mesh_prefix_holds(&a->c.mesh.advertise[i], &a->registry_addrs[j])) {
				log_error("%s: [Mesh] Advertise holds a registry member's address: the "
					  "registry's own traffic would enter the tunnel", a->c.path);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static void load_copy(struct agent *a)
{
	char why[256];
	int ret = view_load(&a->view, a->copy_path, why, sizeof(why));

	if (ret == -ENOENT)
		return;
	if (ret) {
		log_error("the local copy %s is not used: %s", a->copy_path, why[0] ? why : strerror(-ret));
		view_free(&a->view);
		view_init(&a->view, a->c.mesh.network, a->c.mesh.node, a->c.name);
		return;
	}
	a->view.connected = false;
	log_info("the local copy %s has %zu nodes at revision %" PRId64, a->copy_path, a->view.n,
		 a->view.revision);
}

int agent_new(uv_loop_t *loop, struct conf *c, char *password, struct agent **out)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct http_tls tls;
	int ret;

	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->c = *c;
	memset(c, 0, sizeof(*c));
	a->password = password;
	view_init(&a->view, a->c.mesh.network, a->c.mesh.node, a->c.name);
	view_path(a->c.name, a->copy_path, sizeof(a->copy_path));
	ret = view_make_dir(a->copy_path);
	if (ret)
		log_error("cannot make the directory of %s: %s", a->copy_path, strerror(-ret));
	tls.ca = a->c.mesh.ca;
	tls.cert = a->c.mesh.cert;
	tls.key = a->c.mesh.key;
	ret = http_new(loop, &tls, &a->http);
	if (!ret)
		ret = registry_addrs(a);
	if (!ret)
		ret = check_advertise(a);
	if (ret) {
		agent_free(a);
		return ret;
	}
	uv_timer_init(loop, &a->retry);
	uv_timer_init(loop, &a->keepalive);
	uv_timer_init(loop, &a->apply_timer);
	uv_timer_init(loop, &a->save_timer);
	uv_timer_init(loop, &a->rot_timer);
	uv_timer_init(loop, &a->every_timer);
	uv_timer_init(loop, &a->staged_timer);
	a->retry.data = a->keepalive.data = a->apply_timer.data = a->save_timer.data = a;
	a->rot_timer.data = a->every_timer.data = a->staged_timer.data = a;
	load_copy(a);
	*out = a;
	return 0;
}

void agent_start(struct agent *a)
{
	a->todo = T_AUTH | T_LIST | T_LEASE | T_ALIVE;
	a->greet_all = true;
	/* The local copy first: peers are back before the registry answers. */
	apply(a);
	uv_timer_start(&a->apply_timer, on_apply_timer, RESYNC_MS, 0);
	uv_timer_start(&a->keepalive, on_keepalive_timer, KEEPALIVE_MS, KEEPALIVE_MS);
	pump(a);
}

static void on_closed(uv_handle_t *h)
{
	struct agent *a = h->data;

	if (--a->closing == 0 && a->stopped)
		a->stopped(a->stopped_data);
}

static void close_all(struct agent *a)
{
	uv_timer_t *timers[] = { &a->retry, &a->keepalive, &a->apply_timer, &a->save_timer,
				 &a->rot_timer, &a->every_timer, &a->staged_timer };
	struct lookup *l;
	size_t i;

	end_requests(a);
	http_free(a->http);
	a->http = NULL;
	for (i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		a->closing++;
		uv_close((uv_handle_t *)timers[i], on_closed);
	}
	for (l = a->lookups; l; l = l->next)
		if (l->pending)
			uv_cancel((uv_req_t *)&l->req);
}

static void on_close_timer(uv_timer_t *t)
{
	close_all(t->data);
}

static void on_revoked(struct http_req *req, int err, long status, const char *body, size_t len,
		       void *data)
{
	struct agent *a = data;

	(void)req;
	(void)body;
	(void)len;
	a->call = NULL;
	if (err || status != 200)
		log_info("the lease was not given up (%s): this node shows as stale within %d s",
			 err ? strerror(-err) : "refused", LEASE_TTL_S);
	/* Not from inside the client's callback: the client is freed on the loop's next turn. */
	uv_timer_start(&a->retry, on_close_timer, 0, 0);
}

void agent_stop(struct agent *a, void (*done)(void *data), void *data)
{
	char *body;

	a->stopping = true;
	a->stopped = done;
	a->stopped_data = data;
	a->view.connected = false; /* the copy says so to veilctl mesh list after the agent */
	save_now(a);
	end_requests(a);
	body = a->lease ? etcd_body_lease_revoke(a->lease) : NULL;
	/* Giving up the lease ends the liveness key at once; bounded, as everything. */
	a->call = body ? post(a, "/v3/lease/revoke", body, 1500, on_revoked, NULL) : NULL;
	free(body);
	if (!a->call)
		close_all(a);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	if (a->http)
		http_free(a->http);
	view_free(&a->view);
	conf_free(&a->c);
	if (a->password)
		sodium_free(a->password);
	if (a->token)
		sodium_free(a->token);
	if (a->rot_key)
		sodium_free(a->rot_key);
	etcd_stream_reset(&a->stream);
	free(a->registry_addrs);
	while (a->lookups) {
		struct lookup *next = a->lookups->next;

		free(a->lookups);
		a->lookups = next;
	}
	free(a);
}
