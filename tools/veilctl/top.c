// SPDX-License-Identifier: MIT
/*
 * veilctl top [IFNAME]: a live view of an interface over its control socket,
 * once a second: each peer's endpoint, latest handshake, receive and
 * transmit rates and a sparkline of its throughput over the last minute.
 * It draws on the alternate screen of a terminal (so it works over SSH) and
 * gives the terminal back as it found it on q, Ctrl-C, Ctrl-Z, SIGTERM or SIGHUP.
 * Without a terminal it prints one frame (two samples a second apart) and
 * exits.
 */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"

enum {
	HISTORY = 60,     /* samples in a sparkline: a minute */
	PEERS_SHOWN = 200,
	INTERVAL_MS = 1000,
};

struct peer_hist {
	uint8_t public_key[32];
	uint64_t rx, tx;  /* the counters at the previous sample */
	double rate_rx, rate_tx;
	double hist[HISTORY]; /* bytes per second in and out, newest last */
	bool seen;
};

struct top {
	const char *ifname;
	struct peer_hist *p;
	size_t n, cap;
	struct timespec last;
	bool have_last, utf8;
	unsigned int cols, rows;
};

static volatile sig_atomic_t stop_signal;
static struct termios saved;
static bool raw_on;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* Leave the alternate screen, show the cursor, restore the line discipline. */
static void restore(void)
{
	if (!raw_on)
		return;
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	raw_on = false;
}

static int enter_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved) < 0)
		return -errno;
	t = saved;
	/*
	 * Keys one at a time, unechoed, and no signals from the keyboard: Ctrl-C,
	 * Ctrl-\\ and Ctrl-Z arrive as keys that end top. As signals they would
	 * reach the whole foreground process group, and a non-interactive shell
	 * running top (sh -c 'veilctl top; ...') would die of them with it.
	 */
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
		return -errno;
	raw_on = true;
	atexit(restore);
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

static void window_size(struct top *t)
{
	struct winsize ws;

	t->cols = 100;
	t->rows = 40;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		t->cols = ws.ws_col;
		t->rows = ws.ws_row;
	}
}

static struct peer_hist *hist_of(struct top *t, const uint8_t pub[32])
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!memcmp(t->p[i].public_key, pub, 32))
			return &t->p[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct peer_hist *p = realloc(t->p, cap * sizeof(*p));

		if (!p)
			return NULL;
		t->p = p;
		t->cap = cap;
	}
	memset(&t->p[t->n], 0, sizeof(t->p[0]));
	memcpy(t->p[t->n].public_key, pub, 32);
	return &t->p[t->n++];
}

/* Take a sample: rates since the previous one, pushed onto each peer's history. */
static void sample(struct top *t, const struct ctl_device *dev)
{
	struct timespec now;
	double dt = 0;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (t->have_last)
		dt = (double)(now.tv_sec - t->last.tv_sec) + (double)(now.tv_nsec - t->last.tv_nsec) / 1e9;
	for (i = 0; i < dev->n_peers; i++) {
		const struct ctl_peer *cp = &dev->peers[i];
		struct peer_hist *h = hist_of(t, cp->public_key);

		if (!h)
			continue;
		if (h->seen && dt > 0 && cp->rx_bytes >= h->rx && cp->tx_bytes >= h->tx) {
			h->rate_rx = (double)(cp->rx_bytes - h->rx) / dt;
			h->rate_tx = (double)(cp->tx_bytes - h->tx) / dt;
			memmove(h->hist, h->hist + 1, sizeof(h->hist) - sizeof(h->hist[0]));
			h->hist[HISTORY - 1] = h->rate_rx + h->rate_tx;
		}
		h->rx = cp->rx_bytes;
		h->tx = cp->tx_bytes;
		h->seen = true;
	}
	t->last = now;
	t->have_last = true;
}


static void ago_str(uint64_t sec, char *out, size_t len)
{
	time_t now = time(NULL);
	uint64_t d = (uint64_t)now > sec ? (uint64_t)now - sec : 0;

	if (!sec)
		snprintf(out, len, "never");
	else if (d < 120)
		snprintf(out, len, "%llus ago", (unsigned long long)d);
	else if (d < 7200)
		snprintf(out, len, "%llum ago", (unsigned long long)(d / 60));
	else
		snprintf(out, len, "%lluh ago", (unsigned long long)(d / 3600));
}

