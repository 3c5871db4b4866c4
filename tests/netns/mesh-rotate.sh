#!/usr/bin/env bash
# veil mesh: static-key rotation, revocation and RotateEvery (issue 14). A
# three-member etcd cluster with TLS, client certificates and RBAC, and
# MESH_NODES nodes in network corp (20; 8 in the sanitizer build):
#  1. `veilctl mesh rotate` of one node while every pair with it pings at 20/s
#     both ways: at most 2 pings lost on any pair (each pair's loss printed),
#     the key file rewritten 0600, every other agent on the new key.
#  2. Three nodes rotated at once, each by its own veilctl: the same bound.
#  3. A node rotated while a peer is stopped: the peer, back, reaches it; the
#     rotated node, restarted, comes back on the key its agent wrote.
#  4. A node rotated while the etcd leader is killed (SIGKILL) just after the
#     announcement: the rotation completes, every peer reaches the node, and no
#     pair loses more than 2 pings at 20/s.
#  5. The old keys are refused everywhere: a veild of our own, in a namespace
#     of its own, holding a node's old private key and every node as a peer,
#     completes no handshake with any node.
#  6. `veilctl mesh revoke NETWORK PUBLIC_KEY` (a leaked key): the peer leaves
#     every node, the record is refused, and the node, rotated, is back.
#     `veilctl mesh revoke NETWORK NODE`: the peer is gone on every node within 1 s
#     (measured from the command's start to the last agent's audit line); a
#     record written again with the revoked name or key is refused by every
#     agent with its line; the revoked node, its own veild still holding its
#     key and peers, reaches nobody, nor does a fresh veild with its key; its
#     etcd user is gone. Back with a user and a new key it is still refused,
#     until `veilctl mesh admit`; then every node reaches it.
#  7. `veilctl mesh history` shows a rotated node's keys, and the revocation.
#  8. RotateEvery = 40s on three nodes of a network of their own, from the
#     start: each rotates twice, each time at the period less the jitter the
#     agent drew and logged; the intervals and jitters are printed.
#  9. Custody: no private key of the run (each node's keys, collected as they
#     change), in base64 or hex, is in any log, veilctl output, local copy,
#     state file, etcd value or etcd's data directory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mesh-lib.sh"

case "$BUILD" in
*san*) N=${MESH_NODES:-8} ;;
*) N=${MESH_NODES:-20} ;;
esac
[ "$N" -ge 8 ] || fail "MESH_NODES must be 8 or more"
command -v etcd >/dev/null || fail "etcd needed (tools/install-deps.sh test)"
# Pings per flow at 20/s: the rotation happens in the second of them.
FLOW_COUNT=160
MAX_LOST=2
# The nodes of each part: ROT1 alone; ROT3 together; STOPPED down while
# ROTS is rotated; LEADER's rotation loses the etcd leader; REVOKED is revoked.
ROT1=1 ROT3=(2 3 4) STOPPED=5 ROTS=6 LEADER=7 REVOKED=$N
# Part 6 revokes KEYREV's key alone (a leaked key); the node rotates and is back.
KEYREV=4
# The network of RotateEvery, its nodes and period.
SCHED_NET=sched SCHED="40 41 42" SCHED_PERIOD=40

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# clock_offset_ms: the wall clock less the time since boot. Part 8 compares log
# times (wall clock) with the agents' timers (monotonic): a step of the wall
# clock in between (time synchronisation) would look like a late rotation.
clock_offset_ms() { awk -v r="$(date +%s%N)" '{ printf "%.0f\n", r / 1000000 - $1 * 1000 }' /proc/uptime; }
# audit_ms LINE: the time of an AUDIT line, in ms since 1970.
audit_ms() {
	local t
	t=$(sed -n 's/.*AUDIT: time=\([0-9T:.-]*\)Z.*/\1/p' <<<"$1")
	[ -n "$t" ] || fail "not an audit line: $1"
	date -u -d "${t/T/ }" +%s%3N
}
# log_ms LINE: the time of a log line (to the second), in ms.
log_ms() {
	local t
	t=$(sed -n 's/^[^:]*: [A-Za-z]*: \([0-9-]*\)T\([0-9:]*\)Z .*/\1 \2/p' <<<"$1")
	[ -n "$t" ] || fail "not a log line: $1"
	date -u -d "$t" +%s%3N
}
pubkey() { wg pubkey <"$MESH_DIR/keys/n$1.key"; }
fingerprint() { printf '%s' "${1:0:11}"; }
admin() { mesh_sw env VEIL_MESH_DIR="$MESH_DIR/admin" "$MESH_VEILCTL" mesh "$1" --admin "$(mesh_admin_conf)" "${@:2}"; }

# The nodes of corp that run now (STOPPED is down in part 3).
RUNNING=()
running_but() {
	local i
	for i in "${RUNNING[@]}"; do
		case " $* " in *" $i "*) ;; *) printf '%s\n' "$i" ;; esac
	done
}

