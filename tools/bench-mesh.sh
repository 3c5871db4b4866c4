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
[ "$(id -u)" = 0 ] || { echo "make bench: run as root (it creates network namespaces)" >&2; exit 1; }
"$(dirname "$0")/install-deps.sh" bench
. "$(dirname "$0")/../tests/netns/lib.sh"
. "$(dirname "$0")/../tests/netns/mesh-lib.sh"

N=${BENCH_MESH_NODES:-20}
CHANGES=${BENCH_MESH_CHANGES:-50}
REST_S=${BENCH_MESH_REST_S:-30}
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
