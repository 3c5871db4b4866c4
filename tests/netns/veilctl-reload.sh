#!/usr/bin/env bash
# A failed reload changes nothing. veilctl up brings up an interface with a
# metrics listener, an MTU, an address, a route and a peer; then three files
# that each fail at another step of the reload, each also changing what the
# steps before it would apply (a new peer, another MTU, another listener, a
# route): an address the host does not have for MetricsListen (the first
# step), a ListenPort another socket holds (after the listener moved), and an
# IPv6 address on a link with IPv6 off (the last step, after the peers, the
# listener and the MTU changed). Each must fail with one line naming the
# setting refused (and no word of AES, which is not the problem), and leave
# the interface as it was: its peers and keys (wg showconf), MTU, addresses
# and routes, the listener serving where it was, the state file, and the
# tunnel carrying pings. A good file then reloads with a one-line summary of
# what changed, and the same file again says nothing changed.
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
ifa="ra$RUN"
ifb="rb$RUN"
STATE_FILES+=("/var/run/veil/$ifa.state" "/var/run/veil/$ifb.state")
setup_hosts
umask 077
for k in a b c; do
	"$VEILCTL" genkey >"$TMP/$k.key"
done
pub_a=$("$VEILCTL" pubkey <"$TMP/a.key")
pub_b=$("$VEILCTL" pubkey <"$TMP/b.key")
pub_c=$("$VEILCTL" pubkey <"$TMP/c.key")

# conf_a EXTRA_INTERFACE_LINES EXTRA_PEERS: A's file, its [Interface] with extra lines.
conf_a() {
	cat >"$TMP/$ifa.conf" <<EOF2
[Interface]
PrivateKeyFile = $TMP/a.key
ListenPort = 51840
Address = 198.19.8.1/24
${1:-}

[Peer]
PublicKey = $pub_b
AllowedIPs = 198.19.8.2/32
Endpoint = 198.18.0.2:51840
${2:-}
EOF2
}
cat >"$TMP/$ifb.conf" <<EOF2
[Interface]
PrivateKeyFile = $TMP/b.key
ListenPort = 51840
Address = 198.19.8.2/24

[Peer]
PublicKey = $pub_a
AllowedIPs = 198.19.8.1/32
Endpoint = 198.18.0.1:51840
EOF2
peer_c="[Peer]
PublicKey = $pub_c
AllowedIPs = 198.19.9.0/24"

# scrape PORT: the metrics page on 127.0.0.1:PORT in NS1 (fails when nothing serves it).
scrape() {
	n1 /usr/bin/python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' "$1"
}
# snapshot: what must not change, as text.
snapshot() {
	wg showconf "$ifa" | sort
	n1 ip -o link show "$ifa" | grep -o "mtu [0-9]*"
	n1 ip -o addr show dev "$ifa" | awk '{print $3, $4}' | sort
	n1 ip route show table all dev "$ifa" | sort
	cat "/var/run/veil/$ifa.state"
}

conf_a "MTU = 1420
MetricsListen = 127.0.0.1:9590"
n1 "$VEILCTL" up "$TMP/$ifa.conf" || fail "veilctl up A"
n2 "$VEILCTL" up "$TMP/$ifb.conf" || fail "veilctl up B"
ping_ok "$NS1" 198.19.8.2 || fail "A -> B before any reload"
scrape 9590 >/dev/null || fail "the listener does not serve after up"
snapshot >"$TMP/before"

# refused WHAT WANT: reload A (its file already written) must fail saying WANT, and change nothing.
refused() {
	local what=$1 want=$2 out
	out=$(n1 "$VEILCTL" reload "$TMP/$ifa.conf" 2>&1) && fail "$what: reload succeeded: $out"
	qgrep -F -- "$want" <<<"$out" || fail "$what: the refusal does not say '$want': $out"
	qgrep -i "aes" <<<"$out" && fail "$what: a word of AES, which is not the problem: $out"
	qgrep "reload failed: nothing was changed" <<<"$out" || fail "$what: no word that nothing changed: $out"
	snapshot >"$TMP/after"
	diff -u "$TMP/before" "$TMP/after" || fail "$what: the interface changed"
	scrape 9590 >/dev/null || fail "$what: the listener on 127.0.0.1:9590 stopped"
	ping_ok "$NS1" 198.19.8.2 2 || fail "$what: A -> B after the refused reload"
	log "$what: refused, nothing changed: $(tr '\n' ' ' <<<"$out")"
}

