// SPDX-License-Identifier: MIT
/*
 * This node's static-key rotation (agent_int.h), on veilctl mesh rotate or
 * RotateEvery. docs/mesh.md has the design.
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
#include "core/curve25519.h"
#include "keys.h"
#include "log.h"
#include "nl.h"
#include "veil.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

static void on_every_timer(uv_timer_t *t);

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
int64_t agent__key_age_from_registry(struct agent *a)
{
	struct mesh_node *self = view_find(&a->view, a->c.mesh.node);

	if (self && self->present && self->parsed && self->latest.key_since > 0 &&
	    !sodium_memcmp(self->latest.public_key, a->public_key, 32))
		return self->latest.key_since;
	return agent__now_s();
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
	agent__schedule_save(a);
	/* A refused one is tried again later, not at once: its cause (the registry away) may last. */
	if (strncmp(a->view.rotation_result, "rotated", 7) != 0 && a->c.mesh.rotate_every && a->have_key)
		uv_timer_start(&a->every_timer, on_every_timer, (uint64_t)ROTATE_RETRY_S * 1000, 0);
	else
		agent__schedule_rotation(a);
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
		curve25519_clamp_secret(a->rot_key);
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
	agent__pump(a);
}

/* The base64 key and a newline, to a fresh 0600 file renamed over the key file. */
static int write_key_file(const char *path, const uint8_t key[static 32])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL) + 1];
	size_t len;
	int ret;

	sodium_bin2base64(b64, sizeof(b64) - 1, key, 32, sodium_base64_VARIANT_ORIGINAL);
	len = strlen(b64);
	b64[len++] = '\n';
	ret = conf_replace_file(path, b64, len, NULL);
	sodium_memzero(b64, sizeof(b64));
	return ret;
}

static int switch_veild(struct agent *a, char *why, size_t whylen)
{
	struct sbuf req = { 0 };
	char hex[65];
	int ret;

	sodium_bin2hex(hex, sizeof(hex), a->rot_key, 32);
	sbuf_printf(&req, "set=1\n" VEIL_UAPI_ROTATE_PRIVATE_KEY "=%s\n\n", hex);
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
		agent__pump(a);
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
	a->key_since = agent__now_s();
	sodium_free(a->rot_key);
	a->rot_key = NULL;
	a->rot = ROT_PUBLISH;
	log_audit("event=mesh_key_switched iface=%s network=%s node=%s peer=%s was=%s revision=%" PRId64,
		  a->view.ifname, a->view.network, a->c.mesh.node, now, old, a->rot_revision);
	a->todo |= T_PUBLISH;
	agent__pump(a);
}

/* A publication went through: it may be a rotation's step. */
void agent__rotation_published(struct agent *a, int64_t revision)
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
void agent__schedule_rotation(struct agent *a)
{
	uint64_t period = a->c.mesh.rotate_every, jitter = 0, due_in;
	int64_t due, now = agent__now_s();

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
