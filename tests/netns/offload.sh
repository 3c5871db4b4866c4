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

# The sanitizer build's daemons are several times slower: a smaller transfer, and
# datagrams paced at a rate they can take on a busy machine.
case "$BUILD" in
*san*) MB=${MB:-10} RATE=${RATE:-10000} ;;
*) MB=${MB:-50} RATE=${RATE:-40000} ;;
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

# expect_seen COUNT YES|NO WHAT: with YES at least one of WHAT was captured, with NO none.
expect_seen() {
	if [ "$2" = yes ]; then
		[ "$1" -gt 0 ] || fail "expected $3, saw none"
	else
		[ "$1" -eq 0 ] || fail "expected no $3, saw $1"
	fi
}

# seq_trains RECV_NS SEND_NS ADDR PORT COUNT: numbered datagrams in trains of 16 from
# SEND_NS to ADDR; prints sequdp's summary line.
seq_trains() {
	local rns=$1 sns=$2 addr=$3 port=$4 count=$5 rpid
	rm -f "$TMP/seq.out"
	ip netns exec "$rns" timeout 60 "$SEQUDP" recv "$port" "$count" >"$TMP/seq.out" &
	rpid=$!
	wait_listening "$TMP/seq.out"
	ip netns exec "$sns" timeout 60 "$SEQUDP" send "$addr" "$port" "$count" "$RATE" 16 >/dev/null ||
		fail "sequdp send failed"
	wait "$rpid" || fail "sequdp recv failed"
	tail -n 1 "$TMP/seq.out"
}

# udp_trains N SETTING FAR IFA IFB: numbered UDP datagrams sent as UDP_SEGMENT trains of
# 16 each way (sequdp checks every byte of each). With TUN USO the near kernel hands
# veild a train whole (seen on the TUN as one packet past the MTU) and a far veild
# writes consecutive datagrams of the flow to its TUN as one; a wrong checksum from
# veild's cutting would be dropped by a wireguard-go peer's kernel, which checks.
udp_trains() {
	local n=$1 setting=$2 far=$3 ifa=$4 ifb=$5 port=$((30000 + RANDOM % 10000)) out uso=no
	local count=4000 want=no
	qgrep -F "USO" <"$TMP/$ifa.log" && uso=yes
	[ "$setting" = on ] && [ "$uso" = yes ] && want=yes
	capture "utun$n" "$NS1" "$ifa" "udp and src host 192.0.2.1 and greater 1501"
	[ "$far" = veild ] && capture "ugro$n" "$NS2" "$ifb" "udp and src host 192.0.2.1 and greater 1501"
	local before after lost explained b1 b2 b3 a1 a2 a3
	for dir in there back; do
		if [ "$dir" = there ]; then
			before=$(host_drops "$NS2" "$NS1" "$ifa")
			out=$(seq_trains "$NS2" "$NS1" 192.0.2.2 "$port" "$count")
			after=$(host_drops "$NS2" "$NS1" "$ifa")
		else
			before=$(host_drops "$NS1" "$NS2" "$ifb")
			out=$(seq_trains "$NS1" "$NS2" fd00::1 "$port" "$count")
			after=$(host_drops "$NS1" "$NS2" "$ifb")
		fi
		lost=$((count - $(sed -n 's/.*unique=\([0-9]*\).*/\1/p' <<<"$out")))
		read -r b1 b2 b3 <<<"$before"
		read -r a1 a2 a3 <<<"$after"
		explained=$((a1 - b1 + a2 - b2 + a3 - b3))
		log "UDP trains $dir: $out (hosts dropped $explained: UDP buffers $((a1 - b1)), TUN queue $((a2 - b2)), backlogs $((a3 - b3)))"
		qgrep -E "(^| )damaged=0( |$)" <<<"$out" || fail "UDP trains $dir: damaged datagrams: $out"
		qgrep -E "(^| )duplicates=0( |$)" <<<"$out" || fail "UDP trains $dir: duplicates: $out"
		# A veth and two idle daemons lose nothing; what a busy machine's queues dropped is
		# not the tunnel's doing, but the tunnel may lose no more than 2 % beyond it, and
		# no run may lose half whatever the reason (a daemon that stopped reading).
		[ "$lost" -le $((count / 2)) ] || fail "UDP trains $dir: more than half lost: $out"
		[ $((lost - explained)) -le $((count * 2 / 100)) ] ||
			fail "UDP trains $dir: $((lost - explained)) lost beyond the $explained the hosts dropped: $out"
	done
	uncapture
	log "UDP trains past the MTU on the near TUN: $(seen "utun$n") (USO: $uso)"
	expect_seen "$(seen "utun$n")" "$want" "UDP trains reaching veild whole (TUN USO)"
	if [ "$far" = veild ]; then
		log "joined UDP datagrams written to the far TUN: $(seen "ugro$n")"
		expect_seen "$(seen "ugro$n")" "$want" "UDP datagrams joined on the far TUN"
	fi
}

# combo N SETTING FAR_IMPL: one fresh tunnel, four transfers, the log and wire checks.
SUMMARY=()
combo() {
	local n=$1 setting=$2 far=$3 pa pb t0 t1 big_tun big_udp want
	local ifa="of${n}a$RUN" ifb="of${n}b$RUN" porta=$((51000 + 2 * n)) portb=$((51001 + 2 * n))
	log "=== VEIL_OFFLOAD=$setting: veild <-> $far"
	DAEMON_ENV="VEIL_OFFLOAD=$setting" start_daemon "$NS1" veild "$ifa"
	pa=${PIDS[-1]}
	DAEMON_ENV="VEIL_OFFLOAD=$setting" start_daemon "$NS2" "$far" "$ifb"
	pb=${PIDS[-1]}
	tunnel_pair "$ifa" "$ifb" "$porta" "$portb" 198.18.0.1 198.18.0.2
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
	want=no
	[ "$setting" = on ] && want=yes
	if [ "$far" = veild ]; then
		log "joined segments written to the far TUN: $(seen "gro$n") (3 at most counted)"
		expect_seen "$(seen "gro$n")" "$want" "TCP segments joined on the far TUN (GRO)"
	fi

	udp_trains "$n" "$setting" "$far" "$ifa" "$ifb"

	grep -qw "offloads $setting" "$TMP/$ifa.log" || fail "$ifa's log does not say 'offloads $setting'"
	if [ "$far" = veild ]; then
		grep -qw "offloads $setting" "$TMP/$ifb.log" || fail "$ifb's log does not say 'offloads $setting'"
	fi
	expect_seen "$big_tun" "$want" "TCP packets past the MTU on the TUN (TSO)"
	expect_seen "$big_udp" "$want" "UDP trains on the veth (GSO)"

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
