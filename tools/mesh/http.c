// SPDX-License-Identifier: MIT
/*
 * libcurl's multi interface on a libuv loop (http.h). libcurl says which
 * sockets to watch (socket_cb) and when to call it back (timer_cb); we
 * watch them with uv_poll_t and tell it what happened with
 * curl_multi_socket_action, then collect finished transfers.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "http.h"

enum {
	CONNECT_TIMEOUT_MS = 3000,
	/* A connection whose data or keepalive probes go unanswered this long is dead. */
	USER_TIMEOUT_MS = 6000,
	KEEPALIVE_IDLE_S = 2,
	KEEPALIVE_INTERVAL_S = 1,
	BODY_MAX = 64 * 1024 * 1024, /* a range over a large network still fits */
};

struct http {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct http_tls tls;
	struct http_req *reqs; /* every request under way */
	size_t n_reqs;
};

struct http_req {
	struct http *h;
	struct http_req *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	char *body;     /* the request, in locked memory */
	size_t body_len;
	char *reply;    /* what came back (no chunk callback) */
	size_t reply_len, reply_cap;
	bool too_big;
	bool ending;     /* check_done holds it: a cancel only marks it */
	bool canceled;
	CURLcode result;
	struct http_req *done_next;
	http_done_cb done;
	http_chunk_cb chunk;
	void *data;
};

/* One socket libcurl asked us to watch. */
struct sock {
	uv_poll_t poll;
	struct http *h;
	curl_socket_t fd;
};

static void free_req(struct http_req *r)
{
	struct http *h = r->h;

	if (r->prev)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	h->n_reqs--;
	curl_multi_remove_handle(h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers); /* the token: curl_slist_append copied it */
	if (r->body)
		sodium_free(r->body);
	free(r->reply);
	free(r);
}

static int from_curl(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		return -EPROTO;
	case CURLE_WRITE_ERROR:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -ECONNRESET;
	}
}

/*
 * Collect what libcurl finished, then tell each owner. A callback may
 * start requests or cancel others, even one finished in the same round:
 * those are only marked while this holds them.
 */
static void check_done(struct http *h)
{
	struct http_req *done = NULL, *r;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (!r || r->ending)
			continue;
		r->ending = true;
		r->result = m->data.result;
		r->done_next = done;
		done = r;
	}
	while ((r = done)) {
		long status = 0;
		int err = from_curl(r->result);

		done = r->done_next;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		if (!err && r->too_big)
			err = -EFBIG;
		if (r->done && !r->canceled)
			r->done(r, err, status, r->reply ? r->reply : "", r->reply_len, r->data);
		free_req(r);
	}
}

static void close_sock(uv_handle_t *handle)
{
	free(handle->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct sock *k = p->data;
	struct http *h = k->h;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, k->fd, flags, &running);
	check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http *h = userp;
	struct sock *k = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (k) {
			uv_poll_stop(&k->poll);
			uv_close((uv_handle_t *)&k->poll, close_sock);
			curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return -1;
		k->h = h;
		k->fd = fd;
		if (uv_poll_init_socket(h->loop, &k->poll, fd)) {
			free(k);
			return -1;
		}
		k->poll.data = k;
		curl_multi_assign(h->multi, fd, k);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&k->poll, events, on_poll) ? -1 : 0;
}

static void on_timeout(uv_timer_t *t)
{
	struct http *h = t->data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

int http_new(uv_loop_t *loop, const struct http_tls *tls, struct http **out)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return -ENOMEM;
	}
	h->loop = loop;
	h->tls = *tls;
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	*out = h;
	return 0;
}

static void close_timer(uv_handle_t *handle)
{
	free(handle->data);
}

void http_free(struct http *h)
{
	struct http_req *r, *next;

	if (!h)
		return;
	for (r = h->reqs; r; r = next) {
		next = r->next;
		free_req(r);
	}
	curl_multi_cleanup(h->multi); /* removes its sockets through socket_cb */
	uv_close((uv_handle_t *)&h->timer, close_timer);
}

size_t http_pending(const struct http *h)
{
	return h->n_reqs;
}

