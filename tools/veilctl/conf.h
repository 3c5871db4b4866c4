/* SPDX-License-Identifier: MIT */
/*
 * veil's configuration files: wg-quick's format ([Interface] and [Peer]
 * sections of Key = Value lines), plus veil's own keys for where keys come
 * from. Parsing is all or nothing: on any error the conf is left empty and
 * the error names the file, the line and the key, in one line:
 *
 *   /etc/veil/site-a.conf:12: AllowedIPs: "10.0.0.0/33" is not a prefix
 *
 * Keys in locked memory: every 32-byte secret a conf holds (PrivateKey,
 * PresharedKey, and later what keys_load reads) lives in sodium_malloc
 * memory and is wiped by conf_free.
 */
#ifndef VEILCTL_CONF_H
#define VEILCTL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "veil.h" /* VEIL_CONF_DIR */

#define CONF_FILE_MAX (1024L * 1024) /* larger files are refused */
#define CONF_LINE_MAX 4096

struct conf_error {
	char msg[768]; /* "path:line: Key: what is wrong", or "path: what is wrong" */
};

/* An address or prefix: family AF_INET (4 bytes used) or AF_INET6. Host bits kept as written. */
struct conf_prefix {
	int family;
	uint8_t addr[16];
	uint8_t cidr;
};

enum conf_key_source {
	KEYSRC_NONE,       /* not given */
	KEYSRC_INLINE,     /* PrivateKey = / PresharedKey = base64 */
	KEYSRC_FILE,       /* PrivateKeyFile = / PresharedKeyFile = path */
	KEYSRC_CREDENTIAL, /* PrivateKeyCredential = / PresharedKeyCredential = name in $CREDENTIALS_DIRECTORY */
	KEYSRC_COMMAND,    /* PrivateKeyCommand = command line whose standard output is the key */
};

struct conf_key {
	enum conf_key_source source;
	unsigned int line; /* where the source was given */
	char *arg;         /* path, credential name or command; NULL when inline or none */
	uint8_t *key;      /* 32 bytes of sodium_malloc memory once known, else NULL */
};

enum conf_cipher { CIPHER_DEFAULT, CIPHER_AES256GCM };

/* The suite's name on the control socket (cipher=) and in a configuration (Cipher =). */
static inline const char *conf_cipher_name(enum conf_cipher cipher)
{
	return cipher == CIPHER_AES256GCM ? VEIL_CIPHER_AES256GCM : VEIL_CIPHER_CHACHA20POLY1305;
}

struct conf_peer {
	unsigned int line; /* the [Peer] line */
	uint8_t public_key[32];
	struct conf_key psk;
	struct conf_prefix *allowed_ips;
	size_t n_allowed_ips;
	char *endpoint; /* as written ("host:port", "[v6]:port"), NULL if none */
	unsigned int endpoint_line;
	/* Filled by conf_resolve_endpoints. */
	struct sockaddr_storage endpoint_addr;
	socklen_t endpoint_len; /* 0: not resolved */
	bool has_keepalive;
	uint16_t persistent_keepalive; /* 0: off */
	/* Cipher = (veil's own): the transport suite; both peers must agree. */
	enum conf_cipher cipher;
	bool has_cipher;
};

enum conf_table { TABLE_AUTO, TABLE_OFF, TABLE_ID };

/*
 * [Mesh] (veil's own): this node takes part in a mesh whose peers come from
 * an etcd registry (docs/mesh.md). The mesh agent, veil-meshd, reads it;
 * veilctl starts and stops the agent. Every key but Endpoint, Advertise,
 * PersistentKeepalive and Cipher is required.
 */
enum { CONF_MESH_NAME_MAX = 63 };

struct conf_mesh {
	unsigned int line;     /* the [Mesh] line; 0: the file has no [Mesh] section */
	char **registry;       /* Registry = https://host:port, ...: etcd members, in order */
	size_t n_registry;
	char *ca;              /* RegistryCA: the CA that signed the members' certificates */
	char *cert, *key;      /* RegistryCert, RegistryKey: this node's client certificate */
	char *user;            /* RegistryUser: this node's etcd user */
	enum conf_key_source password_source; /* RegistryPassword{File,Credential,Command} */
	char *password_arg;
	unsigned int password_line;
	char *network, *node;  /* names: 1-63 of A-Z a-z 0-9 . _ - */
	char *endpoint;        /* how the others reach this node ("host:port"); NULL: they do not */
	struct conf_prefix *advertise; /* the prefixes behind this node */
	size_t n_advertise;
	bool has_keepalive;
	uint16_t keepalive;    /* PersistentKeepalive toward every mesh peer; 0: off */
	enum conf_cipher cipher; /* what this node offers; aes256gcm is used where both offer it */
	uint64_t rotate_every;  /* RotateEvery: seconds between static-key rotations; 0: none */
	unsigned int rotate_every_line;
};

