// SPDX-License-Identifier: MIT
/*
 * veilctl's key sources (tools/veilctl/keys.c): a key file only its owner
 * may use and whose owner is root, the same rules for a configuration file
 * that holds a key itself, a peer that is the interface itself, a systemd
 * credential, a command's output (exit status, output,
 * time limit), and keys_load naming file, line and source when one fails.
 * The files live in a mkdtemp directory made for each test. Tests run as
 * root, which bypasses permissions, but the mode check is ours and holds.
 */
#include "conf.c"
#include "keys.c"

#include <stdlib.h>
#include <sys/stat.h>

#include "test_util.h"

static const char *pub1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
static const char *priv = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
static const char *psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

static char dir[64];

static void key_equal(const uint8_t *k, const char *b64)
{
	uint8_t want[32];

	assert_non_null(k);
	assert_int_equal(conf_parse_key(b64, want), 0);
	assert_memory_equal(k, want, 32);
}

/* dir/name, into out. */
static const char *in_dir(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
	return out;
}

static void write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	char path[128];
	FILE *f;

	f = fopen(in_dir(path, sizeof(path), name), "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* A key file: lead, the key, trail. */
static void write_key(const char *name, const char *lead, const char *key, const char *trail, mode_t mode)
{
	char text[160];

	snprintf(text, sizeof(text), "%s%s%s", lead, key, trail);
	write_file(name, text, strlen(text), mode);
}

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/veil-keys-XXXXXX");
	unsetenv("CREDENTIALS_DIRECTORY");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	command_timeout_ms = 30000;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- key files -------------------------------------------------------------------------- */

static void test_file_modes(void **state)
{
	static const mode_t loose[] = { 0644, 0640, 0604, 0601, 0610, 0620, 0602, 0666 };
	char path[128], why[256], want[256];
	uint8_t k[32];
	size_t i;

	(void)state;
	write_key("good", "  ", priv, "\n\n", 0600);
	assert_int_equal(key_from_file(in_dir(path, sizeof(path), "good"), k, why, sizeof(why)), 0);
	key_equal(k, priv);
	write_key("ro", "", priv, "", 0400); /* no newline at all */
	assert_int_equal(key_from_file(in_dir(path, sizeof(path), "ro"), k, why, sizeof(why)), 0);
	for (i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		write_key("loose", "", priv, "\n", loose[i]);
		memset(why, 0, sizeof(why));
		assert_int_equal(key_from_file(in_dir(path, sizeof(path), "loose"), k, why, sizeof(why)), -EPERM);
		snprintf(want, sizeof(want), "%s is readable by group or others (chmod 600 it)", path);
		assert_string_equal(why, want);
	}
}

static void test_file_contents(void **state)
{
	static const char *const junk[] = {
		"not a key\n",
		"YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
		"PrivateKey = YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n",
		"YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk\n",
		"",
	};
	char path[128], why[256], want[256], text[64];
	uint8_t k[32];
	size_t i;

	(void)state;
	in_dir(path, sizeof(path), "junk");
	snprintf(want, sizeof(want), "%s does not hold one base64 key of 32 bytes", path);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		write_file("junk", junk[i], strlen(junk[i]), 0600);
		assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL);
		assert_string_equal(why, want);
	}
	/* A NUL after the key: strlen would stop there, the check must not. */
	snprintf(text, sizeof(text), "%s", priv);
	memcpy(text + 44, "\0junk\n", 6);
	write_file("junk", text, 50, 0600);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL);
	assert_null(strstr(why, "YAnz5TF"));
	/* A NUL is no whitespace, at either end. */
	write_file("junk", text, 45, 0600);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL);
	memcpy(text + 44, "\0\n", 2);
	write_file("junk", text, 46, 0600);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL);
	text[0] = '\0';
	snprintf(text + 1, sizeof(text) - 1, "%s\n", priv);
	write_file("junk", text, 46, 0600);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL);
}

