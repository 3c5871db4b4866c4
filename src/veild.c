// SPDX-License-Identifier: MIT
/*
 * veild [-f|--foreground] IFNAME: wireguard-go's command line, so wg-quick's
 * WG_QUICK_USERSPACE_IMPLEMENTATION can name us. The TUN device and the
 * listening control socket are created before we fork, and the parent exits 0
 * only once the child reports that its loop is ready.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "core/aead.h"
#include "core/messages.h"
#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "sandbox.h"
#include "tun.h"
#include "veil.h"
#include "workers.h"

#ifndef VEIL_VERSION
#define VEIL_VERSION "unknown"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: veild [-f] [-u USER] [-g GROUP] [-w N] [--no-seccomp] IFNAME\n"
		"       veild --version | --help\n"
		"\n"
		"Creates the TUN interface IFNAME and serves WireGuard's userspace API on\n"
		"%s/IFNAME.sock, so that wg(8) and wg-quick(8) configure it.\n"
		"Without -f it goes to the background once the interface is ready.\n"
		"\n"
		"Options:\n"
		"  -f, --foreground          stay in the foreground, log to stderr\n"
		"  -u, --user USER           run as USER once set up (keeps CAP_NET_ADMIN and\n"
		"                            CAP_NET_BIND_SERVICE, CAP_IPC_LOCK only); also VEIL_USER\n"
		"  -g, --control-group GROUP let GROUP use the control socket besides root;\n"
		"                            also VEIL_CONTROL_GROUP\n"
		"  -w, --workers N           N threads share the encryption and decryption\n"
		"                            (1-%d; default: one less than the CPUs veild may\n"
		"                            run on, at least 1); also VEIL_WORKERS\n"
		"      --no-seccomp          do not install the system-call filter (debugging)\n"
		"\n"
		"Environment:\n"
		"  LOG_LEVEL=error|verbose|debug|silent   how much to log (default error;\n"
		"                                          info is verbose)\n"
		"  WG_PROCESS_FOREGROUND=1                 same as -f\n"
		"  VEIL_USER=USER                          same as -u\n"
		"  VEIL_CONTROL_GROUP=GROUP                same as -g\n"
		"  VEIL_KEYLOG_FILE=PATH                   append session keys for Wireshark (debugging only)\n"
		"  VEIL_OFFLOAD=on|off                     TUN and UDP offloads (default on)\n"
		"  VEIL_WORKERS=N                          same as -w\n"
		"  NOTIFY_SOCKET=PATH                      (systemd) announce our pid when going to\n"
		"                                          the background\n",
		VEIL_SOCKET_DIR, WORKERS_MAX);
}

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] == '_' || s[i] == '=' || s[i] == '+' || s[i] == '.' || s[i] == '-' ||
		      (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/* Bind the control socket, replacing a stale file but never a live daemon's socket. */
static int uapi_listen(const char *path)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, err;

	/*
	 * 0755 whatever our umask (a caller's umask 077 would shut out the
	 * control group); a directory that already exists is left as it is.
	 */
	if (mkdir(VEIL_SOCKET_DIR, 0755) == 0)
		chmod(VEIL_SOCKET_DIR, 0755);
	else if (errno != EEXIST)
		return -errno;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	old = umask(0077);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old);
	if (!err && listen(fd, 16) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* The group's id and members (by name and by primary group), resolved before any sandboxing. */
static int resolve_group(const char *name, struct daemon_config *cfg)
{
	static unsigned int uids[1024];
	struct group *gr = getgrnam(name);
	struct passwd *pw;
	size_t n = 0;
	char **m;

	if (!gr)
		return -ENOENT;
	cfg->has_control_group = true;
	cfg->control_gid = gr->gr_gid;
	for (m = gr->gr_mem; *m && n < 1024; m++) {
		pw = getpwnam(*m);
		if (pw)
			uids[n++] = pw->pw_uid;
	}
	setpwent();
	while ((pw = getpwent()) && n < 1024)
		if (pw->pw_gid == cfg->control_gid)
			uids[n++] = pw->pw_uid;
	endpwent();
	cfg->control_uids = uids;
	cfg->ncontrol_uids = n;
	return 0;
}

static void notify_ready(void *arg)
{
	int fd = *(int *)arg;
	char c = 1;

	if (fd >= 0) {
		if (write(fd, &c, 1) < 0)
			log_error("cannot tell the parent we are ready: %s", strerror(errno));
		close(fd);
		*(int *)arg = -1;
	}
}

/* A worker count from VEIL_WORKERS or -w (named by what): 1..WORKERS_MAX, or said on stderr. */
static int parse_workers(const char *s, const char *what, unsigned int *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *s == '+' || n < 1 || n > WORKERS_MAX) {
		fprintf(stderr, "veild: %s is a number of workers from 1 to %d, not '%s'\n", what,
			WORKERS_MAX, s);
		return -1;
	}
	*out = (unsigned int)n;
	return 0;
}

