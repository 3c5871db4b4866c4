# shellcheck shell=bash
# Set-up for the mesh tests: a switch namespace holding a bridge, hosts on it
# (etcd members and mesh nodes), a CA made at test time, and a three-member
# etcd cluster with TLS, client certificates and RBAC, as a fleet would run it.
# Source it after lib.sh: it uses RUN, TMP, log, fail, run, qgrep, EXTRA_NS and
# PIDS, and everything it starts is in PIDS or in a namespace in EXTRA_NS, so
# that lib.sh's cleanup removes it. lib.sh's cleanup first calls mesh_cleanup,
# which kills the etcd members at once rather than stopping them one by one.
#
# Addresses: the underlay is 198.18.0.0/16 and 2001:db8::/64. Member I of the
# cluster is 198.18.0.I and 2001:db8::I; mesh nodes should use 198.18.1.0/24
# and 2001:db8::1:0/112. The bridge itself is 198.18.255.254 and
# 2001:db8::fffe, so that the switch namespace is the admin's vantage point: it
# reaches every host, and cutting a host's link leaves it untouched.
#
# Files, all under $MESH_DIR: pki/ca.crt, pki/NAME.crt and pki/NAME.key (keys
# 0600), etcd/etcdI/ (data), etcd/NAME.pw (passwords, 0600). Logs go to
# $TMP/etcdI.log, where lib.sh shows them when a test fails.
#
# Knobs, set before sourcing: MESH_ETCD_TOKEN_TTL, MESH_ETCD_BCRYPT_COST and
# MESH_ETCD_ARGS (below); MESH_GW=I makes etcd_gw talk to member I.
#
# Needs etcd-server, etcd-client (etcd 3.4), curl, openssl and jq.

MESH_SW="veil-$RUN-sw"
MESH_BR="br$RUN"
MESH_DIR="$TMP/mesh"
MESH_PKI="$MESH_DIR/pki"
# The interface of each host on the switch; the name is the same in every host.
MESH_IF="u$RUN"
MESH_NHOSTS=0
# ETCD_PID[I] is member I's etcd while it runs; ETCD_N the cluster's size.
ETCD_N=0
ETCD_PID=()
# Simple tokens expire after this many idle seconds (etcd's default is 300).
MESH_ETCD_TOKEN_TTL=${MESH_ETCD_TOKEN_TTL:-300}
# bcrypt's lowest cost: every etcdctl call and /v3/auth/authenticate hashes
# the password, and cost 10 (etcd's default) makes that 50 ms or more here.
MESH_ETCD_BCRYPT_COST=${MESH_ETCD_BCRYPT_COST:-4}
# More etcd flags for every member, split on spaces (for example timeouts).
MESH_ETCD_ARGS=${MESH_ETCD_ARGS:-}

# mesh_ns NAME prints the namespace of host NAME.
mesh_ns() { printf 'veil-%s-%s\n' "$RUN" "$1"; }

# mesh_sw CMD... runs a command in the switch namespace.
mesh_sw() { ip netns exec "$MESH_SW" "$@"; }

# mesh_switch creates the switch namespace with its bridge, once. The bridge
# has an address of its own so that commands run in the switch namespace reach
# every host. IPv6 duplicate address detection is off so that no address waits.
mesh_switch() {
	ip netns list | qgrep "^$MESH_SW\b" && return 0
	EXTRA_NS+=("$MESH_SW")
	run ip netns add "$MESH_SW"
	ip -n "$MESH_SW" link set lo up
	ip netns exec "$MESH_SW" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	ip -n "$MESH_SW" link add "$MESH_BR" type bridge
	ip -n "$MESH_SW" addr add 198.18.255.254/16 dev "$MESH_BR"
	ip -n "$MESH_SW" addr add 2001:db8::fffe/64 dev "$MESH_BR" nodad
	ip -n "$MESH_SW" link set "$MESH_BR" up
}

