// SPDX-License-Identifier: MIT
/*
 * Least privilege for veild, applied once the TUN device, the sockets and the
 * watches are open: an optional switch to an unprivileged user keeping only
 * CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (to re-bind the UDP port and set
 * SO_MARK later) and CAP_IPC_LOCK (see keep_caps), no new privileges ever, and a seccomp filter that allows
 * only the system calls the event loop, the data path and the control socket
 * make. Anything else kills the process: a compromised veild cannot exec,
 * open files, ptrace or mount.
 *
 * Three calls that veild does make are allowed only with the arguments it
 * makes them with (argument filtering), so a compromised root veild cannot
 * reach the system bus or a container runtime's socket:
 *   - socket(): AF_INET and AF_INET6, datagram or stream, protocol 0: the
 *     UDP sockets re-bound by listen_port=, the metrics listener, and the
 *     socket glibc's if_nametoindex opens for a "%ifname" scope. The
 *     rtnetlink, control and syslog sockets are open before the filter.
 *   - connect(): never. Nothing veild does after start-up connects.
 *   - unlink: only unlinkat(dirfd, name, 0) on the control-socket directory
 *     opened before the filter, for veild's own socket at exit.
 *   - tgkill(): to its own process only (kill is not allowed at all).
 * These are refused with EPERM rather than killed: glibc may try
 * them on its own (if_nametoindex tries AF_NETLINK and AF_UNIX first,
 * syslog reconnects after the log daemon restarts) and must fall back or
 * give up, not take the tunnel down.
 */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/compiler.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#else
#error "seccomp filter: add this architecture's AUDIT_ARCH"
#endif

/*
 * Measured with strace over the namespace tests (data path both ways,
 * handshakes, every wg subcommand, MTU change, port re-bind, shutdown),
 * plus what libc's abort and syslog need.
 */
static const int allowed[] = {
	/* event loop and data path */
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_recvmmsg, SYS_sendmmsg, SYS_recvmsg,
	SYS_sendmsg, SYS_recvfrom, SYS_sendto, SYS_epoll_ctl, SYS_epoll_pwait,
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
	SYS_getrandom, SYS_clock_gettime, SYS_gettimeofday, SYS_nanosleep, SYS_clock_nanosleep,
	/* memory */
	SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise, SYS_mlock,
	SYS_munlock,
	/* control socket, UDP re-bind, rtnetlink, fwmark (socket: see rule_socket) */
	SYS_bind, SYS_accept4, SYS_getsockname, SYS_getsockopt,
	SYS_setsockopt, SYS_ioctl, SYS_fcntl, SYS_close, SYS_shutdown,
	/* the metrics listener, opened when asked (libmicrohttpd in epoll mode) */
	SYS_listen, SYS_epoll_create1, SYS_getpeername,
	/* the socket-file watch and shutdown (unlinkat: see rule_unlinkat) */
	SYS_newfstatat, SYS_fstat, SYS_inotify_rm_watch,
#ifdef SYS_statx
	SYS_statx,
#endif
	/* signals, threads' basics, exit */
	SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_restart_syscall, SYS_futex,
	SYS_getpid, SYS_gettid, SYS_sched_yield, SYS_exit, SYS_exit_group,
#ifdef __SANITIZE_THREAD__
	/*
	 * ThreadSanitizer's runtime reads /proc/self/maps (open) when it
	 * reports a race, and its symbolizer the binaries (openat, readlink):
	 * refused, they cost the report or kill the process. Its build
	 * (make check-tsan) allows them rather than go without a filter.
	 */
	SYS_open, SYS_openat, SYS_readlink,
#endif
};

/* Load what libc reads lazily (time zone, messages) while files may still be opened. */
static void prewarm(void)
{
	struct tm tm;
	time_t t = time(NULL);

	tzset();
	localtime_r(&t, &tm);
	(void)strerror(EINVAL);
}

enum { FILTER_MAX = 256 }; /* instructions: two per allowed call, and a few */

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP(code, k, jt, jf))
/* The low 32 bits of argument i: the int the kernel reads (little-endian words). */
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + (i) * sizeof(uint64_t))

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ARG_LO assumes little-endian");

struct prog {
	struct sock_filter f[FILTER_MAX];
	size_t n;
};

