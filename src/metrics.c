// SPDX-License-Identifier: MIT
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/messages.h"

/* What each drop reason is called in a label (device.h's enum wg_drop). */
static const char *const drop_names[WG_DROP_COUNT] = {
	[WG_DROP_NONE] = NULL,
	[WG_DROP_MALFORMED] = "malformed",
	[WG_DROP_BAD_MAC] = "bad_mac",
	[WG_DROP_COOKIE_SENT] = "cookie_sent",
	[WG_DROP_RATELIMIT] = "rate_limited",
	[WG_DROP_HANDSHAKE] = "handshake_refused",
	[WG_DROP_COOKIE] = "bad_cookie",
	[WG_DROP_NO_KEYPAIR] = "no_session",
	[WG_DROP_DECRYPT] = "bad_auth",
	[WG_DROP_REPLAY] = "replay",
	[WG_DROP_BAD_INNER] = "bad_inner_packet",
	[WG_DROP_ALLOWEDIPS] = "allowed_ips",
};

enum peer_value {
	V_RX_BYTES, V_TX_BYTES, V_RX_PACKETS, V_TX_PACKETS, V_HANDSHAKES, V_HS_FAILURES,
	V_LAST_HANDSHAKE, V_LAST_FAILURE, V_KEYPAIR_AGE, V_DROP_REPLAY, V_DROP_AUTH, V_DROP_ALLOWED,
	V_COUNT,
};

static const struct family {
	const char *name, *type, *help;
} peer_families[V_COUNT] = {
	[V_RX_BYTES] = { "veil_peer_receive_bytes_total", "counter",
			 "Bytes of authenticated WireGuard messages received from the peer." },
	[V_TX_BYTES] = { "veil_peer_transmit_bytes_total", "counter",
			 "Bytes of WireGuard messages sent to the peer." },
	[V_RX_PACKETS] = { "veil_peer_receive_packets_total", "counter",
			   "Authenticated WireGuard messages received from the peer." },
	[V_TX_PACKETS] = { "veil_peer_transmit_packets_total", "counter",
			   "WireGuard messages sent to the peer (data, keepalives, handshakes)." },
	[V_HANDSHAKES] = { "veil_peer_handshakes_total", "counter",
			   "Handshakes completed with the peer." },
	[V_HS_FAILURES] = { "veil_peer_handshake_failures_total", "counter",
			    "Handshake messages of the peer refused, and handshakes given up unanswered." },
	[V_LAST_HANDSHAKE] = { "veil_peer_last_handshake_seconds", "gauge",
			       "Unix time of the latest completed handshake (0: never)." },
	[V_LAST_FAILURE] = { "veil_peer_last_handshake_failure_seconds", "gauge",
			     "Unix time of the latest refused or unanswered handshake, under its reason "
			     "(absent: never)." },
	[V_KEYPAIR_AGE] = { "veil_peer_keypair_age_seconds", "gauge",
			    "Age of the session keys in use (absent without a session)." },
	[V_DROP_REPLAY] = { "veil_peer_drops_total", "counter",
			    "Messages of the peer dropped, by reason." },
};

/* A value of one peer; false when the sample is absent. */
static bool peer_value(const struct wg_peer *p, enum peer_value v, struct wg_now now, double *out)
{
	uint64_t sec, age;

	switch (v) {
	case V_RX_BYTES: *out = (double)p->rx_bytes; return true;
	case V_TX_BYTES: *out = (double)p->tx_bytes; return true;
	case V_RX_PACKETS: *out = (double)p->rx_packets; return true;
	case V_TX_PACKETS: *out = (double)p->tx_packets; return true;
	case V_HANDSHAKES: *out = (double)p->handshakes_completed; return true;
	case V_HS_FAILURES: *out = (double)p->handshake_failures; return true;
	case V_LAST_HANDSHAKE:
		/* Whole seconds, as get=1 (and so wg show and veilctl show) has them: never rounded up. */
		sec = p->last_handshake_wall / NSEC_PER_SEC;
		*out = (double)sec;
		return true;
	case V_LAST_FAILURE:
		sec = p->last_failure_wall / NSEC_PER_SEC;
		*out = (double)sec;
		return p->last_failure_wall != 0;
	case V_KEYPAIR_AGE:
		if (!wg_peer_session_age(p, now.mono, &age))
			return false;
		*out = (double)age / (double)NSEC_PER_SEC;
		return true;
	case V_DROP_REPLAY: *out = (double)p->replay_drops; return true;
	case V_DROP_AUTH: *out = (double)p->decrypt_drops; return true;
	case V_DROP_ALLOWED: *out = (double)p->allowedips_drops; return true;
	default: return false;
	}
}

