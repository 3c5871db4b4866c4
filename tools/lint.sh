#!/bin/sh
# Static analysis: cppcheck, then clang-tidy (checks in .clang-tidy), over
# the daemon, the core, veilctl, the test tools and the fuzz targets. Any finding
# fails. Usage: tools/lint.sh [file.c ...] (default: all of them).
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh lint

PKG_CONFIG=${PKG_CONFIG:-pkg-config}
if [ $# -gt 0 ]; then
	files="$*"
else
	files=$(ls src/*.c src/core/*.c tools/veilctl/*.c tools/mesh/*.c tests/tools/*.c tests/fuzz/*.c)
fi
status=0

# variableScope: the house style (kernel style) declares variables at the
# top of the block, which is exactly what this check asks to move.
# missingIncludeSystem: cppcheck does not read the system headers, nor
# does it need to.
# shellcheck disable=SC2086
cppcheck --enable=warning,style,performance,portability --std=c11 \
	--inline-suppr --error-exitcode=1 --quiet -D__x86_64__ -Isrc -Iinclude -Itools/veilctl -Itools/mesh \
	--suppress=variableScope --suppress=missingIncludeSystem \
	--template='{file}:{line}: {severity}: {message} [{id}]' $files || status=1

# clang-tidy sees each file with the flags of the Makefile build, two
# processes at a time (it is the slow half). WarningsAsErrors in
# .clang-tidy turns any finding into a non-zero exit, which xargs passes on.
TIDY_FLAGS="-std=c11 -D_GNU_SOURCE -Isrc -Iinclude -Itools/veilctl -Itools/mesh $($PKG_CONFIG --cflags libsodium libuv libmnl jansson)"
export TIDY_FLAGS
# shellcheck disable=SC2016,SC2086
printf '%s\n' $files | xargs -P "$(nproc)" -n 4 sh -c \
	'clang-tidy --quiet "$@" -- $TIDY_FLAGS 2>/dev/null' clang-tidy || status=1

if [ "$status" -ne 0 ]; then
	echo "lint: findings above" >&2
	exit 1
fi
echo "lint: clean"
