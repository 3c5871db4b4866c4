#!/usr/bin/env bash
# An independent check of our key schedule: tshark's WireGuard dissector, given
# the keys veild appends to VEIL_KEYLOG_FILE, must find MAC1 valid, complete
# the handshake (wg.handshake_ok) and decrypt the ICMP packets in a capture.
# The file holds the private key: veild makes it 0600 whatever the umask, and
# refuses a symbolic link, a file of another owner, one that group or others
# may read, and one with a second hard link.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
IFA="ka$RUN"
IFB="kb$RUN"
# An operator's usual umask: the key log must still be 0600.
umask 022
DAEMON_ENV="VEIL_KEYLOG_FILE=$TMP/keylog" start_daemon "$NS1" veild "$IFA"
umask 077
start_daemon "$NS2" veild "$IFB"
grep -q "WARNING: writing session keys and this interface's private key to .*impersonate" "$TMP/$IFA.log" ||
	fail "no loud warning that the key log allows impersonation"
[ "$(stat -c '%a %u' "$TMP/keylog")" = "600 0" ] || fail "key log is $(stat -c '%a %u' "$TMP/keylog"), not 600 root's"
tunnel_pair -4 "$IFA" "$IFB" 51001 51002 198.18.0.1 198.18.0.2

n2 timeout 30 tcpdump -U -n -i "w$RUN" -w "$TMP/cap.pcap" -c 12 udp >"$TMP/tcpdump.log" 2>&1 &
TCPDUMP=$!
PIDS+=($TCPDUMP)
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.log" && break; sleep 0.1; done
ping_ok "$NS1" 192.0.2.2 5
wait $TCPDUMP || true

[ "$(grep -c LOCAL_EPHEMERAL_PRIVATE_KEY "$TMP/keylog")" -ge 1 ] || fail "key log is empty"
tshark_fields() {
	tshark -r "$TMP/cap.pcap" -o "wg.keylog_file:$TMP/keylog" -o wg.dissect_packet:TRUE "$@" 2>/dev/null
}
tshark_fields -T fields -e wg.type -e wg.handshake_ok -e wg.receiver_pubkey -e wg.static -e icmp.type \
	-Y wg >"$TMP/fields"
cat "$TMP/fields"
# Initiation (type 1): MAC1 identified the receiver's public key and the static decrypted.
awk -F'\t' '$1 == 1 && $3 != "" && $4 != ""' "$TMP/fields" | qgrep . ||
	fail "tshark did not validate MAC1 / decrypt the initiation"
grep -q "$(cat "$TMP/p1")" "$TMP/fields" || fail "decrypted static key is not A's public key"
# Response (type 2): the dissector derived the same keys (handshake_ok = 1).
awk -F'\t' '$1 == 2 && $2 == 1' "$TMP/fields" | qgrep . || fail "tshark: response handshake_ok != 1"
# Transport (type 4): inner ICMP echo request (8) and reply (0) decrypted.
awk -F'\t' '$1 == 4 && $5 == 8' "$TMP/fields" | qgrep . || fail "tshark did not decrypt an echo request"
awk -F'\t' '$1 == 4 && $5 == 0' "$TMP/fields" | qgrep . || fail "tshark did not decrypt an echo reply"
log "keylog: tshark validated MAC1, the handshake and decrypted transport"

log "--- key log files veild must refuse"
: >"$TMP/target"
ln -s "$TMP/target" "$TMP/k-symlink"
: >"$TMP/k-foreign"
chown nobody "$TMP/k-foreign"
: >"$TMP/k-0644"
chmod 644 "$TMP/k-0644"
: >"$TMP/k-linked"
ln "$TMP/k-linked" "$TMP/k-second"
: >"$TMP/k-plain" # root's, 0600, one link: accepted, for contrast
n=0
for kind in "symlink:symbolic link" "foreign:belongs to uid $(id -u nobody)" \
	"0644:group or others may use it" "linked:2 hard links" "plain:"; do
	f="$TMP/k-${kind%%:*}" why=${kind#*:} ifr="kr$n$RUN"
	n=$((n + 1))
	umask 022
	DAEMON_ENV="VEIL_KEYLOG_FILE=$f" start_daemon "$NS1" veild "$ifr"
	umask 077
	if [ -n "$why" ]; then
		grep -q "VEIL_KEYLOG_FILE $f refused, no key log: .*$why" "$TMP/$ifr.log" ||
			fail "veild did not refuse the key log $f ($why)"
		grep -q "WARNING: writing session keys" "$TMP/$ifr.log" && fail "veild writes keys to $f"
	else
		grep -q "WARNING: writing session keys" "$TMP/$ifr.log" || fail "veild refused $f"
	fi
	kill "${PIDS[-1]}"
done
[ ! -s "$TMP/target" ] || fail "the symbolic link's target was written"
log "keylog: symlink, foreign owner, mode 0644 and a second hard link refused"