/* The last width samples, scaled to the largest; eight levels, or ASCII without UTF-8. */
static void sparkline(const struct top *t, const struct peer_hist *h, unsigned int width, FILE *f)
{
	static const char *const blocks[] = { " ", "\u2581", "\u2582", "\u2583", "\u2584",
					       "\u2585", "\u2586", "\u2587", "\u2588" };
	static const char ascii[] = " .:-=+*#@";
	double max = 0;
	unsigned int i, from = width < HISTORY ? HISTORY - width : 0;

	for (i = from; i < HISTORY; i++)
		max = h->hist[i] > max ? h->hist[i] : max;
	for (i = from; i < HISTORY; i++) {
		int level = max > 0 ? (int)(h->hist[i] / max * 8 + 0.5) : 0;

		if (h->hist[i] > 0 && level == 0)
			level = 1;
		if (t->utf8)
			fputs(blocks[level], f);
		else
			fputc(ascii[level], f);
	}
}

/*
 * Under the peers, each peer's latest refused or unanswered handshake, with
 * its age and reason: in the peers' order, as many as the screen holds.
 */
static void draw_failures(const struct top *t, const struct ctl_device *dev, bool tty,
			  unsigned int used)
{
	char pub[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)], ago[32];
	bool title = false;
	size_t i;

	for (i = 0; i < dev->n_peers && (!tty || used + 6 < t->rows); i++) {
		const struct ctl_peer *cp = &dev->peers[i];

		if (!cp->has_failures || !cp->last_failure_sec)
			continue;
		if (!title) {
			printf("\nlatest handshake failure\n");
			title = true;
			used += 2;
		}
		sodium_bin2base64(pub, sizeof(pub), cp->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		pub[11] = '\0';
		ago_str(cp->last_failure_sec, ago, sizeof(ago));
		/* On a terminal, cut to its width; a frame for a pipe has it whole. */
		printf("%-12.12s %s: %.*s\n", pub, ago,
		       tty ? (int)(t->cols > 30 ? t->cols - 30 : 40) : (int)sizeof(cp->last_failure),
		       cp->last_failure);
		used++;
	}
}

