#!/usr/bin/env bash
# veilctl's control-socket commands against veild and against wireguard-go,
# checked with stock wg: set with every option lands as `wg show dump`
# reports it; show --json parses (jq) and agrees with `wg show dump` field
# by field; showconf agrees with `wg showconf`; bad arguments and a refused
# change leave the configuration as it was; setconf, then a syncconf that
# removes one peer and changes another's allowed IPs while an untouched
# peer keeps its session under a running ping; errors for a missing daemon,
# a stale socket and a file that is no socket; genkey | pubkey agrees with
# wg pubkey.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
command -v jq >/dev/null || fail "jq needed (tools/install-deps.sh test)"

# A comma-separated list as a sorted set: daemons list allowed IPs in their own order.
set_of() { tr ',' '\n' | sed 's/^ *//' | sort | paste -sd, -; }
# field LINE N: the Nth tab-separated field of a dump line.
field() { printf '%s\n' "$1" | cut -f"$2"; }
# peer_line DUMP KEY: the dump line of one peer.
peer_line() { printf '%s\n' "$1" | awk -F'\t' -v k="$2" '$1 == k'; }

# expect_error WHAT PATTERN CMD...: CMD must exit 1 with one line on stderr matching
# PATTERN, and print nothing on standard output.
expect_error() {
	local what=$1 pattern=$2 out err rc=0
	shift 2
	out=$("$@" 2>"$TMP/err") || rc=$?
	err=$(cat "$TMP/err")
	[ "$rc" = 1 ] || fail "$what: exit status $rc, not 1 ($err)"
	[ -z "$out" ] || fail "$what: printed '$out'"
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$what: not one line: $err"
	printf '%s\n' "$err" | qgrep -E "^veilctl: .*$pattern" || fail "$what: '$err' lacks '$pattern'"
	log "$what: $err"
}

setup_hosts
genkeys
log "--- genkey, genpsk, pubkey"
P1=$(cat "$TMP/p1") P2=$(cat "$TMP/p2") PSK=$(cat "$TMP/psk")
"$VEILCTL" genkey >"$TMP/k3"
grep -qE '^[A-Za-z0-9+/]{43}=$' "$TMP/k3" || fail "genkey: $(wc -c <"$TMP/k3") bytes, not one base64 key"
P3=$("$VEILCTL" pubkey <"$TMP/k3")
[ "$P3" = "$(wg pubkey <"$TMP/k3")" ] || fail "veilctl pubkey disagrees with wg pubkey"
[ "$(wg genkey | tee "$TMP/k4" | "$VEILCTL" pubkey)" = "$(wg pubkey <"$TMP/k4")" ] || fail "pubkey of a wg key"
P4=$(wg pubkey <"$TMP/k4")
"$VEILCTL" genpsk | qgrep -E '^[A-Za-z0-9+/]{43}=$' || fail "genpsk is not 44 characters of base64"
[ "$("$VEILCTL" genpsk)" != "$("$VEILCTL" genpsk)" ] || fail "genpsk repeats itself"
expect_error "pubkey of garbage" "not a base64 private key" sh -c "echo not-a-key | '$VEILCTL' pubkey"
printf 'garbage that is not a key\n' >"$TMP/badkey"

