#!/usr/bin/env bash
# Site to site with nothing but `veilctl up` and the files in conf/: two
# gateways (NS1, NS2) on an underlay link, each with a host behind it on its
# own LAN (NS3 behind NS1, NS4 behind NS2). The host in site A reaches the
# host in site B over IPv4 and IPv6; `veilctl down` on both gateways leaves
# every namespace exactly as it was: links, addresses, routes in every table,
# policy rules. The only edits to the example files are the keys' places.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
NS4="veil-$RUN-d"
EXTRA_NS+=("$NS4")
n4() { ip netns exec "$NS4" "$@"; }
ifa="sa$RUN"
ifb="sb$RUN"
STATE_FILES+=("/var/run/veil/$ifa.state" "/var/run/veil/$ifb.state")

setup_hosts
run ip netns add "$NS3"
run ip netns add "$NS4"
n3 ip link set lo up
n4 ip link set lo up
# LAN A: gateway NS1 198.18.1.1, host NS3 198.18.1.2; LAN B likewise on 198.18.2.0/24.
run ip link add "x$RUN" netns "$NS1" type veth peer name "y$RUN" netns "$NS3"
run ip link add "p$RUN" netns "$NS2" type veth peer name "q$RUN" netns "$NS4"
n1 ip addr add 198.18.1.1/24 dev "x$RUN"
n1 ip addr add fd00:a::1/64 dev "x$RUN" nodad
n3 ip addr add 198.18.1.2/24 dev "y$RUN"
n3 ip addr add fd00:a::2/64 dev "y$RUN" nodad
n2 ip addr add 198.18.2.1/24 dev "p$RUN"
n2 ip addr add fd00:b::1/64 dev "p$RUN" nodad
n4 ip addr add 198.18.2.2/24 dev "q$RUN"
n4 ip addr add fd00:b::2/64 dev "q$RUN" nodad
for l in "n1 x$RUN" "n3 y$RUN" "n2 p$RUN" "n4 q$RUN"; do
	set -- $l
	$1 ip link set "$2" up
done
# The hosts reach the other site through their gateway (no default route).
n3 ip route add 198.18.2.0/24 via 198.18.1.1
n3 ip -6 route add fd00:b::/64 via fd00:a::1
n4 ip route add 198.18.1.0/24 via 198.18.2.1
n4 ip -6 route add fd00:a::/64 via fd00:b::1

# Keys in files of their own, mode 0600; the example files point at them.
umask 077
"$VEILCTL" genkey >"$TMP/a.key"
"$VEILCTL" genkey >"$TMP/b.key"
puba=$("$VEILCTL" pubkey <"$TMP/a.key")
pubb=$("$VEILCTL" pubkey <"$TMP/b.key")
sed -e "s|/etc/veil/site-a.key|$TMP/a.key|" -e "s|SITE_B_PUBLIC_KEY|$pubb|" \
	"$ROOT/conf/site-a.conf" >"$TMP/$ifa.conf"
sed -e "s|/etc/veil/site-b.key|$TMP/b.key|" -e "s|SITE_A_PUBLIC_KEY|$puba|" \
	"$ROOT/conf/site-b.conf" >"$TMP/$ifb.conf"

# What each namespace looks like; down must bring it back to exactly this.
# Link-local addresses come when the kernel is done with them, and PostUp's
# forwarding adds router anycast routes: neither is ours to undo.
snapshot() {
	local ns=$1
	{
		ip -n "$ns" -o link show | awk '{print $2, $4, $5}'
		ip -n "$ns" -o addr show | awk '{print $2, $3, $4}'
		ip -n "$ns" -4 route show table all
		ip -n "$ns" -6 route show table all
		ip -n "$ns" -4 rule show
		ip -n "$ns" -6 rule show
	} | grep -v -E "^anycast |fe80::" | sort
}
for ns in "$NS1" "$NS2" "$NS3" "$NS4"; do
	snapshot "$ns" >"$TMP/before.$ns"
done

log "--- veilctl up on both gateways"
n1 "$VEILCTL" up "$TMP/$ifa.conf" || fail "veilctl up site A"
n2 "$VEILCTL" up "$TMP/$ifb.conf" || fail "veilctl up site B"
n1 ip -o addr show dev "$ifa" | qgrep "198.19.0.1/24" || fail "site A's tunnel address missing"
n1 ip -6 -o addr show dev "$ifa" | qgrep "fd00:ff::1/64" || fail "site A's IPv6 tunnel address missing"
n1 ip link show "$ifa" | qgrep "mtu 1420" || fail "site A's MTU is not 1420"
n1 ip route show 198.18.2.0/24 | qgrep "dev $ifa" || fail "no route to site B's LAN"
[ "$(n1 cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "PostUp did not run on site A"

log "--- host A reaches host B"
ping_ok "$NS3" 198.18.2.2 3 || fail "host A -> host B over IPv4"
ping_ok "$NS3" fd00:b::2 3 || fail "host A -> host B over IPv6"
ping_ok "$NS4" 198.18.1.2 2 || fail "host B -> host A over IPv4"
transfer "$NS3" "$NS4" 198.18.2.2 5
hs=$(wg show "$ifa" latest-handshakes | cut -f2)
[ "$hs" -gt 0 ] || fail "no handshake recorded by site A"
out=$(n1 "$VEILCTL" up "$TMP/$ifa.conf" 2>&1) && fail "a second up succeeded"
echo "$out" | qgrep "already up" || fail "a second up said: $out"

log "--- veilctl down leaves every namespace as it was"
n1 "$VEILCTL" down "$TMP/$ifa.conf" || fail "veilctl down site A"
n2 "$VEILCTL" down "$TMP/$ifb.conf" || fail "veilctl down site B"
for ns in "$NS1" "$NS2" "$NS3" "$NS4"; do
	snapshot "$ns" >"$TMP/after.$ns"
	diff -u "$TMP/before.$ns" "$TMP/after.$ns" || fail "$ns differs after down"
done
for f in "/var/run/veil/$ifa.state" "/var/run/veil/$ifb.state" \
	"/var/run/wireguard/$ifa.sock" "/var/run/wireguard/$ifb.sock"; do
	[ ! -e "$f" ] || fail "$f left after down"
done
for ns in "$NS1" "$NS2"; do
	for _ in $(seq 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
	[ -z "$(ip netns pids "$ns")" ] || fail "a process is left in $ns after down"
done
out=$(n1 "$VEILCTL" down "$TMP/$ifa.conf" 2>&1) && fail "a second down succeeded"
echo "$out" | qgrep "is not up" || fail "a second down said: $out"
log "veilctl site to site: all passed"
