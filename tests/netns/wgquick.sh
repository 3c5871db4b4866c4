#!/usr/bin/env bash
# wg-quick up and down with WG_QUICK_USERSPACE_IMPLEMENTATION=veild: wg-quick starts
# veild (which daemonizes once its interface and socket are ready), configures it from
# a file with Address, ListenPort and a Peer with Endpoint and AllowedIPs; traffic
# crosses; wg-quick down deletes the link and veild exits and removes its socket, on
# both hosts, and leaves no process behind.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="qa$RUN" B="qb$RUN"

# The daemon wg-quick starts is found by its exact command line (our unique interface
# name), so that cleanup can stop it by PID even if the test fails half-way.
daemon_pid() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" = "$VEILD $1 " ] && { echo "${p#/proc/}"; return 0; }
	done
	return 1
}

cat >"$TMP/$A.conf" <<CONF
[Interface]
PrivateKey = $(cat "$TMP/k1")
Address = 192.0.2.1/24, fd00::1/64
ListenPort = 51001

[Peer]
PublicKey = $(cat "$TMP/p2")
PresharedKey = $(cat "$TMP/psk")
Endpoint = 198.18.0.2:51002
AllowedIPs = 192.0.2.2/32, fd00::2/128
CONF
cat >"$TMP/$B.conf" <<CONF
[Interface]
PrivateKey = $(cat "$TMP/k2")
Address = 192.0.2.2/24, fd00::2/64
ListenPort = 51002

[Peer]
PublicKey = $(cat "$TMP/p1")
PresharedKey = $(cat "$TMP/psk")
Endpoint = 198.18.0.1:51001
AllowedIPs = 192.0.2.1/32, fd00::1/128
CONF
chmod 600 "$TMP"/*.conf

run n1 env WG_QUICK_USERSPACE_IMPLEMENTATION="$VEILD" wg-quick up "$TMP/$A.conf"
PIDS+=("$(daemon_pid "$A")")
run n2 env WG_QUICK_USERSPACE_IMPLEMENTATION="$VEILD" wg-quick up "$TMP/$B.conf"
PIDS+=("$(daemon_pid "$B")")
[ -n "${PIDS[0]}" ] && [ -n "${PIDS[1]}" ] || fail "veild did not stay in the background"

ping_ok "$NS1" 192.0.2.2 || fail "ping v4 after wg-quick up"
ping_ok "$NS2" fd00::1 || fail "ping v6 after wg-quick up"
transfer "$NS1" "$NS2" 192.0.2.2 10
n1 ip -o link show "$A" | qgrep "mtu 1420" || fail "wg-quick did not set MTU 1420"
wg show "$A" | qgrep "latest handshake" || fail "wg show has no handshake"

run n1 wg-quick down "$TMP/$A.conf"
run n2 wg-quick down "$TMP/$B.conf"
for pid in "${PIDS[@]}"; do
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "veild ($pid) still running after wg-quick down"
done
PIDS=()
[ -e "/var/run/wireguard/$A.sock" ] && fail "socket left behind after down"
n1 ip link show "$A" >/dev/null 2>&1 && fail "interface left behind"
# Both sides, not only A: no socket, no interface, no process (the resolver child).
expect_gone "$NS1" "$A"
expect_gone "$NS2" "$B"
log "wg-quick: up, traffic, down: ok"
