#!/bin/sh
# Install exactly the Debian 12 packages veil needs and this machine lacks,
# and say which. Usage: tools/install-deps.sh [--list] [build|unit|demo|test|bench|fuzz|valgrind|lint|deb|all]...
# --list prints the packages the sets name, one a line, and installs nothing.
# "build" is what compiling veild, veilctl and veil-meshd needs, and no more
# (plain make installs it); "unit" adds cmocka for the unit tests; "demo" is
# what make demo runs besides veil (ip, ping); "test" adds what the
# network-namespace tests run (wireguard-go, wg, tshark, iperf3, the
# Prometheus text parser, the man page renderer, ...);
# "fuzz" is clang with its libFuzzer and sanitizer runtimes (make fuzz);
# "lint" is the two static analysers make lint runs;
# "deb" is Debian's packaging tools that make deb runs (with "build" for the
# package's build dependencies).
set -eu

list=0
if [ "${1:-}" = --list ]; then
	list=1
	shift
fi

build="gcc make pkg-config libsodium-dev libssl-dev libuv1-dev libmnl-dev libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev"
want=""
for set in "${@:-build}"; do
	case "$set" in
	build) want="$want $build" ;;
	unit) want="$want libcmocka-dev" ;;
	demo) want="$want iproute2 iputils-ping" ;;
	test) want="$want iproute2 wireguard-go wireguard-tools iperf3 tcpdump tshark iputils-ping jq python3-prometheus-client groff-base man-db etcd-server etcd-client openssl curl" ;;
	bench) want="$want iproute2 wireguard-go wireguard-tools iperf3 iputils-ping etcd-server etcd-client openssl curl jq" ;;
	valgrind) want="$want valgrind" ;;
	lint) want="$want cppcheck clang-tidy" ;;
	deb) want="$want build-essential debhelper dpkg-dev lintian" ;;
	fuzz) want="$want clang libclang-rt-14-dev pkg-config libsodium-dev libssl-dev libjansson-dev" ;;
	all) want="$want $build libcmocka-dev iproute2 wireguard-go wireguard-tools iperf3 tcpdump tshark iputils-ping jq python3-prometheus-client groff-base man-db etcd-server etcd-client openssl clang libclang-rt-14-dev valgrind cppcheck clang-tidy build-essential debhelper dpkg-dev lintian" ;;
	*) echo "install-deps: unknown set '$set' (build, unit, demo, test, bench, fuzz, valgrind, lint, deb, all)" >&2; exit 2 ;;
	esac
done

if [ "$list" = 1 ]; then
	# shellcheck disable=SC2086
	printf '%s\n' $want | sort -u
	exit 0
fi

missing=""
for pkg in $want; do
	case " $missing " in *" $pkg "*) continue ;; esac
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $pkg"
done

[ -n "$missing" ] || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages:$missing" >&2
	echo "install-deps: run as root, or: apt-get install$missing" >&2
	exit 1
fi

echo "install-deps: installing missing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
