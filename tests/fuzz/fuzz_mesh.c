// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what the mesh agent reads from its registry
 * (tools/mesh/record.c, etcd.c, view.c): each input, less its first byte,
 * is read as a node's record, the policy, a watch message, a range reply, a
 * lease, an auth and an error reply, then fed to the watch stream splitter
 * in pieces whose sizes the first byte draws (0: all at once).
 *
 * What must hold: a record that parses is sane (a non-zero key, prefixes
 * without host bits that do not overlap, at most 4 endpoints) and reads
 * back equal from its own format; anything refused says why in one
 * printable line and leaves its struct empty; keys from etcd never hold a
 * NUL; the stream yields the same messages however it is cut. The watch
 * messages' events are then applied to a view and decided: no two peers
 * (accepted or kept) share a key (current or next) or a route, no peer's
 * routes clash with this node's, and no peer carries a revoked key or name.
 * ASan checks every access, its leak check every free.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "etcd.h"
#include "record.h"
#include "view.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		__builtin_trap();
	return 0;
}

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One printable line, NUL-terminated within its buffer. */
static void check_line(const char *s, size_t cap, bool empty_ok)
{
	size_t i, n = strnlen(s, cap);

	check(n < cap && (empty_ok || n > 0));
	for (i = 0; i < n; i++)
		check((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
}

static bool all_zero(const void *p, size_t n)
{
	return sodium_is_zero(p, n);
}

/* Host bits of a prefix, which no accepted prefix may have. */
static bool host_bits(const struct conf_prefix *p)
{
	size_t len = p->family == AF_INET ? 4 : 16, i;

	for (i = 0; i < len; i++) {
		unsigned int bits = p->cidr > i * 8 ? p->cidr - (unsigned int)i * 8 : 0;

		if (bits < 8 && (p->addr[i] & (uint8_t)(0xff >> bits)))
			return true;
	}
	return false;
}

static bool clash(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return conf_prefix_overlap(a, b) && mesh_prefix_default(a) == mesh_prefix_default(b);
}

/* ---- records and the policy ---------------------------------------------------------------------- */

static void check_record(const struct mesh_record *r, const char *node)
{
	struct mesh_record back;
	char why[MESH_WHY_LEN], *text;
	size_t i, j;

	check(strcmp(r->node, node) == 0);
	check(!all_zero(r->public_key, 32));
	check(r->n_prefixes <= MESH_PREFIXES_MAX && (r->n_prefixes == 0) == (r->prefixes == NULL));
	check(r->endpoint[0] == '\0' || conf_valid_endpoint(r->endpoint));
	check(r->cipher == CIPHER_DEFAULT || r->cipher == CIPHER_AES256GCM);
	for (i = 0; i < r->n_prefixes; i++) {
		check(r->prefixes[i].family == AF_INET || r->prefixes[i].family == AF_INET6);
		check(r->prefixes[i].cidr <= (r->prefixes[i].family == AF_INET ? 32 : 128));
		check(!host_bits(&r->prefixes[i]));
		for (j = 0; j < i; j++)
			check(!conf_prefix_overlap(&r->prefixes[i], &r->prefixes[j]));
	}
	/* What the agent would write of it reads back the same. */
	text = mesh_record_format(r);
	check(text != NULL);
	check(mesh_record_parse(&back, node, text, strlen(text), why, sizeof(why)) == 0);
	check(mesh_record_equal(r, &back));
	mesh_record_free(&back);
	free(text);
}

static void fuzz_record(const char *text, size_t len)
{
	static const char *const nodes[] = { "a", "fuzz", "" };
	struct mesh_record r;
	char why[MESH_WHY_LEN];
	size_t i;

	for (i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		memset(why, 0x5a, sizeof(why));
		if (mesh_record_parse(&r, nodes[i], text, len, why, sizeof(why)) == 0) {
			check(why[0] == '\0');
			check_record(&r, nodes[i]);
			mesh_record_free(&r);
		} else {
			check_line(why, sizeof(why), false);
		}
		check(all_zero(&r, sizeof(r)));
	}
}

static void fuzz_policy(const char *text, size_t len)
{
	struct mesh_policy p;
	char why[MESH_WHY_LEN];
	size_t i;

	if (mesh_policy_parse(&p, text, len, why, sizeof(why)) == 0) {
		for (i = 0; i < p.n_exit_nodes; i++) {
			check(conf_valid_mesh_name(p.exit_nodes[i]));
			check(mesh_policy_exit(&p, p.exit_nodes[i]));
		}
		mesh_policy_free(&p);
	} else {
		check_line(why, sizeof(why), false);
	}
	check(all_zero(&p, sizeof(p)));
}

/* ---- etcd's replies ---------------------------------------------------------------------------------- */

static void check_kv(const struct etcd_kv *kv)
{
	check(kv->key != NULL && kv->value != NULL);
	check(kv->value[kv->value_len] == '\0');
}

static void fuzz_replies(const char *text, size_t len, uint8_t status_byte)
{
	struct etcd_watch_msg m;
	struct etcd_range r;
	struct etcd_error e;
	int64_t a, b;
	char *token;
	size_t i;

	if (etcd_parse_watch(text, len, &m) == 0) {
		check(m.n == 0 || m.events != NULL);
		check_line(m.cancel_reason, sizeof(m.cancel_reason), true);
		for (i = 0; i < m.n; i++) {
			check(m.events[i].type == ETCD_PUT || m.events[i].type == ETCD_DELETE);
			check_kv(&m.events[i].kv);
		}
		etcd_watch_msg_free(&m);
	}
	check(all_zero(&m, sizeof(m)));
	if (etcd_parse_range(text, len, &r) == 0) {
		check(r.revision > 0);
		for (i = 0; i < r.n; i++)
			check_kv(&r.kvs[i]);
		etcd_range_free(&r);
	}
	check(all_zero(&r, sizeof(r)));
	if (etcd_parse_lease(text, len, &a, &b) == 0)
		check(a != 0);
	if (etcd_parse_revision(text, len, &a) == 0)
		check(a > 0);
	if (etcd_parse_auth(text, len, &token) == 0) {
		check(token != NULL && token[0] != '\0');
		sodium_free(token);
	} else {
		check(token == NULL);
	}
	/* 100-611: every class of HTTP status, and some that are none. */
	if (etcd_reply_error(100 + (long)status_byte * 2, text, len, &e) == 0) {
		check(e.kind == ETCD_ERR_NONE);
	} else {
		check(e.kind > ETCD_ERR_NONE && e.kind <= ETCD_ERR_OTHER);
		check_line(e.message, sizeof(e.message), false);
	}
}

/* ---- the stream, and a view fed from it -------------------------------------------------------------- */

/* This node, as the decision sees it: "me", with its key and 10.9.0.0/16. */
static const struct conf_prefix own = { .family = AF_INET, .addr = { 10, 9 }, .cidr = 16 };
static const uint8_t self_key[32] = { 0xee };

/* A record's keys: its public key, and the next one while it rotates. */
static size_t record_keys(const struct mesh_record *r, const uint8_t *out[2])
{
	out[0] = r->public_key;
	out[1] = r->next_public_key;
	return r->has_next ? 2 : 1;
}

/* A peer (accepted or kept) against this node, the revocations and every other peer. */
static void check_peer(const struct mesh_node *x, const struct mesh_view *v)
{
	const struct mesh_record *r = mesh_node_peer(x);
	const uint8_t *kx[2], *ky[2];
	const struct mesh_node *y;
	size_t j, p, q, nx, ny;

	check(r != NULL && x->present);
	nx = record_keys(r, kx);
	check(!mesh_policy_node_revoked(&v->policy, x->name));
	for (p = 0; p < nx; p++) {
		check(memcmp(kx[p], self_key, 32) != 0);
		check(!mesh_policy_key_revoked(&v->policy, kx[p]));
	}
	check(x->n_use <= r->n_prefixes);
	for (p = 0; p < x->n_use; p++) {
		check(!clash(&x->use[p], &own));
		check(!mesh_prefix_default(&x->use[p]) || mesh_policy_exit(&v->policy, x->name));
	}
	for (j = 0; j < v->n; j++) {
		y = &v->nodes[j];
		if (y == x || !mesh_node_peer(y))
			continue;
		ny = record_keys(mesh_node_peer(y), ky);
		for (p = 0; p < nx; p++)
			for (q = 0; q < ny; q++)
				check(memcmp(kx[p], ky[q], 32) != 0);
		for (p = 0; p < x->n_use; p++)
			for (q = 0; q < y->n_use; q++)
				check(!clash(&x->use[p], &y->use[q]));
	}
}

/*
 * Decide as the agent does after each message, check what it decided, and
 * apply it: an accepted record becomes the one applied, a node without a
 * peer loses it, a kept one stays. Kept records come only from this.
 */
static void decide(struct mesh_view *v)
{
	struct mesh_local l = { .node = "me", .public_key = self_key, .own = &own, .n_own = 1 };
	struct mesh_node *x;
	size_t i;

	check(mesh_decide(v->nodes, v->n, &v->policy, &l) == 0);
	for (i = 0; i < v->n; i++) {
		x = &v->nodes[i];
		check(x->verdict != MESH_SELF || strcmp(x->name, "me") == 0);
		check((x->verdict == MESH_ACCEPTED || x->verdict == MESH_KEPT) == (mesh_node_peer(x) != NULL));
		check_line(x->why, sizeof(x->why), true);
		check((x->verdict == MESH_KEPT) == (x->why[0] && x->applied && mesh_node_peer(x) != NULL));
		if (x->verdict == MESH_ACCEPTED)
			check(x->parsed && x->why[0] == '\0' && x->n_use == x->latest.n_prefixes);
		if (mesh_node_peer(x))
			check_peer(x, v);
	}
	for (i = 0; i < v->n; i++) {
		x = &v->nodes[i];
		if (x->verdict == MESH_ACCEPTED) {
			check(mesh_record_copy(&x->current, &x->latest) == 0);
			x->applied = true;
			x->current_revision = x->mod_revision;
		} else if (x->verdict == MESH_NONE && x->applied) {
			mesh_record_free(&x->current);
			x->applied = false;
		}
	}
}

struct sink {
	char *buf;        /* each message as its length then its bytes */
	size_t len, cap;
	size_t n;
	struct mesh_view *view;
	int64_t now;
};

static int on_msg(const char *json, size_t len, void *data)
{
	struct sink *k = data;
	struct etcd_watch_msg m;
	size_t i, need = k->len + sizeof(len) + len;

	check(len > 0);
	if (need > k->cap) {
		char *g = realloc(k->buf, need * 2);

		check(g != NULL);
		k->buf = g;
		k->cap = need * 2;
	}
	memcpy(k->buf + k->len, &len, sizeof(len));
	memcpy(k->buf + k->len + sizeof(len), json, len);
	k->len = need;
	k->n++;
	if (!k->view || etcd_parse_watch(json, len, &m))
		return 0;
	for (i = 0; i < m.n; i++) {
		const struct etcd_kv *kv = &m.events[i].kv;

		check(view_apply(k->view, kv->key, m.events[i].type == ETCD_PUT ? kv->value : NULL, kv->value_len,
				 kv->create_revision, kv->mod_revision, k->now++) >= 0);
	}
	if (m.n)
		decide(k->view);
	etcd_watch_msg_free(&m);
	return 0;
}

/* Feed text in pieces of 1..chunk bytes (0: whole), with empty pieces between now and then. */
static void feed(const char *text, size_t len, uint8_t chunk, struct sink *k)
{
	struct etcd_stream s = { 0 };
	uint64_t seed = 0x9e3779b97f4a7c15ULL ^ chunk;
	size_t pos = 0;

	do {
		size_t n = len - pos, cut = chunk ? 1 + next(&seed) % chunk : n;

		if (n > cut)
			n = cut;
		if (chunk && next(&seed) % 7 == 0)
			check(etcd_stream_feed(&s, text + pos, 0, on_msg, k) == 0);
		check(etcd_stream_feed(&s, text + pos, n, on_msg, k) == 0);
		pos += n;
	} while (pos < len);
	etcd_stream_reset(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink whole = { 0 }, cut = { 0 };
	struct mesh_view v;
	const char *text;
	size_t len;

	if (size < 1)
		return 0;
	text = (const char *)data + 1;
	len = size - 1;
	fuzz_record(text, len);
	fuzz_policy(text, len);
	fuzz_replies(text, len, data[0]);

	/* The same messages however the stream is cut; the cut run also feeds a view. */
	view_init(&v, "n1", "me", "wg0");
	cut.view = &v;
	feed(text, len, 0, &whole);
	feed(text, len, data[0], &cut);
	check(whole.n == cut.n && whole.len == cut.len);
	check(whole.len == 0 || memcmp(whole.buf, cut.buf, whole.len) == 0);
	free(whole.buf);
	free(cut.buf);
	view_free(&v);
	return 0;
}
