// SPDX-License-Identifier: MIT
/*
 * veilctl and the mesh (meshctl.h): the agent's life, and `veilctl mesh`.
 *
 *   veilctl mesh list [NETWORK] [--json]
 *       every node of the networks whose agents run here, as each agent
 *       sees it (its local copy) and whether veild has a session with it
 *   veilctl mesh rotate NAME|FILE
 *       the interface's agent rotates this node's static key (docs/mesh.md)
 * and the administrator's commands (remove, revoke, admit, history), in
 * meshadmin.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "ctl.h"
#include "etcd.h"
#include "meshctl.h"
#include "nl.h"
#include "record.h"
#include "up.h"
#include "view.h"

enum {
	AGENT_START_MS = 20000,
	AGENT_STOP_MS = 5000,
	SESSION_S = 180, /* WireGuard's Reject-After-Time: a handshake older than this is no session */
	AGENT_ROTATE_MS = 30000,
};

/* ---- the agent's life ---------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* veil-meshd next to veilctl (a build tree), in ../sbin (an installed prefix), or from PATH. */
static void agent_path(char *out, size_t len)
{
	char self[PATH_MAX - 32];
	const char *env = getenv("VEIL_MESHD");
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 32);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/veil-meshd", self);
			if (access(out, X_OK) == 0)
				return;
			snprintf(out, len, "%s/../sbin/veil-meshd", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "veil-meshd");
}

