#!/usr/bin/env bash
# The audit trail: every configuration change made through the control socket and every
# key event is one structured AUDIT line naming the event, the interface, the peer's
# fingerprint, who asked (uid and pid) and the time; and no key ever appears in a log.
# Refused handshake messages that name a peer (a forged response carries a live
# index and a valid mac1, both visible on the wire) make one line a second per
# reason, with the count it stands for: 1,000 forged responses, a handful of lines.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="aa$RUN" B="ab$RUN"
LOG_LEVEL=error start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
P1=$(cat "$TMP/p1") P2=$(cat "$TMP/p2")
# The fingerprint is used in extended regular expressions below: escape its "+".
FP2=$(printf '%s' "${P2:0:11}" | sed 's/+/\\+/g')

tunnel_pair -4 -d "fwmark 0x20" -p "persistent-keepalive 25" "$A" "$B" 51001 51002 198.18.0.1 198.18.0.2
ping_ok "$NS1" 192.0.2.2 || fail "ping"
# The same allowed IPs again change nothing and must not be logged; new ones must.
run wg set "$A" peer "$P2" allowed-ips 192.0.2.2/32
run wg set "$A" peer "$P2" allowed-ips 192.0.2.2/32,fd00::2/128

# A PSK mismatch: B's next handshake response is refused by A, with a reason.
wg genpsk >"$TMP/psk2"
run wg set "$B" peer "$P1" preshared-key "$TMP/psk2"
run wg set "$A" peer "$P2" remove
run wg set "$A" peer "$P2" preshared-key "$TMP/psk" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51002
n1 ping -c 1 -W 2 192.0.2.2 >/dev/null 2>&1 && fail "ping worked despite a PSK mismatch"
for _ in $(seq 50); do grep -q "event=handshake_failed" "$TMP/$A.log" && break; sleep 0.1; done

grep AUDIT "$TMP/$A.log" >"$TMP/audit"
cat "$TMP/audit"
expect() { # expect EVENT [PATTERN]: a line for EVENT on A, with who and time, matching PATTERN
	grep -E "AUDIT: time=[0-9-]{10}T[0-9:.]{12}Z event=$1 iface=$A " "$TMP/audit" | qgrep -E "${2:-.}" ||
		fail "no audit line for $1 ${2:-}"
}
expect private_key_set "peer=- uid=0 pid=[0-9]+"
expect listen_port_set "port=51001"
expect fwmark_set "fwmark=0x20"
expect peer_added "peer=$FP2 uid=0 pid=[0-9]+"
expect psk_changed "peer=$FP2"
expect endpoint_set "peer=$FP2 .*endpoint=198.18.0.2:51002"
expect keepalive_set "interval=25"
expect allowed_ips_changed "peer=$FP2 .*count=2"
expect handshake_completed "peer=$FP2 uid=- pid=- role=initiator"
expect peer_removed "peer=$FP2 uid=0"
expect handshake_failed "peer=$FP2 .*reason="
[ "$(grep -c "event=allowed_ips_changed" "$TMP/audit")" = 3 ] ||
	fail "allowed IPs logged $(grep -c "event=allowed_ips_changed" "$TMP/audit") times, expected 3 (first set, the v6 addition, after re-adding)"

# No key material in any log: private keys, PSKs, and not even whole public keys.
for f in "$TMP/$A.log" "$TMP/$B.log"; do
	for k in "$(cat "$TMP/k1")" "$(cat "$TMP/k2")" "$(cat "$TMP/psk")" "$(cat "$TMP/psk2")" "$P1" "$P2"; do
		grep -qF "$k" "$f" && fail "a key appears in $f"
		hex=$(echo "$k" | base64 -d | od -An -tx1 | tr -d ' \n')
		grep -qiF "$hex" "$f" && fail "a key appears in hex in $f"
	done
done
log "--- 1,000 forged handshake responses: a few lines, every one counted"
C="ac$RUN"
start_daemon "$NS1" veild "$C"
CPID=${PIDS[-1]}
wg genkey >"$TMP/k3"
run wg set "$C" private-key "$TMP/k3" listen-port 51003 \
	peer "$P2" allowed-ips 192.0.2.102/32 endpoint 198.18.0.2:51099
n1 ip addr add 192.0.2.101/32 dev "$C"
n1 ip link set "$C" up
n1 ip route add 192.0.2.102/32 dev "$C"
# The forger sits where C believes its peer is and answers C's initiation.
n2 timeout 40 "$ROOT/$BUILD/tools/forgeresp" -n 1000 198.18.0.2 51099 "$(wg pubkey <"$TMP/k3")" \
	>"$TMP/forge.out" 2>&1 &
FORGER=$!
PIDS+=("$FORGER")
sleep 0.3
n1 ping -c 1 -W 1 192.0.2.102 >/dev/null 2>&1 || true
wait "$FORGER" || { cat "$TMP/forge.out"; fail "forgeresp"; }
cat "$TMP/forge.out"
sent=$(sed -n 's/^sent=\([0-9]*\) .*/\1/p' "$TMP/forge.out")
failures() {
	"$ROOT/$BUILD/veilctl" metrics "$C" | awk '/^veil_peer_handshake_failures_total/ { print $2 }'
}
counted() {
	grep -E "AUDIT: .* event=handshake_failed iface=$C peer=$FP2 " "$TMP/$C.log" |
		sed -n 's/.* count=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
# The last response follows the others by 1.1 s: its line counts those kept quiet.
for _ in $(seq 50); do [ "$(counted)" = "$(failures)" ] && break; sleep 0.1; done
lines=$(grep -cE "AUDIT: .* event=handshake_failed iface=$C peer=$FP2 " "$TMP/$C.log" || true)
log "sent $sent, refused $(failures), audit lines $lines counting $(counted)"
[ "$(failures)" -ge $((sent * 9 / 10)) ] || fail "only $(failures) of $sent forged responses reached veild"
[ "$(counted)" = "$(failures)" ] || fail "the audit lines count $(counted) failures, the peer has $(failures)"
if [ "$lines" -lt 2 ] || [ "$lines" -gt 5 ]; then
	fail "$lines audit lines for $sent forged responses over ~2.5 s"
fi
kill -0 "$CPID" || fail "veild died"
log "audit: all passed"
