#!/usr/bin/env bash
# make bench, the mesh line: a three-member etcd cluster with TLS and RBAC and
# BENCH_MESH_NODES nodes (20), as tests/netns/mesh.sh builds them. A benchmark, not a
# test: it prints figures and fails only if the set-up does not work.
#  - Latency: CHANGES (50) changes, one every 200 ms, each a new prefix in the record
#    of a node the administrator writes; for each, the time from just before the put
#    is sent to the audit line of every agent that applied it (mesh_prefixes_changed
#    or mesh_joined with that revision): median, p99 and worst over all of them.
#  - At rest: each agent's RSS (median and largest, with its private part) and CPU
#    over REST_S (30) seconds with nothing changing.
#  - Rotation: ROTATIONS (20) `veilctl mesh rotate`, each of another node, while a
#    ping at 20/s runs each way between the rotating node and every other; for
#    each, the time from the command's start to the last other agent's
#    mesh_key_changed line (median, p99, worst), and the pings lost in all and on
#    the worst pair.
#  - Revocation: REVOKES (20) `veilctl mesh revoke` of nodes the administrator
#    registered (a key, a prefix, an etcd user; nobody answers at the endpoint);
#    for each, the time from the command's start to the last agent's mesh_revoked
#    line (median, p99, worst), and the command's own time.
[ "$(id -u)" = 0 ] || { echo "make bench: run as root (it creates network namespaces)" >&2; exit 1; }
"$(dirname "$0")/install-deps.sh" bench
. "$(dirname "$0")/../tests/netns/lib.sh"
. "$(dirname "$0")/../tests/netns/mesh-lib.sh"

N=${BENCH_MESH_NODES:-20}
CHANGES=${BENCH_MESH_CHANGES:-50}
REST_S=${BENCH_MESH_REST_S:-30}
ROTATIONS=${BENCH_MESH_ROTATIONS:-20}
REVOKES=${BENCH_MESH_REVOKES:-20}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
pct() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }

etcd_start 3
etcd_auth_setup
for i in $(seq "$N"); do mesh_node_up "$i"; done
for i in $(seq "$N"); do mesh_wait_peers "$i" $((N - 1)) 60; done
log "mesh bench: $N nodes up"

# The administrator's token, for puts through the gateway (no etcdctl start-up per change).
token=$(etcd_token sw admin root "$MESH_DIR/etcd/root.pw")
key=$(wg genkey | wg pubkey)
: >"$TMP/changes"
for k in $(seq "$CHANGES"); do
	value=$(printf '{"version":1,"node":"bench","public_key":"%s","endpoints":["198.18.9.9:51820"],"prefixes":["10.99.%d.0/24"]}' \
		"$key" "$k")
	body=$(jq -cn --arg k "$(b64 "/veil/$MESH_NET/nodes/bench")" --arg v "$(b64 "$value")" '{key:$k,value:$v}')
	t0=$(now_ms)
	out=$(etcd_gw sw admin /v3/kv/put "$body" "$token")
	[ "${out%% *}" = 200 ] || fail "put $k: $out"
	echo "$t0 $(jq -r .header.revision <<<"${out#* }")" >>"$TMP/changes"
	sleep 0.2
done
# Every agent applies every change (bounded wait for the last).
last=$(tail -n 1 "$TMP/changes" | cut -d' ' -f2)
for i in $(seq "$N"); do
	for _ in $(seq 100); do qgrep "node=bench .*revision=$last " <"$TMP/agent-n$i.log" && break; sleep 0.1; done
done
: >"$TMP/latency"
missing=0
while read -r t0 rev; do
	for i in $(seq "$N"); do
		line=$(grep -m 1 "node=bench .*revision=$rev " "$TMP/agent-n$i.log" || true)
		if [ -z "$line" ]; then
			missing=$((missing + 1))
			continue
		fi
		t=$(sed -n 's/.*AUDIT: time=\([0-9T:.-]*\)Z.*/\1/p' <<<"$line")
		echo $(($(date -u -d "${t/T/ }" +%s%3N) - t0)) >>"$TMP/latency"
	done
done <"$TMP/changes"
n=$(wc -l <"$TMP/latency")
log "mesh: change to applied on every agent: median $(median <"$TMP/latency") ms, p99 $(pct 99 <"$TMP/latency") ms, worst $(pct 100 <"$TMP/latency") ms ($n applications of $CHANGES changes on $N agents; $missing not seen)"

# At rest.
pids=()
for i in $(seq "$N"); do pids+=("$(mesh_agent_pid "$i")"); done
ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$s"; }
sleep 5
c0=$(ticks "${pids[@]}")
sleep "$REST_S"
c1=$(ticks "${pids[@]}")
hz=$(getconf CLK_TCK)
: >"$TMP/rss"
: >"$TMP/priv"
for p in "${pids[@]}"; do
	awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" >>"$TMP/rss"
	awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$p/smaps_rollup" >>"$TMP/priv"
done
log "mesh: agent at rest: RSS median $(median <"$TMP/rss") kB, largest $(pct 100 <"$TMP/rss") kB (private median $(median <"$TMP/priv") kB); CPU $(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$N" -v s="$REST_S" 'BEGIN { printf "%.3f%% of a core per agent", 100 * t / hz / n / s }') over $REST_S s"