# mesh_host NAME ADDR4 ADDR6 creates namespace veil-$RUN-NAME, plugs it into
# the bridge with a veth pair and gives it the two addresses (prefix lengths
# /16 and /64 are added). Its interface keeps its IPv6 address while it is
# down, so that etcd_cut_member and etcd_uncut_member are only a link state.
# NAME must not be a, b or c: those namespaces are lib.sh's NS1..NS3.
mesh_host() {
	local name=$1 a4=$2 a6=$3 ns port
	case "$name" in a | b | c | sw) fail "mesh_host: the name $name is taken" ;; esac
	ns=$(mesh_ns "$name")
	mesh_switch
	MESH_NHOSTS=$((MESH_NHOSTS + 1))
	port="s$MESH_NHOSTS$RUN"
	EXTRA_NS+=("$ns")
	run ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.keep_addr_on_down=1 \
		net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	ip link add "$MESH_IF" netns "$ns" type veth peer name "$port" netns "$MESH_SW"
	ip -n "$MESH_SW" link set "$port" master "$MESH_BR"
	ip -n "$MESH_SW" link set "$port" up
	ip -n "$ns" addr add "$a4/16" dev "$MESH_IF"
	ip -n "$ns" addr add "$a6/64" dev "$MESH_IF" nodad
	ip -n "$ns" link set "$MESH_IF" up
}

# mesh_cert NAME SUBJECT [SAN] makes a key and a certificate signed by the
# CA, valid for client and server use (etcd's gateway dials its own gRPC
# server with the member's certificate, so members need both). SUBJECT is an
# openssl subject such as /O=veil; SAN an optional subjectAltName value.
mesh_cert() {
	local name=$1 subj=$2 san=${3:-} ext="$MESH_PKI/$1.ext"
	{
		echo "basicConstraints = critical, CA:FALSE"
		echo "keyUsage = critical, digitalSignature, keyEncipherment"
		echo "extendedKeyUsage = serverAuth, clientAuth"
		[ -z "$san" ] || echo "subjectAltName = $san"
	} >"$ext"
	(
		umask 077
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$MESH_PKI/$name.key" -subj "$subj" 2>/dev/null |
			openssl x509 -req -CA "$MESH_PKI/ca.crt" -CAkey "$MESH_PKI/ca.key" \
				-days 2 -extfile "$ext" -out "$MESH_PKI/$name.crt" 2>/dev/null
	) || fail "openssl: certificate $name"
	chmod 0644 "$MESH_PKI/$name.crt"
	rm -f "$ext"
}

# mesh_ca [N] makes the CA, a certificate for each of N members (3 by
# default; no CN, SAN their addresses and 127.0.0.1) and the admin's client
# certificate (subject O=veil, no CN: with RBAC on, etcd's gateway refuses
# a client certificate that has one). Node certificates come with
# mesh_add_node.
mesh_ca() {
	local n=${1:-3} i
	[ -f "$MESH_PKI/ca.crt" ] && return 0
	mkdir -p "$MESH_PKI"
	chmod 0700 "$MESH_PKI"
	(
		umask 077
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$MESH_PKI/ca.key" -out "$MESH_PKI/ca.crt" -days 2 \
			-subj "/O=veil/CN=veil test CA $RUN" 2>/dev/null
	) || fail "openssl: CA"
	chmod 0644 "$MESH_PKI/ca.crt"
	for i in $(seq "$n"); do
		mesh_cert "etcd$i" /O=veil "IP:198.18.0.$i, IP:2001:db8::$i, IP:127.0.0.1"
	done
	mesh_cert admin /O=veil
}

# etcd_endpoints prints the client URLs of all members, comma-separated.
etcd_endpoints() {
	local i out=""
	for i in $(seq "$ETCD_N"); do
		out+="${out:+,}https://198.18.0.$i:2379"
	done
	printf '%s\n' "$out"
}

