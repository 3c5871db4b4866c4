#!/usr/bin/env bash
# What each make target installs. Plain make and make demo install what
# building veild, veilctl and veil-meshd (and running the demo) needs, and
# nothing only the tests use: cmocka comes with the unit-test targets. A
# single file (an object, a unit test's binary) installs nothing: only the
# entry points do. The sets are read from the commands make would run
# (make -n, which shows the installs and runs none) and from the demo
# script, then listed by tools/install-deps.sh --list.
#
# No namespace is needed; lib.sh gives log/fail, $ROOT and the cleanup trap.
# shellcheck source=tests/netns/lib.sh
. "$(dirname "$0")/lib.sh"

# sets_of TARGET: the sets make TARGET would hand tools/install-deps.sh.
sets_of() {
	make -C "$ROOT" --no-print-directory -n -B "BUILD=$TMP/build" "$1" 2>/dev/null |
		sed -n 's|^tools/install-deps.sh \(.*\)$|\1|p' | tr ' ' '\n' | sed '/^$/d' | sort -u
}
# packages SET...: what those sets install.
packages() {
	"$ROOT/tools/install-deps.sh" --list "$@" || fail "install-deps.sh --list $*"
}

test_only="libcmocka-dev valgrind wireguard-go wireguard-tools tshark"
all_sets=$(sets_of all)
[ -n "$all_sets" ] || fail "make -n all runs no tools/install-deps.sh"
demo_sets=$(sed -n 's|.*install-deps.sh" \(.*\)$|\1|p' "$ROOT/tools/demo.sh")
[ -n "$demo_sets" ] || fail "tools/demo.sh runs no install-deps.sh"
# shellcheck disable=SC2086 # the sets are words
for what in "make:$(packages $all_sets)" "make demo:$(packages $all_sets $demo_sets)"; do
	for pkg in $test_only; do
		grep -qxF "$pkg" <<<"${what#*:}" && fail "${what%%:*} installs $pkg, which only tests use"
	done
	log "${what%%:*} installs: $(tr '\n' ' ' <<<"${what#*:}")"
done
for file in "$TMP/build/veild.o" "$TMP/build/ctl/conf.o" "$TMP/build/tests/test_conf"; do
	[ -z "$(sets_of "$file")" ] || fail "make $file installs: $(sets_of "$file" | tr '\n' ' ')"
done
unit_sets=$(sets_of check-unit)
# shellcheck disable=SC2086
packages $unit_sets | qgrep -xF libcmocka-dev || fail "the unit tests' build does not install cmocka ($unit_sets)"
# shellcheck disable=SC2086
log "the unit tests add: $(comm -13 <(packages $all_sets) <(packages $unit_sets) | tr '\n' ' ')"
log "deps: pass"
