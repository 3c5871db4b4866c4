#!/usr/bin/env bash
# Cryptokey routing and roaming, veild on every host:
#  - a packet whose inner source is outside the sending peer's allowed IPs is dropped;
#    allowing that source with wg set lets it through;
#  - moving a prefix from one peer to another with wg set redirects traffic;
#  - roaming: the initiator's underlay address changes in the middle of a transfer,
#    the transfer completes intact and the other side's endpoint follows.
. "$(dirname "$0")/lib.sh"

setup_hosts
setup_third_host
genkeys
wg genkey >"$TMP/k3"
wg pubkey <"$TMP/k3" >"$TMP/p3"
A="ra$RUN" B="rb$RUN" C="rc$RUN"
start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
start_daemon "$NS3" veild "$C"
wg_up "$NS1" "$A" "$TMP/k1" 51001 192.0.2.1/24
wg_up "$NS2" "$B" "$TMP/k2" 51002 192.0.2.2/24
wg_up "$NS3" "$C" "$TMP/k3" 51003 192.0.2.3/24
run wg set "$A" peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.0/24 endpoint 198.18.0.2:51002
run wg set "$C" peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.0/24 endpoint 198.18.1.2:51002
run wg set "$B" peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001 \
	peer "$(cat "$TMP/p3")" allowed-ips 192.0.2.3/32 endpoint 198.18.1.3:51003
ping_ok "$NS1" 192.0.2.2 || fail "A -> B"
ping_ok "$NS3" 192.0.2.2 || fail "C -> B"

rx_of() { wg show "$B" transfer | awk -v k="$1" '$1 == k { print $2 }'; }

log "--- a spoofed inner source is dropped"
n1 ip addr add 192.0.2.99/32 dev "$A"
before=$(rx_of "$(cat "$TMP/p1")")
if n1 ping -q -c 3 -i 0.2 -W 1 -I 192.0.2.99 192.0.2.2 >/dev/null 2>&1; then
	fail "B answered a packet whose inner source 192.0.2.99 A may not use"
fi
after=$(rx_of "$(cat "$TMP/p1")")
[ "$after" -gt "$before" ] || fail "the spoofed packets did not even reach B (rx $before -> $after)"
log "spoofed packets reached B (rx $before -> $after) and were not answered"
run wg set "$B" peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32,192.0.2.99/32
ping_ok "$NS1" 192.0.2.2 || fail "after allowing 192.0.2.99"
n1 ping -q -c 3 -i 0.2 -W 2 -w 10 -I 192.0.2.99 192.0.2.2 >/dev/null || fail "allowed source still dropped"

log "--- moving 192.0.2.50/32 from A to C redirects B's traffic"
n1 ip addr add 192.0.2.50/32 dev "$A"
n3 ip addr add 192.0.2.50/32 dev "$C"
run wg set "$B" peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32,192.0.2.50/32
a0=$(rx_of "$(cat "$TMP/p1")"); c0=$(rx_of "$(cat "$TMP/p3")")
ping_ok "$NS2" 192.0.2.50 5 || fail "B -> 192.0.2.50 via A"
a1=$(rx_of "$(cat "$TMP/p1")"); c1=$(rx_of "$(cat "$TMP/p3")")
[ $((a1 - a0)) -ge $((5 * 96)) ] || fail "replies did not come from A ($a0 -> $a1)"
[ $((c1 - c0)) -lt 96 ] || fail "C answered while A held the prefix ($c0 -> $c1)"
run wg set "$B" peer "$(cat "$TMP/p3")" allowed-ips 192.0.2.3/32,192.0.2.50/32
wg show "$B" allowed-ips | grep "$(cat "$TMP/p1")" | qgrep 192.0.2.50 && fail "prefix still listed under A"
ping_ok "$NS2" 192.0.2.50 5 || fail "B -> 192.0.2.50 via C"
a2=$(rx_of "$(cat "$TMP/p1")"); c2=$(rx_of "$(cat "$TMP/p3")")
[ $((c2 - c1)) -ge $((5 * 96)) ] || fail "replies did not come from C ($c1 -> $c2)"
[ $((a2 - a1)) -lt 96 ] || fail "A still got B's traffic ($a1 -> $a2)"

log "--- roaming: A's underlay address changes during a transfer"
port=$((20000 + RANDOM % 10000))
rm -f "$TMP/recv.out"
n2 timeout 150 "$XFER" recv "$port" >"$TMP/recv.out" 2>"$TMP/recv.log" &
RPID=$!
PIDS+=($RPID)
wait_listening "$TMP/recv.out"
# Paced over 2 s, so the change falls inside the transfer however fast the tunnel is.
n1 timeout 150 "$XFER" send 192.0.2.2 "$port" 50 2 >"$TMP/send.out" 2>"$TMP/send.log" &
SPID=$!
PIDS+=($SPID)
sleep 0.3
# Deleting a primary address would take its secondaries along unless promoted.
n1 sysctl -qw "net.ipv4.conf.v$RUN.promote_secondaries=1"
n1 ip addr add 198.18.0.11/24 dev "v$RUN"
n1 ip addr del 198.18.0.1/24 dev "v$RUN"
kill -0 $SPID 2>/dev/null || fail "the transfer ended before the address changed: nothing proven"
wait $SPID || fail "sender failed after roaming"
wait $RPID || fail "receiver failed after roaming"
[ "$(cat "$TMP/send.out")" = "$(tail -n 1 "$TMP/recv.out")" ] || fail "transfer damaged across roaming"
wg show "$B" endpoints | grep "$(cat "$TMP/p1")" | qgrep "198.18.0.11:51001" ||
	fail "B's endpoint for A did not follow: $(wg show "$B" endpoints)"
ping_ok "$NS2" 192.0.2.1 || fail "B -> A after roaming"
log "routing: all passed"
