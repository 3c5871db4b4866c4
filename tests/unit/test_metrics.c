// SPDX-License-Identifier: MIT
/*
 * veild's metrics text (src/metrics.c) for a device with two peers: the
 * latest handshake in whole seconds as get=1 (and so veilctl show) has it,
 * never rounded up; each peer's latest refused handshake with its reason;
 * and the packets dropped for being longer than veild carries.
 */
#include "metrics.c"
#include "uapi.c"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_stub.h"
#include "test_util.h"

/* The expected lines are formats with a public key and a value. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

#define SEC NSEC_PER_SEC

struct fixture {
	struct test_rng_state rs;
	struct wg_rng rng;
	struct wg_device *dev;
	struct wg_peer *p1, *p2;
	char pub1[45], pub2[45];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t key[32];

	assert_non_null(f);
	f->rs.s = 18;
	f->rng = (struct wg_rng){ test_rng_fill, &f->rs };
	f->dev = wg_device_new(&engine_stub_ops, NULL, &f->rng);
	assert_non_null(f->dev);
	memset(key, 1, sizeof(key));
	assert_int_equal(wg_device_peer_add(f->dev, key, &f->p1), 0);
	sodium_bin2base64(f->pub1, sizeof(f->pub1), key, 32, sodium_base64_VARIANT_ORIGINAL);
	memset(key, 2, sizeof(key));
	assert_int_equal(wg_device_peer_add(f->dev, key, &f->p2), 0);
	sodium_bin2base64(f->pub2, sizeof(f->pub2), key, 32, sodium_base64_VARIANT_ORIGINAL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	wg_device_free(f->dev);
	free(f);
	return 0;
}

struct render_ctx {
	struct fixture *f;
	const struct metrics_daemon *md;
};

static int render(void *ctx, struct uapi_writer *w)
{
	struct render_ctx *rc = ctx;
	struct wg_now now = { .mono = 5000 * SEC, .wall = 1700001000ULL * SEC };

	metrics_write(w, "wg0", rc->f->dev, rc->md, now);
	return 0;
}

/* The page, NUL-terminated (free it). */
static char *page(struct fixture *f, const struct metrics_daemon *md)
{
	struct render_ctx rc = { f, md };
	struct uapi_buf out = { 0 };
	char *text;

	assert_int_equal(uapi_render(&out, render, &rc), 0);
	text = strndup(out.data, out.len);
	uapi_buf_free(&out);
	assert_non_null(text);
	return text;
}

static void has_line(const char *text, const char *fmt, const char *pub, const char *value)
{
	char want[512];

	snprintf(want, sizeof(want), fmt, pub, value);
	if (!strstr(text, want))
		fail_msg("no line \"%s\" in:\n%s", want, text);
}

/* 0.9 s past a second is still that second: show (get=1) truncates, and so must this. */
static void test_last_handshake_whole_seconds(void **state)
{
	struct fixture *f = *state;
	struct metrics_daemon md = { 0 };
	char *text;

	f->p1->last_handshake_wall = 1700000000ULL * SEC + 900000000ULL;
	f->p2->last_handshake_wall = 0;
	text = page(f, &md);
	has_line(text, "veil_peer_last_handshake_seconds{interface=\"wg0\",public_key=\"%s\"} %s\n", f->pub1,
		 "1700000000");
	has_line(text, "veil_peer_last_handshake_seconds{interface=\"wg0\",public_key=\"%s\"} %s\n", f->pub2, "0");
	free(text);
}

/* The latest refused handshake: its time under its reason; a peer without one has no sample. */
static void test_last_failure(void **state)
{
	static const struct {
		enum wg_refusal why;
		const char *kind, *text;
	} rows[] = {
		{ WG_REFUSAL_AES_OFFERED, "cipher_mismatch",
		  "cipher mismatch: the peer uses aes256gcm, this side has cipher chacha20poly1305 for it" },
		{ WG_REFUSAL_CHACHA_OFFERED, "cipher_mismatch",
		  "cipher mismatch: the peer uses chacha20poly1305, this side has cipher aes256gcm for it" },
		{ WG_REFUSAL_UNANSWERED, "unanswered", "no answer to any handshake initiation" },
		{ WG_REFUSAL_BAD_AUTH, "bad_response", "a handshake response that does not authenticate" },
		{ WG_REFUSAL_UNEXPECTED, "unexpected_response", "a handshake response to no initiation in progress" },
		{ WG_REFUSAL_REPLAY, "other", "replayed timestamp" },
		{ WG_REFUSAL_FLOOD, "other", "initiation flood" },
	};
	struct fixture *f = *state;
	struct metrics_daemon md = { 0 };
	struct metrics_failure why;
	char *text, want[256];
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		f->p1->handshake_failures = 7;
		f->p1->last_failure = rows[i].why;
		f->p1->last_failure_wall = 1700000500ULL * SEC + 999999999ULL;
		metrics_describe_failure(f->p1, &why);
		assert_string_equal(why.kind, rows[i].kind);
		if (strncmp(why.text, rows[i].text, strlen(rows[i].text)) != 0)
			fail_msg("row %zu: \"%s\" does not start \"%s\"", i, why.text, rows[i].text);
		text = page(f, &md);
		has_line(text, "veil_peer_handshake_failures_total{interface=\"wg0\",public_key=\"%s\"} %s\n", f->pub1,
			 "7");
		snprintf(want, sizeof(want), "veil_peer_last_handshake_failure_seconds{interface=\"wg0\","
			 "public_key=\"%s\",reason=\"%s\"} 1700000500\n", f->pub1, rows[i].kind);
		if (!strstr(text, want))
			fail_msg("row %zu: no \"%s\" in:\n%s", i, want, text);
		snprintf(want, sizeof(want), "veil_peer_last_handshake_failure_seconds{interface=\"wg0\","
			 "public_key=\"%s\"", f->pub2);
		if (strstr(text, want))
			fail_msg("a peer without a failure has a sample:\n%s", text);
		free(text);
	}
}

/* Packets from the TUN longer than veild carries are counted, under their reason. */
static void test_too_long_drops(void **state)
{
	struct fixture *f = *state;
	struct metrics_daemon md = { .too_long = 42 };
	char *text = page(f, &md);

	if (!strstr(text, "# TYPE veil_transmit_drops_total counter\n") ||
	    !strstr(text, "veil_transmit_drops_total{interface=\"wg0\",reason=\"too_long\"} 42\n"))
		fail_msg("no too_long drops in:\n%s", text);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_last_handshake_whole_seconds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_long_drops, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
