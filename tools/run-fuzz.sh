#!/bin/sh
# Run libFuzzer targets. Usage: tools/run-fuzz.sh fuzz|check SECONDS BINARY...
# Each binary build/fuzz/fuzz_NAME takes its seeds from tests/fuzz/corpus/NAME.
#   fuzz   fuzzes for SECONDS on build/fuzz/corpus/NAME, a copy of the seeds
#          that keeps growing across runs; the committed corpus never grows.
#   check  executes every committed seed once, then fuzzes for SECONDS on a
#          fresh scratch copy; fails on any crash, leak or timeout.
# Crashes go to build/fuzz/artifacts/NAME-*; full logs to build/fuzz/logs/.
set -eu

mode=$1 seconds=$2
shift 2
mkdir -p build/fuzz/artifacts build/fuzz/logs

# Inputs may be longer than UAPI_LINE_MAX, so the overlong-line path is reachable.
max_len() {
	case "$1" in
	uapi) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

# libFuzzer's last "cov:" line and its executed-units count, for one summary line.
summary() {
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$2" | tail -n 1)
	cov=$(grep -E '^#[0-9]+' "$2" | tail -n 1 | sed -n 's/.*\(cov: [0-9]*\).*\(ft: [0-9]*\).*\(corp: [^ ]*\).*/\1 \2 \3/p')
	echo "fuzz: $1: ${runs:-?} runs, $cov"
}

run() {
	name=$1 log=$2
	shift 2
	if ! "$@" -max_len="$(max_len "$name")" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="build/fuzz/artifacts/$name-" >"$log" 2>&1; then
		tail -n 60 "$log" >&2
		echo "fuzz: $name FAILED (log: $log, inputs: build/fuzz/artifacts/$name-*)" >&2
		exit 1
	fi
}

for bin in "$@"; do
	name=$(basename "$bin")
	name=${name#fuzz_}
	seeds=tests/fuzz/corpus/$name
	case "$mode" in
	fuzz)
		work=build/fuzz/corpus/$name
		mkdir -p "$work"
		cp "$seeds"/* "$work"/
		echo "  FUZZ    $name (${seconds}s)"
		run "$name" "build/fuzz/logs/$name.log" "$bin" -max_total_time="$seconds" "$work"
		summary "$name" "build/fuzz/logs/$name.log"
		;;
	check)
		run "$name" "build/fuzz/logs/$name-seeds.log" "$bin" -runs=0 "$seeds"
		summary "$name seeds" "build/fuzz/logs/$name-seeds.log"
		work=build/fuzz/check/$name
		rm -rf "$work"
		mkdir -p "$work"
		cp "$seeds"/* "$work"/
		run "$name" "build/fuzz/logs/$name-check.log" "$bin" -max_total_time="$seconds" "$work"
		summary "$name ${seconds}s" "build/fuzz/logs/$name-check.log"
		;;
	*)
		echo "run-fuzz: unknown mode '$mode' (fuzz, check)" >&2
		exit 2
		;;
	esac
done
