/* SPDX-License-Identifier: MIT */
/*
 * The optional metrics listener: an HTTP server (libmicrohttpd, in its
 * external-event mode: its epoll descriptor and its timeout are watched by
 * our libuv loop, so no thread is added) that answers GET /metrics with
 * what render writes. Off unless the operator names an address.
 */
#ifndef VEIL_HTTPD_H
#define VEIL_HTTPD_H

#include <sys/socket.h>

#include <uv.h>

#include "uapi.h"

struct httpd;

/* Writes the page into out (text, no NUL); 0 or a negative errno. */
typedef int (*httpd_render_fn)(void *ctx, struct uapi_buf *out);

/* Listen on sa (TCP). 0, or a negative errno (-EADDRINUSE, -EACCES, ...). */
int httpd_start(uv_loop_t *loop, const struct sockaddr *sa, socklen_t len, httpd_render_fn render,
		void *ctx, struct httpd **out);

/* Stop listening, drop open connections; memory goes in the handles' close callbacks. NULL is a no-op. */
void httpd_stop(struct httpd *h);

#endif