# mark_logs; since_mark I: the lines node I's agent logged after the mark.
MARK=()
mark_logs() {
	local i
	for i in "${RUNNING[@]}" $SCHED; do MARK[i]=$(wc -l <"$TMP/agent-n$i.log"); done
}
since_mark() { tail -n +$((${MARK[$1]:-0} + 1)) "$TMP/agent-n$1.log"; }

# wait_all_see EVENT NODE LIMIT I...: each agent I logs the audit EVENT about
# NODE after the mark, within LIMIT seconds in all; LAST is the latest line's time.
LAST=0
wait_all_see() {
	local event=$1 node=$2 limit=$3 i line t worst=0 end
	shift 3
	end=$((SECONDS + limit))
	for i in "$@"; do
		while :; do
			line=$(since_mark "$i" | grep -m 1 "event=$event .* node=$node " || true)
			[ -n "$line" ] && break
			[ "$SECONDS" -lt "$end" ] || fail "node $i: no $event of $node after $limit s"
			sleep 0.1
		done
		t=$(audit_ms "$line")
		[ "$t" -gt "$worst" ] && worst=$t
	done
	LAST=$worst
}

# wait_pids WHAT PID...: each background job succeeded (never a bare wait: the
# key collector and veild are children too).
wait_pids() {
	local what=$1 pid bad=0
	shift
	for pid in "$@"; do wait "$pid" || bad=$((bad + 1)); done
	[ "$bad" = 0 ] || fail "$what: $bad of $# failed"
}

