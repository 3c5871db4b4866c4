#!/usr/bin/env bash
# veil mesh: a bad record never hurts anyone else, and one node's registry
# credentials reach no further than its own record. A three-member etcd
# cluster with TLS, client certificates and RBAC, and four nodes.
#
# Authorization first. Node 4 starts with a wrong password: `veilctl up`
# succeeds (the registry is not on the data path), its agent says in its log
# that etcd refused its user, publishes nothing, and keeps trying: once the
# operator corrects the password file, the agent reads it again before its
# next try and the node joins with no restart.
# Meanwhile node 1's etcd user, through the JSON gateway with its own
# certificate and token, may read node 2's record but not write it, nor
# delete it, nor write a new node's record or the network's policy (403); a
# client without a certificate fails in the TLS handshake; a certificate
# with a CN gets etcd's 400.
#
# Then bad records, written while five ping flows at 10/s (four over IPv4,
# one over IPv6) run between the nodes: malformed JSON, a key of 31 bytes, a name that is not its key's, an
# endpoint that does not parse, a registry member's address (/32 and /16),
# prefixes that overlap an existing node's (the later by creation revision
# is refused, also after the earlier was modified, and although its name
# sorts first), a default route of each family without the network's policy,
# and node 4 rewriting its own record, with its own credentials, to claim
# node 1's prefix and then into bad JSON. Every agent (but the writer's own)
# refuses each with one log line naming the node and one AUDIT mesh_refused
# line, node 4's previous record stays the peer ("kept"), no flow loses a
# ping and no node's peers change. Last, the policy names both exit nodes:
# the first gets its peer with 0.0.0.0/0 and ::/0 on every node, and no node
# gets a default route; the second, its ::/0 now the first's, is refused
# again for that new reason, said anew.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mesh-lib.sh"

N=4
command -v etcd >/dev/null || fail "etcd needed (tools/install-deps.sh test)"
NODES="/veil/$MESH_NET/nodes"

