// SPDX-License-Identifier: MIT
/*
 * Teardown order (httpd_stop): the poll and timer handles stop at once,
 * libmicrohttpd closes its connections, its epoll descriptor and our
 * listening socket, and the struct goes once both handles' close callbacks
 * ran.
 */
#include "httpd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/compiler.h"

enum {
	HTTPD_CONNECTIONS = 16,      /* a scraper or two, and room for a curious human */
	HTTPD_PER_IP = 4,
	HTTPD_TIMEOUT_S = 5,         /* an idle or slow connection goes after this */
};

struct httpd {
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	int open_handles;
	httpd_render_fn render;
	void *ctx;
};

/* text is copied into a buffer the library owns and frees. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *text,
			     size_t len, const char *type)
{
	char *copy = malloc(len ? len : 1);
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!copy)
		return MHD_NO;
	memcpy(copy, text, len);
	r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(copy);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	static const char not_found[] = "veild serves /metrics only\n";
	static const char no_method[] = "GET or HEAD only\n";
	struct httpd *h = cls;
	struct uapi_buf page = { 0 };
	enum MHD_Result ret;

	(void)version;
	(void)upload;
	(void)state;
	if (*upload_len)
		return MHD_NO; /* no request here has a body */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, no_method, sizeof(no_method) - 1,
			     "text/plain; charset=utf-8");
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     "text/plain; charset=utf-8");
	if (h->render(h->ctx, &page) < 0) {
		uapi_buf_free(&page);
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "", 0, "text/plain");
	}
	ret = reply(conn, MHD_HTTP_OK, page.data ? page.data : "", page.len,
		    "text/plain; version=0.0.4; charset=utf-8");
	uapi_buf_free(&page);
	return ret;
}

static void run(struct httpd *h);

static void poll_cb(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	run(container_of(p, struct httpd, poll));
}

static void timer_cb(uv_timer_t *t)
{
	run(container_of(t, struct httpd, timer));
}

/* Let libmicrohttpd do what is ready, then wake up for its next timeout. */
static void run(struct httpd *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		uv_timer_start(&h->timer, timer_cb, ms, 0);
	else
		uv_timer_stop(&h->timer);
}

/* Our own listening socket, so that its errors are ours to report. */
static int listen_on(const struct sockaddr *sa, socklen_t len)
{
	int one = 1, fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, sa, len) < 0 || listen(fd, HTTPD_CONNECTIONS) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int httpd_start(uv_loop_t *loop, const struct sockaddr *sa, socklen_t len, httpd_render_fn render,
		void *ctx, struct httpd **out)
{
	struct httpd *h = calloc(1, sizeof(*h));
	const union MHD_DaemonInfo *info;
	int fd;

	if (!h)
		return -ENOMEM;
	fd = listen_on(sa, len);
	if (fd < 0) {
		free(h);
		return fd;
	}
	h->render = render;
	h->ctx = ctx;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, handle, h,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPD_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTPD_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPD_TIMEOUT_S,
				  MHD_OPTION_END);
	info = h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info || uv_poll_init(loop, &h->poll, info->epoll_fd)) {
		if (h->mhd)
			MHD_stop_daemon(h->mhd); /* closes fd too */
		else
			close(fd);
		free(h);
		return -EIO;
	}
	uv_timer_init(loop, &h->timer);
	h->open_handles = 2;
	uv_poll_start(&h->poll, UV_READABLE, poll_cb);
	*out = h;
	return 0;
}

static void closed(uv_handle_t *handle)
{
	struct httpd *h = handle->data;

	if (--h->open_handles == 0)
		free(h);
}

void httpd_stop(struct httpd *h)
{
	if (!h)
		return;
	uv_poll_stop(&h->poll);
	uv_timer_stop(&h->timer);
	h->poll.data = h->timer.data = h;
	uv_close((uv_handle_t *)&h->poll, closed);
	uv_close((uv_handle_t *)&h->timer, closed);
	/* Closes the connections, its epoll descriptor and the listening socket. */
	MHD_stop_daemon(h->mhd);
	h->mhd = NULL;
}
