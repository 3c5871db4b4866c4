#!/usr/bin/env bash
# veilctl top in a pseudo-terminal (script(1)), as over SSH: with traffic
# running it shows the peer, its endpoint and a non-zero rate; q ends it
# within a second and Ctrl-C too, each time leaving the alternate screen,
# showing the cursor again and giving back a terminal in canonical mode with
# echo (stty after it sees icanon and echo). Without a terminal it prints one
# frame and exits. Rates are in show's units (KiB/s, MiB/s: powers of 1024),
# and one peer is "1 peer". script(1) runs the session with $SHELL -c; SHELL=/bin/sh
# (dash, as for root on a Debian CI machine) makes it the strictest case: a
# non-interactive dash dies of a SIGINT meant for top, so Ctrl-C must reach
# top as a key and the shell must go on to print top's exit.
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

# Traffic while top watches: a steady ping stream, bounded (at most 20 s).
n1 ping -q -c 2000 -i 0.01 -s 1000 192.0.2.2 >/dev/null 2>&1 &
pinger=$!

# session KEYS: run top in a pty (script), bounded by timeout. The keys go in
# once top has drawn a rate (at most 10 s of waiting), so a slow machine does
# not make the test race top's first frames; the time from the keys to top's
# exit is measured inside the pty.
session() {
	local keys=$1
	rm -f "$TMP/pty.out" "$TMP/sent"
	{
		for _ in $(seq 100); do
			tr -d '\r' 2>/dev/null <"$TMP/pty.out" | qgrep -E "[0-9.]+ (KiB|MiB)/s" && break
			sleep 0.1
		done
		date +%s%N >"$TMP/sent"
		printf '%b' "$keys"
		sleep 1
	} | SHELL=/bin/sh timeout 30 script -qfec "$VEILCTL top $A; echo top-exit=\$? at=\$(date +%s%N); stty -a" \
		"$TMP/pty.out" >/dev/null 2>&1
}
# MS: milliseconds from the keys to top's exit, in the last session.
latency_ms() {
	local sent exited
	sent=$(cat "$TMP/sent")
	exited=$(tr -d '\r' <"$TMP/pty.out" | sed -n 's/.*top-exit=[0-9]* at=\([0-9]*\).*/\1/p')
	[ -n "$exited" ] || fail "top's exit time is missing: $(tail -c 600 "$TMP/pty.out")"
	MS=$(((exited - sent) / 1000000))
}

log "--- q quits and the terminal is as before"
session 'q' || fail "script/top did not end"
tr -d '\r' <"$TMP/pty.out" >"$TMP/q.out"
qgrep -F "$short" <"$TMP/q.out" || fail "the peer is not shown"
qgrep "198.18.0.2:51002" <"$TMP/q.out" || fail "the endpoint is not shown"
qgrep -E "[0-9.]+ (KiB|MiB)/s" <"$TMP/q.out" || fail "no non-zero rate shown: $(tail -c 600 "$TMP/q.out")"
qgrep -E "[0-9.]+ [KMG]B/s" <"$TMP/q.out" && fail "rates in units show does not use: $(tail -c 600 "$TMP/q.out")"
qgrep -F "$A: 1 peer," <"$TMP/q.out" || fail "one peer is not \"1 peer\": $(tail -c 600 "$TMP/q.out")"
qgrep -F $'\e[?1049l' <"$TMP/q.out" || fail "the alternate screen was not left"
qgrep -F $'\e[?25h' <"$TMP/q.out" || fail "the cursor was not shown again"
qgrep "top-exit=0" <"$TMP/q.out" || fail "top did not exit 0 on q"
latency_ms
log "q to exit: $MS ms"
# Within a second on an idle machine; the bound leaves room for a loaded one.
[ "$MS" -lt 3000 ] || fail "q took $MS ms to quit"
qgrep -E "(^| )icanon( |$)" <"$TMP/q.out" || fail "the terminal stayed out of canonical mode"
qgrep -E "(^| )echo( |$)" <"$TMP/q.out" || fail "echo stayed off"

log "--- Ctrl-C too, and the shell that ran top goes on"
session '\003' || fail "script/top did not end on Ctrl-C: $(tr -d '\r' <"$TMP/pty.out" | tail -c 300)"
tr -d '\r' <"$TMP/pty.out" >"$TMP/c.out"
qgrep "top-exit=0" <"$TMP/c.out" || fail "top did not exit 0 on Ctrl-C"
qgrep -F $'\e[?1049l' <"$TMP/c.out" || fail "Ctrl-C: the alternate screen was not left"
qgrep -E "(^| )icanon( |$)" <"$TMP/c.out" || fail "Ctrl-C: the terminal stayed raw"
qgrep -E "(^| )isig( |$)" <"$TMP/c.out" || fail "Ctrl-C: the terminal kept its signal keys off"
latency_ms
log "Ctrl-C to exit: $MS ms"
[ "$MS" -lt 3000 ] || fail "Ctrl-C took $MS ms to quit"

log "--- without a terminal: one frame"
timeout 10 "$VEILCTL" top "$A" </dev/null >"$TMP/frame" || fail "top without a terminal"
qgrep -F "$short" <"$TMP/frame" || fail "the frame lacks the peer"
qgrep -F $'\e[' <"$TMP/frame" && fail "escape sequences without a terminal"
"$VEILCTL" top "nosuch$RUN" </dev/null 2>"$TMP/err" && fail "top of a missing interface succeeded"
qgrep "no daemon runs for nosuch$RUN" <"$TMP/err" || fail "unclear error: $(cat "$TMP/err")"
kill "$pinger" 2>/dev/null || true
wait "$pinger" 2>/dev/null || true
log "veilctl top: all passed"
