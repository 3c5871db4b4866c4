// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the UAPI text protocol (src/uapi.c): each input is
 * the byte stream of one connection, fed to uapi_conn_feed() in chunks.
 * The first input byte picks the chunking: 0 feeds everything at once,
 * otherwise chunk sizes are drawn from 1..byte with a generator seeded by
 * it, so a line or a key split at every position gets tried. Odd chunks go
 * through uapi_conn_feed_one (a reply at a time, as veild feeds them), and
 * an odd first byte ends the connection with uapi_conn_eof, which must end
 * any set.
 *
 * The backend accepts everything and keeps a small model (device keys, up
 * to MAX_PEERS peers with a few allowed IPs each) so that `get` has
 * something to print. Each peer handle is its own heap block, freed by
 * peer_remove and replace_peers: a handle used after that is an ASan
 * report, and a handle not in the model traps. set_begin and set_end must
 * pair up. The model is built and freed for each input.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sodium.h>

#include "uapi.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_PEERS = 8, MAX_IPS = 4 };

struct allowed {
	int family;
	uint8_t addr[16];
	uint8_t cidr;
};

struct peer {
	uint8_t pub[32], psk[32];
	struct sockaddr_in6 endpoint; /* large enough for either family */
	bool has_endpoint;
	uint16_t keepalive;
	struct allowed ips[MAX_IPS];
	size_t nips;
};

struct model {
	bool has_key, in_set;
	uint8_t priv[32], pub[32];
	uint16_t port;
	uint32_t fwmark;
	struct peer *peers[MAX_PEERS];
	unsigned int sets;
};

__attribute__((noreturn)) static void fail(void)
{
	__builtin_trap();
}

/* The model's slot for a handle; traps on a handle the module should not hold. */
static size_t slot_of(const struct model *m, const void *handle)
{
	size_t i;

	for (i = 0; i < MAX_PEERS; i++)
		if (m->peers[i] && m->peers[i] == handle)
			return i;
	fail();
	return 0;
}

static void peer_free(struct model *m, size_t i)
{
	sodium_memzero(m->peers[i], sizeof(*m->peers[i]));
	free(m->peers[i]);
	m->peers[i] = NULL;
}

static int b_set_private_key(void *ctx, const uint8_t key[static 32])
{
	struct model *m = ctx;
	size_t i;

	m->has_key = !sodium_is_zero(key, 32);
	memcpy(m->priv, key, 32);
	if (!m->has_key)
		return 0;
	crypto_scalarmult_base(m->pub, key);
	/* As the daemon: a peer with our own public key goes away. */
	for (i = 0; i < MAX_PEERS; i++)
		if (m->peers[i] && !memcmp(m->peers[i]->pub, m->pub, 32))
			peer_free(m, i);
	return 0;
}

static int b_set_listen_port(void *ctx, uint16_t port)
{
	((struct model *)ctx)->port = port;
	return 0;
}

static int b_set_fwmark(void *ctx, uint32_t mark)
{
	((struct model *)ctx)->fwmark = mark;
	return 0;
}

static int b_replace_peers(void *ctx)
{
	struct model *m = ctx;
	size_t i;

	for (i = 0; i < MAX_PEERS; i++)
		if (m->peers[i])
			peer_free(m, i);
	return 0;
}

static int b_peer_select(void *ctx, const uint8_t pub[static 32], bool create, void **out)
{
	struct model *m = ctx;
	size_t i, free_slot = MAX_PEERS;

	if (!m->in_set)
		fail();
	*out = NULL;
	if (m->has_key && !memcmp(pub, m->pub, 32))
		return 0;
	for (i = 0; i < MAX_PEERS; i++) {
		if (m->peers[i] && !memcmp(m->peers[i]->pub, pub, 32)) {
			*out = m->peers[i];
			return 0;
		}
		if (!m->peers[i] && free_slot == MAX_PEERS)
			free_slot = i;
	}
	if (!create)
		return 0;
	if (free_slot == MAX_PEERS)
		return -ENOSPC;
	m->peers[free_slot] = calloc(1, sizeof(struct peer));
	if (!m->peers[free_slot])
		return -ENOMEM;
	memcpy(m->peers[free_slot]->pub, pub, 32);
	*out = m->peers[free_slot];
	return 0;
}

