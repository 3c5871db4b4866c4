// SPDX-License-Identifier: MIT
/*
 * veilctl's configuration parser and key sources: every key read into the
 * right field, every error class refused whole with its file:line:key
 * message, no secret in a message, and keys from files (mode checked),
 * credentials and commands (exit status, output, time limit).
 */
#include "conf.c"
#include "keys.c"

#include <stdlib.h>
#include <sys/stat.h>

#include "test_util.h"

/* The error cases are formats with positional arguments (a key, the private key). */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static const char *pub1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
static const char *pub2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
static const char *priv = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
static const char *psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

static int parse(struct conf *c, struct conf_error *err, const char *text)
{
	return conf_parse(c, "/etc/veil/wg0.conf", text, strlen(text), err);
}

static void key_equal(const uint8_t *k, const char *b64)
{
	uint8_t want[32];

	assert_non_null(k);
	assert_int_equal(conf_parse_key(b64, want), 0);
	assert_memory_equal(k, want, 32);
}

static void test_every_key(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[2048];

	(void)state;
	snprintf(text, sizeof(text),
		 "# a comment\n[Interface]  # trailing comment\n PrivateKey = %s\nlistenport=51820\n"
		 "FwMark = 0x20\nAddress = 198.19.0.1/24, fd00::1/64\nAddress = 198.19.9.9\nMTU = 1380\n"
		 "Table = 1234\nDNS = 192.0.2.53, example.com\nPreUp = echo %%i # kept whole\n"
		 "PostUp = a\nPostUp = b\nPreDown = c\nPostDown = d\nSaveConfig = true\n\n"
		 "[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 10.0.0.0/8\n"
		 "AllowedIPs = ::/0\nEndpoint = [2001:db8::1]:51820\nPersistentKeepalive = 25\n"
		 "[peer]\r\nPUBLICKEY = %s\r\nEndpoint = host.example:1\r\n",
		 priv, pub1, psk, pub2);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_string_equal(c.name, "wg0");
	key_equal(c.private_key.key, priv);
	assert_int_equal(c.private_key.source, KEYSRC_INLINE);
	assert_true(c.has_listen_port);
	assert_int_equal(c.listen_port, 51820);
	assert_int_equal(c.fwmark, 0x20);
	assert_int_equal(c.n_addresses, 3);
	assert_int_equal(c.addresses[1].family, AF_INET6);
	assert_int_equal(c.addresses[1].cidr, 64);
	assert_int_equal(c.addresses[2].cidr, 32);
	assert_int_equal(c.mtu, 1380);
	assert_int_equal(c.table, TABLE_ID);
	assert_int_equal(c.table_id, 1234);
	assert_int_equal(c.n_dns, 2);
	assert_string_equal(c.dns[1], "example.com");
	assert_int_equal(c.pre_up.n, 1);
	assert_string_equal(c.pre_up.cmd[0], "echo %i # kept whole");
	assert_int_equal(c.post_up.n, 2);
	assert_true(c.save_config);
	assert_int_equal(c.n_peers, 2);
	key_equal(c.peers[0].psk.key, psk);
	assert_int_equal(c.peers[0].n_allowed_ips, 2);
	assert_int_equal(c.peers[0].allowed_ips[1].cidr, 0);
	assert_string_equal(c.peers[0].endpoint, "[2001:db8::1]:51820");
	assert_int_equal(c.peers[0].persistent_keepalive, 25);
	assert_int_equal(c.peers[1].line, 25);
	assert_string_equal(c.peers[1].endpoint, "host.example:1");
	conf_free(&c);
	assert_null(c.peers);
}

struct bad_case {
	const char *text; /* %1$s: a public key, %2$s: the private key */
	const char *msg;  /* what must follow "/etc/veil/wg0.conf:" */
};