static void test_file_kinds(void **state)
{
	char path[128], target[128], why[256], want[256], big[400];
	uint8_t k[32];

	(void)state;
	write_key("good", "", priv, "\n", 0600);
	assert_int_equal(symlink(in_dir(target, sizeof(target), "good"), in_dir(path, sizeof(path), "link")), 0);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -ELOOP);
	snprintf(want, sizeof(want), "%s is a symbolic link (name the file itself)", path);
	assert_string_equal(why, want);
	assert_int_equal(key_from_file(dir, k, why, sizeof(why)), -EINVAL);
	snprintf(want, sizeof(want), "%s is not a regular file", dir);
	assert_string_equal(why, want);
	assert_int_equal(mkfifo(in_dir(path, sizeof(path), "fifo"), 0600), 0);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EINVAL); /* and does not block */
	assert_int_equal(key_from_file(in_dir(path, sizeof(path), "none"), k, why, sizeof(why)), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(why, want);
	memset(big, ' ', sizeof(big));
	memcpy(big + 300, priv, 44);
	write_file("big", big, sizeof(big), 0600);
	assert_int_equal(key_from_file(in_dir(path, sizeof(path), "big"), k, why, sizeof(why)), -EFBIG);
	snprintf(want, sizeof(want), "%s is larger than 256 bytes: not a key file", path);
	assert_string_equal(why, want);
}

/* A key file of another user: that user may read it and put in a key of their choice. */
static void test_file_owner(void **state)
{
	char path[128], why[256], want[256];
	uint8_t k[32];

	(void)state;
	if (geteuid() != 0)
		skip(); /* giving a file away needs root */
	write_key("theirs", "", priv, "\n", 0600);
	assert_int_equal(chown(in_dir(path, sizeof(path), "theirs"), 65534, 65534), 0);
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), -EPERM);
	snprintf(want, sizeof(want), "%s belongs to uid 65534, not to root (chown root it)", path);
	assert_string_equal(why, want);
	assert_int_equal(chown(path, 0, 65534), 0); /* root's, whatever its group: fine */
	assert_int_equal(key_from_file(path, k, why, sizeof(why)), 0);
	key_equal(k, priv);
}

/* keys_load on dir/wg0.conf holding text, with this mode and owner: its error, "" when it loads. */
static char *load_conf_file(const char *text, mode_t mode, uid_t uid, int *ret)
{
	struct conf_error err = { "" };
	struct conf c;
	char path[128];

	write_file("wg0.conf", text, strlen(text), mode);
	assert_int_equal(chown(in_dir(path, sizeof(path), "wg0.conf"), uid, 0), 0);
	if (conf_load(&c, path, &err))
		fail_msg("%s", err.msg);
	*ret = keys_load(&c, &err);
	if (!*ret)
		err.msg[0] = '\0';
	conf_free(&c);
	return strdup(err.msg);
}

/*
 * A key in the configuration file itself is held to a key file's rules: no
 * permission for group or others, root's (or ours). wg-quick only warns.
 */
static void test_conf_file_with_key(void **state)
{
	static const mode_t loose[] = { 0644, 0640, 0604, 0620, 0602, 0610 };
	char inline_priv[256], inline_psk[256], by_file[256], path[128], key_path[128], want[512];
	char *msg;
	size_t i;
	int ret;

	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(inline_priv, sizeof(inline_priv), "[Interface]\nPrivateKey = %s\n", priv);
	snprintf(inline_psk, sizeof(inline_psk),
		 "[Interface]\nListenPort = 1\n[Peer]\nPublicKey = %s\nPresharedKey = %s\n", pub1, psk);
	write_key("k", "", priv, "\n", 0600);
	snprintf(by_file, sizeof(by_file), "[Interface]\nPrivateKeyFile = %s\n", in_dir(key_path, sizeof(key_path), "k"));
	in_dir(path, sizeof(path), "wg0.conf");

	msg = load_conf_file(inline_priv, 0600, 0, &ret);
	assert_int_equal(ret, 0);
	free(msg);
	for (i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		msg = load_conf_file(inline_priv, loose[i], 0, &ret);
		assert_int_equal(ret, -EPERM);
		snprintf(want, sizeof(want), "%s:2: PrivateKey: the key is in %s, which is %s by group or others "
			 "(mode %04o; chmod 600 it, as for a key file)", path, path,
			 loose[i] & 044 ? "readable" : loose[i] & 022 ? "writable" : "usable", (unsigned int)loose[i]);
		assert_string_equal(msg, want);
		free(msg);
	}
	msg = load_conf_file(inline_psk, 0640, 0, &ret);
	assert_int_equal(ret, -EPERM);
	snprintf(want, sizeof(want), "%s:5: PresharedKey: the key is in %s, which is readable by group or others "
		 "(mode 0640; chmod 600 it, as for a key file)", path, path);
	assert_string_equal(msg, want);
	free(msg);
	msg = load_conf_file(inline_priv, 0600, 65534, &ret);
	assert_int_equal(ret, -EPERM);
	snprintf(want, sizeof(want), "%s:2: PrivateKey: the key is in %s, which belongs to uid 65534, not to root "
		 "(chown root it, as for a key file)", path, path);
	assert_string_equal(msg, want);
	free(msg);
	/* The key is elsewhere: the file's own mode is its owner's business. */
	msg = load_conf_file(by_file, 0644, 0, &ret);
	assert_int_equal(ret, 0);
	free(msg);
}