# wait_until SECONDS CMD...: until CMD succeeds; fails after SECONDS.
wait_until() {
	local limit=$1
	shift
	for _ in $(seq $((limit * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# has_line FILE STRING: FILE holds STRING (fixed) on some line.
has_line() { grep -qF -- "$2" "$1" 2>/dev/null; }

# peer_set I: node I's peers as veild holds them: key, endpoint, allowed IPs.
peer_set() {
	wg show "$(mesh_ifname "$1")" dump | tail -n +2 | awk '{print $1, $3, $4}' | sort
}

# snapshot records every node's peers; peers_unchanged WHAT fails unless they
# are the same (but for the key in SNAP_SKIP, a peer that rightly came since).
SNAP=()
SNAP_SKIP=
snapshot() {
	local i
	for i in $(seq "$N"); do SNAP[i]=$(peer_set "$i"); done
}
peers_unchanged() {
	local i now
	for i in $(seq "$N"); do
		now=$(peer_set "$i" | awk -v k="$SNAP_SKIP" '$1 != k')
		[ "$now" = "${SNAP[$i]}" ] ||
			fail "$1: node $i's peers changed: was
${SNAP[$i]}
now
$now"
	done
}

# record NAME KEY ENDPOINT PREFIX...: a well-formed record's JSON.
record() {
	local name=$1 key=$2 ep=$3
	shift 3
	jq -cn --arg n "$name" --arg k "$key" --arg e "$ep" --args \
		'{version:1,node:$n,public_key:$k,endpoints:[$e],prefixes:$ARGS.positional,cipher:"chacha20poly1305"}' "$@"
}

newkey() { wg genkey | wg pubkey; }

# mod_revision KEY: the key's modification revision in etcd.
mod_revision() { etcdctl_admin get "$1" -w json | jq -r '.kvs[0].mod_revision'; }

# said I NAME REV REGEX: how many times node I logged that NAME's record at
# revision REV is refused for a reason matching the extended regex REGEX
# (the whole rest of the line), and printed nothing else.
said() {
	local line="node $2's record (revision $3) is refused: "
	grep -F -- "$line" "$TMP/agent-n$1.log" 2>/dev/null | while IFS= read -r l; do
		printf '%s\n' "${l#*"$line"}"
	done | grep -cxE -- "$4" || true
}
has_said() { [ "$(said "$@")" -ge 1 ]; }

# REFUSED holds NAME|REV|NODES|REGEX for each refusal said, checked again at the end.
REFUSED=()

# expect_refused NAME REV REASON [I=REASON | I=-]...: every agent logs, once,
# that node NAME's record at revision REV is refused, with a reason matching
# the extended regex REASON (or the one given for node I; "-": node I says
# nothing, for its own record), and one AUDIT mesh_refused line with the same
# node, revision and reason. With KEPT=1 the line ends saying that the
# node's peer stays; without, the record was never a peer and it does not.
# Then no node's peers have changed.
expect_refused() {
	local name=$1 rev=$2 reason=$3 i o want n skip="" stays="; its peer stays as it was" first=
	shift 3
	for i in $(seq "$N"); do
		want=$reason
		for o in "$@"; do [ "${o%%=*}" = "$i" ] && want=${o#*=}; done
		if [ "$want" = - ]; then
			skip+=" $i"
			continue
		fi
		n="($want)"
		[ "${KEPT:-0}" = 1 ] && n+="$stays"
		wait_until 15 has_said "$i" "$name" "$rev" "$n" ||
			fail "node $i did not refuse $name's record (revision $rev) for /$n/ in 15 s: $(grep -F "node $name's record" "$TMP/agent-n$i.log" | tail -n 2)"
		[ "$(said "$i" "$name" "$rev" "$n")" = 1 ] || fail "node $i: more than one line for $name's record (revision $rev)"
		REFUSED+=("$name|$rev|$i|$n")
		n=$(grep -cE -- "AUDIT: .*event=mesh_refused .* node=$name .*revision=$rev reason=\"($want)\"\$" \
			"$TMP/agent-n$i.log" || true)
		[ "$n" = 1 ] || fail "node $i: $n AUDIT mesh_refused lines for $name at revision $rev, not 1"
		[ -n "$first" ] || first=$(grep -F "node $name's record (revision $rev)" "$TMP/agent-n$i.log" | tail -n 1)
	done
	for i in $skip; do
		grep -F "node $name's record (revision $rev)" "$TMP/agent-n$i.log" &&
			fail "node $i refused its own record"
	done
	# A peer taken or changed would come right after the refusal's line.
	sleep 0.3
	peers_unchanged "$name's record (revision $rev)"
	log "$name's record (revision $rev) refused by every agent${skip:+ but node$skip}: ${first#* is refused: }"
}

# put_bad NAME VALUE REASON [I=REASON]...: the administrator writes VALUE
# under nodes/NAME; every agent must refuse it.
put_bad() {
	local name=$1 value=$2 rev
	shift 2
	etcdctl_admin put "$NODES/$name" "$value" >/dev/null || fail "etcdctl put $name"
	rev=$(mod_revision "$NODES/$name")
	expect_refused "$name" "$rev" "$@"
}

# node_state I NAME: NAME's state in node I's `veilctl mesh list --json`.
node_state() {
	mesh_veilctl "$1" mesh list "$MESH_NET" --json |
		jq -r --arg n "$2" '.[0].nodes[] | select(.node == $n) | .state'
}
state_is() { [ "$(node_state "$1" "$2")" = "$3" ]; }
# wait_state I NAME STATE: until node I shows NAME in STATE (5 s at most).
wait_state() {
	wait_until 5 state_is "$@" || fail "node $1: $2 is $(node_state "$1" "$2") after 5 s, not $3"
}

# agent_said I REGEX: node I's agent logged a line matching REGEX.
agent_said() { grep -qE -- "$2" "$TMP/agent-n$1.log" 2>/dev/null; }

etcd_start 3
etcd_auth_setup
# provision I: node I's host, etcd user, certificate and file.
provision() {
	mesh_host "n$1" "198.18.1.$1" "2001:db8::1:$1"
	mesh_add_node "$MESH_NET" "site$1"
	mesh_node_conf "$1"
}

# ---- B. a node whose password file is wrong ----------------------------------------------
# Node 4's file holds a password etcd does not know. The agent logs in only
# once it runs in the background, so `veilctl up` cannot tell: it succeeds,
# and the agent retries (every 15 s) rather than exiting. Node 4 goes first:
# its next try is what the set-up of the others waits for.
provision 4
pw4="$MESH_DIR/etcd/$(mesh_node_user "$MESH_NET" site4).pw"
cp -p "$pw4" "$pw4.right"
mesh_password "$pw4"
STATE_FILES+=("/var/run/veil/$(mesh_ifname 4).state")
up4=0
mesh_veilctl 4 up "$(mesh_conf 4)" >>"$TMP/up-n4.out" 2>&1 || up4=$?
[ "$up4" = 0 ] || fail "veilctl up with a wrong password: status $up4, not 0: $(tail -n 3 "$TMP/up-n4.out")"
agent4=$(mesh_agent_pid 4)
[ -n "$agent4" ] || fail "node 4: veilctl up left no agent"
wait_until 10 agent_said 4 "ERROR: .*etcd refused user \"corp\.site4\" with this password .*authentication failed" ||
	fail "node 4's agent did not say that etcd refused its password: $(tail -n 3 "$TMP/agent-n4.log")"
kill -0 "$agent4" || fail "node 4's agent exited on a wrong password"
grep -qF -- "$(cat "$pw4")" "$TMP/agent-n4.log" "$TMP/up-n4.out" && fail "node 4's password is in a log"
etcdctl_admin get "$NODES/site4" | qgrep . && fail "node 4 published its record with a wrong password"
log "wrong password: veilctl up succeeded, the agent runs ($agent4) and says: $(grep -m1 'etcd refused' "$TMP/agent-n4.log" | sed 's/^.*Z //')"
# The operator puts the right password in the file: the agent reads it again
# before its next try, and gets in.
cp -p "$pw4.right" "$pw4"
t_fixed=$(date +%s)

for i in 1 2 3; do provision "$i"; done
for i in 1 2 3; do mesh_node_up "$i"; done
for i in 1 2 3; do mesh_wait_peers "$i" 2 30; done

# ---- B. what a node's credentials, and no credentials, can do -----------------------------
u1=$(mesh_node_user "$MESH_NET" site1)
tok1=$(etcd_token n1 "$u1" "$u1" "$MESH_DIR/etcd/$u1.pw")
rec2=$(etcdctl_admin get "$NODES/site2" --print-value-only)
[ -n "$rec2" ] || fail "site2 has no record"
k2=$(b64 "$NODES/site2")
out=$(etcd_gw n1 "$u1" /v3/kv/range "{\"key\":\"$k2\"}" "$tok1")
[ "${out%% *}" = 200 ] || fail "node 1 cannot read node 2's record: $out"
[ "$(jq -r '.kvs[0].value' <<<"${out#* }" | base64 -d)" = "$rec2" ] || fail "node 1 read another record: $out"
forged=$(jq -c '.prefixes = ["192.0.2.1/32"]' <<<"$rec2")
for what in "put $NODES/site2" "deleterange $NODES/site2" "put $NODES/evil" "put /veil/$MESH_NET/policy"; do
	key=$(b64 "${what#* }")
	case "$what" in
	put*) body="{\"key\":\"$key\",\"value\":\"$(b64 "$forged")\"}" ;;
	*) body="{\"key\":\"$key\"}" ;;
	esac
	out=$(etcd_gw n1 "$u1" "/v3/kv/${what%% *}" "$body" "$tok1")
	case "$out" in
	"403 "*"permission denied"*) ;;
	*) fail "node 1's user may ${what}: $out" ;;
	esac
done
[ "$(etcdctl_admin get "$NODES/site2" --print-value-only)" = "$rec2" ] || fail "node 2's record changed"
etcdctl_admin get "$NODES/evil" | qgrep . && fail "node 1 wrote a record for another name"
etcdctl_admin get "/veil/$MESH_NET/policy" | qgrep . && fail "node 1 wrote the policy"
log "node 1's user reads node 2's record; writing it, deleting it, another name's or the policy: 403"

# No client certificate: the same request that works with one fails in TLS.
status_req() { mesh_sw curl -sS -m 5 --cacert "$MESH_PKI/ca.crt" -o /dev/null -w '%{http_code}' "$@" -d '{}' \
	https://198.18.0.1:2379/v3/maintenance/status 2>>"$TMP/curl.err"; }
out=$(status_req --cert "$MESH_PKI/admin.crt" --key "$MESH_PKI/admin.key") || fail "the admin's certificate is refused"
[ "$out" = 200 ] || fail "maintenance/status with the admin's certificate: $out"
rc=0
out=$(status_req --tls-max 1.2) || rc=$?
[ "$rc" = 35 ] || fail "TLS 1.2 without a client certificate: curl status $rc (HTTP $out), not 35 (handshake)"
rc=0
out=$(status_req) || rc=$?
case "$rc" in
35 | 55 | 56) ;;
*) fail "TLS 1.3 without a client certificate: curl status $rc (HTTP $out), not a TLS failure" ;;
esac
log "no client certificate: refused in the TLS handshake (curl $rc; 35 with TLS 1.2)"

# A client certificate with a CN, from the same CA: etcd's gateway answers 400.
mesh_cert "cn$RUN" "/O=veil/CN=x"
msg="CommonName of client sending a request against gateway will be ignored"
out=$(etcd_gw sw "cn$RUN" /v3/maintenance/status '{}')
case "$out" in "400 $msg"*) ;; *) fail "a certificate with a CN: $out" ;; esac
out=$(etcd_gw sw "cn$RUN" /v3/auth/authenticate "$(jq -cn --arg p "$(cat "$MESH_DIR/etcd/root.pw")" '{name:"root",password:$p}')")
case "$out" in "400 $msg"*) ;; *) fail "a certificate with a CN, authenticate: $out" ;; esac
log "a certificate with a CN: 400 from the gateway"