# etcd_launch I starts member I in the background in its namespace, with the
# flags of a new cluster (ignored by etcd once its data directory exists), and
# records its PID. The PID is etcd's own: ip netns exec and env exec it.
etcd_launch() {
	local i=$1 j v cluster="" a="198.18.0.$1" tls unset=()
	# etcd takes ETCD_* variables from its environment as flags and exits
	# when one also comes as a flag: it gets none.
	for v in $(compgen -e); do
		case "$v" in ETCD_*) unset+=(-u "$v") ;; esac
	done
	for j in $(seq "$ETCD_N"); do
		cluster+="${cluster:+,}etcd$j=https://198.18.0.$j:2380"
	done
	tls=(--cert-file "$MESH_PKI/etcd$i.crt" --key-file "$MESH_PKI/etcd$i.key"
		--trusted-ca-file "$MESH_PKI/ca.crt" --client-cert-auth
		--peer-cert-file "$MESH_PKI/etcd$i.crt" --peer-key-file "$MESH_PKI/etcd$i.key"
		--peer-trusted-ca-file "$MESH_PKI/ca.crt" --peer-client-cert-auth)
	# shellcheck disable=SC2086 # MESH_ETCD_ARGS is a list of flags
	ip netns exec "$(mesh_ns "etcd$i")" env "${unset[@]}" etcd --name "etcd$i" --data-dir "$MESH_DIR/etcd/etcd$i" \
		--listen-peer-urls "https://$a:2380" --initial-advertise-peer-urls "https://$a:2380" \
		--listen-client-urls "https://$a:2379,https://[2001:db8::$i]:2379" \
		--advertise-client-urls "https://$a:2379" \
		--initial-cluster "$cluster" --initial-cluster-token "veil-$RUN" \
		--initial-cluster-state new "${tls[@]}" \
		--auth-token-ttl "$MESH_ETCD_TOKEN_TTL" --bcrypt-cost "$MESH_ETCD_BCRYPT_COST" \
		--logger zap --log-outputs stderr $MESH_ETCD_ARGS >>"$TMP/etcd$i.log" 2>&1 &
	ETCD_PID[i]=$!
	PIDS+=($!)
	# Not a job: bash would report each member killed by a signal.
	disown "$!"
}

# etcd_healthy I: member I answers /health with {"health":"true"}, which
# etcd 3.4 says only when the cluster has a leader and no alarm.
etcd_healthy() {
	mesh_sw curl -sS -m 2 --cacert "$MESH_PKI/ca.crt" --cert "$MESH_PKI/admin.crt" \
		--key "$MESH_PKI/admin.key" "https://198.18.0.$1:2379/health" 2>/dev/null |
		qgrep '"health":"true"'
}

# etcd_wait_healthy I...: waits (at most 30 s) until every member named is healthy.
etcd_wait_healthy() {
	local i end=$((SECONDS + 30))
	for i in "$@"; do
		while [ "$SECONDS" -lt "$end" ]; do
			etcd_healthy "$i" && continue 2
			kill -0 "${ETCD_PID[$i]}" 2>/dev/null || fail "etcd$i exited (see $TMP/etcd$i.log)"
			sleep 0.2
		done
		fail "etcd$i not healthy after 30 s"
	done
}

# etcd_start [N] makes the hosts etcd1..N (3 by default) and the certificates
# if need be, starts every member and waits until all are healthy.
etcd_start() {
	local n=${1:-3} i
	ETCD_N=$n
	mesh_ca "$n"
	mkdir -p "$MESH_DIR/etcd"
	chmod 0700 "$MESH_DIR/etcd"
	for i in $(seq "$n"); do
		ip netns list | qgrep "^$(mesh_ns "etcd$i")\b" || mesh_host "etcd$i" "198.18.0.$i" "2001:db8::$i"
	done
	for i in $(seq "$n"); do
		etcd_launch "$i"
	done
	etcd_wait_healthy $(seq "$n")
	log "etcd: $n members healthy at $(etcd_endpoints)"
}

# etcd_stop_member I stops member I with SIGTERM, as systemd would (a leader
# first hands its leadership over), SIGKILL after 10 s, and forgets its PID;
# its data directory stays.
etcd_stop_member() {
	local i=$1 pid=${ETCD_PID[$1]:-} keep=() p
	[ -n "$pid" ] || fail "etcd$i is not running"
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	ETCD_PID[i]=""
	log "etcd$i stopped"
}

# mesh_cleanup is lib.sh's cleanup hook, called before it stops PIDS. It
# kills the members outright: stopped together with SIGTERM, a leader waits
# up to 7 s to hand its leadership to members that are going too, longer
# than lib.sh waits, and the data is thrown away anyway.
mesh_cleanup() {
	local i pid
	for i in "${!ETCD_PID[@]}"; do
		pid=${ETCD_PID[$i]}
		[ -n "$pid" ] || continue
		kill -9 "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done
}

