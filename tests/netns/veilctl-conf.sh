#!/usr/bin/env bash
# Where keys come from, and broken files. An interface comes up with its
# private key from a 0600 key file, from a systemd credentials directory and
# from a command (as a vault client would supply it), and with a peer's
# pre-shared key from a file; a 0644 key file is refused; SaveConfig writes
# the running peers back at down, with a cipher set while running. Then one broken
# file per error class: each gives its file:line:key message, a non-zero exit,
# and changes nothing: no interface, no state, and the interface already
# running keeps its configuration.
. "$(dirname "$0")/lib.sh"

VEILCTL="$ROOT/$BUILD/veilctl"
[ -x "$VEILCTL" ] || fail "missing $VEILCTL (make)"
ifk="ck$RUN"
STATE_FILES+=("/var/run/veil/$ifk.state")

setup_hosts
umask 077
"$VEILCTL" genkey >"$TMP/k"
pub=$("$VEILCTL" pubkey <"$TMP/k")
"$VEILCTL" genkey >"$TMP/peer.key"
peer=$("$VEILCTL" pubkey <"$TMP/peer.key")
"$VEILCTL" genpsk >"$TMP/psk"

# conf_with LINE: a file for $ifk whose private key comes from LINE.
conf_with() {
	cat >"$TMP/$ifk.conf" <<EOF
[Interface]
$1
ListenPort = 51830
Address = 198.19.5.1/24

[Peer]
PublicKey = $peer
PresharedKeyFile = $TMP/psk
AllowedIPs = 198.19.5.2/32
Endpoint = 198.18.0.2:51830
EOF
}

# up_with WHAT: up, check the keys the daemon holds, down.
up_with() {
	n1 "$VEILCTL" up "$TMP/$ifk.conf" || fail "veilctl up with $1"
	[ "$(wg show "$ifk" public-key)" = "$pub" ] || fail "$1: the daemon has another private key"
	[ "$(wg show "$ifk" preshared-keys | cut -f2)" = "$(cat "$TMP/psk")" ] ||
		fail "$1: the pre-shared key from its file did not arrive"
	n1 "$VEILCTL" down "$TMP/$ifk.conf" || fail "veilctl down after $1"
	log "private key from $1: ok"
}

# nothing_changed: no daemon, no state for $ifk.
nothing_changed() {
	[ ! -e "/var/run/wireguard/$ifk.sock" ] || fail "$1: a daemon was started"
	[ ! -e "/var/run/veil/$ifk.state" ] || fail "$1: a state file was written"
	n1 ip link show "$ifk" >/dev/null 2>&1 && fail "$1: the interface exists"
	return 0
}

log "--- key sources"
cp "$TMP/k" "$TMP/key.file"
chmod 600 "$TMP/key.file"
conf_with "PrivateKeyFile = $TMP/key.file"
up_with "a 0600 key file"

mkdir -p "$TMP/creds"
cp "$TMP/k" "$TMP/creds/veil-key"
conf_with "PrivateKeyCredential = veil-key"
CREDENTIALS_DIRECTORY="$TMP/creds" up_with "a credentials directory"

conf_with "PrivateKeyCommand = cat $TMP/k"
up_with "a command"

