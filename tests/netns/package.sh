#!/usr/bin/env bash
# The Debian package, built with Debian's own tools and installed for real:
# make deb (dpkg-buildpackage, then lintian with no error), dpkg -i, every
# file where it belongs, the installed veilctl and veild linking two
# namespaces site to site from the installed example files, the unit's own
# ExecStart, ExecReload and ExecStop lines run by hand under a stand-in for
# systemd's notify socket (veild's MAINPID, then READY=1), and dpkg --purge
# leaving nothing behind. systemd is not PID 1 on the test machines, so
# nothing is started through systemctl.
#
# The package goes onto this machine, not into a namespace. So the test
# refuses to run while a package named veil (or an unpackaged veild in
# /usr/sbin) is there already, unless this very test left it there when it
# was killed before its cleanup; and whatever happens, it purges what it
# installed.

# The package is built from the tree, not from $BUILD: once is enough.
if [ "${BUILD:-build}" != build ]; then
	printf '[%s] package: skipped with BUILD=%s (built and tested in the BUILD=build pass)\n' \
		"$(date +%T)" "$BUILD"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

# A SIGTERM (timeout) or ^C still runs the EXIT trap, so the purge happens.
trap 'exit 143' TERM
trap 'exit 130' INT

UNIT=/lib/systemd/system/veil@.service
EXAMPLES=/usr/share/doc/veil/examples
# The version this test installed and the test's pid, in case it is killed
# before its own cleanup.
MARK=/run/veil-package-test.installed
INSTALLED=0
ETC_EXISTED=0
[ -d /etc/veil ] && ETC_EXISTED=1
# The package's postinst creates the account veild runs as, and purging
# leaves it (Debian's way with system accounts); this test removes it again
# when it was not there before, so the machine is left as it was found.
USER_EXISTED=0
getent passwd _veil >/dev/null && USER_EXISTED=1
ifa="pa$RUN"
ifb="pb$RUN"
ETC_CONF="/etc/veil/$ifa.conf"
STATE_FILES+=("/var/run/veil/$ifa.state" "/var/run/veil/$ifb.state")
# veilctl must find the installed veild by itself, next to it in ../sbin.
unset VEILD

package_cleanup() {
	local status=$?
	set +e
	# The installed veild must be gone before its package.
	stop_namespace_processes
	rm -f "$ETC_CONF" "$ETC_CONF.new"
	if [ "$INSTALLED" = 1 ]; then
		echo "package: purging the veil package this test installed"
		dpkg --purge veil >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log"; echo "package: dpkg --purge veil failed" >&2; }
		[ "$ETC_EXISTED" = 1 ] || rmdir /etc/veil 2>/dev/null
		rm -f "$MARK"
	fi
	if [ "$USER_EXISTED" = 0 ] && getent passwd _veil >/dev/null; then
		userdel _veil
		getent group _veil >/dev/null && groupdel _veil
	fi
	(exit "$status")
	cleanup
}
trap package_cleanup EXIT

pkg_status() { dpkg-query -W -f='${db:Status-Status}' veil 2>/dev/null || true; }

log "--- nothing named veil on this machine"
st=$(pkg_status)
if [ -n "$st" ] && [ "$st" != not-installed ]; then
	read -r mark_version mark_pid _ 2>/dev/null <"$MARK" || true
	if [ "${mark_version:-}" = "$(dpkg-query -W -f='${Version}' veil)" ] &&
		! kill -0 "${mark_pid:-0}" 2>/dev/null; then
		log "a veil package left by an interrupted run of this test ($st): purging it"
		run dpkg --purge veil
		rm -f "$MARK"
	else
		fail "a package named veil is on this machine ($st), not installed by this test; it stays untouched (dpkg --purge veil to let this test run)"
	fi
fi
for f in /usr/sbin/veild /usr/bin/veilctl "$UNIT"; do
	[ ! -e "$f" ] || fail "$f exists outside any package; installing over it would lose it"
done

log "--- make deb"
(cd "$ROOT" && make --no-print-directory deb) >"$TMP/deb.out" 2>&1 || {
	cat "$TMP/deb.out"
	fail "make deb"
}
grep -E "^build-deb: lintian:|^[EWIPX]: " "$TMP/deb.out" || true
deb=$(tail -n 1 "$TMP/deb.out")
[ -f "$deb" ] || fail "make deb printed no package path (last line: $deb)"
lintian_log="$ROOT/build/deb/lintian.log"
[ -f "$lintian_log" ] || fail "no lintian log in build/deb"
! grep '^E: ' "$lintian_log" || fail "lintian reports errors"
version=$(dpkg-deb -f "$deb" Version)
[ "$(dpkg-deb -f "$deb" Package)" = veil ] || fail "$deb is not the package veil"
log "built $deb ($version)"

