#!/usr/bin/env bash
# make demo: two network namespaces linked by a veil tunnel, traffic across it,
# status shown, everything removed afterwards. Needs root. veilctl does what
# wg would (keys, set, show), so nothing but ip and ping is installed for it.
[ "$(id -u)" = 0 ] || { echo "make demo: run as root (it creates network namespaces)" >&2; exit 1; }
"$(dirname "$0")/install-deps.sh" demo
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/../tests/netns/lib.sh"
VEILCTL="$ROOT/$BUILD/veilctl"
# shellcheck disable=SC2034 # lib.sh's genkeys and start_daemon use it
WG=$VEILCTL

setup_hosts
genkeys
IFA="da$RUN"
IFB="db$RUN"
start_daemon "$NS1" veild "$IFA"
start_daemon "$NS2" veild "$IFB"
run "$VEILCTL" set "$IFA" private-key "$TMP/k1" listen-port 51820 \
	peer "$(cat "$TMP/p2")" allowed-ips 192.0.2.2/32 endpoint 198.18.0.2:51820
run "$VEILCTL" set "$IFB" private-key "$TMP/k2" listen-port 51820 \
	peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51820
n1 ip addr add 192.0.2.1/24 dev "$IFA"
n1 ip link set "$IFA" up
n2 ip addr add 192.0.2.2/24 dev "$IFB"
n2 ip link set "$IFB" up

log "ping across the tunnel"
run n1 ping -c 3 -i 0.2 -W 2 192.0.2.2
log "a 20 MB TCP transfer with a checksum at both ends"
transfer "$NS1" "$NS2" 192.0.2.2 20
echo
run "$VEILCTL" show "$IFA"
echo
run "$VEILCTL" show "$IFB"
echo
log "summary: two veild daemons, one WireGuard tunnel between namespaces $NS1 and $NS2;"
log "handshake done, ping and a checksummed transfer crossed it. Cleaning up."
