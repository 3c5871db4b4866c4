// SPDX-License-Identifier: MIT
/*
 * The mesh's records and the decision over them (record.h). Pure: no clock,
 * no I/O; jansson reads and writes the JSON.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "record.h"

enum { PREFIX_TEXT = 56 }; /* "v6 address/128" */

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	/* Pieces of a record are quoted: one line, no terminal escapes. */
	for (i = 0; why[i]; i++)
		if ((unsigned char)why[i] < 0x20 || why[i] == 0x7f)
			why[i] = '?';
}

/* A value quoted in a reason, cut short. */
static const char *shown(const char *v, char out[40])
{
	size_t n = strlen(v);

	if (n < 32) {
		snprintf(out, 40, "%s", v);
	} else {
		memcpy(out, v, 28);
		memcpy(out + 28, "...", 4);
	}
	return out;
}

void mesh_fingerprint(const uint8_t key[static 32], char out[static 12])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), key, 32, sodium_base64_VARIANT_ORIGINAL);
	memcpy(out, b64, 11);
	out[11] = '\0';
}

bool mesh_prefix_default(const struct conf_prefix *p)
{
	return p->cidr == 0;
}

/* Host bits of a prefix, which a record must not set (it would be read two ways). */
static bool has_host_bits(const struct conf_prefix *p)
{
	struct conf_prefix net = *p;

	return conf_prefix_clear_host_bits(&net);
}

