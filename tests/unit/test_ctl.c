// SPDX-License-Identifier: MIT
/*
 * veilctl's client of the control socket (tools/veilctl/ctl.c), against a
 * scripted daemon: a child process listening on a socket in a temporary
 * directory that answers each connection with a reply of the test's
 * choosing. ctl_get asks veil_get=1 first and must fall back to get=1
 * when the daemon hangs up on it (wireguard-go), answers it with an error
 * (errno=N), or answers lines it cannot read; and it must not fall back
 * when nobody answers at all.
 */
static char sock_dir[64];
#define CTL_SOCKET_DIR sock_dir

#include "conf.c"
#include "ctl.c"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/compiler.h"
#include "test_util.h"

#define PUB "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define PUB_HEX "c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038"

static const char wg_reply[] = "listen_port=51820\npublic_key=" PUB_HEX
			       "\nprotocol_version=1\nendpoint=192.0.2.1:51820\n"
			       "allowed_ip=10.0.0.0/8\nerrno=0\n\n";

/* One connection's script: the request it must bring, and what the daemon does. */
struct turn {
	const char *request;
	const char *reply; /* NULL: hang up without a word */
};

static pid_t daemon_pid = -1;

/* Read one request (up to its blank line) from fd into buf. */
static ssize_t read_request(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got + 1 < cap) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\n\n"))
			break;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* Serves turns[0..n) in order on dir/IFNAME.sock; exits 0 when each came as scripted. */
static void start_daemon(const char *ifname, const struct turn *turns, size_t n)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(s >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s.sock", sock_dir, ifname);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 4), 0);
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		size_t i;
		char buf[256];

		alarm(20);
		for (i = 0; i < n; i++) {
			int c = accept(s, NULL, NULL);

			if (c < 0 || read_request(c, buf, sizeof(buf)) <= 0 ||
			    strcmp(buf, turns[i].request) != 0)
				_exit(10 + (int)i);
			if (turns[i].reply &&
			    write(c, turns[i].reply, strlen(turns[i].reply)) != (ssize_t)strlen(turns[i].reply))
				_exit(30);
			close(c);
		}
		_exit(0);
	}
	close(s);
}

/* The scripted daemon went through every turn, and nothing more was asked. */
static void daemon_done(const char *ifname)
{
	char path[128];
	int st;

	assert_int_equal(waitpid(daemon_pid, &st, 0), daemon_pid);
	daemon_pid = -1;
	snprintf(path, sizeof(path), "%s/%s.sock", sock_dir, ifname);
	unlink(path);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the daemon's script broke at turn %d", WIFEXITED(st) ? WEXITSTATUS(st) - 10 : -1);
}

static int setup(void **state)
{
	(void)state;
	snprintf(sock_dir, sizeof(sock_dir), "/tmp/veil-ctl-XXXXXX");
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return -1;
	return mkdtemp(sock_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGKILL);
		waitpid(daemon_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sock_dir); /* sockets a failed case left */
	return system(cmd) == 0 ? 0 : -1;
}

/* dev is what wg_reply says. */
static void got_wg_reply(const struct ctl_device *dev)
{
	uint8_t pub[32];

	assert_int_equal(dev->listen_port, 51820);
	assert_int_equal(dev->n_peers, 1);
	assert_int_equal(conf_parse_key(PUB, pub), 0);
	assert_memory_equal(dev->peers[0].public_key, pub, 32);
	assert_int_equal(dev->peers[0].n_allowed_ips, 1);
	assert_false(dev->peers[0].has_cipher);
}

/* get_with: veil_get=1 answered with veil_reply (NULL: hang-up), then get=1 with wg_reply. */
static void get_with(const char *ifname, const char *veil_reply)
{
	const struct turn turns[] = {
		{ "veil_get=1\n\n", veil_reply },
		{ "get=1\n\n", wg_reply },
	};
	struct ctl_device dev;
	char why[256] = "";

	start_daemon(ifname, turns, ARRAY_SIZE(turns));
	if (ctl_get(ifname, &dev, why, sizeof(why)))
		fail_msg("ctl_get: %s", why);
	got_wg_reply(&dev);
	ctl_device_free(&dev);
	daemon_done(ifname);
}

/* An older veild that cannot write the reply (errno=-105 once came for a long endpoint name). */
static void test_fallback_error_reply(void **state)
{
	(void)state;
	get_with("err0", "errno=-105\n\n");
	get_with("err1", "errno=-22\n\n");
}