# json_agrees IFNAME WHAT: show --json against wg show dump, field by field. The
# counters and the handshake time are read between two dumps and must lie
# between them (a keepalive may pass in between).
json_agrees() {
	local ifname=$1 what=$2 d1 d2 json head n i pk l1 l2 f fw v
	d1=$(wg show "$ifname" dump)
	json=$("$VEILCTL" show "$ifname" --json) || fail "$what: show --json"
	d2=$(wg show "$ifname" dump)
	jq -e . >/dev/null <<<"$json" || fail "$what: show --json is not JSON: $json"
	head=$(printf '%s\n' "$d1" | head -n 1)
	[ "$(jq -r .name <<<"$json")" = "$ifname" ] || fail "$what: name"
	[ "$(jq -r .public_key <<<"$json")" = "$(field "$head" 2)" ] || fail "$what: public key"
	[ "$(jq -r .listen_port <<<"$json")" = "$(field "$head" 3)" ] || fail "$what: listen port"
	fw=$(jq -r .fwmark <<<"$json")
	if [ "$fw" = 0 ]; then fw=off; else fw=$(printf '0x%x' "$fw"); fi
	[ "$fw" = "$(field "$head" 4)" ] || fail "$what: fwmark $fw"
	n=$(jq '.peers | length' <<<"$json")
	[ "$n" = "$(($(printf '%s\n' "$d1" | wc -l) - 1))" ] || fail "$what: $n peers in JSON"
	for i in $(seq 0 $((n - 1))); do
		pk=$(jq -r ".peers[$i].public_key" <<<"$json")
		l1=$(peer_line "$d1" "$pk")
		l2=$(peer_line "$d2" "$pk")
		[ -n "$l1" ] || fail "$what: peer $pk not in the dump"
		[ -n "$l2" ] || fail "$what: peer $pk gone from the second dump"
		v=$(jq -r ".peers[$i].preshared_key" <<<"$json")
		[ "$v" = "$([ "$(field "$l1" 2)" = "(none)" ] && echo false || echo true)" ] ||
			fail "$what: pre-shared key presence $v"
		v=$(jq -r ".peers[$i].endpoint // \"(none)\"" <<<"$json")
		[ "$v" = "$(field "$l1" 3)" ] || fail "$what: endpoint $v vs $(field "$l1" 3)"
		v=$(jq -r ".peers[$i].allowed_ips | join(\",\")" <<<"$json" | set_of)
		[ "${v:-(none)}" = "$(field "$l1" 4 | set_of)" ] || fail "$what: allowed ips $v"
		for f in 5:latest_handshake 6:rx_bytes 7:tx_bytes; do
			v=$(jq -r ".peers[$i].${f#*:}" <<<"$json")
			if [ "$v" -lt "$(field "$l1" "${f%%:*}")" ] || [ "$v" -gt "$(field "$l2" "${f%%:*}")" ]; then
				fail "$what: ${f#*:} $v outside $(field "$l1" "${f%%:*}")..$(field "$l2" "${f%%:*}")"
			fi
		done
		v=$(jq -r ".peers[$i].persistent_keepalive" <<<"$json")
		[ "$v" = "$(field "$l1" 8 | sed 's/^off$/0/')" ] || fail "$what: keepalive $v"
	done
	grep -qF "$PSK" <<<"$json" && fail "$what: show --json printed a pre-shared key"
	grep -qF "$(cat "$TMP/k1")" <<<"$json" && fail "$what: show --json printed the private key"
	log "$what: show --json agrees with wg show dump ($n peers)"
}

# showconf_agrees IFNAME WHAT: the same keys and values as wg showconf.
showconf_agrees() {
	local norm='/^$/d;s/ *= */=/;/^AllowedIPs=/{s/^AllowedIPs=//;s/, */\n/g;s/^/AllowedIP=/;s/\n/\nAllowedIP=/g}'
	diff -u <(wg showconf "$1" | sed -E "$norm" | sort) <("$VEILCTL" showconf "$1" | sed -E "$norm" | sort) ||
		fail "$2: showconf differs from wg showconf"
}

