#!/usr/bin/env bash
# veilctl top in a pseudo-terminal (script(1)), as over SSH: with traffic
# running it shows the peer, its endpoint and a non-zero rate; q ends it
# within a second and Ctrl-C too, each time leaving the alternate screen,
# showing the cursor again and giving back a terminal in canonical mode with
# echo (stty after it sees icanon and echo). Without a terminal it prints one
# frame and exits.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
A="ta$RUN"
B="tb$RUN"
setup_hosts
genkeys
start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
wg_up "$NS1" "$A" "$TMP/k1" 51001 192.0.2.1/24
wg_up "$NS2" "$B" "$TMP/k2" 51002 192.0.2.2/24
run wg set "$A" peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51002
run wg set "$B" peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
short=$(cut -c1-11 "$TMP/p2")

# Traffic while top watches: a ping flood-ish stream, bounded.
n1 ping -q -c 400 -i 0.01 -s 1000 192.0.2.2 >/dev/null 2>&1 &
pinger=$!

# session KEYS: run top in a pty, feed KEYS after 2.5 s, then stty; bounded by timeout.
session() {
	local keys=$1
	{ sleep 2.5; printf '%b' "$keys"; sleep 1; } |
		timeout 20 script -qfec "$VEILCTL top $A; echo top-exit=\$?; stty -a" "$TMP/pty.out" >/dev/null 2>&1
}

log "--- q quits and the terminal is as before"
start=$(date +%s%N)
session 'q' || fail "script/top did not end"
elapsed=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed" -lt 6000 ] || fail "q took ${elapsed} ms to quit"
tr -d '\r' <"$TMP/pty.out" >"$TMP/q.out"
qgrep -F "$short" <"$TMP/q.out" || fail "the peer is not shown"
qgrep "198.18.0.2:51002" <"$TMP/q.out" || fail "the endpoint is not shown"
qgrep -E "[0-9.]+ (KB|MB)/s" <"$TMP/q.out" || fail "no non-zero rate shown: $(tail -c 600 "$TMP/q.out")"
qgrep -F $'\e[?1049l' <"$TMP/q.out" || fail "the alternate screen was not left"
qgrep -F $'\e[?25h' <"$TMP/q.out" || fail "the cursor was not shown again"
qgrep "top-exit=0" <"$TMP/q.out" || fail "top did not exit 0 on q"
qgrep -E "(^| )icanon( |$)" <"$TMP/q.out" || fail "the terminal stayed out of canonical mode"
qgrep -E "(^| )echo( |$)" <"$TMP/q.out" || fail "echo stayed off"

log "--- Ctrl-C too"
session '\003' || fail "script/top did not end on Ctrl-C"
tr -d '\r' <"$TMP/pty.out" >"$TMP/c.out"
qgrep -F $'\e[?1049l' <"$TMP/c.out" || fail "Ctrl-C: the alternate screen was not left"
qgrep -E "(^| )icanon( |$)" <"$TMP/c.out" || fail "Ctrl-C: the terminal stayed raw"

log "--- without a terminal: one frame"
timeout 10 "$VEILCTL" top "$A" </dev/null >"$TMP/frame" || fail "top without a terminal"
qgrep -F "$short" <"$TMP/frame" || fail "the frame lacks the peer"
qgrep -F $'\e[' <"$TMP/frame" && fail "escape sequences without a terminal"
"$VEILCTL" top "nosuch$RUN" </dev/null 2>"$TMP/err" && fail "top of a missing interface succeeded"
qgrep "no daemon runs for nosuch$RUN" <"$TMP/err" || fail "unclear error: $(cat "$TMP/err")"
kill "$pinger" 2>/dev/null || true
wait "$pinger" 2>/dev/null || true
log "veilctl top: all passed"