bool mesh_prefix_holds(const struct conf_prefix *p, const struct sockaddr_storage *addr)
{
	struct conf_prefix host = { .family = addr->ss_family };

	if (addr->ss_family == AF_INET) {
		memcpy(host.addr, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		host.cidr = 32;
	} else if (addr->ss_family == AF_INET6) {
		memcpy(host.addr, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
		host.cidr = 128;
	} else {
		return false;
	}
	return conf_prefix_overlap(p, &host);
}

/* ---- records ---------------------------------------------------------------------------------- */

void mesh_record_free(struct mesh_record *r)
{
	free(r->prefixes);
	memset(r, 0, sizeof(*r));
}

int mesh_record_copy(struct mesh_record *dst, const struct mesh_record *src)
{
	struct conf_prefix *p = NULL;

	if (src->n_prefixes) {
		p = malloc(src->n_prefixes * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memcpy(p, src->prefixes, src->n_prefixes * sizeof(*p));
	}
	mesh_record_free(dst);
	*dst = *src;
	dst->prefixes = p;
	return 0;
}

static bool same_prefix(const struct conf_prefix *a, const struct conf_prefix *b)
{
	return a->family == b->family && a->cidr == b->cidr && !memcmp(a->addr, b->addr, 16);
}

bool mesh_record_equal(const struct mesh_record *a, const struct mesh_record *b)
{
	size_t i;

	if (sodium_memcmp(a->public_key, b->public_key, 32) || strcmp(a->endpoint, b->endpoint) != 0 ||
	    a->cipher != b->cipher || a->n_prefixes != b->n_prefixes || strcmp(a->node, b->node) != 0 ||
	    a->has_next != b->has_next || a->key_since != b->key_since ||
	    (a->has_next && sodium_memcmp(a->next_public_key, b->next_public_key, 32)))
		return false;
	for (i = 0; i < a->n_prefixes; i++)
		if (!same_prefix(&a->prefixes[i], &b->prefixes[i]))
			return false;
	return true;
}

static int parse_key(struct mesh_record *r, json_t *v, char *why, size_t whylen)
{
	const char *s = json_string_value(v);

	if (!s || conf_parse_key(s, r->public_key)) {
		say(why, whylen, "public_key is not a base64 key of 32 bytes");
		return -EINVAL;
	}
	if (sodium_is_zero(r->public_key, 32)) {
		say(why, whylen, "public_key is all zero");
		return -EINVAL;
	}
	return 0;
}

/* next_public_key (optional): another valid key than public_key. */
static int parse_next(struct mesh_record *r, json_t *v, char *why, size_t whylen)
{
	const char *s = json_string_value(v);

	if (!v || json_is_null(v))
		return 0;
	if (!s || conf_parse_key(s, r->next_public_key) || sodium_is_zero(r->next_public_key, 32)) {
		say(why, whylen, "next_public_key is not a base64 key of 32 bytes");
		return -EINVAL;
	}
	if (!sodium_memcmp(r->next_public_key, r->public_key, 32)) {
		say(why, whylen, "next_public_key is its public_key");
		return -EINVAL;
	}
	r->has_next = true;
	return 0;
}

static int parse_endpoints(struct mesh_record *r, json_t *v, char *why, size_t whylen)
{
	char sh[40];
	size_t i;

	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > MESH_ENDPOINTS_MAX) {
		say(why, whylen, "endpoints is not a list of at most %d host:port", MESH_ENDPOINTS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < json_array_size(v); i++) {
		const char *e = json_string_value(json_array_get(v, i));

		if (!e || strlen(e) >= MESH_ENDPOINT_LEN || !conf_valid_endpoint(e)) {
			say(why, whylen, "endpoint \"%s\" is not host:port or [address]:port",
			    e ? shown(e, sh) : "(not a string)");
			return -EINVAL;
		}
		if (i == 0)
			snprintf(r->endpoint, sizeof(r->endpoint), "%s", e);
	}
	return 0;
}

static int parse_prefixes(struct mesh_record *r, json_t *v, char *why, size_t whylen)
{
	char sh[40];
	size_t i, j, n;

	if (!v)
		return 0;
	n = json_array_size(v);
	if (!json_is_array(v) || n > MESH_PREFIXES_MAX) {
		say(why, whylen, "prefixes is not a list of at most %d prefixes", MESH_PREFIXES_MAX);
		return -EINVAL;
	}
	r->prefixes = n ? calloc(n, sizeof(*r->prefixes)) : NULL;
	if (n && !r->prefixes)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(v, i));
		struct conf_prefix *p = &r->prefixes[i];

		if (!s || conf_parse_prefix(s, p) || has_host_bits(p)) {
			say(why, whylen, "\"%s\" is not a prefix (address/length, no host bits)",
			    s ? shown(s, sh) : "(not a string)");
			return -EINVAL;
		}
		/* An exit's default route and the prefixes behind it may go together. */
		for (j = 0; j < i; j++) {
			if (conf_prefix_overlap(&r->prefixes[j], p) &&
			    mesh_prefix_default(&r->prefixes[j]) == mesh_prefix_default(p)) {
				say(why, whylen, "prefix \"%s\" overlaps another of its own", shown(s, sh));
				return -EINVAL;
			}
		}
		r->n_prefixes++;
	}
	return 0;
}

static int parse_fields(struct mesh_record *r, const char *node, json_t *o, char *why, size_t whylen)
{
	json_t *version = json_object_get(o, "version"), *name = json_object_get(o, "node");
	json_t *cipher_v = json_object_get(o, "cipher");
	const char *cipher = json_string_value(cipher_v);
	char sh[40];
	int ret;

	if (!json_is_integer(version) || json_integer_value(version) < 1) {
		say(why, whylen, "no version (a number)");
		return -EINVAL;
	}
	if (json_integer_value(version) > MESH_RECORD_VERSION) {
		say(why, whylen, "version %lld is newer than this agent reads (%d)",
		    (long long)json_integer_value(version), MESH_RECORD_VERSION);
		return -EINVAL;
	}
	if (!json_is_string(name) || strcmp(json_string_value(name), node) != 0) {
		say(why, whylen, "its node \"%s\" is not the name it is stored under",
		    json_is_string(name) ? shown(json_string_value(name), sh) : "(none)");
		return -EINVAL;
	}
	snprintf(r->node, sizeof(r->node), "%s", node);
	ret = parse_key(r, json_object_get(o, "public_key"), why, whylen);
	if (!ret)
		ret = parse_next(r, json_object_get(o, "next_public_key"), why, whylen);
	if (!ret && json_object_get(o, "key_since")) {
		json_t *since = json_object_get(o, "key_since");

		if (!json_is_integer(since) || json_integer_value(since) < 0) {
			say(why, whylen, "key_since is not a time (seconds since 1970)");
			ret = -EINVAL;
		} else {
			r->key_since = json_integer_value(since);
		}
	}
	if (!ret)
		ret = parse_endpoints(r, json_object_get(o, "endpoints"), why, whylen);
	if (!ret)
		ret = parse_prefixes(r, json_object_get(o, "prefixes"), why, whylen);
	if (ret)
		return ret;
	if (cipher_v && !cipher) {
		say(why, whylen, "cipher is not a string (aes256gcm or chacha20poly1305)");
		return -EINVAL;
	}
	if (!cipher || !strcmp(cipher, "chacha20poly1305")) {
		r->cipher = CIPHER_DEFAULT;
	} else if (!strcmp(cipher, "aes256gcm")) {
		r->cipher = CIPHER_AES256GCM;
	} else {
		say(why, whylen, "cipher \"%s\" is not aes256gcm or chacha20poly1305", shown(cipher, sh));
		return -EINVAL;
	}
	return 0;
}

int mesh_record_parse(struct mesh_record *r, const char *node, const char *json, size_t len,
		      char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *o = NULL;
	int ret = -EINVAL;

	memset(r, 0, sizeof(*r));
	why[0] = '\0';
	if (!conf_valid_mesh_name(node)) {
		say(why, whylen, "the key's node name is not a name (1-%d of A-Z a-z 0-9 . _ -)",
		    CONF_MESH_NAME_MAX);
		goto out;
	}
	if (len > MESH_RECORD_MAX) {
		say(why, whylen, "larger than %d bytes", MESH_RECORD_MAX);
		goto out;
	}
	o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		say(why, whylen, "not JSON (%s at byte %d)", jerr.text, jerr.position);
		goto out;
	}
	if (!json_is_object(o)) {
		say(why, whylen, "not a JSON object");
		goto out;
	}
	ret = parse_fields(r, node, o, why, whylen);
out:
	json_decref(o);
	if (ret)
		mesh_record_free(r);
	return ret;
}

