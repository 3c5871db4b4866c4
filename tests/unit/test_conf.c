// SPDX-License-Identifier: MIT
/*
 * veilctl's configuration parser (tools/veilctl/conf.c): every key read
 * into the right field; every error class refused whole, with its exact
 * "path:line: Key: what" message and the conf left zeroed; no secret in
 * any message; and the helpers the command line shares (keys, prefixes,
 * interface names). The key sources have their own test, test_keys.c.
 */
#include "conf.c"

#include <stdlib.h>
#include <sys/stat.h>

#include "test_util.h"

/* The case tables are formats with positional arguments (a public key, the private key). */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#define PATH "/etc/veil/wg0.conf"

static const char *pub1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
static const char *pub2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
static const char *priv = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
static const char *psk = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

static int parse(struct conf *c, struct conf_error *err, const char *text)
{
	return conf_parse(c, PATH, text, strlen(text), err);
}

static void key_equal(const uint8_t *k, const char *b64)
{
	uint8_t want[32];

	assert_non_null(k);
	assert_int_equal(conf_parse_key(b64, want), 0);
	assert_memory_equal(k, want, 32);
}

static void assert_zeroed(const struct conf *c)
{
	static const struct conf zero;

	assert_memory_equal(c, &zero, sizeof(*c));
}

static void assert_prefix(const struct conf_prefix *p, const char *addr, unsigned int cidr)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(inet_pton(p->family, addr, want), 1);
	assert_memory_equal(p->addr, want, p->family == AF_INET ? 4 : 16);
	assert_int_equal(p->cidr, cidr);
}

/* ---- files that parse ------------------------------------------------------------------ */

static void check_interface(const struct conf *c)
{
	assert_string_equal(c->path, PATH);
	assert_string_equal(c->name, "wg0");
	assert_int_equal(c->private_key.source, KEYSRC_INLINE);
	assert_int_equal(c->private_key.line, 3);
	assert_null(c->private_key.arg);
	key_equal(c->private_key.key, priv);
	assert_true(c->has_listen_port);
	assert_int_equal(c->listen_port, 51820);
	assert_true(c->has_fwmark);
	assert_int_equal(c->fwmark, 0x20);
	assert_int_equal(c->n_addresses, 3);
	assert_int_equal(c->addresses[0].family, AF_INET);
	assert_prefix(&c->addresses[0], "198.19.0.1", 24);
	assert_int_equal(c->addresses[1].family, AF_INET6);
	assert_prefix(&c->addresses[1], "fd00::1", 64);
	assert_prefix(&c->addresses[2], "198.19.9.9", 32);
	assert_true(c->has_mtu);
	assert_int_equal(c->mtu, 1380);
	assert_int_equal(c->table, TABLE_ID);
	assert_int_equal(c->table_id, 1234);
	assert_int_equal(c->n_dns, 3);
	assert_string_equal(c->dns[0], "192.0.2.53");
	assert_string_equal(c->dns[1], "example.com");
	assert_string_equal(c->dns[2], "2001:db8::53");
	assert_true(c->save_config);
}

static void check_hooks(const struct conf *c)
{
	assert_int_equal(c->pre_up.n, 1);
	assert_string_equal(c->pre_up.cmd[0], "echo %i # kept whole");
	assert_int_equal(c->post_up.n, 2);
	assert_string_equal(c->post_up.cmd[0], "a");
	assert_string_equal(c->post_up.cmd[1], "b;#c");
	assert_int_equal(c->pre_down.n, 1);
	assert_string_equal(c->pre_down.cmd[0], "c");
	assert_int_equal(c->post_down.n, 1);
	assert_string_equal(c->post_down.cmd[0], "d");
}

static void check_peers(const struct conf *c)
{
	const struct conf_peer *p = &c->peers[0];
	uint8_t want[32];

	assert_int_equal(c->n_peers, 2);
	assert_int_equal(p->line, 19);
	assert_int_equal(conf_parse_key(pub1, want), 0);
	assert_memory_equal(p->public_key, want, 32);
	assert_int_equal(p->psk.source, KEYSRC_INLINE);
	key_equal(p->psk.key, psk);
	assert_int_equal(p->n_allowed_ips, 3);
	assert_prefix(&p->allowed_ips[0], "10.0.0.0", 8);
	assert_prefix(&p->allowed_ips[1], "10.9.0.0", 16);
	assert_prefix(&p->allowed_ips[2], "::", 0);
	assert_string_equal(p->endpoint, "[2001:db8::1]:51820");
	assert_int_equal(p->endpoint_line, 25);
	assert_int_equal(p->endpoint_len, 0);
	assert_true(p->has_keepalive);
	assert_int_equal(p->persistent_keepalive, 25);
	p = &c->peers[1];
	assert_int_equal(p->line, 27);
	assert_int_equal(p->psk.source, KEYSRC_NONE);
	assert_null(p->psk.key);
	assert_int_equal(p->n_allowed_ips, 0);
	assert_string_equal(p->endpoint, "host.example:1");
	assert_false(p->has_keepalive);
}

/* Every key once (lists twice), with comments, odd spacing, odd case and CRLF. */
static void test_every_key(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[2048];

	(void)state;
	snprintf(text, sizeof(text),
		 "# a comment\n"
		 "[Interface]  # trailing comment\n"
		 " PrivateKey = %s\n"
		 "listenport=51820\n"
		 "\tFwMark = 0x20 # hex\n"
		 "Address = 198.19.0.1/24, fd00::1/64\n"
		 "ADDRESS = 198.19.9.9\n"
		 "MTU = 1380\n"
		 "Table = 1234\n"
		 "DNS = 192.0.2.53, example.com\n"
		 "DNS = 2001:db8::53\n"
		 "PreUp = echo %%i # kept whole\n"
		 "PostUp = a\n"
		 "PostUp = b;#c\n"
		 "PreDown=c\n"
		 "PostDown = d\n"
		 "SaveConfig = true\n"
		 "\n"
		 "[Peer]\n"
		 "PublicKey = %s\n"
		 "PresharedKey = %s\n"
		 "AllowedIPs = 10.0.0.0/8,10.9.0.0/16\n"
		 "  # an indented comment\n"
		 "AllowedIPs = ::/0\n"
		 "Endpoint = [2001:db8::1]:51820\n"
		 "PersistentKeepalive = 25\n"
		 "[peer]\r\n"
		 "PUBLICKEY = %s\r\n"
		 "Endpoint = host.example:1\r\n",
		 priv, pub1, psk, pub2);
	assert_int_equal(parse(&c, &err, text), 0);
	check_interface(&c);
	check_hooks(&c);
	check_peers(&c);
	conf_free(&c);
	assert_zeroed(&c);
	conf_free(&c); /* safe on an empty conf */
}

