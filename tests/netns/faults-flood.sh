#!/usr/bin/env bash
# A handshake flood against veild B: tests/tools/hsflood sends real initiations
# (valid mac1 for B's public key, from a fresh random identity, a few hundred of
# them precomputed and cycled) at 20,000 a second for 14 s from a second address
# of host A. Meanwhile:
#  - B enters cookie mode (more than 128 handshake messages in 1/8 s) and answers
#    the flood with cookie replies, which hsflood counts and authenticates;
#  - the established session A<->B keeps carrying traffic: iperf3 throughput
#    during the flood is measured and compared with the throughput before it;
#  - the control socket answers (wg show under a 2 s timeout);
#  - a legitimate peer still gets a new handshake through the cookie exchange
#    (A forgets its session: initiation, cookie reply, retry with mac2 after
#    REKEY_TIMEOUT), so within about 5 s.
# After the flood B leaves cookie mode: a fresh handshake completes at once.
. "$(dirname "$0")/lib.sh"

HSFLOOD="$ROOT/$BUILD/tools/hsflood"
[ -x "$HSFLOOD" ] || fail "missing $HSFLOOD: make $BUILD/tools/hsflood"
RATE=${RATE:-20000}
FLOOD_S=${FLOOD_S:-14}

setup_hosts
genkeys
A="ha$RUN" B="hb$RUN"
start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
tunnel_pair -4 -n "$A" "$B" 51001 51002 198.18.0.1 198.18.0.2
n1 ip addr add 198.18.0.3/24 dev "v$RUN"
ping_ok "$NS1" 192.0.2.2 || fail "no ping before the flood"
wg showconf "$A" >"$TMP/A.conf"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

IPORT=$((5200 + RANDOM % 1000))
ip netns exec "$NS2" iperf3 -s -B 192.0.2.2 -p "$IPORT" >"$TMP/iperf-server.log" 2>&1 &
PIDS+=($!)
sleep 0.5
# mbits SECONDS: iperf3 A -> B through the tunnel, receiver's Mbit/s.
mbits() {
	ip netns exec "$NS1" timeout $(($1 + 10)) iperf3 -c 192.0.2.2 -p "$IPORT" -t "$1" -f m >"$TMP/iperf.out" 2>&1 ||
		fail "iperf3 failed: $(tail -n 3 "$TMP/iperf.out")"
	awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") print $(i - 1) }' "$TMP/iperf.out"
}

before=$(mbits 3)
log "throughput before the flood: $before Mbit/s"

log "--- flood: $RATE initiations/s for $FLOOD_S s from 198.18.0.3"
ip netns exec "$NS1" timeout $((FLOOD_S + 10)) "$HSFLOOD" -b 198.18.0.3 \
	198.18.0.2 51002 "$(cat "$TMP/p2")" "$FLOOD_S" "$RATE" >"$TMP/flood.out" 2>"$TMP/flood.log" &
FPID=$!
PIDS+=("$FPID")
sleep 1
during=$(mbits 3)
log "throughput during the flood: $during Mbit/s"

worst=0
for _ in $(seq 5); do
	t0=$(now_ms)
	timeout 2 wg show "$B" dump >/dev/null || fail "wg show $B did not answer within 2 s during the flood"
	t=$(($(now_ms) - t0))
	[ $t -le $worst ] || worst=$t
	sleep 0.1
done
log "control socket during the flood: 5 of 5 answered, slowest in $worst ms"

log "--- A forgets its session: a new handshake must get through the cookie exchange"
run wg setconf "$A" "$TMP/A.conf"
t0=$(now_ms)
ok=0
for _ in $(seq 60); do
	ip netns exec "$NS1" ping -q -c 1 -W 0.2 192.0.2.2 >/dev/null 2>&1 && { ok=1; break; }
	[ $(($(now_ms) - t0)) -lt 9000 ] || break
done
hs_ms=$(($(now_ms) - t0))
[ $ok = 1 ] || fail "no new handshake within 9 s during the flood"
kill -0 "$FPID" 2>/dev/null || fail "the flood ended before the handshake was done: raise FLOOD_S"
log "handshake during the flood done after $hs_ms ms"

wait "$FPID" || fail "hsflood failed: $(cat "$TMP/flood.log")"
flood=$(tail -n 1 "$TMP/flood.out")
log "hsflood: $flood"
val() { echo "$flood" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
sent=$(val sent) replies=$(val replies) valid=$(val valid)
[ -n "$sent" ] && [ -n "$valid" ] || fail "no summary from hsflood"
[ "$sent" -ge $((RATE * FLOOD_S / 2)) ] || fail "the flood sent only $sent initiations"
[ "$valid" -ge $((sent / 10)) ] || fail "only $valid authentic cookie replies to $sent initiations"
[ "$valid" -eq "$replies" ] || fail "$((replies - valid)) cookie replies did not authenticate"
grep -q "entering cookie mode" "$TMP/$B.log" || fail "B never logged entering cookie mode"
awk -v b="$before" -v d="$during" 'BEGIN { exit !(d >= b / 10 && d > 1) }' ||
	fail "throughput collapsed during the flood: $during Mbit/s (before: $before)"

log "--- after the flood: out of cookie mode, a fresh handshake completes at once"
sleep 1.5
run wg setconf "$A" "$TMP/A.conf"
t0=$(now_ms)
ping_ok "$NS1" 192.0.2.2 1 || fail "no handshake after the flood"
after_ms=$(($(now_ms) - t0))
[ $after_ms -le 3000 ] || fail "the handshake after the flood took $after_ms ms (still in cookie mode?)"
for _ in $(seq 20); do grep -q "leaving cookie mode" "$TMP/$B.log" && break; sleep 0.1; done
grep -q "leaving cookie mode" "$TMP/$B.log" || fail "B never logged leaving cookie mode"
log "faults-flood: all passed (throughput $before -> $during Mbit/s; $sent initiations," \
	"$valid authentic cookie replies; wg show slowest $worst ms; handshake under flood" \
	"$hs_ms ms, after it $after_ms ms)"