static int b_peer_remove(void *ctx, void *peer)
{
	struct model *m = ctx;

	peer_free(m, slot_of(m, peer));
	return 0;
}

static int b_peer_set_psk(void *ctx, void *peer, const uint8_t psk[static 32])
{
	struct model *m = ctx;

	memcpy(m->peers[slot_of(m, peer)]->psk, psk, 32);
	return 0;
}

static int b_peer_set_endpoint(void *ctx, void *peer, const struct sockaddr *sa, socklen_t len)
{
	struct model *m = ctx;
	struct peer *p = m->peers[slot_of(m, peer)];

	if ((sa->sa_family == AF_INET && len != sizeof(struct sockaddr_in)) ||
	    (sa->sa_family == AF_INET6 && len != sizeof(struct sockaddr_in6)) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		fail();
	memset(&p->endpoint, 0, sizeof(p->endpoint));
	memcpy(&p->endpoint, sa, len);
	p->has_endpoint = true;
	return 0;
}

static int b_peer_set_keepalive(void *ctx, void *peer, uint16_t interval)
{
	struct model *m = ctx;

	m->peers[slot_of(m, peer)]->keepalive = interval;
	return 0;
}

/* The parser hands the value over as it came: a NUL-terminated line remainder. */
static int b_peer_set_endpoint_name(void *ctx, void *peer, const char *name)
{
	struct model *m = ctx;

	(void)m->peers[slot_of(m, peer)];
	return strlen(name) < 300 ? 0 : -EINVAL;
}

static int b_peer_set_cipher(void *ctx, void *peer, int cipher)
{
	struct model *m = ctx;

	(void)m->peers[slot_of(m, peer)];
	return cipher == UAPI_CIPHER_CHACHA20POLY1305 || cipher == UAPI_CIPHER_AES256GCM ? 0 : -EINVAL;
}

static int b_peer_replace_allowed_ips(void *ctx, void *peer)
{
	struct model *m = ctx;

	m->peers[slot_of(m, peer)]->nips = 0;
	return 0;
}

static int b_peer_add_allowed_ip(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	struct model *m = ctx;
	struct peer *p = m->peers[slot_of(m, peer)];
	struct allowed *a;

	if ((family != AF_INET || cidr > 32) && (family != AF_INET6 || cidr > 128))
		fail();
	if (p->nips == MAX_IPS)
		return 0; /* accepted, not remembered */
	a = &p->ips[p->nips++];
	a->family = family;
	a->cidr = cidr;
	memset(a->addr, 0, sizeof(a->addr));
	memcpy(a->addr, addr, family == AF_INET ? 4 : 16);
	return 0;
}

static int b_peer_remove_allowed_ip(void *ctx, void *peer, int family, const uint8_t *addr,
				    uint8_t cidr)
{
	struct model *m = ctx;
	struct peer *p = m->peers[slot_of(m, peer)];
	size_t i, n = family == AF_INET ? 4 : 16;

	if ((family != AF_INET || cidr > 32) && (family != AF_INET6 || cidr > 128))
		fail();
	for (i = 0; i < p->nips; i++) {
		if (p->ips[i].family == family && p->ips[i].cidr == cidr &&
		    !memcmp(p->ips[i].addr, addr, n)) {
			p->ips[i] = p->ips[--p->nips];
			break;
		}
	}
	return 0;
}

static void b_set_begin(void *ctx)
{
	struct model *m = ctx;

	if (m->in_set)
		fail();
	m->in_set = true;
	m->sets++;
}

static void b_set_end(void *ctx, int err)
{
	struct model *m = ctx;

	if (!m->in_set || err > 0)
		fail();
	m->in_set = false;
}

static int b_get(void *ctx, struct uapi_writer *w)
{
	struct model *m = ctx;
	size_t i, j;

	if (m->in_set)
		fail();
	uapi_get_device(w, m->has_key ? m->priv : NULL, m->port, m->fwmark);
	for (i = 0; i < MAX_PEERS; i++) {
		struct peer *p = m->peers[i];
		struct uapi_peer_info info;

		if (!p)
			continue;
		memset(&info, 0, sizeof(info));
		memcpy(info.public_key, p->pub, 32);
		memcpy(info.preshared_key, p->psk, 32);
		info.endpoint = p->has_endpoint ? (const struct sockaddr *)&p->endpoint : NULL;
		info.last_handshake_sec = p->keepalive * 1000003ULL;
		info.last_handshake_nsec = p->keepalive;
		info.tx_bytes = UINT64_MAX - i;
		info.persistent_keepalive = p->keepalive;
		uapi_get_peer(w, &info);
		for (j = 0; j < p->nips; j++)
			uapi_get_allowed_ip(w, p->ips[j].family, p->ips[j].addr, p->ips[j].cidr);
	}
	return 0;
}

static const struct uapi_backend_ops backend = {
	.set_private_key = b_set_private_key,
	.set_listen_port = b_set_listen_port,
	.set_fwmark = b_set_fwmark,
	.replace_peers = b_replace_peers,
	.peer_select = b_peer_select,
	.peer_remove = b_peer_remove,
	.peer_set_preshared_key = b_peer_set_psk,
	.peer_set_endpoint = b_peer_set_endpoint,
	.peer_set_endpoint_name = b_peer_set_endpoint_name,
	.peer_set_cipher = b_peer_set_cipher,
	.peer_set_keepalive = b_peer_set_keepalive,
	.peer_replace_allowed_ips = b_peer_replace_allowed_ips,
	.peer_add_allowed_ip = b_peer_add_allowed_ip,
	.peer_remove_allowed_ip = b_peer_remove_allowed_ip,
	.set_begin = b_set_begin,
	.set_end = b_set_end,
	.get = b_get,
};

/* xorshift64*, seeded by the chunking byte. */
static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model m;
	struct uapi_buf out = { 0 };
	struct uapi_conn *c;
	uint64_t s;
	size_t pos = 1, i;
	uint8_t chunk;
	int ret = 0;

	if (size < 1)
		return 0;
	chunk = data[0];
	s = 0x9e3779b97f4a7c15ULL ^ chunk;
	memset(&m, 0, sizeof(m));
	c = uapi_conn_new(&backend, &m);
	if (!c)
		abort();
	while (pos < size && ret == 0) {
		size_t n = size - pos, cut = chunk ? 1 + next(&s) % chunk : n;
		char *piece;

		if (n > cut)
			n = cut;
		/* An exact-size copy: any read past the chunk is an ASan report. */
		piece = malloc(n);
		if (!piece)
			abort();
		memcpy(piece, data + pos, n);
		if (next(&s) & 1) {
			size_t used = 0, before = out.len;

			ret = uapi_conn_feed_one(c, piece, n, &out, &used);
			/* It stops early only after a reply, and always gets somewhere. */
			if (used > n || (ret == 0 && (used == 0 || (used < n && out.len == before))))
				fail();
			if (ret == 0)
				n = used;
		} else {
			ret = uapi_conn_feed(c, piece, n, &out);
		}
		free(piece);
		pos += n;
		/* Pretend the socket took part of the reply. */
		if (out.len && (next(&s) & 1))
			uapi_buf_consume(&out, next(&s) % (out.len + 1));
	}
	/* Closed stays closed. */
	if (ret != 0 && pos < size && uapi_conn_feed(c, (const char *)data + pos, 1, &out) != 1)
		fail();
	if (ret < 0 && ret != -ENOMEM)
		fail();
	if (ret == 0 && (chunk & 1)) {
		ret = uapi_conn_eof(c, &out);
		if ((ret != 1 && ret != -ENOMEM) || m.in_set)
			fail(); /* the end of the connection ends the set */
	}
	for (i = 0; i < out.len; i++)
		if (out.data[i] == '\0')
			fail();
	uapi_conn_free(c);
	if (m.in_set)
		fail(); /* freeing the connection must end the set */
	uapi_buf_free(&out);
	for (i = 0; i < MAX_PEERS; i++)
		if (m.peers[i])
			peer_free(&m, i);
	return 0;
}
