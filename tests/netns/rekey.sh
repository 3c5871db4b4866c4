#!/usr/bin/env bash
# A real rekey against wireguard-go at normal timing: veild initiates the session, a
# continuous ping runs for 150 s, veild must start a new handshake after 120 s
# (REKEY_AFTER_TIME) and at most one ping may be lost. Afterwards, once the link is
# quiet, each side's tx counter equals the other's rx counter: both count whole
# WireGuard messages.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="ea$RUN" B="eb$RUN"
start_daemon "$NS1" veild "$A"
start_daemon "$NS2" wireguard-go "$B"
tunnel_pair -4 -n "$A" "$B" 51001 51002 198.18.0.1 198.18.0.2

SECONDS_RUN=${REKEY_SECONDS:-150}
log "pinging for $SECONDS_RUN s across the rekey"
n1 ping -i 0.25 -c $((SECONDS_RUN * 4)) -W 2 192.0.2.2 >"$TMP/ping.out" || true
tail -n 3 "$TMP/ping.out"
sent=$(awk '/packets transmitted/ { print $1 }' "$TMP/ping.out")
got=$(awk '/packets transmitted/ { print $4 }' "$TMP/ping.out")
[ -n "$sent" ] && [ -n "$got" ] || fail "no ping summary"
[ $((sent - got)) -le 1 ] || fail "lost $((sent - got)) of $sent pings across the rekey"
hs=$(grep -c "handshake complete (initiator)" "$TMP/$A.log" || true)
[ "$hs" -ge 2 ] || fail "veild completed $hs handshakes as initiator; expected a rekey"
log "rekey: $hs handshakes initiated by veild, $((sent - got)) of $sent pings lost"

# Counters: wait out the passive keepalive (10 s), then compare both directions.
sleep 12
read -r a_rx a_tx < <(wg show "$A" transfer | awk '{ print $2, $3 }')
read -r b_rx b_tx < <(wg show "$B" transfer | awk '{ print $2, $3 }')
log "veild rx=$a_rx tx=$a_tx, wireguard-go rx=$b_rx tx=$b_tx"
[ "$a_tx" = "$b_rx" ] || fail "veild sent $a_tx bytes, wireguard-go received $b_rx"
[ "$a_rx" = "$b_tx" ] || fail "wireguard-go sent $b_tx bytes, veild received $a_rx"
log "rekey: all passed"
