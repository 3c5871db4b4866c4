# shellcheck shell=bash
# Shared set-up for the namespace tests, in the spirit of the kernel's netns.sh:
# two hosts (namespaces) joined by a veth pair, daemons started by us and
# stopped by PID, everything removed by a trap even when a test fails.
#
# Addresses: underlay 198.18.0.0/24 and 2001:db8::/64, tunnel 192.0.2.0/24
# and fd00::/64. No default route is ever added.

set -eu
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
VEILD="$ROOT/$BUILD/veild"
XFER="$ROOT/$BUILD/tools/xfer"
# The tool that makes keys and asks a daemon whether it is up: wg, or veilctl
# where wireguard-tools need not be installed (make demo).
WG=${WG:-wg}
RUN=$(printf '%04x' $((RANDOM % 65536)))$$
RUN=${RUN:0:6}
NS1="veil-$RUN-a"
NS2="veil-$RUN-b"
NS3="veil-$RUN-c"
TMP=$(mktemp -d)
PIDS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
# The reason is said again after the daemons' logs, at the end of the output,
# where a truncated CI log still shows it.
FAIL_REASON=
fail() { FAIL_REASON="$*"; log "FAIL: $*"; exit 1; }
# grep -q for the end of a pipeline: reads all its input first. Under
# pipefail, grep -q leaving at the first match kills a writer that has more to
# say (ip rule show writes a line at a time) with SIGPIPE, and the pipeline
# fails although the line was there.
qgrep() {
	local input
	input=$(cat)
	grep -q "$@" <<<"$input"
}
# Echo each command, as the kernel's netns.sh does.
run() { printf '+ %s\n' "$*"; "$@"; }
n1() { ip netns exec "$NS1" "$@"; }
n2() { ip netns exec "$NS2" "$@"; }
n3() { ip netns exec "$NS3" "$@"; }

# Namespaces a test adds beyond NS1..NS3, and state files of veilctl up to remove.
EXTRA_NS=()
STATE_FILES=()

# Daemons that veilctl up started in the background: their PIDs are those of
# the processes left in our own namespaces. Deleting a TUN link stops veild,
# but a namespace is only freed when no process holds it.
stop_namespace_processes() {
	local ns pid pids=()
	for ns in "$NS1" "$NS2" "$NS3" "${EXTRA_NS[@]}"; do
		ip netns list 2>/dev/null | qgrep "^$ns\b" || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			pids+=("$pid")
		done
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
}

