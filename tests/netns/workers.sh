#!/usr/bin/env bash
# veild's crypto workers (-w, VEIL_WORKERS) from the outside. A worker count out of
# 1..64 (VEIL_WORKERS=0, 65, abc; -w 0) is refused at start with a message naming it
# and exit status 1, and no interface is left. Two veilds with VEIL_WORKERS=4 (more
# threads than this machine's two CPUs, so they interleave) say "4 crypto workers" and
# run three crypto threads each; numbered UDP datagrams at a high rate, in UDP_SEGMENT
# trains and one by one, arrive each way in order (reordered=0), undamaged, once, and
# lost only where the hosts' own queues account for it; a TCP transfer each way arrives
# intact; captured transport messages sent again (twice) are each counted as a replay,
# and the session carries on. The daemons stop cleanly (status 0, so also no
# ThreadSanitizer report in that build). Then the same order check with VEIL_WORKERS=1
# ("1 crypto worker", no crypto thread).
. "$(dirname "$0")/lib.sh"

SEQUDP="$ROOT/$BUILD/tools/sequdp"
UDPSEND="$ROOT/$BUILD/tools/udpsend"
VEILCTL="$ROOT/$BUILD/veilctl"
for t in "$SEQUDP" "$UDPSEND" "$VEILCTL" "$XFER"; do
	[ -x "$t" ] || fail "missing $t (make $BUILD/tools/$(basename "$t"))"
done
command -v tcpdump >/dev/null && command -v tshark >/dev/null ||
	fail "tcpdump and tshark needed (tools/install-deps.sh test)"
# The sanitizer builds' daemons are several times slower.
case "$BUILD" in
*san*) MB=${MB:-5} RATE=${RATE:-10000} COUNT=${COUNT:-10000} ;;
*) MB=${MB:-50} RATE=${RATE:-40000} COUNT=${COUNT:-50000} ;;
esac
setup_hosts
genkeys

# refuse WHAT ARG...: veild started as env ARG... refuses to, with status 1 and a
# message that names WHAT and the value, and leaves no interface or socket.
refuse() {
	local what=$1 value=$2 ifname="wr$RUN" out st=0
	shift 2
	out=$(ip netns exec "$NS1" timeout 20 env "$@" "$ifname" 2>&1) || st=$?
	[ "$st" = 1 ] || fail "$what $value: exit status $st, not 1 (output: $out)"
	qgrep -F -- "$what is a number of workers from 1 to 64, not '$value'" <<<"$out" ||
		fail "$what $value: no message naming it: $out"
	! n1 ip link show "$ifname" >/dev/null 2>&1 || fail "$what $value: $ifname was created"
	[ ! -e "/var/run/wireguard/$ifname.sock" ] || fail "$what $value: a socket was left"
	log "$what $value refused: $(head -n 1 <<<"$out")"
}
refuse VEIL_WORKERS 0 VEIL_WORKERS=0 "$VEILD" -f
refuse VEIL_WORKERS 65 VEIL_WORKERS=65 "$VEILD" -f
refuse VEIL_WORKERS abc VEIL_WORKERS=abc "$VEILD" -f
refuse --workers 0 "$VEILD" -f -w 0

