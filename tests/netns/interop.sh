#!/usr/bin/env bash
# veild with veild and veild with wireguard-go, each side as initiator, over an
# IPv4 and an IPv6 underlay, carrying IPv4 and IPv6: ping both ways and a 50 MB
# TCP transfer with a checksum compared at both ends. Then wg show reports the
# handshake, endpoint and counters, and showconf round-trips through setconf.
# Last, each daemon stopped with SIGTERM exits 0 and leaves no interface, no
# socket and no process behind.
. "$(dirname "$0")/lib.sh"

MB=${MB:-50}
setup_hosts
genkeys

# pair IMPL_A IMPL_B UNDERLAY(4|6)
pair() {
	local a=$1 b=$2 u=$3 ifa="va$RUN" ifb="vb$RUN" ea eb
	if [ "$u" = 4 ]; then ea=198.18.0.1; eb=198.18.0.2; else ea="[2001:db8::1]"; eb="[2001:db8::2]"; fi
	log "=== $a <-> $b over IPv$u"
	start_daemon "$NS1" "$a" "$ifa"
	start_daemon "$NS2" "$b" "$ifb"
	tunnel_pair "$ifa" "$ifb" 51001 51002 "$ea" "$eb"

	# A initiates first; then B's side initiates after B drops its session (peer re-added).
	ping_ok "$NS1" 192.0.2.2 || fail "$a -> $b ping (v4 inner)"
	ping_ok "$NS2" 192.0.2.1 || fail "$b -> $a ping (v4 inner)"
	ping_ok "$NS1" fd00::2 || fail "$a -> $b ping (v6 inner)"
	transfer "$NS1" "$NS2" 192.0.2.2 "$MB"
	transfer "$NS2" "$NS1" fd00::1 "$MB"

	# wg show: a handshake happened, the endpoint is the peer's, counters moved.
	local dump hs rx tx
	dump=$(wg show "$ifa" dump | tail -n 1)
	hs=$(echo "$dump" | cut -f5); rx=$(echo "$dump" | cut -f6); tx=$(echo "$dump" | cut -f7)
	[ "$hs" -gt 0 ] || fail "no latest handshake in: $dump"
	[ "$rx" -gt $((MB * 1000000)) ] || fail "rx counter too small: $rx"
	[ "$tx" -gt $((MB * 1000000)) ] || fail "tx counter too small: $tx"
	echo "$dump" | cut -f3 | qgrep -F "${eb}:51002" || fail "endpoint not $eb: $dump"

	# B as initiator: remove and re-add A's peer on B, then B pings first.
	wg showconf "$ifb" >"$TMP/b.conf"
	run wg set "$ifb" peer "$(cat "$TMP/p1")" remove
	run wg setconf "$ifb" "$TMP/b.conf"
	# Allowed IPs may come back in another order: compare them as sets.
	normconf() { sed -E '/^AllowedIPs/{s/AllowedIPs = //;s/, /\n/g}' | sort; }
	diff -u <(normconf <"$TMP/b.conf") <(wg showconf "$ifb" | normconf) || fail "showconf/setconf round trip differs"
	ping_ok "$NS2" 192.0.2.1 || fail "$b -> $a ping after re-adding (B initiates)"
	ping_ok "$NS2" fd00::1 || fail "$b -> $a ping v6 after re-adding"

	# Stop both daemons (by PID): each exits by itself, and takes its interface, its
	# socket and any child of its own along. Nothing here deletes what is left: the
	# test fails on it, and the next pair reuses the names.
	stop_daemons "${PIDS[@]}"
	expect_gone "$NS1" "$ifa"
	expect_gone "$NS2" "$ifb"
	log "=== $a <-> $b over IPv$u: ok"
}

pair veild veild 4
pair veild wireguard-go 4
pair wireguard-go veild 6
pair veild veild 6
log "interop: all passed (wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go))"