/* Key sources other than inline, and the spellings of off, auto and table names. */
static void test_sources_and_words(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512];

	(void)state;
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKeyCommand = vault read -field=k 'x#y' # not a comment\n"
		 "FwMark = off\nTable = Main\nPostDown = # a note, run as sh would\n"
		 "[Peer]\nPublicKey = %s\nPresharedKeyCredential = psk.b\nPersistentKeepalive = off\n"
		 "Endpoint = 192.0.2.1:65535\n"
		 "[Peer]\nPublicKey = %s\nPresharedKeyFile = /etc/veil/b.psk\nEndpoint = [fe80::1%%eth0]:7\n"
		 "Cipher = AES256GCM\n",
		 pub1, pub2);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_int_equal(c.private_key.source, KEYSRC_COMMAND);
	assert_string_equal(c.private_key.arg, "vault read -field=k 'x#y' # not a comment");
	assert_null(c.private_key.key);
	assert_true(c.has_fwmark);
	assert_int_equal(c.fwmark, 0);
	assert_int_equal(c.table, TABLE_ID);
	assert_int_equal(c.table_id, 254);
	assert_int_equal(c.post_down.n, 1);
	assert_string_equal(c.post_down.cmd[0], "# a note, run as sh would");
	assert_int_equal(c.peers[0].psk.source, KEYSRC_CREDENTIAL);
	assert_string_equal(c.peers[0].psk.arg, "psk.b");
	assert_int_equal(c.peers[0].psk.line, 8);
	assert_true(c.peers[0].has_keepalive);
	assert_int_equal(c.peers[0].persistent_keepalive, 0);
	assert_int_equal(c.peers[1].psk.source, KEYSRC_FILE);
	assert_string_equal(c.peers[1].psk.arg, "/etc/veil/b.psk");
	assert_string_equal(c.peers[1].endpoint, "[fe80::1%eth0]:7");
	/* Cipher: absent means WireGuard's; a word in any case. */
	assert_false(c.peers[0].has_cipher);
	assert_int_equal(c.peers[0].cipher, CIPHER_DEFAULT);
	assert_true(c.peers[1].has_cipher);
	assert_int_equal(c.peers[1].cipher, CIPHER_AES256GCM);
	conf_free(&c);
}

static void test_table_words(void **state)
{
	static const struct {
		const char *v;
		enum conf_table table;
		uint32_t id;
	} rows[] = {
		{ "off", TABLE_OFF, 0 },     { "AUTO", TABLE_AUTO, 0 },  { "main", TABLE_ID, 254 },
		{ "local", TABLE_ID, 255 },  { "default", TABLE_ID, 253 }, { "1", TABLE_ID, 1 },
		{ "4294967295", TABLE_ID, UINT32_MAX },
	};
	struct conf_error err;
	struct conf c;
	char text[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(text, sizeof(text), "[Interface]\nTable = %s\n", rows[i].v);
		assert_int_equal(parse(&c, &err, text), 0);
		assert_int_equal(c.table, rows[i].table);
		assert_int_equal(c.table_id, rows[i].id);
		conf_free(&c);
	}
}

/* The smallest file, and an [Interface] that need not come first. */
static void test_minimal(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[256];

	(void)state;
	assert_int_equal(parse(&c, &err, "[Interface]"), 0);
	assert_int_equal(c.private_key.source, KEYSRC_NONE);
	assert_int_equal(c.table, TABLE_AUTO);
	assert_false(c.has_listen_port);
	conf_free(&c);
	snprintf(text, sizeof(text), "[Peer]\nPublicKey = %s\n[Interface]\nListenPort = 0\nMTU = 68\n", pub1);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_true(c.has_listen_port);
	assert_int_equal(c.listen_port, 0);
	assert_int_equal(c.mtu, 68);
	assert_int_equal(c.n_peers, 1);
	conf_free(&c);
	snprintf(text, sizeof(text), "[Interface]\nListenPort = 65535\nMTU = 9280\nFwMark = 4294967295\n"
		 "[Peer]\nPublicKey = %s\nPersistentKeepalive = 65535\nEndpoint = h:65535\n", pub1);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_int_equal(c.listen_port, 65535);
	assert_int_equal(c.mtu, 9280);
	assert_int_equal(c.fwmark, UINT32_MAX);
	assert_int_equal(c.peers[0].persistent_keepalive, 65535);
	conf_free(&c);
	/* Below IPv6's 1280 only without an IPv6 address. */
	assert_int_equal(parse(&c, &err, "[Interface]\nMTU = 1279\nAddress = 10.0.0.1/24\n"), 0);
	conf_free(&c);
	assert_int_equal(parse(&c, &err, "[Interface]\nMTU = 1280\nAddress = fd00::1/64\n"), 0);
	conf_free(&c);
}

/* ---- files that do not -------------------------------------------------------------------- */

struct bad_case {
	const char *text; /* %1$s: a public key, %2$s: the private key */
	const char *msg;  /* all that follows PATH ":" */
};