/* The environment's defaults for what options may then change; -1 on a bad VEIL_OFFLOAD or VEIL_WORKERS. */
static int read_env(struct daemon_config *cfg, bool *foreground, const char **group)
{
	const char *fg_env = getenv("WG_PROCESS_FOREGROUND");
	const char *off = getenv("VEIL_OFFLOAD");
	const char *workers = getenv("VEIL_WORKERS");

	*foreground = fg_env && !strcmp(fg_env, "1");
	*group = getenv("VEIL_CONTROL_GROUP");
	cfg->user = getenv("VEIL_USER");
	/* Offloads are on unless turned off, for measurements or a kernel that misbehaves. */
	if (off && strcmp(off, "on") != 0 && strcmp(off, "off") != 0) {
		fprintf(stderr, "veild: VEIL_OFFLOAD is on or off, not '%s'\n", off);
		return -1;
	}
	cfg->offload = !off || !strcmp(off, "on");
	cfg->workers = workers_default();
	if (workers && parse_workers(workers, "VEIL_WORKERS", &cfg->workers))
		return -1;
	return 0;
}

/*
 * The environment and the command line into cfg. Returns 1 when the
 * process is done (--version, --help: exit 0), -1 on a usage error (said
 * on stderr: exit 1), 0 to go on. Starts the log.
 */