# etcd_start_member I... starts members I... again on their data directories
# and waits until they are healthy (each rejoins as the same member; after a
# whole outage, start a quorum together).
etcd_start_member() {
	local i
	for i in "$@"; do
		[ -z "${ETCD_PID[$i]:-}" ] || fail "etcd$i is running"
		etcd_launch "$i"
	done
	etcd_wait_healthy "$@"
	log "etcd member(s) $* started again"
}

# etcd_cut_member I takes member I's link down in its namespace: the process
# runs on, but neither peers nor clients reach it, and open connections hang
# rather than reset. etcd_uncut_member I brings the link back.
etcd_cut_member() { ip -n "$(mesh_ns "etcd$1")" link set "$MESH_IF" down; }
etcd_uncut_member() { ip -n "$(mesh_ns "etcd$1")" link set "$MESH_IF" up; }

# etcdctl_admin ARGS... runs etcdctl (API 3) from the switch namespace against
# all members, with the admin's certificate, as root once etcd_auth_setup has
# run. It gives up after 30 s.
etcdctl_admin() {
	local user=()
	[ -f "$MESH_DIR/etcd/root.pw" ] && user=(--user "root:$(cat "$MESH_DIR/etcd/root.pw")")
	mesh_sw env ETCDCTL_API=3 timeout 30 etcdctl --endpoints "$(etcd_endpoints)" \
		--cacert "$MESH_PKI/ca.crt" --cert "$MESH_PKI/admin.crt" --key "$MESH_PKI/admin.key" \
		--dial-timeout 3s --command-timeout 10s "${user[@]}" "$@"
}