static const struct bad_case bad[] = {
	{ "[Interface]\nColor = blue\n", "2: Color: unknown key" },
	{ "[Interface]\n%2$s\n", "2: unknown key" }, /* a pasted key ends in '=' */
	{ "[Interface]\n= 5\n", "2: unknown key" },
	{ "ListenPort = 1\n[Interface]\n", "1: ListenPort: outside a section ([Interface], [Peer] or [Mesh] first)" },
	{ "[Interface]\n[Interface]\n", "2: [Interface]: a second [Interface] section" },
	{ "[Interface]\n[Other] # c\n", "2: [Other]: unknown section ([Interface], [Peer] or [Mesh])" },
	{ "[Interface]\n[Peer\n", "2: [Peer: unknown section ([Interface], [Peer] or [Mesh])" },
	{ "[Interface]\nListenPort = 65536\n", "2: ListenPort: \"65536\" is not a port (0-65535)" },
	{ "[Interface]\nlistenport = 0x10\n", "2: listenport: \"0x10\" is not a port (0-65535)" },
	{ "[Interface]\nListenPort = -1\n", "2: ListenPort: \"-1\" is not a port (0-65535)" },
	{ "[Interface]\nListenPort = 1\nListenPort = 2\n", "3: ListenPort: given twice in one section" },
	{ "[Interface]\nAddress = 10.0.0.1/33\n",
	  "2: Address: \"10.0.0.1/33\": prefix length out of range (0-32 for IPv4)" },
	{ "[Interface]\nAddress = 10.0.0.1/8x\n",
	  "2: Address: \"10.0.0.1/8x\" is not an address with a prefix length" },
	{ "[Interface]\nAddress = 10.0.0.1/24,,10.0.0.2\n", "2: Address: an empty item in the list" },
	{ "[Interface]\nAddress = 10.0.0.1,\n", "2: Address: an empty item in the list" },
	{ "[Interface]\nMTU = 67\n", "2: MTU: 67 is below 68, the least any link takes (68-9280)" },
	{ "[Interface]\nMTU = 9281\n",
	  "2: MTU: 9281 is above 9280, the longest packet veild carries (68-9280); longer ones would be dropped" },
	{ "[Interface]\nMTU = 65536\n",
	  "2: MTU: 65536 is above 9280, the longest packet veild carries (68-9280); longer ones would be dropped" },
	{ "[Interface]\nMTU = 1420x\n", "2: MTU: \"1420x\" is not an MTU (68-9280)" },
	{ "[Interface]\nMTU = 99999999999999999999999\n",
	  "2: MTU: 99999999999999999999999 is above 9280, the longest packet veild carries (68-9280); longer ones "
	  "would be dropped" },
	/* The kernel turns IPv6 off on a link below 1280: the address would never come. */
	{ "[Interface]\nMTU = 1279\nAddress = 10.0.0.1/24, fd00::1/64\n",
	  "2: MTU: 1279 is below 1280, the least IPv6 takes, and Address on line 3 is IPv6 (fd00::1/64)" },
	{ "[Interface]\nAddress = fd00::1/64\nListenPort = 1\nMTU = 1200\n",
	  "4: MTU: 1200 is below 1280, the least IPv6 takes, and Address on line 2 is IPv6 (fd00::1/64)" },
	{ "[Interface]\nFwMark = 0x1ffffffff\n",
	  "2: FwMark: \"0x1ffffffff\" is not a mark (a number up to 0xffffffff, or off)" },
	{ "[Interface]\nFwMark = 0x\n", "2: FwMark: \"0x\" is not a mark (a number up to 0xffffffff, or off)" },
	{ "[Interface]\nTable = nowhere\n", "2: Table: \"nowhere\" is not a table (off, auto, main or a number)" },
	{ "[Interface]\nTable = 0\n", "2: Table: \"0\" is not a table (off, auto, main or a number)" },
	{ "[Interface]\nTable = 4294967296\n",
	  "2: Table: \"4294967296\" is not a table (off, auto, main or a number)" },
	{ "[Interface]\nSaveConfig = yes\n", "2: SaveConfig: \"yes\" is not true or false" },
	{ "[Interface]\nDNS = a b\n", "2: DNS: \"a b\" is neither an address nor a domain" },
	{ "[Interface]\nListenPort =\n", "2: ListenPort: no value" },
	{ "[Interface]\nPostUp =  \t \n", "2: PostUp: no value" },
	{ "[Interface]\nListenPort = # nothing\n", "2: ListenPort: no value" },
	{ "[Interface]\nListenPort 1\n", "2: not a Key = Value line" },
	{ "[Interface]\nListen#Port = 1\n", "2: not a Key = Value line" },
	{ "[Interface]\nPublicKey = %1$s\n", "2: PublicKey: belongs in [Peer], not here" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nMTU = 1\n", "4: MTU: belongs in [Interface], not here" },
	{ "[Interface]\nPrivateKey = x\n", "2: PrivateKey: not a base64 key of 32 bytes" },
	{ "[Interface]\nPrivateKey = %2$s\nPrivateKey = %2$s\n", "3: PrivateKey: given twice in one section" },
	{ "[Interface]\nPrivateKey = %2$s\nPrivateKeyFile = /k\n",
	  "3: PrivateKeyFile: a key for this is already given on line 2" },
	{ "[Interface]\nPrivateKeyCommand = a\nprivatekeycredential = b\n",
	  "3: privatekeycredential: a key for this is already given on line 2" },
	{ "[Interface]\nPrivateKeyCredential = a/b\n",
	  "2: PrivateKeyCredential: \"a/b\" is not a credential name (a file name without '/')" },
	{ "[Interface]\nPrivateKeyCredential = ..\n",
	  "2: PrivateKeyCredential: \"..\" is not a credential name (a file name without '/')" },
	{ "[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n", "2: [Peer]: no PublicKey" },
	{ "[Interface]\n[Peer]\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = %1$s\n", "2: [Peer]: no PublicKey" },
	{ "[Interface]\n[Peer]\nPublicKey = abc\n", "3: PublicKey: \"abc\" is not a base64 key of 32 bytes" },
	{ "[Interface]\n[Peer]\nPublicKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	  "3: PublicKey: the all-zero key is not a public key" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPublicKey = %1$s\n", "4: PublicKey: given twice in one section" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\n[Peer]\nPublicKey = %1$s\n",
	  "5: PublicKey: the same peer as on line 2" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 300.0.0.0/8\n",
	  "4: AllowedIPs: \"300.0.0.0/8\" is not a prefix" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = ::/129\n",
	  "4: AllowedIPs: \"::/129\": prefix length out of range (0-128 for IPv6)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 10.0.0.0/33\n",
	  "4: AllowedIPs: \"10.0.0.0/33\": prefix length out of range (0-32 for IPv4)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = ::/1o\n", "4: AllowedIPs: \"::/1o\" is not a prefix" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = 192.0.2.1\n",
	  "4: Endpoint: \"192.0.2.1\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = [::1:5\n",
	  "4: Endpoint: \"[::1:5\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = h:0\n",
	  "4: Endpoint: \"h:0\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = h:65536\n",
	  "4: Endpoint: \"h:65536\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = 2001:db8::1:51820\n",
	  "4: Endpoint: \"2001:db8::1:51820\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = a b:5\n",
	  "4: Endpoint: \"a b:5\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = :5\n",
	  "4: Endpoint: \":5\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPersistentKeepalive = 65536\n",
	  "4: PersistentKeepalive: \"65536\" is not a number of seconds (0-65535) or off" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = []:5\n",
	  "4: Endpoint: \"[]:5\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nEndpoint = h:1\nEndpoint = h:2\n",
	  "5: Endpoint: given twice in one section" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nCipher = aes128gcm\n",
	  "4: Cipher: \"aes128gcm\" is not a cipher (aes256gcm or chacha20poly1305)" },
	{ "[Interface]\nCipher = aes256gcm\n",
	  "2: Cipher: belongs in [Peer], not here" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPersistentKeepalive = often\n",
	  "4: PersistentKeepalive: \"often\" is not a number of seconds (0-65535) or off" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPresharedKey = %2$s\nPresharedKeyFile = /p\n",
	  "5: PresharedKeyFile: a key for this is already given on line 4" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nPresharedKey = %2$s=\n",
	  "4: PresharedKey: not a base64 key of 32 bytes" },
};

static void test_errors(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[1024], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i].text, pub1, priv);
		snprintf(want, sizeof(want), PATH ":%s", bad[i].msg);
		memset(&c, 0x5a, sizeof(c));
		memset(&err, 0x5a, sizeof(err));
		if (parse(&c, &err, text) != -EINVAL)
			fail_msg("case %zu was not refused: %s", i, text);
		if (strcmp(err.msg, want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, want);
		assert_zeroed(&c); /* nothing half-parsed */
	}
}

/* A long value is quoted cut short; a control character never reaches the message. */
static void test_quoting(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512], host[120];

	(void)state;
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(text, sizeof(text), "[Interface]\n[Peer]\nPublicKey = %s\nEndpoint = %s\n", pub1, host);
	assert_int_equal(parse(&c, &err, text), -EINVAL);
	assert_string_equal(err.msg, PATH ":4: Endpoint: \"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh...\" "
				     "is not host:port or [address]:port (port 1-65535)");
	assert_int_equal(parse(&c, &err, "[Interface]\nDNS = a\033[2Jb\n"), -EINVAL);
	assert_string_equal(err.msg, PATH ":2: DNS: \"a?[2Jb\" is neither an address nor a domain");
	assert_int_equal(conf_parse(&c, "/a\nb/wg0.conf", "x", 1, &err), -EINVAL);
	assert_string_equal(err.msg, "/a?b/wg0.conf:1: not a Key = Value line");
}

