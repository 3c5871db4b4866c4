// SPDX-License-Identifier: MIT
/*
 * veil-meshd: the mesh agent of one interface (veil-meshd(8)).
 *
 *   veil-meshd [-f] NAME|FILE
 *
 * NAME is /etc/veil/NAME.conf, as for veilctl; the file's [Mesh] section
 * says where the registry is and who this node is. veilctl up starts it
 * and veilctl down stops it. Without -f it goes to the background once its
 * local copy is applied (the parent exits 0 then, or 1 with the reason),
 * logs to syslog, or to the file $VEIL_MESH_LOG, and writes its pid to
 * /var/run/veil/NAME.mesh.pid; with -f it stays and logs to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>
#include <uv.h>

#include "agent.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif
#include "conf.h"
#include "keys.h"
#include "log.h"
#include "up.h"

struct run {
	uv_loop_t *loop;
	struct agent *agent;
	uv_signal_t sigterm, sigint, sighup, sigusr1;
	char pidfile[PATH_MAX];
};

static void usage(void)
{
	fprintf(stderr, "Usage: veil-meshd [-f] NAME|FILE\n"
			"       veil-meshd -V\n"
			"  NAME is %s/NAME.conf; the file needs a [Mesh] section (veil.conf(5)).\n"
			"  -f  stay in the foreground and log to standard error\n"
			"  -V  print the version\n",
		VEIL_CONF_DIR);
}

/* The client key must be as private as a WireGuard key; the CA and certificate must exist. */
static int check_tls_files(const struct conf *c, char *why, size_t whylen)
{
	const char *paths[] = { c->mesh.ca, c->mesh.cert, c->mesh.key };
	const char *keys[] = { "RegistryCA", "RegistryCert", "RegistryKey" };
	struct stat st;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (stat(paths[i], &st) < 0) {
			snprintf(why, whylen, "%s: %s: %s: %s", c->path, keys[i], paths[i], strerror(errno));
			return -ENOENT;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(why, whylen, "%s: %s: %s is not a regular file", c->path, keys[i], paths[i]);
			return -EINVAL;
		}
	}
	if (st.st_mode & 077) {
		snprintf(why, whylen, "%s: RegistryKey: %s is readable by group or others (chmod 600 it)",
			 c->path, c->mesh.key);
		return -EPERM;
	}
	return 0;
}

/* Everything that can fail before the loop runs, said in one line. */
static int prepare(const char *arg, struct conf *c, char **password, char *why, size_t whylen)
{
	struct conf_error err = { "" };
	char path[PATH_MAX];
	int ret;

	conf_path(arg, path, sizeof(path));
	ret = conf_load(c, path, &err);
	if (!ret && !c->mesh.line) {
		snprintf(err.msg, sizeof(err.msg), "%.500s: no [Mesh] section: nothing for an agent to do", path);
		ret = -EINVAL;
	}
	if (!ret && !c->has_interface) {
		snprintf(err.msg, sizeof(err.msg), "%.500s: no [Interface] section: an agent needs the "
			 "interface it serves", path);
		ret = -EINVAL;
	}
	if (!ret)
		ret = keys_mesh_password(c, password, &err);
	if (ret) {
		snprintf(why, whylen, "%s", err.msg);
		return ret;
	}
	return check_tls_files(c, why, whylen);
}

static void on_stopped(void *data)
{
	struct run *r = data;

	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	uv_close((uv_handle_t *)&r->sighup, NULL);
	uv_close((uv_handle_t *)&r->sigusr1, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct run *r = s->data;

	if (signum == SIGUSR1) {
		log_info("SIGUSR1: rotating this node's key (veilctl mesh rotate)");
		agent_rotate(r->agent);
		return;
	}
	if (signum == SIGHUP) {
		log_info("SIGHUP: veilctl reload restarts the agent when [Mesh] changes; nothing to do");
		return;
	}
	log_info("stopping on signal %d: peers and routes stay as they are", signum);
	uv_signal_stop(&r->sigterm);
	uv_signal_stop(&r->sigint);
	uv_signal_stop(&r->sigusr1);
	agent_stop(r->agent, on_stopped, r);
}

/* No core file, ever (the token and password live in this process). */
static void harden(void)
{
	struct rlimit none = { 0, 0 };

	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* The background: a new session, the log elsewhere; the parent waits for a word on fd. */
static int go_background(int *ready_fd)
{
	int fds[2], devnull;
	char word[512];
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(fds[1]);
		n = read(fds[0], word, sizeof(word) - 1);
		if (n > 0 && word[0] == '+')
			_exit(0);
		word[n > 0 ? n : 0] = '\0';
		/* Its log is syslog, which a host or container may not have: say where to look. */
		if (n <= 0)
			snprintf(word, sizeof(word), "the agent did not start (%s)",
				 access("/dev/log", W_OK) == 0
					 ? "see syslog: journalctl -t veil-meshd, or /var/log/syslog"
					 : "this host has no syslog (/dev/log): veil-meshd -f logs to stderr");
		fprintf(stderr, "veil-meshd: %s\n", word);
		_exit(1);
	}
	close(fds[0]);
	setsid();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		close(devnull);
	}
	*ready_fd = fds[1];
	return 0;
}