static const struct bad_case bad[] = {
	{ "[Interface]\nColor = blue\n", "2: Color: unknown key" },
	{ "ListenPort = 1\n[Interface]\n", "1: ListenPort: outside a section" },
	{ "[Interface]\n[Interface]\n", "2: [Interface]: a second [Interface] section" },
	{ "[Interface]\n[Other]\n", "2: unknown section" },
	{ "[Interface]\nListenPort = 65536\n", "2: ListenPort: \"65536\" is not a port" },
	{ "[Interface]\nListenPort = 1\nListenPort = 2\n", "3: ListenPort: given twice" },
	{ "[Interface]\nAddress = 10.0.0.1/33\n", "2: Address: \"10.0.0.1/33\"" },
	{ "[Interface]\nAddress = 10.0.0.1/24,,10.0.0.2\n", "2: Address: an empty item" },
	{ "[Interface]\nMTU = 20\n", "2: MTU: \"20\" is not an MTU" },
	{ "[Interface]\nFwMark = 0x1ffffffff\n", "2: FwMark:" },
	{ "[Interface]\nTable = nowhere\n", "2: Table:" },
	{ "[Interface]\nSaveConfig = yes\n", "2: SaveConfig:" },
	{ "[Interface]\nListenPort =\n", "2: ListenPort: no value" },
	{ "[Interface]\nListenPort 1\n", "2: \"ListenPort 1\" is not Key = Value" },
	{ "[Interface]\nPublicKey = %1$s\n", "2: PublicKey: belongs in [Peer]" },
	{ "[Interface]\nPrivateKey = %2$s\nPrivateKeyFile = /k\n", "3: PrivateKeyFile: a key for this is already given on line 2" },
	{ "[Interface]\nPrivateKeyCredential = a/b\n", "2: PrivateKeyCredential: a credential name has no '/'" },
	{ "[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", "2: [Peer]: no PublicKey" },
	{ "[Interface]\n[Peer]\nPublicKey = abc\n", "3: PublicKey: \"abc\" is not a base64 key" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\n[Peer]\nPublicKey = %1$s\n", "5: PublicKey: the same peer as on line 2" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 300.0.0.0/8\n", "4: AllowedIPs:" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = 192.0.2.1\n", "4: Endpoint:" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = [::1:5\n", "4: Endpoint:" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = h:0\n", "4: Endpoint:" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPersistentKeepalive = often\n", "4: PersistentKeepalive:" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPresharedKey = %2$s\nPresharedKeyFile = /p\n", "5: PresharedKeyFile:" },
};

static void test_errors(void **state)
{
	struct conf_error err;
	struct conf c;
	static const struct conf zero;
	char text[1024], want[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i].text, pub1, priv);
		snprintf(want, sizeof(want), "/etc/veil/wg0.conf:%s", bad[i].msg);
		memset(&c, 0x5a, sizeof(c));
		if (parse(&c, &err, text) == 0)
			fail_msg("case %zu was accepted: %s", i, text);
		if (strncmp(err.msg, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err.msg, want);
		assert_null(strchr(err.msg, '\n'));
		assert_memory_equal(&c, &zero, sizeof(c)); /* nothing half-parsed */
	}
}

/* A secret never appears in a message, whatever is wrong with it or after it. */
static void test_no_secret_in_messages(void **state)
{
	const char *cases[] = {
		"[Interface]\nPrivateKey = %sX\n",
		"[Interface]\nPrivateKey = %s\nPrivateKey = %s\n",
		"[Interface]\n[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nPresharedKey = %s=\n",
	};
	struct conf_error err;
	struct conf c;
	char text[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), cases[i], priv, priv);
		assert_int_not_equal(parse(&c, &err, text), 0);
		assert_null(strstr(err.msg, "YAnz5TF"));
	}
}

