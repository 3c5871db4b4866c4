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
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	case T_PUBLISH:
		log_info("published this node's record (%s)", a->view.prefix);
		break;
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

/* After veild took it: what was applied is now current, each change said once. */
static void applied(struct agent *a)
{
	char now[400], was[400];
	size_t i;

	for (i = 0; i < a->view.n; i++) {
		struct mesh_node *n = &a->view.nodes[i];
		const struct mesh_record *r = mesh_node_peer(n);

		if (!r) {
			if (n->applied)
				audit(a, "mesh_removed", n, n->current.public_key, n->mod_revision, NULL);
			if (n->applied)
				log_info("node %s is no longer a peer", n->name);
			mesh_record_free(&n->current);
			n->applied = false;
			continue;
		}
		if (n->verdict != MESH_ACCEPTED)
			continue;
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
	check_own_record(a);
	pump(a);
}

/* The peers veild should have, and the keys to take away: those the agent put there before. */
static int plan(struct agent *a, const struct ctl_device *dev, struct apply_peer **want, size_t *n_want,
		uint8_t (**remove)[32], size_t *n_remove)
{
	size_t i;

	*want = calloc(a->view.n + 1, sizeof(**want));
	*remove = calloc(a->view.n + 1, sizeof(**remove));
	*n_want = *n_remove = 0;
	if (!*want || !*remove)
		return -ENOMEM;
	for (i = 0; i < a->view.n; i++)
		if (mesh_node_peer(&a->view.nodes[i]))
			want_peer(a, &a->view.nodes[i], dev, &(*want)[(*n_want)++]);
	for (i = 0; i < a->view.n; i++) {
		const struct mesh_node *n = &a->view.nodes[i];
		const struct mesh_record *r = mesh_node_peer(n);
		size_t j;
		bool kept = false;

		if (!n->applied || (r && !sodium_memcmp(r->public_key, n->current.public_key, 32)))
			continue;
		for (j = 0; j < *n_want; j++)
			kept |= !sodium_memcmp((*want)[j].peer.public_key, n->current.public_key, 32);
		if (!kept)
			memcpy((*remove)[(*n_remove)++], n->current.public_key, 32);
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
		applied(a);
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
	a->retry.data = a->keepalive.data = a->apply_timer.data = a->save_timer.data = a;
	load_copy(a);
	*out = a;
	return 0;
}

void agent_start(struct agent *a)
{
	a->todo = T_AUTH | T_LIST | T_LEASE | T_ALIVE;
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
	uv_timer_t *timers[] = { &a->retry, &a->keepalive, &a->apply_timer, &a->save_timer };
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
	etcd_stream_reset(&a->stream);
	free(a->registry_addrs);
	while (a->lookups) {
		struct lookup *next = a->lookups->next;

		free(a->lookups);
		a->lookups = next;
	}
	free(a);
}
