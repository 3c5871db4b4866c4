#!/usr/bin/env bash
# veilctl metrics: the Prometheus text of a veild interface parses (with
# Debian's python3-prometheus-client), its counters move with traffic (a
# 5 MB transfer raises the byte counters by at least that much), a handshake
# is counted and the session's age shown, and a datagram with a bad mac1
# shows up under its drop reason. With no IFNAME every interface is written,
# a wireguard-go one too (from its get=1), each family once.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
UDPSEND="$ROOT/$BUILD/tools/udpsend"
A="ma$RUN"
B="mb$RUN"
G="mg$RUN"
setup_hosts
genkeys
P1=$(cat "$TMP/p1")
P2=$(cat "$TMP/p2")

start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
wg_up "$NS1" "$A" "$TMP/k1" 51001 192.0.2.1/24
wg_up "$NS2" "$B" "$TMP/k2" 51002 192.0.2.2/24
run wg set "$A" peer "$P2" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51002
run wg set "$B" peer "$P1" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001

# value FILE NAME LABELS...: one sample's value, after the whole text parsed.
value() {
	/usr/bin/python3 - "$@" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
path, name, labels = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
found = None
for fam in text_string_to_metric_families(open(path).read()):
    for s in fam.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            found = s.value
print("absent" if found is None else int(found))
PY
}

"$VEILCTL" metrics "$A" >"$TMP/m0" || fail "veilctl metrics before traffic"
[ "$(value "$TMP/m0" veil_peers interface="$A")" = 1 ] || fail "veil_peers: $(cat "$TMP/m0")"
[ "$(value "$TMP/m0" veil_peer_handshakes_total public_key="$P2")" = 0 ] || fail "a handshake before any traffic"
[ "$(value "$TMP/m0" veil_peer_keypair_age_seconds public_key="$P2")" = absent ] ||
	fail "a session age without a session"

log "--- traffic moves the counters"
ping_ok "$NS1" 192.0.2.2 || fail "ping"
"$VEILCTL" metrics "$A" >"$TMP/m1" || fail "veilctl metrics"
transfer "$NS1" "$NS2" 192.0.2.2 5
"$VEILCTL" metrics "$A" >"$TMP/m2" || fail "veilctl metrics after the transfer"
tx1=$(value "$TMP/m1" veil_peer_transmit_bytes_total interface="$A" public_key="$P2")
tx2=$(value "$TMP/m2" veil_peer_transmit_bytes_total interface="$A" public_key="$P2")
[ $((tx2 - tx1)) -ge 5000000 ] || fail "transmit bytes moved by $((tx2 - tx1)) for 5 MB"
rxp1=$(value "$TMP/m1" veil_peer_receive_packets_total public_key="$P2")
rxp2=$(value "$TMP/m2" veil_peer_receive_packets_total public_key="$P2")
[ "$rxp2" -gt "$rxp1" ] || fail "receive packets did not move ($rxp1 -> $rxp2)"
[ "$(value "$TMP/m2" veil_peer_handshakes_total public_key="$P2")" -ge 1 ] || fail "no handshake counted"
[ "$(value "$TMP/m2" veil_handshakes_total interface="$A")" -ge 1 ] || fail "no handshake on the interface"
[ "$(value "$TMP/m2" veil_peer_keypair_age_seconds public_key="$P2")" != absent ] || fail "no session age"
[ "$(value "$TMP/m2" veil_peer_last_handshake_seconds public_key="$P2")" -gt 1700000000 ] ||
	fail "last handshake time"
# The same figures as wg's own counters.
[ "$(value "$TMP/m2" veil_peer_transmit_bytes_total public_key="$P2")" -le "$(wg show "$A" transfer | cut -f3)" ] ||
	fail "metrics ahead of wg show"

log "--- a datagram with a bad mac1 is counted under its reason"
bad0=$(value "$TMP/m2" veil_drops_total interface="$A" reason=bad_mac)
printf '01000000%0288d\n' 0 | n2 "$UDPSEND" 198.18.0.1 51001 hex >/dev/null || fail "udpsend"
"$VEILCTL" metrics "$A" >"$TMP/m3" || fail "veilctl metrics after the bad datagram"
[ "$(value "$TMP/m3" veil_drops_total interface="$A" reason=bad_mac)" -eq $((bad0 + 1)) ] ||
	fail "bad_mac drops: $bad0 -> $(value "$TMP/m3" veil_drops_total interface="$A" reason=bad_mac)"