/* A secret never appears in a message, whatever is wrong with it or near it. */
static void test_no_secret_in_messages(void **state)
{
	static const char *const cases[] = {
		"[Interface]\nPrivateKey = %1$sX\n",
		"[Interface]\nPrivateKey = %1$s\nPrivateKey = %1$s\n",
		"[Interface]\nPrivateKey %1$s\n",
		"[Interface]\nPrivateKey: %1$s\n",
		"[Interface]\n%1$s\n",
		"[Interface]\n  %1$s  # pasted\n",
		"[Interface]\n[Peer]\nPublicKey = %2$s\nPresharedKey = %1$s=\n",
		"[Interface]\n[Peer]\nPublicKey = %2$s\nPresharedKey = %1$s\nPresharedKey = %1$s\n",
		"[Interface]\n[Peer]\nPublicKey = %2$s\nPresharedKey = %1$s\nPresharedKeyFile = /x\n",
		"[Interface]\nPrivateKey = %1$s\n[Peer]\n",
	};
	struct conf_error err;
	struct conf c;
	char text[512], head[13];
	size_t i;

	(void)state;
	memcpy(head, priv, sizeof(head) - 1); /* 12 characters of it are enough to notice */
	head[sizeof(head) - 1] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), cases[i], priv, pub1);
		assert_int_equal(parse(&c, &err, text), -EINVAL);
		if (strstr(err.msg, head))
			fail_msg("case %zu shows the key: %s", i, err.msg);
	}
}

/* Errors that belong to the whole file or to a line as a line. */
static void test_file_level(void **state)
{
	struct conf_error err;
	struct conf c;
	char *big;

	(void)state;
	assert_int_equal(parse(&c, &err, "# nothing\n\n"), -EINVAL);
	assert_string_equal(err.msg, PATH ": no [Interface] section");
	assert_int_equal(parse(&c, &err, ""), -EINVAL);
	assert_string_equal(err.msg, PATH ": no [Interface] section");
	assert_int_equal(conf_parse(&c, "/x/this-name-is-too-long.conf", "[Interface]\n", 12, &err), -EINVAL);
	assert_string_equal(err.msg, "/x/this-name-is-too-long.conf: \"this-name-is-too-long\" is not a "
				     "valid interface name (1-15 characters of A-Z a-z 0-9 _ = + . -)");
	assert_zeroed(&c);
	assert_int_equal(conf_parse(&c, "/x/wg0.conf", "[Interface]\nMTU = 1\0\n", 21, &err), -EINVAL);
	assert_string_equal(err.msg, "/x/wg0.conf:2: a NUL byte in the line");
	assert_zeroed(&c);
	/* A last line that ends in a lone CR (once a fuzzer's hang). */
	assert_int_equal(conf_parse(&c, "/x/wg0.conf", "[Interface]\nListenPort = 7\r", 27, &err), 0);
	assert_int_equal(c.listen_port, 7);
	conf_free(&c);
	big = malloc((size_t)CONF_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, '\n', (size_t)CONF_FILE_MAX + 1);
	memcpy(big, "[Interface]", 11);
	assert_int_equal(conf_parse(&c, PATH, big, (size_t)CONF_FILE_MAX, &err), 0);
	conf_free(&c);
	assert_int_equal(conf_parse(&c, PATH, big, (size_t)CONF_FILE_MAX + 1, &err), -EFBIG);
	assert_string_equal(err.msg, PATH ": larger than 1048576 bytes");
	assert_zeroed(&c);
	free(big);
}

/* CONF_LINE_MAX bytes make a line (CR not counted); one more does not. */
static void test_line_length(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[CONF_LINE_MAX + 32];
	size_t n = strlen("[Interface]\n");

	(void)state;
	memcpy(text, "[Interface]\n", n);
	memset(text + n, '#', CONF_LINE_MAX);
	memcpy(text + n + CONF_LINE_MAX, "\r\n", 3);
	assert_int_equal(parse(&c, &err, text), 0);
	conf_free(&c);
	memcpy(text + n + CONF_LINE_MAX, "#\n", 3);
	assert_int_equal(parse(&c, &err, text), -EINVAL);
	assert_string_equal(err.msg, PATH ":2: line longer than 4096 bytes");
}

/* Cut a good file at every byte: each piece parses or fails cleanly, never half. */
static void test_every_prefix_of_a_file(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[512];
	size_t len, i;

	(void)state;
	snprintf(text, sizeof(text),
		 "[Interface]\nPrivateKey = %s\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = %s\n"
		 "AllowedIPs = 10.0.0.0/8, ::/0\nEndpoint = [::1]:51820\n",
		 priv, pub1);
	len = strlen(text);
	for (i = 0; i <= len; i++) {
		memset(&err, 0, sizeof(err));
		if (conf_parse(&c, PATH, text, i, &err) == 0) {
			assert_string_equal(c.name, "wg0");
			conf_free(&c);
			continue;
		}
		assert_zeroed(&c);
		assert_int_equal(strncmp(err.msg, PATH, strlen(PATH)), 0);
		assert_null(strchr(err.msg, '\n'));
	}
}

/* ---- [Mesh] ---------------------------------------------------------------------------------- */

/* Every [Mesh] key, [Peer] and [Mesh] each with Endpoint, PersistentKeepalive and Cipher of their own. */
static void test_mesh_every_key(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[2048];
	const struct conf_mesh *m = &c.mesh;

	(void)state;
	snprintf(text, sizeof(text),
		 "[Interface]\n"
		 "PrivateKey = %s\n"
		 "[Peer]\n"
		 "PublicKey = %s\n"
		 "Endpoint = 192.0.2.1:51820\n"
		 "PersistentKeepalive = 25\n"
		 "Cipher = aes256gcm\n"
		 "[Mesh]  # the registry\n"
		 "Registry = https://198.18.0.1:2379, https://[2001:db8::2]:2379/\n"
		 "registry = HTTPS://etcd3.example\n"
		 "RegistryCA = /etc/veil/mesh/ca.crt\n"
		 "RegistryCert = /etc/veil/mesh/node.crt\n"
		 "RegistryKey = /etc/veil/mesh/node.key\n"
		 "RegistryUser = n1.site-a\n"
		 "RegistryPasswordFile = /etc/veil/mesh/password # a comment\n"
		 "Network = n1\n"
		 "Node = site-a\n"
		 "Endpoint = [2001:db8::7]:51820\n"
		 "Advertise = 10.1.0.0/24, fd00:1::/64\n"
		 "Advertise = 192.0.2.7/32\n"
		 "PersistentKeepalive = 15\n"
		 "Cipher = AES256GCM\n",
		 priv, pub1);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_true(c.has_interface);
	assert_int_equal(m->line, 8);
	assert_int_equal(m->n_registry, 3);
	assert_string_equal(m->registry[0], "https://198.18.0.1:2379");
	assert_string_equal(m->registry[1], "https://[2001:db8::2]:2379/");
	assert_string_equal(m->registry[2], "HTTPS://etcd3.example");
	assert_string_equal(m->ca, "/etc/veil/mesh/ca.crt");
	assert_string_equal(m->cert, "/etc/veil/mesh/node.crt");
	assert_string_equal(m->key, "/etc/veil/mesh/node.key");
	assert_string_equal(m->user, "n1.site-a");
	assert_int_equal(m->password_source, KEYSRC_FILE);
	assert_string_equal(m->password_arg, "/etc/veil/mesh/password");
	assert_int_equal(m->password_line, 15);
	assert_string_equal(m->network, "n1");
	assert_string_equal(m->node, "site-a");
	assert_string_equal(m->endpoint, "[2001:db8::7]:51820");
	assert_int_equal(m->n_advertise, 3);
	assert_prefix(&m->advertise[0], "10.1.0.0", 24);
	assert_int_equal(m->advertise[1].family, AF_INET6);
	assert_prefix(&m->advertise[1], "fd00:1::", 64);
	assert_prefix(&m->advertise[2], "192.0.2.7", 32);
	assert_true(m->has_keepalive);
	assert_int_equal(m->keepalive, 15);
	assert_int_equal(m->cipher, CIPHER_AES256GCM);
	/* The peer's own, untouched by the [Mesh] keys of the same names. */
	assert_string_equal(c.peers[0].endpoint, "192.0.2.1:51820");
	assert_int_equal(c.peers[0].persistent_keepalive, 25);
	assert_true(c.peers[0].has_cipher);
	assert_int_equal(c.peers[0].cipher, CIPHER_AES256GCM);
	conf_free(&c);
	assert_zeroed(&c);
}