/* Appends one instruction; past FILTER_MAX it only counts, and install refuses. */
static void emit(struct prog *p, struct sock_filter ins)
{
	if (p->n < FILTER_MAX)
		p->f[p->n] = ins;
	p->n++;
}

/*
 * socket(domain, type, protocol): AF_INET or AF_INET6, SOCK_DGRAM or
 * SOCK_STREAM (with SOCK_NONBLOCK and SOCK_CLOEXEC), protocol 0; anything
 * else EPERM. Every path returns, so the call number need not be reloaded.
 */
static void rule_socket(struct prog *p)
{
	const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;

	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 12));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 1, 0));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 7));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)));
	emit(p, STMT(BPF_ALU | BPF_AND | BPF_K, ~(uint32_t)(SOCK_NONBLOCK | SOCK_CLOEXEC)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_DGRAM, 1, 0));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 0, 3));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	emit(p, STMT(BPF_RET | BPF_K, eperm));
	emit(p, STMT(BPF_RET | BPF_K, eperm));
}

/*
 * unlinkat(dirfd, name, 0) with dirfd the one given (dirfd < 0: never);
 * unlinkat otherwise, and unlink, EPERM. Every path returns.
 */
static void rule_unlinkat(struct prog *p, int dirfd)
{
	const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;

#ifdef SYS_unlink /* not on aarch64, which has unlinkat only */
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unlink, 0, 1));
	emit(p, STMT(BPF_RET | BPF_K, eperm));
#endif
	if (dirfd < 0) {
		emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unlinkat, 0, 1));
		emit(p, STMT(BPF_RET | BPF_K, eperm));
		return;
	}
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unlinkat, 0, 6));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)dirfd, 0, 3));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	emit(p, STMT(BPF_RET | BPF_K, eperm));
}

/*
 * tgkill only to ourselves (libc's raise and abort): several veild, one per
 * interface, run as the same account, and one must not signal another.
 * Anything else EPERM.
 */
static void rule_tgkill(struct prog *p, pid_t self)
{
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 0, 4));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 0, 1));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
}

/* The right architecture (and on x86-64 no x32 calls) or death; then the call number in A. */
static void prologue(struct prog *p)
{
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
	emit(p, STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
	emit(p, JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
	emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
#endif
}

/* The threads of this process (/proc/self/status), or 0 if it cannot be read. */
static int threads(void)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Threads:", 8)) {
			n = (int)strtol(line + 8, NULL, 10);
			break;
		}
	fclose(f);
	return n;
}

/* Each of calls[] allowed, anything else answered with otherwise (a SECCOMP_RET_*); then install. */
static int install(struct prog *p, const int *calls, size_t count, uint32_t otherwise)
{
	struct sock_fprog prog;
	size_t i;
	long ret;

	for (i = 0; i < count; i++) {
		emit(p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)calls[i], 0, 1));
		emit(p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	}
	emit(p, STMT(BPF_RET | BPF_K, otherwise));
	if (p->n > FILTER_MAX)
		return -E2BIG;
	prog.len = (unsigned short)p->n;
	prog.filter = p->f;
	/*
	 * TSYNC: the filter covers every thread of the process (veild's crypto
	 * workers start before it), or none: a thread it cannot cover fails it.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	ret = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (ret < 0 && errno == ENOSYS && threads() == 1) {
		/*
		 * No seccomp(2) (a kernel before 3.17, or valgrind, which does not
		 * know the call): prctl covers the calling thread, which is all
		 * there is. A process with threads gets the error instead.
		 */
		ret = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
	}
	if (ret < 0)
		return -errno;
	return ret > 0 ? -EBUSY : 0;
}

int sandbox_seccomp(int sock_dirfd)
{
	struct prog p = { .n = 0 };

	prewarm();
	prologue(&p);
	/*
	 * Opening files is refused, but gently: libc may lazily look for a
	 * message catalog or time zone file, and must then fall back, not die.
	 * (Allowed in ThreadSanitizer's build: see allowed[].)
	 */
#ifndef __SANITIZE_THREAD__
	emit(&p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 1));
	emit(&p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES));
#endif
	emit(&p, JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1));
	emit(&p, STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
	rule_socket(&p);
	rule_unlinkat(&p, sock_dirfd);
	rule_tgkill(&p, getpid());
	/* Any call not listed kills the process. */
	return install(&p, allowed, ARRAY_SIZE(allowed), SECCOMP_RET_KILL_PROCESS);
}

