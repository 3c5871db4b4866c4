#!/usr/bin/env bash
# Bad input never stops the daemon or drops an established session. veild A
# and veild B hold a session; from A's host, B's UDP port (IPv4 and IPv6) gets
# in turn: random datagrams of every length 0..1500; every message type with
# wrong lengths and non-zero reserved bytes; real initiations (valid mac1) from
# an unknown key, with a broken AEAD, and from A's key with a stale timestamp;
# captured initiations and transport packets replayed, and transport packets
# with a forged counter or a flipped bit. Then a few thousand malformed
# requests go to B's control socket, and a valid one in pieces. After each
# group B must be alive, must not have answered, and the session must still
# carry traffic with no new handshake. Last, on the tunnel side of A: oversized packets under a jumbo MTU
# and a flood to peers that never answer. SEED=N repeats a run's random input.
. "$(dirname "$0")/lib.sh"

UDPSEND="$ROOT/$BUILD/tools/udpsend"
WGCRAFT="$ROOT/$BUILD/tools/wgcraft"
UAPIFUZZ="$ROOT/$BUILD/tools/uapifuzz"
SEQUDP="$ROOT/$BUILD/tools/sequdp"
UAPISLOW="$ROOT/$BUILD/tools/uapislow"
for t in "$UDPSEND" "$WGCRAFT" "$UAPIFUZZ" "$SEQUDP" "$UAPISLOW"; do
	[ -x "$t" ] || fail "missing $t (make $BUILD/tools/$(basename "$t"))"
done
command -v tcpdump >/dev/null && command -v tshark >/dev/null ||
	fail "tcpdump and tshark needed (tools/install-deps.sh test)"
SEED=${SEED:-$RANDOM}
UAPI_COUNT=${UAPI_COUNT:-3000}
ifa="va$RUN"
ifb="vb$RUN"
log "seed $SEED"

setup_hosts
genkeys
start_daemon "$NS1" veild "$ifa"
start_daemon "$NS2" veild "$ifb"
BPID=${PIDS[1]}
tunnel_pair -4 "$ifa" "$ifb" 51001 51002 198.18.0.1 198.18.0.2

# Capture the first handshake and some transport packets on B's link, for group 4.
# Not through n2: $! must be the PID that becomes timeout (ip netns exec execs it).
ip netns exec "$NS2" timeout 30 tcpdump -i "w$RUN" -n -U -c 40 -w "$TMP/cap.pcap" udp \
	2>"$TMP/tcpdump.err" &
TPID=$!
PIDS+=("$TPID")
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" && break; sleep 0.1; done
grep -q "listening on" "$TMP/tcpdump.err" || fail "tcpdump did not start"
ping_ok "$NS1" 192.0.2.2 5 || fail "A -> B ping before the attack"
ping_ok "$NS2" 192.0.2.1 2 || fail "B -> A ping before the attack"
kill "$TPID" 2>/dev/null || true
wait "$TPID" 2>/dev/null || true
PIDS=("${PIDS[@]:0:2}")

HS0=$(wg show "$ifb" latest-handshakes | cut -f2)
[ "$HS0" -gt 0 ] || fail "no handshake on B"
log "session up, B's latest handshake $HS0"

# B's counters for A: "rx tx" from the dump.
b_counters() { wg show "$ifb" dump | tail -n 1 | cut -f6,7; }
# Lines in B's log so far that match $1.
b_logged() { grep -c -- "$1" "$TMP/$ifb.log" || true; }

# check_session WHAT: B alive, the session carries traffic both ways, no new
# handshake, A's endpoint on B unchanged, B's counters grow.
check_session() {
	local what=$1 rx0 tx0 rx1 tx1 hs ep
	kill -0 "$BPID" 2>/dev/null || fail "veild B (pid $BPID) died after $what"
	read -r rx0 tx0 < <(b_counters)
	n1 ping -q -c 2 -i 0.2 -W 1 -w 5 192.0.2.2 >/dev/null || fail "A -> B ping after $what"
	n2 ping -q -c 1 -W 1 -w 5 192.0.2.1 >/dev/null || fail "B -> A ping after $what"
	read -r rx1 tx1 < <(b_counters)
	[ "$rx1" -gt "$rx0" ] && [ "$tx1" -gt "$tx0" ] ||
		fail "B's counters did not grow after $what: rx $rx0 -> $rx1, tx $tx0 -> $tx1"
	hs=$(wg show "$ifb" latest-handshakes | cut -f2)
	# A rekeys after 120 s of session: only before that must the handshake be the first.
	if [ $(($(date +%s) - HS0)) -lt 110 ]; then
		[ "$hs" = "$HS0" ] || fail "new handshake on B after $what ($HS0 -> $hs)"
	fi
	ep=$(wg show "$ifb" endpoints | cut -f2)
	[ "$ep" = "198.18.0.1:51001" ] || fail "A's endpoint on B moved to $ep after $what"
	log "$what: B alive, session intact (rx $rx1, tx $tx1)"
}