# check IMPL: the daemon in NS1 is IMPL (configured by veilctl), its peer in NS2 is veild.
check() {
	local impl=$1 ifa ifb hlp dump line hs out
	ifa="a${impl:0:1}$RUN"
	ifb="b${impl:0:1}$RUN"
	hlp="h${impl:0:1}$RUN"
	log "=== against $impl"
	start_daemon "$NS1" "$impl" "$ifa"
	start_daemon "$NS2" veild "$ifb"

	log "--- set with every option"
	run "$VEILCTL" set "$ifa" private-key /dev/stdin listen-port 51001 fwmark 0x33 \
		peer "$P2" preshared-key "$TMP/psk" endpoint 198.18.0.2:51002 \
		allowed-ips "192.0.2.2/32, fd00::2" persistent-keepalive 25 \
		peer "$P3" endpoint "[2001:db8::3]:5555" allowed-ips 192.0.2.3/32,10.3.3.3/24 \
		peer "$P4" endpoint localhost:5556 allowed-ips 10.4.0.0/16 preshared-key "$TMP/psk" \
		persistent-keepalive 7 <"$TMP/k1" || fail "$impl: veilctl set with every option"
	dump=$(wg show "$ifa" dump)
	line=$(printf '%s\n' "$dump" | head -n 1)
	[ "$(field "$line" 2)" = "$P1" ] || fail "$impl: private key from /dev/stdin"
	[ "$(field "$line" 3)" = 51001 ] || fail "$impl: listen port"
	[ "$(field "$line" 4)" = 0x33 ] || fail "$impl: fwmark"
	line=$(peer_line "$dump" "$P2")
	[ "$(field "$line" 2)" = "$PSK" ] || fail "$impl: pre-shared key"
	[ "$(field "$line" 3)" = 198.18.0.2:51002 ] || fail "$impl: endpoint"
	[ "$(field "$line" 4 | set_of)" = "192.0.2.2/32,fd00::2/128" ] || fail "$impl: allowed ips $line"
	[ "$(field "$line" 8)" = 25 ] || fail "$impl: keepalive"
	line=$(peer_line "$dump" "$P3")
	[ "$(field "$line" 3)" = "[2001:db8::3]:5555" ] || fail "$impl: IPv6 endpoint"
	[ "$(field "$line" 4 | set_of)" = "10.3.3.0/24,192.0.2.3/32" ] || fail "$impl: allowed ips $line"
	line=$(peer_line "$dump" "$P4")
	field "$line" 3 | qgrep -xE '127\.0\.0\.1:5556|\[::1\]:5556' || fail "$impl: host name endpoint: $line"
	[ "$(field "$line" 8)" = 7 ] || fail "$impl: keepalive of the third peer"
	run "$VEILCTL" set "$ifa" fwmark off peer "$P4" persistent-keepalive off preshared-key /dev/null ||
		fail "$impl: set off"
	line=$(wg show "$ifa" dump | head -n 1)
	[ "$(field "$line" 4)" = off ] || fail "$impl: fwmark off"
	line=$(peer_line "$(wg show "$ifa" dump)" "$P4")
	[ "$(field "$line" 2)" = "(none)" ] || fail "$impl: an empty key file kept the pre-shared key: $line"
	[ "$(field "$line" 8)" = off ] || fail "$impl: keepalive off: $line"
	run "$VEILCTL" set "$ifa" fwmark 51 peer "$P4" remove || fail "$impl: set fwmark, remove"
	wg show "$ifa" peers | qgrep -F "$P4" && fail "$impl: remove left the peer"
	[ "$(wg show "$ifa" fwmark)" = 0x33 ] || fail "$impl: decimal fwmark"

	run wg set "$ifb" private-key "$TMP/k2" listen-port 51002 \
		peer "$P1" preshared-key "$TMP/psk" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
	n1 ip addr add 192.0.2.1/24 dev "$ifa"
	n1 ip link set "$ifa" up
	n2 ip addr add 192.0.2.2/24 dev "$ifb"
	n2 ip link set "$ifb" up
	ping_ok "$NS1" 192.0.2.2 3 || fail "$impl: no traffic"

	log "--- show, show --json, showconf"
	json_agrees "$ifa" "$impl"
	# veild says each peer's cipher (veil_get=1); wireguard-go hangs up on that and says nothing.
	line=$("$VEILCTL" show "$ifa" --json | jq -r '[.peers[].cipher] | unique | map(. // "null") | join(",")')
	[ "$line" = "$([ "$impl" = veild ] && echo chacha20poly1305 || echo null)" ] ||
		fail "$impl: show --json ciphers: $line"
	out=$("$VEILCTL" show "$ifa") || fail "$impl: show"
	for line in "interface: $ifa" "public key: $P1" "private key: (hidden)" "listening port: 51001" \
		"fwmark: 0x33" "peer: $P2" "preshared key: (hidden)" "endpoint: 198.18.0.2:51002" \
		"persistent keepalive: every 25 seconds" "latest handshake: " "transfer: "; do
		grep -qF "$line" <<<"$out" || fail "$impl: show lacks '$line': $out"
	done
	grep -qF -e "$PSK" -e "$(cat "$TMP/k1")" <<<"$out" && fail "$impl: show printed a secret key"
	"$VEILCTL" show all --json | jq -e ".\"$ifa\".peers and .\"$ifb\".peers" >/dev/null ||
		fail "$impl: show all --json"
	"$VEILCTL" show | qgrep -x "interface: $ifa" || fail "$impl: show without arguments"
	"$VEILCTL" show interfaces | tr ' ' '\n' | qgrep -x "$ifa" || fail "$impl: show interfaces"
	"$VEILCTL" show interfaces --json | jq -e "index(\"$ifa\") != null" >/dev/null ||
		fail "$impl: show interfaces --json"
	showconf_agrees "$ifa" "$impl"
	"$VEILCTL" showconf "$ifa" | qgrep -xF "PrivateKey = $(cat "$TMP/k1")" || fail "$impl: showconf key"

	log "--- bad arguments change nothing, and say why in one line"
	wg showconf "$ifa" | sort >"$TMP/before"
	expect_error "peer key" "not a base64 public key" "$VEILCTL" set "$ifa" listen-port 51009 peer not-a-key remove
	expect_error "key file" "does not hold a base64 key" "$VEILCTL" set "$ifa" listen-port 51009 \
		private-key "$TMP/badkey"
	expect_error "missing key file" "No such file" "$VEILCTL" set "$ifa" peer "$P2" preshared-key "$TMP/none"
	expect_error "prefix" "allowed-ips: prefix length out of range" "$VEILCTL" set "$ifa" listen-port 51009 peer "$P3" allowed-ips 10.0.0.0/33
	expect_error "port" "not a port" "$VEILCTL" set "$ifa" listen-port 70000
	expect_error "endpoint" "not HOST:PORT" "$VEILCTL" set "$ifa" peer "$P3" endpoint 198.18.0.9
	expect_error "keepalive" "persistent-keepalive" "$VEILCTL" set "$ifa" peer "$P3" persistent-keepalive -1
	expect_error "option" "unknown option" "$VEILCTL" set "$ifa" listen-prot 51009
	expect_error "remove with options" "remove takes no other option" "$VEILCTL" set "$ifa" \
		peer "$P3" endpoint 198.18.0.9:1 remove
	expect_error "interface name" "not an interface name" "$VEILCTL" set "../$ifa" listen-port 1
	# The daemon refuses a port that another socket holds: its errno, as a message.
	start_daemon "$NS1" veild "$hlp"
	run wg set "$hlp" listen-port 51201
	expect_error "refused change" "the daemon refused the change: Address already in use" \
		"$VEILCTL" set "$ifa" listen-port 51201
	kill "${PIDS[-1]}"
	wait "${PIDS[-1]}" 2>/dev/null || true
	unset 'PIDS[-1]'
	# wireguard-go gives up its old port when a rebind fails (veild keeps it): set it again.
	[ "$impl" = veild ] && [ "$(wg show "$ifa" listen-port)" != 51001 ] && fail "veild lost its port"
	run "$VEILCTL" set "$ifa" listen-port 51001
	wg showconf "$ifa" | sort >"$TMP/after"
	diff -u "$TMP/before" "$TMP/after" || fail "$impl: a bad set changed the configuration"

	log "--- setconf, then syncconf: one peer removed, one changed, one kept with its session"
	cat >"$TMP/$ifa-a.conf" <<EOF
[Interface]
PrivateKeyFile = $TMP/k1
ListenPort = 51001
FwMark = 0x33
Address = 192.0.2.1/24
DNS = 192.0.2.53

[Peer]
PublicKey = $P2
PresharedKey = $PSK
AllowedIPs = 192.0.2.2/32, fd00::2/128
Endpoint = 198.18.0.2:51002
PersistentKeepalive = 25

[Peer]
PublicKey = $P3
Endpoint = [2001:db8::3]:5555
AllowedIPs = 192.0.2.3/32

[Peer]
PublicKey = $P4
AllowedIPs = 10.4.0.0/16
EOF
	# The same, written differently for the kept peer (another order, host bits set),
	# without the second peer, and with the third's allowed IPs changed.
	cat >"$TMP/$ifa-b.conf" <<EOF
[Interface]
PrivateKeyFile = $TMP/k1
ListenPort = 51001

[Peer]
PublicKey = $P2
AllowedIPs = fd00::2/128
AllowedIPs = 192.0.2.2/32
PresharedKey = $PSK
PersistentKeepalive = 25
Endpoint = 198.18.0.2:51002

[Peer]
PublicKey = $P4
AllowedIPs = 10.4.1.1/16, 10.44.0.0/16
EOF
	printf '[Interface]\nListenPort = 51009\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.0.0.0/33\n' \
		"$P2" >"$TMP/bad.conf"
	expect_error "bad file" "bad.conf:6: AllowedIPs" "$VEILCTL" setconf "$ifa" "$TMP/bad.conf"
	expect_error "bad file, sync" "bad.conf:6: AllowedIPs" "$VEILCTL" syncconf "$ifa" "$TMP/bad.conf"
	diff -u "$TMP/before" <(wg showconf "$ifa" | sort) || fail "$impl: a bad file changed the configuration"
	run "$VEILCTL" setconf "$ifa" "$TMP/$ifa-a.conf" || fail "$impl: setconf"
	[ "$(wg show "$ifa" peers | sort)" = "$(printf '%s\n' "$P2" "$P3" "$P4" | sort)" ] ||
		fail "$impl: setconf peers"
	showconf_agrees "$ifa" "$impl after setconf"
	ping_ok "$NS1" 192.0.2.2 3 || fail "$impl: traffic after setconf"
	hs=$(wg show "$ifa" latest-handshakes | awk -v k="$P2" '$1 == k { print $2 }')
	[ "$hs" -gt 0 ] || fail "$impl: no handshake after setconf"
	sleep 1.1 # a new handshake now would show another second
	ip netns exec "$NS1" ping -c 25 -i 0.1 -W 1 -w 15 192.0.2.2 >"$TMP/ping.out" 2>&1 &
	local ping=$!
	sleep 0.8
	run "$VEILCTL" syncconf "$ifa" "$TMP/$ifa-b.conf" || fail "$impl: syncconf"
	wait "$ping" || fail "$impl: ping during syncconf: $(tail -n 2 "$TMP/ping.out")"
	grep -q " 0% packet loss" "$TMP/ping.out" || fail "$impl: loss during syncconf: $(tail -n 2 "$TMP/ping.out")"
	dump=$(wg show "$ifa" dump)
	peer_line "$dump" "$P3" | qgrep . && fail "$impl: syncconf kept the removed peer"
	[ "$(field "$(peer_line "$dump" "$P4")" 4 | set_of)" = "10.4.0.0/16,10.44.0.0/16" ] ||
		fail "$impl: syncconf did not change the allowed IPs: $dump"
	line=$(peer_line "$dump" "$P2")
	[ "$(field "$line" 5)" = "$hs" ] || fail "$impl: syncconf renewed the kept peer's session ($hs: $line)"
	[ "$(field "$line" 4 | set_of)" = "192.0.2.2/32,fd00::2/128" ] || fail "$impl: kept peer changed: $line"
	[ "$(wg show "$ifa" fwmark)" = 0x33 ] || fail "$impl: syncconf dropped the fwmark the file does not name"
	run "$VEILCTL" syncconf "$ifa" "$TMP/$ifa-b.conf" || fail "$impl: syncconf again"
	ping_ok "$NS1" 192.0.2.2 2 || fail "$impl: traffic after syncconf"
	[ "$(wg show "$ifa" latest-handshakes | awk -v k="$P2" '$1 == k { print $2 }')" = "$hs" ] ||
		fail "$impl: a second syncconf renewed the session"
	json_agrees "$ifa" "$impl after syncconf"
	showconf_agrees "$ifa" "$impl after syncconf"

	# Both stop on SIGTERM, and nothing of them (or of the helper) is left.
	stop_daemons "${PIDS[0]}" "${PIDS[1]}"
	expect_gone "$NS1" "$ifa" "$hlp"
	expect_gone "$NS2" "$ifb"
}

