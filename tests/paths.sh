#!/bin/sh
# make RUNSTATEDIR=... SYSCONFDIR=... LOCALSTATEDIR=... must reach every
# path compiled into veild, veilctl and veil-meshd (include/veil.h): build
# once with paths of our own in build/paths and look for them, and for
# none of the defaults, in the binaries' strings. Run by make check-paths.
set -eu
cd "$(dirname "$0")/.."

build=build/paths
run=/nonexistent/veil-run
etc=/nonexistent/veil-etc
var=/nonexistent/veil-var

echo "paths: make BUILD=$build RUNSTATEDIR=$run SYSCONFDIR=$etc LOCALSTATEDIR=$var"
make -s --no-print-directory BUILD=$build RUNSTATEDIR=$run SYSCONFDIR=$etc LOCALSTATEDIR=$var \
	$build/veild $build/veilctl $build/veil-meshd >/dev/null

status=0
# want BINARY PATH...: each PATH is among BINARY's strings.
want() {
	bin=$build/$1
	shift
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
	if left=$(strings "$build/$b" | grep -E '/var/run|/etc/veil|/var/lib/veil'); then
		echo "paths: $build/$b still holds a default path: $left" >&2
		status=1
	fi
done

[ "$status" -eq 0 ] && echo "paths: every compiled-in path follows the make variables"
exit "$status"
