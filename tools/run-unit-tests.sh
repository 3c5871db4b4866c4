#!/bin/sh
# Run each cmocka binary given on the command line; report a total and fail
# if any of them failed.
set -u
pass=0
fail=0
for t in "$@"; do
	# VALGRIND, when set, is the command to run each test under.
	if ${VALGRIND:-} "$t"; then
		pass=$((pass + 1))
	else
		echo "FAILED: $t" >&2
		fail=$((fail + 1))
	fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