/* An administrator's file: [Mesh] alone, no node; the other password sources; the defaults. */
static void test_mesh_only(void **state)
{
	static const char text[] =
		"[Mesh]\n"
		"Registry = https://etcd1:2379\n"
		"RegistryCA = ca.crt\nRegistryCert = admin.crt\nRegistryKey = admin.key\n"
		"RegistryUser = root\n"
		"RegistryPasswordCommand = pass show etcd/root # kept whole\n"
		"PersistentKeepalive = off\n";
	struct conf_error err;
	struct conf c;

	(void)state;
	assert_int_equal(conf_parse(&c, "/etc/veil/admin.conf", text, strlen(text), &err), 0);
	assert_false(c.has_interface);
	assert_int_equal(c.mesh.line, 1);
	assert_null(c.mesh.network);
	assert_null(c.mesh.node);
	assert_null(c.mesh.endpoint);
	assert_int_equal(c.mesh.n_advertise, 0);
	assert_int_equal(c.mesh.cipher, CIPHER_DEFAULT);
	assert_true(c.mesh.has_keepalive);
	assert_int_equal(c.mesh.keepalive, 0);
	assert_int_equal(c.mesh.password_source, KEYSRC_COMMAND);
	assert_string_equal(c.mesh.password_arg, "pass show etcd/root # kept whole");
	assert_int_equal(c.mesh.password_line, 7);
	conf_free(&c);
	assert_int_equal(parse(&c, &err, "[Mesh]\nRegistry = https://h\nRegistryCA = a\nRegistryCert = b\n"
				      "RegistryKey = c\nRegistryUser = u\nRegistryPasswordCredential = etcd.pw\n"
				      "Cipher = chacha20poly1305\n"), 0);
	assert_int_equal(c.mesh.password_source, KEYSRC_CREDENTIAL);
	assert_string_equal(c.mesh.password_arg, "etcd.pw");
	assert_int_equal(c.mesh.cipher, CIPHER_DEFAULT);
	assert_false(c.mesh.has_keepalive);
	conf_free(&c);
	/* A file without [Mesh] has none. */
	assert_int_equal(parse(&c, &err, "[Interface]\n"), 0);
	assert_int_equal(c.mesh.line, 0);
	assert_int_equal(c.mesh.n_registry, 0);
	conf_free(&c);
}

/* The required keys, in the order the message names the first one missing. */
static const char *const mesh_keys[] = {
	"Registry = https://198.18.0.1:2379",
	"RegistryCA = /ca.crt",
	"RegistryCert = /n.crt",
	"RegistryKey = /n.key",
	"RegistryUser = n1.a",
	"RegistryPasswordFile = /pw",
	"Network = n1",
	"Node = a",
};

static void test_mesh_missing(void **state)
{
	static const char *const want[] = {
		"no Registry",
		"no RegistryCA",
		"no RegistryCert",
		"no RegistryKey",
		"no RegistryUser",
		"no RegistryPasswordFile (or RegistryPasswordCredential, RegistryPasswordCommand)",
		"no Network (this node's network and its name in it)",
		"no Node (this node's network and its name in it)",
	};
	struct conf_error err;
	struct conf c;
	char text[1024], msg[256];
	size_t skip, i, n;
	int first;

	(void)state;
	/* [Mesh] last (its line 2) and first (line 1, ended by the [Interface] after it). */
	for (first = 0; first < 2; first++) {
		for (skip = 0; skip < sizeof(mesh_keys) / sizeof(mesh_keys[0]); skip++) {
			n = (size_t)snprintf(text, sizeof(text), "%s[Mesh]\n", first ? "" : "[Interface]\n");
			for (i = 0; i < sizeof(mesh_keys) / sizeof(mesh_keys[0]); i++)
				if (i != skip)
					n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n", mesh_keys[i]);
			if (first)
				snprintf(text + n, sizeof(text) - n, "[Interface]\n");
			snprintf(msg, sizeof(msg), PATH ":%d: [Mesh]: %s", first ? 1 : 2, want[skip]);
			memset(&c, 0x5a, sizeof(c));
			assert_int_equal(parse(&c, &err, text), -EINVAL);
			if (strcmp(err.msg, msg))
				fail_msg("without \"%s\": \"%s\", want \"%s\"", mesh_keys[skip], err.msg, msg);
			assert_zeroed(&c);
		}
	}
}

/* %1$s: the [Mesh] keys before Network and Node, lines 2-7. */
#define MESH_HEAD "[Mesh]\nRegistry = https://h:2379\nRegistryCA = a\nRegistryCert = b\nRegistryKey = c\n" \
		  "RegistryUser = u\nRegistryPasswordFile = /pw\n"