/* ---- credentials -------------------------------------------------------------------------- */

static void test_credential(void **state)
{
	char why[256], want[256], path[128];
	uint8_t k[32];

	(void)state;
	write_key("veil.key", "", priv, "\n", 0400); /* as systemd leaves a credential */
	assert_int_equal(key_from_credential("veil.key", k, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "no $CREDENTIALS_DIRECTORY: not started by systemd with LoadCredential=");
	setenv("CREDENTIALS_DIRECTORY", "", 1);
	assert_int_equal(key_from_credential("veil.key", k, why, sizeof(why)), -ENOENT);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	memset(k, 0, sizeof(k));
	assert_int_equal(key_from_credential("veil.key", k, why, sizeof(why)), 0);
	key_equal(k, priv);
	write_key("loose", "", priv, "\n", 0644); /* readable is systemd's business */
	assert_int_equal(key_from_credential("loose", k, why, sizeof(why)), 0);
	write_key("writable", "", priv, "\n", 0620);
	assert_int_equal(key_from_credential("writable", k, why, sizeof(why)), -EPERM);
	snprintf(want, sizeof(want), "%s is writable by group or others (chmod 600 it)",
		 in_dir(path, sizeof(path), "writable"));
	assert_string_equal(why, want);
	assert_int_equal(key_from_credential("../veil.key", k, why, sizeof(why)), -EINVAL);
	assert_int_equal(key_from_credential("..", k, why, sizeof(why)), -EINVAL);
	assert_int_equal(key_from_credential(".", k, why, sizeof(why)), -EINVAL);
	assert_int_equal(key_from_credential("missing", k, why, sizeof(why)), -ENOENT);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void test_command_output(void **state)
{
	char cmd[160], why[256];
	uint8_t k[32];

	(void)state;
	snprintf(cmd, sizeof(cmd), "printf '%s'", priv);
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), 0);
	key_equal(k, priv);
	snprintf(cmd, sizeof(cmd), "echo; echo '  %s  '; echo", psk);
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), 0);
	key_equal(k, psk);
	/* stdin is /dev/null: a command that reads it gets end of file at once. */
	snprintf(cmd, sizeof(cmd), "cat; printf '%s'", priv);
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), 0);
	assert_int_equal(key_from_command("echo hello", k, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "command output is not one base64 key of 32 bytes");
	snprintf(cmd, sizeof(cmd), "echo %s; echo %s", priv, priv);
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), -EINVAL);
	assert_int_equal(key_from_command("true", k, why, sizeof(why)), -EINVAL);
	assert_int_equal(key_from_command("head -c 10000 /dev/zero | tr '\\0' A", k, why, sizeof(why)), -E2BIG);
	assert_string_equal(why, "command output is longer than 4096 bytes");
}

static void test_command_status(void **state)
{
	char cmd[160], why[256];
	uint8_t k[32];

	(void)state;
	assert_int_equal(key_from_command("exit 3", k, why, sizeof(why)), -ECHILD);
	assert_string_equal(why, "command exited with status 3");
	snprintf(cmd, sizeof(cmd), "printf '%s'; exit 1", priv); /* a key, but a failure */
	assert_int_equal(key_from_command(cmd, k, why, sizeof(why)), -ECHILD);
	assert_string_equal(why, "command exited with status 1");
	assert_int_equal(key_from_command("no-such-command-anywhere 2>/dev/null", k, why, sizeof(why)), -ECHILD);
	assert_string_equal(why, "command exited with status 127");
	assert_int_equal(key_from_command("kill -9 $$", k, why, sizeof(why)), -ECHILD);
	assert_string_equal(why, "command was killed by signal 9");
}

