#!/usr/bin/env bash
# make bench: veild side by side with wireguard-go and the bare veth, in one run,
# interleaved and repeated (ROUNDS, default 4, of BENCH_SECONDS, default 8; the median
# is reported). A benchmark, not a test: it prints figures and ratios and fails only if
# a set-up does not work.
#
# Per set-up: iperf3 TCP with 1 and 4 streams, iperf3 UDP at full rate with datagrams
# that just fit the tunnel MTU (1392 bytes over IPv4), ping RTT (average and 99th
# percentile of 300 pings), the daemons' CPU seconds during the 1-stream TCP run
# (from /proc) to give Gbit/s per CPU-second, and the daemons' peak RSS. Then, for
# both daemons, wg setconf / wg show times and RSS per peer with 10,000 peers, and the
# core's own benchmarks (handshakes per second per core, allowed-IPs at 1M prefixes).
# veild runs twice per round: on WireGuard's ChaCha20-Poly1305 and on the AES-256-GCM
# suite (veild-aes256gcm). BENCH_SUITE=aes256gcm makes the AES row the one the main
# ratio line compares with wireguard-go; the other suite gets a line of its own.
# BENCH_OFFLOAD=off starts every veild with VEIL_OFFLOAD=off (no TUN TSO or checksum
# offload, no UDP GSO or GRO); on, the default, leaves them all on. The line above
# the table says which setting ran.
[ "$(id -u)" = 0 ] || { echo "make bench: run as root (it creates network namespaces)" >&2; exit 1; }
"$(dirname "$0")/install-deps.sh" bench
. "$(dirname "$0")/../tests/netns/lib.sh"
LOG_LEVEL=error

ROUNDS=${ROUNDS:-4}
SUITE=${BENCH_SUITE:-chacha20poly1305}
case "$SUITE" in chacha20poly1305|aes256gcm) ;; *) fail "BENCH_SUITE is chacha20poly1305 or aes256gcm, not $SUITE" ;; esac
OFFLOAD=${BENCH_OFFLOAD:-on}
case "$OFFLOAD" in on|off) ;; *) fail "BENCH_OFFLOAD is on or off, not $OFFLOAD" ;; esac
# start_daemon passes DAEMON_ENV to veild only, so wireguard-go runs as it always does.
DAEMON_ENV="${DAEMON_ENV:+$DAEMON_ENV }VEIL_OFFLOAD=$OFFLOAD"
VEILCTL="$ROOT/$BUILD/veilctl"
SECS=${BENCH_SECONDS:-8}
setup_hosts
genkeys
n2 iperf3 -s -D -I "$TMP/iperf.pid" >/dev/null 2>&1 || fail "iperf3 server"
for _ in $(seq 50); do [ -s "$TMP/iperf.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$TMP/iperf.pid")")

# tunnel IMPL: bring up a tunnel of one implementation on both hosts; prints nothing.
tunnel() {
	local impl=$1 cipher=
	IFA="ba$RUN" IFB="bb$RUN"
	[ "$impl" = veild-aes256gcm ] && { impl=veild; cipher=aes256gcm; }
	start_daemon "$NS1" "$impl" "$IFA"
	DA=${PIDS[-1]}
	start_daemon "$NS2" "$impl" "$IFB"
	DB=${PIDS[-1]}
	wg set "$IFA" private-key "$TMP/k1" listen-port 51001 \
		peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51002
	wg set "$IFB" private-key "$TMP/k2" listen-port 51002 \
		peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
	if [ -n "$cipher" ]; then
		"$VEILCTL" set "$IFA" peer "$(cat "$TMP/p2")" cipher "$cipher" || fail "cipher $cipher on $IFA"
		"$VEILCTL" set "$IFB" peer "$(cat "$TMP/p1")" cipher "$cipher" || fail "cipher $cipher on $IFB"
	fi
	n1 ip addr add 192.0.2.1/24 dev "$IFA"
	n1 ip link set "$IFA" up
	n2 ip addr add 192.0.2.2/24 dev "$IFB"
	n2 ip link set "$IFB" up
	ping_ok "$NS1" 192.0.2.2 || fail "$impl tunnel does not carry traffic"
	TARGET=192.0.2.2
}

untunnel() {
	kill "$DA" "$DB" 2>/dev/null || true
	wait "$DA" "$DB" 2>/dev/null || true
	unset 'PIDS[-1]'
	unset 'PIDS[-1]'
	n1 ip link del "$IFA" 2>/dev/null || true
	n2 ip link del "$IFB" 2>/dev/null || true
	DA="" DB=""
}