# audit_ms LINE: an AUDIT line's time, in ms since 1970.
audit_ms() { date -u -d "$(sed -n 's/.*AUDIT: time=\([0-9-]*\)T\([0-9:.]*\)Z.*/\1 \2/p' <<<"$1")" +%s%3N; }
# last_line EVENT NODE I...: each agent I's line EVENT about NODE after its mark
# (waited for, 20 s at most in all); LAST is the latest one's time, MISSED how
# many never came.
declare -A MARK
mark() { local i; for i in "$@"; do MARK[$i]=$(wc -l <"$TMP/agent-n$i.log"); done; }
last_line() {
	local event=$1 node=$2 i line t end=$((SECONDS + 20))
	shift 2
	LAST=0 MISSED=0
	for i in "$@"; do
		line=
		while [ -z "$line" ]; do
			line=$(tail -n +$((MARK[$i] + 1)) "$TMP/agent-n$i.log" | grep -m 1 "event=$event .* node=$node " || true)
			[ -n "$line" ] || [ "$SECONDS" -lt "$end" ] || break
			[ -n "$line" ] || sleep 0.05
		done
		if [ -z "$line" ]; then
			MISSED=$((MISSED + 1))
			continue
		fi
		t=$(audit_ms "$line")
		[ "$t" -le "$LAST" ] || LAST=$t
	done
}

# Rotation under pings.
FLOW=80 # pings each way per pair, at 20/s: 4 s, the rotation in the middle
: >"$TMP/rotate-ms"
: >"$TMP/rotate-lost"
: >"$TMP/rotate-worst"
missing=0
for k in $(seq "$ROTATIONS"); do
	r=$(((k - 1) % N + 1))
	others=()
	for j in $(seq "$N"); do [ "$j" = "$r" ] || others+=("$j"); done
	mark "${others[@]}"
	flows=()
	for j in "${others[@]}"; do
		ip netns exec "$(mesh_ns "n$r")" ping -n -i 0.05 -c "$FLOW" -W 1 "192.0.2.$j" >"$TMP/rp-$r-$j" 2>&1 &
		flows+=($!)
		ip netns exec "$(mesh_ns "n$j")" ping -n -i 0.05 -c "$FLOW" -W 1 "192.0.2.$r" >"$TMP/rp-$j-$r" 2>&1 &
		flows+=($!)
	done
	sleep 0.5
	t0=$(now_ms)
	mesh_veilctl "$r" mesh rotate "$(mesh_conf "$r")" >"$TMP/rotate.out" 2>&1 ||
		fail "veilctl mesh rotate n$r: $(cat "$TMP/rotate.out")"
	last_line mesh_key_changed "site$r" "${others[@]}"
	missing=$((missing + MISSED))
	echo $((LAST - t0)) >>"$TMP/rotate-ms"
	for p in "${flows[@]}"; do wait "$p" || true; done
	total=0 worst=0
	for f in "$TMP"/rp-*; do
		lost=$(awk '/packets transmitted/ { print $1 - $4 }' "$f")
		total=$((total + ${lost:-$FLOW}))
		[ "${lost:-$FLOW}" -le "$worst" ] || worst=${lost:-$FLOW}
	done
	rm -f "$TMP"/rp-*
	echo "$total" >>"$TMP/rotate-lost"
	echo "$worst" >>"$TMP/rotate-worst"
done
log "mesh: rotate to the last node's switch: median $(median <"$TMP/rotate-ms") ms, p99 $(pct 99 <"$TMP/rotate-ms") ms, worst $(pct 100 <"$TMP/rotate-ms") ms ($ROTATIONS rotations, $((N - 1)) other agents each; $missing switches not seen)"
log "mesh: pings lost per rotation ($((2 * (N - 1))) pairs with the rotating node, $FLOW each at 20/s): median $(median <"$TMP/rotate-lost"), worst $(pct 100 <"$TMP/rotate-lost") in all; on one pair at most $(pct 100 <"$TMP/rotate-worst") (median of the rotations' worst pairs $(median <"$TMP/rotate-worst"))"

# Revocation of nodes the administrator registered, each with an etcd user.
peers=$(mesh_peers 1)
for k in $(seq "$REVOKES"); do
	mesh_add_node "$MESH_NET" "gone$k"
	etcdctl_admin put "/veil/$MESH_NET/nodes/gone$k" \
		"$(printf '{"version":1,"node":"gone%d","public_key":"%s","endpoints":["198.18.9.9:51820"],"prefixes":["10.98.%d.0/24"]}' \
			"$k" "$(wg genkey | wg pubkey)" "$k")" >/dev/null || fail "etcdctl put gone$k"
done
for i in $(seq "$N"); do mesh_wait_peers "$i" $((peers + REVOKES)) 30; done
: >"$TMP/revoke-ms"
: >"$TMP/revoke-cmd"
missing=0
for k in $(seq "$REVOKES"); do
	mark $(seq "$N")
	t0=$(now_ms)
	mesh_sw env VEIL_MESH_DIR="$MESH_DIR/admin" "$MESH_VEILCTL" mesh revoke --admin "$(mesh_admin_conf)" \
		"$MESH_NET" "gone$k" >"$TMP/revoke.out" 2>&1 || fail "veilctl mesh revoke gone$k: $(cat "$TMP/revoke.out")"
	t1=$(now_ms)
	last_line mesh_revoked "gone$k" $(seq "$N")
	missing=$((missing + MISSED))
	echo $((LAST - t0)) >>"$TMP/revoke-ms"
	echo $((t1 - t0)) >>"$TMP/revoke-cmd"
	sleep 0.2
done
log "mesh: revoke to the last agent's removal: median $(median <"$TMP/revoke-ms") ms, p99 $(pct 99 <"$TMP/revoke-ms") ms, worst $(pct 100 <"$TMP/revoke-ms") ms ($REVOKES revocations, $N agents each; $missing not seen); the command itself: median $(median <"$TMP/revoke-cmd") ms"
