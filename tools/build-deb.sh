#!/bin/sh
# Build the Debian package veil with Debian's own tools (make deb).
#
# The package is built from a copy of this tree in build/deb/src: the files
# git tracks, as they are now in the work tree, and new files not yet
# committed (never build products or ignored files), with packaging/debian
# as its debian/. dpkg-buildpackage leaves the .deb in build/deb/, and
# lintian checks it: any error (E:) fails the build. The last line printed
# is the .deb's path.
#
# In a git checkout the version is the changelog's with the commit added,
# so that each commit's package upgrades the last: 0.1.0~git53.5141675
# before the tag v0.1.0 exists (the release will upgrade it), 0.1.0+git60.*
# after it; the tagged commit itself is plain 0.1.0. JOBS (default 2) is the
# build's parallelism.
set -eu

cd "$(dirname "$0")/.."
OUT=build/deb
SRC=$OUT/src

tools/install-deps.sh build deb

rm -rf "$OUT"
mkdir -p "$SRC"

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# A tracked file deleted in the work tree is left out, as it would be
	# from the next commit.
	git ls-files --cached --others --exclude-standard | sort -u |
		while IFS= read -r f; do
			if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi
		done >"$OUT/files"
	tar -cf - --no-recursion --verbatim-files-from -T "$OUT/files" | tar -xf - -C "$SRC"
else
	# An exported tree: everything but build products.
	tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C "$SRC"
fi
rm -rf "$SRC/debian"
cp -R packaging/debian "$SRC/debian"

base=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
dirty=""
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	[ -z "$(git status --porcelain)" ] || dirty="    With changes not yet committed.\n"
fi
if git rev-parse --verify -q HEAD >/dev/null 2>&1 &&
	{ [ -n "$dirty" ] || [ "$(git rev-parse -q --verify "refs/tags/v$base^{commit}")" != "$(git rev-parse HEAD)" ]; }; then
	sep="~"
	if git rev-parse -q --verify "refs/tags/v$base" >/dev/null; then sep="+"; fi
	count=$(git rev-list --count HEAD)
	hash=$(git rev-parse --short=7 HEAD)
	maint=$(sed -n 's/^Maintainer: //p' packaging/debian/control)
	{
		printf 'veil (%s%sgit%s.%s) UNRELEASED; urgency=medium\n\n' "$base" "$sep" "$count" "$hash"
		printf '  * Snapshot of commit %s, built by tools/build-deb.sh.\n%b\n' "$hash" "$dirty"
		printf ' -- %s  %s\n\n' "$maint" "$(git log -1 --format=%aD HEAD)"
		cat packaging/debian/changelog
	} >"$SRC/debian/changelog"
fi

version=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$OUT/veil_${version}_${arch}.deb"

echo "build-deb: building veil $version for $arch in $SRC (log: $OUT/build.log)"
if ! (cd "$SRC" && dpkg-buildpackage -us -uc -b -j"${JOBS:-2}") >"$OUT/build.log" 2>&1; then
	tail -n 40 "$OUT/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed; the whole log is $OUT/build.log" >&2
	exit 1
fi
[ -f "$deb" ] || { echo "build-deb: dpkg-buildpackage made no $deb" >&2; exit 1; }

# lintian fails by itself on an error (its default --fail-on); the grep
# holds that line should the default ever change.
echo "build-deb: lintian $deb"
status=0
lintian "$deb" >"$OUT/lintian.log" 2>&1 || status=$?
cat "$OUT/lintian.log"
if [ "$status" -ne 0 ] || grep -q '^E: ' "$OUT/lintian.log"; then
	echo "build-deb: lintian reports errors (or failed), exit status $status" >&2
	exit 1
fi
echo "build-deb: lintian: $(grep -c '^E: ' "$OUT/lintian.log") errors, $(grep -c '^W: ' "$OUT/lintian.log") warnings"
echo "$(pwd)/$deb"