/* A command past its time is killed and reaped; the test lowers the limit. */
static void test_command_timeout(void **state)
{
	char why[256];
	uint8_t k[32];
	struct timespec t0;

	(void)state;
	command_timeout_ms = 200;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* exec: the shell becomes sleep, so the kill reaches it and no orphan keeps our stderr. */
	assert_int_equal(key_from_command("exec sleep 5", k, why, sizeof(why)), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) < 2000);
	assert_string_equal(why, "command did not finish within 200 ms");
	/* Silent but done with stdout: the wait for its exit is bounded too. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(key_from_command("exec >&- sleep 5", k, why, sizeof(why)), -ETIMEDOUT);
	assert_true(elapsed_ms(&t0) < 2000);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left behind */
	assert_int_equal(errno, ECHILD);
	command_timeout_ms = 30000;
}

/* ---- keys_load -------------------------------------------------------------------------------- */

static void parse_text(struct conf *c, const char *text)
{
	struct conf_error err;

	if (conf_parse(c, "/etc/veil/wg0.conf", text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

/* A file key that is too open, then fixed; a PSK from a credential. */
static void test_load_files(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512], path[128], want[512];

	(void)state;
	write_key("priv", "", priv, "\n", 0640);
	write_key("psk", "", psk, "\n", 0400);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKeyFile = %s/priv\n[Peer]\nPublicKey = %s\nPresharedKeyCredential = psk\n",
		 dir, pub1);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -EPERM);
	snprintf(want, sizeof(want), "/etc/veil/wg0.conf:2: PrivateKeyFile: %s is readable by group or "
		 "others (chmod 600 it)", in_dir(path, sizeof(path), "priv"));
	assert_string_equal(err.msg, want);
	assert_null(c.private_key.key); /* nothing half-loaded */
	conf_free(&c);
	assert_int_equal(chmod(path, 0600), 0);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), 0);
	key_equal(c.private_key.key, priv);
	key_equal(c.peers[0].psk.key, psk);
	/* Again, with both files gone: nothing is read twice, nothing replaced (and leaked). */
	{
		const uint8_t *k1 = c.private_key.key, *k2 = c.peers[0].psk.key;
		char p2[128];

		assert_int_equal(unlink(path), 0);
		assert_int_equal(unlink(in_dir(p2, sizeof(p2), "psk")), 0);
		assert_int_equal(keys_load(&c, &err), 0);
		assert_ptr_equal(c.private_key.key, k1);
		assert_ptr_equal(c.peers[0].psk.key, k2);
		key_equal(c.private_key.key, priv);
	}
	conf_free(&c);
}

/* Each source names itself and its line; inline keys stay as they were. */
static void test_load_errors(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512];

	(void)state;
	snprintf(text, sizeof(text), "[Interface]\n\nPrivateKeyCommand = exit 3 # not a comment\n");
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -ECHILD);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf:3: PrivateKeyCommand: command exited with status 3");
	conf_free(&c);
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKey = %s\n[Peer]\nPublicKey = %s\nPresharedKeyCredential = x\n", priv, pub1);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -ENOENT);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf:5: PresharedKeyCredential: no $CREDENTIALS_DIRECTORY: "
				     "not started by systemd with LoadCredential=");
	key_equal(c.private_key.key, priv);
	assert_null(c.peers[0].psk.key);
	conf_free(&c);
	snprintf(text, sizeof(text), "[Interface]\n[Peer]\nPublicKey = %s\nPresharedKeyFile = %s/none\n", pub1, dir);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/etc/veil/wg0.conf:4: PresharedKeyFile: /tmp/veil-keys-"));
	conf_free(&c);
}

/* A peer that is the interface itself: veild would drop it in silence, so it is refused. */
static void test_own_key_as_peer(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512], own[64], path[128];
	uint8_t k[32], pub[32];

	(void)state;
	assert_int_equal(conf_parse_key(priv, k), 0);
	crypto_scalarmult_base(pub, k);
	sodium_bin2base64(own, sizeof(own), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "[Interface]\nPrivateKey = %s\n[Peer]\nPublicKey = %s\n\n[Peer]\nPublicKey = %s\n",
		 priv, pub1, own);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -EINVAL);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf:6: [Peer]: its PublicKey is this interface's own (from "
				     "PrivateKey on line 2); a peer cannot be the interface itself");
	conf_free(&c);
	/* The same from a key file, found only once the file is read. */
	write_key("k", "", priv, "\n", 0600);
	snprintf(text, sizeof(text), "[Interface]\n# a comment\nPrivateKeyFile = %s\n[Peer]\nPublicKey = %s\n",
		 in_dir(path, sizeof(path), "k"), own);
	parse_text(&c, text);
	assert_int_equal(keys_load(&c, &err), -EINVAL);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf:4: [Peer]: its PublicKey is this interface's own (from "
				     "PrivateKeyFile on line 3); a peer cannot be the interface itself");
	conf_free(&c);
}

