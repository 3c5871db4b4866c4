// SPDX-License-Identifier: MIT
/*
 * veilctl up, down and reload.
 *
 * A configuration becomes a plan: the addresses, routes and policy rules
 * the interface should have. `up` starts veild (or finds it running),
 * hands it keys and peers over the control socket, and applies the plan
 * through rtnetlink, writing down in VEIL_STATE_DIR/IFNAME.state every
 * item it really created (an address or route that already existed is
 * not ours and stays). `down` undoes exactly what that file lists.
 * `reload` sends veild only what changed (syncconf) and applies the
 * difference between the new plan and the state, so unchanged peers keep
 * their sessions. Any failure during `up` undoes what was done so far.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/rtnetlink.h>
#include <sodium.h>

#include "conf.h"
#include "ctl.h"
#include "keys.h"
#include "meshctl.h"
#include "nl.h"
#include "notify.h"
#include "veil.h"
#include "up.h"

enum {
	FULL_TUNNEL_TABLE = 51820, /* the first table (and fwmark) tried, as wg-quick */
	DAEMON_WAIT_MS = 10000,
	STATE_ITEMS_MAX = 4096,
	RULE_PRIO_SUPPRESS = 32764, /* main without its default route */
	RULE_PRIO_TUNNEL = 32765,   /* the tunnel's table for unmarked packets */
};

#define SRC_VALID_MARK "/proc/sys/net/ipv4/conf/all/src_valid_mark"

enum item_kind { ITEM_ADDR, ITEM_ROUTE, ITEM_RULE };

struct item {
	enum item_kind kind;
	struct conf_prefix p;  /* ADDR, ROUTE */
	uint32_t table;        /* ROUTE */
	struct nl_rule rule;   /* RULE */
};

/* What up did, as the state file records it. */
struct state {
	bool daemon_started;   /* up started veild: down deletes the link, which stops it */
	bool fwmark_set;       /* up set the fwmark for a full tunnel */
	bool src_valid_mark;   /* up turned src_valid_mark on (it was off) */
	bool dns;              /* up registered DNS with resolvconf */
	pid_t mesh_agent;      /* the [Mesh] agent up started; 0: none */
	struct item *items;
	size_t n;
};

/* ---- small helpers ---------------------------------------------------------------- */

static void err_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void err_line(const char *fmt, ...)
{
	va_list ap;

	fputs("veilctl: ", stderr);
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool same_prefix(const struct conf_prefix *a, const struct conf_prefix *b)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && a->cidr == b->cidr && !memcmp(a->addr, b->addr, len);
}

static void mask_prefix(struct conf_prefix *p)
{
	size_t len = p->family == AF_INET ? 4 : 16, i;

	for (i = 0; i < len; i++) {
		unsigned int bits = p->cidr > i * 8 ? p->cidr - (unsigned int)i * 8 : 0;

		if (bits < 8)
			p->addr[i] &= (uint8_t)(0xff00 >> bits);
	}
}

static void prefix_str(const struct conf_prefix *p, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(out, len, "%s/%u", a, p->cidr);
}

static bool same_rule(const struct nl_rule *a, const struct nl_rule *b)
{
	return a->family == b->family && a->priority == b->priority && a->table == b->table &&
	       a->has_fwmark == b->has_fwmark && a->fwmark == b->fwmark && a->invert == b->invert &&
	       a->suppress_prefixlen == b->suppress_prefixlen;
}

static bool same_item(const struct item *a, const struct item *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == ITEM_RULE)
		return same_rule(&a->rule, &b->rule);
	return same_prefix(&a->p, &b->p) && (a->kind == ITEM_ADDR || a->table == b->table);
}