static const struct bad_case bad_mesh[] = {
	{ "[Mesh]\nRegistry = http://198.18.0.1:2379\n",
	  "2: Registry: \"http://198.18.0.1:2379\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://h:2379, etcd2:2379\n",
	  "2: Registry: \"etcd2:2379\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://h:2379/v3\n",
	  "2: Registry: \"https://h:2379/v3\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://\n",
	  "2: Registry: \"https://\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://h:0\n",
	  "2: Registry: \"https://h:0\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://h x:1\n",
	  "2: Registry: \"https://h x:1\" is not an https:// URL of an etcd member (https://host:port; "
	  "mutual TLS is required)" },
	{ "[Mesh]\nRegistry = https://h:2379,,https://g:2379\n", "2: Registry: an empty item in the list" },
	{ "[Mesh]\nRegistryUser = a\"b\n", "2: RegistryUser: \"a\"b\" is not an etcd user name" },
	{ "[Mesh]\nRegistryUser = a\\b\n", "2: RegistryUser: \"a\\b\" is not an etcd user name" },
	{ "[Mesh]\nRegistryPasswordFile = /a\nRegistryPasswordCommand = b\n",
	  "3: RegistryPasswordCommand: a password source is already given on line 2" },
	{ "[Mesh]\nRegistryPasswordCredential = a\nRegistryPasswordCredential = b\n",
	  "3: RegistryPasswordCredential: given twice in one section" },
	{ "[Mesh]\nRegistryPasswordCredential = ../pw\n",
	  "2: RegistryPasswordCredential: \"../pw\" is not a credential name (a file name without '/')" },
	{ "[Mesh]\nRegistryPasswordCredential = ..\n",
	  "2: RegistryPasswordCredential: \"..\" is not a credential name (a file name without '/')" },
	{ "[Mesh]\nNetwork = a/b\n", "2: Network: \"a/b\" is not a name (1-63 characters of A-Z a-z 0-9 . _ -)" },
	{ "[Mesh]\nNetwork = a b\n", "2: Network: \"a b\" is not a name (1-63 characters of A-Z a-z 0-9 . _ -)" },
	{ "[Mesh]\nNode = ..\n", "2: Node: \"..\" is not a name (1-63 characters of A-Z a-z 0-9 . _ -)" },
	{ "[Mesh]\nNode = site-\xc3\xa9\n",
	  "2: Node: \"site-\xc3\xa9\" is not a name (1-63 characters of A-Z a-z 0-9 . _ -)" },
	{ "[Mesh]\nNode = 0123456789012345678901234567890123456789012345678901234567890123\n",
	  "2: Node: \"012345678901234567890123456789012345...\" is not a name (1-63 characters of A-Z a-z 0-9 . _ -)" },
	{ "[Mesh]\nNode = a\nNode = b\n", "3: Node: given twice in one section" },
	{ "[Mesh]\nAdvertise = 10.0.0.0/8, 10.1.0.0/16\n", "2: Advertise: \"10.1.0.0/16\" overlaps a prefix given before it" },
	{ "[Mesh]\nAdvertise = fd00::/64\nAdvertise = fd00::1/128\n",
	  "3: Advertise: \"fd00::1/128\" overlaps a prefix given before it" },
	{ "[Mesh]\nAdvertise = 10.0.0.0/33\n", "2: Advertise: \"10.0.0.0/33\": prefix length out of range (0-32 for IPv4)" },
	{ "[Mesh]\nAdvertise = 10.0.0.0/3.3\n", "2: Advertise: \"10.0.0.0/3.3\" is not a prefix" },
	/* Others would refuse the record it publishes: a prefix is written with its host bits clear. */
	{ "[Mesh]\nAdvertise = 10.1.0.1/24\n", "2: Advertise: \"10.1.0.1/24\" has host bits set (10.1.0.0/24?)" },
	{ "[Mesh]\nAdvertise = fd00::1/64\n", "2: Advertise: \"fd00::1/64\" has host bits set (fd00::/64?)" },
	{ "[Mesh]\nEndpoint = h:0\n", "2: Endpoint: \"h:0\" is not host:port or [address]:port (port 1-65535)" },
	{ "[Mesh]\nEndpoint = h:1\nEndpoint = h:2\n", "3: Endpoint: given twice in one section" },
	{ "[Mesh]\nPersistentKeepalive = often\n",
	  "2: PersistentKeepalive: \"often\" is not a number of seconds (0-65535) or off" },
	{ "[Mesh]\nPersistentKeepalive = 65536\n",
	  "2: PersistentKeepalive: \"65536\" is not a number of seconds (0-65535) or off" },
	{ "[Mesh]\nCipher = aes128gcm\n", "2: Cipher: \"aes128gcm\" is not a cipher (aes256gcm or chacha20poly1305)" },
	/* Keys of one section in another. */
	{ "[Interface]\nNetwork = n1\n", "2: Network: belongs in [Mesh], not here" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nRegistry = https://h:1\n", "4: Registry: belongs in [Mesh], not here" },
	{ "[Mesh]\nPublicKey = %1$s\n", "2: PublicKey: belongs in [Peer], not here" },
	{ "[Mesh]\nPrivateKey = %2$s\n", "2: PrivateKey: belongs in [Interface], not here" },
	{ "[Mesh]\nAllowedIPs = 10.0.0.0/8\n", "2: AllowedIPs: belongs in [Peer], not here" },
	{ "[Mesh]\nListenPort = 1\n", "2: ListenPort: belongs in [Interface], not here" },
	{ "Network = n1\n[Mesh]\n", "1: Network: outside a section ([Interface], [Peer] or [Mesh] first)" },
	/* One mesh per file. */
	{ MESH_HEAD "[Mesh]\n", "8: [Mesh]: a second [Mesh] section (one mesh per interface)" },
	{ "[Interface]\n" MESH_HEAD "Network = n1\nNode = a\n[Peer]\nPublicKey = %1$s\n[Mesh]\n",
	  "13: [Mesh]: a second [Mesh] section (one mesh per interface)" },
	/* A node's file names its network and itself; an administrator's need not. */
	{ "[Interface]\n" MESH_HEAD "Node = a\n", "2: [Mesh]: no Network (this node's network and its name in it)" },
	{ MESH_HEAD "Network = n1\n[Interface]\n", "1: [Mesh]: no Node (this node's network and its name in it)" },
};

/*
 * Mistakes that parse, refused with the other place named: a prefix under
 * two peers (the later would silently take it from the earlier), and a
 * prefix advertised as behind this node that a [Peer] holds too.
 * %1$s and %2$s: two public keys.
 */
static const struct bad_case meaning[] = {
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 10.0.0.0/24\n[Peer]\nPublicKey = %2$s\n"
	  "AllowedIPs = 10.9.0.0/16, 10.0.0.1/24\n",
	  "7: AllowedIPs: \"10.0.0.1/24\" is also under the [Peer] on line 2 (10.0.0.0/24); a prefix routes to "
	  "one peer" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = ::/0\n[Peer]\nPublicKey = %2$s\nAllowedIPs = ::0/0\n",
	  "7: AllowedIPs: \"::0/0\" is also under the [Peer] on line 2 (::/0); a prefix routes to one peer" },
	{ "[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 10.60.0.0/16\n" MESH_HEAD
	  "Network = n\nNode = a\nAdvertise = 10.60.1.0/24\n",
	  "14: Advertise: \"10.60.1.0/24\" overlaps AllowedIPs 10.60.0.0/16 of the [Peer] on line 2; what is behind "
	  "this node cannot be behind a peer too" },
	{ "[Interface]\n" MESH_HEAD "Network = n\nNode = a\nAdvertise = fd00:60::/48\n[Peer]\nPublicKey = %1$s\n"
	  "AllowedIPs = fd00:60:0:1::/64\n",
	  "14: AllowedIPs: \"fd00:60:0:1::/64\" overlaps Advertise fd00:60::/48 of the [Mesh] on line 2; what is behind "
	  "this node cannot be behind a peer too" },
};

/* And what looks alike but is fine: nested prefixes, a repeat in one peer, an exit through a peer. */
static const char *const fine[] = {
	"[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/8\n[Peer]\nPublicKey = %2$s\n"
	"AllowedIPs = 10.1.0.0/16\n",
	"[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 0.0.0.0/0, ::/0\n" MESH_HEAD
	"Network = n\nNode = a\nAdvertise = 192.168.1.0/24, fd00:1::/64\n",
	"[Interface]\n[Peer]\nPublicKey = %1$s\nAllowedIPs = 10.1.0.0/16\n" MESH_HEAD
	"Network = n\nNode = a\nAdvertise = 0.0.0.0/0\n",
};

static void test_meaning(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[1024], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(meaning) / sizeof(meaning[0]); i++) {
		snprintf(text, sizeof(text), meaning[i].text, pub1, pub2);
		snprintf(want, sizeof(want), PATH ":%s", meaning[i].msg);
		memset(&c, 0x5a, sizeof(c));
		if (parse(&c, &err, text) != -EINVAL)
			fail_msg("case %zu was not refused: %s", i, text);
		if (strcmp(err.msg, want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, want);
		assert_zeroed(&c);
	}
	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		snprintf(text, sizeof(text), fine[i], pub1, pub2);
		if (parse(&c, &err, text) != 0)
			fail_msg("fine case %zu refused: %s", i, err.msg);
		conf_free(&c);
	}
}

