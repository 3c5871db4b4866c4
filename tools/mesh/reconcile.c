// SPDX-License-Identifier: MIT
/*
 * From the agent's view to the node (agent_int.h): each record decided on,
 * veild's peers planned and applied (a rotating node's next key staged), the
 * routes, one audit line per change, and the local copy saved.
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
		agent__schedule_apply(l->a, 0);
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

void agent__audit(const struct agent *a, const char *event, const struct mesh_node *n,
		  const uint8_t *key, int64_t revision, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* One line per change applied or refused: veild's agent__audit format, and the mesh's facts. */
void agent__audit(const struct agent *a, const char *event, const struct mesh_node *n,
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
		agent__complain(a, "the network's policy (%spolicy) is refused: %s", a->view.prefix,
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
		agent__audit(a, "mesh_refused", n, n->parsed ? n->latest.public_key : NULL, n->mod_revision,
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
			n->latest.key_since = agent__now_s();
			mesh_fingerprint(n->latest.public_key, next);
			log_info("node %s's next key %s answered a handshake: it has switched; moving to it "
				 "before its publication arrives", n->name, next);
			moved = true;
		}
	}
	ctl_device_free(&dev);
	if (moved)
		agent__schedule_apply(a, 0);
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
				agent__audit(a, revoked ? "mesh_revoked" : "mesh_removed", n, n->current.public_key,
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
			agent__audit(a, "mesh_key_staged", n, r->public_key, n->mod_revision, "next=%s", next);
		}
		prefixes_text(n->use, n->n_use, now, sizeof(now));
		if (!n->applied) {
			agent__audit(a, "mesh_joined", n, r->public_key, n->mod_revision, "endpoint=%s prefixes=%s",
			      r->endpoint[0] ? r->endpoint : "-", now);
		} else if (sodium_memcmp(n->current.public_key, r->public_key, 32)) {
			char old[12];

			mesh_fingerprint(n->current.public_key, old);
			agent__audit(a, "mesh_key_changed", n, r->public_key, n->mod_revision, "was=%s", old);
		} else {
			if (strcmp(n->current.endpoint, r->endpoint) != 0)
				agent__audit(a, "mesh_endpoint_changed", n, r->public_key, n->mod_revision,
				      "endpoint=%s was=%s", r->endpoint[0] ? r->endpoint : "-",
				      n->current.endpoint[0] ? n->current.endpoint : "-");
			prefixes_text(n->current.prefixes, n->current.n_prefixes, was, sizeof(was));
			if (strcmp(now, was) != 0)
				agent__audit(a, "mesh_prefixes_changed", n, r->public_key, n->mod_revision,
				      "prefixes=%s was=%s", now, was);
			if (n->current.cipher != r->cipher)
				agent__audit(a, "mesh_cipher_changed", n, r->public_key, n->mod_revision, "cipher=%s",
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
			agent__complain(a, "%s: %s", a->view.ifname, why);
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
	a->key_since = agent__key_age_from_registry(a);
	agent__check_own_record(a);
	agent__schedule_rotation(a);
	agent__pump(a);
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

void agent__save_now(struct agent *a)
{
	int ret;

	a->view.saved = agent__now_s();
	ret = view_save(&a->view, a->copy_path);
	if (ret)
		agent__complain(a, "cannot write the local copy %s: %s", a->copy_path, strerror(-ret));
}

static void on_save_timer(uv_timer_t *t)
{
	agent__save_now(t->data);
	malloc_trim(0);
}

/* Liveness and connection changes: saved within SAVE_DELAY_MS, at most that often. */
void agent__schedule_save(struct agent *a)
{
	if (!a->stopping && !uv_is_active((uv_handle_t *)&a->save_timer))
		uv_timer_start(&a->save_timer, on_save_timer, SAVE_DELAY_MS, 0);
}

void agent__apply(struct agent *a)
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
		agent__complain(a, "%s: cannot read veild's peers: %s", a->view.ifname, why[0] ? why : strerror(-ret));
		agent__schedule_apply(a, DEVICE_RETRY_MS);
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
		agent__complain(a, "%s: veild refused the mesh's peers: %s%s%s", a->view.ifname, strerror(-ret),
			 why[0] ? ": " : "", why);
		agent__schedule_apply(a, DEVICE_RETRY_MS);
	} else {
		a->greet_all = false;
		applied(a);
		if (!a->stopping && any_staged(a) && !uv_is_active((uv_handle_t *)&a->staged_timer))
			uv_timer_start(&a->staged_timer, on_staged_timer, STAGED_POLL_MS, 0);
		if (apply_route_set(a))
			agent__schedule_apply(a, DEVICE_RETRY_MS);
		uv_timer_start(&a->save_timer, on_save_timer, 0, 0);
	}
	free(want);
	free(remove);
	ctl_device_free(&dev);
}

void agent__on_apply_timer(uv_timer_t *t)
{
	struct agent *a = t->data;

	agent__apply(a);
	if (!uv_is_active((uv_handle_t *)&a->apply_timer))
		uv_timer_start(&a->apply_timer, agent__on_apply_timer, RESYNC_MS, 0);
}

void agent__schedule_apply(struct agent *a, uint64_t delay_ms)
{
	if (a->stopping)
		return;
	if (uv_is_active((uv_handle_t *)&a->apply_timer) &&
	    uv_timer_get_due_in(&a->apply_timer) <= delay_ms)
		return;
	uv_timer_start(&a->apply_timer, agent__on_apply_timer, delay_ms, 0);
}
