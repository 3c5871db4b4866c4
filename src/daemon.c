// SPDX-License-Identifier: MIT
/*
 * veild's event loop: start-up and teardown of one interface
 * (daemon_run). Callbacks stay thin: they find their context, call the
 * protocol engine (src/core/device.c) and act on its answer. The engine's
 * upcall table is here; the callbacks are in the files daemon_int.h lists.
 */
#include "daemon_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <sodium.h>

#include "httpd.h"
#include "log.h"
#include "sandbox.h"

static const struct wg_device_ops engine_ops = {
	.send = datapath__op_send,
	.deliver = datapath__op_deliver,
	.keypair_ready = peers__op_keypair_ready,
	.purge_staged = peers__op_purge_staged,
	.event = events__op_event,
	.peer_removed = peers__op_peer_removed,
	.keylog = events__op_keylog,
};

/* ---- set-up and teardown ------------------------------------------------- */

static void signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	log_info("%s: received signal %d, shutting down", d->cfg->ifname, signum);
	stop(d, 0);
}

/*
 * VEIL_KEYLOG_FILE holds the static private key with every session's keys,
 * and root opens it: never through a symbolic link (O_NOFOLLOW), mode 0600
 * whatever the umask, and an existing file only if it is a regular file
 * of ours (root's) with one link and no group or other bits, so that
 * nobody else can have planted it or read it. NULL, with why, otherwise.
 */
static FILE *open_keylog(const char *path, char *why, size_t whylen)
{
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, whylen, "%s", errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		snprintf(why, whylen, "not a regular file");
	else if (st.st_uid != geteuid())
		snprintf(why, whylen, "it belongs to uid %u, not to %u", (unsigned int)st.st_uid,
			 (unsigned int)geteuid());
	else if (st.st_mode & 077)
		snprintf(why, whylen, "group or others may use it (mode %03o; chmod 600 it)",
			 (unsigned int)(st.st_mode & 0777));
	else if (st.st_nlink != 1)
		snprintf(why, whylen, "it has %lu hard links", (unsigned long)st.st_nlink);
	else if ((f = fdopen(fd, "a")))
		return f;
	else
		snprintf(why, whylen, "%s", strerror(errno));
	close(fd);
	return NULL;
}

/*
 * The control socket's directory, opened now so that at exit veild removes
 * its socket with unlinkat in that directory, the only unlink the seccomp
 * filter lets through. Returns -1 (nothing to remove) without a path.
 */
static int open_sock_dir(const char *path, const char **base)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	char dir[108];
	int fd;

	*base = NULL;
	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	fd = open(slash == path ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		*base = slash + 1;
	return fd;
}

/*
 * The daemon's state before any handle exists: the configuration, the
 * control socket's directory, the packet buffers. -ENOMEM if a buffer
 * could not be had (logged); daemon_free frees what was made either way.
 */