int sandbox_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}

/*
 * CAP_IPC_LOCK too, when we have it: mlockall(MCL_FUTURE) stays in force, and
 * without it every new mapping counts against RLIMIT_MEMLOCK. Raising that
 * limit needs CAP_SYS_RESOURCE, which containers often lack; then, at the
 * default 8 MB, a daemon whose libraries already fill it fails every
 * allocation (ENOMEM on the first peer).
 */
static int keep_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	uint32_t keep = 1u << CAP_NET_ADMIN | 1u << CAP_NET_BIND_SERVICE;

	/*
	 * Only what we have: under a bounding set without CAP_IPC_LOCK (a
	 * systemd unit's, a container's) capset could not add it, and the
	 * memory-lock limit raised above must do.
	 */
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == 0 && data[0].permitted & (1u << CAP_IPC_LOCK))
		keep |= 1u << CAP_IPC_LOCK;
	memset(data, 0, sizeof(data));
	data[0].effective = keep;
	data[0].permitted = keep;
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

int sandbox_drop_user(const char *user)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct passwd *pw = getpwnam(user);

	if (!pw)
		return -ENOENT;
	if (pw->pw_uid == 0)
		return 0;
	/*
	 * mlockall(MCL_FUTURE) stays in force: lift the lock limit while we
	 * still may, or the unprivileged process could not allocate.
	 */
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -errno;
	if (keep_caps() < 0)
		return -errno;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	/*
	 * The uid change set "dumpable" back to fs.suid_dumpable (2 on many
	 * distributions): a crash would write the keys to a core file again.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	/* Paranoia: root must be gone for good. */
	if (setuid(0) == 0)
		return -EPERM;
	return 0;
}

int sandbox_no_core_dumps(void)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

/*
 * What getaddrinfo makes (traced over /etc/hosts, DNS and nscd's socket) and
 * our request loop: anything else fails with EPERM, so a lookup may fail but
 * the child is never killed by a call we did not foresee.
 */
static const int resolver_allowed[] = {
	SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_openat, SYS_close,
	SYS_newfstatat, SYS_fstat, SYS_lseek, SYS_access, SYS_faccessat, SYS_readlink,
#ifdef SYS_statx
	SYS_statx,
#endif
#ifdef SYS_faccessat2
	SYS_faccessat2,
#endif
	SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_brk, SYS_madvise,
	SYS_socket, SYS_connect, SYS_bind, SYS_getsockname, SYS_getpeername, SYS_setsockopt,
	SYS_getsockopt, SYS_sendto, SYS_sendmsg, SYS_sendmmsg, SYS_recvfrom, SYS_recvmsg,
	SYS_poll, SYS_ppoll, SYS_ioctl, SYS_fcntl,
	SYS_uname, SYS_futex, SYS_getrandom, SYS_getpid, SYS_gettid, SYS_getuid, SYS_geteuid,
	SYS_getgid, SYS_getegid, SYS_clock_gettime, SYS_gettimeofday, SYS_nanosleep,
	SYS_clock_nanosleep, SYS_prlimit64, SYS_sched_yield,
	SYS_rt_sigprocmask, SYS_rt_sigaction, SYS_rt_sigreturn, SYS_restart_syscall,
	SYS_exit, SYS_exit_group,
#ifdef __SANITIZE_ADDRESS__
	/*
	 * AddressSanitizer's runtime reads the signal stack whenever a function
	 * that does not return (the child's _exit) is called; the sanitizer
	 * build allows that one call more rather than go without a filter.
	 */
	SYS_sigaltstack,
#endif
};

/*
 * Never root, even when veild stays root: root's uid would still own the
 * control socket, the systemd and container sockets and root's files. The
 * account "nobody" (or 65534), no groups, so not the control group either.
 */
int sandbox_resolver(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct none[2];
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;
	struct prog p = { .n = 0 };

	if (uid == 0 || setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return uid == 0 ? -EPERM : -errno;
	/* As in sandbox_drop_user: the uid change made us dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -errno;
	memset(none, 0, sizeof(none));
	if (syscall(SYS_capset, &hdr, none) < 0)
		return -errno;
	prologue(&p);
	return install(&p, resolver_allowed, ARRAY_SIZE(resolver_allowed), SECCOMP_RET_ERRNO | EPERM);
}
