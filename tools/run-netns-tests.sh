#!/bin/sh
# Run every tests/netns/*.sh in turn. They need root (network namespaces).
set -u
cd "$(dirname "$0")/.."
tests=$(ls tests/netns/*.sh 2>/dev/null | grep -v -e "/lib.sh$" -e "-lib.sh$" || true)
if [ -z "$tests" ]; then
	echo "netns: no namespace tests found"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "netns: these tests need root" >&2
	exit 1
fi
tools/install-deps.sh test
# Every veild of the suite (started by a test or by veilctl, which passes its
# environment on) runs with two crypto workers, the threaded path, whatever
# veild's default is on this machine (one less than its CPUs: one on two);
# tests/netns/workers.sh tries one and four.
export VEIL_WORKERS=${VEIL_WORKERS:-2}
pass=0
fail=0
for t in $tests; do
	# NETNS_SKIP: space-separated test names not to run in this pass.
	case " ${NETNS_SKIP:-} " in *" $(basename "$t" .sh) "*) echo "=== $t (skipped in this pass)"; continue ;; esac
	# NETNS_ONLY: space-separated test names, the only ones to run (make check-tsan).
	if [ -n "${NETNS_ONLY:-}" ]; then
		case " $NETNS_ONLY " in *" $(basename "$t" .sh) "*) ;; *) continue ;; esac
	fi
	echo "=== $t"
	start=$(date +%s)
	if timeout 900 bash "$t"; then
		pass=$((pass + 1))
		echo "=== $t passed in $(($(date +%s) - start)) s"
	else
		echo "FAILED: $t (after $(($(date +%s) - start)) s)" >&2
		fail=$((fail + 1))
	fi
done
echo "netns (${BUILD:-build}): $pass passed, $fail failed"
[ "$fail" -eq 0 ]
