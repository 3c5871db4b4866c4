#!/usr/bin/env bash
# 1,000 peers at once and gone again, three times: one wg setconf with 1,000 [Peer]
# sections (random keys, each with 198.19.x.y/32 and an fd00::/64 address, and an
# endpoint), a packet routed to every one of them (1,000 handshakes started and
# packets staged), then all removed: twice by a wg setconf without peers, once by
# one wg set with 1,000 "peer X remove". veild's VmRSS is printed before, with the
# peers and after each round. veild runs with mlockall, so RSS is what it really
# holds: after the last round it must be back within 1 MB of where it started, and
# must not grow from round to round.
. "$(dirname "$0")/lib.sh"

N=${N:-1000}
setup_hosts
genkeys
A="pa$RUN"
start_daemon "$NS1" veild "$A"
PID=${PIDS[-1]}
wg_up "$NS1" "$A" "$TMP/k1" 51001 192.0.2.1/24
n1 ip route add 198.19.0.0/16 dev "$A"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }

# Random public keys: 42 base64 digits and a last one whose low two bits are zero.
head -c $((N * 256)) /dev/urandom | tr -dc "A-Za-z0-9+/" >"$TMP/rand.body"
head -c $((N * 32)) /dev/urandom | tr -dc "AEIMQUYcgkosw048" >"$TMP/rand.last"
head -c $((N * 42)) "$TMP/rand.body" | fold -w 42 >"$TMP/keys.body"
head -c "$N" "$TMP/rand.last" | fold -w 1 >"$TMP/keys.last"
paste -d '' "$TMP/keys.body" "$TMP/keys.last" | sed 's/$/=/' >"$TMP/keys"
[ "$(sort -u "$TMP/keys" | wc -l)" -eq "$N" ] || fail "could not make $N distinct keys"
{
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51001\n' "$(cat "$TMP/k1")"
	awk '{ i = NR - 1
		printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.%d.%d/32, fd00::1:%x/128\nEndpoint = 198.18.0.2:%d\n",
			$1, int(i / 256), i % 256, i, 40000 + i }' "$TMP/keys"
} >"$TMP/many.conf"
printf '[Interface]\nPrivateKey = %s\nListenPort = 51001\n' "$(cat "$TMP/k1")" >"$TMP/none.conf"

# Warm the receive path first: one batch of packet buffers stays with veild for good.
n1 bash -c 'echo warm >/dev/udp/127.0.0.1/51001'
sleep 0.3
before=$(rss)
log "VmRSS before: $before kB"
afters=()
ROUNDS=${ROUNDS:-3}
for round in $(seq "$ROUNDS"); do
	t0=$(date +%s%N)
	wg setconf "$A" "$TMP/many.conf" || fail "setconf with $N peers failed"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$(wg show "$A" peers | wc -l)" -eq "$N" ] || fail "$(wg show "$A" peers | wc -l) peers, not $N"
	[ "$(wg show "$A" allowed-ips | wc -w)" -eq $((N * 3)) ] || fail "allowed IPs missing"
	# One datagram to each peer: every one stages a packet and starts a handshake.
	ip netns exec "$NS1" bash -c 'for i in $(seq 0 $(('"$N"' - 1))); do
		echo x >/dev/udp/198.19.$((i / 256)).$((i % 256))/9; done' 2>/dev/null || true
	sleep 0.5
	busy=$(wg show "$A" transfer | awk '$3 > 0' | wc -l)
	[ "$busy" -ge $((N / 4)) ] || fail "only $busy of $N peers sent a handshake"
	with=$(rss)
	if [ "$round" = 2 ]; then
		# shellcheck disable=SC2046 # one "peer KEY remove" triple per key
		wg set "$A" $(awk '{ print "peer", $1, "remove" }' "$TMP/keys") || fail "wg set ... remove failed"
	else
		wg setconf "$A" "$TMP/none.conf" || fail "setconf without peers failed"
	fi
	[ -z "$(wg show "$A" peers)" ] || fail "peers left after removing them"
	# veild gives its spare packet buffers back every 5 s: wait (bounded) for that.
	for _ in $(seq 16); do
		sleep 0.5
		[ "$(rss)" -le $((before + 1024)) ] && break
	done
	after=$(rss)
	afters+=("$after")
	log "round $round: setconf of $N peers in $ms ms; VmRSS with them $with kB, after removal $after kB ($busy peers had sent a handshake)"
	kill -0 "$PID" || fail "veild died"
done
case "$BUILD" in *san*)
	# ASan keeps freed memory in quarantine and never returns it: RSS says nothing here.
	log "faults-peers: all passed (sanitizer build: RSS not checked; kB ${afters[*]})"
	exit 0 ;;
esac
[ "${afters[-1]}" -le $((afters[0] + 3072)) ] ||
	fail "VmRSS grows from round to round: ${afters[*]} kB"
# Peers, their daemon state and packet buffers live in mmap'd slabs, so the memory
# goes back to the kernel even under mlockall: RSS must return near the baseline.
[ "${afters[-1]}" -le $((before + 1024)) ] ||
	fail "VmRSS after removing all peers is ${afters[-1]} kB, more than 1 MB over $before kB"
log "faults-peers: all passed (VmRSS kB: before $before, with $N peers $with, after ${afters[*]})"