static int daemon_init(struct daemon *d, const struct daemon_config *cfg, const char **sock_name)
{
	struct pkt *p;

	d->cfg = cfg;
	d->sock_dir = open_sock_dir(cfg->uapi_path, sock_name);
	d->tun_fd = cfg->tun_fd;
	d->tun_mode = cfg->tun_mode;
	d->rx_slots = cfg->offload ? RX_SLOTS_GRO : BATCH;
	d->rx_slot = cfg->offload ? RX_SLOT_GRO : sizeof(p->data);
	/* Both hold plaintext: wiped and freed at the end, like the pool. */
	d->rx_arena = malloc(d->rx_slots * d->rx_slot);
	if (d->tun_mode != TUN_PLAIN)
		d->tun_buf = malloc(VNET_HDR_LEN + OFFLOAD_MAX);
	if (!d->rx_arena || (d->tun_mode != TUN_PLAIN && !d->tun_buf)) {
		log_error("%s: out of memory for the packet buffers", cfg->ifname);
		return -ENOMEM;
	}
	d->who_uid = d->who_pid = -1;
	d->resolver_fd = -1;
	slab_cache_init(&d->vpeer_cache, sizeof(struct vpeer));
	slab_cache_init(&d->pkt_cache, sizeof(struct pkt));
	d->udp.fd4 = d->udp.fd6 = -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* VEIL_KEYLOG_FILE, if set: opened with a loud warning, or refused with why. */
static void start_keylog(struct daemon *d)
{
	const struct daemon_config *cfg = d->cfg;
	char why[128];

	d->keylog = open_keylog(cfg->keylog_path, why, sizeof(why));
	if (!d->keylog)
		log_error("%s: VEIL_KEYLOG_FILE %s refused, no key log: %s", cfg->ifname,
			  cfg->keylog_path, why);
	else
		log_error("%s: WARNING: writing session keys and this interface's private key "
			  "to %s (VEIL_KEYLOG_FILE); anyone who reads it can decrypt this "
			  "interface's traffic and impersonate it to every peer",
			  cfg->ifname, cfg->keylog_path);
}

/*
 * Everything the loop serves, once the engine exists: the UDP sockets,
 * the TUN device, the control socket, the pool's trim, the watches, the
 * signals and the resolver child. -1 (logged) if the loop cannot serve.
 */
static int daemon_open(struct daemon *d)
{
	const struct daemon_config *cfg = d->cfg;
	unsigned int mtu;
	int err;

	if (!tun_get_mtu(cfg->ifname, &mtu))
		watch__set_mtu(d, mtu);
	if (cfg->keylog_path)
		start_keylog(d);
	log_info("%s: offloads %s", cfg->ifname,
		 !cfg->offload		       ? "off (VEIL_OFFLOAD=off)"
		 : d->tun_mode == TUN_USO ? "on (TUN TSO, USO and checksum, UDP GSO and GRO)"
		 : d->tun_mode == TUN_TSO ? "on (TUN TSO and checksum, UDP GSO and GRO; no TUN USO)"
					   : "on for UDP (GSO, GRO); the kernel refused TUN TSO");
	err = datapath__listen_on(d, 0);
	if (err) {
		log_error("%s: cannot open UDP sockets: %s", cfg->ifname, strerror(-err));
		return -1;
	}
	if (uv_poll_init(&d->loop, &d->tun_poll, d->tun_fd) ||
	    uv_poll_start(&d->tun_poll, UV_READABLE, datapath__tun_cb) ||
	    uv_pipe_init(&d->loop, &d->uapi, 0) || uv_pipe_open(&d->uapi, cfg->uapi_fd) ||
	    uv_listen((uv_stream_t *)&d->uapi, 16, control__uapi_accept)) {
		log_error("%s: cannot set up the event loop", cfg->ifname);
		return -1;
	}
	uv_timer_init(&d->loop, &d->pool_trim);
	uv_timer_start(&d->pool_trim, peers__pool_trim_cb, POOL_TRIM_MS, POOL_TRIM_MS);
	watch__netlink(d);
	if (cfg->uapi_path && uv_fs_event_init(&d->loop, &d->sock_watch) == 0)
		uv_fs_event_start(&d->sock_watch, watch__sock_watch_cb, cfg->uapi_path, 0);
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sigterm);
	d->sigint.data = d->sigterm.data = d;
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	events__start_resolver(d);
	return 0;
}

/*
 * The crypto workers (src/workers.h), cfg->workers threads in all, and the
 * receive batch they need. -1 (logged) if they cannot be had.
 */
static int start_workers(struct daemon *d)
{
	const struct daemon_config *cfg = d->cfg;
	int err;

	err = workers_start(&d->workers, cfg->workers);
	if (err) {
		log_error("%s: cannot start %u crypto workers: %s", cfg->ifname, cfg->workers,
			  strerror(-err));
		return -1;
	}
	if (parallel(d)) {
		d->rxq = calloc(RXQ_MAX, sizeof(*d->rxq));
		d->rxq_job = calloc(RXQ_MAX, sizeof(*d->rxq_job));
		if (!d->rxq || !d->rxq_job) {
			log_error("%s: out of memory for the receive batch", cfg->ifname);
			return -1;
		}
	}
	log_info("%s: %u crypto worker%s", cfg->ifname, cfg->workers, cfg->workers == 1 ? "" : "s");
	return 0;
}

/*
 * Give up what serving does not need, now that every socket is open: the
 * user (-u), new privileges, and with the seccomp filter most system
 * calls. -1 (logged) if any step fails.
 */