static void test_file_level(void **state)
{
	struct conf_error err;
	struct conf c;
	char big[CONF_LINE_MAX + 64];

	(void)state;
	assert_int_not_equal(parse(&c, &err, "# nothing\n"), 0);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf: no [Interface] section");
	assert_int_not_equal(conf_parse(&c, "/x/this-name-is-too-long.conf", "[Interface]\n", 12, &err), 0);
	assert_non_null(strstr(err.msg, "not a valid interface name"));
	assert_int_not_equal(conf_parse(&c, "/x/wg0.conf", "[Interface]\nMTU = 1\0\n", 21, &err), 0);
	assert_non_null(strstr(err.msg, "wg0.conf:2: a NUL byte"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_not_equal(parse(&c, &err, big), 0);
	assert_non_null(strstr(err.msg, ":1: line longer than"));
	/* A last line that ends in a lone CR (the fuzzer's hang). */
	assert_int_equal(conf_parse(&c, "/x/wg0.conf", "[Interface]\nListenPort = 7\r", 27, &err), 0);
	assert_int_equal(c.listen_port, 7);
	conf_free(&c);
	assert_int_not_equal(conf_load(&c, "/nonexistent/wg0.conf", &err), 0);
	assert_non_null(strstr(err.msg, "No such file"));
}

static void test_prefix_key_name(void **state)
{
	struct conf_prefix p;
	uint8_t k[32];

	(void)state;
	assert_int_equal(conf_parse_prefix("10.1.2.3/8", &p), 0);
	assert_int_equal(p.family, AF_INET);
	assert_int_equal(p.cidr, 8);
	assert_int_equal(p.addr[3], 3); /* host bits kept */
	assert_int_equal(conf_parse_prefix("fd00::1", &p), 0);
	assert_int_equal(p.cidr, 128);
	assert_int_equal(conf_parse_prefix("::/0", &p), 0);
	assert_int_equal(p.cidr, 0);
	assert_int_not_equal(conf_parse_prefix("10.0.0.0/", &p), 0);
	assert_int_not_equal(conf_parse_prefix("10.0.0.0/08", &p), 0);
	assert_int_not_equal(conf_parse_prefix("10.0.0.0/-1", &p), 0);
	assert_int_not_equal(conf_parse_prefix("::/129", &p), 0);
	assert_int_not_equal(conf_parse_prefix("host/24", &p), 0);
	assert_int_equal(conf_parse_key(pub1, k), 0);
	assert_int_not_equal(conf_parse_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg", k), 0);
	assert_int_not_equal(conf_parse_key("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=", k), 0);
	assert_true(conf_valid_ifname("wg0"));
	assert_true(conf_valid_ifname("a_b=c+d.e-f"));
	assert_false(conf_valid_ifname(""));
	assert_false(conf_valid_ifname("sixteen-chars-xx"));
	assert_false(conf_valid_ifname("a/b"));
	assert_false(conf_valid_ifname(".."));
}

/* ---- key sources -------------------------------------------------------------------- */

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/veil-keys-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_key_file(void **state)
{
	char path[128], why[256], line[160];
	uint8_t k[32];

	(void)state;
	snprintf(line, sizeof(line), "  %s\n\n", priv);
	write_file("good", line, 0600);
	write_file("loose", line, 0644);
	write_file("junk", "not a key\n", 0600);
	snprintf(path, sizeof(path), "%s/good", dir);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), 0);
	key_equal(k, priv);
	snprintf(path, sizeof(path), "%s/loose", dir);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "readable by group or others"));
	assert_null(strstr(why, "YAnz5TF"));
	snprintf(path, sizeof(path), "%s/junk", dir);
	assert_int_not_equal(key_from_file(path, k, why, sizeof(why)), 0);
	snprintf(line, sizeof(line), "%s/link", dir);
	snprintf(path, sizeof(path), "%s/good", dir);
	assert_int_equal(symlink(path, line), 0);
	assert_int_not_equal(key_from_file(line, k, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "symbolic link"));
}

static void test_key_credential(void **state)
{
	char why[256], line[64];
	uint8_t k[32];

	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_not_equal(key_from_credential("veil", k, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "CREDENTIALS_DIRECTORY"));
	snprintf(line, sizeof(line), "%s\n", priv);
	write_file("veil", line, 0400); /* as systemd leaves a credential */
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(key_from_credential("veil", k, why, sizeof(why)), 0);
	key_equal(k, priv);
	assert_int_not_equal(key_from_credential("../veil", k, why, sizeof(why)), 0);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_key_command(void **state)
{
	char cmd[128], why[256];
	uint8_t k[32];
	struct timespec t0;

	(void)state;
	snprintf(cmd, sizeof(cmd), "printf '%s\\n'", priv);
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), 0);
	key_equal(k, priv);
	assert_int_equal(key_from_command("exit 3", k, why, sizeof(why)), -ECHILD);
	assert_string_equal(why, "command exited with status 3");
	assert_int_equal(key_from_command("echo hello", k, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "command output is not a base64 key of 32 bytes");
	command_timeout_ms = 300;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(key_from_command("sleep 5", k, why, sizeof(why)), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) < 2000);
	command_timeout_ms = 30000;
}

/* keys_load names the file, the line and the source when a key cannot be read. */
static void test_keys_load(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512], line[160];

	(void)state;
	snprintf(line, sizeof(line), "%s\n", psk);
	write_file("psk", line, 0600);
	snprintf(line, sizeof(line), "%s\n", priv);
	write_file("priv", line, 0640);
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKeyFile = %s/priv\n[Peer]\nPublicKey = %s\nPresharedKeyFile = %s/psk\n",
		 dir, pub1, dir);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_int_not_equal(keys_load(&c, &err), 0);
	assert_non_null(strstr(err.msg, "wg0.conf:2: PrivateKeyFile: "));
	assert_non_null(strstr(err.msg, "readable by group or others"));
	conf_free(&c);
	snprintf(line, sizeof(line), "%s/priv", dir);
	assert_int_equal(chmod(line, 0600), 0);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_int_equal(keys_load(&c, &err), 0);
	key_equal(c.private_key.key, priv);
	key_equal(c.peers[0].psk.key, psk);
	conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_no_secret_in_messages),
		cmocka_unit_test(test_file_level),
		cmocka_unit_test(test_prefix_key_name),
		cmocka_unit_test_setup_teardown(test_key_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_key_credential, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_key_command, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_keys_load, setup_dir, teardown_dir),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
