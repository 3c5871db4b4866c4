/* SPDX-License-Identifier: MIT */
/*
 * The client side of WireGuard's userspace API: talk to veild (or
 * wireguard-go) over /var/run/wireguard/IFNAME.sock. Keys read back (the
 * private key, pre-shared keys) live in sodium_malloc memory and are wiped
 * by ctl_device_free; request buffers are wiped by sbuf_free.
 */
#ifndef VEILCTL_CTL_H
#define VEILCTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

#include "veil.h"

/* test_ctl.c points it at a scratch directory. */
#ifndef CTL_SOCKET_DIR
#define CTL_SOCKET_DIR VEIL_SOCKET_DIR
#endif

/* A growable text buffer in locked memory (requests carry keys in hex). Zero-initialise. */
struct sbuf {
	char *data;
	size_t len, cap;
	bool failed; /* an allocation failed: the content is incomplete */
};

void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_free(struct sbuf *b);

struct ctl_peer {
	uint8_t public_key[32];
	uint8_t *preshared_key; /* 32 bytes of sodium_malloc memory, NULL if none */
	struct sockaddr_storage endpoint;
	socklen_t endpoint_len; /* 0: none */
	uint16_t persistent_keepalive;
	uint64_t last_handshake_sec, last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
	struct conf_prefix *allowed_ips;
	size_t n_allowed_ips;
	/* veild's own (veil_get=1); has_cipher false when the daemon did not say (wireguard-go). */
	bool has_cipher;
	enum conf_cipher cipher;
	char *endpoint_name; /* "host:port" veild looks up again, or NULL */
	/*
	 * veild's own: handshakes refused or given up, and the latest's time
	 * (0: never) and reason; has_failures false when the daemon did not say.
	 */
	bool has_failures;
	uint64_t handshake_failures;
	uint64_t last_failure_sec;
	char last_failure[160];
};

struct ctl_device {
	char ifname[16];
	uint8_t *private_key; /* 32 bytes of sodium_malloc memory, NULL if none */
	uint8_t public_key[32];
	uint16_t listen_port;
	uint32_t fwmark;
	char metrics_listen[64]; /* veild's own: where it serves metrics ("addr:port"), "" for nowhere */
	bool veil;               /* it answered veil_get=1: veild, with its own keys */
	struct ctl_peer *peers;
	size_t n_peers;
};

/*
 * Connect to IFNAME's control socket. -ENOENT / -ECONNREFUSED: no daemon
 * runs for it; why gets a sentence an operator can act on in every case
 * ("no daemon runs for wg0 (/var/run/wireguard/wg0.sock does not exist)",
 * "... is a stale socket: no daemon listens on it", "... is not a socket").
 * Every wait (connect, write, each read) is bounded by 5 s.
 */
int ctl_connect(const char *ifname, int *fd, char *why, size_t whylen);
bool ctl_running(const char *ifname);
/* The interfaces that have a socket, sorted; free each and the array. */
int ctl_list(char ***names, size_t *n);

/*
 * Fills dev (free with ctl_device_free). 0 or -errno. Asks veil_get=1
 * first (veild: get=1's lines and each peer's cipher and endpoint name);
 * a daemon that hangs up on it (wireguard-go) is asked get=1, and this
 * process asks that interface get=1 from then on; a daemon that answers it
 * with an error (or a reply that cannot be read) is asked get=1 this time.
 */
int ctl_get(const char *ifname, struct ctl_device *dev, char *why, size_t whylen);
void ctl_device_free(struct ctl_device *dev);
/* Forget the running peers with these keys (the mesh agent's), as if the daemon had none. */
void ctl_device_drop_peers(struct ctl_device *dev, const uint8_t (*keys)[32], size_t n);
/* All of p to standard output (keys, show's text); 0 or a negative errno. */
int ctl_write_out(const char *p, size_t len);
/*
 * veild's own "metrics=1": the Prometheus text appended to text. A daemon
 * without it (wireguard-go) closes the connection: -EPIPE.
 */
int ctl_metrics(const char *ifname, struct sbuf *text, char *why, size_t whylen);

/*
 * Send a whole set=1 request (ending with the empty line); 0 or the
 * daemon's errno, negative. Daemons write errno=-N (veild, wireguard-go);
 * errno=N is read as the same errno. why is left empty for a daemon's
 * errno (print strerror) and says what went wrong otherwise.
 */
int ctl_set(const char *ifname, const struct sbuf *req, char *why, size_t whylen);

/*
 * Requests from a configuration (only the keys the daemon knows: private
 * key, listen port, fwmark, peers; wg-quick's other keys are not sent).
 * Endpoints must be resolved (conf_resolve_endpoints).
 *   setconf: replace_peers=true, everything as in the file; like wg
 *   setconf, what it leaves out is reset (private key all zeros, listen
 *   port 0, fwmark 0).
 *   syncconf: only what differs from running (a device key the file
 *   leaves out keeps its running value); peers not in the file are
 *   removed; a peer whose settings are all equal is not mentioned, so its
 *   session is untouched; a changed peer gets only the changed lines
 *   (replace_allowed_ips when its allowed IPs differ).
 * Returns 0 or -ENOMEM.
 */