struct conf_hooks {
	char **cmd;
	size_t n;
};

struct conf {
	char *path; /* as given, for messages */
	char *name; /* interface name: the file's base name without ".conf" */
	struct conf_key private_key;
	bool has_listen_port;
	uint16_t listen_port;
	bool has_fwmark;
	uint32_t fwmark; /* "off" is 0 */
	struct conf_prefix *addresses;
	size_t n_addresses;
	bool has_mtu;
	unsigned int mtu;
	enum conf_table table;
	uint32_t table_id; /* TABLE_ID only */
	char **dns; /* servers and search domains, as written */
	size_t n_dns;
	struct conf_hooks pre_up, post_up, pre_down, post_down;
	bool save_config;
	/* MetricsListen = (veil's own): "addr:port" or "[v6]:port" for veild's HTTP metrics; NULL: off. */
	char *metrics_listen;
	/* Where ListenPort, FwMark, MTU and MetricsListen were given, for messages; 0: not given. */
	unsigned int listen_port_line, fwmark_line, mtu_line, metrics_listen_line;
	struct conf_peer *peers;
	size_t n_peers;
	bool has_interface; /* false only in a file that holds nothing but [Mesh] (an administrator's) */
	struct conf_mesh mesh;
	/* conf_load only: the file's mode and owner, for keys_warn_conf_file. */
	bool file_known;
	unsigned int file_mode;
	unsigned int file_uid;
};

/* Parse text (len bytes, need not be NUL-terminated). path names the file in messages. 0 or -errno. */
int conf_parse(struct conf *c, const char *path, const char *text, size_t len, struct conf_error *err);
/* Read path (at most CONF_FILE_MAX bytes) and parse it. */
int conf_load(struct conf *c, const char *path, struct conf_error *err);
/* Wipe every key and free everything; c is then empty (all zero). Safe on an empty conf. */
void conf_free(struct conf *c);

/* Resolve each peer's endpoint (host names allowed) with getaddrinfo. Errors name the line. */
int conf_resolve_endpoints(struct conf *c, struct conf_error *err);

/* Helpers shared with the command line. 0 or -EINVAL. */
int conf_parse_key(const char *base64, uint8_t out[static 32]); /* exactly 32 bytes, standard base64 */
int conf_parse_prefix(const char *s, struct conf_prefix *out);  /* "a.b.c.d[/n]", "v6[/n]"; no /n: full length */
bool conf_valid_ifname(const char *name);                      /* 1..15 bytes of [A-Za-z0-9_=+.-] */
/* The interface a file is for: its base name without ".conf", as conf_parse names it. */
int conf_ifname_of(const char *path, char out[static 16]);
bool conf_valid_mesh_name(const char *name);                   /* 1..63 bytes of [A-Za-z0-9_.-], not "." or ".." */
/* "host:port" or "[v6]:port" with a port 1-65535 (the host is not looked up). */
bool conf_valid_endpoint(const char *v);
/* Whether two prefixes share an address (one holds the other). */
bool conf_prefix_overlap(const struct conf_prefix *a, const struct conf_prefix *b);
/* Clear the bits past the prefix length; whether any were set. */
bool conf_prefix_clear_host_bits(struct conf_prefix *pfx);

/* NAME is VEIL_CONF_DIR/NAME.conf; an argument with a '/' or ending in ".conf" is a path. */
void conf_path(const char *arg, char *out, size_t len);
/*
 * path's new contents (which may hold a key), whole or not at all: a fresh
 * temporary file beside it (mkostemp: O_EXCL, so never a file or link
 * someone planted; root's and 0600), given like's owner and mode when like
 * is not NULL, written, fsynced, renamed over path, and its directory
 * synced. 0 or -errno.
 */
int conf_replace_file(const char *path, const void *data, size_t len, const struct stat *like);

#endif
