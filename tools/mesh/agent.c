// SPDX-License-Identifier: MIT
/*
 * The mesh agent (agent.h): its life and its talk with the registry. Three
 * things run at once on one libuv loop:
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
 * through agent__apply (reconcile.c), run on the loop's next turn after any change and every
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

#include "agent_int.h"
#include "keys.h"
#include "log.h"
#include "nl.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

int64_t agent__now_s(void)
{
	return (int64_t)time(NULL);
}

/* An error said once, and again only when it changes or after a while. */
void agent__complain(struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void agent__complain(struct agent *a, const char *fmt, ...)
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

const char *agent__member_url(const struct agent *a)
{
	return a->c.mesh.registry[a->member];
}

static struct http_req *post(struct agent *a, const char *path, const char *body, long timeout_ms,
			     http_done_cb done, http_chunk_cb chunk)
{
	char url[1024];

	etcd_url(agent__member_url(a), path, url, sizeof(url));
	return http_post(a->http, url, body, a->token, timeout_ms, done, chunk, a);
}

/* ---- keys ---------------------------------------------------------------------------------------- */

static void key_of(const struct agent *a, const char *what, char *out, size_t len)
{
	snprintf(out, len, "%s%s/%s", a->view.prefix, what, a->c.mesh.node);
}

/* The record this node should have in the registry. */
int agent__own_record(const struct agent *a, struct mesh_record *r)
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

	if (!self || !self->present || !self->parsed || agent__own_record(a, &want))
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

void agent__check_own_record(struct agent *a)
{
	if (!a->have_key || a->removed || own_record_current(a))
		return;
	a->todo |= T_PUBLISH;
}

/* ---- failures ------------------------------------------------------------------------------------ */

void agent__end_requests(struct agent *a)
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
	agent__pump(a);
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

	agent__complain(a, "registry %s: %s: %s; trying %s", agent__member_url(a), what,
		 err == -EPROTO ? "TLS failed (certificate or key refused, or a member certificate the CA "
				  "did not sign)"
				: strerror(-err),
		 a->c.mesh.registry[(a->member + 1) % n]);
	agent__end_requests(a);
	if (a->view.connected) {
		a->view.connected = false;
		agent__schedule_save(a);
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
		agent__complain(a, "%s", err.msg);
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
			agent__pump(a);
			return;
		}
		a->auth_errors = 0;
		agent__complain(a, "registry %s: %s: the token keeps being refused: %s", agent__member_url(a), what,
			 e->message);
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	case ETCD_ERR_LOGIN:
		agent__complain(a, "registry %s: etcd refused user \"%s\" with this password (RegistryUser, "
			 "RegistryPassword...): %s", agent__member_url(a), a->c.mesh.user, e->message);
		a->password_refused = true;
		wait_then_pump(a, LOGIN_BACKOFF_MS);
		return;
	case ETCD_ERR_PERMISSION:
		agent__complain(a, "registry %s: %s: user \"%s\" may not (its etcd role must read %s and write "
			 "%snodes/%s and %salive/%s): %s", agent__member_url(a), what, a->c.mesh.user,
			 a->view.prefix, a->view.prefix, a->c.mesh.node, a->view.prefix, a->c.mesh.node,
			 e->message);
		wait_then_pump(a, LOGIN_BACKOFF_MS);
		return;
	case ETCD_ERR_UNAVAILABLE:
		member_failed(a, what, -EAGAIN);
		return;
	case ETCD_ERR_COMPACTED:
		a->todo |= T_LIST;
		agent__pump(a);
		return;
	default:
		agent__complain(a, "registry %s: %s: %s", agent__member_url(a), what, e->message);
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
		agent__complain(a, "out of memory");
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
		agent__complain(a, "cannot start a request to the registry");
		wait_then_pump(a, BACKOFF_MAX_MS);
	}
}

static void call_publish(struct agent *a)
{
	struct mesh_record r;
	char key[VIEW_KEY_MAX + 80], *json;

	if (!a->have_key || a->removed || agent__own_record(a, &r))
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
	snprintf(value, sizeof(value), "{\"since\":%" PRId64 ",\"version\":\"%s\"}", agent__now_s(),
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
		agent__complain(a, "registry %s: a watch message that is not etcd's", agent__member_url(a));
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
		log_info("watching %s at %s from revision %" PRId64, a->view.prefix, agent__member_url(a),
			 a->view.revision + 1);
		agent__schedule_save(a);
	}
	for (i = 0; i < m.n; i++) {
		struct etcd_kv *kv = &m.events[i].kv;
		bool put = m.events[i].type == ETCD_PUT, was = self_present(a);

		ret = view_apply(&a->view, kv->key, put ? kv->value : NULL, kv->value_len,
				 kv->create_revision, kv->mod_revision, agent__now_s());
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
		agent__schedule_save(a);
	if (mask & (VIEW_RECORD | VIEW_POLICY))
		agent__schedule_apply(a, 0);
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
		agent__pump(a);
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
		agent__complain(a, "registry %s: the member ended the watch: %s", agent__member_url(a), a->watch_error);
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
		agent__complain(a, "cannot start the watch");
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
			agent__pump(a);
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
		agent__pump(a);
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
		agent__complain(a, "registry %s: a list reply that is not etcd's", agent__member_url(a));
		a->todo |= T_LIST;
		wait_then_pump(a, BACKOFF_MAX_MS);
		return;
	}
	was = self_present(a);
	mask = view_replace(&a->view, &r, agent__now_s());
	self_removed(a, was);
	log_info("listed %zu keys under %s at revision %" PRId64, r.n, a->view.prefix, r.revision);
	a->view.revision = r.revision;
	etcd_range_free(&r);
	/* The watch goes on from the list's revision. */
	http_cancel(a->watch);
	a->watch = NULL;
	a->watching = false;
	agent__check_own_record(a);
	if (mask)
		agent__schedule_apply(a, 0);
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
			log_info("registry %s has no authentication enabled", agent__member_url(a));
			agent__pump(a);
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
			agent__complain(a, "registry %s: an authenticate reply without a token", agent__member_url(a));
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
		agent__rotation_published(a, rev);
		break;
	}
	case T_LEASE:
		if (etcd_parse_lease(body, len, &a->lease, &ttl))
			a->todo |= T_LEASE;
		break;
	default:
		break;
	}
	agent__pump(a);
}

/* Start whatever comes next, if nothing is under way. */
void agent__pump(struct agent *a)
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

void agent__load_copy(struct agent *a)
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
	agent__load_copy(a);
	*out = a;
	return 0;
}

void agent_start(struct agent *a)
{
	a->todo = T_AUTH | T_LIST | T_LEASE | T_ALIVE;
	a->greet_all = true;
	/* The local copy first: peers are back before the registry answers. */
	agent__apply(a);
	uv_timer_start(&a->apply_timer, agent__on_apply_timer, RESYNC_MS, 0);
	uv_timer_start(&a->keepalive, on_keepalive_timer, KEEPALIVE_MS, KEEPALIVE_MS);
	agent__pump(a);
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

	agent__end_requests(a);
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
	agent__save_now(a);
	agent__end_requests(a);
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