log "--- SaveConfig: down writes the running peers back"
conf_with "PrivateKeyFile = $TMP/key.file
SaveConfig = true"
n1 "$VEILCTL" up "$TMP/$ifk.conf" || fail "veilctl up with SaveConfig"
"$VEILCTL" genkey >"$TMP/new.key"
newpeer=$("$VEILCTL" pubkey <"$TMP/new.key")
run "$VEILCTL" set "$ifk" peer "$newpeer" allowed-ips 198.19.5.9/32 endpoint 198.18.0.9:51839 cipher aes256gcm
n1 "$VEILCTL" down "$TMP/$ifk.conf" || fail "veilctl down with SaveConfig"
grep -q "^PublicKey = $newpeer" "$TMP/$ifk.conf" || fail "SaveConfig did not save the added peer"
grep -q "^Endpoint = 198.18.0.9:51839" "$TMP/$ifk.conf" || fail "SaveConfig lost the added peer's endpoint"
grep -q "^Cipher = aes256gcm" "$TMP/$ifk.conf" || fail "SaveConfig lost the cipher set while running"
grep -q "^PrivateKeyFile = $TMP/key.file" "$TMP/$ifk.conf" || fail "SaveConfig changed the [Interface] section"
grep -q "^PresharedKeyFile = $TMP/psk" "$TMP/$ifk.conf" || fail "SaveConfig inlined a pre-shared key from a file"
grep -q "$(cat "$TMP/psk")" "$TMP/$ifk.conf" && fail "SaveConfig wrote the pre-shared key itself"
[ "$(stat -c %a "$TMP/$ifk.conf")" = 600 ] || fail "SaveConfig changed the file's mode"
n1 "$VEILCTL" up "$TMP/$ifk.conf" || fail "veilctl up of the saved file"
wg show "$ifk" peers | qgrep "$newpeer" || fail "the saved peer did not come back"
[ "$("$VEILCTL" show "$ifk" --json | jq -r ".peers[] | select(.public_key == \"$newpeer\") | .cipher")" = aes256gcm ] ||
	fail "the saved peer came back without its cipher"
n1 "$VEILCTL" down "$TMP/$ifk.conf" || fail "veilctl down of the saved file"
log "SaveConfig: ok"

log "--- SaveConfig writes the private key through no file it did not make"
# A file holding the key inline, root's with group nogroup (mode 0600; another
# owner would be refused, as for a key file): the saved file keeps that owner,
# group and mode. A stale world-readable .new beside it, then a symbolic link
# named .new, must neither be used nor followed.
conf_with "PrivateKey = $(cat "$TMP/k")
SaveConfig = true"
chown root:nogroup "$TMP/$ifk.conf"
for planted in file symlink; do
	rm -f "$TMP/$ifk.conf.new" "$TMP/elsewhere"
	if [ "$planted" = file ]; then
		(umask 022 && echo planted >"$TMP/$ifk.conf.new")
	else
		ln -s "$TMP/elsewhere" "$TMP/$ifk.conf.new"
	fi
	n1 "$VEILCTL" up "$TMP/$ifk.conf" || fail "veilctl up (planted $planted)"
	run "$VEILCTL" set "$ifk" peer "$newpeer" allowed-ips 198.19.5.9/32
	n1 "$VEILCTL" down "$TMP/$ifk.conf" || fail "veilctl down (planted $planted)"
	if [ ! -f "$TMP/$ifk.conf" ] || [ -L "$TMP/$ifk.conf" ]; then fail "the saved file is not a regular file"; fi
	grep -q "^PublicKey = $newpeer" "$TMP/$ifk.conf" || fail "SaveConfig did not save (planted $planted)"
	[ "$(stat -c '%a %U:%G' "$TMP/$ifk.conf")" = "600 root:nogroup" ] ||
		fail "planted $planted: the saved file is $(stat -c '%a %U:%G' "$TMP/$ifk.conf"), not 600 root:nogroup"
	if [ "$planted" = file ]; then
		[ "$(cat "$TMP/$ifk.conf.new")" = planted ] || fail "SaveConfig wrote into the stale .new"
	else
		[ -L "$TMP/$ifk.conf.new" ] || fail "the planted symbolic link is gone"
		[ ! -e "$TMP/elsewhere" ] || fail "SaveConfig wrote the private key through a symbolic link"
	fi
	leftover=$(find "$TMP" -maxdepth 1 -name "$ifk.conf.*" ! -name "$ifk.conf.new")
	[ -z "$leftover" ] || fail "SaveConfig left $leftover"
done
rm -f "$TMP/$ifk.conf.new"
log "SaveConfig with a planted .new file and symbolic link: ok"

chmod 644 "$TMP/key.file"
conf_with "PrivateKeyFile = $TMP/key.file"
out=$(n1 "$VEILCTL" up "$TMP/$ifk.conf" 2>&1) && fail "a 0644 key file was accepted"
echo "$out" | qgrep "$ifk.conf:2: PrivateKeyFile: .*readable by group or others" ||
	fail "0644 key file: $out"
nothing_changed "a 0644 key file"
echo "$out" | qgrep -- "$(cat "$TMP/k")" && fail "the key appears in the message"
log "0644 key file refused: $out"

log "--- broken files: file:line:key, non-zero exit, nothing changed"
# Another interface stays up throughout; broken files must not touch it.
ifr="cr$RUN"
STATE_FILES+=("/var/run/veil/$ifr.state")
cat >"$TMP/$ifr.conf" <<EOF
[Interface]
PrivateKeyFile = $TMP/key.file
ListenPort = 51831
Address = 198.19.6.1/24
EOF
chmod 600 "$TMP/key.file"
n1 "$VEILCTL" up "$TMP/$ifr.conf" || fail "veilctl up of the bystander"
wg showconf "$ifr" >"$TMP/bystander.before"

# bad LINE_NO KEY TEXT...: a file from TEXT must fail at LINE_NO naming KEY.
bad() {
	local line=$1 key=$2 out
	shift 2
	printf '%s\n' "$@" >"$TMP/$ifk.conf"
	out=$(n1 "$VEILCTL" up "$TMP/$ifk.conf" 2>&1) && fail "accepted: $*"
	echo "$out" | qgrep "^veilctl: $TMP/$ifk.conf:$line: $key" ||
		fail "expected '$ifk.conf:$line: $key', got: $out"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "more than one line: $out"
	nothing_changed "$key"
	log "refused: $out"
}
iface="[Interface]"
pk="PrivateKeyFile = $TMP/key.file"
bad 2 "Color" "$iface" "Color = blue"
bad 1 "ListenPort" "ListenPort = 1" "$iface" "$pk"
bad 3 "\\[Interface\\]" "$iface" "$pk" "$iface"
bad 2 "ListenPort" "$iface" "ListenPort = 65536" "$pk"
bad 3 "Address" "$iface" "$pk" "Address = 198.19.7.1/33"
bad 4 "PublicKey" "$iface" "$pk" "[Peer]" "PublicKey = not-a-key"
bad 5 "AllowedIPs" "$iface" "$pk" "[Peer]" "PublicKey = $peer" "AllowedIPs = 10.0.0.0/8, 300.1.1.1/32"
bad 5 "Endpoint" "$iface" "$pk" "[Peer]" "PublicKey = $peer" "Endpoint = 198.18.0.2"
bad 3 "\\[Peer\\]" "$iface" "$pk" "[Peer]" "AllowedIPs = 10.0.0.0/8"
bad 6 "PublicKey" "$iface" "$pk" "[Peer]" "PublicKey = $peer" "[Peer]" "PublicKey = $peer"
bad 5 "PersistentKeepalive" "$iface" "$pk" "[Peer]" "PublicKey = $peer" "PersistentKeepalive = often"
bad 2 "PrivateKey" "$iface" "PrivateKey = c2VjcmV0" "ListenPort = 1"
bad 3 "FwMark" "$iface" "$pk" "FwMark = 0xfffffffff"
bad 3 "MTU" "$iface" "$pk" "MTU = 20"
bad 3 "MTU: 9500 is above 9280, the longest packet veild carries" "$iface" "$pk" "MTU = 9500"
bad 2 "MTU: 1200 is below 1280, the least IPv6 takes, and Address on line 4 is IPv6" \
	"$iface" "MTU = 1200" "$pk" "Address = fd00:5::1/64"

log "--- mistakes that parse: one line naming the file, the line and the other place"
"$VEILCTL" genkey >"$TMP/other.key"
other=$("$VEILCTL" pubkey <"$TMP/other.key")
bad 8 "AllowedIPs: \"198.19.7.0/24\" is also under the \\[Peer\\] on line 3 (198.19.7.0/24)" "$iface" "$pk" \
	"[Peer]" "PublicKey = $peer" "AllowedIPs = 198.19.7.0/24" "[Peer]" "PublicKey = $other" \
	"AllowedIPs = 198.19.7.0/24"
bad 3 "\\[Peer\\]: its PublicKey is this interface's own (from PrivateKeyFile on line 2)" "$iface" "$pk" \
	"[Peer]" "PublicKey = $pub" "AllowedIPs = 198.19.7.0/24"
bad 15 "Advertise: \"198.19.7.0/24\" overlaps AllowedIPs 198.19.0.0/16 of the \\[Peer\\] on line 3" \
	"$iface" "$pk" "[Peer]" "PublicKey = $peer" "AllowedIPs = 198.19.0.0/16" "[Mesh]" \
	"Registry = https://198.18.0.9:2379" "RegistryCA = /x" "RegistryCert = /x" "RegistryKey = /x" \
	"RegistryUser = u" "RegistryPasswordFile = /x" "Network = n" "Node = a" "Advertise = 198.19.7.0/24"
# A key inline in a file others may read, as a 0644 key file is refused above.
printf '%s\n' "$iface" "PrivateKey = $(cat "$TMP/k")" >"$TMP/$ifk.conf"
chmod 644 "$TMP/$ifk.conf"
out=$(n1 "$VEILCTL" up "$TMP/$ifk.conf" 2>&1) && fail "a key inline in a 0644 file was accepted"
echo "$out" | qgrep "^veilctl: $TMP/$ifk.conf:2: PrivateKey: the key is in .*readable by group or others (mode 0644" ||
	fail "0644 file with a key: $out"
echo "$out" | qgrep -- "$(cat "$TMP/k")" && fail "the key appears in the message"
nothing_changed "a key inline in a 0644 file"
log "refused: $out"
wg showconf "$ifr" >"$TMP/bystander.after"
diff -u "$TMP/bystander.before" "$TMP/bystander.after" || fail "a broken file changed the running interface"
out=$(n1 "$VEILCTL" up "$TMP/absent.conf" 2>&1) && fail "a missing file was accepted"
echo "$out" | qgrep "absent.conf" || fail "missing file: $out"
n1 "$VEILCTL" down "$TMP/$ifr.conf" || fail "veilctl down of the bystander"
log "veilctl keys and broken files: all passed"