log "--- MetricsListen on an address this host does not have"
conf_a "MTU = 1380
MetricsListen = 198.18.77.7:9590
Address = 198.19.10.1/24" "$peer_c"
refused "an address not on this host" "$TMP/$ifa.conf:6: MetricsListen = 198.18.77.7:9590 refused: Cannot assign requested address (this host has no such address"

log "--- a ListenPort another socket holds, after the listener moved"
n1 /usr/bin/python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 51841)); time.sleep(20)' &
holder=$!
PIDS+=("$holder")
sleep 0.5
conf_a "MTU = 1380
MetricsListen = 127.0.0.1:9591" "$peer_c"
sed -i 's/^ListenPort = 51840/ListenPort = 51841/' "$TMP/$ifa.conf"
refused "a port in use" "$TMP/$ifa.conf:3: ListenPort = 51841 refused: the port is in use"
scrape 9591 >/dev/null 2>&1 && fail "the listener the refused reload opened still serves"
kill "$holder" 2>/dev/null || true

log "--- an IPv6 address on a link with IPv6 off: the last step, after all the others"
n1 sysctl -qw "net.ipv6.conf.$ifa.disable_ipv6=1"
snapshot >"$TMP/before"
conf_a "MTU = 1380
MetricsListen = 127.0.0.1:9591
Address = fd00:8::1/64" "$peer_c
Cipher = chacha20poly1305"
refused "IPv6 off" "cannot add address fd00:8::1/64"
scrape 9591 >/dev/null 2>&1 && fail "the listener the refused reload opened still serves"
[ "$(wg show "$ifa" peers | wc -l)" = 1 ] || fail "the refused reload's peer stayed"
n1 sysctl -qw "net.ipv6.conf.$ifa.disable_ipv6=0"

log "--- a good reload says what it changed"
conf_a "MTU = 1380
MetricsListen = 127.0.0.1:9591" "$peer_c"
out=$(n1 "$VEILCTL" reload "$TMP/$ifa.conf" 2>&1) || fail "a good reload failed: $out"
want="veilctl: $ifa reloaded: 1 peer added, MTU 1420 -> 1380, metrics 127.0.0.1:9590 -> 127.0.0.1:9591, 1 route added"
[ "$out" = "$want" ] || fail "reload said '$out', not '$want'"
scrape 9591 >/dev/null || fail "the new listener does not serve"
scrape 9590 >/dev/null 2>&1 && fail "the old listener still serves"
n1 ip -o link show "$ifa" | qgrep "mtu 1380" || fail "the MTU was not applied"
n1 ip route show 198.19.9.0/24 | qgrep "dev $ifa" || fail "the new peer's route is missing"
ping_ok "$NS1" 198.19.8.2 2 || fail "A -> B after the reload"
out=$(n1 "$VEILCTL" reload "$TMP/$ifa.conf" 2>&1) || fail "reloading the same file failed: $out"
[ "$out" = "veilctl: $ifa reloaded: nothing changed" ] || fail "the same file again said '$out'"
conf_a "MTU = 1380
MetricsListen = 127.0.0.1:9591"
out=$(n1 "$VEILCTL" reload "$TMP/$ifa.conf" 2>&1) || fail "removing a peer failed: $out"
[ "$out" = "veilctl: $ifa reloaded: 1 peer removed, 1 route removed" ] || fail "removing a peer said '$out'"
n1 "$VEILCTL" down "$TMP/$ifa.conf" || fail "veilctl down A"
n2 "$VEILCTL" down "$TMP/$ifb.conf" || fail "veilctl down B"
log "veilctl reload: all passed"