static void test_fallback_unreadable_reply(void **state)
{
	(void)state;
	get_with("bad0", "listen_port=51820\npublic_key=" PUB_HEX "\ncipher=rot13\nerrno=0\n\n");
}

/* wireguard-go hangs up on the unknown operation; it is asked get=1 from then on. */
static void test_fallback_hang_up(void **state)
{
	const struct turn again[] = { { "get=1\n\n", wg_reply } };
	struct ctl_device dev;
	char why[256];

	(void)state;
	get_with("wggo", NULL);
	start_daemon("wggo", again, ARRAY_SIZE(again));
	assert_int_equal(ctl_get("wggo", &dev, why, sizeof(why)), 0);
	got_wg_reply(&dev);
	ctl_device_free(&dev);
	daemon_done("wggo");
}

/* veild's own answer is taken as it is: no second request. */
static void test_veil_reply(void **state)
{
	const struct turn turns[] = { { "veil_get=1\n\n",
					"metrics_listen=127.0.0.1:9586\npublic_key=" PUB_HEX "\ncipher=aes256gcm\n"
					"endpoint_name=peer.example:51820\nhandshake_failures=4\n"
					"last_handshake_failure_time_sec=1700000123\n"
					"last_handshake_failure=cipher mismatch: the peer uses chacha20poly1305\n"
					"errno=0\n\n" } };
	struct ctl_device dev;
	char why[256];

	(void)state;
	start_daemon("veil", turns, ARRAY_SIZE(turns));
	assert_int_equal(ctl_get("veil", &dev, why, sizeof(why)), 0);
	assert_int_equal(dev.n_peers, 1);
	assert_true(dev.peers[0].has_cipher);
	assert_string_equal(dev.peers[0].endpoint_name, "peer.example:51820");
	assert_string_equal(dev.metrics_listen, "127.0.0.1:9586");
	assert_true(dev.peers[0].has_failures);
	assert_int_equal(dev.peers[0].handshake_failures, 4);
	assert_int_equal(dev.peers[0].last_failure_sec, 1700000123);
	assert_string_equal(dev.peers[0].last_failure, "cipher mismatch: the peer uses chacha20poly1305");
	ctl_device_free(&dev);
	daemon_done("veil");
}

