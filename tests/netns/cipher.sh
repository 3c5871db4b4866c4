#!/usr/bin/env bash
# The AES-256-GCM suite between two veild, set with `veilctl set ... cipher`:
# a 50 MB transfer each way with checksums. Then one side goes back to
# WireGuard's ChaCha20-Poly1305: its sessions end, the next handshake fails
# and the log names the mismatch (the suite is bound into the handshake, so
# nothing is downgraded); setting it back recovers. A daemon that cannot honour
# the cipher (wireguard-go) makes `veilctl set` and `veilctl up` fail, not
# quietly run the default. veild with wireguard-go on the default suite is
# interop.sh's job.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
MB=${MB:-50}
A="ca$RUN"
B="cb$RUN"
G="cg$RUN"
setup_hosts
genkeys
P1=$(cat "$TMP/p1")
P2=$(cat "$TMP/p2")

start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
tunnel_pair -4 "$A" "$B" 51001 51002 198.18.0.1 198.18.0.2

log "--- both sides on aes256gcm"
run "$VEILCTL" set "$A" peer "$P2" cipher aes256gcm || fail "set cipher on A"
run "$VEILCTL" set "$B" peer "$P1" cipher aes256gcm || fail "set cipher on B"
qgrep "event=cipher_set iface=$A .*cipher=aes256gcm" <"$TMP/$A.log" || fail "no audit line for the cipher"
ping_ok "$NS1" 192.0.2.2 || fail "A -> B ping on aes256gcm"
transfer "$NS1" "$NS2" 192.0.2.2 "$MB"
transfer "$NS2" "$NS1" 192.0.2.1 "$MB"
[ "$(wg show "$A" latest-handshakes | cut -f2)" -gt 0 ] || fail "no handshake on A"
# veilctl reads the running cipher back (veil_get=1); wg's get=1 stays plain.
"$VEILCTL" show "$A" | qgrep -F "cipher: aes256gcm" || fail "show lacks the cipher"
[ "$("$VEILCTL" show "$A" --json | jq -r '.peers[0].cipher')" = aes256gcm ] || fail "show --json: cipher"
"$VEILCTL" showconf "$A" | qgrep -x "Cipher = aes256gcm" || fail "showconf lacks the cipher"
# A command that fails prints no cipher either: the negative checks read its output first.
out=$(wg showconf "$A") || fail "wg showconf $A"
qgrep -i cipher <<<"$out" && fail "wg showconf has a cipher line"

log "--- B goes back to chacha20poly1305: the next handshake fails, and says why"
run "$VEILCTL" set "$B" peer "$P1" cipher chacha20poly1305 || fail "set cipher back on B"
out=$("$VEILCTL" show "$B") || fail "veilctl show $B"
qgrep -F "cipher:" <<<"$out" && fail "show names the default cipher"
[ "$("$VEILCTL" show "$B" --json | jq -r '.peers[0].cipher')" = chacha20poly1305 ] ||
	fail "show --json: the default cipher"
out=$("$VEILCTL" showconf "$B") || fail "veilctl showconf $B"
qgrep -i "^Cipher" <<<"$out" && fail "showconf wrote the default cipher"
n2 ping -q -c 3 -i 0.3 -W 1 192.0.2.1 >/dev/null 2>&1 && fail "B reached A with differing ciphers"
found=
for _ in $(seq 100); do
	qgrep "handshake refused: cipher mismatch: the peer uses chacha20poly1305, this side has cipher aes256gcm" \
		<"$TMP/$A.log" && { found=1; break; }
	sleep 0.1
done
[ -n "$found" ] || fail "A did not log the mismatch"
qgrep "event=handshake_failed iface=$A .*reason=\"cipher mismatch\" offered=chacha20poly1305 configured=aes256gcm" \
	<"$TMP/$A.log" || fail "no audit line for the mismatch"
# Seen without the log too: show, show --json, top and the metrics say why.
why="cipher mismatch: the peer uses chacha20poly1305, this side has cipher aes256gcm for it"
out=$("$VEILCTL" show "$A") || fail "veilctl show $A"
qgrep -E "handshake failures: [1-9][0-9]*, the latest .* ago: $why" <<<"$out" || fail "show lacks the refusal: $out"
out=$("$VEILCTL" show "$A" --json) || fail "veilctl show --json $A"
[ "$(jq -r '.peers[0].latest_handshake_failure_reason' <<<"$out")" = "$why" ] || fail "show --json: reason: $out"
[ "$(jq -r '.peers[0].handshake_failures' <<<"$out")" -ge 1 ] || fail "show --json: no failure counted: $out"
[ $(($(date +%s) - $(jq -r '.peers[0].latest_handshake_failure' <<<"$out"))) -lt 60 ] ||
	fail "show --json: the latest failure's time: $out"
out=$(timeout 10 "$VEILCTL" top "$A" </dev/null) || fail "veilctl top $A"
qgrep -F "$why" <<<"$out" || fail "top lacks the refusal: $out"
out=$("$VEILCTL" metrics "$A") || fail "veilctl metrics $A"
qgrep -E "^veil_peer_last_handshake_failure_seconds\{interface=\"$A\",public_key=\"[^\"]+\",reason=\"cipher_mismatch\"\} [0-9]+$" \
	<<<"$out" || fail "metrics lack the refusal: $out"
# wg's get=1 has none of it (Debian's wg refuses unknown keys in its reply).
wg show "$A" >/dev/null || fail "wg show $A after the refusal"
log "the refusal is in show, show --json, top and the metrics"
grep -c "handshake complete" "$TMP/$A.log" >"$TMP/hs-before"

log "--- B back on aes256gcm: the tunnel recovers"
run "$VEILCTL" set "$B" peer "$P1" cipher aes256gcm || fail "set cipher again on B"
ping_ok "$NS2" 192.0.2.1 || fail "B -> A ping after the ciphers agree again"
[ "$(grep -c "handshake complete" "$TMP/$A.log")" -gt "$(cat "$TMP/hs-before")" ] ||
	fail "no new handshake after recovery"

log "--- wireguard-go cannot honour a cipher: veilctl fails, nothing runs on the default"
start_daemon "$NS1" wireguard-go "$G"
run wg set "$G" private-key "$TMP/k1" peer "$P2" allowed-ips 192.0.2.20/32
"$VEILCTL" set "$G" peer "$P2" cipher aes256gcm 2>"$TMP/g.err" && fail "set cipher on wireguard-go succeeded"
cat >"$TMP/$G.conf" <<CONF
[Interface]
PrivateKeyFile = $TMP/k1
Address = 192.0.2.11/24

[Peer]
PublicKey = $P2
AllowedIPs = 192.0.2.2/32
Endpoint = 198.18.0.2:51002
Cipher = aes256gcm
CONF
STATE_FILES+=("/var/run/veil/$G.state")
n1 "$VEILCTL" up "$TMP/$G.conf" 2>"$TMP/g.err" && fail "up with Cipher on wireguard-go succeeded"
qgrep "refused the configuration: Invalid argument (Cipher = aes256gcm is veild's own" <"$TMP/g.err" ||
	fail "no clear error: $(cat "$TMP/g.err")"
[ -e "/var/run/veil/$G.state" ] && fail "a failed up left its state"
n1 ip -o addr show dev "$G" | qgrep 192.0.2.11 && fail "a failed up left its address"
log "cipher: all passed"