# Node 4's agent, still the same process, got in on a later try.
for i in $(seq "$N"); do mesh_wait_peers "$i" $((N - 1)) 30; done
[ "$(mesh_agent_pid 4)" = "$agent4" ] || fail "node 4's agent was restarted"
for i in 1 2 3; do
	agent_said "$i" "event=mesh_joined .* node=site4 " || fail "node $i: no audit line for site4 joining"
done
log "node 4 joined $(($(date +%s) - t_fixed)) s after its password file was corrected, with the agent started before"

# ---- A. bad records, while traffic flows ----------------------------------------------------
for i in $(seq "$N"); do
	for j in $(seq "$N"); do
		[ "$i" = "$j" ] || mesh_ping "$i" "$j" || mesh_ping "$i" "$j" || fail "node $i does not reach node $j"
	done
done
snapshot
FLOWS=()
for p in $(seq "$N"); do
	ip netns exec "$(mesh_ns "n$p")" ping -n -i 0.1 -W 1 -w 150 "192.0.2.$((p % N + 1))" >"$TMP/flow-$p.out" 2>&1 &
	FLOWS+=($!)
done
ip netns exec "$(mesh_ns n1)" ping -n -i 0.1 -W 1 -w 150 fd00::3 >"$TMP/flow-6.out" 2>&1 &
FLOWS+=($!)
PIDS+=("${FLOWS[@]}")
sleep 1

