#!/usr/bin/env bash
# make demo-mesh: a three-member etcd cluster with TLS, client certificates and RBAC,
# and five veil nodes in network namespaces that find one another through it. A
# ping matrix, then a sixth node joins and the administrator removes the fifth, with
# each node's view shown as it happens. Everything is removed afterwards. Needs root.
[ "$(id -u)" = 0 ] || { echo "make demo-mesh: run as root (it creates network namespaces)" >&2; exit 1; }
"$(dirname "$0")/install-deps.sh" test
. "$(dirname "$0")/../tests/netns/lib.sh"
. "$(dirname "$0")/../tests/netns/mesh-lib.sh"

N=5
# matrix NODE...: one ping from each node to each other, as a table.
matrix() {
	local i j row
	printf '      '
	for j in "$@"; do printf ' site%-2s' "$j"; done
	echo
	for i in "$@"; do
		row=$(printf 'site%-2s' "$i")
		for j in "$@"; do
			if [ "$i" = "$j" ]; then
				row+='   -   '
			elif mesh_ping "$i" "$j" 2>/dev/null || mesh_ping "$i" "$j" 2>/dev/null; then
				row+='   ok  '
			else
				row+='   --  '
			fi
		done
		echo "$row"
	done
}

log "a three-member etcd cluster (TLS, client certificates, one etcd user per node)"
etcd_start 3
etcd_auth_setup
log "five nodes, each brought up with veilctl up from its own file; this is node 1's:"
mesh_add_node "$MESH_NET" site1
mesh_node_conf 1
sed 's/^/    /' "$(mesh_conf 1)"
for i in $(seq "$N"); do mesh_node_up "$i"; done
for i in $(seq "$N"); do mesh_wait_peers "$i" $((N - 1)) 60; done
log "every node found its $((N - 1)) peers through the registry; a ping matrix:"
matrix $(seq "$N")
sleep 1.5 # the agent saves its view of the others' liveness within a second
echo
run mesh_veilctl 1 mesh list "$MESH_NET"
echo
log "site6 joins (veilctl up), and the administrator removes site5 (veilctl mesh remove)"
mesh_node_up 6
mesh_sw "$MESH_VEILCTL" mesh remove --admin "$(mesh_admin_conf)" "$MESH_NET" site5
for i in 1 2 3 4 6; do mesh_wait_peers "$i" $((N - 1)) 30; done
log "what node 1's agent wrote in its audit trail:"
grep -h "AUDIT" "$TMP/agent-n1.log" | sed 's/^/    /'
echo
matrix 1 2 3 4 6
sleep 1.5
echo
run mesh_veilctl 1 mesh list "$MESH_NET"
mesh_node_down 5
log "demo-mesh: done; everything is removed now"
