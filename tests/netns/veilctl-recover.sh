#!/usr/bin/env bash
# down and up after something went wrong. `veilctl down` works from the
# state file alone when the configuration no longer parses, and when it is
# gone: the link, its route, the daemon, its socket, the state file and the
# mesh agent the state names all go (a stand-in agent: a process named
# veil-meshd, which is what down checks before it signals a pid). After `ip
# link del` stops veild behind veilctl's back, `up` finds the stale state
# file, says so, clears it and comes up. When down finds a daemon that up
# did not start (veild started by hand), it takes the link down, says it
# left the daemon running, and does.
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
ifa="oa$RUN"
ifc="oc$RUN"
STATE="/var/run/veil/$ifa.state"
STATE_FILES+=("$STATE" "/var/run/veil/$ifc.state")
setup_hosts
umask 077
"$VEILCTL" genkey >"$TMP/a.key"
"$VEILCTL" genkey >"$TMP/b.key"
pub_b=$("$VEILCTL" pubkey <"$TMP/b.key")

good_conf() { # IFNAME
	cat >"$TMP/$1.conf" <<EOF2
[Interface]
PrivateKeyFile = $TMP/a.key
Address = 198.19.11.1/24

[Peer]
PublicKey = $pub_b
AllowedIPs = 198.19.12.0/24
EOF2
}
# gone WHAT: nothing of A is left.
gone() {
	n1 ip link show "$ifa" >/dev/null 2>&1 && fail "$1: the link is still there"
	[ ! -e "$STATE" ] || fail "$1: the state file is still there"
	[ ! -e "/var/run/wireguard/$ifa.sock" ] || fail "$1: the socket is still there"
	n1 ip route show 198.19.12.0/24 | qgrep . && fail "$1: the route is still there"
	return 0
}
# agent: a stand-in mesh agent in NS1, its pid written into A's state as up would.
agent() {
	cp /bin/sleep "$TMP/veil-meshd"
	ip netns exec "$NS1" "$TMP/veil-meshd" 300 &
	AGENT=$!
	PIDS+=("$AGENT")
	for _ in $(seq 50); do [ "$(cat "/proc/$AGENT/comm" 2>/dev/null)" = veil-meshd ] && break; sleep 0.1; done
	[ "$(cat "/proc/$AGENT/comm" 2>/dev/null)" = veil-meshd ] || fail "the stand-in agent did not start"
	echo "mesh_agent $AGENT" >>"$STATE"
}

log "--- down when the file no longer parses"
good_conf "$ifa"
n1 "$VEILCTL" up "$TMP/$ifa.conf" || fail "veilctl up"
agent
printf '[Interface]\nColor = blue\n' >"$TMP/$ifa.conf"
out=$(n1 "$VEILCTL" down "$TMP/$ifa.conf" 2>&1) || fail "down with a broken file failed: $out"
qgrep -F "$TMP/$ifa.conf:2: Color: unknown key; $ifa goes down from $STATE alone" <<<"$out" ||
	fail "down did not say why it went from the state alone: $out"
qgrep -x "veilctl: $ifa is down" <<<"$out" || fail "down did not say it is down: $out"
for _ in $(seq 50); do has_exited "$AGENT" && break; sleep 0.1; done
has_exited "$AGENT" || fail "the mesh agent the state names still runs"
gone "a broken file"
log "down with a broken file: $(tr '\n' ' ' <<<"$out")"

log "--- down when the file is gone"
good_conf "$ifa"
n1 "$VEILCTL" up "$TMP/$ifa.conf" || fail "veilctl up again"
rm "$TMP/$ifa.conf"
out=$(n1 "$VEILCTL" down "$TMP/$ifa.conf" 2>&1) || fail "down with the file gone failed: $out"
qgrep -F "No such file or directory; $ifa goes down from $STATE alone" <<<"$out" || fail "down said: $out"
gone "the file gone"
out=$(n1 "$VEILCTL" down "$TMP/$ifa.conf" 2>&1) && fail "a second down succeeded: $out"
qgrep "is not up" <<<"$out" || fail "a second down said: $out"

log "--- up after ip link del: the stale state is cleared"
good_conf "$ifa"
n1 "$VEILCTL" up "$TMP/$ifa.conf" || fail "veilctl up for ip link del"
n1 ip link del "$ifa"
for _ in $(seq 50); do "$VEILCTL" show "$ifa" >/dev/null 2>&1 || break; sleep 0.1; done
[ -e "$STATE" ] || fail "the state file went with the link (nothing to test)"
out=$(n1 "$VEILCTL" up "$TMP/$ifa.conf" 2>&1) || fail "up after ip link del failed: $out"
qgrep -F "$STATE is left from an earlier up whose daemon is gone" <<<"$out" || fail "up said: $out"
qgrep -x "veilctl: $ifa is up (1 peer)" <<<"$out" || fail "up did not come up (or says \"1 peers\"): $out"
n1 ip -o addr show dev "$ifa" | qgrep 198.19.11.1/24 || fail "the address is missing after the fresh up"
n1 ip route show 198.19.12.0/24 | qgrep "dev $ifa" || fail "the route is missing after the fresh up"
n1 "$VEILCTL" down "$TMP/$ifa.conf" || fail "down after the fresh up"
gone "after the fresh up"

log "--- down leaves running a daemon that up did not start"
start_daemon "$NS1" veild "$ifc"
own=${PIDS[-1]}
good_conf "$ifc"
n1 "$VEILCTL" up "$TMP/$ifc.conf" || fail "up on a running daemon"
out=$(n1 "$VEILCTL" down "$TMP/$ifc.conf" 2>&1) || fail "down on a daemon up did not start: $out"
qgrep -F "its daemon, which veilctl up did not start, is left running" <<<"$out" || fail "down said: $out"
kill -0 "$own" 2>/dev/null || fail "down stopped the daemon it did not start"
n1 ip -o link show "$ifc" | qgrep -v "<[^>]*,UP[,>]" || fail "the link is still up"
stop_daemons "$own"
log "veilctl recover: all passed"
