#!/usr/bin/env bash
# Every wg subcommand against veild: set with every option, show (all, dump, fields),
# showconf fed to setconf on a fresh daemon reproduces the configuration, addconf adds,
# syncconf removes what the file lacks and keeps an unchanged peer's session.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="ta$RUN" B="tb$RUN" F="tf$RUN"
start_daemon "$NS1" veild "$A"
start_daemon "$NS2" veild "$B"
P1=$(cat "$TMP/p1") P2=$(cat "$TMP/p2")
P3=$(wg genkey | wg pubkey) P4=$(wg genkey | wg pubkey)

log "--- wg set with every option"
run wg set "$A" listen-port 0 fwmark 0x10 private-key "$TMP/k1" \
	peer "$P2" preshared-key "$TMP/psk" endpoint 198.18.0.2:51002 allowed-ips 192.0.2.2/32,fd00::2 \
	persistent-keepalive 25 \
	peer "$P3" endpoint "[2001:db8::3]:5555" allowed-ips 192.0.2.128/25
port=$(wg show "$A" listen-port)
[ "$port" -gt 0 ] || fail "listen-port 0 did not report the chosen port"
[ "$(wg show "$A" fwmark)" = "0x10" ] || fail "fwmark: $(wg show "$A" fwmark)"
[ "$(wg show "$A" public-key)" = "$P1" ] || fail "public key"
wg show "$A" persistent-keepalive | qgrep "$P2	25" || fail "persistent keepalive"
wg show "$A" endpoints | qgrep "$P3	\[2001:db8::3\]:5555" || fail "IPv6 endpoint"
wg show "$A" allowed-ips | grep "$P2" | qgrep "fd00::2/128" || fail "bare address became /128"
wg show "$A" preshared-keys | grep "$P2" | qgrep -v "(none)" || fail "psk"
run wg set "$A" fwmark off peer "$P2" persistent-keepalive off
[ "$(wg show "$A" fwmark)" = "off" ] || fail "fwmark off"
wg show "$A" persistent-keepalive | qgrep "$P2	off" || fail "persistent keepalive off"
run wg set "$A" peer "$P3" remove
wg show "$A" peers | qgrep "$P3" && fail "peer not removed"
wg set "$A" peer "$P3" allowed-ips 300.1.2.3/33 2>/dev/null && fail "bad allowed-ips accepted"

log "--- show all, dump"
run wg set "$A" listen-port 51001
run wg set "$B" private-key "$TMP/k2" listen-port 51002 peer "$P1" preshared-key "$TMP/psk" \
	allowed-ips 192.0.2.1/32 endpoint 198.18.0.1:51001
n1 ip addr add 192.0.2.1/24 dev "$A"
n1 ip link set "$A" up
n2 ip addr add 192.0.2.2/24 dev "$B"
n2 ip link set "$B" up
ping_ok "$NS1" 192.0.2.2 || fail "ping"
wg show all | qgrep "interface: $A" || fail "show all lacks $A"
wg show all dump | awk -v a="$A" '$1 == a' | qgrep "$P2" || fail "show all dump lacks A's peer"
[ "$(wg show "$A" dump | head -n 1 | cut -f3)" = 51001 ] || fail "dump listen port"

log "--- showconf into setconf on a fresh daemon reproduces the configuration"
wg showconf "$A" >"$TMP/a.conf"
start_daemon "$NS2" veild "$F"
run wg setconf "$F" "$TMP/a.conf"
norm() { sed -E '/^ListenPort/d;/^AllowedIPs/{s/AllowedIPs = //;s/, /\n/g}' | sort; }
diff -u <(norm <"$TMP/a.conf") <(wg showconf "$F" | norm) || fail "fresh daemon differs"
n2 ip link del "$F"

log "--- addconf adds a peer; syncconf removes it again and keeps the live session"
hs_before=$(wg show "$A" latest-handshakes | awk -v k="$P2" '$1 == k { print $2 }')
printf '[Peer]\nPublicKey = %s\nAllowedIPs = 192.0.2.200/32\n' "$P4" >"$TMP/add.conf"
run wg addconf "$A" "$TMP/add.conf"
wg show "$A" peers | qgrep "$P4" || fail "addconf did not add"
wg show "$A" peers | qgrep "$P2" || fail "addconf removed an existing peer"
run wg syncconf "$A" "$TMP/a.conf"
wg show "$A" peers | qgrep "$P4" && fail "syncconf did not remove the extra peer"
ping_ok "$NS1" 192.0.2.2 || fail "ping after syncconf"
hs_after=$(wg show "$A" latest-handshakes | awk -v k="$P2" '$1 == k { print $2 }')
[ "$hs_before" = "$hs_after" ] || fail "syncconf caused a new handshake ($hs_before -> $hs_after)"
log "wgtool: all passed"
