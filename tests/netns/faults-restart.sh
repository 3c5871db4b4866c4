#!/usr/bin/env bash
# A daemon killed with SIGKILL in the middle of a 50 MB transfer and started again
# from the configuration saved with wg showconf (wg setconf, address, link up).
# 1. The sending side dies: once it is back it has traffic and no session, so it
#    must handshake at once; its first ping must get through within one handshake
#    retry (6 s of the restart).
# 2. The receiving side dies: the survivor still holds a session its peer forgot
#    and learns of it only through the "data sent, nothing received" timer
#    (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT = 15 s after the last packet it received;
#    the kernel's timers.c, wg_expired_new_handshake); its pings must get through
#    within 15 s of the kill plus slack.
# Both times the transfer must complete with the right checksum, over a client that
# starts a fresh transfer (at most three attempts) when the interrupted one failed.
# The underlay is shaped to 100 Mbit/s (tbf) so the transfer is still running when
# the daemon is killed, however fast the machine.
. "$(dirname "$0")/lib.sh"

MB=${MB:-50}
setup_hosts
genkeys
A="ra$RUN" B="rb$RUN"
start_daemon "$NS1" veild "$A"
PID_A=${PIDS[-1]}
start_daemon "$NS2" veild "$B"
PID_B=${PIDS[-1]}
tunnel_pair -4 -n "$A" "$B" 51001 51002 198.18.0.1 198.18.0.2
run n1 tc qdisc add dev "v$RUN" root tbf rate 100mbit burst 64kb latency 50ms
run n2 tc qdisc add dev "w$RUN" root tbf rate 100mbit burst 64kb latency 50ms
ping_ok "$NS1" 192.0.2.2 || fail "no ping before the faults"
wg showconf "$A" >"$TMP/A.conf"
wg showconf "$B" >"$TMP/B.conf"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# xfer_bg SRC_NS DST_NS ADDR MB: start a transfer in the background (XS, XR: sender, receiver).
XN=0
xfer_bg() {
	local sns=$1 dns=$2 addr=$3 mb=$4 port=$((20000 + RANDOM % 10000))
	XN=$((XN + 1))
	ip netns exec "$dns" timeout 90 "$XFER" recv "$port" >"$TMP/recv$XN.out" 2>"$TMP/recv$XN.log" &
	XR=$!
	wait_listening "$TMP/recv$XN.out"
	ip netns exec "$sns" timeout 90 "$XFER" send "$addr" "$port" "$mb" >"$TMP/send$XN.out" 2>"$TMP/send$XN.log" &
	XS=$!
}

# xfer_wait: true if both ends of the last transfer finished and agree on bytes and hash.
xfer_wait() {
	local ss=0 rs=0
	wait "$XS" || ss=$?
	[ $ss -eq 0 ] || kill "$XR" 2>/dev/null || true
	wait "$XR" || rs=$?
	[ $ss -eq 0 ] && [ $rs -eq 0 ] && [ -s "$TMP/send$XN.out" ] &&
		[ "$(tail -n 1 "$TMP/send$XN.out")" = "$(tail -n 1 "$TMP/recv$XN.out")" ]
}

# xfer_retry SRC_NS DST_NS ADDR: the interrupted transfer, else fresh ones (3 attempts in all).
xfer_retry() {
	local attempt=1
	until xfer_wait; do
		log "attempt $attempt failed: $(cat "$TMP/send$XN.log" "$TMP/recv$XN.log" | tr '\n' ' ')"
		[ $attempt -lt 3 ] || fail "transfer did not complete in 3 attempts"
		attempt=$((attempt + 1))
		xfer_bg "$1" "$2" "$3" "$MB"
	done
	log "transfer of $MB MB completed on attempt $attempt ($(tail -n 1 "$TMP/send$XN.out"))"
}

# kill_restart NS IFNAME PID CONF ADDR: SIGKILL the daemon, then start it again from CONF.
kill_restart() {
	local ns=$1 ifname=$2 pid=$3 conf=$4 addr=$5 p keep=()
	run kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	KILLED=$(now_ms)
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	for _ in $(seq 50); do ip netns exec "$ns" ip link show "$ifname" >/dev/null 2>&1 || break; sleep 0.1; done
	ip netns exec "$ns" ip link del "$ifname" 2>/dev/null || true
	# The stale socket goes too: start_daemon polls with wg, and wg unlinks a socket that
	# refuses connections, which races with the new daemon binding the same path.
	rm -f "/var/run/wireguard/$ifname.sock"
	RESTARTED=$(now_ms)
	start_daemon "$ns" veild "$ifname"
	NEWPID=${PIDS[-1]}
	run wg setconf "$ifname" "$conf"
	ip netns exec "$ns" ip addr add "$addr" dev "$ifname"
	ip netns exec "$ns" ip link set "$ifname" up
	CONFIGURED=$(now_ms)
}

# first_ping NS ADDR MAX_S: ms from RESTARTED until a ping gets through (single pings, bounded).
first_ping() {
	local ns=$1 addr=$2 max=$3 t
	for _ in $(seq $((max * 5))); do
		if ip netns exec "$ns" ping -q -c 1 -W 0.2 "$addr" >/dev/null 2>&1; then
			t=$(now_ms)
			echo $((t - RESTARTED))
			return 0
		fi
		[ $(($(now_ms) - RESTARTED)) -lt $((max * 1000)) ] || break
		sleep 0.05
	done
	return 1
}

log "--- the sending side (A) is killed mid-transfer"
xfer_bg "$NS1" "$NS2" 192.0.2.2 "$MB"
sleep 1.5
kill -0 "$XS" 2>/dev/null || fail "the transfer ended before the kill: raise MB"
kill_restart "$NS1" "$A" "$PID_A" "$TMP/A.conf" 192.0.2.1/24
PID_A=$NEWPID
t=$(first_ping "$NS1" 192.0.2.2 10) || fail "A -> B: no ping within 10 s of the restart"
log "A restarted: configured after $((CONFIGURED - RESTARTED)) ms, first ping after $t ms"
[ "$t" -le 6000 ] || fail "A -> B: first ping $t ms after the restart (more than one handshake retry)"
xfer_retry "$NS1" "$NS2" 192.0.2.2
t_a=$t

log "--- the receiving side (B) is killed mid-transfer"
xfer_bg "$NS1" "$NS2" 192.0.2.2 "$MB"
sleep 1.5
kill -0 "$XS" 2>/dev/null || fail "the transfer ended before the kill: raise MB"
kill_restart "$NS2" "$B" "$PID_B" "$TMP/B.conf" 192.0.2.2/24
PID_B=$NEWPID
t=$(first_ping "$NS1" 192.0.2.2 25) || fail "A -> B: no ping within 25 s of B's restart"
since_kill=$((t + RESTARTED - KILLED))
log "B restarted: configured after $((CONFIGURED - RESTARTED)) ms, A's first ping after $t ms ($since_kill ms after the kill)"
[ "$since_kill" -le 18000 ] || fail "A noticed the lost session only $since_kill ms after the kill"
xfer_retry "$NS1" "$NS2" 192.0.2.2
grep -q "handshake complete" "$TMP/$B.log" || fail "no handshake in B's log"
log "faults-restart: all passed (sender restart: first ping after $t_a ms;" \
	"receiver restart: survivor's first ping ${since_kill} ms after the kill)"