log "--- dpkg -i"
# Marked before dpkg runs: a half-done install is purged too.
echo "$version $$" >"$MARK"
INSTALLED=1
echo "+ dpkg -i $deb"
dpkg -i "$deb" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "dpkg -i"; }
[ "$(pkg_status)" = installed ] || fail "veil is '$(pkg_status)' after dpkg -i"

log "--- the files are in place"
/usr/sbin/veild --version | qgrep "^veild $version " || fail "veild --version: $(/usr/sbin/veild --version)"
/usr/bin/veilctl --version | qgrep "^veilctl $version$" || fail "veilctl --version: $(/usr/bin/veilctl --version)"
/usr/sbin/veil-meshd -V | qgrep "^veil-meshd $version$" || fail "veil-meshd -V: $(/usr/sbin/veil-meshd -V)"
for f in "$UNIT" /usr/share/bash-completion/completions/veilctl /usr/share/doc/veil/copyright \
	"$EXAMPLES/credential.conf.example"; do
	[ -s "$f" ] || fail "$f missing or empty"
done
for f in site-a.conf site-b.conf; do
	[ -s "$EXAMPLES/$f" ] || [ -s "$EXAMPLES/$f.gz" ] || fail "example $f missing"
done
[ "$(stat -c %a /etc/veil)" = 700 ] || [ "$ETC_EXISTED" = 1 ] || fail "/etc/veil is not mode 0700"
getent passwd _veil || fail "the package did not create the account _veil"
[ "$(getent passwd _veil | cut -d: -f7)" = /usr/sbin/nologin ] || fail "_veil has a login shell"
if command -v man >/dev/null; then
	for page in "8 veild" "8 veilctl" "8 veil-meshd" "5 veil.conf"; do
		# shellcheck disable=SC2086
		where=$(man -w $page) || fail "man -w $page found nothing"
		case "$where" in /usr/share/man/*) ;; *) fail "man -w $page: $where" ;; esac
		# shellcheck disable=SC2086
		[ -n "$(MANWIDTH=80 man $page 2>/dev/null | head -n 3)" ] || fail "man $page shows nothing"
	done
else
	log "no man here: checking the pages' files only"
	for f in man8/veild.8.gz man8/veilctl.8.gz man8/veil-meshd.8.gz man5/veil.conf.5.gz; do
		[ -s "/usr/share/man/$f" ] || fail "/usr/share/man/$f missing"
	done
fi
grep -qx "ExecStart=/usr/bin/veilctl up %i" "$UNIT" || fail "the unit's ExecStart is not veilctl up %i"
log "veild and veilctl $version, manual pages, unit, completion, examples: ok"
# systemd-analyze verify loads the template as an instance, with no systemd
# running; it also checks the commands and Documentation= pages exist.
if command -v systemd-analyze >/dev/null; then
	if systemd-analyze verify "$UNIT" >"$TMP/verify.log" 2>&1; then
		log "systemd-analyze verify $UNIT: ok"
	else
		cat "$TMP/verify.log"
		fail "systemd-analyze verify $UNIT"
	fi
else
	log "no systemd-analyze here: the unit is not verified"
fi

log "--- the installed programs, site to site (veilctl up FILE)"
setup_hosts
umask 077
/usr/bin/veilctl genkey >"$TMP/a.key"
/usr/bin/veilctl genkey >"$TMP/b.key"
puba=$(/usr/bin/veilctl pubkey <"$TMP/a.key")
pubb=$(/usr/bin/veilctl pubkey <"$TMP/b.key")
example() { zcat -f "$EXAMPLES/$1" 2>/dev/null || zcat "$EXAMPLES/$1.gz"; }
example site-a.conf | sed -e "s|/etc/veil/site-a.key|$TMP/a.key|" -e "s|SITE_B_PUBLIC_KEY|$pubb|" >"$TMP/$ifa.conf"
example site-b.conf | sed -e "s|/etc/veil/site-b.key|$TMP/b.key|" -e "s|SITE_A_PUBLIC_KEY|$puba|" >"$TMP/$ifb.conf"
grep -q "^PrivateKeyFile = $TMP/a.key" "$TMP/$ifa.conf" || fail "site-a.conf has no PrivateKeyFile line to point at the key"
n1 /usr/bin/veilctl up "$TMP/$ifa.conf" >"$TMP/up-a.log" 2>&1 || { cat "$TMP/up-a.log"; fail "veilctl up site A"; }
n2 /usr/bin/veilctl up "$TMP/$ifb.conf" >"$TMP/up-b.log" 2>&1 || { cat "$TMP/up-b.log"; fail "veilctl up site B"; }
# The daemons are the installed veild, found by veilctl by itself.
for ns in "$NS1" "$NS2"; do
	nspids=$(ip netns pids "$ns")
	[ -n "$nspids" ] || fail "no process in $ns after up"
	for pid in $nspids; do
		exe=$(readlink "/proc/$pid/exe")
		[ "$exe" = /usr/sbin/veild ] || fail "process $pid in $ns runs $exe, not /usr/sbin/veild"
		# The daemon as _veil; its resolver child as nobody.
		[ "$(cat "/proc/$pid/comm")" = veild ] || continue
		[ "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" = "$(id -u _veil)" ] ||
			fail "veild $pid in $ns runs as uid $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status"), not _veil"
	done
done
ping_ok "$NS1" 198.19.0.2 3 || fail "site A -> site B through the tunnel"
ping_ok "$NS2" 198.19.0.1 2 || fail "site B -> site A through the tunnel"
log "ping across the tunnel: ok"
n1 /usr/bin/veilctl down "$TMP/$ifa.conf" || fail "veilctl down site A"
n1 ip link show "$ifa" >/dev/null 2>&1 && fail "$ifa still there after down"
for _ in $(seq 50); do [ -z "$(ip netns pids "$NS1")" ] && break; sleep 0.1; done
[ -z "$(ip netns pids "$NS1")" ] || fail "veild still runs in $NS1 after down"

log "--- the unit's ExecStart, ExecReload, ExecStop by hand, much as systemd would run them"
# Site A again, now as instance $ifa: /etc/veil/$ifa.conf, the key from a
# credential (what LoadCredentialEncrypted= hands over), and a notify socket.
mkdir -m 0700 "$TMP/creds"
install -m 0400 "$TMP/a.key" "$TMP/creds/site-a.key"
sed -e "s|^PrivateKeyFile = .*|PrivateKeyCredential = site-a.key|" "$TMP/$ifa.conf" >"$ETC_CONF"
chmod 600 "$ETC_CONF"
# systemd's side of sd_notify: write each "KEY=VALUE" line down with its
# datagram's number and sender's pid, and close any file descriptor sent
# along (a BARRIER=1's pipe), as systemd does once it has read what came
# before.
cat >"$TMP/notify.py" <<'EOF'
import array, os, socket, struct, sys, time

path, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
deadline = time.monotonic() + limit
with open(out, "w", buffering=1) as f:
    f.write("0 0 LISTENING=1\n")
    n = 0
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(64) + socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        n += 1
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % 4])
                for fd in fds:
                    os.close(fd)
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        for line in data.decode(errors="replace").splitlines():
            if line:
                f.write("%d %d %s\n" % (n, pid, line))
EOF
python3 "$TMP/notify.py" "$TMP/notify.sock" "$TMP/notify.out" 90 &
PIDS+=($!)
for _ in $(seq 50); do grep -q LISTENING "$TMP/notify.out" 2>/dev/null && break; sleep 0.1; done
grep -q LISTENING "$TMP/notify.out" || fail "the notify listener did not start"
unit_line() { sed -n "s/^$1=//p" "$UNIT" | sed "s/%i/$ifa/g"; }
# Of the unit's sandbox, what can be had without systemd: its capability
# bounding set (root keeps no other capability across exec), no_new_privs,
# and its memory-lock limit when this machine lets us raise ours (without
# CAP_SYS_RESOURCE the lower limit we have is the harder test). The file
# system and system-call sandboxing only systemd can set up.
caps=$(unit_line CapabilityBoundingSet | tr '[:upper:]' '[:lower:]' | sed -e 's/cap_//g' -e 's/ *$//' -e 's/  */,+/g')
[ -n "$caps" ] || fail "the unit has no CapabilityBoundingSet"
grep -qx "NoNewPrivileges=yes" "$UNIT" || fail "the unit does not set NoNewPrivileges"
memlock=()
if [ "$(unit_line LimitMEMLOCK)" = infinity ] && prlimit --memlock=unlimited:unlimited true 2>/dev/null; then
	memlock=(prlimit --memlock=unlimited:unlimited)
