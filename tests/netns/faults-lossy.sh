#!/usr/bin/env bash
# A bad underlay: 10% loss, 5% duplicates, 25% reordered against a 1 ms delay, in
# both directions. A 50 MB TCP transfer through veild<->veild still arrives whole.
# Then a numbered UDP stream shows the replay window at work from the outside: a
# capture on B's host counts the transport messages that arrived twice on the wire
# (same receiver index and counter), yet inside the tunnel no datagram arrives
# twice, while reordered ones are still delivered.
#
# The impairment is netem's "loss 10% duplicate 5% reorder 25% 50% delay 1ms"
# (without the correlation), done by a UDP relay (tests/tools/udpmangle) in the
# middle host, because kernels built without sch_netem are common in CI; it works
# everywhere. A (NS1) -> relay (NS2, 198.18.0.2:51003 / 198.18.1.2:51004) -> B (NS3).
. "$(dirname "$0")/lib.sh"

SEQUDP="$ROOT/$BUILD/tools/sequdp"
MANGLE="$ROOT/$BUILD/tools/udpmangle"
for t in "$SEQUDP" "$MANGLE" "$XFER"; do [ -x "$t" ] || fail "missing $t: make $t"; done
MB=${MB:-50}
COUNT=${COUNT:-4000}

setup_hosts
setup_third_host
genkeys
A="na$RUN" B="nb$RUN"
start_daemon "$NS1" veild "$A"
start_daemon "$NS3" veild "$B"
run wg set "$A" private-key "$TMP/k1" listen-port 51001 \
	peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51003
run wg set "$B" private-key "$TMP/k2" listen-port 51002 \
	peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32 endpoint 198.18.1.2:51004
n1 ip addr add 192.0.2.1/24 dev "$A"
n1 ip link set "$A" up
n3 ip addr add 192.0.2.2/24 dev "$B"
n3 ip link set "$B" up

echo "+ udpmangle in $NS2 (loss 10%, duplicate 5%, reorder 25%, delay 1 ms)"
ip netns exec "$NS2" timeout 300 "$MANGLE" -l 10 -d 5 -r 25 -D 1 -t 290 \
	198.18.0.2 51003 198.18.0.1 51001 198.18.1.2 51004 198.18.1.3 51002 >"$TMP/mangle.out" &
MPID=$!
PIDS+=("$MPID")
for _ in $(seq 50); do grep -q relaying "$TMP/mangle.out" 2>/dev/null && break; sleep 0.1; done
grep -q relaying "$TMP/mangle.out" || fail "udpmangle did not start"
ping_ok "$NS1" 192.0.2.2 || fail "no ping through the lossy underlay"

log "--- $MB MB TCP transfer through the lossy relay"
t0=$(date +%s%N)
transfer "$NS1" "$NS3" 192.0.2.2 "$MB"
ms=$((($(date +%s%N) - t0) / 1000000))
log "transfer took $ms ms ($((MB * 8 * 1048576 / 1000 / (ms > 0 ? ms : 1))) Mbit/s)"

log "--- $COUNT numbered UDP datagrams A -> B, captured on B's underlay"
ip netns exec "$NS3" tcpdump -i "y$RUN" -nn -s 96 -U -w "$TMP/wire.pcap" "udp and dst port 51002" \
	2>"$TMP/tcpdump.log" &
TCPDUMP=$!
PIDS+=("$TCPDUMP")
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.log" && break; sleep 0.1; done
grep -q "listening on" "$TMP/tcpdump.log" || fail "tcpdump did not start"
port=$((30000 + RANDOM % 10000))
rm -f "$TMP/seq.out"
n3 timeout 60 "$SEQUDP" recv "$port" "$COUNT" >"$TMP/seq.out" &
rpid=$!
wait_listening "$TMP/seq.out"
n1 timeout 60 "$SEQUDP" send 192.0.2.2 "$port" "$COUNT" 2000 >/dev/null || fail "sequdp send failed"
wait "$rpid" || fail "sequdp recv failed"
sleep 0.2
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true
kill -TERM "$MPID"
wait "$MPID" 2>/dev/null || true
inner=$(tail -n 1 "$TMP/seq.out")
log "relay, whole run: $(tr '\n' ' ' <"$TMP/mangle.out" | sed 's/relaying //')"
log "inner: $inner"

# Transport messages (type 4) on the wire, and how many repeat a (receiver, counter) pair.
tshark -r "$TMP/wire.pcap" -d udp.port==51002,wg -Y "wg.type == 4" \
	-T fields -e wg.receiver -e wg.counter 2>/dev/null >"$TMP/wire.txt"
wire=$(wc -l <"$TMP/wire.txt")
wire_dups=$((wire - $(sort -u "$TMP/wire.txt" | wc -l)))
log "wire: $wire transport messages captured, $wire_dups of them duplicates"

val() { echo "$inner" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
dups=$(val duplicates) unique=$(val unique) reordered=$(val reordered) lost=$(val lost)
[ -n "$dups" ] && [ -n "$unique" ] || fail "no summary from sequdp: $inner"
[ "$wire" -ge $((COUNT / 2)) ] || fail "only $wire transport messages captured"
[ "$wire_dups" -ge $((COUNT / 100)) ] || fail "only $wire_dups duplicated messages on the wire"
[ "$dups" -eq 0 ] || fail "$dups duplicate datagrams got through the tunnel"
[ "$unique" -ge $((COUNT * 7 / 10)) ] || fail "only $unique of $COUNT datagrams arrived"
[ "$reordered" -gt 0 ] || fail "no reordered datagram delivered: is the window accepting them?"
log "faults-lossy: all passed (wire duplicates $wire_dups, inner duplicates $dups," \
	"inner reordered $reordered, lost $lost of $COUNT; $MB MB in $ms ms)"
