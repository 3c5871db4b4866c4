#!/usr/bin/env bash
# veil mesh, the fleet from cold: a three-member etcd cluster with TLS, client
# certificates and RBAC (all made here), and MESH_NODES nodes (20; 8 in the
# sanitizer build), each a namespace with its own etcd user, brought up with
# `veilctl up` from a file whose [Mesh] section names the registry and nothing of
# the other nodes. Every pair must ping, and the time to converge is printed;
# `veilctl mesh list` shows every node with a session. Then, while pings run
# between other pairs, a node joins and the administrator removes another
# (`veilctl mesh remove`): no other pair loses a ping, the new node reaches
# everyone, the removed one is gone from every node's peers, and every agent says
# both in an audit line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mesh-lib.sh"

case "$BUILD" in
*san*) N=${MESH_NODES:-8} ;;
*) N=${MESH_NODES:-20} ;;
esac
[ "$N" -ge 4 ] || fail "MESH_NODES must be 4 or more"
command -v etcd >/dev/null || fail "etcd needed (tools/install-deps.sh test)"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# every_pair_pings FROM..TO: each node pings each other (one source at a time in
# parallel); a pair that fails is tried once more before it counts.
every_pair_pings() {
	local first=$1 last=$2 i j bad=() pids=()
	for i in $(seq "$first" "$last"); do
		(
			for j in $(seq "$first" "$last"); do
				[ "$i" = "$j" ] && continue
				mesh_ping "$i" "$j" || mesh_ping "$i" "$j" || echo "$i->$j"
			done
		) >"$TMP/pairs-$i.out" &
		pids+=($!)
	done
	for j in "${pids[@]}"; do wait "$j"; done
	for i in $(seq "$first" "$last"); do
		while read -r j; do bad+=("$j"); done <"$TMP/pairs-$i.out"
	done
	[ ${#bad[@]} -eq 0 ] || fail "pairs that do not ping: ${bad[*]}"
}

etcd_start 3
etcd_auth_setup
# Provisioning, as an operator does it before a node exists: a user, a role, a
# certificate and a file per node. Not part of the time to converge.
for i in $(seq $((N + 1))); do
	mesh_host "n$i" "198.18.1.$i" "2001:db8::1:$i"
	mesh_add_node "$MESH_NET" "site$i"
	mesh_node_conf "$i"
done
log "provisioned $((N + 1)) nodes"

# ---- cold start ------------------------------------------------------------------
t0=$(now_ms)
for i in $(seq "$N"); do mesh_node_up "$i"; done
t1=$(now_ms)
for i in $(seq "$N"); do mesh_wait_peers "$i" $((N - 1)) 60; done
t2=$(now_ms)
every_pair_pings 1 "$N"
t3=$(now_ms)
log "cold start: $N nodes up in $((t1 - t0)) ms; every node has its $((N - 1)) peers after $((t2 - t0)) ms; every pair pinged after $((t3 - t0)) ms"

# Node 1 has pinged everyone: a session with each, every record accepted.
list=$(mesh_veilctl 1 mesh list "$MESH_NET" --json)
[ "$(jq '.[0].nodes | length' <<<"$list")" = "$N" ] || fail "mesh list: not $N nodes: $list"
[ "$(jq '[.[0].nodes[] | select(.state == "accepted" and .session == true)] | length' <<<"$list")" = $((N - 1)) ] ||
	fail "mesh list: not $((N - 1)) accepted nodes with a session: $list"
[ "$(jq -r '.[0].nodes[] | select(.state == "self") | .node' <<<"$list")" = site1 ] ||
	fail "mesh list: node 1 is not itself"
jq -e '.[0].registry_reached' <<<"$list" >/dev/null || fail "mesh list: the registry is not reached"
mesh_veilctl 1 mesh list "$MESH_NET" | head -n 4

# ---- a node joins and another leaves, while the others carry traffic ---------------
gone=$N new=$((N + 1))
FLOWS=()
gone_key=$(wg pubkey <"$MESH_DIR/keys/n$gone.key")
# Three flows among nodes 1-3 (neither the one leaving nor the one joining), 10 pings/s.
for p in 1 2 3; do
	ip netns exec "$(mesh_ns "n$p")" ping -i 0.1 -c 80 -W 1 "192.0.2.$((p % 3 + 1))" >"$TMP/flow-$p.out" 2>&1 &
	FLOWS+=($!)
done
sleep 1
mesh_node_up "$new"
mesh_sw env VEIL_MESH_DIR="$MESH_DIR/admin" "$MESH_VEILCTL" mesh remove --admin "$(mesh_admin_conf)" \
	"$MESH_NET" "site$gone" || fail "veilctl mesh remove"
for i in $(seq $((N - 1))) "$new"; do mesh_wait_peers "$i" $((N - 1)) 30; done
for i in $(seq $((N - 1))) "$new"; do
	wg show "$(mesh_ifname "$i")" peers | qgrep -Fx "$gone_key" && fail "node $i still has the removed node's key"
done
for j in $(seq $((N - 1))); do
	mesh_ping "$new" "$j" || mesh_ping "$new" "$j" || fail "the new node does not reach node $j"
	mesh_ping "$j" "$new" || mesh_ping "$j" "$new" || fail "node $j does not reach the new node"
done
for pid in "${FLOWS[@]}"; do wait "$pid" || true; done
for p in 1 2 3; do
	qgrep -E "80 packets transmitted, 80 received" <"$TMP/flow-$p.out" ||
		fail "node $p -> $((p % 3 + 1)) lost pings while a node joined and another left: $(tail -n 2 "$TMP/flow-$p.out")"
done
for i in $(seq $((N - 1))); do
	qgrep "event=mesh_joined .* node=site$new " <"$TMP/agent-n$i.log" || fail "node $i: no audit line for site$new joining"
	qgrep "event=mesh_removed .* node=site$gone " <"$TMP/agent-n$i.log" || fail "node $i: no audit line for site$gone leaving"
done
log "join and leave under traffic: no ping lost on 3 flows; site$new reaches all; site$gone gone from $N nodes"

# The removed node's agent saw its own record go and does not publish it again.
qgrep "removed" <"$TMP/agent-n$gone.log" || fail "node $gone's agent did not notice its removal"
sleep 1
etcdctl_admin get "/veil/$MESH_NET/nodes/site$gone" | qgrep . && fail "site$gone's record came back"
mesh_node_down "$gone"

# ---- what the agent mends, and a node leaving its mesh by reload ---------------------
# A route deleted by hand comes back within the agent's resync (10 s).
ip -n "$(mesh_ns n1)" route del 192.0.2.2/32 dev "$(mesh_ifname 1)" || fail "no route to node 2 on node 1"
for _ in $(seq 150); do
	ip -n "$(mesh_ns n1)" route show 192.0.2.2/32 | qgrep "dev $(mesh_ifname 1)" && break
	sleep 0.1
done
ip -n "$(mesh_ns n1)" route show 192.0.2.2/32 | qgrep "dev $(mesh_ifname 1)" ||
	fail "node 1's agent did not put back the route deleted by hand"
# A file without [Mesh] any more: reload takes the agent, its peers, routes and copy away.
sed -i '/^\[Mesh\]/,$d' "$(mesh_conf 1)"
mesh_veilctl 1 reload "$(mesh_conf 1)" >>"$TMP/up-n1.out" 2>&1 || fail "veilctl reload n1 without [Mesh]"
[ "$(mesh_peers 1)" = 0 ] || fail "node 1 still has $(mesh_peers 1) peers after leaving its mesh"
[ -z "$(ip -n "$(mesh_ns n1)" route show dev "$(mesh_ifname 1)" | grep -v -e "192.0.2.1 " -e "fd00::1 ")" ] ||
	fail "node 1 kept the mesh's routes: $(ip -n "$(mesh_ns n1)" route show dev "$(mesh_ifname 1)")"
[ ! -e "$MESH_DIR/state/n1/$(mesh_ifname 1).json" ] || fail "node 1's local copy is still there"
[ -z "$(mesh_agent_pid 1)" ] || fail "node 1's agent still runs"
log "a route deleted by hand was put back; a reload without [Mesh] took peers, routes and copy away"
log "mesh: all passed ($N nodes)"
