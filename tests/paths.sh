#!/bin/sh
# make RUNSTATEDIR=... SYSCONFDIR=... LOCALSTATEDIR=... must reach every
# path compiled into veild, veilctl and veil-meshd (include/veil.h).
# Usage: RUNSTATEDIR=... SYSCONFDIR=... LOCALSTATEDIR=... tests/paths.sh BUILD,
# where BUILD holds the three programs built with those same variables (make
# check-paths builds them): each must hold its paths made from them, and none
# of the defaults, among its strings.
set -eu

build=${1:?usage: RUNSTATEDIR=... SYSCONFDIR=... LOCALSTATEDIR=... $0 BUILD}
run=${RUNSTATEDIR:?} etc=${SYSCONFDIR:?} var=${LOCALSTATEDIR:?}
status=0

# want BINARY PATH...: each PATH is among BINARY's strings.
want() {
	bin=$build/$1
	shift
	[ -f "$bin" ] || { echo "paths: no $bin" >&2; status=1; return; }
	for p in "$@"; do
		if ! strings "$bin" | grep -qxF "$p"; then
			echo "paths: $bin does not hold $p" >&2
			status=1
		fi
	done
}

want veild "$run/wireguard"
want veilctl "$run/wireguard" "$run/veil" "$etc/veil" "$var/lib/veil/mesh"
want veil-meshd "$run/wireguard" "$run/veil" "$etc/veil" "$var/lib/veil/mesh"

# None of the defaults is left anywhere, not even in a help text.
for b in veild veilctl veil-meshd; do
	[ -f "$build/$b" ] || continue
	if left=$(strings "$build/$b" | grep -E '/var/run|/etc/veil|/var/lib/veil'); then
		echo "paths: $build/$b still holds a default path: $left" >&2
		status=1
	fi
done

[ "$status" -eq 0 ] && echo "paths: every compiled-in path follows RUNSTATEDIR, SYSCONFDIR and LOCALSTATEDIR"
exit "$status"