put_bad bad-json '{"version":1,"node":"bad-json","public_key":"' 'not JSON \(.*\)'
put_bad short-key "$(record short-key "$(head -c 31 /dev/urandom | base64)" 198.18.1.50:51820 192.0.2.50/32)" \
	'public_key is not a base64 key of 32 bytes'
put_bad impostor "$(record site3 "$(wg pubkey <"$MESH_DIR/keys/n3.key")" 198.18.1.51:51820 192.0.2.51/32)" \
	'its node "site3" is not the name it is stored under'
put_bad bad-ep "$(record bad-ep "$(newkey)" 198.18.1.52:70000 192.0.2.52/32)" \
	'endpoint "198\.18\.1\.52:70000" is not host:port or \[address\]:port'
put_bad reg32 "$(record reg32 "$(newkey)" 198.18.1.53:51820 192.0.2.53/32 198.18.0.1/32)" \
	"prefix 198\.18\.0\.1/32 holds a registry member's address"
put_bad reg16 "$(record reg16 "$(newkey)" 198.18.1.54:51820 198.18.0.0/16)" \
	"prefix 198\.18\.0\.0/16 holds a registry member's address"
# Overlap: node 2 was registered first. The newcomer's name sorts before it,
# and node 2's record is then written again (a later modification revision,
# the same creation revision): the newcomer stays the one refused.
put_bad aaa "$(record aaa "$(newkey)" 198.18.1.55:51820 192.0.2.55/32 192.0.2.2/32)" \
	"prefix 192\.0\.2\.2/32 overlaps node site2's, registered before it" \
	"2=prefix 192\.0\.2\.2/32 overlaps this node's own Advertise"
