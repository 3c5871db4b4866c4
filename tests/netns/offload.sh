#!/usr/bin/env bash
# VEIL_OFFLOAD on and off, each with veild and with wireguard-go on the far side:
# the near veild (and a far veild, given the same setting) says in its log which
# setting it runs, and a tunnel brought up fresh for each combination carries 50 MB
# each way over inner IPv4 and inner IPv6 (10 MB in the sanitizer build), with a
# checksum compared at both ends. So data cut up by the kernel (TSO, GSO trains) or
# glued by it (GRO) arrives whole, whether the far side offloads or not.
# During the first transfer the near host's wire is watched too: with offloads on the
# kernel hands veild TCP packets larger than the tunnel MTU (TUN TSO), veild hands
# the kernel UDP trains larger than one Ethernet frame (UDP GSO), and a far veild
# writes the segments it decrypted to its TUN joined (GRO); with offloads off none
# of that ever happens. The daemons of one combination are stopped (by PID) before
# the next starts.
. "$(dirname "$0")/lib.sh"

case "$BUILD" in
*san*) MB=${MB:-10} ;;
*) MB=${MB:-50} ;;
esac
command -v tcpdump >/dev/null || fail "tcpdump needed (tools/install-deps.sh test)"
SEQUDP="$ROOT/$BUILD/tools/sequdp"
[ -x "$SEQUDP" ] || fail "missing $SEQUDP (make)"
setup_hosts
genkeys
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# capture NAME NS IFNAME FILTER: count packets matching FILTER into $TMP/NAME.out
# (bounded, stopped by uncapture). CPIDS holds the captures' PIDs.
CPIDS=()
capture() {
	local name=$1 ns=$2 ifname=$3 filter=$4
	ip netns exec "$ns" timeout 120 tcpdump -i "$ifname" -nn -l -p -c 3 "$filter" \
		>"$TMP/$name.out" 2>"$TMP/$name-tcpdump.log" &
	CPIDS+=($!)
	for _ in $(seq 50); do grep -q "listening on" "$TMP/$name-tcpdump.log" && break; sleep 0.1; done
	grep -q "listening on" "$TMP/$name-tcpdump.log" || fail "tcpdump on $ifname did not start"
}
uncapture() {
	local pid
	for pid in "${CPIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${CPIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	CPIDS=()
}
# Packet lines only: tcpdump ends its output with an empty line when it is stopped.
seen() { awk 'NF { n++ } END { print n + 0 }' "$TMP/$1.out"; }

# stop_pair PID...: stop the daemons of one combination, by PID, and forget them.
stop_pair() {
	local pid p keep=()
	for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
	for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do
		case " $* " in *" $p "*) ;; *) keep+=("$p") ;; esac
	done
	PIDS=("${keep[@]}")
}

