#!/usr/bin/env bash
# The daemon's life: command line, background start, a second daemon refused, a stale
# socket replaced, and the three ways to stop it (signal, interface deleted, socket
# deleted), each leaving no socket and no interface behind. Also ICMP unreachable for a
# destination with no peer, and MTU changes followed.
. "$(dirname "$0")/lib.sh"

setup_hosts
IF="la$RUN"
SOCK="/var/run/wireguard/$IF.sock"

"$VEILD" --version | qgrep "^veild " || fail "--version"
"$VEILD" --help | qgrep "Usage: veild" || fail "--help"
"$VEILD" 2>/dev/null && fail "no interface name accepted"
"$VEILD" -f "bad/name" 2>"$TMP/err" && fail "a bad interface name accepted"
grep -q "invalid interface name" "$TMP/err" || fail "no clear message for a bad name"

gone() { # gone PID: the process, its socket and its interface are all gone (bounded wait)
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && fail "veild $1 still running"
	[ -e "$SOCK" ] && fail "socket $SOCK left behind"
	n1 ip link show "$IF" >/dev/null 2>&1 && fail "interface $IF left behind"
	return 0
}

log "--- SIGTERM: socket removed, interface deleted"
start_daemon "$NS1" veild "$IF"
pid=${PIDS[-1]}
n1 ip link show "$IF" | qgrep "mtu 1420" || fail "default MTU is not 1420"
log "--- a second daemon for the same interface is refused"
n1 "$VEILD" -f "$IF" 2>"$TMP/err2" && fail "second daemon started"
grep -q "another daemon" "$TMP/err2" || fail "no clear message: $(cat "$TMP/err2")"
kill -TERM "$pid"
gone "$pid"

log "--- a stale socket from a crashed daemon is replaced"
start_daemon "$NS1" veild "$IF"
pid=${PIDS[-1]}
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
[ -S "$SOCK" ] || fail "expected a stale socket after SIGKILL"
n1 ip link del "$IF" 2>/dev/null || true
start_daemon "$NS1" veild "$IF"
pid=${PIDS[-1]}

log "--- MTU changes are followed; ICMP unreachable for a destination with no peer"
n1 ip link set mtu 1380 dev "$IF"
n1 ip addr add 192.0.2.1/24 dev "$IF"
n1 ip link set "$IF" up
for _ in $(seq 30); do grep -q "MTU is now 1380" "$TMP/$IF.log" && break; sleep 0.1; done
grep -q "MTU is now 1380" "$TMP/$IF.log" || fail "MTU change not followed"
n1 ping -c 1 -W 2 192.0.2.77 >"$TMP/ping.out" 2>&1 && fail "ping to a peerless destination succeeded"
grep -qi "unreachable" "$TMP/ping.out" || fail "no ICMP unreachable: $(cat "$TMP/ping.out")"

log "--- deleting the interface stops the daemon"
n1 ip link del "$IF"
gone "$pid"

log "--- deleting the socket stops the daemon"
start_daemon "$NS1" veild "$IF"
pid=${PIDS[-1]}
rm -f "$SOCK"
gone "$pid"

log "--- background start: the parent returns only when the socket answers"
# With the socket directory gone (rmdir: only when empty, so nobody's socket is
# lost), veild makes it again 0755 even under umask 077.
made=
rmdir /var/run/wireguard 2>/dev/null && made=1
n1 sh -c 'umask 077; exec env LOG_LEVEL=verbose "$0" "$1"' "$VEILD" "$IF" || fail "background start failed"
wg show "$IF" >/dev/null || fail "socket not ready when the parent exited"
stat -c %a "$SOCK" | qgrep -x 700 || stat -c %a "$SOCK" | qgrep -x 600 || fail "socket mode is $(stat -c %a "$SOCK")"
[ -z "$made" ] || stat -c %a /var/run/wireguard | qgrep -x 755 ||
	fail "socket directory mode $(stat -c %a /var/run/wireguard) under umask 077"
for p in /proc/[0-9]*; do
	[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" = "$VEILD $IF " ] && PIDS+=("${p#/proc/}")
done
# The daemon left in the background (not its resolver child) keeps its memory locked.
bg=
for p in "${PIDS[@]}"; do
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = veild ] && [ "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" = "$VEILD $IF " ] && bg=$p
done
[ -n "$bg" ] || fail "no background veild found"
# (Not in the sanitizer build: ASan's terabytes of shadow memory cannot be locked.)
case "$BUILD" in
*san*) log "sanitizer build: locked memory not checked" ;;
*) [ "$(awk '/^VmLck:/ { print $2 }' "/proc/$bg/status")" -gt 1024 ] ||
	fail "the background veild has not locked its memory (mlockall before the fork?)" ;;
esac
pid=${PIDS[-1]}
n1 ip link del "$IF"
gone "$pid"
log "lifecycle: all passed"