cpu_ticks() { # utime + stime of the given PIDs, in clock ticks
	local t=0 p
	for p in "$@"; do
		[ -n "$p" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo $t
}

hwm_kb() { # peak RSS of one PID
	awk '/VmHWM/ { print $2 }' "/proc/$1/status"
}

# measure SETUP ROUND: one line of results into $TMP/results
measure() {
	local setup=$1 round=$2 tcp1 tcp4 udp pps loss rtt p99 t0 t1 cpu rss_a rss_b hz
	hz=$(getconf CLK_TCK)
	t0=$(cpu_ticks "$DA" "$DB")
	n1 iperf3 -c "$TARGET" -t "$SECS" -J >"$TMP/tcp1.json" || fail "iperf3 TCP over $setup"
	tcp1=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { print $2; exit }' "$TMP/tcp1.json")
	t1=$(cpu_ticks "$DA" "$DB")
	n1 iperf3 -c "$TARGET" -t "$SECS" -P 4 -J >"$TMP/tcp4.json" || fail "iperf3 TCP -P 4 over $setup"
	tcp4=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { print $2; exit }' "$TMP/tcp4.json")
	n1 iperf3 -c "$TARGET" -t "$SECS" -u -b 0 -l 1392 -J >"$TMP/udp.json" || fail "iperf3 UDP over $setup"
	udp=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { print $2; exit }' "$TMP/udp.json")
	loss=$(awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"lost_percent"/ { print $2; exit }' "$TMP/udp.json")
	pps=$(awk -v b="$udp" 'BEGIN { printf "%.0f", b / 8 / 1392 }')
	n1 ping -q -c 300 -i 0.005 -W 1 "$TARGET" >/dev/null 2>&1 || true
	n1 ping -c 300 -i 0.005 -W 1 "$TARGET" >"$TMP/ping.out" 2>/dev/null || true
	awk -F'time=' '/time=/ { split($2, a, " "); print a[1] }' "$TMP/ping.out" | sort -n >"$TMP/rtt"
	rtt=$(awk '{ s += $1 } END { if (NR) printf "%.3f", s / NR }' "$TMP/rtt")
	p99=$(awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", v[int(NR * 0.99 + 0.5)] }' "$TMP/rtt")
	if [ -n "$DA" ]; then
		cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
		rss_a=$(hwm_kb "$DA")
		rss_b=$(hwm_kb "$DB")
	else
		cpu=0 rss_a=0 rss_b=0
	fi
	printf '%s %s %s %s %s %s %s %s %s %s %s\n' "$setup" "$round" "$tcp1" "$tcp4" "$udp" "$pps" \
		"$loss" "$rtt" "$p99" "$cpu" "$(( (rss_a > rss_b ? rss_a : rss_b) ))" >>"$TMP/results"
}

: >"$TMP/results"
for round in $(seq "$ROUNDS"); do
	log "round $round of $ROUNDS: veth"
	DA="" DB="" TARGET=198.18.0.2
	measure veth "$round"
	for impl in wireguard-go veild veild-aes256gcm; do
		log "round $round of $ROUNDS: $impl"
		tunnel "$impl"
		measure "$impl" "$round"
		untunnel
	done
done

# Medians per set-up and metric, then the table and the ratios.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$TMP/results" | median; }
echo
echo "veild offloads $OFFLOAD (BENCH_OFFLOAD=$OFFLOAD), headline suite $SUITE"
printf '%-16s %10s %10s %10s %10s %7s %9s %9s %8s %10s %9s\n' setup "TCP1 Gb/s" "TCP4 Gb/s" \
	"UDP Gb/s" "UDP pps" "loss %" "RTT ms" "p99 ms" "CPU s" "Gb/s/CPUs" "RSS MB"
for s in veth wireguard-go veild veild-aes256gcm; do
	tcp1=$(col "$s" 3) tcp4=$(col "$s" 4) udp=$(col "$s" 5) pps=$(col "$s" 6) loss=$(col "$s" 7)
	rtt=$(col "$s" 8) p99=$(col "$s" 9) cpu=$(col "$s" 10) rss=$(col "$s" 11)
	awk -v s="$s" -v a="$tcp1" -v b="$tcp4" -v c="$udp" -v d="$pps" -v e="$loss" -v f="$rtt" \
		-v g="$p99" -v h="$cpu" -v i="$rss" -v secs="$SECS" 'BEGIN {
		eff = h > 0 ? a / 1e9 * secs / h : 0
		printf "%-16s %10.2f %10.2f %10.2f %10.0f %7.2f %9.3f %9.3f %8.2f %10.2f %9.1f\n",
			s, a / 1e9, b / 1e9, c / 1e9, d, e, f, g, h, eff, i / 1024 }'
	eval "M_${s//-/_}=\"$tcp1 $tcp4 $pps $rtt $cpu $rss\""
done
# ratios NAME SETUP BASE: one line of SETUP's medians over BASE's
ratios() {
	local name=$1 g1 g4 gp gr gc gm v1 v4 vp vr vc vm
	read -r v1 v4 vp vr vc vm <<<"$2"
	read -r g1 g4 gp gr gc gm <<<"$3"
	awk -v n="$name" -v g1="$g1" -v g4="$g4" -v gp="$gp" -v gr="$gr" -v gc="$gc" -v gm="$gm" \
		-v v1="$v1" -v v4="$v4" -v vp="$vp" -v vr="$vr" -v vc="$vc" -v vm="$vm" 'BEGIN {
		printf "%s: TCP1 %.2fx, TCP4 %.2fx, UDP pps %.2fx, RTT %.2fx, Gb/s per CPU-s %.2fx, peak RSS %.2fx\n",
			n, g1 ? v1 / g1 : 0, g4 ? v4 / g4 : 0, gp ? vp / gp : 0, gr ? vr / gr : 0,
			(gc && vc) ? (v1 / vc) / (g1 / gc) : 0, gm ? vm / gm : 0 }'
}
echo
if [ "$SUITE" = aes256gcm ]; then
	ratios "veild/wireguard-go (suite aes256gcm)" "$M_veild_aes256gcm" "$M_wireguard_go"
	ratios "veild on chacha20poly1305/wireguard-go" "$M_veild" "$M_wireguard_go"
else
	ratios "veild/wireguard-go" "$M_veild" "$M_wireguard_go"
	ratios "veild on aes256gcm/wireguard-go" "$M_veild_aes256gcm" "$M_wireguard_go"
fi
ratios "aes256gcm/chacha20poly1305 (both veild)" "$M_veild_aes256gcm" "$M_veild"
echo "(medians of $ROUNDS interleaved rounds of ${SECS} s each; $(nproc) CPUs; this machine is shared and noisy)"
echo
# Control plane and memory with 10,000 configured peers (no traffic).
PEERS=${BENCH_PEERS:-10000}
"$ROOT/$BUILD/tools/genpeers" "$PEERS" >"$TMP/peers.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51001\n\n' "$(cat "$TMP/k1")" | cat - "$TMP/peers.conf" >"$TMP/many.conf"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || fail "$*"; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }
for impl in wireguard-go veild; do
	IFA="pa$RUN"
	start_daemon "$NS1" "$impl" "$IFA"
	D=${PIDS[-1]}
	sleep 0.5
	before=$(awk '/^VmRSS/ { print $2 }' "/proc/$D/status")
	t_set=$(ms wg setconf "$IFA" "$TMP/many.conf")
	t_show=$(ms wg show "$IFA")
	t_dump=$(ms wg show "$IFA" dump)
	sleep 0.5
	after=$(awk '/^VmRSS/ { print $2 }' "/proc/$D/status")
	[ "$(wg show "$IFA" peers | wc -l)" -eq "$PEERS" ] || fail "$impl did not take $PEERS peers"
	printf '%-13s %d peers: wg setconf %d ms, wg show %d ms, dump %d ms; RSS %d -> %d kB = %.0f bytes per peer\n' \
		"$impl" "$PEERS" "$t_set" "$t_show" "$t_dump" "$before" "$after" \
		"$(awk -v a="$after" -v b="$before" -v n="$PEERS" 'BEGIN { print (a - b) * 1024 / n }')"
	kill "$D" 2>/dev/null || true
	wait "$D" 2>/dev/null || true
	unset 'PIDS[-1]'
	n1 ip link del "$IFA" 2>/dev/null || true
done
echo
for b in "$ROOT/$BUILD"/bench/*; do
	case "$b" in *.d) continue ;; esac
	"$b" || fail "$b"
done
