/* SPDX-License-Identifier: MIT */
/*
 * What veild and its tools must agree on, for tools and tests to see
 * (veild's internals stay in src/).
 */
#ifndef VEIL_H
#define VEIL_H

/*
 * The longest inner packet veild carries: a jumbo MTU of 9000 fits. A TUN
 * MTU above it makes veild drop the longer packets (counted in the metrics
 * as veil_transmit_drops_total{reason="too_long"}), so veilctl refuses an
 * MTU above it, and below the 68 bytes every IPv4 link must take.
 */
#define VEIL_MTU_MAX 9280
#define VEIL_MTU_MIN 68
/* Below this the kernel turns IPv6 off on a link (RFC 8200). */
#define VEIL_MTU_MIN_IPV6 1280

/*
 * veil's own keys on the control socket, beside the keys of WireGuard's
 * cross-platform userspace API (stock wg and wg-quick never send them):
 * veild parses and writes them (src/uapi.c), veilctl and the mesh agent
 * write and parse them. A wg-style "get=1" reply never holds the peer keys
 * below; "veil_get=1" asks for the same reply with them.
 */
#define VEIL_UAPI_GET "veil_get"
/* "metrics=1": the Prometheus text instead of key=value lines. */
#define VEIL_UAPI_METRICS "metrics"
/* Device keys (set). */
#define VEIL_UAPI_ROTATE_PRIVATE_KEY "rotate_private_key"
#define VEIL_UAPI_METRICS_LISTEN "metrics_listen"
/* Peer keys: set and veil_get. */
#define VEIL_UAPI_CIPHER "cipher"
#define VEIL_UAPI_ENDPOINT_NAME "endpoint_name"
/* Peer keys: veil_get only. */
#define VEIL_UAPI_HANDSHAKE_FAILURES "handshake_failures"
#define VEIL_UAPI_LAST_FAILURE "last_handshake_failure"
#define VEIL_UAPI_LAST_FAILURE_TIME "last_handshake_failure_time_sec"

/* The values of cipher= (and of a configuration's Cipher =). */
#define VEIL_CIPHER_CHACHA20POLY1305 "chacha20poly1305" /* WireGuard's, the default */
#define VEIL_CIPHER_AES256GCM "aes256gcm"               /* between veil peers only */

/*
 * Where things are at run time. The Makefile passes SYSCONFDIR, RUNSTATEDIR
 * and LOCALSTATEDIR (make RUNSTATEDIR=/run), as wireguard-tools passes
 * RUNSTATEDIR; these defaults are the Makefile's own.
 */
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/var/run"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
/* veild's control sockets, IFNAME.sock, where stock wg looks for them too. */
#define VEIL_SOCKET_DIR RUNSTATEDIR "/wireguard"
/* veilctl's configuration files, NAME.conf. */
#define VEIL_CONF_DIR SYSCONFDIR "/veil"
/* What veilctl up did (IFNAME.state) and the mesh agents' pid files. */
#define VEIL_STATE_DIR RUNSTATEDIR "/veil"
/* The mesh agents' local copies of the registry, IFNAME.json. */
#define VEIL_MESH_DIR LOCALSTATEDIR "/lib/veil/mesh"

#endif
