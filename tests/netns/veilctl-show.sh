#!/usr/bin/env bash
# veilctl's control-socket commands against veild and against wireguard-go,
# checked with wg: show --json parses (jq) and agrees with `wg show dump`
# field by field; showconf agrees with `wg showconf`; set with every option
# lands; a bad set changes nothing; syncconf removes a peer and changes
# another while the untouched peer keeps its session; errors for a missing
# daemon and a stale socket; genkey | pubkey agrees with wg pubkey.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
command -v jq >/dev/null || fail "jq needed (tools/install-deps.sh test)"

setup_hosts
genkeys
psk=$(cat "$TMP/psk")
"$VEILCTL" genkey >"$TMP/k3"
p3=$("$VEILCTL" pubkey <"$TMP/k3")
[ "$p3" = "$(wg pubkey <"$TMP/k3")" ] || fail "veilctl pubkey disagrees with wg pubkey"
[ "$("$VEILCTL" genpsk | tr -d '\n' | wc -c)" = 44 ] || fail "genpsk is not 44 characters"

# check IMPL: the daemon in NS1 is IMPL, its peer in NS2 is veild.
check() {
	local impl=$1 ifa ifb json dump n i out
	ifa="a${impl:0:1}$RUN"
	ifb="b${impl:0:1}$RUN"
	log "=== against $impl"
	start_daemon "$NS1" "$impl" "$ifa"
	start_daemon "$NS2" veild "$ifb"
	run "$VEILCTL" set "$ifa" private-key "$TMP/k1" listen-port 51001 fwmark 0x33 \
		peer "$(cat "$TMP/p2")" preshared-key "$TMP/psk" endpoint 198.18.0.2:51002 \
		allowed-ips 192.0.2.2/32,fd00::2/128 persistent-keepalive 25 \
		peer "$p3" endpoint "[2001:db8::3]:5555" allowed-ips 192.0.2.3/32 ||
		fail "$impl: veilctl set with every option"
	run wg set "$ifb" private-key "$TMP/k2" listen-port 51002 \
		peer "$(cat "$TMP/p1")" preshared-key "$TMP/psk" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
	n1 ip addr add 192.0.2.1/24 dev "$ifa"
	n1 ip link set "$ifa" up
	n2 ip addr add 192.0.2.2/24 dev "$ifb"
	n2 ip link set "$ifb" up
	ping_ok "$NS1" 192.0.2.2 3 || fail "$impl: no traffic"

	log "--- show --json agrees with wg show dump"
	json=$("$VEILCTL" show "$ifa" --json) || fail "$impl: show --json"
	dump=$(wg show "$ifa" dump)
	echo "$json" | jq -e . >/dev/null || fail "$impl: show --json is not JSON: $json"
	[ "$(echo "$json" | jq -r .public_key)" = "$(echo "$dump" | head -1 | cut -f2)" ] || fail "public key"
	[ "$(echo "$json" | jq -r .listen_port)" = "$(echo "$dump" | head -1 | cut -f3)" ] || fail "port"
	[ "$(printf '0x%x' "$(echo "$json" | jq -r .fwmark)")" = "$(echo "$dump" | head -1 | cut -f4)" ] || fail "fwmark"
	n=$(echo "$json" | jq '.peers | length')
	[ "$n" = "$(($(echo "$dump" | wc -l) - 1))" ] || fail "$impl: $n peers in JSON"
	for i in $(seq 0 $((n - 1))); do
		local pk line ep ips
		pk=$(echo "$json" | jq -r ".peers[$i].public_key")
		line=$(echo "$dump" | grep "^$pk")
		[ -n "$line" ] || fail "$impl: peer $pk not in the dump"
		ep=$(echo "$json" | jq -r ".peers[$i].endpoint // \"(none)\"")
		[ "$ep" = "$(echo "$line" | cut -f3)" ] || fail "$impl: endpoint $ep vs $(echo "$line" | cut -f3)"
		ips=$(echo "$json" | jq -r ".peers[$i].allowed_ips | join(\",\")")
		[ "${ips:-(none)}" = "$(echo "$line" | cut -f4)" ] || fail "$impl: allowed ips $ips"
		[ "$(echo "$json" | jq -r ".peers[$i].latest_handshake")" = "$(echo "$line" | cut -f5)" ] ||
			fail "$impl: latest handshake"
		[ "$(echo "$json" | jq -r ".peers[$i].persistent_keepalive")" = "$(echo "$line" | cut -f8 | sed 's/off/0/')" ] ||
			fail "$impl: keepalive"
		[ "$(echo "$json" | jq -r ".peers[$i].preshared_key")" = \
			"$([ "$(echo "$line" | cut -f2)" = "(none)" ] && echo false || echo true)" ] ||
			fail "$impl: preshared key presence"
	done
	echo "$json" | grep -q "$psk" && fail "$impl: show --json printed the pre-shared key"
	"$VEILCTL" show "$ifa" | grep -q "$(cat "$TMP/k1")" && fail "$impl: show printed the private key"
	"$VEILCTL" show all --json | jq -e ".\"$ifa\".peers" >/dev/null || fail "$impl: show all --json"
	"$VEILCTL" show interfaces | grep -q "$ifa" || fail "$impl: show interfaces"

	log "--- showconf agrees with wg showconf"
	diff <(wg showconf "$ifa" | grep -v '^$' | sed 's/ *= */=/' | sort) \
		<("$VEILCTL" showconf "$ifa" | grep -v '^$' | sed 's/ *= */=/' | sort) ||
		fail "$impl: showconf differs"

	log "--- a bad set changes nothing"
	# Sorted: wireguard-go lists its peers in no fixed order.
	wg showconf "$ifa" | sort >"$TMP/before"
	out=$("$VEILCTL" set "$ifa" listen-port 51009 peer "not-a-key" remove 2>&1) && fail "$impl: bad set accepted"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "$impl: bad set said: $out"
	out=$("$VEILCTL" set "$ifa" listen-port 51009 peer "$p3" allowed-ips 10.0.0.0/33 2>&1) &&
		fail "$impl: a bad prefix was accepted"
	wg showconf "$ifa" | sort >"$TMP/after"
	diff -u "$TMP/before" "$TMP/after" || fail "$impl: a bad set changed the configuration"

	log "--- syncconf: one peer removed, one kept with its session"
	local hs
	hs=$(wg show "$ifa" latest-handshakes | grep "$(cat "$TMP/p2")" | cut -f2)
	cat >"$TMP/$ifa.conf" <<EOF
[Interface]
PrivateKeyFile = $TMP/k1
ListenPort = 51001

[Peer]
PublicKey = $(cat "$TMP/p2")
PresharedKey = $psk
AllowedIPs = 192.0.2.2/32, fd00::2/128
Endpoint = 198.18.0.2:51002
PersistentKeepalive = 25
EOF
	sleep 1.1
	run "$VEILCTL" syncconf "$ifa" "$TMP/$ifa.conf" || fail "$impl: syncconf"
	wg show "$ifa" peers | grep -q "$p3" && fail "$impl: syncconf kept the removed peer"
	[ "$(wg show "$ifa" latest-handshakes | grep "$(cat "$TMP/p2")" | cut -f2)" = "$hs" ] ||
		fail "$impl: syncconf renewed the kept peer's session"
	ping_ok "$NS1" 192.0.2.2 2 || fail "$impl: traffic after syncconf"
	run "$VEILCTL" setconf "$ifa" "$TMP/$ifa.conf" || fail "$impl: setconf"
	[ "$(wg show "$ifa" peers | wc -l)" = 1 ] || fail "$impl: setconf"

	kill "${PIDS[0]}" "${PIDS[1]}"
	wait "${PIDS[0]}" "${PIDS[1]}" 2>/dev/null || true
	PIDS=()
	for _ in $(seq 50); do [ -e "/var/run/wireguard/$ifa.sock" ] || break; sleep 0.1; done
}

check veild
check wireguard-go

log "--- errors"
out=$("$VEILCTL" show "nx$RUN" 2>&1) && fail "show of a missing daemon succeeded"
echo "$out" | grep -q "/var/run/wireguard/nx$RUN.sock does not exist" || fail "missing daemon: $out"
# A stale socket: its daemon killed with SIGKILL, which leaves the file.
start_daemon "$NS1" veild "st$RUN"
kill -9 "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()
[ -S "/var/run/wireguard/st$RUN.sock" ] || fail "no stale socket left to test with"
out=$("$VEILCTL" show "st$RUN" 2>&1) && fail "show of a stale socket succeeded"
echo "$out" | grep -q "stale socket" || fail "stale socket: $out"
rm -f "/var/run/wireguard/st$RUN.sock"
out=$("$VEILCTL" set "../x" listen-port 1 2>&1) && fail "a bad interface name was accepted"
log "veilctl show/set/syncconf: all passed"
