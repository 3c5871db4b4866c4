/* SPDX-License-Identifier: MIT */
/* Least privilege for veild: user switch, no new privileges, seccomp. */
#ifndef VEIL_SANDBOX_H
#define VEIL_SANDBOX_H

/*
 * Become user, keeping only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (and
 * CAP_IPC_LOCK when held), and not dumpable again after the uid change.
 * 0, or -ENOENT (no such user), or a negative errno. A uid-0 user is a no-op.
 */
int sandbox_drop_user(const char *user);
/* No core dump ever: RLIMIT_CORE 0 (inherited by children) and not dumpable. */
int sandbox_no_core_dumps(void);
/* No execve can ever grant privileges again (setuid binaries, file caps). */
int sandbox_no_new_privs(void);
/*
 * PR_SET_NO_NEW_PRIVS and the system-call allow list; irreversible.
 * socket() only for AF_INET and AF_INET6, no connect(), and unlinkat()
 * only in the directory sock_dirfd (an open directory, or -1 for none),
 * tgkill() only to this process: those are refused with EPERM, anything
 * unlisted kills the process.
 * Sanitizer runtimes make calls of their own, so sanitizer builds of veild
 * do not install it (SANDBOX_SECCOMP_DEFAULT).
 */
#ifdef __SANITIZE_ADDRESS__
#define SANDBOX_SECCOMP_DEFAULT false
#else
#define SANDBOX_SECCOMP_DEFAULT true
#endif
int sandbox_seccomp(int sock_dirfd);
/*
 * For the resolver child: become "nobody" (never root, whatever veild runs
 * as) with no group and no capability, no new privileges, and an allow-list
 * of the calls a name lookup makes (anything else fails with EPERM).
 */
int sandbox_resolver(void);

#endif