static pid_t read_pidfile(const char *ifname)
{
	char path[PATH_MAX], line[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.mesh.pid", VEIL_STATE_DIR, ifname);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	return (pid_t)strtol(line, NULL, 10);
}

int meshctl_start(const struct conf *c, pid_t *pid)
{
	char path[PATH_MAX];
	long waited;
	pid_t child;
	int status;

	*pid = 0;
	agent_path(path, sizeof(path));
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		execlp(path, "veil-meshd", c->path, (char *)NULL);
		fprintf(stderr, "veilctl: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	/* Its first process exits once the agent runs in the background (or could not start). */
	for (waited = 0; waited <= AGENT_START_MS; waited += 10) {
		pid_t r = waitpid(child, &status, WNOHANG);

		if (r == child)
			break;
		if (r < 0)
			return -errno;
		sleep_ms(10);
	}
	if (waited > AGENT_START_MS) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		fprintf(stderr, "veilctl: %s: the mesh agent did not start within %d s\n", c->name,
			AGENT_START_MS / 1000);
		return -ETIMEDOUT;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD; /* veil-meshd said why */
	*pid = read_pidfile(c->name);
	return *pid > 0 ? 0 : -ESRCH;
}

/* Whether pid is a veil-meshd (not a process that took a dead agent's pid). */
static bool is_agent(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return !strcmp(comm, "veil-meshd");
}

void meshctl_stop(pid_t pid)
{
	long waited;

	if (pid <= 0 || !is_agent(pid))
		return;
	kill(pid, SIGTERM);
	for (waited = 0; waited < AGENT_STOP_MS && is_agent(pid); waited += 10)
		sleep_ms(10);
	if (is_agent(pid))
		kill(pid, SIGKILL);
}

void meshctl_forget(const struct conf *c)
{
	struct mesh_view v;
	char path[PATH_MAX], why[256];
	unsigned int ifindex;
	struct nl *nl = NULL;
	size_t i;

	view_init(&v, "", "", c->name);
	view_path(c->name, path, sizeof(path));
	/* The routes the agent added go with its peers (the agent's own table choice). */
	if (view_load(&v, path, why, sizeof(why)) == 0 && v.n_routes && nl_open(&nl) == 0 &&
	    nl_link_index(nl, c->name, &ifindex) == 0) {
		for (i = 0; i < v.n_routes; i++)
			nl_route(nl, false, ifindex, c->table == TABLE_ID ? c->table_id : 254, &v.routes[i]);
	}
	if (nl)
		nl_close(nl);
	view_free(&v);
	unlink(path);
}

int meshctl_managed_keys(const char *ifname, uint8_t (**keys)[32], size_t *n)
{
	struct mesh_view v;
	char path[PATH_MAX], why[256];
	size_t i;
	int ret;

	*keys = NULL;
	*n = 0;
	view_init(&v, "", "", ifname);
	view_path(ifname, path, sizeof(path));
	ret = view_load(&v, path, why, sizeof(why));
	if (ret == -ENOENT)
		ret = 0;
	if (!ret) {
		*keys = calloc(v.n + 1, 32);
		if (!*keys)
			ret = -ENOMEM;
	}
	/* A rotating node's staged next key is the agent's too. */
	if (!ret) {
		free(*keys);
		*keys = calloc(2 * v.n + 1, 32);
		if (!*keys)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < v.n; i++) {
		if (!v.nodes[i].applied)
			continue;
		memcpy((*keys)[(*n)++], v.nodes[i].current.public_key, 32);
		if (v.nodes[i].current.has_next)
			memcpy((*keys)[(*n)++], v.nodes[i].current.next_public_key, 32);
	}
	view_free(&v);
	return ret;
}

/* ---- mesh list ------------------------------------------------------------------------------- */

struct copy {
	struct mesh_view v;
	struct ctl_device dev;
	bool have_dev;
};

/* The record to show: the peer's, else the latest that parsed. */
static const struct mesh_record *shown_record(const struct mesh_node *n)
{
	if (n->applied)
		return &n->current;
	return n->parsed ? &n->latest : NULL;
}

/* 1 session, 0 none, -1 unknown (veild not reached, or no record). */
static int session(const struct copy *c, const struct mesh_record *r)
{
	size_t i;

	if (!c->have_dev || !r)
		return -1;
	for (i = 0; i < c->dev.n_peers; i++) {
		const struct ctl_peer *p = &c->dev.peers[i];

		if (!sodium_memcmp(p->public_key, r->public_key, 32))
			return p->last_handshake_sec &&
			       (int64_t)time(NULL) - (int64_t)p->last_handshake_sec < SESSION_S;
	}
	return 0;
}

static void when(int64_t t, char *out, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	localtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void last_seen(const struct mesh_node *n, char *out, size_t len)
{
	char t[32];

	if (n->alive) {
		snprintf(out, len, "now");
	} else if (n->stale_since) {
		when(n->stale_since, t, sizeof(t));
		snprintf(out, len, "stale since %s", t);
	} else {
		snprintf(out, len, "not seen");
	}
}

/* A key's age: "3d4h", "2h5m", "40s"; "-" when unknown. */
static void key_age(const struct mesh_record *r, char *out, size_t len)
{
	int64_t s = r && r->key_since ? (int64_t)time(NULL) - r->key_since : -1;

	if (s < 0)
		snprintf(out, len, "-");
	else if (s >= 86400)
		snprintf(out, len, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, len, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, len, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
	else
		snprintf(out, len, "%llds", (long long)s);
}

static void prefixes(const struct mesh_record *r, char *out, size_t len)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; r && i < r->n_prefixes && o + 60 < len; i++) {
		char p[CTL_PREFIX_LEN];

		ctl_format_prefix(&r->prefixes[i], p, sizeof(p));
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "," : "", p);
	}
	if (!out[0])
		snprintf(out, len, "-");
}

static void print_text(const struct copy *c)
{
	char saved[32], seen[48], pfx[512], fp[12], age[24];
	size_t i;

	when(c->v.saved, saved, sizeof(saved));
	printf("network %s: interface %s, node %s; registry %s; local copy of %s, revision %" PRId64 "\n",
	       c->v.network, c->v.ifname, c->v.node, c->v.connected ? "watched" : "NOT reached",
	       saved, c->v.revision);
	printf("  %-20s %-11s %-8s %-24s %-24s %-30s %-7s %s\n", "node", "key", "key age", "endpoint",
	       "prefixes", "last seen", "session", "state");
	for (i = 0; i < c->v.n; i++) {
		const struct mesh_node *n = &c->v.nodes[i];
		const struct mesh_record *r = shown_record(n);
		int s = n->verdict == MESH_SELF ? -1 : session(c, r);

		if (r)
			mesh_fingerprint(r->public_key, fp);
		else
			snprintf(fp, sizeof(fp), "-");
		last_seen(n, seen, sizeof(seen));
		prefixes(r, pfx, sizeof(pfx));
		key_age(r, age, sizeof(age));
		printf("  %-20s %-11s %-8s %-24s %-24s %-30s %-7s %s%s%s\n", n->name, fp, age,
		       r && r->endpoint[0] ? r->endpoint : "-", pfx, seen,
		       s < 0 ? "-" : s ? "yes" : "no", mesh_node_state(n), n->why[0] ? ": " : "", n->why);
	}
}

static json_t *node_json(const struct copy *c, const struct mesh_node *n)
{
	const struct mesh_record *r = shown_record(n);
	char key[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)], fp[12], p[CTL_PREFIX_LEN];
	json_t *o = json_object(), *pfx = json_array();
	int s = n->verdict == MESH_SELF ? -1 : session(c, r);
	size_t i;

	json_object_set_new(o, "node", json_string(n->name));
	if (r) {
		sodium_bin2base64(key, sizeof(key), r->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		mesh_fingerprint(r->public_key, fp);
		for (i = 0; i < r->n_prefixes; i++) {
			ctl_format_prefix(&r->prefixes[i], p, sizeof(p));
			json_array_append_new(pfx, json_string(p));
		}
	}
	json_object_set_new(o, "public_key", r ? json_string(key) : json_null());
	json_object_set_new(o, "fingerprint", r ? json_string(fp) : json_null());
	json_object_set_new(o, "key_since", r && r->key_since ? json_integer(r->key_since) : json_null());
	json_object_set_new(o, "endpoint", r && r->endpoint[0] ? json_string(r->endpoint) : json_null());
	json_object_set_new(o, "prefixes", pfx);
	json_object_set_new(o, "alive", json_boolean(n->alive));
	json_object_set_new(o, "stale_since", n->alive || !n->stale_since ? json_null()
									   : json_integer(n->stale_since));
	json_object_set_new(o, "session", s < 0 ? json_null() : json_boolean(s));
	json_object_set_new(o, "state", json_string(mesh_node_state(n)));
	json_object_set_new(o, "reason", n->why[0] ? json_string(n->why) : json_null());
	json_object_set_new(o, "revision", json_integer(n->mod_revision));
	return o;
}

static json_t *copy_json(const struct copy *c)
{
	json_t *nodes = json_array();
	size_t i;

	for (i = 0; i < c->v.n; i++)
		json_array_append_new(nodes, node_json(c, &c->v.nodes[i]));
	return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:o}", "network", c->v.network, "interface",
			 c->v.ifname, "node", c->v.node, "registry_reached", c->v.connected, "saved",
			 (json_int_t)c->v.saved, "revision", (json_int_t)c->v.revision, "nodes", nodes);
}