etcdctl_admin put "$NODES/site2" "$rec2" >/dev/null || fail "etcdctl put site2"
[ "$(mod_revision "$NODES/site2")" -gt "$(mod_revision "$NODES/aaa")" ] || fail "site2's record was not written again"
sleep 1
for i in $(seq "$N"); do
	[ "$i" = 2 ] || state_is "$i" site2 accepted || fail "node $i: site2 is $(node_state "$i" site2), not accepted"
	state_is "$i" aaa refused || fail "node $i: aaa is $(node_state "$i" aaa), not refused"
done
peers_unchanged "site2's record written again"
put_bad gw "$(record gw "$(newkey)" 198.18.1.56:51820 0.0.0.0/0 ::/0)" \
	'prefix 0\.0\.0\.0/0 is a default route and the policy names no such exit node'
put_bad gw6 "$(record gw6 "$(newkey)" 198.18.1.57:51820 ::/0)" \
	'prefix ::/0 is a default route and the policy names no such exit node'

# Node 4, with its own credentials, claims node 1's prefix, then writes bad
# JSON. The others keep its previous peer; its own agent refuses nothing.
u4=$(mesh_node_user "$MESH_NET" site4)
tok4=$(etcd_token n4 "$u4" "$u4" "$pw4")
rec4=$(etcdctl_admin get "$NODES/site4" --print-value-only)
k4=$(b64 "$NODES/site4")
for bad in "$(jq -c '.prefixes += ["192.0.2.1/32"]' <<<"$rec4")" '{"version":1,"node":"site4",'; do
	out=$(etcd_gw n4 "$u4" /v3/kv/put "{\"key\":\"$k4\",\"value\":\"$(b64 "$bad")\"}" "$tok4")
	[ "${out%% *}" = 200 ] || fail "node 4 cannot write its own record: $out"
	rev=$(jq -r .header.revision <<<"${out#* }")
	case "$bad" in
	*prefixes*) KEPT=1 expect_refused site4 "$rev" "prefix 192\.0\.2\.1/32 overlaps node site1's, registered before it" \
		"1=prefix 192\.0\.2\.1/32 overlaps this node's own Advertise" 4=- ;;
	*) KEPT=1 expect_refused site4 "$rev" 'not JSON \(.*\)' 4=- ;;
	esac
	for i in 1 2 3; do
		wait_state "$i" site4 kept
	done