static void draw(struct top *t, const struct ctl_device *dev, bool tty)
{
	char pub[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	char ep[CTL_ENDPOINT_LEN], ago[32], rx[32], tx[32], fails[24];
	unsigned int spark, shown = 0;
	size_t i;

	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("%s: %zu peer%s, listening on port %u%s\n", t->ifname, dev->n_peers,
	       dev->n_peers == 1 ? "" : "s", dev->listen_port, tty ? "  (q quits)" : "");
	printf("%-12s %-26s %-10s %6s %13s %13s  %s\n", "peer", "endpoint", "handshake", "fails", "in",
	       "out", "throughput");
	spark = t->cols > 90 ? t->cols - 90 : 0;
	for (i = 0; i < dev->n_peers && shown < PEERS_SHOWN && (!tty || shown + 4 < t->rows); i++) {
		const struct ctl_peer *cp = &dev->peers[i];
		struct peer_hist *h = hist_of(t, cp->public_key);

		sodium_bin2base64(pub, sizeof(pub), cp->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		pub[11] = '\0';
		if (cp->endpoint_len)
			ctl_format_endpoint(&cp->endpoint, ep, sizeof(ep));
		else
			snprintf(ep, sizeof(ep), "(none)");
		ago_str(cp->last_handshake_sec, ago, sizeof(ago));
		/* The same units as show's transfer line. */
		ctl_format_bytes(h ? h->rate_rx : 0, "/s", rx, sizeof(rx));
		ctl_format_bytes(h ? h->rate_tx : 0, "/s", tx, sizeof(tx));
		if (cp->has_failures)
			snprintf(fails, sizeof(fails), "%llu", (unsigned long long)cp->handshake_failures);
		else
			snprintf(fails, sizeof(fails), "-");
		printf("%-12.12s %-26.26s %-10.10s %6s %13s %13s  ", pub, ep, ago, fails, rx, tx);
		if (h && spark)
			sparkline(t, h, spark, stdout);
		putchar('\n');
		shown++;
	}
	if (shown < dev->n_peers)
		printf("... and %zu more peer%s\n", dev->n_peers - shown, dev->n_peers - shown == 1 ? "" : "s");
	draw_failures(t, dev, tty, shown);
	fflush(stdout);
}

/* One refresh; false when the interface cannot be read (it went away). */
static bool refresh(struct top *t, bool tty, bool show)
{
	struct ctl_device dev;
	char why[256] = "";
	int ret = ctl_get(t->ifname, &dev, why, sizeof(why));

	if (ret) {
		restore();
		fprintf(stderr, "veilctl: %s: %s\n", t->ifname, why[0] ? why : strerror(-ret));
		return false;
	}
	sample(t, &dev);
	if (show)
		draw(t, &dev, tty);
	ctl_device_free(&dev);
	return true;
}

/* The interface to show: the one named, or the only one there is. */
static int pick(int argc, char **argv, char *out, size_t len)
{
	char **names = NULL;
	size_t n = 0, i;
	int ret = 0;

	if (argc == 2) {
		snprintf(out, len, "%s", argv[1]);
		return 0;
	}
	if (ctl_list(&names, &n) || n != 1) {
		fprintf(stderr, "veilctl: top: name the interface (%zu are running)\n", n);
		ret = -EINVAL;
	} else {
		snprintf(out, len, "%s", names[0]);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

/* The terminal's own interrupt, quit and suspend characters (Ctrl-C, Ctrl-\\, Ctrl-Z). */
static bool is_signal_key(char c)
{
	static const int keys[] = { VINTR, VQUIT, VSUSP };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (saved.c_cc[keys[i]] != _POSIX_VDISABLE && (cc_t)c == saved.c_cc[keys[i]])
			return true;
	return false;
}

static int loop(struct top *t)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	struct timespec next, now;
	char c;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_signal) {
		int wait_ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
			window_size(t);
			if (!refresh(t, true, true))
				return 1;
			/* Behind (a slow daemon): the next frame a second from now, not a burst. */
			clock_gettime(CLOCK_MONOTONIC, &now);
			next.tv_sec += 1;
			if (next.tv_sec < now.tv_sec ||
			    (next.tv_sec == now.tv_sec && next.tv_nsec < now.tv_nsec)) {
				next = now;
				next.tv_sec += 1;
			}
			continue;
		}
		wait_ms = (int)((next.tv_sec - now.tv_sec) * 1000 + (next.tv_nsec - now.tv_nsec) / 1000000);
		if (poll(&p, 1, wait_ms > 0 ? wait_ms : 0) > 0) {
			if (read(STDIN_FILENO, &c, 1) != 1)
				break; /* the terminal went away */
			if (c == 'q' || c == 'Q' || is_signal_key(c))
				break;
		}
	}
	restore();
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct top t = { 0 };
	char ifname[64];
	bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	int ret;

	if (argc > 2) {
		fprintf(stderr, "Usage: veilctl top [IFNAME]\n");
		return 1;
	}
	if (pick(argc, argv, ifname, sizeof(ifname)))
		return 1;
	t.ifname = ifname;
	setlocale(LC_CTYPE, "");
	t.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	window_size(&t);
	/* No SA_RESTART: a signal wakes poll, and the loop restores the terminal. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* The same signals sent by kill end it too: a stopped top would leave the terminal raw. */
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
	if (!tty) {
		/* One frame: two samples a second apart, so the rates mean something. */
		ret = refresh(&t, false, false) ? 0 : 1;
		if (!ret) {
			sleep(1);
			ret = refresh(&t, false, true) ? 0 : 1;
		}
		free(t.p);
		return ret;
	}
	if (enter_raw()) {
		fprintf(stderr, "veilctl: top: cannot set up the terminal\n");
		return 1;
	}
	ret = loop(&t);
	free(t.p);
	return ret;
}
