#!/usr/bin/env bash
# veil mesh when the registry fails. MESH_NODES nodes (8; 5 in the sanitizer build)
# on a three-member etcd cluster:
#  1. One member cut off (its link down): the agents move to another member and a
#     change (a node added by the administrator) still reaches every node.
#  2. Every member stopped: for 60 s every tunnel carries pings without a loss and no
#     peer is removed; a node restarted meanwhile (veilctl down, veilctl up: veild
#     and agent) is back with its peers from its local copy.
#  3. Two members back (a quorum): a change made now is applied everywhere.
#  4. Compaction: an agent frozen while changes are made and compacted away resumes
#     its watch from a revision that is gone, lists again and applies them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mesh-lib.sh"

case "$BUILD" in
*san*) N=${MESH_NODES:-5} ;;
*) N=${MESH_NODES:-8} ;;
esac
OUTAGE_S=${MESH_OUTAGE_S:-60}
command -v etcd >/dev/null || fail "etcd needed (tools/install-deps.sh test)"

# all_have COUNT [SECONDS]: every running node has COUNT peers.
all_have() {
	local i
	for i in $(seq "$N"); do mesh_wait_peers "$i" "$1" "${2:-30}"; done
}

# extra_node NAME ADDR: the administrator registers a node that exists nowhere but in
# the registry (a key, a prefix, an endpoint nobody answers): a change every agent sees.
extra_node() {
	local key
	key=$(wg genkey | wg pubkey)
	etcdctl_admin put "/veil/$MESH_NET/nodes/$1" \
		"{\"version\":1,\"node\":\"$1\",\"public_key\":\"$key\",\"endpoints\":[\"198.18.9.9:51820\"],\"prefixes\":[\"$2/32\"]}" \
		>/dev/null || fail "etcdctl put $1"
}

# member_of I: the etcd member node I's agent is connected to (its established connection).
member_of() {
	ip netns exec "$(mesh_ns "n$1")" ss -tnH state established '( dport = :2379 )' |
		awk '{ split($4, a, ":"); print a[1] }' | sed -n 's/^198\.18\.0\.//p' | head -n 1
}

etcd_start 3
etcd_auth_setup
for i in $(seq "$N"); do mesh_node_up "$i"; done
all_have $((N - 1)) 60
for i in $(seq 2 "$N"); do mesh_ping 1 "$i" || fail "node 1 does not reach node $i"; done
log "$N nodes up"

# ---- 1. one member cut off -------------------------------------------------------------
m=$(member_of 1)
[ -n "$m" ] || fail "node 1's agent has no connection to the registry"
log "cutting etcd$m off (node 1's agent is connected to it)"
etcd_cut_member "$m"
extra_node extra1 192.0.2.201
all_have "$N" 40
log "with etcd$m cut off, a node added by the administrator reached every node"
qgrep -E "registry https://198\.18\.0\.$m:2379: .*trying" <"$TMP/agent-n1.log" ||
	fail "node 1's agent did not say it moved away from etcd$m"
etcd_uncut_member "$m"
etcd_wait_healthy 1 2 3

# ---- 2. every member stopped ------------------------------------------------------------
for i in 1 2 3; do etcd_stop_member "$i"; done
log "every member stopped: $OUTAGE_S s of pings on every node's flow, and node 2 restarted meanwhile"
FLOWS=()
count=$((OUTAGE_S * 5))
for i in $(seq "$N"); do
	[ "$i" = 2 ] && continue
	j=$((i % N + 1))
	[ "$j" = 2 ] && j=3
	ip netns exec "$(mesh_ns "n$i")" ping -i 0.2 -c "$count" -W 1 "192.0.2.$j" >"$TMP/flow-$i.out" 2>&1 &
	FLOWS+=($!)
done
sleep 5
mesh_node_down 2
mesh_node_up 2
mesh_wait_peers 2 "$N" 20
for j in 1 3; do mesh_ping 2 "$j" 3 || fail "node 2, restarted during the outage, does not reach node $j"; done
qgrep "the local copy .* has" <"$TMP/agent-n2.log" || fail "node 2's agent did not start from its local copy"
log "node 2, restarted during the outage, is back with its $N peers from its local copy"
for pid in "${FLOWS[@]}"; do wait "$pid" || true; done
for i in $(seq "$N"); do
	[ "$i" = 2 ] && continue
	qgrep -E "$count packets transmitted, $count received" <"$TMP/flow-$i.out" ||
		fail "node $i lost pings during the outage: $(tail -n 2 "$TMP/flow-$i.out")"
done
all_have "$N" 1
for i in $(seq "$N"); do
	qgrep "event=mesh_removed" <"$TMP/agent-n$i.log" && fail "node $i removed a peer during the outage"
done
log "outage: $((N - 1)) flows of $count pings lost none; no peer removed"

# ---- 3. a quorum back ---------------------------------------------------------------------
etcd_start_member 1 2
extra_node extra2 192.0.2.202
all_have $((N + 1)) 60
log "two members back: a change made then reached every node"
etcd_start_member 3

# ---- 4. compaction -------------------------------------------------------------------------
m=$(member_of 3)
[ -n "$m" ] || fail "node 3's agent has no connection to the registry"
# Frozen, node 3's agent cannot follow: its member stops (the watch breaks before any
# event reaches it), the changes are made and compacted away, and only then does it
# run again, to resume from a revision that is gone.
kill -STOP "$(mesh_agent_pid 3)"
etcd_stop_member "$m"
extra_node extra3 192.0.2.203
etcdctl_admin del "/veil/$MESH_NET/nodes/extra1" >/dev/null
rev=$(etcd_compact)
etcd_start_member "$m"
kill -CONT "$(mesh_agent_pid 3)"
for _ in $(seq 300); do
	ips=$(wg show "$(mesh_ifname 3)" allowed-ips)
	qgrep "192.0.2.203/32" <<<"$ips" && ! qgrep "192.0.2.201/32" <<<"$ips" && break
	sleep 0.1
done
qgrep "192.0.2.203/32" <<<"$ips" || fail "node 3 did not get extra3"
qgrep "192.0.2.201/32" <<<"$ips" && fail "node 3 still has extra1"
qgrep "was compacted away" <"$TMP/agent-n3.log" || fail "node 3's agent did not list again after the compaction"
log "compaction to revision $rev: node 3's agent listed again and applied both changes"
log "mesh-faults: all passed ($N nodes, $OUTAGE_S s outage)"