check veild
check wireguard-go

log "--- errors"
expect_error "show without daemon" "no daemon runs for nx$RUN \(/var/run/wireguard/nx$RUN.sock does not exist\)" \
	"$VEILCTL" show "nx$RUN"
expect_error "set without daemon" "/var/run/wireguard/nx$RUN.sock does not exist" \
	"$VEILCTL" set "nx$RUN" listen-port 1
expect_error "showconf without daemon" "/var/run/wireguard/nx$RUN.sock does not exist" \
	"$VEILCTL" showconf "nx$RUN"
# A stale socket: its daemon killed with SIGKILL, which leaves the file.
start_daemon "$NS1" veild "st$RUN"
STATE_FILES+=("/var/run/wireguard/st$RUN.sock" "/var/run/wireguard/nf$RUN.sock")
kill -9 "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()
[ -S "/var/run/wireguard/st$RUN.sock" ] || fail "no stale socket left to test with"
expect_error "stale socket" "/var/run/wireguard/st$RUN.sock is a stale socket: no daemon listens on it" \
	"$VEILCTL" show "st$RUN"
expect_error "stale socket, set" "stale socket" "$VEILCTL" set "st$RUN" listen-port 1
[ -S "/var/run/wireguard/st$RUN.sock" ] || fail "veilctl removed the stale socket"
# show all: a stale socket is no interface. It is said on stderr and left out; the
# listing still succeeds and is whole JSON.
all=$("$VEILCTL" show all --json 2>"$TMP/all.err") || fail "show all --json failed over a stale socket: $(cat "$TMP/all.err")"
jq -e --arg n "st$RUN" 'has($n) | not' <<<"$all" >/dev/null || fail "show all --json lists the stale socket: $all"
qgrep "st$RUN.sock is a stale socket" <"$TMP/all.err" || fail "show all did not say the socket is stale"
rm -f "/var/run/wireguard/st$RUN.sock"
: >"/var/run/wireguard/nf$RUN.sock"
expect_error "not a socket" "/var/run/wireguard/nf$RUN.sock is not a socket" "$VEILCTL" show "nf$RUN"
rm -f "/var/run/wireguard/nf$RUN.sock"
expect_error "show usage" "usage: veilctl show" "$VEILCTL" show a b
log "veilctl show/set/setconf/syncconf/keys: all passed"