int ctl_build_setconf(const struct conf *c, struct sbuf *req);
int ctl_build_syncconf(const struct conf *c, const struct ctl_device *running, struct sbuf *req);
/*
 * syncconf for some peers only (the mesh agent's): each of peers[] added,
 * or updated in what differs, and each key of remove[] that runs removed;
 * every other running peer is left alone. An endpoint is sent only where
 * the peer names one (endpoint_len), so the caller decides when to undo
 * roaming. The request is left open for more peer lines: end it with a
 * blank line. 0 or -ENOMEM.
 */
int ctl_build_sync_peers(const struct conf_peer *peers, size_t n, const uint8_t (*remove)[32],
			 size_t n_remove, const struct ctl_device *running, struct sbuf *req);

/*
 * veild's extensions: the interface's MetricsListen (metrics_listen, empty
 * for none), sent alone, and in one more request for every peer of the file
 * its Endpoint host name (endpoint_name, empty for a literal address or
 * none), looked up again when handshakes fail, and its Cipher (cipher,
 * chacha20poly1305 when the file says nothing); update_only: peers are
 * never created here.
 */
/* Whether an Endpoint as written names a host (not an IPv4 or [IPv6] literal). */
bool ctl_endpoint_is_name(const char *ep);
/* The peers' request; *any_name: some peer has a name. 0 or -ENOMEM. */
int ctl_build_extensions(const struct conf *c, struct sbuf *req, bool *any_name);
/*
 * Send what (CTL_EXT_METRICS, CTL_EXT_PEERS or both, in that order) after
 * the configuration. A refused MetricsListen the file asks for, or a
 * refused request while some peer asks for aes256gcm, is an error (its
 * errno), said on stderr naming the setting, its line and where the
 * daemon's log is; nothing is downgraded. A daemon that refuses them
 * otherwise (wireguard-go) costs only the re-resolution of names: a
 * warning, 0.
 */
enum { CTL_EXT_METRICS = 1, CTL_EXT_PEERS = 2 };
int ctl_send_extensions(const char *ifname, const struct conf *c, unsigned int what);
/*
 * Where IFNAME's daemon writes its log, for messages that send the operator
 * there: "journalctl -u UNIT" when it runs in a systemd service, its
 * standard error when it runs in the foreground (veild -f), syslog when the
 * host has one (/dev/log), or a sentence saying that nothing keeps it and
 * how to see it (veild -f IFNAME).
 */
void ctl_log_where(const char *ifname, char *out, size_t len);
/*
 * What a syncconf of c over running would change: peers added, removed, or
 * changed in anything (veild's cipher and endpoint name included), and the
 * device's keys that differ. For reload's summary.
 */
struct ctl_sync_summary {
	size_t added, removed, changed;
	bool private_key, listen_port, fwmark;
};
void ctl_sync_summarize(const struct conf *c, const struct ctl_device *running, struct ctl_sync_summary *s);
/*
 * The request that puts the daemon back as it was (was: a ctl_get from
 * before a change) from how it is now: peers it did not have removed, the
 * peers it had and that differ now given again whole (created if they
 * went), the device's key, port and fwmark where they differ. Peers as they
 * were are not mentioned, so their sessions stay. 0 or -ENOMEM.
 */
int ctl_build_restore(const struct ctl_device *was, const struct ctl_device *now, struct sbuf *req);
/*
 * A running peer as a [Peer] section (showconf's format, a blank line
 * first). orig, when the peer is in a configuration, keeps its
 * pre-shared key's source (a file or credential) instead of the key.
 */
void ctl_format_peer(struct sbuf *out, const struct ctl_peer *p, const struct conf_peer *orig);

/*
 * Text forms shared by requests and output: "a.b.c.d:port" or
 * "[v6%scope]:port" (numeric scope, as the daemons write it; "" for no
 * address), and "addr/cidr". Buffers of these sizes always suffice.
 */
enum { CTL_ENDPOINT_LEN = 80, CTL_PREFIX_LEN = 56 };
void ctl_format_endpoint(const struct sockaddr_storage *ss, char *out, size_t len);
void ctl_format_prefix(const struct conf_prefix *p, char *out, size_t len);
/*
 * An amount of bytes in the units show and top share: "512 B", "1.50 KiB",
 * "2.25 MiB", ... (powers of 1024, as wg show); per follows the unit ("/s").
 */
void ctl_format_bytes(double n, const char *per, char *out, size_t len);

/* Commands (argv[0] is the command name); each returns the process exit code. */
int cmd_show(int argc, char **argv);
int cmd_showconf(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_setconf(int argc, char **argv);
int cmd_syncconf(int argc, char **argv);
int cmd_genkey(int argc, char **argv);
int cmd_genpsk(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_top(int argc, char **argv);

#endif