# 1. Random datagrams of every length, to both of B's addresses. B answers none.
for addr in 198.18.0.2 2001:db8::2; do
	out=$(n1 timeout 60 "$UDPSEND" -q "$addr" 51002 random "$SEED-$addr" 0 1500) ||
		fail "random datagrams to $addr: $out"
	log "random datagrams to $addr: $out"
done
check_session "random datagrams"

# 2. Every type with wrong lengths (147/149, 91/93, 63/65, 31, ...), reserved bytes set.
for addr in 198.18.0.2 2001:db8::2; do
	out=$(n1 timeout 60 "$UDPSEND" -q "$addr" 51002 malformed "$SEED-$addr") ||
		fail "malformed messages to $addr: $out"
	log "malformed messages to $addr: $out"
done
check_session "malformed messages"

# 3. Real initiations with a valid mac1 that B must refuse: an unknown key (no
# answer, not even a log line), a broken AEAD, and A's own key with a stale
# timestamp. A handshake response to any of them fails wgcraft.
bad0=$(b_logged "refused: does not authenticate")
stale0=$(b_logged "refused: replayed timestamp")
for addr in 198.18.0.2 2001:db8::2; do
	out=$(n1 timeout 20 "$WGCRAFT" -n 4 "$addr" 51002 "$(cat "$TMP/p2")") ||
		fail "initiation from an unknown key to $addr: $out"
	log "unknown key to $addr: $out"
	out=$(n1 timeout 20 "$WGCRAFT" -c -n 2 "$addr" 51002 "$(cat "$TMP/p2")") ||
		fail "initiation with a broken AEAD to $addr: $out"
	log "broken AEAD to $addr: $out"
	out=$(n1 timeout 20 "$WGCRAFT" -k "$TMP/k1" -a 3600 -n 2 "$addr" 51002 "$(cat "$TMP/p2")") ||
		fail "initiation with A's key and a stale timestamp to $addr: $out"
	log "stale timestamp to $addr: $out"
done
[ "$(b_logged "refused: does not authenticate")" -gt "$bad0" ] || fail "B did not log the broken initiations"
[ "$(b_logged "refused: replayed timestamp")" -gt "$stale0" ] || fail "B did not log the stale initiations"
check_session "crafted initiations"

# 4. Replays of what A sent B: the initiation (old timestamp) and the transport
# packets (replay window), then transport packets with a forged counter (must not
# move the window) and with a flipped bit. No answer; B's rx counter stays still.
tshark -r "$TMP/cap.pcap" -Y "udp.dstport == 51002" -T fields -e udp.payload \
	2>/dev/null | tr -d ':' | grep -E '^0[14]000000[0-9a-f]+$' >"$TMP/replay.hex" || true
inits=$(grep -c '^01000000' "$TMP/replay.hex" || true)
datas=$(grep -c '^04000000' "$TMP/replay.hex" || true)
[ "$inits" -ge 1 ] && [ "$datas" -ge 5 ] ||
	fail "capture holds $inits initiations and $datas transport packets from A (want 1 and 5)"
log "captured from A: $inits initiations, $datas transport packets"
first=$(grep -m 1 '^04000000' "$TMP/replay.hex")
{
	# The counter (bytes 8..15) set near 2^48, ciphertext unchanged: the tag fails.
	echo "${first:0:16}ffffffffffff0000${first:32}"
	# One ciphertext bit flipped.
	last=${first:40:2}
	echo "${first:0:40}$(printf '%02x' $((0x$last ^ 1)))${first:42}"
} >"$TMP/forged.hex"
stale0=$(b_logged "refused: replayed timestamp")
read -r rx0 _ < <(b_counters)
for addr in 198.18.0.2 2001:db8::2; do
	out=$(n1 timeout 30 "$UDPSEND" -q "$addr" 51002 hex <"$TMP/replay.hex") ||
		fail "replay to $addr: $out (B answered a replay?)"
	log "replay to $addr: $out"
	out=$(n1 timeout 30 "$UDPSEND" -q "$addr" 51002 hex <"$TMP/forged.hex") ||
		fail "forged transport to $addr: $out"
	log "forged transport to $addr: $out"
done
read -r rx1 _ < <(b_counters)
# At most a keepalive or two from A came in meanwhile (32 bytes each).
[ $((rx1 - rx0)) -le 64 ] || fail "B counted $((rx1 - rx0)) bytes received during the replay"
[ "$(b_logged "refused: replayed timestamp")" -gt "$stale0" ] || fail "B did not log the replayed initiation"
check_session "replays"

# 5. Malformed control requests; every one is refused, so nothing may change.
wg showconf "$ifb" >"$TMP/before.conf"
out=$(timeout 150 "$UAPIFUZZ" "/var/run/wireguard/$ifb.sock" "$UAPI_COUNT" "$SEED") ||
	fail "control socket: $out"