/* $VEIL_MESH_LOG: a log file for hosts (and tests) without syslog. */
static void start_log(bool foreground)
{
	const char *file = getenv("VEIL_MESH_LOG");
	int fd;

	log_set_level(log_level_parse(getenv("LOG_LEVEL")));
	if (foreground) {
		log_init("veil-meshd", false);
		return;
	}
	if (file && *file) {
		fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
			log_init("veil-meshd", false);
			return;
		}
	}
	log_init("veil-meshd", true);
}

static void write_pidfile(struct run *r, const char *ifname)
{
	FILE *f;

	snprintf(r->pidfile, sizeof(r->pidfile), "%s/%s.mesh.pid", VEIL_STATE_DIR, ifname);
	mkdir(VEIL_STATE_DIR, 0755);
	f = fopen(r->pidfile, "we");
	if (!f) {
		log_error("cannot write %s: %s", r->pidfile, strerror(errno));
		r->pidfile[0] = '\0';
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static void say_ready(int fd, const char *word)
{
	if (fd < 0)
		return;
	if (write(fd, word, strlen(word)) < 0)
		log_error("cannot tell the parent: %s", strerror(errno));
	close(fd);
}

static int run_agent(struct conf *c, char *password, int ready_fd)
{
	struct run r = { .loop = uv_default_loop() };
	char ifname[16], msg[160];
	int ret;

	snprintf(ifname, sizeof(ifname), "%s", c->name);
	ret = agent_new(r.loop, c, password, &r.agent);
	if (ret) {
		snprintf(msg, sizeof(msg), "%s: the agent could not start: %s", ifname, strerror(-ret));
		say_ready(ready_fd, msg);
		return 1;
	}
	uv_signal_init(r.loop, &r.sigterm);
	uv_signal_init(r.loop, &r.sigint);
	uv_signal_init(r.loop, &r.sighup);
	uv_signal_init(r.loop, &r.sigusr1);
	r.sigterm.data = r.sigint.data = r.sighup.data = r.sigusr1.data = &r;
	uv_signal_start(&r.sigterm, on_signal, SIGTERM);
	uv_signal_start(&r.sigint, on_signal, SIGINT);
	uv_signal_start(&r.sighup, on_signal, SIGHUP);
	uv_signal_start(&r.sigusr1, on_signal, SIGUSR1);
	if (ready_fd >= 0)
		write_pidfile(&r, ifname);
	log_info("%s: mesh agent %s started", ifname, VEIL_VERSION);
	agent_start(r.agent);
	say_ready(ready_fd, "+");
	uv_run(r.loop, UV_RUN_DEFAULT);
	agent_free(r.agent);
	uv_loop_close(r.loop);
	if (r.pidfile[0])
		unlink(r.pidfile);
	log_info("%s: mesh agent stopped", ifname);
	return 0;
}

int main(int argc, char **argv)
{
	struct conf c = { 0 };
	char *password = NULL, why[1024] = "";
	bool foreground = false;
	int opt, ready_fd = -1, ret;

	while ((opt = getopt(argc, argv, "fhV")) != -1) {
		switch (opt) {
		case 'f':
			foreground = true;
			break;
		case 'V':
			printf("veil-meshd %s\n", VEIL_VERSION);
			return 0;
		default:
			usage();
			return opt == 'h' ? 0 : 1;
		}
	}
	if (optind != argc - 1) {
		usage();
		return 1;
	}
	harden();
	/* The agent never speaks for veild to systemd (veild is the service's main process). */
	unsetenv("NOTIFY_SOCKET");
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "veil-meshd: cannot initialise libsodium or libcurl\n");
		return 1;
	}
	ret = prepare(argv[optind], &c, &password, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "veil-meshd: %s\n", why);
		conf_free(&c);
		return 1;
	}
	if (!foreground && go_background(&ready_fd)) {
		fprintf(stderr, "veil-meshd: cannot go to the background: %s\n", strerror(errno));
		return 1;
	}
	start_log(foreground);
	ret = run_agent(&c, password, ready_fd);
	curl_global_cleanup();
	return ret;
}
