#!/usr/bin/env bash
# Malformed control requests, answered as wireguard-go answers them: the same
# bytes go to veild, to Debian's wireguard-go and (when it is there) to the
# current one in ../shared/anchors, and the replies must be the same, byte for
# byte: binary junk in a line (with and without '='), a line of 100 KB, a value
# of 100 KB, lines at either side of wireguard-go's 64 KB scanner limit, and sets
# whose connection ends without the empty line (or without the last '\n'),
# which are applied and answered. Where a request applies something, the
# daemons must hold the same afterwards.
. "$(dirname "$0")/lib.sh"

ANCHOR="$ROOT/../shared/anchors/wireguard-go-0.0.20231211"
setup_hosts
V="uv$RUN" G="ug$RUN" N="un$RUN"
start_daemon "$NS1" veild "$V"
start_daemon "$NS1" wireguard-go "$G"
daemons=("$V" "$G")
declare -A impl=(["$G"]="Debian's wireguard-go ($(wireguard-go --version | sed -n 's/^wireguard-go \(v[^ ]*\).*/\1/p'))")
if [ -x "$ANCHOR" ]; then
	ip netns exec "$NS1" env LOG_LEVEL=verbose WG_PROCESS_FOREGROUND=1 "$ANCHOR" -f "$N" \
		>>"$TMP/$N.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do wg show "$N" >/dev/null 2>&1 && break; sleep 0.1; done
	wg show "$N" >/dev/null 2>&1 || fail "$ANCHOR $N did not come up"
	daemons+=("$N")
	impl["$N"]="wireguard-go 0.0.20231211"
else
	log "no $ANCHOR: comparing with Debian's wireguard-go only"
fi

cat >"$TMP/ask.py" <<'EOF'
import socket, sys

# Each case: a name and the bytes of one connection; the client then closes
# its side and reads the reply to the end.
cases = [
    ("junk line", b"set=1\n\x00\x01\x02junk\xff\n\n"),
    ("junk line with =", b"set=1\nab\x00c=\x01\x02\n\n"),
    ("100 KB line", b"set=1\n" + b"a" * 100000 + b"\n\n"),
    ("100 KB value", b"set=1\nprivate_key=" + b"a" * 100000 + b"\n\n"),
    ("line of 65535", b"set=1\n" + b"a" * 65535 + b"\n\n"),
    ("line of 65536", b"set=1\n" + b"a" * 65536 + b"\n\n"),
    ("line of 5000 with =", b"set=1\nfoo=" + b"a" * 4996 + b"\n\n"),
    ("no empty line", b"set=1\nfwmark=7\nlisten_port=0\n"),
    ("no last newline", b"set=1\nfwmark=9"),
    ("set alone", b"set=1\n"),
    ("error, no empty line", b"set=1\nbogus=1\nfwmark=3\n"),
    ("long line at the end", b"set=1\n" + b"a" * 5000),
    ("get with junk", b"get=1\nx"),
    ("unknown operation", b"hello=1\n\n"),
]

def ask(path, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(5)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        out += b"<no end within 5 s>"
    except OSError as e:
        out += b"<error %d>" % e.errno
    s.close()
    return out

for name, data in cases:
    print("%s\t%r" % (name, ask(sys.argv[1], data)))
EOF

for d in "${daemons[@]}"; do
	n1 python3 "$TMP/ask.py" "/var/run/wireguard/$d.sock" >"$TMP/answers.$d" || fail "asking $d"
	wg showconf "$d" | grep -v -e PrivateKey -e ListenPort >"$TMP/state.$d"
done
log "veild's answers:"
sed 's/^/  /' "$TMP/answers.$V"
for d in "${daemons[@]:1}"; do
	diff -u "$TMP/answers.$d" "$TMP/answers.$V" || fail "veild answers differently from ${impl[$d]} (-)"
	diff -u "$TMP/state.$d" "$TMP/state.$V" || fail "veild holds another configuration than ${impl[$d]} (-)"
	log "the same answers and configuration as ${impl[$d]}"
done
grep -q "^FwMark = 0x9$" "$TMP/state.$V" || fail "the set without its last newline was not applied"
log "uapi-wggo: all passed"