static void test_mesh_errors(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[1024], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_mesh) / sizeof(bad_mesh[0]); i++) {
		snprintf(text, sizeof(text), bad_mesh[i].text, pub1, priv);
		snprintf(want, sizeof(want), PATH ":%s", bad_mesh[i].msg);
		memset(&c, 0x5a, sizeof(c));
		if (parse(&c, &err, text) != -EINVAL)
			fail_msg("case %zu was not refused: %s", i, text);
		if (strcmp(err.msg, want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, want);
		assert_zeroed(&c);
	}
}

/* Registry URLs that are members: host and port, a name, no port, a trailing slash. */
static void test_mesh_registry_urls(void **state)
{
	static const char *const good[] = {
		"https://198.18.0.1:2379", "https://[2001:db8::1]:2379", "https://etcd1.example:2379/",
		"https://etcd1", "https://etcd_1.example", "HttpS://h:65535",
	};
	struct conf_error err;
	struct conf c;
	char text[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "%sRegistry = %s\n", MESH_HEAD, good[i]);
		if (parse(&c, &err, text))
			fail_msg("%s: %s", good[i], err.msg);
		assert_int_equal(c.mesh.n_registry, 2);
		assert_string_equal(c.mesh.registry[1], good[i]);
		conf_free(&c);
	}
}

/* RotateEvery: a duration in s, m, h, d or w (seconds without a unit), 10 s to 10 years. */
static void test_mesh_rotate_every(void **state)
{
	static const struct {
		const char *value;
		uint64_t seconds; /* 0: refused */
	} rows[] = {
		{ "30d", 2592000 },     { "12h", 43200 },      { "90m", 5400 },      { "2w", 1209600 },
		{ "10s", 10 },          { "10", 10 },          { "86400", 86400 },   { "3650d", 315360000 },
		{ "521w", 315100800 },  { "5256000m", 315360000 },
		{ "9s", 0 },            { "9", 0 },            { "0", 0 },           { "0d", 0 },
		{ "3651d", 0 },         { "522w", 0 },         { "315360001", 0 },   { "4294967296s", 0 },
		{ "99999999999999999999999d", 0 },
		{ "1y", 0 },            { "30D", 0 },          { "d", 0 },           { "30dd", 0 },
		{ "1.5d", 0 },          { "-5d", 0 },          { "+5d", 0 },         { "5 d", 0 },
		{ "0x10", 0 },          { "\"30d\"", 0 },
	};
	struct conf_error err;
	struct conf c;
	char text[1024], want[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* Lines: 1 [Interface], 2 PrivateKeyFile, 3-9 MESH_HEAD, 10 Network, 11 RotateEvery, 12 Node. */
		snprintf(text, sizeof(text), "[Interface]\nPrivateKeyFile = /k\n" MESH_HEAD "Network = n1\n"
			 "RotateEvery = %s\nNode = a\n", rows[i].value);
		memset(&c, 0x5a, sizeof(c));
		if (!rows[i].seconds) {
			snprintf(want, sizeof(want), PATH ":11: RotateEvery: \"%s\" is not a duration from 10s to "
				 "10 years (e.g. 30d, 12h, 90m)", rows[i].value);
			if (parse(&c, &err, text) != -EINVAL || strcmp(err.msg, want))
				fail_msg("\"%s\": \"%s\", want \"%s\"", rows[i].value, err.msg, want);
			assert_zeroed(&c);
			continue;
		}
		if (parse(&c, &err, text))
			fail_msg("\"%s\" refused: %s", rows[i].value, err.msg);
		if (c.mesh.rotate_every != rows[i].seconds)
			fail_msg("\"%s\": %llu s, want %llu", rows[i].value, (unsigned long long)c.mesh.rotate_every,
				 (unsigned long long)rows[i].seconds);
		assert_int_equal(c.mesh.rotate_every_line, 11);
		conf_free(&c);
	}
	/* None: no rotation on a schedule. */
	assert_int_equal(parse(&c, &err, "[Interface]\nPrivateKeyFile = /k\n" MESH_HEAD "Network = n1\nNode = a\n"), 0);
	assert_int_equal(c.mesh.rotate_every, 0);
	conf_free(&c);
}

/* The agent writes each scheduled key to the key file: no other key source takes RotateEvery. */
static void test_mesh_rotate_every_needs_file(void **state)
{
	static const struct {
		const char *text; /* %1$s: a private key */
		const char *msg;
	} rows[] = {
		{ "[Interface]\nPrivateKey = %1$s\n" MESH_HEAD "Network = n1\nNode = a\nRotateEvery = 30d\n", "12" },
		{ "[Interface]\nPrivateKeyCredential = wg.key\n" MESH_HEAD "Network = n1\nRotateEvery = 30d\nNode = a\n",
		  "11" },
		{ "[Interface]\nPrivateKeyCommand = pass show wg\n" MESH_HEAD "RotateEvery = 1h\nNetwork = n1\nNode = a\n",
		  "10" },
		/* [Mesh] before [Interface]: the line is RotateEvery's still, not the file's last. */
		{ MESH_HEAD "RotateEvery = 1h\nNetwork = n1\nNode = a\n[Interface]\nPrivateKey = %1$s\nListenPort = 1\n",
		  "8" },
		/* An administrator's file has no key at all. */
		{ MESH_HEAD "RotateEvery = 1h\n", "8" },
	};
	struct conf_error err;
	struct conf c;
	char text[1024], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(text, sizeof(text), rows[i].text, priv);
		snprintf(want, sizeof(want), PATH ":%s: RotateEvery: needs PrivateKeyFile (the agent writes each "
			 "new key there); with a credential or a command, rotate with veilctl mesh rotate", rows[i].msg);
		memset(&c, 0x5a, sizeof(c));
		if (parse(&c, &err, text) != -EINVAL || strcmp(err.msg, want))
			fail_msg("row %zu: \"%s\", want \"%s\"", i, err.msg, want);
		assert_zeroed(&c);
		/* Never the key in the message. */
		assert_null(strstr(err.msg, priv));
	}
	/* Given twice, or outside [Mesh]. */
	assert_int_equal(parse(&c, &err, "[Interface]\nPrivateKeyFile = /k\n" MESH_HEAD
				      "RotateEvery = 1d\nRotateEvery = 2d\nNetwork = n1\nNode = a\n"), -EINVAL);
	assert_string_equal(err.msg, PATH ":11: RotateEvery: given twice in one section");
	assert_int_equal(parse(&c, &err, "[Interface]\nPrivateKeyFile = /k\nRotateEvery = 1d\n"), -EINVAL);
	assert_string_equal(err.msg, PATH ":3: RotateEvery: belongs in [Mesh], not here");
}

/* A node's file cut at every byte: each piece parses or fails cleanly. */
static void test_mesh_every_prefix(void **state)
{
	struct conf_error err;
	struct conf c;
	char text[1024];
	size_t len, i;
	int parsed = 0;

	(void)state;
	snprintf(text, sizeof(text), "[Interface]\nPrivateKey = %s\n" MESH_HEAD "Network = n1\nNode = a\n"
		 "Advertise = 10.1.0.0/24, fd00::/64\nEndpoint = a.example:51820\n", priv);
	len = strlen(text);
	for (i = 0; i <= len; i++) {
		memset(&err, 0, sizeof(err));
		if (conf_parse(&c, PATH, text, i, &err) == 0) {
			parsed++;
			conf_free(&c);
			continue;
		}
		assert_zeroed(&c);
		assert_int_equal(strncmp(err.msg, PATH ":", strlen(PATH) + 1), 0);
		assert_null(strchr(err.msg, '\n'));
	}
	assert_true(parsed > 0);
}

