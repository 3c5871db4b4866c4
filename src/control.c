// SPDX-License-Identifier: MIT
/*
 * The control socket: the connections to veild's unix socket, which speak
 * the wireguard-tools text UAPI (src/uapi.c parses it and calls the
 * handlers in src/backend.c), one request at a time; and the caller check,
 * root or the control group, never the resolver child.
 */
#include "daemon_int.h"

#include <assert.h>
#include <stdlib.h>

#include <sodium.h>

#include "log.h"
#include "uapi.h"

/*
 * One connection. A reply being written stops everything else on it: the
 * rest of the read that brought the request waits in held, and the socket
 * is not read, so a client that pipelines requests without reading its
 * replies holds one reply in veild and then the kernel's socket buffers,
 * which stop it.
 */
struct uconn {
	uv_pipe_t pipe;
	struct daemon *d;
	struct uapi_conn *conn;
	struct ucred cred;
	char *held;       /* a read's bytes not fed yet (may hold a key), or NULL */
	size_t held_len, held_off;
	bool writing;     /* a reply is on its way out */
	bool reading;
	bool closing;
};

struct wreq {
	uv_write_t req;
	char *data;
	size_t len;
	struct uconn *uc;
	bool close_after;
};

static void drop_held(struct uconn *uc)
{
	if (!uc->held)
		return;
	sodium_memzero(uc->held, uc->held_len);
	free(uc->held);
	uc->held = NULL;
	uc->held_len = uc->held_off = 0;
}

static void uconn_closed(uv_handle_t *h)
{
	struct uconn *uc = container_of((uv_pipe_t *)h, struct uconn, pipe);

	drop_held(uc);
	uapi_conn_free(uc->conn);
	free(uc);
}

static void uconn_close(struct uconn *uc)
{
	if (uc->closing)
		return;
	uc->closing = true;
	uv_close((uv_handle_t *)&uc->pipe, uconn_closed);
}

static void uconn_pump(struct uconn *uc);

static void write_done(uv_write_t *req, int status)
{
	struct wreq *wr = container_of(req, struct wreq, req);
	struct uconn *uc = wr->uc;

	/* Replies carry private and pre-shared keys in hex. */
	sodium_memzero(wr->data, wr->len);
	free(wr->data);
	uc->writing = false;
	if (status < 0 || wr->close_after)
		uconn_close(uc);
	else
		uconn_pump(uc);
	free(wr);
}

/* Start writing out's bytes (taken over, wiped once written); false if it could not start. */
static bool send_reply(struct uconn *uc, struct uapi_buf *out, bool close_after)
{
	struct wreq *wr = calloc(1, sizeof(*wr));
	uv_buf_t b = uv_buf_init(out->data, (unsigned int)out->len);

	if (!wr)
		return false;
	wr->data = out->data;
	wr->len = out->len;
	wr->uc = uc;
	wr->close_after = close_after;
	if (uv_write(&wr->req, (uv_stream_t *)&uc->pipe, &b, 1, write_done)) {
		free(wr);
		return false;
	}
	*out = (struct uapi_buf){ 0 };
	uc->writing = true;
	return true;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = malloc(4096);
	buf->len = buf->base ? 4096 : 0;
}

static void uconn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/*
 * Feed what is held, one request at a time, each reply written before the
 * next request is looked at; read more only once nothing is held or being
 * written.
 */