/* ---- the registry password ---------------------------------------------------------------------- */

/* A node's [Mesh] whose password source (line 7) is source. */
static void mesh_text(struct conf *c, const char *source)
{
	char text[512];

	snprintf(text, sizeof(text), "[Mesh]\nRegistry = https://h:2379\nRegistryCA = a\nRegistryCert = b\n"
		 "RegistryKey = c\nRegistryUser = u\n%s\n", source);
	parse_text(c, text);
}

/* keys_mesh_password with the file dir/pw holding text: the password, or NULL and err. */
static int password_from(const char *text, size_t len, mode_t mode, char **pw, struct conf_error *err)
{
	char line[256];
	struct conf c;
	int ret;

	write_file("pw", text, len, mode);
	snprintf(line, sizeof(line), "RegistryPasswordFile = %s/pw", dir);
	mesh_text(&c, line);
	*pw = (char *)1;
	ret = keys_mesh_password(&c, pw, err);
	conf_free(&c);
	return ret;
}

static void test_mesh_password_file(void **state)
{
	static const struct {
		const char *text;
		size_t len;
		const char *want;
	} good[] = {
		{ "s3cret pass\n", 12, "s3cret pass" },   /* the newline an editor adds */
		{ "s3cret", 6, "s3cret" },
		{ "  s3cret \t\r\n\n", 13, "s3cret" },
		{ "p\"w\\'$(x)", 9, "p\"w\\'$(x)" },      /* read, never run nor unquoted */
		{ "\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9" },
	};
	static const struct {
		const char *text;
		size_t len;
	} refused[] = {
		{ "", 0 }, { "\n", 1 }, { "  \t\r\n", 5 },
		{ "first\nsecond\n", 13 },  /* two lines */
		{ "a\0b\n", 4 },            /* a NUL: strlen would stop there */
		{ "pw\0", 3 },
		{ "a\tb\n", 4 },            /* a control character inside */
		{ "a\x1b[2Jb\n", 7 },
	};
	struct conf_error err;
	char long_pw[300], want[512], *pw;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (password_from(good[i].text, good[i].len, 0600, &pw, &err))
			fail_msg("row %zu: %s", i, err.msg);
		assert_string_equal(pw, good[i].want);
		sodium_free(pw); /* locked memory */
	}
	assert_int_equal(password_from("s3cret\n", 7, 0400, &pw, &err), 0);
	sodium_free(pw);
	snprintf(want, sizeof(want), "/etc/veil/wg0.conf:7: RegistryPasswordFile: %s/pw does not hold a password "
		 "on one line (1-255 bytes)", dir);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (password_from(refused[i].text, refused[i].len, 0600, &pw, &err) != -EINVAL)
			fail_msg("row %zu was taken for a password", i);
		assert_null(pw);
		assert_string_equal(err.msg, want);
	}
	/* 255 bytes is the most. */
	memset(long_pw, 'x', 256);
	assert_int_equal(password_from(long_pw, 255, 0600, &pw, &err), 0);
	assert_int_equal(strlen(pw), 255);
	sodium_free(pw);
	assert_int_equal(password_from(long_pw, 256, 0600, &pw, &err), -EINVAL);
	assert_string_equal(err.msg, want);
}

