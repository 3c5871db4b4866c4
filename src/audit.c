// SPDX-License-Identifier: MIT
/*
 * What veild's lines say about peers, and how often: a peer's fingerprint
 * (never its key), an endpoint and a cipher as text, the structured audit
 * line for every change of configuration or key event, and the lines for
 * refused handshake messages, at most one a second per reason, for
 * strangers and for each peer apart.
 */
#include "daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sodium.h>

#include "log.h"

void audit__fingerprint(const uint8_t *pub, char out[12])
{
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

	sodium_bin2base64(b64, sizeof(b64), pub, 32, sodium_base64_VARIANT_ORIGINAL);
	memcpy(out, b64, 11);
	out[11] = '\0';
}

/*
 * One structured line per change of configuration or key event: event name,
 * interface, peer fingerprint (never a key), who asked, and the time (added
 * by log_audit). uid=- pid=- means the daemon itself.
 */
void audit__line(struct daemon *d, const char *event, const uint8_t *pub, const char *fmt, ...)
{
	char fp[12] = "-", extra[256] = "", who[48];
	va_list ap;

	if (pub)
		audit__fingerprint(pub, fp);
	if (fmt) {
		extra[0] = ' ';
		va_start(ap, fmt);
		/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start is right above; a clang-tidy 14 false positive. */
		vsnprintf(extra + 1, sizeof(extra) - 1, fmt, ap);
		va_end(ap);
	}
	if (d->who_uid >= 0)
		snprintf(who, sizeof(who), "uid=%ld pid=%ld", d->who_uid, d->who_pid);
	else
		snprintf(who, sizeof(who), "uid=- pid=-");
	log_audit("event=%s iface=%s peer=%s %s%s", event, d->cfg->ifname, fp, who, extra);
}

/*
 * A refused handshake message costs its sender one packet: whether it
 * gets its line, at most one a second per reason (slots[0..n), a new
 * reason taking the stalest). True with *count the failures the line
 * stands for, this one and those kept quiet since the last line.
 */
static bool fail_limit_pass(struct fail_limit *slots, size_t n, int err, uint64_t now,
			    uint64_t *count)
{
	struct fail_limit *a = &slots[0];
	size_t i;

	for (i = 0; i < n; i++) {
		if (slots[i].err == err) {
			a = &slots[i];
			break;
		}
		if (slots[i].w.start < a->w.start)
			a = &slots[i];
	}
	if (a->err != err) {
		a->err = err;
		a->w = (struct rate_window){ 0 };
		a->quiet = 0;
	}
	if (rate_window_hit(&a->w, now, NSEC_PER_SEC) > 1) {
		a->quiet++;
		return false;
	}
	*count = a->quiet + 1;
	a->quiet = 0;
	return true;
}

/*
 * An initiation with a valid MAC1 but no peer behind it costs a stranger
 * one packet: report such failures at most once a second per reason, with
 * how many the line stands for, so they cannot flood the log.
 */
void audit__anonymous_failure(struct daemon *d, enum wg_refusal why)
{
	uint64_t count;

	if (!fail_limit_pass(d->anon, ANON_REASONS, (int)why, now_of(d).mono, &count))
		return;
	log_info("%s: handshake initiation from no known peer refused: %s", d->cfg->ifname,
		 wg_refusal_name(why));
	audit__line(d, "handshake_failed", NULL, "reason=\"%s\" count=%" PRIu64, wg_refusal_name(why),
	      count);
}

const char *audit__suite_name(enum noise_suite suite)
{
	return suite == NOISE_SUITE_AES256GCM ? "aes256gcm" : "chacha20poly1305";
}

/* The peer's initiation is authentic but under the other cipher: say which, loudly. */
static void suite_mismatch(struct daemon *d, struct wg_peer *peer, const char *fp,
			   enum wg_refusal why, uint64_t count)
{
	bool aes = why == WG_REFUSAL_AES_OFFERED;
	const char *offered = audit__suite_name(aes ? NOISE_SUITE_AES256GCM : NOISE_SUITE_WIREGUARD);
	const char *ours = audit__suite_name(aes ? NOISE_SUITE_WIREGUARD : NOISE_SUITE_AES256GCM);

	log_error("%s: peer %s…: handshake refused: cipher mismatch: the peer uses %s, this side "
		  "has cipher %s for it; both sides must set the same (never downgraded)",
		  d->cfg->ifname, fp, offered, ours);
	audit__line(d, "handshake_failed", peer->public_key,
	      "reason=\"cipher mismatch\" offered=%s configured=%s count=%" PRIu64, offered, ours,
	      count);
}

/*
 * A handshake message refused for a known peer: a forged response names
 * the peer its (visible) receiver index belongs to, so these lines are
 * rate-limited per peer and reason like the anonymous ones.
 */
void audit__peer_failure(struct daemon *d, struct wg_peer *peer, const char *fp, enum wg_refusal why)
{
	struct vpeer *vp = peer->user;
	uint64_t count;

	if (!fail_limit_pass(vp->fail, PEER_REASONS, (int)why, now_of(d).mono, &count))
		return;
	if (wg_refusal_is_suite_mismatch(why)) {
		suite_mismatch(d, peer, fp, why, count);
		return;
	}
	log_info("%s: peer %s…: handshake message refused: %s", d->cfg->ifname, fp,
		 wg_refusal_name(why));
	audit__line(d, "handshake_failed", peer->public_key, "reason=\"%s\" count=%" PRIu64,
	      wg_refusal_name(why), count);
}

void audit__endpoint_str(const struct sockaddr *sa, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, len, "%s:%u", a, ntohs(s4->sin_port));
	}
}
