#!/usr/bin/env bash
# DNS = through resolvconf, as wg-quick does it: `up` feeds the nameserver and
# search lines to `resolvconf -a tun.IF -m 0 -x`, `down` calls
# `resolvconf -d tun.IF -m 0 -x`. Debian's resolvconf would rewrite this
# machine's resolv.conf, so a recording stand-in takes its place, and only in
# a private mount namespace (an overlay on /usr/sbin that nothing else sees).
# Without any resolvconf, `up` warns and still succeeds.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
IF="dn$RUN"
STATE_FILES+=("/var/run/veil/$IF.state")

setup_hosts
genkeys
cat >"$TMP/$IF.conf" <<CONF
[Interface]
PrivateKeyFile = $TMP/k1
Address = 192.0.2.1/24
DNS = 192.0.2.53, 2001:db8::53, example.test

[Peer]
PublicKey = $(cat "$TMP/p2")
AllowedIPs = 192.0.2.2/32
CONF

log "--- without resolvconf: a warning, and up goes on"
if [ -e /usr/sbin/resolvconf ] || [ -e /sbin/resolvconf ] || [ -e /usr/bin/resolvconf ] || [ -e /bin/resolvconf ]; then
	log "this machine has a resolvconf: the warning case is not run here"
else
	n1 "$VEILCTL" up "$TMP/$IF.conf" 2>"$TMP/up.err" || fail "up without resolvconf: $(cat "$TMP/up.err")"
	qgrep "warning: .*DNS is not applied: resolvconf is not installed" <"$TMP/up.err" ||
		fail "no warning: $(cat "$TMP/up.err")"
	n1 "$VEILCTL" down "$TMP/$IF.conf" || fail "down"
fi

log "--- with a recording resolvconf"
mkdir -p "$TMP/fake"
cat >"$TMP/fake/resolvconf" <<FAKE
#!/bin/sh
{ echo "args: \$*"; cat; echo "end"; } >>"$TMP/resolvconf.log"
FAKE
chmod 755 "$TMP/fake/resolvconf"
unshare --mount --propagation private bash -c '
	set -e
	mount -t overlay overlay -o "lowerdir=$1/fake:/usr/sbin" /usr/sbin
	ip netns exec "$2" "$3" up "$1/$4.conf"
	ip netns exec "$2" "$3" down "$1/$4.conf"
' _ "$TMP" "$NS1" "$VEILCTL" "$IF" || fail "up/down with resolvconf"
cat >"$TMP/want" <<WANT
args: -a tun.$IF -m 0 -x
nameserver 192.0.2.53
nameserver 2001:db8::53
search example.test
end
args: -d tun.$IF -m 0 -x
end
WANT
diff -u "$TMP/want" "$TMP/resolvconf.log" || fail "resolvconf was not called as wg-quick calls it"
log "veilctl DNS: all passed"