static void uconn_pump(struct uconn *uc)
{
	struct daemon *d = uc->d;

	while (uc->held && !uc->writing && !uc->closing) {
		struct uapi_buf out = { 0 };
		size_t used;
		int ret;

		d->who_uid = (long)uc->cred.uid;
		d->who_pid = (long)uc->cred.pid;
		ret = uapi_conn_feed_one(uc->conn, uc->held + uc->held_off, uc->held_len - uc->held_off,
					 &out, &used);
		d->who_uid = d->who_pid = -1;
		uc->held_off += used;
		if (uc->held_off == uc->held_len)
			drop_held(uc);
		if ((out.len && !send_reply(uc, &out, ret != 0)) || (ret && !uc->writing))
			uconn_close(uc);
		uapi_buf_free(&out);
	}
	if (uc->closing)
		return;
	if (!uc->held && !uc->writing && !uc->reading)
		uc->reading = uv_read_start((uv_stream_t *)&uc->pipe, alloc_cb, uconn_read) == 0;
	else if ((uc->held || uc->writing) && uc->reading)
		uc->reading = uv_read_stop((uv_stream_t *)&uc->pipe) != 0;
}

static void uconn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct uconn *uc = container_of((uv_pipe_t *)s, struct uconn, pipe);

	/* libuv stops calling us once uv_read_stop ran, so nothing is held here. */
	assert(n <= 0 || !uc->held);
	if (n > 0) {
		uc->held = buf->base; /* fed by uconn_pump, freed (wiped) by drop_held */
		uc->held_len = (size_t)n;
		uc->held_off = 0;
		uconn_pump(uc);
		return;
	}
	if (n == UV_EOF) {
		/* A set without its empty line is applied and answered, as wireguard-go does. */
		struct uapi_buf out = { 0 };
		int ret;

		uc->d->who_uid = (long)uc->cred.uid;
		uc->d->who_pid = (long)uc->cred.pid;
		ret = uapi_conn_eof(uc->conn, &out);
		uc->d->who_uid = uc->d->who_pid = -1;
		if (ret < 0 || !out.len || !send_reply(uc, &out, true))
			uconn_close(uc);
		uapi_buf_free(&out);
	} else if (n < 0) {
		uconn_close(uc);
	}
	if (buf->base) {
		sodium_memzero(buf->base, buf->len);
		free(buf->base);
	}
}

static bool caller_allowed(const struct daemon *d, const struct ucred *cred)
{
	size_t i;

	/* Our own resolver child never configures us, whatever its uid and groups. */
	if (d->resolver_pid > 0 && cred->pid == d->resolver_pid)
		return false;
	if (cred->uid == 0)
		return true;
	if (!d->cfg->has_control_group)
		return false;
	if (cred->gid == d->cfg->control_gid)
		return true;
	for (i = 0; i < d->cfg->ncontrol_uids; i++)
		if (cred->uid == d->cfg->control_uids[i])
			return true;
	return false;
}

void control__uapi_accept(uv_stream_t *server, int status)
{
	struct daemon *d = container_of((uv_pipe_t *)server, struct daemon, uapi);
	struct uconn *uc;
	/* uid -1 (nobody) in the refusal line if the credentials cannot be read. */
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0)
		return;
	uc = calloc(1, sizeof(*uc));
	if (!uc)
		return;
	uc->d = d;
	uv_pipe_init(&d->loop, &uc->pipe, 0);
	if (uv_accept(server, (uv_stream_t *)&uc->pipe)) {
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	/* Only root (or the control group) may talk to the interface: the socket's mode says so, and so do we. */
	if (uv_fileno((uv_handle_t *)&uc->pipe, &fd) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || !caller_allowed(d, &cred)) {
		log_info("%s: control connection from uid %u refused", d->cfg->ifname,
			 (unsigned int)cred.uid);
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	uc->cred = cred;
	uc->conn = uapi_conn_new(&uapi_ops, d);
	if (!uc->conn) {
		uc->closing = true;
		uv_close((uv_handle_t *)&uc->pipe, (uv_close_cb)free);
		return;
	}
	uconn_pump(uc);
}

void control__close_walk(uv_handle_t *h, void *arg)
{
	struct daemon *d = arg;

	if (uv_is_closing(h))
		return;
	/* Control connections are freed and wiped: a half-read request may hold a key. */
	if (h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&d->uapi)
		uconn_close(container_of((uv_pipe_t *)h, struct uconn, pipe));
	else
		uv_close(h, NULL);
}