else
	log "memory-lock limit stays at $(ulimit -l) kB (cannot raise it here)"
fi
as_systemd() {
	n1 "${memlock[@]}" setpriv --no-new-privs --inh-caps=-all --bounding-set="-all,+$caps" \
		env NOTIFY_SOCKET="$TMP/notify.sock" CREDENTIALS_DIRECTORY="$TMP/creds" "$@"
}
start=$(unit_line ExecStart)
reload=$(unit_line ExecReload)
stop=$(unit_line ExecStop)
# shellcheck disable=SC2086
run as_systemd $start || fail "ExecStart: $start"
for _ in $(seq 50); do grep -q " READY=1$" "$TMP/notify.out" && break; sleep 0.1; done
sed 's/^/  notify: /' "$TMP/notify.out"
grep -q " READY=1$" "$TMP/notify.out" || fail "no READY=1 from ExecStart"
grep -q " MAINPID=" "$TMP/notify.out" || fail "no MAINPID= from ExecStart"
mainpid=$(sed -n 's/^[0-9]* [0-9]* MAINPID=//p' "$TMP/notify.out" | tail -n 1)
# systemd must know the main process when it reads READY=1 (in the same
# datagram or before): the process it started, veilctl, exits right after.
[ "$(awk '/ MAINPID=/ { print $1; exit }' "$TMP/notify.out")" -le \
	"$(awk '/ READY=1$/ { print $1; exit }' "$TMP/notify.out")" ] || fail "MAINPID= came after READY=1"