log "control socket: $out"
wg show "$ifb" >/dev/null || fail "wg show fails after the control-socket requests"
wg showconf "$ifb" >"$TMP/after.conf"
diff -u "$TMP/before.conf" "$TMP/after.conf" || fail "configuration changed by refused requests"
check_session "control requests"

# A valid request that arrives in pieces, the daemon reading each on its own:
# a new peer gets allowed IPs and an endpoint, then is removed, in one set.
tmpk=$(wg genkey | wg pubkey | base64 -d | od -An -tx1 | tr -d ' \n')
out=$(printf 'set=1\npublic_key=%s\nallowed_ip=192.0.2.99/32\n@pause\nendpoint=198.18.0.99:51009\n@pause\npublic_key=%s\nremove=true\n@pause\n\n' \
	"$tmpk" "$tmpk" | timeout 20 "$UAPISLOW" "/var/run/wireguard/$ifb.sock") ||
	fail "a request in pieces: $out"
[ "$(wg show "$ifb" peers | wc -l)" -eq 1 ] || fail "the peer added and removed in pieces is still there"
check_session "a request in pieces"

# 6. The tunnel side of A. Packets longer than veil carries (9,280 bytes) under a
# jumbo MTU are dropped, never read past a buffer; a packet that fits still
# crosses. Then a flood to 70 peers that never answer (endpoints nobody
# holds) fills their queues past the packet pool: the session with B must keep
# working meanwhile, and removing those peers must leave A sound.
APID=${PIDS[0]}
a_logged() { grep -c -- "$1" "$TMP/$ifa.log" || true; }
n1 ip link set mtu 9400 dev "$ifa"
n2 ip link set mtu 9400 dev "$ifb"
for _ in $(seq 50); do [ "$(a_logged "MTU is now 9400")" -gt 0 ] && break; sleep 0.1; done
[ "$(a_logged "MTU is now 9400")" -gt 0 ] || fail "A did not follow the MTU change"
n1 ping -q -c 2 -i 0.2 -W 2 -s 9000 -M do 192.0.2.2 >/dev/null || fail "a 9,028-byte packet did not cross"
too_long() {
	"$ROOT/$BUILD/veilctl" metrics "$ifa" | sed -n "s/^veil_transmit_drops_total{interface=\"$ifa\",reason=\"too_long\"} //p"
}
long0=$(too_long)
[ -n "$long0" ] || fail "no too_long drop counter in veilctl metrics"
if n1 ping -q -c 2 -i 0.2 -W 1 -s 9300 -M do 192.0.2.2 >/dev/null; then
	fail "a 9,328-byte packet crossed: more than veil's buffers hold"
fi
[ "$(too_long)" -ge $((long0 + 2)) ] || fail "the dropped 9,328-byte packets were not counted ($long0 -> $(too_long))"
kill -0 "$APID" 2>/dev/null || fail "veild A died on an oversized packet"
n1 ip link set mtu 1420 dev "$ifa"
n2 ip link set mtu 1420 dev "$ifb"
log "jumbo MTU: 9,028 bytes cross, 9,328 bytes are dropped and counted, A alive"
check_session "oversized packets"

# 70 dead peers with 130 packets each: more than their 128-packet queues hold
# in all (8,960) and more than the 8,192-packet pool.
dead=()
args=()
for i in $(seq 0 69); do
	dead+=("$(wg genkey | wg pubkey)")
	args+=(peer "${dead[$i]}" allowed-ips "192.0.2.$((10 + i))/32" endpoint "198.18.0.$((100 + i)):51009")
done
wg set "$ifa" "${args[@]}" || fail "adding the dead peers"
for i in $(seq 0 69); do
	n1 timeout 20 "$SEQUDP" send "192.0.2.$((10 + i))" 9 130 50000 >/dev/null ||
		fail "flood to dead peer $i"
done
kill -0 "$APID" 2>/dev/null || fail "veild A died under the flood to dead peers"
n1 ping -q -c 2 -i 0.2 -W 1 -w 5 192.0.2.2 >/dev/null || fail "A -> B ping while dead peers hold the pool"
args=()
for i in $(seq 0 69); do
	args+=(peer "${dead[$i]}" remove)
done
wg set "$ifa" "${args[@]}" || fail "removing the dead peers"
[ "$(wg show "$ifa" peers | wc -l)" -eq 1 ] || fail "dead peers not removed"
log "flood of 9,100 packets to 70 dead peers: A alive, session with B kept"
check_session "a flood to dead peers"

# The end: B still runs, and its log shows no crash.
kill -0 "$BPID" 2>/dev/null || fail "veild B died"
kill -0 "$APID" 2>/dev/null || fail "veild A died"
if grep -E -i "segmentation fault|aborted|assertion|sanitizer|runtime error|double free|stack smashing" \
	"$TMP/$ifa.log" "$TMP/$ifb.log"; then
	fail "a daemon's log shows a crash"
fi
log "hostile: all passed (seed $SEED)"