# mesh_password FILE writes a new random password to FILE (mode 0600).
mesh_password() {
	(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$1")
}

# etcd_auth_setup adds the root user (password in $MESH_DIR/etcd/root.pw)
# with the root role and enables authentication.
etcd_auth_setup() {
	local pw="$MESH_DIR/etcd/root.pw" tmp="$MESH_DIR/etcd/root.pw.new"
	mesh_password "$tmp"
	etcdctl_admin user add root --new-user-password "$(cat "$tmp")" >/dev/null ||
		fail "etcdctl user add root"
	etcdctl_admin user grant-role root root >/dev/null || fail "etcdctl user grant-role root"
	etcdctl_admin auth enable >/dev/null || fail "etcdctl auth enable"
	mv "$tmp" "$pw"
	log "etcd: auth enabled, root password in $pw"
}

# mesh_prefix_end KEY prints KEY with its last byte plus one: with KEY a
# prefix, the range_end that covers it. Only for ASCII keys not ending in
# 0x7f, which is all the mesh uses.
mesh_prefix_end() {
	local k=$1 last
	last=$(printf '%d' "'${k: -1}")
	printf '%s' "${k%?}"
	# shellcheck disable=SC2059 # the format is the octal escape of one byte
	printf "\\$(printf '%03o' $((last + 1)))"
}

# mesh_node_user NET NODE prints the etcd user (and role) name of a node.
mesh_node_user() { printf '%s.%s\n' "$1" "$2"; }

# mesh_add_node NET NODE makes etcd user and role NET.NODE, which may read
# everything under /veil/NET/ and write only /veil/NET/nodes/NODE and
# /veil/NET/alive/NODE; its password goes to $MESH_DIR/etcd/NET.NODE.pw and
# its client certificate (no CN) to $MESH_PKI/NET.NODE.{crt,key}.
mesh_add_node() {
	local net=$1 node=$2 u pw
	u=$(mesh_node_user "$net" "$node")
	pw="$MESH_DIR/etcd/$u.pw"
	mesh_password "$pw"
	mesh_cert "$u" /O=veil
	etcdctl_admin user add "$u" --new-user-password "$(cat "$pw")" >/dev/null || fail "etcd user $u"
	etcdctl_admin role add "$u" >/dev/null || fail "etcd role $u"
	etcdctl_admin role grant-permission "$u" read "/veil/$net/" --prefix=true >/dev/null ||
		fail "etcd role $u: read /veil/$net/"
	etcdctl_admin role grant-permission "$u" readwrite "/veil/$net/nodes/$node" >/dev/null ||
		fail "etcd role $u: readwrite /veil/$net/nodes/$node"
	etcdctl_admin role grant-permission "$u" readwrite "/veil/$net/alive/$node" >/dev/null ||
		fail "etcd role $u: readwrite /veil/$net/alive/$node"
	etcdctl_admin user grant-role "$u" "$u" >/dev/null || fail "etcd user $u: role"
}

# etcd_compact compacts the keyspace (physically) to the current revision
# and prints that revision.
etcd_compact() {
	local rev
	# Not endpoint status, which fails when a member is down.
	rev=$(etcdctl_admin get / -w json | jq -r .header.revision) || fail "etcd: no revision"
	etcdctl_admin compact "$rev" --physical >/dev/null || fail "etcd compact $rev"
	printf '%s\n' "$rev"
}

# b64 STRING prints STRING in base64 on one line, as the JSON gateway wants
# keys and values.
b64() { printf '%s' "$1" | base64 -w0; }

# etcd_gw HOST CERT PATH BODY [TOKEN] posts BODY to the JSON gateway of the
# member in MESH_GW (1 by default) from host HOST's namespace ("sw" for the
# switch) with client certificate CERT (a name under $MESH_PKI), and prints
# the HTTP status, a space and the response on one line.
etcd_gw() {
	local ns hdr=() out
	ns=$(mesh_ns "$1")
	[ -z "${5:-}" ] || hdr=(-H "Authorization: $5")
	out=$(ip netns exec "$ns" curl -sS -m 10 --cacert "$MESH_PKI/ca.crt" \
		--cert "$MESH_PKI/$2.crt" --key "$MESH_PKI/$2.key" "${hdr[@]}" \
		-w '\n%{http_code}' -d "$4" "https://198.18.0.${MESH_GW:-1}:2379$3") || true
	# The status is the last line; errors outside /v3 JSON are text/plain.
	printf '%s %s\n' "${out##*$'\n'}" "$(tr -d '\n' <<<"${out%$'\n'*}")"
}

# etcd_token HOST CERT USER PWFILE prints a token for USER from
# /v3/auth/authenticate (through etcd_gw), or fails.
etcd_token() {
	local out
	out=$(etcd_gw "$1" "$2" /v3/auth/authenticate \
		"$(jq -cn --arg n "$3" --arg p "$(cat "$4")" '{name:$n,password:$p}')")
	[ "${out%% *}" = 200 ] || fail "authenticate $3: $out"
	jq -r .token <<<"${out#* }"
}

# ---- mesh nodes ---------------------------------------------------------------------
# Node I is host nI (198.18.1.I, 2001:db8::1:I) of network $MESH_NET, etcd user
# $MESH_NET.siteI, node name siteI, interface mI$RUN, tunnel addresses 192.0.2.I
# and fd00::I, which it advertises. Its agent keeps its local copy in
# $MESH_DIR/state/nI and logs to $TMP/agent-nI.log.

MESH_NET=${MESH_NET:-corp}
MESH_VEILCTL="$ROOT/$BUILD/veilctl"

# mesh_ifname I prints node I's interface name (the socket path is shared by all
# namespaces, so it holds $RUN).
mesh_ifname() { printf 'm%s%s\n' "$1" "$RUN"; }

# mesh_conf I prints the path of node I's file.
mesh_conf() { printf '%s/conf/%s.conf\n' "$MESH_DIR" "$(mesh_ifname "$1")"; }

# mesh_node_conf I [LINE...]: writes node I's file; each LINE is added to its
# [Mesh] section.
mesh_node_conf() {
	local i=$1 u conf
	shift
	u=$(mesh_node_user "$MESH_NET" "site$i")
	conf=$(mesh_conf "$i")
	mkdir -p "$MESH_DIR/conf" "$MESH_DIR/keys"
	[ -f "$MESH_DIR/keys/n$i.key" ] || (umask 077 && wg genkey >"$MESH_DIR/keys/n$i.key")
	{
		echo "[Interface]"
		echo "PrivateKeyFile = $MESH_DIR/keys/n$i.key"
		echo "ListenPort = 51820"
		echo "Address = 192.0.2.$i/32, fd00::$i/128"
		echo
		echo "[Mesh]"
		echo "Registry = $(etcd_endpoints | sed 's/,/, /g')"
		echo "RegistryCA = $MESH_PKI/ca.crt"
		echo "RegistryCert = $MESH_PKI/$u.crt"
		echo "RegistryKey = $MESH_PKI/$u.key"
		echo "RegistryUser = $u"
		echo "RegistryPasswordFile = $MESH_DIR/etcd/$u.pw"
		echo "Network = $MESH_NET"
		echo "Node = site$i"
		echo "Endpoint = 198.18.1.$i:51820"
		echo "Advertise = 192.0.2.$i/32, fd00::$i/128"
		local line
		for line in "$@"; do echo "$line"; done
	} >"$conf"
	chmod 0600 "$conf"
}

# mesh_veilctl I ARGS...: veilctl in node I's namespace, with its agent's settings.
mesh_veilctl() {
	local i=$1
	shift
	ip netns exec "$(mesh_ns "n$i")" env VEIL_MESH_DIR="$MESH_DIR/state/n$i" \
		VEIL_MESH_LOG="$TMP/agent-n$i.log" LOG_LEVEL=verbose "$MESH_VEILCTL" "$@"
}

# mesh_node_up I: node I's host and etcd user (the first time), its file, and
# `veilctl up` (which starts veild and the agent).
mesh_node_up() {
	local i=$1 ns
	ns=$(mesh_ns "n$i")
	ip netns list | qgrep "^$ns\b" || mesh_host "n$i" "198.18.1.$i" "2001:db8::1:$i"
	[ -f "$MESH_DIR/etcd/$(mesh_node_user "$MESH_NET" "site$i").pw" ] || mesh_add_node "$MESH_NET" "site$i"
	[ -f "$(mesh_conf "$i")" ] || mesh_node_conf "$i"
	STATE_FILES+=("/var/run/veil/$(mesh_ifname "$i").state")
	mesh_veilctl "$i" up "$(mesh_conf "$i")" >>"$TMP/up-n$i.out" 2>&1 ||
		fail "veilctl up n$i: $(tail -n 3 "$TMP/up-n$i.out")"
}

# mesh_node_down I: `veilctl down` of node I (its agent, veild, addresses).
mesh_node_down() {
	mesh_veilctl "$1" down "$(mesh_conf "$1")" >>"$TMP/up-n$1.out" 2>&1 ||
		fail "veilctl down n$1: $(tail -n 3 "$TMP/up-n$1.out")"
}

# mesh_peers I prints how many peers node I's veild has.
mesh_peers() { wg show "$(mesh_ifname "$1")" peers 2>/dev/null | grep -c . || true; }

# mesh_wait_peers I COUNT [SECONDS]: until node I has COUNT peers (30 s by default).
mesh_wait_peers() {
	local i=$1 want=$2 limit=${3:-30} t
	for t in $(seq $((limit * 10))); do
		[ "$(mesh_peers "$i")" = "$want" ] && return 0
		sleep 0.1
	done
	fail "node $i has $(mesh_peers "$i") peers, not $want, after $limit s"
}

# mesh_agent_pid I prints node I's agent's pid.
mesh_agent_pid() { cat "/var/run/veil/$(mesh_ifname "$1").mesh.pid" 2>/dev/null; }

# mesh_ping I J [COUNT]: node I pings node J's tunnel address (bounded).
mesh_ping() {
	ip netns exec "$(mesh_ns "n$1")" ping -q -c "${3:-1}" -i 0.2 -W 2 -w 10 "192.0.2.$2" >/dev/null
}

# mesh_admin_conf prints the administrator's file (root's registry credentials).
mesh_admin_conf() {
	local f="$MESH_DIR/conf/admin.conf"
	if [ ! -f "$f" ]; then
		mkdir -p "$MESH_DIR/conf"
		{
			echo "[Mesh]"
			echo "Registry = $(etcd_endpoints | sed 's/,/, /g')"
			echo "RegistryCA = $MESH_PKI/ca.crt"
			echo "RegistryCert = $MESH_PKI/admin.crt"
			echo "RegistryKey = $MESH_PKI/admin.key"
			echo "RegistryUser = root"
			echo "RegistryPasswordFile = $MESH_DIR/etcd/root.pw"
		} >"$f"
		chmod 0600 "$f"
	fi
	printf '%s\n' "$f"
}