/* Nobody listens: one try, the reason said, no get=1 after it. */
static void test_no_daemon(void **state)
{
	struct ctl_device dev;
	char why[256];

	(void)state;
	assert_int_equal(ctl_get("none", &dev, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no daemon runs for none"));
}

/* ---- reload's summary and undo -------------------------------------------------------------- */

#define PUB2 "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
#define PUB2_HEX "4eb32f4a83f88d842563a448cc181bb2c42a637bf12363e2fb2ef594e5965d7d"
#define PUB3 "qvC8HZq6FhvqO9zBTvj2OcLvJk8UO5V0Th9RPdBXWm4="

/* A device as a get reply would say (veil: as veild's veil_get=1). */
static void device_from(struct ctl_device *d, const char *reply, bool veil)
{
	char buf[1024], why[64];
	struct reader r;

	snprintf(buf, sizeof(buf), "%s", reply);
	memset(d, 0, sizeof(*d));
	r = (struct reader){ buf, buf + strlen(buf), 0 };
	if (parse_get(&r, d, why, sizeof(why)))
		fail_msg("the test's reply does not parse: %s", why);
	d->veil = veil;
}

static void conf_from(struct conf *c, const char *text)
{
	struct conf_error err;

	if (conf_parse(c, "/etc/veil/wg0.conf", text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

/* What reload says it changed: peers added, removed and changed (a cipher counts), the port. */
static void test_sync_summary(void **state)
{
	struct ctl_device d;
	struct ctl_sync_summary s;
	struct conf c;

	(void)state;
	device_from(&d, "listen_port=51820\npublic_key=" PUB_HEX "\nallowed_ip=10.0.0.0/8\ncipher=chacha20poly1305\n"
			"public_key=" PUB2_HEX "\nallowed_ip=10.2.0.0/16\ncipher=chacha20poly1305\nerrno=0\n\n", true);
	conf_from(&c, "[Interface]\nListenPort = 51820\n[Peer]\nPublicKey = " PUB "\nAllowedIPs = 10.0.0.1/8\n");
	ctl_sync_summarize(&c, &d, &s);
	assert_int_equal(s.added, 0);
	assert_int_equal(s.removed, 1);
	assert_int_equal(s.changed, 0); /* host bits do not make a change */
	assert_false(s.listen_port);
	conf_free(&c);
	conf_from(&c, "[Interface]\nListenPort = 51821\n[Peer]\nPublicKey = " PUB "\nAllowedIPs = 10.0.0.0/8\n"
		      "Cipher = aes256gcm\n[Peer]\nPublicKey = " PUB2 "\nAllowedIPs = 10.2.0.0/16\n"
		      "[Peer]\nPublicKey = " PUB3 "\n");
	ctl_sync_summarize(&c, &d, &s);
	assert_int_equal(s.added, 1);
	assert_int_equal(s.removed, 0);
	assert_int_equal(s.changed, 1);
	assert_true(s.listen_port);
	assert_false(s.private_key);
	conf_free(&c);
	ctl_device_free(&d);
}

/* Undo: the request that takes the daemon from now back to was, leaving alone what is as it was. */
static void test_restore(void **state)
{
	static const char common[] = "public_key=" PUB2_HEX "\npersistent_keepalive_interval=0\n"
				     "allowed_ip=10.2.0.0/16\n";
	struct ctl_device was, now;
	struct sbuf req = { 0 };
	char buf[1024];

	(void)state;
	snprintf(buf, sizeof(buf), "listen_port=51820\n%spublic_key=" PUB_HEX "\nendpoint=192.0.2.1:51820\n"
		 "persistent_keepalive_interval=25\nallowed_ip=10.0.0.0/8\nallowed_ip=fd00::/64\nerrno=0\n\n", common);
	device_from(&was, buf, false);
	snprintf(buf, sizeof(buf), "listen_port=51821\nfwmark=7\n%spublic_key=" PUB_HEX "\nendpoint=192.0.2.1:51820\n"
		 "persistent_keepalive_interval=25\nallowed_ip=10.9.0.0/16\npublic_key=%s\nerrno=0\n\n", common,
		 "1111111111111111111111111111111111111111111111111111111111111111");
	device_from(&now, buf, false);
	assert_int_equal(ctl_build_restore(&was, &now, &req), 0);
	assert_string_equal(req.data, "set=1\nlisten_port=51820\nfwmark=0\n"
				      "public_key=1111111111111111111111111111111111111111111111111111111111111111\n"
				      "remove=true\n"
				      "public_key=" PUB_HEX "\npreshared_key="
				      "0000000000000000000000000000000000000000000000000000000000000000\n"
				      "endpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\n"
				      "replace_allowed_ips=true\nallowed_ip=10.0.0.0/8\nallowed_ip=fd00::/64\n\n");
	sbuf_free(&req);
	/* Between two veild, a peer that went comes back with its cipher first and its name. */
	ctl_device_free(&was);
	ctl_device_free(&now);
	device_from(&was, "public_key=" PUB_HEX "\ncipher=aes256gcm\nendpoint_name=peer.example:51820\n"
			  "allowed_ip=10.0.0.0/8\nerrno=0\n\n", true);
	device_from(&now, "errno=0\n\n", true);
	assert_int_equal(ctl_build_restore(&was, &now, &req), 0);
	assert_string_equal(req.data, "set=1\npublic_key=" PUB_HEX "\ncipher=aes256gcm\npreshared_key="
				      "0000000000000000000000000000000000000000000000000000000000000000\n"
				      "persistent_keepalive_interval=0\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/8\n"
				      "endpoint_name=peer.example:51820\n\n");
	sbuf_free(&req);
	/* Nothing changed: nothing to say. */
	assert_int_equal(ctl_build_restore(&was, &was, &req), 0);
	assert_string_equal(req.data, "set=1\n\n");
	sbuf_free(&req);
	ctl_device_free(&was);
	ctl_device_free(&now);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fallback_error_reply),
		cmocka_unit_test(test_fallback_unreadable_reply),
		cmocka_unit_test(test_fallback_hang_up),
		cmocka_unit_test(test_veil_reply),
		cmocka_unit_test(test_no_daemon),
		cmocka_unit_test(test_sync_summary),
		cmocka_unit_test(test_restore),
	};

	return cmocka_run_group_tests_name("ctl", tests, setup, teardown);
}
