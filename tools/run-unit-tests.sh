#!/bin/sh
# Run each cmocka binary given on the command line; report a total and fail
# if any of them failed. A sanitizer report fails a test too, even one from a
# child process (the resolver's) whose death the test itself did not see.
set -u
pass=0
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for t in "$@"; do
	# VALGRIND, when set, is the command to run each test under.
	if ${VALGRIND:-} "$t" >"$out" 2>&1; then
		status=0
	else
		status=1
	fi
	cat "$out"
	if [ "$status" -eq 0 ] && grep -q -E "(Address|Leak|UndefinedBehavior|Thread)Sanitizer|runtime error:" "$out"; then
		echo "FAILED: $t: a sanitizer report in its output" >&2
		status=1
	fi
	if [ "$status" -eq 0 ]; then
		pass=$((pass + 1))
	else
		echo "FAILED: $t" >&2
		fail=$((fail + 1))
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