/* A password file is a key file: only its owner may read it, and never through a link. */
static void test_mesh_password_modes(void **state)
{
	static const mode_t loose[] = { 0644, 0640, 0604, 0660 };
	struct conf_error err;
	char want[512], path[128], target[128], line[256], *pw;
	struct conf c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(password_from("s3cret\n", 7, loose[i], &pw, &err), -EPERM);
		assert_null(pw);
		snprintf(want, sizeof(want), "/etc/veil/wg0.conf:7: RegistryPasswordFile: %s/pw is readable by group "
			 "or others (chmod 600 it)", dir);
		assert_string_equal(err.msg, want);
	}
	write_file("pw", "s3cret\n", 7, 0600);
	assert_int_equal(symlink(in_dir(target, sizeof(target), "pw"), in_dir(path, sizeof(path), "link")), 0);
	snprintf(line, sizeof(line), "RegistryPasswordFile = %s", path);
	mesh_text(&c, line);
	assert_int_equal(keys_mesh_password(&c, &pw, &err), -ELOOP);
	assert_null(pw);
	conf_free(&c);
	snprintf(line, sizeof(line), "RegistryPasswordFile = %s/none", dir);
	mesh_text(&c, line);
	assert_int_equal(keys_mesh_password(&c, &pw, &err), -ENOENT);
	snprintf(want, sizeof(want), "/etc/veil/wg0.conf:7: RegistryPasswordFile: %s/none: No such file or directory", dir);
	assert_string_equal(err.msg, want);
	conf_free(&c);
}

static void test_mesh_password_credential(void **state)
{
	struct conf_error err;
	struct conf c;
	char *pw;

	(void)state;
	write_file("etcd.pw", "s3cret\n", 7, 0444); /* readable is systemd's business */
	mesh_text(&c, "RegistryPasswordCredential = etcd.pw");
	assert_int_equal(keys_mesh_password(&c, &pw, &err), -ENOENT);
	assert_null(pw);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf:7: RegistryPasswordCredential: no $CREDENTIALS_DIRECTORY: "
				     "not started by systemd with LoadCredential=");
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	assert_int_equal(keys_mesh_password(&c, &pw, &err), 0);
	assert_string_equal(pw, "s3cret");
	sodium_free(pw);
	conf_free(&c);
	write_file("etcd.pw", "two\nlines\n", 10, 0400);
	mesh_text(&c, "RegistryPasswordCredential = etcd.pw");
	assert_int_equal(keys_mesh_password(&c, &pw, &err), -EINVAL);
	assert_null(pw);
	conf_free(&c);
}

static void test_mesh_password_command(void **state)
{
	static const struct {
		const char *command;
		int ret;
		const char *want; /* the password, or the message after "wg0.conf:7: RegistryPasswordCommand: " */
	} rows[] = {
		{ "printf 's3cret\\n'", 0, "s3cret" },
		{ "echo '  s3cret pass  '", 0, "s3cret pass" },
		{ "cat; echo s3cret # stdin is /dev/null", 0, "s3cret" },
		{ "printf 'one\\ntwo\\n'", -EINVAL, "command output is not a password on one line (1-255 bytes)" },
		{ "printf 'a\\000b'", -EINVAL, "command output is not a password on one line (1-255 bytes)" },
		{ "true", -EINVAL, "command output is not a password on one line (1-255 bytes)" },
		{ "echo s3cret; exit 2", -ECHILD, "command exited with status 2" },
	};
	struct conf_error err;
	struct conf c;
	char line[256], want[512], *pw;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret;

		snprintf(line, sizeof(line), "RegistryPasswordCommand = %s", rows[i].command);
		mesh_text(&c, line);
		ret = keys_mesh_password(&c, &pw, &err);
		conf_free(&c);
		if (ret != rows[i].ret)
			fail_msg("row %zu: %d (%s)", i, ret, err.msg);
		if (!ret) {
			assert_string_equal(pw, rows[i].want);
			sodium_free(pw);
			continue;
		}
		assert_null(pw);
		snprintf(want, sizeof(want), "/etc/veil/wg0.conf:7: RegistryPasswordCommand: %s", rows[i].want);
		assert_string_equal(err.msg, want);
		assert_null(strstr(err.msg, "s3cret")); /* what it printed is never shown */
	}
}

/* A file without [Mesh] has no password to give. */
static void test_mesh_password_none(void **state)
{
	struct conf_error err;
	struct conf c;
	char *pw = (char *)1;

	(void)state;
	parse_text(&c, "[Interface]\n");
	assert_int_equal(keys_mesh_password(&c, &pw, &err), -EINVAL);
	assert_null(pw);
	assert_string_equal(err.msg, "/etc/veil/wg0.conf: [Mesh] has no registry password");
	conf_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_modes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_contents, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_kinds, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_file_owner, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_conf_file_with_key, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_own_key_as_peer, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_credential, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_command_output, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_command_status, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_command_timeout, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_files, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_errors, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_mesh_password_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_mesh_password_modes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_mesh_password_credential, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_mesh_password_command, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_mesh_password_none, setup_dir, teardown_dir),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