static void header(struct uapi_writer *w, const struct family *f)
{
	uapi_put_text(w, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
}

/* A failure's label value (metrics.h). */
static const char *failure_kind(enum wg_refusal why)
{
	switch (why) {
	case WG_REFUSAL_AES_OFFERED:
	case WG_REFUSAL_CHACHA_OFFERED:
		return "cipher_mismatch";
	case WG_REFUSAL_UNANSWERED:
		return "unanswered";
	case WG_REFUSAL_BAD_AUTH:
		return "bad_response";
	case WG_REFUSAL_UNEXPECTED:
		return "unexpected_response";
	default:
		return "other";
	}
}

void metrics_describe_failure(const struct wg_peer *p, struct metrics_failure *out)
{
	/* An initiation under AES-256-GCM came, this side expects ChaCha20-Poly1305. */
	bool aes_offered = p->last_failure == WG_REFUSAL_AES_OFFERED;

	out->kind = failure_kind(p->last_failure);
	switch (p->last_failure) {
	case WG_REFUSAL_AES_OFFERED:
	case WG_REFUSAL_CHACHA_OFFERED:
		snprintf(out->text, sizeof(out->text),
			 "cipher mismatch: the peer uses %s, this side has cipher %s for it",
			 aes_offered ? "aes256gcm" : "chacha20poly1305",
			 aes_offered ? "chacha20poly1305" : "aes256gcm");
		break;
	case WG_REFUSAL_UNANSWERED:
		snprintf(out->text, sizeof(out->text), "no answer to any handshake initiation for %d s "
			 "(the peer down or unreachable, or its key for this side another)",
			 REKEY_ATTEMPT_TIME_SEC);
		break;
	case WG_REFUSAL_BAD_AUTH:
		snprintf(out->text, sizeof(out->text), "a handshake response that does not authenticate "
			 "(the pre-shared keys differ?)");
		break;
	case WG_REFUSAL_UNEXPECTED:
		snprintf(out->text, sizeof(out->text), "a handshake response to no initiation in progress");
		break;
	default:
		snprintf(out->text, sizeof(out->text), "%s", wg_refusal_name(p->last_failure));
		break;
	}
}

/* One family over every peer; drops take a reason label. */
static void peer_family(struct uapi_writer *w, const char *ifname, struct wg_device *dev,
			enum peer_value v, struct wg_now now)
{
	static const char *const reasons[] = { "replay", "bad_auth", "allowed_ips" };
	char pub[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	struct wg_peer *p;
	int k, kinds = v == V_DROP_REPLAY ? 3 : 1;
	double x;

	header(w, &peer_families[v]);
	for (p = wg_device_peer_first(dev); p; p = wg_device_peer_next(p)) {
		sodium_bin2base64(pub, sizeof(pub), p->public_key, 32, sodium_base64_VARIANT_ORIGINAL);
		for (k = 0; k < kinds; k++) {
			if (!peer_value(p, (enum peer_value)(v + k), now, &x))
				continue;
			if (v == V_DROP_REPLAY || v == V_LAST_FAILURE)
				uapi_put_text(w, "%s{interface=\"%s\",public_key=\"%s\",reason=\"%s\"} %.0f\n",
					      peer_families[v].name, ifname, pub,
					      v == V_LAST_FAILURE ? failure_kind(p->last_failure) : reasons[k], x);
			else
				uapi_put_text(w, "%s{interface=\"%s\",public_key=\"%s\"} %.0f\n",
					      peer_families[v].name, ifname, pub, x);
		}
	}
}

void metrics_write(struct uapi_writer *w, const char *ifname, struct wg_device *dev,
		   const struct metrics_daemon *md, struct wg_now now)
{
	const struct wg_device_stats *st = wg_device_stats(dev);
	enum peer_value v;
	int r;

	uapi_put_text(w, "# HELP veil_peers Peers configured.\n# TYPE veil_peers gauge\n");
	uapi_put_text(w, "veil_peers{interface=\"%s\"} %zu\n", ifname, wg_device_peer_count(dev));
	uapi_put_text(w, "# HELP veil_under_load Whether handshakes are answered with cookies now.\n"
			 "# TYPE veil_under_load gauge\n");
	uapi_put_text(w, "veil_under_load{interface=\"%s\"} %d\n", ifname,
		      wg_device_under_load(dev, now.mono) ? 1 : 0);
	uapi_put_text(w, "# HELP veil_handshakes_total Handshakes completed with any peer.\n"
			 "# TYPE veil_handshakes_total counter\n");
	uapi_put_text(w, "veil_handshakes_total{interface=\"%s\"} %llu\n", ifname,
		      (unsigned long long)st->handshakes_completed);
	uapi_put_text(w, "# HELP veil_cookie_replies_total Cookie replies sent under load.\n"
			 "# TYPE veil_cookie_replies_total counter\n");
	uapi_put_text(w, "veil_cookie_replies_total{interface=\"%s\"} %llu\n", ifname,
		      (unsigned long long)st->cookie_replies_sent);
	uapi_put_text(w, "# HELP veil_drops_total Datagrams received and dropped, by reason.\n"
			 "# TYPE veil_drops_total counter\n");
	for (r = 1; r < WG_DROP_COUNT; r++)
		uapi_put_text(w, "veil_drops_total{interface=\"%s\",reason=\"%s\"} %llu\n", ifname,
			      drop_names[r], (unsigned long long)st->drops[r]);
	uapi_put_text(w, "# HELP veil_transmit_drops_total Packets from the interface dropped before "
			 "they were sent, by reason.\n# TYPE veil_transmit_drops_total counter\n");
	uapi_put_text(w, "veil_transmit_drops_total{interface=\"%s\",reason=\"too_long\"} %llu\n", ifname,
		      (unsigned long long)md->too_long);
	for (v = 0; v <= V_DROP_REPLAY; v++)
		peer_family(w, ifname, dev, v, now);
}