char *mesh_record_format(const struct mesh_record *r)
{
	char key[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	json_t *o, *eps, *pfx;
	char *text = NULL;
	size_t i;

	sodium_bin2base64(key, sizeof(key), r->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
	eps = json_array();
	pfx = json_array();
	o = json_pack("{s:i, s:s, s:s, s:o, s:o, s:s}", "version", MESH_RECORD_VERSION, "node", r->node,
		      "public_key", key, "endpoints", eps, "prefixes", pfx, "cipher",
		      r->cipher == CIPHER_AES256GCM ? "aes256gcm" : "chacha20poly1305");
	if (!o)
		return NULL;
	if (r->endpoint[0] && json_array_append_new(eps, json_string(r->endpoint)))
		goto out;
	if (r->has_next) {
		char next[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

		sodium_bin2base64(next, sizeof(next), r->next_public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		if (json_object_set_new(o, "next_public_key", json_string(next)))
			goto out;
	}
	if (r->key_since && json_object_set_new(o, "key_since", json_integer(r->key_since)))
		goto out;
	for (i = 0; i < r->n_prefixes; i++) {
		char s[PREFIX_TEXT];
		char a[INET6_ADDRSTRLEN];

		inet_ntop(r->prefixes[i].family, r->prefixes[i].addr, a, sizeof(a));
		snprintf(s, sizeof(s), "%s/%u", a, r->prefixes[i].cidr);
		if (json_array_append_new(pfx, json_string(s)))
			goto out;
	}
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	return text;
}

/* ---- policy ------------------------------------------------------------------------------------ */

void mesh_policy_free(struct mesh_policy *p)
{
	size_t i;

	for (i = 0; i < p->n_exit_nodes; i++)
		free(p->exit_nodes[i]);
	free(p->exit_nodes);
	for (i = 0; i < p->n_revoked_nodes; i++)
		free(p->revoked_nodes[i]);
	free(p->revoked_nodes);
	free(p->revoked_keys);
	memset(p, 0, sizeof(*p));
}

bool mesh_policy_key_revoked(const struct mesh_policy *p, const uint8_t key[static 32])
{
	size_t i;

	for (i = 0; i < p->n_revoked_keys; i++)
		if (!sodium_memcmp(p->revoked_keys[i], key, 32))
			return true;
	return false;
}

bool mesh_policy_node_revoked(const struct mesh_policy *p, const char *node)
{
	size_t i;

	for (i = 0; i < p->n_revoked_nodes; i++)
		if (!strcmp(p->revoked_nodes[i], node))
			return true;
	return false;
}

int mesh_policy_revoke_key(struct mesh_policy *p, const uint8_t key[static 32], bool revoked)
{
	uint8_t(*g)[32];
	size_t i;

	for (i = 0; i < p->n_revoked_keys; i++) {
		if (sodium_memcmp(p->revoked_keys[i], key, 32))
			continue;
		if (!revoked)
			memmove(p->revoked_keys[i], p->revoked_keys[i + 1], (p->n_revoked_keys-- - i - 1) * 32);
		return 0;
	}
	if (!revoked)
		return 0;
	g = realloc(p->revoked_keys, (p->n_revoked_keys + 1) * 32);
	if (!g)
		return -ENOMEM;
	p->revoked_keys = g;
	memcpy(p->revoked_keys[p->n_revoked_keys++], key, 32);
	return 0;
}

int mesh_policy_revoke_node(struct mesh_policy *p, const char *node, bool revoked)
{
	char **g;
	size_t i;

	for (i = 0; i < p->n_revoked_nodes; i++) {
		if (strcmp(p->revoked_nodes[i], node) != 0)
			continue;
		if (!revoked) {
			free(p->revoked_nodes[i]);
			p->revoked_nodes[i] = p->revoked_nodes[--p->n_revoked_nodes];
		}
		return 0;
	}
	if (!revoked)
		return 0;
	g = realloc(p->revoked_nodes, (p->n_revoked_nodes + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	p->revoked_nodes = g;
	p->revoked_nodes[p->n_revoked_nodes] = strdup(node);
	return p->revoked_nodes[p->n_revoked_nodes] ? (p->n_revoked_nodes++, 0) : -ENOMEM;
}

void mesh_key_name(const uint8_t key[static 32], char out[static 44])
{
	sodium_bin2base64(out, 44, key, 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int mesh_key_from_name(const char *name, uint8_t key[static 32])
{
	size_t len = 0;
	const char *end = NULL;

	if (strlen(name) != 43 ||
	    sodium_base642bin(key, 32, name, 43, NULL, &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    len != 32 || end != name + 43)
		return -EINVAL;
	return 0;
}

bool mesh_policy_exit(const struct mesh_policy *p, const char *node)
{
	size_t i;

	for (i = 0; i < p->n_exit_nodes; i++)
		if (!strcmp(p->exit_nodes[i], node))
			return true;
	return false;
}

int mesh_policy_parse(struct mesh_policy *p, const char *json, size_t len, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *o, *exits;
	size_t i;
	int ret = -EINVAL;

	memset(p, 0, sizeof(*p));
	o = len <= MESH_RECORD_MAX ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!json_is_object(o)) {
		say(why, whylen, "the policy is not a JSON object");
		goto out;
	}
	exits = json_object_get(o, "exit_nodes");
	if (exits && !json_is_array(exits)) {
		say(why, whylen, "the policy's exit_nodes is not a list of node names");
		goto out;
	}
	p->exit_nodes = calloc(json_array_size(exits) + 1, sizeof(char *));
	if (!p->exit_nodes) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < json_array_size(exits); i++) {
		const char *s = json_string_value(json_array_get(exits, i));

		if (!s || !conf_valid_mesh_name(s)) {
			say(why, whylen, "the policy's exit_nodes holds something that is not a node name");
			goto out;
		}
		p->exit_nodes[p->n_exit_nodes] = strdup(s);
		if (!p->exit_nodes[p->n_exit_nodes]) {
			ret = -ENOMEM;
			goto out;
		}
		p->n_exit_nodes++;
	}
	ret = 0;
out:
	json_decref(o);
	if (ret)
		mesh_policy_free(p);
	return ret;
}

/* ---- the decision ------------------------------------------------------------------------------- */

void mesh_node_free(struct mesh_node *node)
{
	free(node->raw);
	node->raw = NULL;
	mesh_record_free(&node->latest);
	mesh_record_free(&node->current);
	free(node->use);
	node->use = NULL;
	node->n_use = 0;
}

const char *mesh_node_state(const struct mesh_node *node)
{
	switch (node->verdict) {
	case MESH_SELF:
		return "self";
	case MESH_ACCEPTED:
		return "accepted";
	case MESH_KEPT:
		return "kept";
	default:
		return !node->present ? "removed" : node->why[0] ? "refused" : "none";
	}
}

const struct mesh_record *mesh_node_peer(const struct mesh_node *node)
{
	if (node->verdict == MESH_ACCEPTED)
		return &node->latest;
	if (node->verdict == MESH_KEPT)
		return &node->current;
	return NULL;
}

static int by_creation(const void *a, const void *b)
{
	const struct mesh_node *x = *(const struct mesh_node *const *)a;
	const struct mesh_node *y = *(const struct mesh_node *const *)b;

	if (x->create_revision != y->create_revision)
		return x->create_revision < y->create_revision ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void prefix_text(const struct conf_prefix *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, p->cidr);
}

/*
 * Two prefixes that cannot both be routed: one holds the other, unless one
 * of them is an exit's default route (longest match sorts those out).
 */
static bool clash(const struct conf_prefix *a, const struct conf_prefix *b)
{
	if (!conf_prefix_overlap(a, b))
		return false;
	if (mesh_prefix_default(a) != mesh_prefix_default(b))
		return false;
	return true;
}

/*
 * One prefix of node's against the policy, the registry and this node: a
 * default route needs the policy's leave (and is never routed, so it may
 * hold the registry); nothing may hold a registry member's address, nor
 * clash with this node's own prefixes or a static peer's.
 */
static bool prefix_conflict(const struct conf_prefix *p, const char *node,
			    const struct mesh_policy *policy, const struct mesh_local *l, char *why,
			    size_t whylen)
{
	char ps[PREFIX_TEXT];
	size_t j, k;

	prefix_text(p, ps, sizeof(ps));
	if (mesh_prefix_default(p) && !mesh_policy_exit(policy, node)) {
		say(why, whylen, "prefix %s is a default route and the policy names no such exit node", ps);
		return true;
	}
	for (j = 0; !mesh_prefix_default(p) && j < l->n_registry; j++) {
		if (mesh_prefix_holds(p, &l->registry[j])) {
			say(why, whylen, "prefix %s holds a registry member's address", ps);
			return true;
		}
	}
	for (j = 0; j < l->n_own; j++) {
		if (clash(p, &l->own[j])) {
			say(why, whylen, "prefix %s overlaps this node's own Advertise", ps);
			return true;
		}
	}
	for (j = 0; j < l->n_static_peers; j++) {
		const struct conf_peer *sp = &l->static_peers[j];

		for (k = 0; k < sp->n_allowed_ips; k++) {
			if (clash(p, &sp->allowed_ips[k])) {
				say(why, whylen, "prefix %s overlaps a static [Peer]'s AllowedIPs (line %u)", ps,
				    sp->line);
				return true;
			}
		}
	}
	return false;
}

/* A record's key that this node holds: its own, or a static peer's. */
/* A record's rkeys: its public key, and the next one while it rotates. */
static size_t record_keys(const struct mesh_record *r, const uint8_t *rkeys[2])
{
	rkeys[0] = r->public_key;
	rkeys[1] = r->next_public_key;
	return r->has_next ? 2 : 1;
}

static bool shares_key(const struct mesh_record *a, const struct mesh_record *b)
{
	const uint8_t *ka[2], *kb[2];
	size_t na = record_keys(a, ka), nb = record_keys(b, kb), i, j;

	for (i = 0; i < na; i++)
		for (j = 0; j < nb; j++)
			if (!sodium_memcmp(ka[i], kb[j], 32))
				return true;
	return false;
}

static bool local_key(const struct mesh_record *r, const struct mesh_local *l, char *why, size_t whylen)
{
	const uint8_t *rkeys[2];
	size_t n = record_keys(r, rkeys), i, k;

	for (k = 0; k < n; k++) {
		const char *which = k ? "its next public key" : "its public key";

		if (l->public_key && !sodium_memcmp(rkeys[k], l->public_key, 32)) {
			say(why, whylen, "%s is this node's own", which);
			return true;
		}
		for (i = 0; i < l->n_static_peers; i++) {
			if (!sodium_memcmp(rkeys[k], l->static_peers[i].public_key, 32)) {
				say(why, whylen, "%s is a static [Peer]'s (line %u)", which,
				    l->static_peers[i].line);
				return true;
			}
		}
	}
	return false;
}

/* An administrator revoked the node (by name) or a key it carries. */
static bool revoked(const struct mesh_record *r, const char *node, const struct mesh_policy *policy,
		    char *why, size_t whylen)
{
	const uint8_t *rkeys[2];
	size_t n = r ? record_keys(r, rkeys) : 0, k;

	if (mesh_policy_node_revoked(policy, node)) {
		say(why, whylen, "node %s is revoked (an administrator's veilctl mesh admit lets it back)", node);
		return true;
	}
	for (k = 0; k < n; k++) {
		if (mesh_policy_key_revoked(policy, rkeys[k])) {
			say(why, whylen, "%s is revoked", k ? "its next public key" : "its public key");
			return true;
		}
	}
	return false;
}

/* The facts a record can contradict on its own: the policy, the registry, this node. */
static bool local_conflict(const struct mesh_record *r, const struct mesh_policy *policy,
			   const struct mesh_local *l, char *why, size_t whylen)
{
	size_t i;

	if (local_key(r, l, why, whylen))
		return true;
	for (i = 0; i < r->n_prefixes; i++)
		if (prefix_conflict(&r->prefixes[i], r->node, policy, l, why, whylen))
			return true;
	return false;
}

/* A record against those accepted before it; first names the one it clashes with. */
static bool earlier_conflict(const struct mesh_record *r, struct mesh_node *const *accepted, size_t n,
			     char *why, size_t whylen)
{
	char ps[PREFIX_TEXT];
	size_t i, j, k;

	for (i = 0; i < n; i++) {
		const struct mesh_record *o = &accepted[i]->latest;

		if (!sodium_memcmp(r->public_key, o->public_key, 32)) {
			say(why, whylen, "its public key is node %s's, registered before it", o->node);
			return true;
		}
		if (shares_key(r, o)) {
			say(why, whylen, "a key it rotates to or from is node %s's, registered before it",
			    o->node);
			return true;
		}
		for (j = 0; j < r->n_prefixes; j++) {
			for (k = 0; k < o->n_prefixes; k++) {
				if (clash(&r->prefixes[j], &o->prefixes[k])) {
					prefix_text(&r->prefixes[j], ps, sizeof(ps));
					say(why, whylen, "prefix %s overlaps node %s's, registered before it", ps,
					    o->node);
					return true;
				}
			}
		}
	}
	return false;
}

/*
 * A kept record's prefixes, less those that clash with a local fact or with
 * a peer decided before it (accepted, or kept and older): their use.
 */
static int filter_kept(struct mesh_node *node, struct mesh_node *const *peers, size_t n_peers,
		       const struct mesh_policy *policy, const struct mesh_local *l)
{
	const struct mesh_record *r = &node->current;
	size_t i, j, k;

	node->use = r->n_prefixes ? calloc(r->n_prefixes, sizeof(*node->use)) : NULL;
	if (r->n_prefixes && !node->use)
		return -ENOMEM;
	for (i = 0; i < r->n_prefixes; i++) {
		char why[MESH_WHY_LEN];
		bool bad = prefix_conflict(&r->prefixes[i], r->node, policy, l, why, sizeof(why));

		for (j = 0; !bad && j < n_peers; j++)
			for (k = 0; !bad && k < peers[j]->n_use; k++)
				bad = clash(&r->prefixes[i], &peers[j]->use[k]);
		if (!bad)
			node->use[node->n_use++] = r->prefixes[i];
	}
	return 0;
}

static int use_all(struct mesh_node *node, const struct mesh_record *r)
{
	node->use = r->n_prefixes ? malloc(r->n_prefixes * sizeof(*node->use)) : NULL;
	if (r->n_prefixes && !node->use)
		return -ENOMEM;
	if (r->n_prefixes)
		memcpy(node->use, r->prefixes, r->n_prefixes * sizeof(*node->use));
	node->n_use = r->n_prefixes;
	return 0;
}

/*
 * A kept record whose key a peer decided before it now holds, or this node
 * or a static peer (the file changed since), cannot stay: two peers, one key.
 */
static bool key_taken(const struct mesh_record *r, struct mesh_node *const *peers, size_t n,
		      const struct mesh_local *l)
{
	char why[MESH_WHY_LEN];
	size_t i;

	if (local_key(r, l, why, sizeof(why)))
		return true;
	for (i = 0; i < n; i++)
		if (shares_key(r, mesh_node_peer(peers[i])))
			return true;
	return false;
}

int mesh_decide(struct mesh_node *nodes, size_t n, const struct mesh_policy *policy,
		const struct mesh_local *local)
{
	struct mesh_node **order = n ? calloc(n, sizeof(struct mesh_node *)) : NULL;
	struct mesh_node **accepted = n ? calloc(n, sizeof(struct mesh_node *)) : NULL;
	size_t i, n_acc = 0;
	int ret = 0;

	if (n && (!order || !accepted)) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		order[i] = &nodes[i];
		free(nodes[i].use);
		nodes[i].use = NULL;
		nodes[i].n_use = 0;
		nodes[i].why[0] = '\0';
		nodes[i].verdict = MESH_NONE;
	}
	if (n) /* qsort's array must not be NULL, even for no element */
		qsort(order, n, sizeof(struct mesh_node *), by_creation);
	for (i = 0; i < n; i++) {
		struct mesh_node *node = order[i];

		if (!strcmp(node->name, local->node)) {
			node->verdict = MESH_SELF;
			continue;
		}
		if (!node->present)
			continue;
		if (!node->parsed)
			say(node->why, sizeof(node->why), "%s", node->parse_error);
		else if (revoked(&node->latest, node->name, policy, node->why, sizeof(node->why)))
			continue;
		else if (!local_conflict(&node->latest, policy, local, node->why, sizeof(node->why)) &&
			 !earlier_conflict(&node->latest, accepted, n_acc, node->why, sizeof(node->why)))
			accepted[n_acc++] = node;
	}
	for (i = 0; !ret && i < n_acc; i++) {
		accepted[i]->verdict = MESH_ACCEPTED;
		ret = use_all(accepted[i], &accepted[i]->latest);
	}
	/*
	 * Refused nodes that had a peer keep it, as far as it does not clash
	 * with the accepted nor with an older kept one: in creation order, each
	 * kept peer joins the list (accepted) the next ones are judged against.
	 */
	for (i = 0; !ret && i < n; i++) {
		struct mesh_node *node = order[i];

		char why[MESH_WHY_LEN];

		if (node->verdict != MESH_NONE || !node->present || !node->applied ||
		    revoked(&node->current, node->name, policy, why, sizeof(why)) ||
		    key_taken(&node->current, accepted, n_acc, local))
			continue;
		node->verdict = MESH_KEPT;
		ret = filter_kept(node, accepted, n_acc, policy, local);
		accepted[n_acc++] = node;
	}
out:
	free(order);
	free(accepted);
	return ret;
}