static int load_copy(const char *dir, const char *file, struct copy *c)
{
	char path[PATH_MAX], why[256], ifname[16];
	size_t n = strlen(file);
	int ret;

	if (n < 6 || n - 5 >= sizeof(ifname) || strcmp(file + n - 5, ".json") != 0)
		return -ENOENT;
	snprintf(ifname, sizeof(ifname), "%.*s", (int)(n - 5), file);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	view_init(&c->v, "", "", ifname);
	ret = view_load(&c->v, path, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "veilctl: %s: %s\n", path, why[0] ? why : strerror(-ret));
		view_free(&c->v);
		return ret;
	}
	/* view_load reads the network and node from the file. */
	c->have_dev = ctl_get(ifname, &c->dev, why, sizeof(why)) == 0;
	return 0;
}

static int mesh_list(int argc, char **argv)
{
	const char *dir = getenv("VEIL_MESH_DIR"), *network = NULL;
	json_t *all = json_array();
	bool json = false, any = false;
	struct dirent *e;
	DIR *d;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!network && argv[i][0] != '-')
			network = argv[i];
		else
			goto usage;
	}
	dir = dir && *dir ? dir : VEIL_MESH_DIR;
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		struct copy c = { 0 };

		if (e->d_name[0] == '.' || load_copy(dir, e->d_name, &c))
			continue;
		if (!network || !strcmp(network, c.v.network)) {
			any = true;
			if (json)
				json_array_append_new(all, copy_json(&c));
			else
				print_text(&c);
		}
		view_free(&c.v);
		if (c.have_dev)
			ctl_device_free(&c.dev);
	}
	if (d)
		closedir(d);
	if (json) {
		char *text = json_dumps(all, JSON_INDENT(2));

		if (text)
			ctl_write_out(text, strlen(text));
		ctl_write_out("\n", 1);
		free(text);
	}
	json_decref(all);
	if (!any && !json) {
		fprintf(stderr, "veilctl: no mesh agent%s%s has a local copy in %s\n",
			network ? " of network " : "", network ? network : "", dir);
		return 1;
	}
	return 0;