/* ---- conf_load and conf_resolve_endpoints ---------------------------------------------------- */

static void test_load(void **state)
{
	char dir[] = "/tmp/veil-conf-XXXXXX", path[64];
	struct conf_error err;
	struct conf c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/site-a.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[Interface]\nPrivateKey = %s\nListenPort = 9\n", priv);
	fclose(f);
	assert_int_equal(conf_load(&c, path, &err), 0);
	assert_string_equal(c.name, "site-a");
	assert_string_equal(c.path, path);
	key_equal(c.private_key.key, priv);
	conf_free(&c);
	assert_int_equal(conf_load(&c, dir, &err), -EINVAL);
	snprintf(path, sizeof(path), "%s: not a regular file", dir);
	assert_string_equal(err.msg, path);
	assert_int_equal(conf_load(&c, "/nonexistent/wg0.conf", &err), -ENOENT);
	assert_string_equal(err.msg, "/nonexistent/wg0.conf: No such file or directory");
	assert_zeroed(&c);
	snprintf(path, sizeof(path), "%s/site-a.conf", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* Numeric endpoints only: a test must not depend on DNS. */
static void test_resolve(void **state)
{
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;
	struct conf_error err;
	struct conf c;
	char text[512];

	(void)state;
	snprintf(text, sizeof(text),
		 "[Interface]\n[Peer]\nPublicKey = %s\nEndpoint = 192.0.2.7:51820\n"
		 "[Peer]\nPublicKey = %s\nEndpoint = [2001:db8::9]:7\n[Peer]\nPublicKey = %s\n",
		 pub1, pub2, psk);
	assert_int_equal(parse(&c, &err, text), 0);
	assert_int_equal(conf_resolve_endpoints(&c, &err), 0);
	sin = (const struct sockaddr_in *)&c.peers[0].endpoint_addr;
	assert_int_equal(c.peers[0].endpoint_len, sizeof(*sin));
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 51820);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc0000207);
	sin6 = (const struct sockaddr_in6 *)&c.peers[1].endpoint_addr;
	assert_int_equal(c.peers[1].endpoint_len, sizeof(*sin6));
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 7);
	assert_int_equal(sin6->sin6_addr.s6_addr[15], 9);
	assert_int_equal(c.peers[2].endpoint_len, 0);
	conf_free(&c);
}

/* ---- the shared helpers ------------------------------------------------------------------- */

static void test_parse_prefix(void **state)
{
	static const char *const refused[] = {
		"",          "10.0.0.0/",  "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/ 8",
		"10.0.0.0/8 ", "10.0.0/8",    "host/24",     "1.2.3.4/8/8",   "10.0.0.0/033", "300.0.0.0/33",
		"/8",        "10.0.0.0/0x8", "[::1]/64",  "10.0.0.256",  "::1::2",
		"0123456789012345678901234567890123456789012345678901234567890/8",
	};
	static const char *const too_long[] = { "10.0.0.0/33", "::/129", "1.2.3.4/99999999999", "fd00::/200" };
	struct conf_prefix p;
	size_t i;

	(void)state;
	assert_int_equal(conf_parse_prefix("10.1.2.3/8", &p), 0);
	assert_int_equal(p.family, AF_INET);
	assert_prefix(&p, "10.1.2.3", 8); /* host bits kept */
	assert_int_equal(conf_parse_prefix("fd00::1", &p), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_prefix(&p, "fd00::1", 128);
	assert_int_equal(conf_parse_prefix("::/0", &p), 0);
	assert_int_equal(p.cidr, 0);
	assert_int_equal(conf_parse_prefix("0.0.0.0/0", &p), 0);
	assert_int_equal(p.cidr, 0);
	assert_int_equal(conf_parse_prefix("1.2.3.4/32", &p), 0);
	assert_int_equal(p.cidr, 32);
	assert_int_equal(conf_parse_prefix("::ffff:1.2.3.4/128", &p), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.cidr, 128);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (conf_parse_prefix(refused[i], &p) != -EINVAL)
			fail_msg("\"%s\" was taken for a prefix", refused[i]);
	/* An address with a length past its family's: out of range, not garbage. */
	for (i = 0; i < sizeof(too_long) / sizeof(too_long[0]); i++)
		if (conf_parse_prefix(too_long[i], &p) != -ERANGE)
			fail_msg("\"%s\" is not said out of range", too_long[i]);
}

static void test_parse_key(void **state)
{
	static const char *const refused[] = {
		"",
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg",   /* no padding */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dh=",  /* stray bits in the last digit */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg==", /* too long */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D==",  /* 31 bytes */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg= ", /* trailing space */
		" xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp-Dg=",  /* URL-safe alphabet */
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp_Dg=",
		"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZ.p8Dg=",
	};
	static const uint8_t want[32] = {
		0xc5, 0x32, 0x01, 0x03, 0x9a, 0xdb, 0xa1, 0x4b, 0xe7, 0x1f, 0x88, 0x6d, 0xa1, 0xd8, 0xdb, 0xe9,
		0xee, 0xbd, 0xed, 0x08, 0xcb, 0x11, 0x1b, 0x75, 0x34, 0x00, 0x78, 0x99, 0x9a, 0xa9, 0xf0, 0x38,
	};
	uint8_t k[32], untouched[32];
	size_t i;

	(void)state;
	assert_int_equal(conf_parse_key(pub1, k), 0);
	assert_memory_equal(k, want, 32);
	memset(k, 0xa5, sizeof(k));
	memset(untouched, 0xa5, sizeof(untouched));
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (conf_parse_key(refused[i], k) != -EINVAL)
			fail_msg("\"%s\" was taken for a key", refused[i]);
		assert_memory_equal(k, untouched, 32); /* out is written only on success */
	}
}

static void test_valid_ifname(void **state)
{
	(void)state;
	assert_true(conf_valid_ifname("wg0"));
	assert_true(conf_valid_ifname("a_b=c+d.e-f"));
	assert_true(conf_valid_ifname("fifteen-chars-x"));
	assert_true(conf_valid_ifname("x"));
	assert_false(conf_valid_ifname(""));
	assert_false(conf_valid_ifname("sixteen-chars-xx"));
	assert_false(conf_valid_ifname("a/b"));
	assert_false(conf_valid_ifname("a b"));
	assert_false(conf_valid_ifname("a:b"));
	assert_false(conf_valid_ifname("wg\xc3\xa9"));
	assert_false(conf_valid_ifname("."));
	assert_false(conf_valid_ifname(".."));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_sources_and_words),
		cmocka_unit_test(test_table_words),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_no_secret_in_messages),
		cmocka_unit_test(test_file_level),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_every_prefix_of_a_file),
		cmocka_unit_test(test_mesh_every_key),
		cmocka_unit_test(test_mesh_only),
		cmocka_unit_test(test_mesh_missing),
		cmocka_unit_test(test_mesh_errors),
		cmocka_unit_test(test_meaning),
		cmocka_unit_test(test_mesh_registry_urls),
		cmocka_unit_test(test_mesh_rotate_every),
		cmocka_unit_test(test_mesh_rotate_every_needs_file),
		cmocka_unit_test(test_mesh_every_prefix),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_parse_prefix),
		cmocka_unit_test(test_parse_key),
		cmocka_unit_test(test_valid_ifname),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
