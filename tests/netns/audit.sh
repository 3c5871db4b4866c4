#!/usr/bin/env bash
# The audit trail: every configuration change made through the control socket and every
# key event is one structured AUDIT line naming the event, the interface, the peer's
# fingerprint, who asked (uid and pid) and the time; and no key ever appears in a log.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="aa$RUN" B="ab$RUN"
LOG_LEVEL=error start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
P1=$(cat "$TMP/p1") P2=$(cat "$TMP/p2")
# The fingerprint is used in extended regular expressions below: escape its "+".
FP2=$(printf '%s' "${P2:0:11}" | sed 's/+/\\+/g')

run wg set "$A" private-key "$TMP/k1" listen-port 51001 fwmark 0x20 \
	peer "$P2" preshared-key "$TMP/psk" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51002 \
	persistent-keepalive 25
run wg set "$B" private-key "$TMP/k2" listen-port 51002 \
	peer "$P1" preshared-key "$TMP/psk" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
n1 ip addr add 192.0.2.1/24 dev "$A"
n1 ip link set "$A" up
n2 ip addr add 192.0.2.2/24 dev "$B"
n2 ip link set "$B" up
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
log "audit: all passed"
