/* SPDX-License-Identifier: MIT */
/*
 * HTTPS requests for the mesh agent: libcurl's multi interface driven by a
 * libuv loop (its sockets in uv_poll_t handles, its timeout in one
 * uv_timer_t), so the agent never blocks on the registry. Every request is
 * a POST of a JSON body with mutual TLS (the CA, this node's certificate
 * and key) and, when given, etcd's token in the Authorization header.
 *
 * A request ends in exactly one call of its done callback, with err 0 and
 * the HTTP status and body, or a negative errno: -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH (could not connect), -EPROTO (TLS refused us, or the
 * member's certificate is not the CA's), -ECONNRESET (the connection broke),
 * -ECANCELED (the chunk callback asked to stop). http_cancel and http_free
 * end requests without calling done. With a chunk callback, the body is
 * handed over as it arrives (a watch) and done gets none.
 */
#ifndef VEIL_MESH_HTTP_H
#define VEIL_MESH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct http;
struct http_req;

struct http_tls {
	const char *ca, *cert, *key; /* PEM files */
};

typedef void (*http_done_cb)(struct http_req *req, int err, long status, const char *body, size_t len,
			     void *data);
/* Called inside libcurl: it may not start or cancel requests. Nonzero stops the request. */
typedef int (*http_chunk_cb)(struct http_req *req, const char *chunk, size_t len, void *data);

int http_new(uv_loop_t *loop, const struct http_tls *tls, struct http **out);
/*
 * Cancel every request (no callback) and free; the loop must run once more
 * to close handles. Never from a done or chunk callback.
 */
void http_free(struct http *h);

/*
 * POST body (copied into locked memory, wiped when the request ends) to url.
 * token: etcd's, or NULL. timeout_ms: for the whole request; 0 for none (a
 * watch), which still gives up on a dead connection within seconds (TCP
 * keepalive and a user timeout). NULL without memory.
 */
struct http_req *http_post(struct http *h, const char *url, const char *body, const char *token,
			   long timeout_ms, http_done_cb done, http_chunk_cb chunk, void *data);
void http_cancel(struct http_req *req);
/* Requests under way (for a test, and for the agent's idle check). */
size_t http_pending(const struct http *h);

#endif