# udp_trains N SETTING FAR IFA IFB: numbered UDP datagrams sent as UDP_SEGMENT trains of
# 16 each way (sequdp checks every byte of each). With TUN USO the near kernel hands
# veild a train whole (seen on the TUN as one packet past the MTU) and a far veild
# writes consecutive datagrams of the flow to its TUN as one; a wrong checksum from
# veild's cutting would be dropped by a wireguard-go peer's kernel, which checks.
udp_trains() {
	local n=$1 setting=$2 far=$3 ifa=$4 ifb=$5 port=$((30000 + RANDOM % 10000)) out big uso=no
	local count=4000 rpid
	qgrep -F "USO" <"$TMP/$ifa.log" && uso=yes
	capture "utun$n" "$NS1" "$ifa" "udp and src host 192.0.2.1 and greater 1501"
	[ "$far" = veild ] && capture "ugro$n" "$NS2" "$ifb" "udp and src host 192.0.2.1 and greater 1501"
	for dir in there back; do
		if [ "$dir" = there ]; then
			n2 timeout 60 "$SEQUDP" recv "$port" "$count" >"$TMP/seq.out" &
			rpid=$!
			for _ in $(seq 50); do grep -q listening "$TMP/seq.out" 2>/dev/null && break; sleep 0.1; done
			n1 timeout 60 "$SEQUDP" send 192.0.2.2 "$port" "$count" 40000 16 >/dev/null ||
				fail "sequdp send failed"
		else
			n1 timeout 60 "$SEQUDP" recv "$port" "$count" >"$TMP/seq.out" &
			rpid=$!
			for _ in $(seq 50); do grep -q listening "$TMP/seq.out" 2>/dev/null && break; sleep 0.1; done
			n2 timeout 60 "$SEQUDP" send fd00::1 "$port" "$count" 40000 16 >/dev/null ||
				fail "sequdp send failed"
		fi
		wait "$rpid" || fail "sequdp recv failed"
		out=$(tail -n 1 "$TMP/seq.out")
		log "UDP trains $dir: $out"
		qgrep -E "(^| )damaged=0( |$)" <<<"$out" || fail "UDP trains $dir: damaged datagrams: $out"
		qgrep -E "(^| )duplicates=0( |$)" <<<"$out" || fail "UDP trains $dir: duplicates: $out"
		# A veth and two idle daemons lose nothing; a loaded CI machine may lose a few.
		[ "$(sed -n 's/.*unique=\([0-9]*\).*/\1/p' <<<"$out")" -ge $((count * 98 / 100)) ] ||
			fail "UDP trains $dir: too many lost: $out"
	done
	uncapture
	big=$(seen "utun$n")
	log "UDP trains past the MTU on the near TUN: $big (USO: $uso)"
	if [ "$setting" = on ] && [ "$uso" = yes ]; then
		[ "$big" -gt 0 ] || fail "TUN USO on, but no UDP train reached veild whole"
	else
		[ "$big" -eq 0 ] || fail "no TUN USO, but $big UDP trains on the TUN"
	fi
	if [ "$far" = veild ]; then
		big=$(seen "ugro$n")
		log "joined UDP datagrams written to the far TUN: $big"
		if [ "$setting" = on ] && [ "$uso" = yes ]; then
			[ "$big" -gt 0 ] || fail "TUN USO on, but the far veild joined no UDP datagrams"
		else
			[ "$big" -eq 0 ] || fail "no TUN USO, but $big joined UDP datagrams on the far TUN"
		fi
	fi
}