log "--- veild's own HTTP listener (metrics_listen): a scrape, and a counter that moves"
# uapi IF REQUEST: one raw request on the control socket; prints the reply.
uapi() {
	/usr/bin/python3 - "/var/run/wireguard/$1.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
out = b""
while not out.endswith(b"\n\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
print(out.decode().strip())
PY
}
# scrape NS URL: the page (exit 1 on an HTTP error or a refused connection).
scrape() {
	ip netns exec "$1" /usr/bin/python3 - "$2" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers["Content-Type"]
    sys.stdout.write(r.read().decode())
PY
}
URL=http://127.0.0.1:9586/metrics
[ "$(uapi "$A" $'set=1\nmetrics_listen=127.0.0.1:9586\n\n')" = "errno=0" ] || fail "metrics_listen refused"
qgrep "event=metrics_listen_set iface=$A .*listen=127.0.0.1:9586" <"$TMP/$A.log" || fail "no audit line for the listener"
scrape "$NS1" "$URL" >"$TMP/h1" 2>"$TMP/h.err" || fail "scrape: $(cat "$TMP/h.err")"
ping_ok "$NS1" 192.0.2.2 20 || fail "ping for the scrape"
scrape "$NS1" "$URL" >"$TMP/h2" 2>"$TMP/h.err" || fail "second scrape: $(cat "$TMP/h.err")"
r1=$(value "$TMP/h1" veil_peer_receive_packets_total interface="$A" public_key="$P2")
r2=$(value "$TMP/h2" veil_peer_receive_packets_total interface="$A" public_key="$P2")
[ "$r2" -ge $((r1 + 20)) ] || fail "scraped receive packets moved $r1 -> $r2 for 20 pings"
scrape "$NS1" http://127.0.0.1:9586/ >/dev/null 2>&1 && fail "a page other than /metrics was served"
[ "$(uapi "$A" $'set=1\nmetrics_listen=not-an-address\n\n')" = "errno=-22" ] || fail "a bad address was taken"
n1 /usr/bin/python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1", 9587)); s.listen(); time.sleep(3)' &
holder=$!
sleep 0.5
[ "$(uapi "$A" $'set=1\nmetrics_listen=127.0.0.1:9587\n\n')" = "errno=-98" ] || fail "a port in use was not refused"
wait "$holder"
# A refused listener leaves the one before it serving: the new one is opened first.
scrape "$NS1" "$URL" >/dev/null 2>"$TMP/h.err" || fail "the listener stopped when a port in use was refused"
[ "$(uapi "$A" $'set=1\nmetrics_listen=198.18.77.7:9586\n\n')" = "errno=-99" ] ||
	fail "an address this host does not have was not refused"
scrape "$NS1" "$URL" >/dev/null 2>"$TMP/h.err" || fail "the listener stopped when an address was refused"
[ "$(uapi "$A" $'veil_get=1\n\n' | sed -n 's/^metrics_listen=//p')" = 127.0.0.1:9586 ] ||
	fail "veil_get=1 does not name the listener still serving"
# The same port on the wildcard: the old listener holds it, so it goes first.
[ "$(uapi "$A" $'set=1\nmetrics_listen=0.0.0.0:9586\n\n')" = "errno=0" ] || fail "moving to the wildcard"
scrape "$NS1" "$URL" >/dev/null 2>"$TMP/h.err" || fail "the wildcard listener does not serve"
[ "$(uapi "$A" $'set=1\nmetrics_listen=127.0.0.1:9586\n\n')" = "errno=0" ] || fail "moving back to loopback"
scrape "$NS1" "$URL" >/dev/null 2>"$TMP/h.err" || fail "the listener does not serve after moving back"
[ "$(uapi "$A" $'set=1\nmetrics_listen=\n\n')" = "errno=0" ] || fail "turning the listener off"
scrape "$NS1" "$URL" >/dev/null 2>&1 && fail "the listener still answers once off"
kill -0 "${PIDS[0]}" || fail "veild died serving metrics"

log "--- every interface at once, wireguard-go's too"
start_daemon "$NS1" wireguard-go "$G"
run wg set "$G" private-key "$TMP/k1" peer "$P2" allowed-ips 192.0.2.20/32
# Other interfaces of this machine may be listed too (and fail): only ours are checked.
"$VEILCTL" metrics >"$TMP/all" 2>"$TMP/all.err" || true
[ "$(value "$TMP/all" veil_peers interface="$A")" = 1 ] || fail "all: no $A"
[ "$(value "$TMP/all" veil_peers interface="$G")" = 1 ] || fail "all: no $G (wireguard-go)"
[ "$(value "$TMP/all" veil_peer_transmit_bytes_total interface="$G" public_key="$P2")" = 0 ] ||
	fail "all: wireguard-go's peer"
[ "$(grep -c '^# TYPE veil_peers ' "$TMP/all")" = 1 ] || fail "a family written twice"
"$VEILCTL" metrics "nosuch$RUN" 2>"$TMP/err" && fail "metrics of a missing interface succeeded"
qgrep "no daemon runs for nosuch$RUN" <"$TMP/err" || fail "unclear error: $(cat "$TMP/err")"
log "metrics: all passed"