# ---- ping flows at 20/s ----------------------------------------------------------------
# start_flows NODE...: a ping at 20/s from each of NODE... to every running
# node and back, each pair once; finish_flows WHAT [BOUND] waits for them,
# prints each pair's loss and the worst, and fails above BOUND (if given).
FLOW_PIDS=() FLOW_PAIRS=() FLOW_T0=0
start_flows() {
	local r j a b
	declare -A seen=()
	FLOW_PIDS=() FLOW_PAIRS=()
	for r in "$@"; do
		for j in $(running_but "$r"); do
			for a in "$r-$j" "$j-$r"; do
				[ -z "${seen[$a]:-}" ] || continue
				seen[$a]=1
				b=${a#*-}
				ip netns exec "$(mesh_ns "n${a%-*}")" ping -n -i 0.05 -c "$FLOW_COUNT" -W 1 "192.0.2.$b" \
					>"$TMP/flow-$a.txt" 2>&1 &
				FLOW_PIDS+=($!)
				FLOW_PAIRS+=("$a")
			done
		done
	done
	FLOW_T0=$(now_ms)
}
finish_flows() {
	local what=$1 bound=${2:-} pid a sent got lost worst=0 worst_pair="" text=""
	for pid in "${FLOW_PIDS[@]}"; do wait "$pid" || true; done
	for a in "${FLOW_PAIRS[@]}"; do
		sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$TMP/flow-$a.txt")
		got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$TMP/flow-$a.txt")
		[ "$sent" = "$FLOW_COUNT" ] || fail "$what: ping ${a/-/->} sent ${sent:-nothing}: $(tail -n 2 "$TMP/flow-$a.txt")"
		lost=$((sent - ${got:-0}))
		text+=" ${a/-/->}:$lost"
		if [ "$lost" -gt "$worst" ] || [ -z "$worst_pair" ]; then worst=$lost worst_pair=${a/-/->}; fi
	done
	log "$what: pings lost per pair (from->to:lost, $FLOW_COUNT each at 20/s):$text"
	log "$what: worst pair $worst_pair lost $worst of $FLOW_COUNT (${#FLOW_PAIRS[@]} pairs)"
	[ -z "$bound" ] || [ "$worst" -le "$bound" ] ||
		fail "$what: $worst pings lost on $worst_pair, more than $bound"
}

# ---- one rotation ---------------------------------------------------------------------------
# rotate I: `veilctl mesh rotate` of node I, which must say it rotated; the
# key file holds a new key, 0600. The old private key is kept in
# $TMP/old-I.key for part 5, its public key in OLD_PUB[I].
OLD_PUB=()
rotate() {
	local i=$1 out
	cp "$MESH_DIR/keys/n$i.key" "$TMP/old-$i.key"
	OLD_PUB[i]=$(pubkey "$i")
	out=$(mesh_veilctl "$i" mesh rotate "$(mesh_conf "$i")" 2>&1) || fail "veilctl mesh rotate n$i: $out"
	qgrep "rotated: " <<<"$out" || fail "veilctl mesh rotate n$i: $out"
	[ "$(pubkey "$i")" != "${OLD_PUB[$i]}" ] || fail "node $i's key file still holds the old key"
	[ "$(stat -c %a "$MESH_DIR/keys/n$i.key")" = 600 ] ||
		fail "node $i's new key file is mode $(stat -c %a "$MESH_DIR/keys/n$i.key"), not 600"
}

# rotated_everywhere I: every running node but I has I's new key as a peer,
# with its tunnel address, and not the old one; the registry has the new key.
rotated_everywhere() {
	local i=$1 j new ips
	new=$(pubkey "$i")
	for j in $(running_but "$i"); do
		ips=$(wg show "$(mesh_ifname "$j")" allowed-ips)
		grep -F "$new" <<<"$ips" | qgrep -F "192.0.2.$i/32" || fail "node $j: node $i's new key has not its address: $ips"
		qgrep -F "${OLD_PUB[$i]}" <<<"$ips" && fail "node $j still has node $i's old key"
	done
	[ "$(etcdctl_admin get --print-value-only "/veil/$MESH_NET/nodes/site$i" | jq -r .public_key)" = "$new" ] ||
		fail "the registry does not hold node $i's new key"
	[ "$(etcdctl_admin get --print-value-only "/veil/$MESH_NET/nodes/site$i" | jq -r '.next_public_key // "none"')" = none ] ||
		fail "node $i's record still announces a next key"
}

# reaches_both I J: nodes I and J ping each other (a second try each).
reaches_both() {
	mesh_ping "$1" "$2" || mesh_ping "$1" "$2" || fail "node $1 does not reach node $2"
	mesh_ping "$2" "$1" || mesh_ping "$2" "$1" || fail "node $2 does not reach node $1"
}

# ---- custody: every private key of the run ----------------------------------------------------
# Each key file is read every 0.2 s into $TMP/keys.all (not a log: it is not
# searched), so that the keys RotateEvery makes and replaces are known too.
KEYS_ALL="$TMP/keys.all"
touch "$TMP/collecting"
(
	for _ in $(seq 6000); do
		[ -f "$TMP/collecting" ] || break
		cat "$MESH_DIR"/keys/*.key >>"$KEYS_ALL" 2>/dev/null || true
		sleep 0.2
	done
) &
PIDS+=($!)

# ================================================================================================
etcd_start 3
etcd_auth_setup

# RotateEvery first: its two rotations take two periods, while the rest runs.
for i in $SCHED; do
	MESH_NET=$SCHED_NET mesh_host "n$i" "198.18.1.$i" "2001:db8::1:$i"
	MESH_NET=$SCHED_NET mesh_add_node "$SCHED_NET" "site$i"
	MESH_NET=$SCHED_NET mesh_node_conf "$i" "RotateEvery = ${SCHED_PERIOD}s"
	MESH_NET=$SCHED_NET mesh_node_up "$i"
done
SCHED_T0=$(now_ms)
SCHED_OFFSET=$(clock_offset_ms)
log "network $SCHED_NET: nodes $SCHED up with RotateEvery = ${SCHED_PERIOD}s"

for i in $(seq "$N"); do
	mesh_host "n$i" "198.18.1.$i" "2001:db8::1:$i"
	mesh_add_node "$MESH_NET" "site$i"
	mesh_node_conf "$i"
done
for i in $(seq "$N"); do
	mesh_node_up "$i"
	RUNNING+=("$i")
done
for i in $(seq "$N"); do mesh_wait_peers "$i" $((N - 1)) 60; done
# warm I: every other node and node I ping each other (in parallel): a session
# on each pair before its flows, so that no first handshake is under way at the
# switch (see part 4). The other node speaks first: one restarted since has no
# session, and starts a handshake at once.
warm() {
	local j pids=()
	for j in $(running_but "$1"); do
		reaches_both "$j" "$1" &
		pids+=($!)
	done
	wait_pids "node $1 and every other node ping each other" "${pids[@]}"
}
for r in "$ROT1" "${ROT3[@]}"; do warm "$r"; done
log "$N nodes in $MESH_NET, each with its $((N - 1)) peers"

# ---- 1. one node rotated under pings ---------------------------------------------------------
mark_logs
start_flows "$ROT1"
sleep 1
t0=$(now_ms)
rotate "$ROT1"
t1=$(now_ms)
mapfile -t others < <(running_but "$ROT1")
wait_all_see mesh_key_changed "site$ROT1" 20 "${others[@]}"
last=$LAST
finish_flows "rotation of site$ROT1" "$MAX_LOST"
[ "$last" -lt $((FLOW_T0 + FLOW_COUNT * 50 - 1000)) ] ||
	fail "rotation of site$ROT1: the last node switched after the pings (at $((last - FLOW_T0)) ms of the flows)"
rotated_everywhere "$ROT1"
for e in mesh_rotation_announced mesh_key_switched mesh_rotated; do
	since_mark "$ROT1" | qgrep "event=$e .* node=site$ROT1 " || fail "node $ROT1: no $e audit line"
done
for j in $(running_but "$ROT1"); do
	since_mark "$j" | qgrep "event=mesh_key_staged .* node=site$ROT1 " || fail "node $j: no mesh_key_staged of site$ROT1"
done
# veilctl mesh list on another node: the rotated key is new, the others as old as the mesh.
list=$(mesh_veilctl 2 mesh list "$MESH_NET" --json)
since=$(jq -r ".[0].nodes[] | select(.node == \"site$ROT1\") | .key_since" <<<"$list")
[ "$since" -ge $((t0 / 1000)) ] || fail "mesh list: site$ROT1's key since $since, not since the rotation at $((t0 / 1000))"
since=$(jq -r ".[0].nodes[] | select(.node == \"site$STOPPED\") | .key_since" <<<"$list")
[ "$since" -lt $((t0 / 1000)) ] || fail "mesh list: site$STOPPED's key since $since, not before the rotation"
mesh_veilctl 2 mesh list "$MESH_NET" | grep -E "key age|site$ROT1 |site$STOPPED "
log "rotation of site$ROT1: veilctl returned after $((t1 - t0)) ms; the last of $((N - 1)) nodes switched $((last - t0)) ms after the command"

# ---- 2. three nodes rotated at once ----------------------------------------------------------
mark_logs
start_flows "${ROT3[@]}"
sleep 1
t0=$(now_ms)
pids=()
for r in "${ROT3[@]}"; do
	rotate "$r" >"$TMP/rotate-$r.txt" 2>&1 &
	pids+=($!)
done
k=0
for r in "${ROT3[@]}"; do
	wait "${pids[$k]}" || fail "rotation of node $r (with two others): $(cat "$TMP/rotate-$r.txt")"
	k=$((k + 1))
	# rotate ran in a subshell: its old key again, from the file it saved.
	OLD_PUB[r]=$(wg pubkey <"$TMP/old-$r.key")
done
worst=0
for r in "${ROT3[@]}"; do
	mapfile -t others < <(running_but "$r")
	wait_all_see mesh_key_changed "site$r" 20 "${others[@]}"
	[ "$LAST" -gt "$worst" ] && worst=$LAST
done
finish_flows "rotation of sites ${ROT3[*]} at once" "$MAX_LOST"
[ "$worst" -lt $((FLOW_T0 + FLOW_COUNT * 50 - 1000)) ] ||
	fail "three rotations: the last node switched after the pings (at $((worst - FLOW_T0)) ms of the flows)"
for r in "${ROT3[@]}"; do rotated_everywhere "$r"; done
log "three rotations at once: every node on the three new keys $((worst - t0)) ms after the commands"

# ---- 3. a peer stopped during a rotation -----------------------------------------------------
mesh_node_down "$STOPPED"
mapfile -t RUNNING < <(running_but "$STOPPED")
mark_logs
rotate "$ROTS"
mapfile -t others < <(running_but "$ROTS")
wait_all_see mesh_key_changed "site$ROTS" 20 "${others[@]}"
mesh_node_up "$STOPPED"
RUNNING+=("$STOPPED")
mesh_wait_peers "$STOPPED" $((N - 1)) 30
reaches_both "$STOPPED" "$ROTS"
rotated_everywhere "$ROTS"
log "node $STOPPED, down while site$ROTS rotated, is back and reaches it on its new key"
# The rotated node restarted: veild comes back on the key file the agent rewrote.
new=$(pubkey "$ROTS")
mesh_node_down "$ROTS"
mesh_node_up "$ROTS"
[ "$(wg show "$(mesh_ifname "$ROTS")" public-key)" = "$new" ] || fail "node $ROTS restarted on another key than its rotated one"
mesh_wait_peers "$ROTS" $((N - 1)) 30
reaches_both "$ROTS" "$STOPPED"
reaches_both "$ROTS" 1
log "node $ROTS, restarted, is on its rotated key and reached"

# ---- 4. the etcd leader killed during a rotation -----------------------------------------------
# Between the switch and its peers' move, a handshake the node starts would land
# on the peers' staged entry, which has no allowed IPs: the pair would be cut
# until the publication arrives, late with the leader gone (so none is pending).
warm "$LEADER"
# Not while a node of $SCHED_NET is due to rotate: its agent, cut off from the
# registry for that moment, would refuse the rotation and try again only a
# minute later, and part 8 would not see the rotation it waits for.
for i in $SCHED; do
	line=$(grep "next rotation in" "$TMP/agent-n$i.log" | tail -n 1)
	due=$(($(log_ms "$line") + $(sed -n 's/.*next rotation in \([0-9]*\) s.*/\1/p' <<<"$line") * 1000))
	wait_ms=$((due + 4000 - $(now_ms)))
	if [ "$wait_ms" -gt 0 ] && [ "$wait_ms" -lt 16000 ]; then
		log "node $i is due to rotate: waiting $wait_ms ms before killing the leader"
		sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
	fi
done
leader=$(etcdctl_admin endpoint status -w json |
	jq -r '.[] | select(.Status.header.member_id == .Status.leader) | .Endpoint' |
	sed -n 's|^https://198\.18\.0\.\([0-9]*\):2379$|\1|p')
[ -n "$leader" ] || fail "no etcd leader found"
mark_logs
start_flows "$LEADER"
sleep 1
rotate "$LEADER" >"$TMP/rotate-$LEADER.txt" 2>&1 &
rpid=$!
for _ in $(seq 200); do
	since_mark "$LEADER" | qgrep "event=mesh_rotation_announced " && break
	sleep 0.02
done
since_mark "$LEADER" | qgrep "event=mesh_rotation_announced " || fail "node $LEADER announced no rotation"
kill -9 "${ETCD_PID[$leader]}"
keep=()
for p in "${PIDS[@]}"; do [ "$p" = "${ETCD_PID[$leader]}" ] || keep+=("$p"); done
PIDS=("${keep[@]}")
ETCD_PID[leader]=""
log "etcd$leader, the leader, killed just after site$LEADER's announcement"
wait "$rpid" || fail "the rotation of site$LEADER did not complete without the leader: $(cat "$TMP/rotate-$LEADER.txt")"
OLD_PUB[LEADER]=$(wg pubkey <"$TMP/old-$LEADER.key")
mapfile -t others < <(running_but "$LEADER")
wait_all_see mesh_key_changed "site$LEADER" 30 "${others[@]}"
# docs/mesh.md: no pair is left without a usable key, the registry failing halfway.
finish_flows "rotation of site$LEADER, etcd leader killed" "$MAX_LOST"
for j in $(running_but "$LEADER"); do
	mesh_ping "$j" "$LEADER" || mesh_ping "$j" "$LEADER" || fail "node $j does not reach node $LEADER after its rotation"
done
rotated_everywhere "$LEADER"
etcd_start_member "$leader"
log "without its leader, etcd moved on and site$LEADER's rotation completed; every node reaches it"

# ---- 5. the old keys refused -------------------------------------------------------------------
# A veild of our own in a namespace of its own (198.18.2.1), holding a node's
# old private key, with every other node as a peer at its endpoint.
ROGUE=rogue ROGUE_IF="r$RUN"
mesh_host "$ROGUE" 198.18.2.1 2001:db8::2:1
start_daemon "$(mesh_ns "$ROGUE")" veild "$ROGUE_IF"
ip -n "$(mesh_ns "$ROGUE")" link set "$ROGUE_IF" up
ip -n "$(mesh_ns "$ROGUE")" route add 192.0.2.0/24 dev "$ROGUE_IF"
# rogue_refused KEYFILE AS WHAT: with KEYFILE, as node AS (its address), try
# every node but AS: no handshake completes, nothing comes back.
rogue_refused() {
	local keyfile=$1 as=$2 what=$3 j conf="$TMP/rogue.conf" hs rx pids
	{
		echo "[Interface]"
		echo "PrivateKey = $(cat "$keyfile")"
		echo "ListenPort = 51820"
		for j in $(running_but "$as"); do
			echo "[Peer]"
			echo "PublicKey = $(pubkey "$j")"
			echo "AllowedIPs = 192.0.2.$j/32"
			echo "Endpoint = 198.18.1.$j:51820"
		done
	} >"$conf"
	wg setconf "$ROGUE_IF" "$conf"
	rm -f "$conf"
	ip -n "$(mesh_ns "$ROGUE")" addr flush dev "$ROGUE_IF"
	ip -n "$(mesh_ns "$ROGUE")" addr add "192.0.2.$as/32" dev "$ROGUE_IF"
	ip -n "$(mesh_ns "$ROGUE")" route replace 192.0.2.0/24 dev "$ROGUE_IF"
	pids=()
	for j in $(running_but "$as"); do
		(! ip netns exec "$(mesh_ns "$ROGUE")" ping -n -c 3 -i 1 -W 1 "192.0.2.$j" >/dev/null 2>&1) &
		pids+=($!)
	done
	wait_pids "$what: pings from a node's old key must go unanswered" "${pids[@]}"
	hs=$(wg show "$ROGUE_IF" latest-handshakes | awk '$2 != 0 { print $1 }')
	rx=$(wg show "$ROGUE_IF" transfer | awk '$2 != 0 { print $1 }')
	[ -z "$hs$rx" ] || fail "$what: a handshake completed with it: $hs $rx"
	[ "$(wg show "$ROGUE_IF" peers | grep -c .)" = $((${#RUNNING[@]} - 1)) ] || fail "$what: the rogue lost its peers"
	for j in $(running_but "$as"); do
		wg show "$(mesh_ifname "$j")" peers | qgrep -Fx "$(wg pubkey <"$keyfile")" &&
			fail "$what: node $j has a peer with that key"
	done
	log "$what: refused by all $((${#RUNNING[@]} - 1)) nodes (no handshake, no byte back)"
}
rogue_refused "$TMP/old-$ROT1.key" "$ROT1" "site$ROT1's old key"
rogue_refused "$TMP/old-$LEADER.key" "$LEADER" "site$LEADER's old key (rotated while the leader died)"

# ---- 6. revocation -----------------------------------------------------------------------------
# A key revoked alone (veilctl mesh revoke NETWORK PUBLIC_KEY): its peer goes
# everywhere and its record is refused; the node, rotated, is back on a new key.
mark_logs
krev=$(pubkey "$KEYREV")
cp "$MESH_DIR/keys/n$KEYREV.key" "$TMP/keyrevoked.key"
out=$(admin revoke "$MESH_NET" "$krev" 2>&1) || fail "veilctl mesh revoke KEY: $out"
printf '%s\n' "$out"
mapfile -t others < <(running_but "$KEYREV")
wait_all_see mesh_revoked "site$KEYREV" 10 "${others[@]}"
for j in "${others[@]}"; do
	wg show "$(mesh_ifname "$j")" peers | qgrep -Fx "$krev" && fail "node $j still has site$KEYREV's revoked key"
	since_mark "$j" | qgrep -E "node site$KEYREV's record \(revision [0-9]+\) is refused: its public key is revoked" ||
		fail "node $j: no line refusing site$KEYREV's record for its revoked key"
done
mark_logs
rotate "$KEYREV"
wait_all_see mesh_joined "site$KEYREV" 20 "${others[@]}"
# The node speaks first, to every node at once: the time until each answers.
t0=$(now_ms)
pids=()
for j in "${others[@]}"; do
	(
		for _ in $(seq 60); do
			ip netns exec "$(mesh_ns "n$KEYREV")" ping -n -q -c 1 -W 1 "192.0.2.$j" >/dev/null 2>&1 &&
				{ echo $(($(now_ms) - t0)) >"$TMP/back-$j.txt"; exit 0; }
		done
		exit 1
	) &
	pids+=($!)
done
wait_pids "site$KEYREV, rotated after its key was revoked, reaching every node within 60 s" "${pids[@]}"
back=$(cat "$TMP"/back-*.txt | sort -n | tail -n 1)
# The peers greet a peer they add with a handshake: no wait for the node's own
# timers to give up on the sessions they dropped (15 s).
[ "$back" -le 5000 ] || fail "site$KEYREV, rotated after its key was revoked, reached the last node after $back ms, over 5 s"
for j in "${others[@]}"; do mesh_ping "$j" "$KEYREV" || mesh_ping "$j" "$KEYREV" || fail "node $j does not reach site$KEYREV"; done
log "site$KEYREV's key revoked alone: gone from every node, refused; rotated, it is back on a new key and reaches every node after $back ms at most"
etcdctl_admin get "/veil/$MESH_NET/revoked/keys/$(base64 -d <<<"$krev" | base64 -w0 | tr '+/' '-_' | tr -d '=')" |
	qgrep . || fail "no revoked/keys/ entry for site$KEYREV's key"

R=$REVOKED
rkey=$(pubkey "$R")
rec=$(etcdctl_admin get --print-value-only "/veil/$MESH_NET/nodes/site$R")
[ -n "$rec" ] || fail "no record of site$R"
cp "$MESH_DIR/keys/n$R.key" "$TMP/revoked.key"
mark_logs
t0=$(now_ms)
out=$(admin revoke "$MESH_NET" "site$R" 2>&1) || fail "veilctl mesh revoke: $out"
t1=$(now_ms)
printf '%s\n' "$out"
mapfile -t others < <(running_but "$R")
wait_all_see mesh_revoked "site$R" 10 "${others[@]}"
last=$LAST
for j in $(running_but "$R"); do
	wg show "$(mesh_ifname "$j")" peers | qgrep -Fx "$rkey" && fail "node $j still has the revoked key as a peer"
done
log "revoke: the command took $((t1 - t0)) ms; site$R's peer gone on all $((N - 1)) nodes $((last - t0)) ms after it started"
[ $((last - t0)) -le 1000 ] || fail "revoke: the last node removed the peer after $((last - t0)) ms, over 1 s"
etcdctl_admin user get "$(mesh_node_user "$MESH_NET" "site$R")" >/dev/null 2>&1 &&
	fail "site$R's etcd user still exists"
etcdctl_admin get "/veil/$MESH_NET/nodes/site$R" | qgrep . && fail "site$R's record is still there"

# Its record written again by the administrator, then its key under another name.
mark_logs
etcdctl_admin put "/veil/$MESH_NET/nodes/site$R" "$rec" >/dev/null || fail "etcdctl put site$R"
etcdctl_admin put "/veil/$MESH_NET/nodes/impostor" \
	"{\"version\":1,\"node\":\"impostor\",\"public_key\":\"$rkey\",\"endpoints\":[\"198.18.1.$R:51820\"],\"prefixes\":[\"192.0.2.250/32\"]}" \
	>/dev/null || fail "etcdctl put impostor"
for j in $(running_but "$R"); do
	for _ in $(seq 100); do
		since_mark "$j" | qgrep "event=mesh_refused .* node=impostor " && break
		sleep 0.1
	done
	since_mark "$j" | qgrep -E "node site$R's record \(revision [0-9]+\) is refused: node site$R is revoked" ||
		fail "node $j: no line refusing site$R's record written again"
	since_mark "$j" | qgrep "event=mesh_refused .* node=site$R " || fail "node $j: no mesh_refused of site$R"
	since_mark "$j" | qgrep -E "node impostor's record \(revision [0-9]+\) is refused: its public key is revoked" ||
		fail "node $j: no line refusing the revoked key under another name"
	since_mark "$j" | qgrep "event=mesh_refused .* node=impostor " || fail "node $j: no mesh_refused of impostor"
	wg show "$(mesh_ifname "$j")" peers | qgrep -Fx "$rkey" && fail "node $j took the revoked key back"
done
log "the revoked record written again, and its key under another name: refused by every node"
etcdctl_admin del "/veil/$MESH_NET/nodes/impostor" >/dev/null

# The revoked node's own veild still holds its key and peers: it reaches no one.
hs0=$(wg show "$(mesh_ifname "$R")" latest-handshakes | awk '{ print $2 }' | sort -n | tail -n 1)
[ "$(mesh_peers "$R")" = $((N - 1)) ] || fail "the revoked node's veild no longer holds its $((N - 1)) peers"
pids=()
for j in $(running_but "$R"); do
	(! ip netns exec "$(mesh_ns "n$R")" ping -n -c 2 -i 0.5 -W 1 "192.0.2.$j" >/dev/null 2>&1) &
	pids+=($!)
done
wait_pids "the revoked node's own veild must reach nobody" "${pids[@]}"
hs1=$(wg show "$(mesh_ifname "$R")" latest-handshakes | awk '{ print $2 }' | sort -n | tail -n 1)
[ "$hs1" = "$hs0" ] || fail "the revoked node completed a handshake after its revocation"
rogue_refused "$TMP/revoked.key" "$R" "site$R's revoked key"

# A revoked node with a new user and key is refused until admitted.
etcdctl_admin role delete "$(mesh_node_user "$MESH_NET" "site$R")" >/dev/null || fail "etcdctl role delete"
mesh_add_node "$MESH_NET" "site$R"
mesh_node_down "$R"
(umask 077 && wg genkey >"$MESH_DIR/keys/n$R.key")
mark_logs
mesh_node_up "$R"
for j in $(running_but "$R"); do
	for _ in $(seq 100); do
		since_mark "$j" | qgrep "event=mesh_refused .* node=site$R " && break
		sleep 0.1
	done
	since_mark "$j" | qgrep -E "node site$R's record \(revision [0-9]+\) is refused: node site$R is revoked" ||
		fail "node $j: site$R, with a new key and user, is not refused before admit"
	[ "$(mesh_peers "$j")" = $((N - 2)) ] || fail "node $j has $(mesh_peers "$j") peers, not $((N - 2))"
done
log "site$R, back with a new key and user, is refused by every node"
out=$(admin history "$MESH_NET" "site$R" 2>&1) || fail "veilctl mesh history site$R: $out"
printf '%s\n' "$out"
qgrep -F "key $(fingerprint "$rkey") revoked" <<<"$out" || fail "history of site$R: no revoked key"
qgrep -F "node site$R revoked" <<<"$out" || fail "history of site$R: no revoked node"
admin admit "$MESH_NET" "site$R" || fail "veilctl mesh admit"
for j in $(running_but "$R"); do mesh_wait_peers "$j" $((N - 1)) 10; done
mesh_wait_peers "$R" $((N - 1)) 10
for j in $(running_but "$R"); do reaches_both "$R" "$j"; done
log "admitted, site$R with its new key reaches every node"

# ---- 7. history --------------------------------------------------------------------------------
out=$(admin history "$MESH_NET" "site$KEYREV" 2>&1) || fail "veilctl mesh history site$KEYREV: $out"
printf '%s\n' "$out"
qgrep -F "key $(fingerprint "$krev") revoked" <<<"$out" || fail "history of site$KEYREV: its key revoked alone is not there"
out=$(admin history "$MESH_NET" "site$ROT1" 2>&1) || fail "veilctl mesh history site$ROT1: $out"
printf '%s\n' "$out"
old=$(fingerprint "${OLD_PUB[$ROT1]}") new=$(fingerprint "$(pubkey "$ROT1")")
qgrep -F "key $old (since " <<<"$out" || qgrep -F "key $old, active since" <<<"$out" ||
	fail "history of site$ROT1: no old key $old"
qgrep -F "next key $new announced" <<<"$out" || fail "history of site$ROT1: the next key $new not announced"
qgrep -F "key $new, active since 20" <<<"$out" || fail "history of site$ROT1: the new key $new not active"

# ---- 8. RotateEvery ----------------------------------------------------------------------------
# Each rotation comes at its key's start plus the period less the jitter the
# agent drew and logged just before ("next rotation in X s (RotateEvery P s,
# less J s of jitter)"), J below a tenth of the period. The first key starts
# with the agent (its first such line, to the second), the next at the switch.
jitters=()
drift=$(($(clock_offset_ms) - SCHED_OFFSET))
check_times=1
if [ "${drift#-}" -gt 300 ]; then
	check_times=0
	log "the wall clock moved by $drift ms against the monotonic clock: rotation times are printed, not checked"
fi
for i in $SCHED; do
	for _ in $(seq $((SCHED_PERIOD * 3 * 10))); do
		[ "$(grep -c "event=mesh_rotated " "$TMP/agent-n$i.log")" -ge 2 ] && break
		sleep 0.1
	done
	[ "$(grep -c "event=mesh_rotated " "$TMP/agent-n$i.log")" -ge 2 ] ||
		fail "node $i (RotateEvery ${SCHED_PERIOD}s) rotated $(grep -c "event=mesh_rotated " "$TMP/agent-n$i.log") times in $((($(now_ms) - SCHED_T0) / 1000)) s"
	# Each announcement with the jitter of the schedule before it.
	mapfile -t ann < <(awk '/next rotation in .* s of jitter/ { for (k = 1; k < NF; k++) if ($k == "less") j = $(k + 1) }
		/event=mesh_rotation_announced / { print j " " $0 }' "$TMP/agent-n$i.log")
	mapfile -t sw < <(grep "event=mesh_key_switched " "$TMP/agent-n$i.log")
	if [ "${#ann[@]}" -lt 2 ] || [ "${#sw[@]}" -lt 1 ]; then
		fail "node $i: ${#ann[@]} announcements, ${#sw[@]} switches"
	fi
	start=$(log_ms "$(grep -m 1 "next rotation in" "$TMP/agent-n$i.log")")
	text=
	for k in 0 1; do
		j=${ann[$k]%% *}
		if [ -z "$j" ] || [ "$j" -ge $((SCHED_PERIOD / 10)) ]; then
			fail "node $i: jitter '$j' s, not below a tenth of ${SCHED_PERIOD} s"
		fi
		# The agent counts whole seconds: from a log line's second, the first comes up
		# to 1.3 s late; from the switch (to the ms), the second up to 1 s early.
		if [ "$k" = 0 ]; then from=$start lo=-500 hi=1500; else from=$(audit_ms "${sw[0]}") lo=-1200 hi=800; fi
		d=$(($(audit_ms "${ann[$k]#* }") - from))
		want=$(((SCHED_PERIOD - j) * 1000))
		if [ "$check_times" = 1 ] && { [ "$d" -lt $((want + lo)) ] || [ "$d" -gt $((want + hi)) ]; }; then
			fail "node $i: rotation $((k + 1)) came $d ms after its key's start, not about $want ms (period less $j s of jitter)"
		fi
		text+=" rotation $((k + 1)) after $d ms (jitter $j s);"
		jitters+=("$j")
	done
	log "node $i (RotateEvery ${SCHED_PERIOD}s):$text"
done
# Six draws from 0..3: all 0 has a chance of 1 in 4096 with a working jitter.
printf '%s\n' "${jitters[@]}" | qgrep -v '^0$' ||
	fail "RotateEvery: no jitter in six rotations (${jitters[*]}): each came at the exact period"
for i in $SCHED; do
	for j in $SCHED; do
		[ "$i" = "$j" ] || mesh_ping "$i" "$j" || mesh_ping "$i" "$j" || fail "node $i ($SCHED_NET) does not reach node $j"
	done
done
log "RotateEvery: jitters ${jitters[*]} s; the nodes of $SCHED_NET reach each other on their new keys"

# ---- 9. custody ---------------------------------------------------------------------------------
rm -f "$TMP/collecting"
sleep 0.5
cat "$MESH_DIR"/keys/*.key "$TMP"/old-*.key "$TMP/revoked.key" "$TMP/keyrevoked.key" >>"$KEYS_ALL"
patterns="$TMP/patterns"
: >"$patterns"
nkeys=0
while read -r k; do
	[ -n "$k" ] || continue
	{
		printf '%s\n' "$k"
		base64 -d <<<"$k" | od -An -tx1 | tr -d ' \n'
		echo
	} >>"$patterns"
	nkeys=$((nkeys + 1))
done < <(sort -u "$KEYS_ALL")
etcdctl_admin get --prefix /veil/ >"$TMP/etcd-values.txt" || fail "etcdctl get --prefix /veil/"
searched=("$TMP"/*.log "$TMP"/*.out "$TMP"/*.txt "$MESH_DIR/state" "$MESH_DIR/etcd" /var/run/veil/*"$RUN"*)
found=$(grep -rlaiF -f "$patterns" "${searched[@]}" 2>/dev/null || true)
[ -z "$found" ] || fail "a private key is in: $found"
log "custody: none of the run's $nkeys private keys (base64 or hex) is in $(find "${searched[@]}" -type f 2>/dev/null | wc -l) files: logs, outputs, local copies, etcd's values and data"
# veild's log is in the output of veilctl up, which lib.sh does not search (*.log).
found=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TMP"/*.out 2>/dev/null || true)
[ -z "$found" ] || fail "a sanitizer report in $found"
log "mesh-rotate: all passed ($N nodes, $SCHED_NET with $(wc -w <<<"$SCHED") nodes)"
