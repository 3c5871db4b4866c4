#!/usr/bin/env bash
# The control socket's bounds. A client that pipelines get=1 requests without
# reading a single reply must not grow veild's memory: veild writes one reply
# at a time and reads no more from that connection meanwhile, so the kernel's
# socket buffers stop the client, and other clients are still served.
. "$(dirname "$0")/lib.sh"

setup_hosts
genkeys
A="ca$RUN"
start_daemon "$NS1" veild "$A"
APID=${PIDS[-1]}
# Fifty peers make each reply about 15 KB.
{
	printf '[Interface]\nPrivateKey = %s\n\n' "$(cat "$TMP/k1")"
	"$ROOT/$BUILD/tools/genpeers" 50
} >"$TMP/$A.conf"
run wg setconf "$A" "$TMP/$A.conf"

log "--- a client pipelines 4,000 get=1 and reads nothing"
cat >"$TMP/pipeline.py" <<'EOF'
import socket, sys, time

path, pid, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

def rss_kb():
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendall(b"get=1\n\n")
reply = b""
while not reply.endswith(b"\n\n"):
    reply += s.recv(65536)
time.sleep(0.5)
before = rss_kb()
s.setblocking(False)
# In writes of 585 requests (4 KB): one request a write, the kernel's per-write
# accounting would stop the client after a few hundred.
chunk = b"get=1\n\n" * 585
sent = 0
try:
    while sent < count:
        n = s.send(chunk[: 7 * min(585, count - sent)])
        sent += n // 7
        if n % 7:
            s.setblocking(True)
            s.send(chunk[n % 7 : 7])
            s.setblocking(False)
            sent += 1
except BlockingIOError:
    pass
time.sleep(2)
held = rss_kb()
print("sent=%d reply=%d before=%d held=%d" % (sent, len(reply), before, held), flush=True)
# Held open (not read) until the test closes standard input.
sys.stdin.read()
EOF
coproc PIPELINE { n1 python3 "$TMP/pipeline.py" "/var/run/wireguard/$A.sock" "$APID" 4000; }
PIDS+=("$PIPELINE_PID")
read -r -t 30 line <&"${PIPELINE[0]}" || fail "the pipelining client said nothing"
echo "$line"
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$line"; }
sent=$(field sent) reply=$(field reply) before=$(field before) held=$(field held)
# A second client is served while the first one holds its replies.
timeout 10 wg show "$A" peers | wc -l | qgrep -x 50 || fail "another client was not served meanwhile"
eval "exec ${PIPELINE[1]}>&-" # the client sees the end of its input and leaves
wait "$PIPELINE_PID" 2>/dev/null || true
grown=$((held - before))
log "sent $sent requests of 7 bytes; each reply $reply bytes; veild's anonymous memory grew by $grown kB"
[ "$sent" -ge 1000 ] || fail "the client could send only $sent requests"
[ "$grown" -le 4096 ] ||
	fail "veild grew by $grown kB for $sent unread replies of $reply bytes (about $((sent * reply / 1024)) kB if it kept them all)"
kill -0 "$APID" || fail "veild died"
run wg show "$A" listen-port >/dev/null || fail "veild does not answer after the client left"
log "control: all passed"
