#!/usr/bin/env bash
# Three clouds in a mesh from conf/mesh-{a,b,c}.conf, brought up with veilctl
# only: every cloud reaches every other over IPv4 and IPv6. Then cloud A's
# file changes (a peer added, cloud C's allowed IPs widened) and `veilctl
# reload` applies it while a ping from A to B runs: B's session is untouched
# (same latest handshake, not one ping lost), C's new prefix is routed, the
# new peer is there. Reloading the first file takes all of that back.
# A fourth namespace holds the bridge that is the clouds' shared underlay.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
NS4="veil-$RUN-d"
EXTRA_NS+=("$NS4")
names=(a b c)
nss=("$NS1" "$NS2" "$NS3")
ifs=("ma$RUN" "mb$RUN" "mc$RUN")
for i in 0 1 2; do
	STATE_FILES+=("/var/run/veil/${ifs[$i]}.state")
done

for ns in "${nss[@]}" "$NS4"; do
	run ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$NS4" link add "br$RUN" type bridge
ip -n "$NS4" link set "br$RUN" up
for i in 0 1 2; do
	run ip link add "u$i$RUN" netns "${nss[$i]}" type veth peer name "s$i$RUN" netns "$NS4"
	ip -n "$NS4" link set "s$i$RUN" master "br$RUN"
	ip -n "$NS4" link set "s$i$RUN" up
	ip -n "${nss[$i]}" addr add "198.18.0.$((i + 1))/24" dev "u$i$RUN"
	ip -n "${nss[$i]}" link set "u$i$RUN" up
done

umask 077
for i in 0 1 2; do
	"$VEILCTL" genkey >"$TMP/${names[$i]}.key"
	pub[$i]=$("$VEILCTL" pubkey <"$TMP/${names[$i]}.key")
done
# conf_for I SRC: cloud I's example file with its key file and the others' public keys.
conf_for() {
	sed -e "s|/etc/veil/mesh-${names[$1]}.key|$TMP/${names[$1]}.key|" \
		-e "s|CLOUD_A_PUBLIC_KEY|${pub[0]}|" -e "s|CLOUD_B_PUBLIC_KEY|${pub[1]}|" \
		-e "s|CLOUD_C_PUBLIC_KEY|${pub[2]}|" "$2"
}
for i in 0 1 2; do
	conf_for "$i" "$ROOT/conf/mesh-${names[$i]}.conf" >"$TMP/${ifs[$i]}.conf"
	ip netns exec "${nss[$i]}" "$VEILCTL" up "$TMP/${ifs[$i]}.conf" || fail "veilctl up cloud ${names[$i]}"
done

log "--- every cloud reaches every other"
for i in 0 1 2; do
	for j in 0 1 2; do
		[ "$i" = "$j" ] && continue
		ping_ok "${nss[$i]}" "198.19.1.$((j + 1))" 2 || fail "cloud ${names[$i]} -> ${names[$j]} (IPv4)"
		ping_ok "${nss[$i]}" "fd00:1::$((j + 1))" 2 || fail "cloud ${names[$i]} -> ${names[$j]} (IPv6)"
	done
done

log "--- reload: a peer added, C's allowed IPs widened; B's session untouched"
ifa=${ifs[0]}
hs_b=$(wg show "$ifa" latest-handshakes | grep "${pub[1]}" | cut -f2)
[ "$hs_b" -gt 0 ] || fail "no handshake between A and B yet"
"$VEILCTL" genkey >"$TMP/d.key"
pubd=$("$VEILCTL" pubkey <"$TMP/d.key")
mkdir -p "$TMP/orig"
cp "$TMP/$ifa.conf" "$TMP/orig/$ifa.conf" # the file name is the interface name
sed -i "s|^AllowedIPs = 198.19.1.3/32, fd00:1::3/128|AllowedIPs = 198.19.1.3/32, fd00:1::3/128, 198.19.3.0/24|" \
	"$TMP/$ifa.conf"
printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 198.19.1.4/32\n' "$pubd" >>"$TMP/$ifa.conf"
# Wait out the second the handshake was stamped in, so a new one would show.
sleep 1.1
n1 ping -q -c 60 -i 0.05 -W 1 198.19.1.2 >"$TMP/ping.out" 2>&1 &
ppid=$!
PIDS+=("$ppid")
sleep 0.5
n1 "$VEILCTL" reload "$TMP/$ifa.conf" || fail "veilctl reload"
wait "$ppid" || fail "ping from A to B across the reload: $(tail -n 2 "$TMP/ping.out")"
grep -q " 0% packet loss" "$TMP/ping.out" || fail "pings lost across the reload: $(grep loss "$TMP/ping.out")"
[ "$(wg show "$ifa" latest-handshakes | grep "${pub[1]}" | cut -f2)" = "$hs_b" ] ||
	fail "B's session was renewed by the reload"
wg show "$ifa" allowed-ips | grep "${pub[2]}" | qgrep "198.19.3.0/24" || fail "C's new prefix not set"
n1 ip route show 198.19.3.0/24 | qgrep "dev $ifa" || fail "C's new prefix not routed"
wg show "$ifa" peers | qgrep "$pubd" || fail "the added peer is missing"
n1 ip route show 198.19.1.4 | qgrep "dev $ifa" || fail "the added peer's prefix not routed"
ping_ok "$NS1" 198.19.1.3 2 || fail "A -> C after the reload"
log "reload kept B's session (handshake $hs_b, 0% loss)"

log "--- reload of the first file takes it all back"
n1 "$VEILCTL" reload "$TMP/orig/$ifa.conf" || fail "veilctl reload back"
wg show "$ifa" peers | qgrep "$pubd" && fail "the added peer is still there"
[ -z "$(n1 ip route show 198.19.3.0/24)" ] || fail "C's removed prefix is still routed"
[ -z "$(n1 ip route show 198.19.1.4)" ] || fail "the removed peer's prefix is still routed"
ping_ok "$NS1" 198.19.1.2 2 || fail "A -> B after reloading back"

log "--- a reload with a broken file changes nothing"
sed 's/^ListenPort = 51820/ListenPort = 518200/' "$TMP/orig/$ifa.conf" >"$TMP/bad.conf"
cp "$TMP/bad.conf" "$TMP/$ifa.conf"
wg showconf "$ifa" >"$TMP/conf.before"
out=$(n1 "$VEILCTL" reload "$TMP/$ifa.conf" 2>&1) && fail "reload of a broken file succeeded"
echo "$out" | qgrep "$ifa.conf:7: ListenPort" || fail "broken reload said: $out"
wg showconf "$ifa" >"$TMP/conf.after"
diff -u "$TMP/conf.before" "$TMP/conf.after" || fail "a broken reload changed the configuration"
cp "$TMP/orig/$ifa.conf" "$TMP/$ifa.conf"

for i in 0 1 2; do
	ip netns exec "${nss[$i]}" "$VEILCTL" down "$TMP/${ifs[$i]}.conf" || fail "veilctl down cloud ${names[$i]}"
done
log "veilctl mesh: all passed"
