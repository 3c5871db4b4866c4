/* SPDX-License-Identifier: MIT */
/*
 * etcd's v3 API as its JSON gateway speaks it (etcd 3.4: POST /v3/...,
 * keys and values in base64, 64-bit numbers as strings), with no I/O:
 * request bodies to send and parsers for what comes back. The agent sends
 * them through http.h, veilctl's administrator commands through libcurl's
 * easy interface.
 *
 *   /v3/auth/authenticate  {"name","password"}       -> {"token"}
 *   /v3/kv/range           {"key","range_end"}       -> {"header":{"revision"},"kvs":[...]}
 *   /v3/kv/put             {"key","value","lease"}   -> {"header":{"revision"}}
 *   /v3/kv/deleterange     {"key"}                   -> {"header":{"revision"},"deleted"}
 *   /v3/watch              {"create_request":{...}}  -> a stream of {"result":{...}}
 *   /v3/lease/grant        {"TTL"}                   -> {"ID","TTL"}
 *   /v3/lease/keepalive    {"ID"}                    -> {"result":{"ID","TTL"}}
 *
 * Errors come as {"error","message","code"} with gRPC's code.
 */
#ifndef VEIL_MESH_ETCD_H
#define VEIL_MESH_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A member's URL as written in Registry (https://host[:port][/]) and a
 * path: the URL to ask, with etcd's client port 2379 when none is given.
 */
void etcd_url(const char *member, const char *path, char *out, size_t len);

/* Strings the bodies are made of; each returns a NUL-terminated string to free, or NULL. */
/* The password is copied only into locked memory: free this one with etcd_free_secret. */
char *etcd_body_auth(const char *user, const char *password);
void etcd_free_secret(char *body);
/* Every key under prefix (the empty string: all keys); at revision 0: the latest. */
char *etcd_body_range_prefix(const char *prefix, int64_t revision);
char *etcd_body_range_key(const char *key);
char *etcd_body_put(const char *key, const char *value, int64_t lease);
char *etcd_body_delete(const char *key);
char *etcd_body_delete_prefix(const char *prefix);
char *etcd_body_watch(const char *prefix, int64_t start_revision);
/* One key's events from start_revision on (history). */
char *etcd_body_watch_key(const char *key, int64_t start_revision);
char *etcd_body_lease_grant(int64_t ttl);
char *etcd_body_lease_keepalive(int64_t id);
char *etcd_body_lease_revoke(int64_t id);
char *etcd_body_compact(int64_t revision);
/* /v3/auth/user/delete. */
char *etcd_body_user_delete(const char *user);

struct etcd_kv {
	char *key;           /* NUL-terminated (a key holding a NUL is refused) */
	char *value;         /* NUL-terminated; value_len bytes before it */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct etcd_range {
	int64_t revision;    /* the store's revision the answer reflects */
	struct etcd_kv *kvs;
	size_t n;
	bool more;
};

enum etcd_event_type { ETCD_PUT, ETCD_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;   /* a DELETE has the key and its mod_revision, the deletion's */
};

struct etcd_watch_msg {
	int64_t revision;
	bool created, canceled;
	int64_t compact_revision; /* non-zero: the start revision was compacted away */
	char cancel_reason[160];
	struct etcd_event *events;
	size_t n;
};

/* What an error reply means to the agent. */
enum etcd_error_kind {
	ETCD_ERR_NONE,
	ETCD_ERR_AUTH,       /* token missing, invalid or expired: authenticate again */
	ETCD_ERR_LOGIN,      /* the user name or password is wrong */
	ETCD_ERR_PERMISSION, /* the user may not do this */
	ETCD_ERR_COMPACTED,  /* the revision asked for is gone */
	ETCD_ERR_UNAVAILABLE,/* no leader, timeout, stopping: try another member */
	ETCD_ERR_OTHER,
};

struct etcd_error {
	enum etcd_error_kind kind;
	int code;            /* gRPC's */
	char message[200];
};

/*
 * Judge a reply: HTTP status and body. 0 when it is a success; else
 * -EIO with e filled in (a body that is no error at all says so).
 */
int etcd_reply_error(long status, const char *body, size_t len, struct etcd_error *e);

int etcd_parse_auth(const char *body, size_t len, char **token);
int etcd_parse_range(const char *body, size_t len, struct etcd_range *r);
void etcd_range_free(struct etcd_range *r);
/* put, deleterange, compact: the header's revision. */
int etcd_parse_revision(const char *body, size_t len, int64_t *revision);
/* grant or keepalive (wrapped in "result" or not): the lease and its TTL left (0: gone). */
int etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl);
int etcd_parse_watch(const char *json, size_t len, struct etcd_watch_msg *m);
void etcd_watch_msg_free(struct etcd_watch_msg *m);

/*
 * A watch's body, as it arrives in pieces: whole messages are handed to
 * on_msg (one JSON object each, newline-separated or not). Stops at the
 * first non-zero on_msg, which it returns; -EFBIG for a message past 16 MB.
 */
struct etcd_stream {
	char *buf;
	size_t len, cap;
	size_t pos;             /* bytes of buf already scanned */
	size_t depth;           /* the scanner's state at pos */
	bool in_string, escaped;
};

int etcd_stream_feed(struct etcd_stream *s, const char *chunk, size_t len,
		     int (*on_msg)(const char *json, size_t len, void *data), void *data);
void etcd_stream_reset(struct etcd_stream *s);

#endif