[ "$(readlink "/proc/$mainpid/exe")" = /usr/sbin/veild ] || fail "MAINPID=$mainpid is not a running veild"
[ "$(ip netns identify "$mainpid")" = "$NS1" ] || fail "MAINPID=$mainpid is not in $NS1"
capeff=$(sed -n 's/^CapEff:\t//p' "/proc/$mainpid/status")
[ "$capeff" = 0000000000001400 ] || fail "veild has capabilities $capeff, not CAP_NET_ADMIN and CAP_NET_BIND_SERVICE only"
[ "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$mainpid/status")" = "$(id -u _veil)$(id -u _veil)$(id -u _veil)$(id -u _veil)" ] ||
	fail "the unit's veild runs as uid $(awk '/^Uid:/ { print $2 }' "/proc/$mainpid/status"), not _veil"
log "ExecStart: READY=1, MAINPID=$mainpid (veild): ok; veild's $(grep -h VmLck "/proc/$mainpid/status" | tr -s '\t ' ' ')"
ping_ok "$NS1" 198.19.0.2 3 || fail "site A (key from the credential) -> site B"
lines=$(wc -l <"$TMP/notify.out")
# shellcheck disable=SC2086
run as_systemd $reload || fail "ExecReload: $reload"
[ "$(readlink "/proc/$mainpid/exe")" = /usr/sbin/veild ] || fail "veild $mainpid is gone after ExecReload"
ping_ok "$NS1" 198.19.0.2 2 || fail "site A -> site B after ExecReload"
# shellcheck disable=SC2086
run as_systemd $stop || fail "ExecStop: $stop"
for _ in $(seq 50); do kill -0 "$mainpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$mainpid" 2>/dev/null && fail "veild $mainpid still runs after ExecStop"
n1 ip link show "$ifa" >/dev/null 2>&1 && fail "$ifa still there after ExecStop"
[ ! -e "/var/run/veil/$ifa.state" ] || fail "state file left after ExecStop"
if [ "$(wc -l <"$TMP/notify.out")" -gt "$lines" ]; then
	tail -n +"$((lines + 1))" "$TMP/notify.out" | sed 's/^/  notify (reload, stop): /'
else
	log "ExecReload and ExecStop: ok, nothing sent to the notify socket"
fi
n2 /usr/bin/veilctl down "$TMP/$ifb.conf" || fail "veilctl down site B"
rm -f "$ETC_CONF"

log "--- dpkg --purge"
echo "+ dpkg --purge veil"
dpkg --purge veil >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log"; fail "dpkg --purge veil"; }
INSTALLED=0
rm -f "$MARK"
[ "$(pkg_status)" = not-installed ] || [ -z "$(pkg_status)" ] || fail "veil is '$(pkg_status)' after purge"
for f in /usr/sbin/veild /usr/bin/veilctl "$UNIT" /usr/share/man/man8/veild.8.gz \
	/usr/share/man/man8/veilctl.8.gz /usr/share/man/man5/veil.conf.5.gz \
	/usr/share/bash-completion/completions/veilctl /usr/share/doc/veil; do
	[ ! -e "$f" ] || fail "$f left after purge"
done
[ "$ETC_EXISTED" = 1 ] || [ ! -e /etc/veil ] || fail "/etc/veil left after purge"
log "package: all passed"