void http_cancel(struct http_req *req)
{
	if (req && req->ending)
		req->canceled = true;
	else if (req)
		free_req(req);
}

static size_t on_write(char *p, size_t size, size_t n, void *data)
{
	struct http_req *r = data;
	size_t len = size * n;

	if (r->chunk)
		return r->chunk(r, p, len, r->data) ? 0 : len;
	if (r->reply_len + len + 1 > r->reply_cap) {
		size_t cap = r->reply_cap ? r->reply_cap : 4096;
		char *g;

		while (cap < r->reply_len + len + 1)
			cap *= 2;
		if (cap > BODY_MAX) {
			r->too_big = true;
			return 0;
		}
		g = realloc(r->reply, cap);
		if (!g)
			return 0;
		r->reply = g;
		r->reply_cap = cap;
	}
	memcpy(r->reply + r->reply_len, p, len);
	r->reply_len += len;
	r->reply[r->reply_len] = '\0';
	return len;
}

/* TCP's own timers find a dead member: keepalive probes, and a limit on unanswered data. */
static int on_sockopt(void *data, curl_socket_t fd, curlsocktype purpose)
{
	unsigned int user_timeout = USER_TIMEOUT_MS;

	(void)data;
	if (purpose == CURLSOCKTYPE_IPCXN)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	return CURL_SOCKOPT_OK;
}

static int set_options(struct http_req *r, const char *url, long timeout_ms)
{
	CURL *e = r->easy;
	int bad = 0;

	bad |= curl_easy_setopt(e, CURLOPT_URL, url);
	bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	/*
	 * HTTP/2: the watch, the calls and the keepalives share one TLS
	 * connection to the member (less memory, one handshake), and a
	 * keepalive that times out tells about the connection the watch is on.
	 */
	bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
	bad |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
	bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, (long)KEEPALIVE_IDLE_S);
	bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, (long)KEEPALIVE_INTERVAL_S);
	bad |= curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
	bad |= curl_easy_setopt(e, CURLOPT_CAINFO, r->h->tls.ca);
	bad |= curl_easy_setopt(e, CURLOPT_SSLCERT, r->h->tls.cert);
	bad |= curl_easy_setopt(e, CURLOPT_SSLKEY, r->h->tls.key);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	return bad ? -EINVAL : 0;
}

static int add_headers(struct http_req *r, const char *token)
{
	struct curl_slist *l;

	l = curl_slist_append(NULL, "Content-Type: application/json");
	if (l && token) {
		size_t n = strlen(token) + sizeof("Authorization: ");
		char *line = sodium_malloc(n);
		struct curl_slist *l2 = NULL;

		if (line) {
			snprintf(line, n, "Authorization: %s", token);
			l2 = curl_slist_append(l, line);
			sodium_free(line);
		}
		if (!l2) {
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		l = l2;
	}
	/* No "Expect: 100-continue" wait for a larger body. */
	if (l)
		l = curl_slist_append(l, "Expect:");
	/*
	 * etcd's WithRequireLeader: a member cut off from the others ends a
	 * watch with "no leader" instead of keeping it open and silent.
	 */
	if (l)
		l = curl_slist_append(l, "Grpc-Metadata-hasleader: true");
	r->headers = l;
	return l ? 0 : -ENOMEM;
}

struct http_req *http_post(struct http *h, const char *url, const char *body, const char *token,
			   long timeout_ms, http_done_cb done, http_chunk_cb chunk, void *data)
{
	struct http_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->h = h;
	r->done = done;
	r->chunk = chunk;
	r->data = data;
	r->body_len = strlen(body);
	r->body = sodium_malloc(r->body_len + 1);
	r->easy = curl_easy_init();
	if (!r->body || !r->easy || add_headers(r, token))
		goto fail;
	memcpy(r->body, body, r->body_len + 1);
	if (set_options(r, url, timeout_ms))
		goto fail;
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->prev = r;
	h->reqs = r;
	h->n_reqs++;
	if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
		free_req(r);
		return NULL;
	}
	return r;
fail:
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	if (r->body)
		sodium_free(r->body);
	free(r);
	return NULL;
}