# combo N SETTING FAR_IMPL: one fresh tunnel, four transfers, the log and wire checks.
SUMMARY=()
combo() {
	local n=$1 setting=$2 far=$3 pa pb t0 t1 big_tun big_udp big_gro
	local ifa="of${n}a$RUN" ifb="of${n}b$RUN" porta=$((51000 + 2 * n)) portb=$((51001 + 2 * n))
	log "=== VEIL_OFFLOAD=$setting: veild <-> $far"
	DAEMON_ENV="VEIL_OFFLOAD=$setting" start_daemon "$NS1" veild "$ifa"
	pa=${PIDS[-1]}
	DAEMON_ENV="VEIL_OFFLOAD=$setting" start_daemon "$NS2" "$far" "$ifb"
	pb=${PIDS[-1]}
	run wg set "$ifa" private-key "$TMP/k1" listen-port "$porta" \
		peer "$(cat "$TMP/p2")" preshared-key "$TMP/psk" allowed-ips 192.0.2.2/32,fd00::2/128 \
		endpoint "198.18.0.2:$portb"
	run wg set "$ifb" private-key "$TMP/k2" listen-port "$portb" \
		peer "$(cat "$TMP/p1")" preshared-key "$TMP/psk" allowed-ips 192.0.2.1/32,fd00::1/128 \
		endpoint "198.18.0.1:$porta"
	n1 ip addr add 192.0.2.1/24 dev "$ifa"
	n1 ip addr add fd00::1/64 dev "$ifa" nodad
	n1 ip link set "$ifa" up
	n2 ip addr add 192.0.2.2/24 dev "$ifb"
	n2 ip addr add fd00::2/64 dev "$ifb" nodad
	n2 ip link set "$ifb" up
	ping_ok "$NS1" 192.0.2.2 || fail "no ping over veild <-> $far ($setting)"

	# Cut up before they are seen, no packet on the TUN exceeds its 1420-byte MTU (we
	# look past 1500) and no frame on the veth 1514 bytes: only TSO on the TUN and
	# UDP GSO on the socket let the kernel pass larger ones whole to the capture.
	capture "tun$n" "$NS1" "$ifa" "greater 1501"
	capture "udp$n" "$NS1" "v$RUN" "udp and src host 198.18.0.1 and greater 1515"
	[ "$far" = veild ] && capture "gro$n" "$NS2" "$ifb" "greater 1501"
	t0=$(now_ms)
	transfer "$NS1" "$NS2" 192.0.2.2 "$MB"
	uncapture
	transfer "$NS2" "$NS1" 192.0.2.1 "$MB"
	transfer "$NS1" "$NS2" fd00::2 "$MB"
	transfer "$NS2" "$NS1" fd00::1 "$MB"
	t1=$(now_ms)
	big_tun=$(seen "tun$n") big_udp=$(seen "udp$n")
	log "packets past the MTU: $big_tun on the TUN, $big_udp UDP trains on the veth (3 at most counted)"
	if [ "$far" = veild ]; then
		big_gro=$(seen "gro$n")
		log "joined segments written to the far TUN: $big_gro (3 at most counted)"
		if [ "$setting" = on ]; then
			[ "$big_gro" -gt 0 ] || fail "offloads on, but the far veild wrote no joined segment (no GRO)"
		else
			[ "$big_gro" -eq 0 ] || fail "offloads off, but $big_gro joined segments on the far TUN"
		fi
	fi

	udp_trains "$n" "$setting" "$far" "$ifa" "$ifb"

	grep -qw "offloads $setting" "$TMP/$ifa.log" || fail "$ifa's log does not say 'offloads $setting'"
	if [ "$far" = veild ]; then
		grep -qw "offloads $setting" "$TMP/$ifb.log" || fail "$ifb's log does not say 'offloads $setting'"
	fi
	if [ "$setting" = on ]; then
		[ "$big_tun" -gt 0 ] || fail "offloads on, but no TCP packet past the MTU on the TUN (no TSO)"
		[ "$big_udp" -gt 0 ] || fail "offloads on, but no UDP train on the veth (no GSO)"
	else
		[ "$big_tun" -eq 0 ] || fail "offloads off, but $big_tun packets past the MTU on the TUN"
		[ "$big_udp" -eq 0 ] || fail "offloads off, but $big_udp UDP trains on the veth"
	fi

	stop_pair "$pa" "$pb"
	# Until both interfaces are gone (bounded), then make sure of it.
	for _ in $(seq 50); do
		n1 ip link show "$ifa" >/dev/null 2>&1 || n2 ip link show "$ifb" >/dev/null 2>&1 || break
		sleep 0.1
	done
	n1 ip link del "$ifa" 2>/dev/null || true
	n2 ip link del "$ifb" 2>/dev/null || true
	rm -f "/var/run/wireguard/$ifa.sock" "/var/run/wireguard/$ifb.sock"
	SUMMARY+=("$setting/$far: $((4 * MB)) MB in $((t1 - t0)) ms")
	log "=== VEIL_OFFLOAD=$setting: veild <-> $far: ok"
}

combo 1 on veild
combo 2 on wireguard-go
combo 3 off veild
combo 4 off wireguard-go
# Times only, for a reader: this machine is shared, so no speed is asserted.
log "offload: all passed (${SUMMARY[*]/%/;} wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go))"