cleanup() {
	local status=$? pid ns
	set +e
	# A library sourced after this one (mesh-lib.sh) may stop its own first.
	declare -F mesh_cleanup >/dev/null && mesh_cleanup
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
	stop_namespace_processes
	# A daemon that lost root cannot unlink its socket; every name we give holds $RUN.
	rm -f /var/run/wireguard/*"$RUN".sock
	# A mesh agent killed outright leaves its pid file; every interface name holds $RUN.
	rm -f /var/run/veil/*"$RUN".mesh.pid
	for ns in "${EXTRA_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for f in "${STATE_FILES[@]}"; do
		rm -f "$f"
	done
	# A sanitizer build reports in the daemons' logs: any report fails the test.
	if grep -l -E "ERROR: (Address|Leak)Sanitizer|(WARNING|ERROR|FATAL): ThreadSanitizer|runtime error:" "$TMP"/*.log 2>/dev/null; then
		echo "sanitizer report in a daemon log" >&2
		status=1
	fi
	ip netns del "$NS1" 2>/dev/null
	ip netns del "$NS2" 2>/dev/null
	ip netns del "$NS3" 2>/dev/null
	# Per-namespace files (ip netns exec mounts /etc/netns/NS/hosts on /etc/hosts).
	for ns in "$NS1" "$NS2" "$NS3" "${EXTRA_NS[@]}"; do
		rm -rf "/etc/netns/$ns"
	done
	rmdir /etc/netns 2>/dev/null
	if [ $status -ne 0 ]; then
		for f in "$TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
		[ -n "$FAIL_REASON" ] && echo "FAIL ($(basename "$0")): $FAIL_REASON"
	fi
	rm -rf "$TMP"
	exit $status
}
trap cleanup EXIT

# Two hosts on one veth link, v4 and v6 underlay.
setup_hosts() {
	run ip netns add "$NS1"
	run ip netns add "$NS2"
	n1 ip link set lo up
	n2 ip link set lo up
	run ip link add "v$RUN" netns "$NS1" type veth peer name "w$RUN" netns "$NS2"
	n1 ip addr add 198.18.0.1/24 dev "v$RUN"
	n2 ip addr add 198.18.0.2/24 dev "w$RUN"
	n1 ip addr add 2001:db8::1/64 dev "v$RUN" nodad
	n2 ip addr add 2001:db8::2/64 dev "w$RUN" nodad
	n1 ip link set "v$RUN" up
	n2 ip link set "w$RUN" up
}

# start_daemon NS IMPL IFNAME: run a userspace daemon in the foreground, remember its PID,
# and wait (bounded) for its control socket. IMPL is veild, wireguard-go (Debian's) or
# wireguard-go-current (the binary named by WG_GO_CURRENT, run the same way).
start_daemon() {
	local ns=$1 impl=$2 ifname=$3 i sock="/var/run/wireguard/$3.sock" stale wggo=wireguard-go
	# A stale socket left by a killed daemon: wait for the new daemon's own socket
	# (another inode) before asking wg, or wg could unlink the fresh one as stale.
	stale=$(stat -c "%i %y" "$sock" 2>/dev/null || true)
	case "$impl" in
	veild) ip netns exec "$ns" env LOG_LEVEL=${LOG_LEVEL:-verbose} ${DAEMON_ENV:-} "$VEILD" -f "$ifname" \
		>>"$TMP/$ifname.log" 2>&1 &
		;;
	wireguard-go | wireguard-go-current)
		[ "$impl" = wireguard-go ] || wggo=$WG_GO_CURRENT
		ip netns exec "$ns" env LOG_LEVEL=verbose WG_PROCESS_FOREGROUND=1 "$wggo" -f "$ifname" \
			>>"$TMP/$ifname.log" 2>&1 &
		;;
	esac
	PIDS+=($!)
	for i in $(seq 100); do
		if [ -S "$sock" ] && [ "$(stat -c "%i %y" "$sock" 2>/dev/null)" != "$stale" ] &&
			"$WG" show "$ifname" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "$impl $ifname did not come up"
}

# A third host behind NS2, on 198.18.1.0/24 and 2001:db8:1::/64.
setup_third_host() {
	run ip netns add "$NS3"
	n3 ip link set lo up
	run ip link add "x$RUN" netns "$NS2" type veth peer name "y$RUN" netns "$NS3"
	n2 ip addr add 198.18.1.2/24 dev "x$RUN"
	n3 ip addr add 198.18.1.3/24 dev "y$RUN"
	n2 ip link set "x$RUN" up
	n3 ip link set "y$RUN" up
}

# wg_up NS IFNAME KEYFILE PORT ADDR: give an interface its key, port and tunnel address.
wg_up() {
	local ns=$1 ifname=$2 key=$3 port=$4 addr=$5
	run wg set "$ifname" private-key "$key" listen-port "$port"
	ip netns exec "$ns" ip addr add "$addr" dev "$ifname"
	ip netns exec "$ns" ip link set "$ifname" up
}

# tunnel_pair [-4] [-n] [-d OPTIONS] [-p OPTIONS] IFA IFB PORTA PORTB ENDPOINT_A ENDPOINT_B:
# the interfaces in NS1 and NS2 become each other's peer (keys from genkeys, with the
# PSK), carrying 192.0.2.1-2 and fd00::1-2, and come up. ENDPOINT_x is an underlay
# address ([v6] in brackets). -4: IPv4 only (192.0.2.1-2); -n: no pre-shared key;
# -d and -p: more of wg set's device and peer options for IFA, as words
# (-d "fwmark 0x20" -p "persistent-keepalive 25").
tunnel_pair() {
	local opt v6=1 psk=() dev_a="" peer_a="" OPTIND=1
	psk=(preshared-key "$TMP/psk")
	while getopts 4nd:p: opt; do
		case $opt in
		4) v6=0 ;;
		n) psk=() ;;
		d) dev_a=$OPTARG ;;
		p) peer_a=$OPTARG ;;
		*) fail "tunnel_pair: unknown option" ;;
		esac
	done
	shift $((OPTIND - 1))
	local ifa=$1 ifb=$2 porta=$3 portb=$4 ea=$5 eb=$6 ips_a=192.0.2.1/32 ips_b=192.0.2.2/32
	if [ "$v6" = 1 ]; then
		ips_a+=,fd00::1/128
		ips_b+=,fd00::2/128
	fi
	# shellcheck disable=SC2086 # -d and -p are lists of words
	run wg set "$ifa" private-key "$TMP/k1" listen-port "$porta" $dev_a \
		peer "$(cat "$TMP/p2")" "${psk[@]}" allowed-ips "$ips_b" endpoint "$eb:$portb" $peer_a
	run wg set "$ifb" private-key "$TMP/k2" listen-port "$portb" \
		peer "$(cat "$TMP/p1")" "${psk[@]}" allowed-ips "$ips_a" endpoint "$ea:$porta"
	n1 ip addr add 192.0.2.1/24 dev "$ifa"
	[ "$v6" = 0 ] || n1 ip addr add fd00::1/64 dev "$ifa" nodad
	n1 ip link set "$ifa" up
	n2 ip addr add 192.0.2.2/24 dev "$ifb"
	[ "$v6" = 0 ] || n2 ip addr add fd00::2/64 dev "$ifb" nodad
	n2 ip link set "$ifb" up
}

genkeys() {
	umask 077
	"$WG" genkey >"$TMP/k1"
	"$WG" genkey >"$TMP/k2"
	"$WG" pubkey <"$TMP/k1" >"$TMP/p1"
	"$WG" pubkey <"$TMP/k2" >"$TMP/p2"
	"$WG" genpsk >"$TMP/psk"
}

# ping_ok NS ADDR [COUNT]: bounded ping that must succeed.
ping_ok() {
	local ns=$1 addr=$2 count=${3:-3}
	ip netns exec "$ns" ping -q -c "$count" -i 0.2 -W 2 -w 20 "$addr" >/dev/null
}

# wait_listening FILE: until the receiver started in the background (xfer, sequdp) says
# "listening" in FILE, at most 10 s, else fail. Remove FILE before starting the receiver:
# a previous receiver's word would be taken for the new one's, and the sender would find
# nobody listening (the truncation of the redirect happens in the child, later).
wait_listening() {
	local _
	for _ in $(seq 100); do
		grep -q listening "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no receiver said listening in $1 within 10 s"
}

# transfer SRC_NS DST_NS DST_ADDR MB: TCP transfer, compare byte count and hash at both ends.
transfer() {
	local sns=$1 dns=$2 addr=$3 mb=$4 port=$((20000 + RANDOM % 10000)) out_r out_s
	rm -f "$TMP/recv.out"
	ip netns exec "$dns" timeout 150 "$XFER" recv "$port" >"$TMP/recv.out" 2>"$TMP/recv.log" &
	local rpid=$!
	wait_listening "$TMP/recv.out"
	out_s=$(ip netns exec "$sns" timeout 150 "$XFER" send "$addr" "$port" "$mb") || { kill $rpid 2>/dev/null; fail "send to $addr failed"; }
	wait $rpid || fail "receiver at $addr failed"
	out_r=$(tail -n 1 "$TMP/recv.out")
	[ "$out_s" = "$out_r" ] || fail "transfer to $addr: sent '$out_s', received '$out_r'"
	log "transfer of $mb MB to $addr: ok ($out_r)"
}

# host_drops RECV_NS SEND_NS SEND_IF: datagrams the hosts dropped on the way for reasons
# that are no tunnel's: full receive buffers of the receiving namespace's UDP sockets (the
# far daemon's, and sequdp's), the sending TUN's queue (its daemon not reading fast enough)
# and the kernels' per-CPU backlogs (a veth or TUN delivery on a busy CPU). A shared 2-core
# machine drops some of a 40,000/s stream there; a tunnel's own losses show up nowhere.
# Prints the three counts: UDP buffers, the TUN queue, the backlogs.
host_drops() {
	local rns=$1 sns=$2 sif=$3 udp udp6 tun soft=0 _d
	udp=$(ip netns exec "$rns" awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp)
	udp6=$(ip netns exec "$rns" awk '$1 == "Udp6RcvbufErrors" { print $2 }' /proc/net/snmp6)
	tun=$(ip netns exec "$sns" cat "/sys/class/net/$sif/statistics/tx_dropped")
	while read -r _ _d _; do soft=$((soft + 16#$_d)); done </proc/net/softnet_stat
	echo "$((udp + udp6)) $tun $soft"
}

# has_exited PID: the process is gone or a zombie waiting to be reaped.
has_exited() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

# stop_daemons PID...: SIGTERM each daemon we started (by PID); each must exit by
# itself within 5 s, and with status 0. The test fails otherwise. They are
# reaped and no longer in PIDS.
stop_daemons() {
	local pid p st keep=()
	for pid in "$@"; do
		kill "$pid" 2>/dev/null || fail "daemon $pid had already gone before it was stopped"
	done
	for pid in "$@"; do
		for _ in $(seq 50); do has_exited "$pid" && break; sleep 0.1; done
		has_exited "$pid" || fail "daemon $pid still runs 5 s after SIGTERM"
		st=0
		wait "$pid" 2>/dev/null || st=$?
		[ "$st" = 0 ] || fail "daemon $pid exited with status $st on SIGTERM"
	done
	for p in "${PIDS[@]}"; do
		case " $* " in *" $p "*) ;; *) keep+=("$p") ;; esac
	done
	PIDS=("${keep[@]}")
}

# expect_gone NS IFNAME...: once their daemons have stopped, nothing of them is
# left: no interface IFNAME in NS, no socket /var/run/wireguard/IFNAME.sock, and
# no process at all in NS (a daemon's helper child included). Waits up to 5 s,
# then fails naming what is left. Call it before anything deletes those.
expect_gone() {
	local ns=$1 ifname left pids p
	shift
	for _ in $(seq 50); do
		left=
		for ifname in "$@"; do
			if ip netns exec "$ns" ip link show "$ifname" >/dev/null 2>&1; then
				left+=" interface $ifname;"
			fi
			if [ -e "/var/run/wireguard/$ifname.sock" ]; then
				left+=" socket /var/run/wireguard/$ifname.sock;"
			fi
		done
		pids=$(ip netns pids "$ns") || fail "cannot list the processes in $ns"
		for p in $pids; do
			left+=" process $p ($(cat "/proc/$p/comm" 2>/dev/null));"
		done
		[ -n "$left" ] || return 0
		sleep 0.1
	done
	fail "left behind in $ns after its daemons stopped:$left"
}