static int daemon_confine(struct daemon *d)
{
	const struct daemon_config *cfg = d->cfg;
	int err;

	if (cfg->user) {
		err = sandbox_drop_user(cfg->user);
		if (err) {
			log_error("%s: cannot switch to user %s: %s", cfg->ifname, cfg->user,
				  err == -ENOENT ? "no such user" : strerror(-err));
			return -1;
		}
		log_info("%s: running as user %s with CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and "
			 "CAP_IPC_LOCK only",
			 cfg->ifname, cfg->user);
		/* The directory is root's: this user could not remove the socket anyway. */
		if (d->sock_dir >= 0 && geteuid() != 0) {
			close(d->sock_dir);
			d->sock_dir = -1;
		}
	}
	err = sandbox_no_new_privs();
	if (err) {
		log_error("%s: cannot set no_new_privs: %s", cfg->ifname, strerror(-err));
		return -1;
	}
	/* After the user switch (the threads take its credentials), before the filter (it covers them too). */
	if (start_workers(d))
		return -1;
	if (cfg->seccomp) {
		err = sandbox_seccomp(d->sock_dir);
		if (err) {
			log_error("%s: cannot install the seccomp filter: %s", cfg->ifname,
				  strerror(-err));
			return -1;
		}
	}
	return 0;
}

/* Say so, tell the caller, and serve until stop(). Returns the exit status. */
static int daemon_serve(struct daemon *d, void (*ready)(void *arg), void *arg)
{
	log_info("%s: interface ready (MTU %u)", d->cfg->ifname, wg_device_mtu(d->wg));
	if (ready)
		ready(arg);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	return d->exit_status;
}

/*
 * Teardown of the loop: peers first (their timers close), then every
 * handle, then the netlink socket, the resolver child (it sees EOF and
 * exits) and the control socket's file.
 */
static void daemon_close(struct daemon *d, const char *sock_name)
{
	d->stopping = true;
	if (d->wg)
		audit__line(d, "interface_stopped", NULL, "peers=%zu", wg_device_peer_count(d->wg));
	wg_device_free(d->wg);
	d->wg = NULL;
	datapath__unwatch(&d->udp4);
	datapath__unwatch(&d->udp6);
	udp_close(&d->udp);
	httpd_stop(d->httpd); /* its handles close here, not in the walk below */
	d->httpd = NULL;
	uv_walk(&d->loop, control__close_walk, d);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (d->nl)
		mnl_socket_close(d->nl);
	if (d->resolver_fd >= 0)
		close(d->resolver_fd); /* the child sees EOF and exits */
	if (d->sock_dir >= 0 && sock_name)
		unlinkat(d->sock_dir, sock_name, 0);
}

/* Frees what daemon_init made, wiping what held plaintext (pool, slots, TUN buffer). */
static void daemon_free(struct daemon *d)
{
	struct pkt *p;

	while ((p = d->pool)) {
		d->pool = p->next;
		slab_free(&d->pkt_cache, p); /* wipes: packets held plaintext */
	}
	if (d->keylog)
		fclose(d->keylog);
	if (d->sock_dir >= 0)
		close(d->sock_dir);
	if (d->rx_arena) {
		sodium_memzero(d->rx_arena, d->rx_slots * d->rx_slot);
		free(d->rx_arena);
	}
	if (d->tun_buf) {
		sodium_memzero(d->tun_buf, VNET_HDR_LEN + OFFLOAD_MAX);
		free(d->tun_buf);
	}
	workers_stop(d->workers);
	free(d->rxq);
	free(d->rxq_job);
	free(d);
}

/* In order: the state, the loop and the engine, open, confine, serve, close, free. */
int daemon_run(const struct daemon_config *cfg, void (*ready)(void *arg), void *arg)
{
	struct daemon *d = calloc(1, sizeof(*d));
	const char *sock_name = NULL;
	int status = 1;

	if (!d)
		return 1;
	if (daemon_init(d, cfg, &sock_name) || uv_loop_init(&d->loop))
		goto out_free;
	d->wg = wg_device_new(&engine_ops, d, &wg_rng_system);
	if (!d->wg)
		goto out_loop;
	if (daemon_open(d) == 0 && daemon_confine(d) == 0)
		status = daemon_serve(d, ready, arg);
	daemon_close(d, sock_name);
out_loop:
	uv_loop_close(&d->loop);
out_free:
	daemon_free(d);
	return status;
}