# pair N: two veilds with VEIL_WORKERS=N and a fresh tunnel between them (IFA, IFB,
# their PIDs PA, PB); each log says "N crypto worker(s)" and each runs N - 1 crypto threads.
pair() {
	local n=$1 word=workers ifname pid threads
	[ "$n" = 1 ] && word=worker
	IFA="wa$n$RUN" IFB="wb$n$RUN"
	DAEMON_ENV="VEIL_WORKERS=$n" start_daemon "$NS1" veild "$IFA"
	PA=${PIDS[-1]}
	DAEMON_ENV="VEIL_WORKERS=$n" start_daemon "$NS2" veild "$IFB"
	PB=${PIDS[-1]}
	tunnel_pair "$IFA" "$IFB" 51001 51002 198.18.0.1 198.18.0.2
	for ifname in "$IFA" "$IFB"; do
		grep -qE "$ifname: $n crypto $word\$" "$TMP/$ifname.log" ||
			fail "$ifname's log does not say '$n crypto $word'"
	done
	for pid in "$PA" "$PB"; do
		threads=$(cat /proc/"$pid"/task/*/comm | grep -c '^veild-crypto$' || true)
		[ "$threads" = $((n - 1)) ] || fail "veild $pid runs $threads crypto threads, not $((n - 1))"
	done
	log "VEIL_WORKERS=$n: both logs say $n crypto $word; $((n - 1)) crypto threads each"
}

# in_order WHAT RECV_NS SEND_NS SEND_IF ADDR [TRAIN]: COUNT numbered datagrams at RATE a
# second (in trains of TRAIN) to ADDR through the tunnel: in order, undamaged, no
# duplicate, and no more than 2 % lost beyond what the hosts dropped (host_drops).
in_order() {
	local what=$1 rns=$2 sns=$3 sif=$4 addr=$5 train=${6:-} port=$((30000 + RANDOM % 10000))
	local rpid out before after lost explained b1 b2 b3 a1 a2 a3
	rm -f "$TMP/seq.out"
	before=$(host_drops "$rns" "$sns" "$sif")
	ip netns exec "$rns" timeout 60 "$SEQUDP" recv "$port" "$COUNT" >"$TMP/seq.out" &
	rpid=$!
	wait_listening "$TMP/seq.out"
	# shellcheck disable=SC2086 # no TRAIN: one datagram a send
	ip netns exec "$sns" timeout 60 "$SEQUDP" send "$addr" "$port" "$COUNT" "$RATE" $train >/dev/null ||
		fail "$what: sequdp send failed"
	wait "$rpid" || fail "$what: sequdp recv failed"
	after=$(host_drops "$rns" "$sns" "$sif")
	out=$(tail -n 1 "$TMP/seq.out")
	read -r b1 b2 b3 <<<"$before"
	read -r a1 a2 a3 <<<"$after"
	explained=$((a1 - b1 + a2 - b2 + a3 - b3))
	lost=$((COUNT - $(sed -n 's/.*unique=\([0-9]*\).*/\1/p' <<<"$out")))
	log "$what: $out (hosts dropped $explained)"
	qgrep -E "(^| )reordered=0( |$)" <<<"$out" || fail "$what: out of order: $out"
	qgrep -E "(^| )damaged=0( |$)" <<<"$out" || fail "$what: damaged datagrams: $out"
	qgrep -E "(^| )duplicates=0( |$)" <<<"$out" || fail "$what: duplicates: $out"
	[ "$lost" -le $((COUNT / 2)) ] || fail "$what: more than half lost: $out"
	[ $((lost - explained)) -le $((COUNT * 2 / 100)) ] ||
		fail "$what: $((lost - explained)) lost beyond the $explained the hosts dropped: $out"
}

# crypto_ticks PID: CPU time (clock ticks) the daemon's crypto threads have used.
crypto_ticks() {
	local t sum=0
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = veild-crypto ] || continue
		sum=$((sum + $(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')))
	done
	echo "$sum"
}

# replays: B's count of replayed messages from A, from veilctl metrics.
replays() {
	"$VEILCTL" metrics "$IFB" | sed -n 's/^veil_peer_drops_total{.*reason="replay"} \([0-9]*\)$/\1/p'
}

log "--- VEIL_WORKERS=4"
# The first messages on B's link, for the replays below.
ip netns exec "$NS2" timeout 60 tcpdump -i "w$RUN" -n -U --immediate-mode -c 20 -w "$TMP/cap.pcap" udp dst port 51002 \
	2>"$TMP/tcpdump.err" &
TPID=$!
PIDS+=("$TPID")
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" && break; sleep 0.1; done
grep -q "listening on" "$TMP/tcpdump.err" || fail "tcpdump did not start"
pair 4
ping_ok "$NS1" 192.0.2.2 5 || fail "no ping through the tunnel"
kill "$TPID" 2>/dev/null || true
wait "$TPID" 2>/dev/null || true
keep=()
for p in "${PIDS[@]}"; do [ "$p" = "$TPID" ] || keep+=("$p"); done
PIDS=("${keep[@]}")
in_order "A to B, trains of 16" "$NS2" "$NS1" "$IFA" 192.0.2.2 16
in_order "B to A, one by one" "$NS1" "$NS2" "$IFB" fd00::1
in_order "B to A, trains of 16" "$NS1" "$NS2" "$IFB" fd00::1 16
in_order "A to B, one by one" "$NS2" "$NS1" "$IFA" 192.0.2.2
transfer "$NS1" "$NS2" 192.0.2.2 "$MB"
transfer "$NS2" "$NS1" fd00::1 "$MB"
# The threads took their share of the jobs.
ta=$(crypto_ticks "$PA") tb=$(crypto_ticks "$PB")
log "CPU time of the crypto threads: A's $ta ticks, B's $tb"
[ "$ta" -gt 0 ] && [ "$tb" -gt 0 ] || fail "a daemon's crypto threads did no work (A $ta, B $tb ticks)"

# A's transport messages, which B has received once already, twice more each.
tshark -r "$TMP/cap.pcap" -T fields -e udp.payload 2>/dev/null | tr -d ':' |
	grep -E '^04000000[0-9a-f]+$' >"$TMP/replay.hex" || true
datas=$(wc -l <"$TMP/replay.hex")
[ "$datas" -ge 3 ] || fail "the capture holds $datas transport messages from A (want 3 or more)"
cat "$TMP/replay.hex" "$TMP/replay.hex" >"$TMP/replay2.hex"
r0=$(replays)
[ -n "$r0" ] || fail "no replay count in veilctl metrics $IFB"
out=$(n1 timeout 30 "$UDPSEND" -q 198.18.0.2 51002 hex <"$TMP/replay2.hex") ||
	fail "replay: $out (B answered a replay?)"
r1=$(replays)
log "replayed $datas transport messages twice: $out; B's replay count $r0 -> $r1"
[ "$r1" = $((r0 + 2 * datas)) ] || fail "B counted $((r1 - r0)) replays, not $((2 * datas))"
ping_ok "$NS1" 192.0.2.2 || fail "no ping after the replays"
ping_ok "$NS2" 192.0.2.1 || fail "no ping back after the replays"
stop_daemons "$PA" "$PB"
expect_gone "$NS1" "$IFA"
expect_gone "$NS2" "$IFB"

log "--- VEIL_WORKERS=1"
pair 1
ping_ok "$NS1" 192.0.2.2 || fail "no ping through the tunnel"
in_order "A to B, trains of 16" "$NS2" "$NS1" "$IFA" 192.0.2.2 16
in_order "B to A, one by one" "$NS1" "$NS2" "$IFB" fd00::1
stop_daemons "$PA" "$PB"
log "workers: all passed"