static int parse_options(int argc, char **argv, struct daemon_config *cfg, bool *foreground,
			 const char **group)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "user", required_argument, NULL, 'u' },
		{ "control-group", required_argument, NULL, 'g' },
		{ "workers", required_argument, NULL, 'w' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (read_env(cfg, foreground, group))
		return -1;
	while ((c = getopt_long(argc, argv, "fhVu:g:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			*foreground = true;
			break;
		case 'u':
			cfg->user = optarg;
			break;
		case 'g':
			*group = optarg;
			break;
		case 'w':
			if (parse_workers(optarg, "--workers", &cfg->workers))
				return -1;
			break;
		case 'S':
			cfg->seccomp = false;
			break;
		case 'V':
			printf("veild %s (WireGuard userspace API, protocol version 1)\n", VEIL_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -1;
	}
	cfg->ifname = argv[optind];
	log_init("veild", false);
	log_set_level(log_level_parse(getenv("LOG_LEVEL")));
	if (!valid_ifname(cfg->ifname)) {
		fprintf(stderr, "veild: invalid interface name '%s' (1-15 of [a-zA-Z0-9_=+.-])\n",
			cfg->ifname);
		return -1;
	}
	return 0;
}

/* What the process needs before any key: libsodium, the transport cipher, no core dumps. */
static int prepare_process(void)
{
	int err;

	if (sodium_init() < 0) {
		fprintf(stderr, "veild: libsodium failed to initialise\n");
		return -1;
	}
	/* Before the sandbox: OpenSSL loads what it needs on first use. */
	if (aead_prepare() < 0) {
		fprintf(stderr, "veild: the transport cipher (OpenSSL libcrypto) failed its self-test\n");
		return -1;
	}
	/* Keys must never reach swap or a core dump (sandbox_drop_user says it again). */
	err = sandbox_no_core_dumps();
	if (err < 0) {
		fprintf(stderr, "veild: cannot turn core dumps off: %s\n", strerror(-err));
		return -1;
	}
	/*
	 * Large transient buffers (a get of many peers, a big setconf) must come
	 * from mmap so they go back when freed: under mlockall glibc cannot
	 * return freed pages in the middle of its heap. A fixed threshold also
	 * stops glibc from raising it after the first such buffer.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	return 0;
}

/* The user to run as and the control group, checked and resolved while /etc can be read. */
static int resolve_ids(struct daemon_config *cfg, const char *group)
{
	if (cfg->user && *cfg->user && !getpwnam(cfg->user)) {
		fprintf(stderr, "veild: no such user '%s'\n", cfg->user);
		return -1;
	}
	if (cfg->user && !*cfg->user)
		cfg->user = NULL;
	if (group && *group && resolve_group(group, cfg)) {
		fprintf(stderr, "veild: no such group '%s'\n", group);
		return -1;
	}
	return 0;
}

/*
 * The control socket at path (open to the control group, if any) and the
 * TUN device, both into cfg. -1 (said on stderr, the socket file removed)
 * if either cannot be had.
 */
static int open_interface(struct daemon_config *cfg, const char *path, const char *group)
{
	int tun_fd, uapi_fd;

	uapi_fd = uapi_listen(path);
	if (uapi_fd < 0) {
		fprintf(stderr, "veild: %s: %s\n", path,
			uapi_fd == -EADDRINUSE ? "another daemon is serving this interface"
					       : strerror(-uapi_fd));
		return -1;
	}
	if (cfg->has_control_group &&
	    (chown(path, 0, cfg->control_gid) < 0 || chmod(path, 0660) < 0)) {
		fprintf(stderr, "veild: %s: cannot open it to group %s: %s\n", path, group,
			strerror(errno));
		close(uapi_fd);
		unlink(path);
		return -1;
	}
	tun_fd = tun_open(cfg->ifname, cfg->offload, &cfg->tun_mode);
	if (tun_fd < 0) {
		fprintf(stderr, "veild: cannot create TUN interface %s: %s\n", cfg->ifname,
			strerror(-tun_fd));
		unlink(path);
		return -1;
	}
	tun_set_mtu(cfg->ifname, DEFAULT_MTU);
	cfg->tun_fd = tun_fd;
	cfg->uapi_fd = uapi_fd;
	cfg->uapi_path = path;
	cfg->keylog_path = getenv("VEIL_KEYLOG_FILE");
	return 0;
}

/* /dev/null for stdin, stdout and stderr, once in the background. */
static void detach_stdio(void)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		close(devnull);
	}
}

/*
 * Fork: the parent waits on ready_pipe until the child's loop is ready.
 * Returns 0 in the child, which goes on (its end of the pipe in
 * ready_pipe[1]), 1 in the parent once the child is ready, -1 on failure.
 */
static int go_background(const struct daemon_config *cfg, int ready_pipe[2])
{
	char ok = 0;
	pid_t pid;

	if (pipe2(ready_pipe, O_CLOEXEC) < 0) {
		perror("veild: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("veild: fork");
		return -1;
	}
	if (pid > 0) {
		close(ready_pipe[1]);
		if (read(ready_pipe[0], &ok, 1) != 1 || ok != 1) {
			fprintf(stderr, "veild: %s: the daemon failed to start\n", cfg->ifname);
			return -1;
		}
		return 1;
	}
	close(ready_pipe[0]);
	setsid();
	detach_stdio();
	log_init("veild", true);
	/*
	 * Under systemd (veil@.service runs veilctl up, which starts us):
	 * this process is the service's main one from now on. veilctl says
	 * READY=1 once the configuration is in.
	 */
	if (notify_wanted()) {
		char msg[32];

		snprintf(msg, sizeof(msg), "MAINPID=%d\n", (int)getpid());
		if (notify_send(msg) < 0)
			log_error("%s: cannot tell systemd our pid", cfg->ifname);
	}
	return 0;
}

/*
 * Locks are not inherited across fork: lock in the process that will
 * hold the keys, the one left after going to the background. ONFAULT:
 * a page is locked when first touched, so untouched library pages (the
 * HTTP library's TLS stack, say) are not read in just to be locked.
 */
static void lock_memory(void)
{
#ifndef __SANITIZE_ADDRESS__ /* ASan's terabytes of shadow memory cannot be locked */
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
		log_error("mlockall failed (%s): key memory may be swapped (raise the memory-lock "
			  "limit, e.g. LimitMEMLOCK=infinity)", strerror(errno));
#endif
}

/* In order: options, the process, the ids, open, to the background, lock, run, close. */
int main(int argc, char **argv)
{
	struct daemon_config cfg = { .seccomp = SANDBOX_SECCOMP_DEFAULT };
	const char *group;
	bool foreground;
	char path[108];
	int ready_pipe[2] = { -1, -1 }, status;

	status = parse_options(argc, argv, &cfg, &foreground, &group);
	if (status)
		return status < 0 ? 1 : 0;
	if (prepare_process() || resolve_ids(&cfg, group))
		return 1;
	snprintf(path, sizeof(path), VEIL_SOCKET_DIR "/%s.sock", cfg.ifname);
	if (open_interface(&cfg, path, group))
		return 1;
	if (!foreground) {
		status = go_background(&cfg, ready_pipe);
		if (status)
			return status < 0 ? 1 : 0;
	}
	/* Nothing we start (the resolver, hooks) talks to systemd in our name. */
	unsetenv("NOTIFY_SOCKET");
	lock_memory();
	status = daemon_run(&cfg, notify_ready, &ready_pipe[1]);
	if (ready_pipe[1] >= 0)
		close(ready_pipe[1]);
	close(cfg.tun_fd);
	return status;
}
