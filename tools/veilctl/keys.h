/* SPDX-License-Identifier: MIT */
/*
 * Where keys come from, besides the file itself: a key file (refused when
 * group- or world-readable or another user's, as OpenSSH refuses a loose
 * key), a systemd
 * credential ($CREDENTIALS_DIRECTORY/NAME), or a command whose standard
 * output is the key (a vault client). Each holds one base64 key (44
 * characters, surrounding whitespace ignored). What is read goes straight
 * into locked memory; every intermediate buffer is wiped.
 */
#ifndef VEILCTL_KEYS_H
#define VEILCTL_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

/*
 * Fill c->private_key.key and every peer's psk.key from their sources
 * (inline keys are already there). Errors name file and line:
 *   site-a.conf:3: PrivateKeyFile: /etc/veil/a.key is readable by group or others (chmod 600 it)
 * A file that holds a key itself is held to keys_check_conf_file's rules
 * first, and a [Peer] with the interface's own public key is refused
 * (-EINVAL) once the private key is known.
 * 0 or -errno; on error nothing is half-loaded that conf_free would not wipe.
 */
int keys_load(struct conf *c, struct conf_error *err);
/*
 * The [Mesh] section's registry password, from its file (0600, as a key
 * file), credential or command: a NUL-terminated string in sodium_malloc
 * memory (sodium_free it). Errors name file and line. 0 or -errno.
 */
int keys_mesh_password(const struct conf *c, char **password, struct conf_error *err);

/*
 * A file that holds a key itself (PrivateKey =, PresharedKey =; read by
 * conf_load) gets a key file's rules: refused (-EPERM, err naming the key's
 * line) when group or others have any permission on it, or when a user
 * other than root (or us) owns it, who could read it and change its keys
 * and its hooks, which run as root. wg-quick only warns; a 0644 key file
 * was refused and a 0644 file with the key inline was not.
 */
int keys_check_conf_file(const struct conf *c, struct conf_error *err);

/*
 * One key from each kind of source; why gets a sentence without file:line. 0 or -errno.
 * A key file (or credential) must belong to root or to the caller.
 */
int key_from_file(const char *path, uint8_t out[static 32], char *why, size_t whylen);
int key_from_credential(const char *name, uint8_t out[static 32], char *why, size_t whylen);
int key_from_command(const char *command, uint8_t out[static 32], char *why, size_t whylen);

#endif