static int push_item(struct state *s, const struct item *it)
{
	struct item *n;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (same_item(&s->items[i], it))
			return 0;
	if (s->n >= STATE_ITEMS_MAX)
		return -E2BIG;
	n = realloc(s->items, (s->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->items = n;
	s->items[s->n++] = *it;
	return 0;
}

static void state_free(struct state *s)
{
	free(s->items);
	memset(s, 0, sizeof(*s));
}

/* Parse, read the keys, resolve the endpoints: all before anything is touched. */
static int load_conf(const char *arg, struct conf *c, bool need_keys)
{
	struct conf_error err = { "" };
	char path[PATH_MAX];
	int ret;

	conf_path(arg, path, sizeof(path));
	ret = conf_load(c, path, &err);
	if (!ret && need_keys)
		ret = keys_load(c, &err);
	if (!ret && need_keys)
		ret = conf_resolve_endpoints(c, &err);
	if (ret) {
		fprintf(stderr, "veilctl: %s\n", err.msg);
		conf_free(c);
		return ret;
	}
	if (need_keys && !c->private_key.key) {
		err_line("%s: [Interface] has no PrivateKey (or PrivateKeyFile, PrivateKeyCredential, "
			 "PrivateKeyCommand)", c->path);
		conf_free(c);
		return -EINVAL;
	}
	return 0;
}

/* ---- the state file ----------------------------------------------------------------- */

static void state_path(const char *ifname, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.state", VEIL_STATE_DIR, ifname);
}

static void write_item(FILE *f, const struct item *it)
{
	char p[64];

	switch (it->kind) {
	case ITEM_ADDR:
		prefix_str(&it->p, p, sizeof(p));
		fprintf(f, "addr %s\n", p);
		break;
	case ITEM_ROUTE:
		prefix_str(&it->p, p, sizeof(p));
		fprintf(f, "route %u %s\n", it->table, p);
		break;
	case ITEM_RULE:
		fprintf(f, "rule %d %u %u %d %u %d %d\n", it->rule.family == AF_INET ? 4 : 6,
			it->rule.priority, it->rule.table, it->rule.has_fwmark, it->rule.fwmark,
			it->rule.invert, it->rule.suppress_prefixlen);
		break;
	}
}

/* Written to a temporary file and renamed, so a crash never leaves half a state. */
static int state_write(const char *ifname, const struct state *s)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	size_t i;

	if (mkdir(VEIL_STATE_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	state_path(ifname, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "# veilctl: what 'veilctl up' did to %s; 'veilctl down' undoes it\n", ifname);
	fprintf(f, "daemon %d\nfwmark %d\nsrc_valid_mark %d\ndns %d\n", s->daemon_started,
		s->fwmark_set, s->src_valid_mark, s->dns);
	if (s->mesh_agent)
		fprintf(f, "mesh_agent %d\n", (int)s->mesh_agent);
	for (i = 0; i < s->n; i++)
		write_item(f, &s->items[i]);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* The next space-separated number of a state line; false when there is none. */
static bool next_num(char **p, long min, long max, long *out)
{
	char *end;

	while (**p == ' ')
		(*p)++;
	errno = 0;
	*out = strtol(*p, &end, 10);
	if (end == *p || errno || *out < min || *out > max || (*end != ' ' && *end != '\n' && *end))
		return false;
	*p = end;
	return true;
}

static int read_rule(char *p, struct item *it)
{
	long v[7];
	int i;

	for (i = 0; i < 7; i++)
		if (!next_num(&p, i == 6 ? -1 : 0, UINT32_MAX, &v[i]))
			return -EINVAL;
	it->kind = ITEM_RULE;
	it->rule = (struct nl_rule){ .family = v[0] == 4 ? AF_INET : AF_INET6,
				     .priority = (uint32_t)v[1], .table = (uint32_t)v[2],
				     .has_fwmark = v[3] != 0, .fwmark = (uint32_t)v[4],
				     .invert = v[5] != 0, .suppress_prefixlen = (int)v[6] };
	return 0;
}

/* "addr P", "route TABLE P" or "rule ..." (write_item's lines). */
static int read_item(char *line, struct item *it)
{
	char *p, *word = line;
	long table;

	memset(it, 0, sizeof(*it));
	line[strcspn(line, "\n")] = '\0';
	p = strchr(line, ' ');
	if (!p)
		return -EINVAL;
	*p++ = '\0';
	if (!strcmp(word, "addr")) {
		it->kind = ITEM_ADDR;
		return conf_parse_prefix(p, &it->p);
	}
	if (!strcmp(word, "route") && next_num(&p, 0, UINT32_MAX, &table) && *p == ' ') {
		it->kind = ITEM_ROUTE;
		it->table = (uint32_t)table;
		return conf_parse_prefix(p + 1, &it->p);
	}
	if (!strcmp(word, "rule"))
		return read_rule(p, it);
	return -EINVAL;
}

/* "daemon 1" and the like: a flag of the state. */
static bool read_flag(const char *line, const char *name, bool *flag)
{
	size_t n = strlen(name);

	if (strncmp(line, name, n) != 0 || line[n] != ' ')
		return false;
	*flag = line[n + 1] == '1';
	return true;
}

static int state_read(const char *ifname, struct state *s)
{
	char path[PATH_MAX], line[256];
	int ret = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	state_path(ifname, path, sizeof(path));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		struct item it;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (read_flag(line, "daemon", &s->daemon_started) || read_flag(line, "fwmark", &s->fwmark_set) ||
		    read_flag(line, "src_valid_mark", &s->src_valid_mark) || read_flag(line, "dns", &s->dns))
			continue;
		if (!strncmp(line, "mesh_agent ", 11)) {
			s->mesh_agent = (pid_t)strtol(line + 11, NULL, 10);
			continue;
		}
		if (!(ret = read_item(line, &it)))
			ret = push_item(s, &it);
	}
	fclose(f);
	if (ret) {
		err_line("%s: unreadable state file (remove it once the interface is cleaned up by hand)",
			 path);
		state_free(s);
	}
	return ret;
}

static void state_remove(const char *ifname)
{
	char path[PATH_MAX];

	state_path(ifname, path, sizeof(path));
	unlink(path);
}

/* ---- the plan ------------------------------------------------------------------------- */

static bool is_default(const struct conf_prefix *p)
{
	return p->cidr == 0;
}

/* A full tunnel (AllowedIPs 0.0.0.0/0 or ::/0 with Table = auto) needs its own table. */
static bool full_tunnel(const struct conf *c, int family)
{
	size_t i, j;

	if (c->table != TABLE_AUTO)
		return false;
	for (i = 0; i < c->n_peers; i++)
		for (j = 0; j < c->peers[i].n_allowed_ips; j++)
			if (c->peers[i].allowed_ips[j].family == family &&
			    is_default(&c->peers[i].allowed_ips[j]))
				return true;
	return false;
}

static int add_rules(struct state *plan, int family, uint32_t table)
{
	struct item it = { .kind = ITEM_RULE };
	int ret;

	/*
	 * Everything not marked as the tunnel's own packets looks in the tunnel's
	 * table... The priorities are explicit (where wg-quick's rules land, just
	 * before main's 32766) because a rule added without one gets a fresh
	 * priority each time: NLM_F_EXCL would never see a duplicate, and an up
	 * after a lost state file would stack a second pair.
	 */
	it.rule = (struct nl_rule){ .family = family, .priority = RULE_PRIO_TUNNEL, .table = table,
				    .has_fwmark = true, .fwmark = table, .invert = true,
				    .suppress_prefixlen = -1 };
	ret = push_item(plan, &it);
	/* ...but the main table's specific routes (not its default) win first. */
	it.rule = (struct nl_rule){ .family = family, .priority = RULE_PRIO_SUPPRESS,
				    .table = RT_TABLE_MAIN, .suppress_prefixlen = 0 };
	return ret ? ret : push_item(plan, &it);
}

/* Addresses, routes and rules the configuration asks for. table: the full-tunnel table. */
static int make_plan(const struct conf *c, uint32_t table, struct state *plan)
{
	struct item it;
	size_t i, j;
	int ret = 0;

	memset(plan, 0, sizeof(*plan));
	for (i = 0; !ret && i < c->n_addresses; i++) {
		it = (struct item){ .kind = ITEM_ADDR, .p = c->addresses[i] };
		ret = push_item(plan, &it);
	}
	for (i = 0; !ret && c->table != TABLE_OFF && i < c->n_peers; i++) {
		for (j = 0; !ret && j < c->peers[i].n_allowed_ips; j++) {
			it = (struct item){ .kind = ITEM_ROUTE, .p = c->peers[i].allowed_ips[j] };
			mask_prefix(&it.p);
			if (c->table == TABLE_ID)
				it.table = c->table_id;
			else
				it.table = is_default(&it.p) ? table : RT_TABLE_MAIN;
			ret = push_item(plan, &it);
		}
	}
	if (!ret && full_tunnel(c, AF_INET))
		ret = add_rules(plan, AF_INET, table);
	if (!ret && full_tunnel(c, AF_INET6))
		ret = add_rules(plan, AF_INET6, table);
	if (ret)
		state_free(plan);
	return ret;
}

/* The full tunnel's table and fwmark: the configured FwMark, else the first free from 51820. */
static int pick_table(struct nl *nl, const struct conf *c, uint32_t *table)
{
	bool used4 = true, used6 = true;
	int ret, tries;

	if (c->has_fwmark && c->fwmark) {
		*table = c->fwmark;
		return 0;
	}
	for (tries = 0, *table = FULL_TUNNEL_TABLE; tries < 1000; tries++, (*table)++) {
		ret = nl_table_used(nl, AF_INET, *table, &used4);
		if (!ret)
			ret = nl_table_used(nl, AF_INET6, *table, &used6);
		if (ret)
			return ret;
		if (!used4 && !used6)
			return 0;
	}
	return -ENOSPC;
}

/* ---- applying items --------------------------------------------------------------------- */

static int apply_item(struct nl *nl, unsigned int ifindex, const struct item *it, bool add)
{
	switch (it->kind) {
	case ITEM_ADDR:
		return nl_addr(nl, add, ifindex, &it->p);
	case ITEM_ROUTE:
		return nl_route(nl, add, ifindex, it->table, &it->p);
	case ITEM_RULE:
		return nl_rule(nl, add, &it->rule);
	}
	return -EINVAL;
}

static void describe(const struct item *it, char *out, size_t len)
{
	char p[64];

	switch (it->kind) {
	case ITEM_ADDR:
		prefix_str(&it->p, p, sizeof(p));
		snprintf(out, len, "address %s", p);
		break;
	case ITEM_ROUTE:
		prefix_str(&it->p, p, sizeof(p));
		snprintf(out, len, "route %s (table %u)", p, it->table);
		break;
	case ITEM_RULE:
		snprintf(out, len, "IPv%d rule %s%s table %u", it->rule.family == AF_INET ? 4 : 6,
			 it->rule.has_fwmark ? (it->rule.invert ? "not fwmark " : "fwmark ") : "",
			 it->rule.suppress_prefixlen >= 0 ? "suppress_prefixlength 0" : "",
			 it->rule.table);
		break;
	}
}

/*
 * Add one planned item; record it in done only if we created it. An item
 * that already exists (a route the kernel made for an address, say) is
 * not ours, and down must leave it.
 */
static int add_item(struct nl *nl, unsigned int ifindex, const struct item *it, struct state *done)
{
	char what[128];
	int ret = apply_item(nl, ifindex, it, true);

	if (ret == -EEXIST)
		return 0;
	if (ret) {
		describe(it, what, sizeof(what));
		err_line("cannot add %s: %s", what, strerror(-ret));
		return ret;
	}
	return push_item(done, it);
}

/* Remove what we created, newest first; what is already gone is fine. */
static void remove_items(struct nl *nl, unsigned int ifindex, struct state *done)
{
	char what[128];

	while (done->n) {
		const struct item *it = &done->items[done->n - 1];
		int ret = apply_item(nl, ifindex, it, false);

		if (ret && ret != -ENOENT && ret != -ESRCH && ret != -EADDRNOTAVAIL && ret != -ENODEV) {
			describe(it, what, sizeof(what));
			err_line("cannot remove %s: %s", what, strerror(-ret));
		}
		done->n--;
	}
}

/* ---- the daemon, hooks, DNS ----------------------------------------------------------------- */

static void daemon_path(char *out, size_t len)
{
	char self[PATH_MAX - 32];
	const char *env = getenv("VEILD");
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	/* Next to veilctl (a build tree), or in ../sbin (an installed prefix). */
	n = readlink("/proc/self/exe", self, sizeof(self) - 32); /* room for "/../sbin/veild" */
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/veild", self);
			if (access(out, X_OK) == 0)
				return;
			snprintf(out, len, "%s/../sbin/veild", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "veild"); /* from PATH */
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Run a child to its end, at most limit_ms; 0 if it exited 0. */
static int wait_child(pid_t pid, long limit_ms)
{
	long waited;
	int status;

	for (waited = 0; waited <= limit_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
		if (r < 0)
			return -errno;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -ETIMEDOUT;
}

/*
 * Who veild runs as once set up: VEIL_DAEMON_USER, or "nobody" when that
 * account does not exist (a source build run before make install), or
 * root when neither does; NULL leaves it to veild (VEIL_USER, or root).
 * "nobody" is still far from root: veild keeps only its network
 * capabilities, cannot open files or signal anyone but itself, and is not
 * dumpable, so no other process of that uid can read its memory.
 */
static const char *daemon_user(const char *ifname)
{
	if (getenv("VEIL_USER"))
		return NULL;
	if (getpwnam(VEIL_DAEMON_USER))
		return VEIL_DAEMON_USER;
	if (getpwnam("nobody")) {
		err_line("warning: %s: no account %s (the Debian package and 'make install' create "
			 "it): veild runs as nobody", ifname, VEIL_DAEMON_USER);
		return "nobody";
	}
	err_line("warning: %s: neither %s nor nobody exists: veild runs as root (create %s: "
		 "useradd --system --no-create-home --shell /usr/sbin/nologin %s)", ifname,
		 VEIL_DAEMON_USER, VEIL_DAEMON_USER, VEIL_DAEMON_USER);
	return NULL;
}

/* veild forks into the background and its parent exits 0 once the interface is ready. */
static int start_daemon(const char *ifname)
{
	const char *user = daemon_user(ifname);
	char path[PATH_MAX];
	pid_t pid;
	int ret;

	daemon_path(path, sizeof(path));
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (user)
			execlp(path, "veild", "--user", user, ifname, (char *)NULL);
		else
			execlp(path, "veild", ifname, (char *)NULL);
		fprintf(stderr, "veilctl: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	ret = wait_child(pid, DAEMON_WAIT_MS);
	if (ret) {
		char where[256];

		/* Before it goes to the background veild writes to our stderr; after, to its log. */
		ctl_log_where(ifname, where, sizeof(where));
		err_line("veild did not start for %s (%s); its reason is above, or in its log: %s", ifname,
			 ret == -ETIMEDOUT ? "no answer in 10 s" : "it failed", where);
	}
	return ret;
}

/*
 * Delete the link: veild sees its TUN device go and stops. Wait for it to
 * stop answering; then remove its socket, which a veild that dropped root
 * cannot do itself (the directory is root's). Only a socket nobody listens
 * on goes: one that answers, or that cannot be asked, stays.
 */
static void stop_daemon(struct nl *nl, const char *ifname)
{
	char why[256], path[sizeof(CTL_SOCKET_DIR) + 32];
	unsigned int ifindex;
	int i, fd;

	if (nl_link_index(nl, ifname, &ifindex) == 0)
		nl_link_delete(nl, ifindex);
	for (i = 0; i < 300 && ctl_running(ifname); i++)
		sleep_ms(10);
	if (ctl_connect(ifname, &fd, why, sizeof(why)) == -ECONNREFUSED) {
		snprintf(path, sizeof(path), "%s/%s.sock", CTL_SOCKET_DIR, ifname);
		unlink(path);
	} else if (fd >= 0) {
		close(fd);
	}
}

/* A hook is a shell command, as in wg-quick; %i is the interface name. */
static int run_hook(const char *cmd, const char *ifname)
{
	char buf[CONF_LINE_MAX * 2];
	size_t o = 0;
	pid_t pid;
	int status;

	for (; *cmd && o + 16 < sizeof(buf); cmd++) {
		if (cmd[0] == '%' && cmd[1] == 'i') {
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", ifname);
			cmd++;
		} else {
			buf[o++] = *cmd;
		}
	}
	buf[o] = '\0';
	printf("[veilctl] %s\n", buf);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", buf, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		err_line("hook failed: %s", buf);
		return -ECHILD;
	}
	return 0;
}

static int run_hooks(const struct conf_hooks *h, const char *ifname)
{
	size_t i;
	int ret;

	for (i = 0; i < h->n; i++) {
		ret = run_hook(h->cmd[i], ifname);
		if (ret)
			return ret;
	}
	return 0;
}

static bool in_path(const char *prog, char *out, size_t len)
{
	const char *dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(out, len, "%s/%s", dirs[i], prog);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static bool is_ip(const char *s)
{
	uint8_t b[16];

	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* resolvconf -a|-d tun.IFNAME, fed nameserver and search lines on stdin. */
static int resolvconf(const struct conf *c, const char *ifname, bool add)
{
	char prog[64], name[32];
	int fds[2], status;
	pid_t pid;
	FILE *f;
	size_t i;

	if (!in_path("resolvconf", prog, sizeof(prog)))
		return -ENOENT;
	snprintf(name, sizeof(name), "tun.%s", ifname);
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fds[0], 0);
		execl(prog, "resolvconf", add ? "-a" : "-d", name, "-m", "0", "-x", (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	f = fdopen(fds[1], "w");
	for (i = 0; add && f && i < c->n_dns; i++)
		fprintf(f, "%s %s\n", is_ip(c->dns[i]) ? "nameserver" : "search", c->dns[i]);
	if (f)
		fclose(f);
	else
		close(fds[1]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD;
	return 0;
}

static int read_sysctl(const char *path, int *value)
{
	FILE *f = fopen(path, "re");
	char line[32];
	int ret = -EIO;

	if (!f)
		return -errno;
	if (fgets(line, sizeof(line), f)) {
		*value = (int)strtol(line, NULL, 10);
		ret = 0;
	}
	fclose(f);
	return ret;
}

static int write_sysctl(const char *path, int value)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%d\n", value) > 0 ? 0 : -EIO;
	return fclose(f) == 0 ? ret : -EIO;
}

/*
 * Under systemd (Type=notify): the tunnel is up. veild, when it went to the
 * background, already named itself the main process (MAINPID); the barrier
 * keeps us alive until systemd has read this, since it would drop a
 * message from a process that is gone.
 */
static void notify_ready(const char *ifname, size_t peers)
{
	char msg[96];
	int ret;

	if (!notify_wanted())
		return;
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s is up (%zu peer%s)\n", ifname, peers, peers == 1 ? "" : "s");
	ret = notify_send(msg);
	if (!ret)
		ret = notify_barrier(5000);
	if (ret)
		fprintf(stderr, "veilctl: %s: cannot tell systemd the tunnel is up: %s\n", ifname,
			strerror(-ret));
}

/*
 * Undo what a state file lists (the mesh agent, addresses, routes, rules,
 * DNS, src_valid_mark), then stop the daemon up started, or take the link
 * down under one it did not. Needs nothing of the configuration file: down
 * works from the state alone, and up clears a stale state with it. Returns
 * whether a daemon that up did not start was left running.
 */
static bool undo_state(struct nl *nl, const char *ifname, struct state *s)
{
	unsigned int ifindex = 0;

	meshctl_stop(s->mesh_agent);
	nl_link_index(nl, ifname, &ifindex);
	remove_items(nl, ifindex, s);
	if (s->dns)
		resolvconf(NULL, ifname, false);
	if (s->src_valid_mark)
		write_sysctl(SRC_VALID_MARK, 0);
	if (s->daemon_started) {
		stop_daemon(nl, ifname);
		return false;
	}
	if (ifindex)
		nl_link_set_up(nl, ifindex, false);
	return ctl_running(ifname);
}

/* ---- up ----------------------------------------------------------------------------------- */

struct up_ctx {
	struct conf c;
	struct nl *nl;
	unsigned int ifindex;
	uint32_t table;
	struct state plan, done;
};

static bool wants_aes(const struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (c->peers[i].cipher == CIPHER_AES256GCM)
			return true;
	return false;
}

static int send_config(struct up_ctx *u)
{
	struct sbuf req = { 0 };
	char why[256] = "";
	int ret;

	ret = ctl_build_setconf(&u->c, &req);
	if (!ret)
		ret = ctl_set(u->c.name, &req, why, sizeof(why));
	sbuf_free(&req);
	if (!ret && u->done.fwmark_set) {
		sbuf_printf(&req, "set=1\nfwmark=%u\n\n", u->table);
		ret = req.failed ? -ENOMEM : ctl_set(u->c.name, &req, why, sizeof(why));
		sbuf_free(&req);
	}
	if (ret)
		err_line("%s: the daemon refused the configuration: %s%s%s%s", u->c.name,
			 strerror(-ret), why[0] ? ": " : "", why,
			 ret == -EINVAL && wants_aes(&u->c)
				 ? " (Cipher = aes256gcm is veild's own: only veild takes it, and only "
				   "on a CPU with AES instructions)"
				 : "");
	else
		ret = ctl_send_extensions(u->c.name, &u->c, CTL_EXT_METRICS | CTL_EXT_PEERS);
	return ret;
}

static int full_tunnel_extras(struct up_ctx *u)
{
	int v = 1, ret;

	if (!full_tunnel(&u->c, AF_INET) && !full_tunnel(&u->c, AF_INET6))
		return 0;
	u->done.fwmark_set = !(u->c.has_fwmark && u->c.fwmark);
	if (!full_tunnel(&u->c, AF_INET))
		return 0;
	/* Replies to the tunnel's marked packets must pass reverse-path filtering. */
	if (read_sysctl(SRC_VALID_MARK, &v) == 0 && v == 0) {
		ret = write_sysctl(SRC_VALID_MARK, 1);
		if (ret) {
			err_line("cannot set %s: %s", SRC_VALID_MARK, strerror(-ret));
			return ret;
		}
		u->done.src_valid_mark = true;
	}
	return 0;
}

static int apply_link(struct up_ctx *u)
{
	size_t i;
	int ret;

	ret = nl_link_index(u->nl, u->c.name, &u->ifindex);
	if (ret) {
		err_line("%s: no such link after veild started: %s", u->c.name, strerror(-ret));
		return ret;
	}
	if (u->c.has_mtu) {
		ret = nl_link_set_mtu(u->nl, u->ifindex, u->c.mtu);
		if (ret) {
			err_line("%s: cannot set MTU %u: %s", u->c.name, u->c.mtu, strerror(-ret));
			return ret;
		}
	}
	/* Addresses first (routes may need them), then the link up, then routes and rules. */
	for (i = 0; i < u->plan.n; i++)
		if (u->plan.items[i].kind == ITEM_ADDR &&
		    (ret = add_item(u->nl, u->ifindex, &u->plan.items[i], &u->done)))
			return ret;
	ret = nl_link_set_up(u->nl, u->ifindex, true);
	if (ret) {
		err_line("%s: cannot set the link up: %s", u->c.name, strerror(-ret));
		return ret;
	}
	for (i = 0; i < u->plan.n; i++)
		if (u->plan.items[i].kind != ITEM_ADDR &&
		    (ret = add_item(u->nl, u->ifindex, &u->plan.items[i], &u->done)))
			return ret;
	return 0;
}

static void apply_dns(struct up_ctx *u)
{
	int ret;

	if (!u->c.n_dns)
		return;
	ret = resolvconf(&u->c, u->c.name, true);
	if (ret == -ENOENT)
		fprintf(stderr, "veilctl: warning: %s: DNS is not applied: resolvconf is not installed\n",
			u->c.path);
	else if (ret)
		fprintf(stderr, "veilctl: warning: %s: resolvconf failed; DNS is not applied\n", u->c.path);
	else
		u->done.dns = true;
}

/* Undo, newest first, whatever up managed before it failed. */
static void roll_back(struct up_ctx *u)
{
	meshctl_stop(u->done.mesh_agent);
	remove_items(u->nl, u->ifindex, &u->done);
	if (u->done.dns)
		resolvconf(&u->c, u->c.name, false);
	if (u->done.src_valid_mark)
		write_sysctl(SRC_VALID_MARK, 0);
	if (u->done.daemon_started)
		stop_daemon(u->nl, u->c.name);
	state_remove(u->c.name);
}

/*
 * A state file with no daemon behind it: the interface was deleted (ip link
 * del, a documented way to stop veild) or its daemon died. What is left of
 * it (policy rules, DNS, src_valid_mark, a socket file, the agent) is
 * undone, and up starts afresh. 0, or -EEXIST when it is really up.
 */
static int clear_stale(struct up_ctx *u)
{
	struct state old;

	if (state_read(u->c.name, &old) != 0)
		return 0;
	if (ctl_running(u->c.name)) {
		state_free(&old);
		err_line("%s is already up (veilctl down %s first, or veilctl reload %s)", u->c.name,
			 u->c.name, u->c.name);
		return -EEXIST;
	}
	err_line("%s: %s/%s.state is left from an earlier up whose daemon is gone (ip link del, or it "
		 "died): what is left of it is undone, and %s comes up afresh", u->c.name, VEIL_STATE_DIR,
		 u->c.name, u->c.name);
	undo_state(u->nl, u->c.name, &old);
	state_remove(u->c.name);
	state_free(&old);
	return 0;
}

static int do_up(struct up_ctx *u)
{
	int ret;

	ret = nl_open(&u->nl);
	if (ret) {
		err_line("cannot open rtnetlink: %s", strerror(-ret));
		return ret;
	}
	ret = clear_stale(u);
	if (ret)
		return ret;
	ret = pick_table(u->nl, &u->c, &u->table);
	if (!ret)
		ret = make_plan(&u->c, u->table, &u->plan);
	if (ret) {
		err_line("%s: cannot plan routes: %s", u->c.name, strerror(-ret));
		return ret;
	}
	ret = run_hooks(&u->c.pre_up, u->c.name);
	if (ret)
		return ret;
	if (!ctl_running(u->c.name)) {
		ret = start_daemon(u->c.name);
		if (ret)
			return ret;
		u->done.daemon_started = true;
	}
	ret = full_tunnel_extras(u);
	if (!ret)
		ret = send_config(u);
	if (!ret)
		ret = apply_link(u);
	/* The mesh's peers come once the interface is whole (its key is what the agent publishes). */
	if (!ret && u->c.mesh.line)
		ret = meshctl_start(&u->c, &u->done.mesh_agent);
	if (!ret) {
		apply_dns(u);
		ret = state_write(u->c.name, &u->done);
	}
	if (!ret)
		ret = run_hooks(&u->c.post_up, u->c.name);
	if (ret)
		roll_back(u);
	return ret;
}

int cmd_up(int argc, char **argv)
{
	struct up_ctx u = { 0 };
	int ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: veilctl up NAME|FILE\n");
		return 1;
	}
	if (load_conf(argv[1], &u.c, true))
		return 1;
	ret = do_up(&u);
	if (u.nl)
		nl_close(u.nl);
	state_free(&u.plan);
	state_free(&u.done);
	if (!ret) {
		printf("veilctl: %s is up (%zu peer%s)\n", u.c.name, u.c.n_peers, u.c.n_peers == 1 ? "" : "s");
		notify_ready(u.c.name, u.c.n_peers);
	}
	conf_free(&u.c);
	return ret ? 1 : 0;
}

/* ---- down --------------------------------------------------------------------------------- */

static bool is_header(const char *line, const char *name)
{
	while (*line == ' ' || *line == '\t')
		line++;
	return strncasecmp(line, name, strlen(name)) == 0;
}

/*
 * The file without its [Peer] sections, as written: [Interface], [Mesh]
 * and what comes before them (it may hold a key: locked memory).
 */
static int read_head(const char *path, struct sbuf *out)
{
	char line[CONF_LINE_MAX + 2];
	FILE *f = fopen(path, "re");
	bool in_peer = false;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (is_header(line, "["))
			in_peer = is_header(line, "[Peer]");
		if (!in_peer)
			sbuf_printf(out, "%s", line);
	}
	sodium_memzero(line, sizeof(line));
	fclose(f);
	return out->failed ? -ENOMEM : 0;
}

/* Leave out the mesh agent's peers: they come from the registry, not from a file. */
static void hide_mesh_peers(const struct conf *c, struct ctl_device *dev)
{
	uint8_t(*keys)[32] = NULL;
	size_t n = 0;

	if (meshctl_managed_keys(c->name, &keys, &n) == 0)
		ctl_device_drop_peers(dev, (const uint8_t(*)[32])keys, n);
	free(keys);
}

static const struct conf_peer *conf_peer_of(const struct conf *c, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < c->n_peers; i++)
		if (!memcmp(c->peers[i].public_key, pub, 32))
			return &c->peers[i];
	return NULL;
}

/* path's new contents with the original's owner and mode (conf_replace_file). */
static int replace_file(const char *path, const struct sbuf *text)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return conf_replace_file(path, text->data, text->len, &st);
}

/*
 * SaveConfig = true: at down, the peers as they run (added with set,
 * endpoints learnt by roaming) replace the file's [Peer] sections; all
 * before the first [Peer] stays as written, and a peer's pre-shared key
 * that came from a file or credential keeps coming from there.
 */
static void save_config(const struct conf *c)
{
	struct ctl_device dev;
	struct sbuf out = { 0 };
	char why[256] = "";
	size_t i;
	int ret;

	ret = ctl_get(c->name, &dev, why, sizeof(why));
	if (ret) {
		err_line("warning: %s: SaveConfig: cannot read the running peers: %s", c->path,
			 why[0] ? why : strerror(-ret));
		return;
	}
	hide_mesh_peers(c, &dev);
	ret = read_head(c->path, &out);
	while (out.len >= 2 && out.data[out.len - 1] == '\n' && out.data[out.len - 2] == '\n')
		out.data[--out.len] = '\0'; /* one blank line before each peer, not more */
	for (i = 0; !ret && i < dev.n_peers; i++)
		ctl_format_peer(&out, &dev.peers[i], conf_peer_of(c, dev.peers[i].public_key));
	if (!ret)
		ret = out.failed ? -ENOMEM : replace_file(c->path, &out);
	if (ret)
		err_line("warning: %s: SaveConfig: cannot write it: %s", c->path, strerror(-ret));
	sbuf_free(&out);
	ctl_device_free(&dev);
}

int cmd_down(int argc, char **argv)
{
	struct conf_error err = { "" };
	char path[PATH_MAX], name[16];
	struct conf c = { 0 };
	struct nl *nl = NULL;
	bool have_conf, foreign;
	struct state s;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: veilctl down NAME|FILE\n");
		return 1;
	}
	conf_path(argv[1], path, sizeof(path));
	have_conf = conf_load(&c, path, &err) == 0;
	if (have_conf) {
		snprintf(name, sizeof(name), "%s", c.name);
	} else if (conf_ifname_of(path, name)) {
		fprintf(stderr, "veilctl: %s\n", err.msg);
		return 1;
	}
	if (state_read(name, &s)) {
		if (!have_conf)
			fprintf(stderr, "veilctl: %s\n", err.msg);
		err_line("%s is not up (no state in %s)", name, VEIL_STATE_DIR);
		conf_free(&c);
		return 1;
	}
	/* What up did is all in the state: a file broken or gone since must not keep it up. */
	if (!have_conf)
		err_line("warning: %s; %s goes down from %s/%s.state alone (no PreDown or PostDown hooks, "
			 "no SaveConfig)", err.msg, name, VEIL_STATE_DIR, name);
	ret = nl_open(&nl);
	if (ret) {
		err_line("cannot open rtnetlink: %s", strerror(-ret));
		goto out;
	}
	if (have_conf)
		run_hooks(&c.pre_down, name); /* a failing hook does not keep the interface up */
	/* First the agent: nothing may add a peer or a route while the rest is undone. */
	meshctl_stop(s.mesh_agent);
	if (have_conf && c.save_config)
		save_config(&c);
	foreign = undo_state(nl, name, &s);
	state_remove(name);
	if (have_conf)
		run_hooks(&c.post_down, name);
	if (foreign)
		printf("veilctl: %s is down; its daemon, which veilctl up did not start, is left running "
		       "(the link is down)\n", name);
	else
		printf("veilctl: %s is down\n", name);
out:
	if (nl)
		nl_close(nl);
	state_free(&s);
	conf_free(&c);
	return ret ? 1 : 0;
}

/* ---- reload ------------------------------------------------------------------------------- */

/*
 * A failed reload changes nothing. Everything that can be checked before
 * is (the file whole, its keys, the ciphers this CPU can run, whether the
 * daemon is veild where the file asks for veild's own settings); then the
 * steps run from the likeliest refusal to the least likely, each noting
 * what it changed, and a refusal puts back, newest first, what the steps
 * before it did:
 *
 *   1. the metrics listener (veild opens the new one before closing the old)
 *   2. keys, port and peers (syncconf; the port first), then veild's own
 *      peer settings (ciphers, endpoint names)
 *   3. the MTU
 *   4. addresses, routes and rules: the old ones the file no longer has go
 *      first (an IPv4 address's replacement in the same subnet must not
 *      come as a secondary that the old primary's removal takes along),
 *      then the new ones
 *
 * Only then is the mesh agent started again and the state file written.
 */
struct reload {
	struct ctl_device was;      /* the daemon before, every peer (restore's reference) */
	struct ctl_device dev;      /* the same without the mesh agent's peers (the diff's) */
	struct ctl_sync_summary sync;
	bool metrics, peers, mtu;   /* steps 1-3 changed something */
	unsigned int old_mtu;
	struct state removed, added; /* step 4 */
};

static bool has_item(const struct state *s, const struct item *it)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (same_item(&s->items[i], it))
			return true;
	return false;
}

/* What only veild takes, asked of another daemon, or AES on a CPU without it: refused before anything. */
static int reload_preflight(struct up_ctx *u, const struct reload *r)
{
	const struct conf_peer *aes = NULL;
	size_t i;

	for (i = 0; !aes && i < u->c.n_peers; i++)
		if (u->c.peers[i].cipher == CIPHER_AES256GCM)
			aes = &u->c.peers[i];
	if (aes && !crypto_aead_aes256gcm_is_available()) {
		err_line("%s:%u: [Peer]: Cipher = aes256gcm: this CPU lacks the AES instructions it needs",
			 u->c.path, aes->line);
		return -EOPNOTSUPP;
	}
	if (r->was.veil)
		return 0;
	if (aes) {
		err_line("%s:%u: [Peer]: Cipher = aes256gcm is veild's own, and the daemon of %s is not veild",
			 u->c.path, aes->line, u->c.name);
		return -EOPNOTSUPP;
	}
	if (u->c.metrics_listen) {
		err_line("%s:%u: MetricsListen is veild's own, and the daemon of %s is not veild", u->c.path,
			 u->c.metrics_listen_line, u->c.name);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* 1. The listener, only when it moves (veild opens the new one before it closes the old). */
static int reload_metrics(struct up_ctx *u, struct reload *r)
{
	const char *want = u->c.metrics_listen ? u->c.metrics_listen : "";
	int ret;

	if (!r->was.veil || !strcmp(want, r->was.metrics_listen))
		return 0;
	ret = ctl_send_extensions(u->c.name, &u->c, CTL_EXT_METRICS);
	r->metrics = !ret;
	return ret;
}

/* Which setting of a refused syncconf was the one: the port and mark come first in it. */
static void say_sync_refused(const struct up_ctx *u, const struct reload *r, int ret, const char *why)
{
	if (ret == -EADDRINUSE && r->sync.listen_port)
		err_line("%s:%u: ListenPort = %u refused: the port is in use", u->c.path, u->c.listen_port_line,
			 u->c.listen_port);
	else if (r->sync.fwmark && !r->sync.listen_port && ret == -EADDRINUSE)
		err_line("%s:%u: FwMark = 0x%x refused: %s", u->c.path, u->c.fwmark_line, u->c.fwmark,
			 strerror(-ret));
	else if (ret == -ENOSPC)
		err_line("%s: the daemon refused the peers: it holds no more peers or allowed IPs (%s)",
			 u->c.name, strerror(-ret));
	else
		err_line("%s: the daemon refused the keys and peers: %s%s%s", u->c.name, strerror(-ret),
			 why[0] ? ": " : "", why);
}

/* 2. Keys, port, peers, then veild's own peer settings. */
static int reload_peers(struct up_ctx *u, struct reload *r)
{
	struct sbuf req = { 0 };
	char why[256] = "";
	int ret;

	ret = ctl_build_syncconf(&u->c, &r->dev, &req);
	if (!ret) {
		r->peers = true; /* veild applies a request line by line: from here on, put it back */
		ret = ctl_set(u->c.name, &req, why, sizeof(why));
		if (ret)
			say_sync_refused(u, r, ret, why);
	}
	sbuf_free(&req);
	if (!ret)
		ret = ctl_send_extensions(u->c.name, &u->c, CTL_EXT_PEERS);
	return ret;
}

/* 3. The MTU, when the file names one that differs. */
static int reload_mtu(struct up_ctx *u, struct reload *r)
{
	int ret;

	if (!u->c.has_mtu)
		return 0;
	ret = nl_link_mtu(u->nl, u->ifindex, &r->old_mtu);
	if (!ret && r->old_mtu == u->c.mtu)
		return 0;
	if (!ret)
		ret = nl_link_set_mtu(u->nl, u->ifindex, u->c.mtu);
	if (ret)
		err_line("%s:%u: MTU = %u: cannot set it: %s", u->c.path, u->c.mtu_line, u->c.mtu, strerror(-ret));
	r->mtu = !ret;
	return ret;
}

/* 4. The old items the plan drops go, then the plan's new ones come (addresses before routes). */
static int reload_items(struct up_ctx *u, const struct state *old, struct reload *r)
{
	size_t i, pass;
	int ret = 0;

	for (i = 0; !ret && i < old->n; i++) {
		if (has_item(&u->plan, &old->items[i]))
			continue;
		ret = push_item(&r->removed, &old->items[i]);
		if (!ret)
			apply_item(u->nl, u->ifindex, &old->items[i], false);
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; !ret && i < u->plan.n; i++)
			if ((u->plan.items[i].kind == ITEM_ADDR) == (pass == 0) &&
			    !has_item(old, &u->plan.items[i]))
				ret = add_item(u->nl, u->ifindex, &u->plan.items[i], &r->added);
	return ret;
}

/* Put back, newest first, what the steps did before one was refused. */
static void reload_undo(struct up_ctx *u, struct reload *r)
{
	struct ctl_device now;
	struct sbuf req = { 0 };
	char why[256] = "";
	size_t i;
	int ret = 0;

	remove_items(u->nl, u->ifindex, &r->added);
	for (i = 0; i < r->removed.n; i++)
		apply_item(u->nl, u->ifindex, &r->removed.items[i], true);
	if (r->mtu)
		ret = nl_link_set_mtu(u->nl, u->ifindex, r->old_mtu);
	if (r->peers && !ret)
		ret = ctl_get(u->c.name, &now, why, sizeof(why));
	if (r->peers && !ret) {
		ret = ctl_build_restore(&r->was, &now, &req);
		if (!ret)
			ret = ctl_set(u->c.name, &req, why, sizeof(why));
		sbuf_free(&req);
		ctl_device_free(&now);
	}
	if (r->metrics && !ret) {
		sbuf_printf(&req, "set=1\n" VEIL_UAPI_METRICS_LISTEN "=%s\n\n", r->was.metrics_listen);
		ret = ctl_set(u->c.name, &req, why, sizeof(why));
		sbuf_free(&req);
	}
	if (ret)
		err_line("%s: reload failed, and what it changed could not all be put back: %s%s%s", u->c.name,
			 strerror(-ret), why[0] ? ": " : "", why);
	else
		err_line("%s: reload failed: nothing was changed", u->c.name);
}

/* "1 peer added" and the like, appended to out after a separator. */
static void part(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void part(char *out, size_t len, const char *fmt, ...)
{
	size_t o = strlen(out);
	va_list ap;

	if (o + 2 >= len)
		return;
	if (o)
		o += (size_t)snprintf(out + o, len - o, ", ");
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
	vsnprintf(out + o, len - o, fmt, ap);
	va_end(ap);
}

static void count_part(char *out, size_t len, size_t n, const char *one, const char *many, const char *what)
{
	if (n)
		part(out, len, "%zu %s %s", n, n == 1 ? one : many, what);
}

static size_t count_kind(const struct state *s, enum item_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->items[i].kind == kind;
	return n;
}

/* What the reload changed, in one line. */
static void say_reloaded(const struct up_ctx *u, const struct reload *r)
{
	const struct ctl_sync_summary *s = &r->sync;
	const char *listen = u->c.metrics_listen ? u->c.metrics_listen : "off";
	char out[512] = "";

	count_part(out, sizeof(out), s->added, "peer", "peers", "added");
	count_part(out, sizeof(out), s->removed, "peer", "peers", "removed");
	count_part(out, sizeof(out), s->changed, "peer", "peers", "changed");
	if (s->private_key)
		part(out, sizeof(out), "private key changed");
	if (s->listen_port)
		part(out, sizeof(out), "listen port %u -> %u", r->dev.listen_port, u->c.listen_port);
	if (s->fwmark)
		part(out, sizeof(out), "fwmark 0x%x -> 0x%x", r->dev.fwmark, u->c.fwmark);
	if (r->mtu)
		part(out, sizeof(out), "MTU %u -> %u", r->old_mtu, u->c.mtu);
	if (r->metrics)
		part(out, sizeof(out), "metrics %s -> %s", r->was.metrics_listen[0] ? r->was.metrics_listen : "off",
		     listen);
	count_part(out, sizeof(out), count_kind(&r->added, ITEM_ADDR), "address", "addresses", "added");
	count_part(out, sizeof(out), count_kind(&r->removed, ITEM_ADDR), "address", "addresses", "removed");
	count_part(out, sizeof(out), count_kind(&r->added, ITEM_ROUTE), "route", "routes", "added");
	count_part(out, sizeof(out), count_kind(&r->removed, ITEM_ROUTE), "route", "routes", "removed");
	count_part(out, sizeof(out), count_kind(&r->added, ITEM_RULE), "policy rule", "policy rules", "added");
	count_part(out, sizeof(out), count_kind(&r->removed, ITEM_RULE), "policy rule", "policy rules",
		   "removed");
	printf("veilctl: %s reloaded: %s\n", u->c.name, out[0] ? out : "nothing changed");
}

/* What exists once the reload is through: the old items the plan keeps, and those added. */
static int reload_state(struct state *old, const struct reload *r)
{
	struct state now = { 0 };
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < old->n; i++)
		if (!has_item(&r->removed, &old->items[i]))
			ret = push_item(&now, &old->items[i]);
	for (i = 0; !ret && i < r->added.n; i++)
		ret = push_item(&now, &r->added.items[i]);
	if (ret) {
		state_free(&now);
		return ret;
	}
	free(old->items);
	old->items = now.items;
	old->n = now.n;
	return 0;
}

/* The daemon as it runs: whole (to put back), and without the agent's peers (to compare the file with). */
static int reload_read(struct up_ctx *u, struct reload *r)
{
	char why[256] = "";
	int ret = ctl_get(u->c.name, &r->was, why, sizeof(why));

	if (!ret)
		ret = ctl_get(u->c.name, &r->dev, why, sizeof(why));
	if (ret) {
		err_line("%s: cannot read the running interface: %s", u->c.name, why[0] ? why : strerror(-ret));
		return ret;
	}
	/*
	 * Unchanged and never removed by a reload: the agent's peers (it runs
	 * on, or again). A file that left its mesh takes them away.
	 */
	if (u->c.mesh.line)
		hide_mesh_peers(&u->c, &r->dev);
	ctl_sync_summarize(&u->c, &r->dev, &r->sync);
	return 0;
}

static int do_reload(struct up_ctx *u, struct state *old, struct reload *r)
{
	size_t i;
	int ret;

	ret = nl_open(&u->nl);
	if (ret) {
		err_line("cannot open rtnetlink: %s", strerror(-ret));
		return ret;
	}
	/* The full tunnel keeps the table up picked; a fresh pick would find it in use. */
	u->table = FULL_TUNNEL_TABLE;
	if (u->c.has_fwmark && u->c.fwmark)
		u->table = u->c.fwmark;
	else
		for (i = 0; i < old->n; i++)
			if (old->items[i].kind == ITEM_RULE && old->items[i].rule.has_fwmark)
				u->table = old->items[i].rule.table;
	ret = make_plan(&u->c, u->table, &u->plan);
	if (ret) {
		err_line("%s: cannot plan routes: %s", u->c.name, strerror(-ret));
		return ret;
	}
	ret = nl_link_index(u->nl, u->c.name, &u->ifindex);
	if (ret) {
		err_line("%s: no such link: %s", u->c.name, strerror(-ret));
		return ret;
	}
	ret = reload_read(u, r);
	if (!ret)
		ret = reload_preflight(u, r);
	if (ret)
		return ret;
	ret = reload_metrics(u, r);
	if (!ret)
		ret = reload_peers(u, r);
	if (!ret)
		ret = reload_mtu(u, r);
	if (!ret)
		ret = reload_items(u, old, r);
	if (ret) {
		reload_undo(u, r);
		return ret;
	}
	ret = reload_state(old, r);
	/*
	 * The agent is started again, reading the file anew (a changed [Mesh],
	 * a renewed password); the peers it applied stay meanwhile, and a file
	 * without [Mesh] any more stops it (syncconf took its peers away).
	 */
	if (!ret) {
		meshctl_stop(old->mesh_agent);
		old->mesh_agent = 0;
		if (u->c.mesh.line)
			ret = meshctl_start(&u->c, &old->mesh_agent);
		else
			meshctl_forget(&u->c);
	}
	if (state_write(u->c.name, old) && !ret)
		ret = -EIO;
	return ret;
}

int cmd_reload(int argc, char **argv)
{
	struct up_ctx u = { 0 };
	struct reload r = { 0 };
	struct state old;
	int ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: veilctl reload NAME|FILE\n");
		return 1;
	}
	if (load_conf(argv[1], &u.c, true))
		return 1;
	if (state_read(u.c.name, &old)) {
		err_line("%s is not up (veilctl up %s first)", u.c.name, u.c.name);
		conf_free(&u.c);
		return 1;
	}
	ret = do_reload(&u, &old, &r);
	if (!ret)
		say_reloaded(&u, &r);
	if (u.nl)
		nl_close(u.nl);
	ctl_device_free(&r.was);
	ctl_device_free(&r.dev);
	state_free(&r.removed);
	state_free(&r.added);
	state_free(&u.plan);
	state_free(&old);
	conf_free(&u.c);
	return ret ? 1 : 0;
}
