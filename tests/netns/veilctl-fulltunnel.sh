#!/usr/bin/env bash
# Full tunnel from conf/full-tunnel.conf: the client (NS1) sends everything
# (AllowedIPs 0.0.0.0/0, ::/0) through veil to a server (NS2, veild set up
# with wg). A test host only the server has (192.0.2.100 and 2001:db8:ff::100
# on its loopback) answers the client through the tunnel, while the tunnel's
# own UDP still goes straight to the server: without the fwmark and the two
# policy rules it would loop into the tunnel and no handshake would complete.
# The default route lives in the tunnel's own table inside our namespace and
# leads only to our other namespace. `veilctl down` removes the rules and the
# table and puts src_valid_mark back; the namespace is then as before.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
ifc="ft$RUN"
ifs="fs$RUN"
STATE_FILES+=("/var/run/veil/$ifc.state")

setup_hosts
n2 ip addr add 192.0.2.100/32 dev lo
n2 ip addr add 2001:db8:ff::100/128 dev lo
umask 077
"$VEILCTL" genkey >"$TMP/c.key"
"$VEILCTL" genkey >"$TMP/s.key"
pubc=$("$VEILCTL" pubkey <"$TMP/c.key")
pubs=$("$VEILCTL" pubkey <"$TMP/s.key")

start_daemon "$NS2" veild "$ifs"
run wg set "$ifs" private-key "$TMP/s.key" listen-port 51820 \
	peer "$pubc" allowed-ips 198.19.2.2/32,fd00:2::2/128
n2 ip addr add 198.19.2.1/24 dev "$ifs"
n2 ip addr add fd00:2::1/64 dev "$ifs" nodad
n2 ip link set "$ifs" up

sed -e "s|/etc/veil/full-tunnel.key|$TMP/c.key|" -e "s|SERVER_PUBLIC_KEY|$pubs|" \
	"$ROOT/conf/full-tunnel.conf" >"$TMP/$ifc.conf"
snapshot() {
	{
		ip -n "$NS1" -o addr show | awk '{print $2, $3, $4}'
		ip -n "$NS1" -4 route show table all
		ip -n "$NS1" -6 route show table all
		ip -n "$NS1" -4 rule show
		ip -n "$NS1" -6 rule show
		n1 cat /proc/sys/net/ipv4/conf/all/src_valid_mark
	} | grep -v "fe80::" | sort # link-local addresses come in their own time
}
snapshot >"$TMP/before"
# Without the tunnel the test host is out of reach.
n1 ping -q -c 1 -W 1 192.0.2.100 >/dev/null 2>&1 && fail "the test host answers without a tunnel"

log "--- veilctl up with AllowedIPs 0.0.0.0/0, ::/0"
n1 "$VEILCTL" up "$TMP/$ifc.conf" || fail "veilctl up"
[ "$(wg show "$ifc" fwmark)" = "0xca6c" ] || fail "fwmark is $(wg show "$ifc" fwmark), not 51820"
# Fixed priorities, suppress first: an up that cannot find its state stacks no second pair.
n1 ip -4 rule show | qgrep "^32765:	not from all fwmark 0xca6c lookup 51820" || fail "no IPv4 'not fwmark' rule"
n1 ip -4 rule show | qgrep "^32764:	from all lookup main suppress_prefixlength 0" || fail "no IPv4 suppress rule"
n1 ip -6 rule show | qgrep "^32765:	not from all fwmark 0xca6c lookup 51820" || fail "no IPv6 'not fwmark' rule"
n1 ip -6 rule show | qgrep "^32764:	from all lookup main suppress_prefixlength 0" || fail "no IPv6 suppress rule"
n1 ip -4 route show table 51820 | qgrep "default dev $ifc" || fail "no default route in table 51820"
[ "$(n1 cat /proc/sys/net/ipv4/conf/all/src_valid_mark)" = 1 ] || fail "src_valid_mark not set"

log "--- the test host answers through the tunnel"
ping_ok "$NS1" 192.0.2.100 3 || fail "client -> test host (IPv4) through the tunnel"
ping_ok "$NS1" 2001:db8:ff::100 3 || fail "client -> test host (IPv6) through the tunnel"
read -r rx tx < <(wg show "$ifs" transfer | cut -f2,3 | tr '\t' ' ')
[ "$rx" -gt 0 ] && [ "$tx" -gt 0 ] || fail "the server's counters did not move ($rx/$tx)"
n1 ip route get 192.0.2.100 | qgrep "dev $ifc" || fail "the test host is not routed into the tunnel"
n1 ip route get 198.18.0.2 mark 0xca6c | qgrep "dev v$RUN" ||
	fail "the tunnel's own packets would not go straight to the server"
ping_ok "$NS1" 198.18.0.2 1 || fail "the server's own address (main table) unreachable"

log "--- veilctl down puts everything back"
n1 "$VEILCTL" down "$TMP/$ifc.conf" || fail "veilctl down"
snapshot >"$TMP/after"
diff -u "$TMP/before" "$TMP/after" || fail "the client namespace differs after down"
log "veilctl full tunnel: all passed"
