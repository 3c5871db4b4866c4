#!/usr/bin/env bash
# Endpoint host names are looked up again when handshakes keep failing.
# NS1 names its peer peer-b.veil.test in its own /etc/hosts (ip netns exec
# mounts /etc/netns/NS1/hosts there). At `veilctl up` the name points at
# 198.18.0.9, where nobody listens; then the name moves to the peer's real
# address 198.18.0.2. Without re-resolution NS1 would knock at .9 forever;
# with it, veild's resolver child finds .2 after two unanswered initiations
# and the tunnel comes up. The child holds no capability and no socket but
# its own. Against wireguard-go, which does not take the name, veilctl up
# warns and still succeeds.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
A="ra$RUN"
B="rb$RUN"
G="rg$RUN"
HOSTS="/etc/netns/$NS1/hosts"

setup_hosts
genkeys
mkdir -p "/etc/netns/$NS1"
printf '198.18.0.9 peer-b.veil.test\n' >"$HOSTS"
chmod 644 "$HOSTS" # as /etc/hosts is: the resolver child runs as nobody

start_daemon "$NS2" veild "$B"
wg_up "$NS2" "$B" "$TMP/k2" 51820 192.0.2.2/24
run wg set "$B" peer "$(cat "$TMP/p1")" allowed-ips 192.0.2.1/32

cat >"$TMP/$A.conf" <<CONF
[Interface]
PrivateKeyFile = $TMP/k1
Address = 192.0.2.1/24

[Peer]
PublicKey = $(cat "$TMP/p2")
Endpoint = peer-b.veil.test:51820
AllowedIPs = 192.0.2.2/32
CONF
STATE_FILES+=("/var/run/veil/$A.state")
# Our own foreground veild, so its log is ours to read; veilctl up finds it running.
start_daemon "$NS1" veild "$A"
n1 "$VEILCTL" up "$TMP/$A.conf" || fail "veilctl up"
[ "$(wg show "$A" endpoints | cut -f2)" = "198.18.0.9:51820" ] ||
	fail "up did not resolve the name: $(wg show "$A" endpoints)"
qgrep "event=endpoint_name_set iface=$A .*name=peer-b.veil.test:51820" <"$TMP/$A.log" ||
	fail "veild did not take the endpoint's name"
# veilctl reads the name back (veil_get=1): show, --json and showconf.
n1 "$VEILCTL" show "$A" | qgrep -F "endpoint name: peer-b.veil.test:51820" || fail "show lacks the endpoint name"
[ "$(n1 "$VEILCTL" show "$A" --json | jq -r '.peers[0].endpoint_name')" = peer-b.veil.test:51820 ] ||
	fail "show --json lacks the endpoint name"
n1 "$VEILCTL" showconf "$A" | qgrep -x "Endpoint = peer-b.veil.test:51820" || fail "showconf lost the name"

log "--- the resolver child: no capability, no socket but its own"
vpid=${PIDS[-1]}
child=$(ps -o pid= --ppid "$vpid" | tr -d ' ')
[ -n "$child" ] || fail "veild has no resolver child"
[ "$(awk '/^CapEff/ {print $2}' "/proc/$child/status")" = 0000000000000000 ] ||
	fail "the resolver keeps capabilities: $(grep Cap "/proc/$child/status")"
nfd=$(ls "/proc/$child/fd" | wc -l)
[ "$nfd" -le 4 ] || fail "the resolver holds $nfd descriptors: $(ls -l "/proc/$child/fd")"
[ "$(awk '/^NoNewPrivs/ {print $2}' "/proc/$child/status")" = 1 ] || fail "resolver without no_new_privs"

log "--- the name moves to the peer's real address; handshakes to .9 fail until veild looks again"
printf '198.18.0.2 peer-b.veil.test\n' >"$HOSTS" # in place: the mount shows this inode
start=$(date +%s)
ok=
for _ in $(seq 45); do
	if n1 ping -q -c 1 -W 1 192.0.2.2 >/dev/null 2>&1; then ok=1; break; fi
done
[ -n "$ok" ] || fail "no tunnel after 45 s: endpoint $(wg show "$A" endpoints | cut -f2)"
log "tunnel up $(($(date +%s) - start)) s after the name moved"
[ "$(wg show "$A" endpoints | cut -f2)" = "198.18.0.2:51820" ] || fail "endpoint not 198.18.0.2"
qgrep "peer-b.veil.test:51820 now resolves to 198.18.0.2:51820 (was 198.18.0.9:51820)" <"$TMP/$A.log" ||
	fail "no log line for the new address"
qgrep "event=endpoint_resolved iface=$A .* name=peer-b.veil.test:51820 endpoint=198.18.0.2:51820 was=198.18.0.9:51820" \
	<"$TMP/$A.log" || fail "no audit line for the new address"

log "--- reload with the same file keeps the session (the name is sent again, unchanged)"
hs=$(wg show "$A" latest-handshakes | cut -f2)
n1 "$VEILCTL" reload "$TMP/$A.conf" || fail "reload"
[ "$(wg show "$A" latest-handshakes | cut -f2)" = "$hs" ] || fail "reload made a new handshake"
[ "$(grep -c "event=endpoint_name_set iface=$A " "$TMP/$A.log")" = 1 ] ||
	fail "reload set the unchanged name again"
n1 "$VEILCTL" down "$TMP/$A.conf" || fail "down"

log "--- wireguard-go does not take names: a warning, and up still succeeds"
start_daemon "$NS1" wireguard-go "$G"
sed "s/^Address = .*/Address = 192.0.2.11\/24/" "$TMP/$A.conf" >"$TMP/$G.conf"
STATE_FILES+=("/var/run/veil/$G.state")
n1 "$VEILCTL" up "$TMP/$G.conf" 2>"$TMP/g.err" || fail "up against wireguard-go: $(cat "$TMP/g.err")"
qgrep "warning: the daemon does not take endpoint host names" <"$TMP/g.err" ||
	fail "no warning: $(cat "$TMP/g.err")"
n1 "$VEILCTL" down "$TMP/$G.conf" || fail "down (wireguard-go)"
log "resolve: all passed"