usage:
	json_decref(all);
	fprintf(stderr, "Usage: veilctl mesh list [NETWORK] [--json]\n");
	return 1;
}

/* ---- mesh rotate ------------------------------------------------------------------------------- */

/*
 * veilctl mesh rotate NAME|FILE: the interface's agent rotates its key
 * (SIGUSR1) and writes how it went in its copy, which this waits for.
 */
static int mesh_rotate(int argc, char **argv)
{
	struct conf_error err = { "" };
	struct conf c = { 0 };
	struct mesh_view v;
	char path[PATH_MAX], why[256];
	unsigned int before = 0;
	long waited;
	pid_t pid;
	int ret = 1;

	if (argc != 2) {
		fprintf(stderr, "Usage: veilctl mesh rotate NAME|FILE\n");
		return 1;
	}
	if (strchr(argv[1], '/') || strstr(argv[1], ".conf"))
		snprintf(path, sizeof(path), "%s", argv[1]);
	else
		snprintf(path, sizeof(path), "%s/%s.conf", VEIL_CONF_DIR, argv[1]);
	if (conf_load(&c, path, &err)) {
		fprintf(stderr, "veilctl: %s\n", err.msg);
		return 1;
	}
	pid = read_pidfile(c.name);
	if (!c.mesh.line || pid <= 0 || !is_agent(pid)) {
		fprintf(stderr, "veilctl: %s: no mesh agent runs for it (%s)\n", c.name,
			c.mesh.line ? "veilctl up it first" : "its file has no [Mesh] section");
		goto out;
	}
	view_path(c.name, path, sizeof(path));
	view_init(&v, "", "", c.name);
	if (view_load(&v, path, why, sizeof(why)) == 0)
		before = v.rotations;
	view_free(&v);
	if (kill(pid, SIGUSR1) < 0) {
		fprintf(stderr, "veilctl: cannot signal the agent %d: %s\n", (int)pid, strerror(errno));
		goto out;
	}
	/* The agent announces, waits for the peers to stage the key, switches, publishes. */
	for (waited = 0; waited < AGENT_ROTATE_MS; waited += 100) {
		sleep_ms(100);
		view_init(&v, "", "", c.name);
		if (view_load(&v, path, why, sizeof(why)) == 0 && v.rotations != before) {
			bool ok = !strncmp(v.rotation_result, "rotated", 7);

			printf("veilctl: %s: %s\n", c.name, v.rotation_result);
			view_free(&v);
			ret = ok ? 0 : 1;
			goto out;
		}
		view_free(&v);
	}
	fprintf(stderr, "veilctl: %s: the rotation did not end within %d s (the agent's log says why)\n",
		c.name, AGENT_ROTATE_MS / 1000);
out:
	conf_free(&c);
	return ret;
}

int cmd_mesh(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
		{ "list", mesh_list },       { "rotate", mesh_rotate },   { "remove", meshctl_remove },
		{ "revoke", meshctl_revoke }, { "admit", meshctl_admit }, { "history", meshctl_history },
	};
	size_t i;

	for (i = 0; argc >= 2 && i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "Usage: veilctl mesh list [NETWORK] [--json]\n"
			"       veilctl mesh rotate NAME|FILE\n"
			"       veilctl mesh remove [--admin FILE] NETWORK NODE\n"
			"       veilctl mesh revoke [--admin FILE] [--user USER] NETWORK NODE|PUBLIC_KEY\n"
			"       veilctl mesh admit [--admin FILE] NETWORK NODE\n"
			"       veilctl mesh history [--admin FILE] NETWORK NODE\n");
	return 1;
}