done
out=$(etcd_gw n4 "$u4" /v3/kv/put "{\"key\":\"$k4\",\"value\":\"$(b64 "$rec4")\"}" "$tok4")
[ "${out%% *}" = 200 ] || fail "node 4 cannot write its own record back: $out"
for i in 1 2 3; do
	wait_state "$i" site4 accepted
done
peers_unchanged "site4's record written back"
log "site4's own bad records: refused, its peer kept on every node, accepted again when written back"

# ---- A. the policy names the exit nodes ------------------------------------------------------
# gw is accepted. gw6 is allowed too, but its ::/0 is gw's, registered
# before it: it is refused again, for that reason now, which is said anew.
gwkey=$(etcdctl_admin get "$NODES/gw" --print-value-only | jq -r .public_key)
etcdctl_admin put "/veil/$MESH_NET/policy" '{"version":1,"exit_nodes":["gw","gw6"]}' >/dev/null ||
	fail "etcdctl put policy"
for i in $(seq "$N"); do
	wait_until 15 agent_said "$i" "event=mesh_joined .* node=gw " ||
		fail "node $i has no peer for the exit node gw: $(node_state "$i" gw), $(grep -F "node gw's" "$TMP/agent-n$i.log" | tail -n 1)"
	allowed=$(wg show "$(mesh_ifname "$i")" allowed-ips | awk -v k="$gwkey" '$1 == k { $1 = ""; print }')
	[ "$(tr ' ' '\n' <<<"$allowed" | grep . | sort | tr '\n' ' ')" = "0.0.0.0/0 ::/0 " ] ||
		fail "node $i: the exit node's allowed IPs are '$allowed'"
	wait_state "$i" gw accepted
done
SNAP_SKIP=$gwkey
expect_refused gw6 "$(mod_revision "$NODES/gw6")" "prefix ::/0 overlaps node gw's, registered before it"
for i in $(seq "$N"); do
	ns=$(mesh_ns "n$i")
	routes=$(ip -n "$ns" -4 route show table all exact 0.0.0.0/0; ip -n "$ns" -6 route show table all exact ::/0)
	[ -z "$routes" ] || fail "node $i has a default route: $routes"
done
log "policy: gw accepted with 0.0.0.0/0 and ::/0 on every node, no default route anywhere"

# ---- A. what did not change -------------------------------------------------------------------
for pid in "${FLOWS[@]}"; do kill -INT "$pid" 2>/dev/null || fail "a ping flow ended early"; done
for pid in "${FLOWS[@]}"; do wait "$pid" || true; done
for f in $(seq "$N") 6; do
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$TMP/flow-$f.out")
	[ "${sent:-0}" -ge 50 ] || fail "flow $f: $(tail -n 2 "$TMP/flow-$f.out")"
	# Every echo but the last (in flight when the flow was stopped) has its reply.
	lost=$(seq $((sent - 1)) | grep -vxFf <(sed -n 's/.*icmp_seq=\([0-9]*\) .*time=.*/\1/p' "$TMP/flow-$f.out") || true)
	[ -z "$lost" ] || fail "flow $f lost the pings $(tr '\n' ' ' <<<"$lost")of $sent"
	log "flow $f: $(grep 'packets transmitted' "$TMP/flow-$f.out")"
done
for entry in "${REFUSED[@]}"; do
	IFS='|' read -r name rev i re <<<"$entry"
	n=$(said "$i" "$name" "$rev" "$re")
	[ "$n" = 1 ] || fail "node $i said $n times that $name's record (revision $rev) is refused for /$re/"
done
for i in $(seq "$N"); do
	agent_said "$i" "event=mesh_removed|is no longer a peer" && fail "node $i removed a peer"
	kill -0 "$(mesh_agent_pid "$i")" 2>/dev/null || fail "node $i's agent is gone"
done
log "mesh-records: all passed"
