#!/usr/bin/env bash
# chaos-nop.sh - checks that the chaos build's preemption points
# (common/chaos.h) cost nothing in an ordinary build: builds the library
# twice in the same scratch directory, from the working tree as it is and
# with every CHAOS_POINT(); line blanked (so line numbers stay), and
# compares the object files and the shared library byte for byte, but
# for their debugging information.  Then counts the calls of the points
# in a chaos build.  Not part of CI.
#
# Usage: tools/chaos-nop.sh   (CC and CFLAGS from the environment are
# passed to configure; PLANT_JOBS for make -j, default 2)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${PLANT_JOBS:-2}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chaos-nop.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

git -C "$src" ls-files -z --cached --others --exclude-standard |
	tar -C "$src" --null -T - -cf - >"$tmp/tree.tar"

# build NAME [configure flags]: the library from $tmp/src, in $tmp/build
# (the same paths every time), its objects kept in $tmp/NAME.
build() {
	local name=$1
	shift
	rm -rf "$tmp/build"
	mkdir "$tmp/build"
	(cd "$tmp/build" && ../src/configure -q "$@" &&
		make -j"$jobs" libpolysocket.la) >"$tmp/build.log" 2>&1 || {
		tail -n 20 "$tmp/build.log"
		exit 1
	}
	mkdir "$tmp/$name"
	# The objects, position-independent (.libs) and not, and the
	# shared library.
	(cd "$tmp/build" && find . -name 'libpolysocket_la-*.o' |
		while read -r o; do
			cp "$o" "$tmp/$name/$(echo "${o#./}" | tr / _)"
		done)
	cp -L "$tmp/build/.libs/libpolysocket.so" "$tmp/$name/"
}

mkdir "$tmp/src"
tar -C "$tmp/src" -xf "$tmp/tree.tar"
(cd "$tmp/src" && ./autogen.sh >/dev/null 2>&1)
points=$(grep -c -E '^[[:space:]]*CHAOS_POINT\(\);[[:space:]]*$' \
	"$tmp"/src/common/*.[ch] "$tmp"/src/polypipe/*.[ch] \
	"$tmp"/src/polysocket/*.[ch] "$tmp"/src/polyset/*.[ch] 2>/dev/null |
	awk -F: '{ s += $2 } END { print s }')
echo "chaos-nop: $points CHAOS_POINT(); lines in the library's sources"
if grep -n 'CHAOS_POINT()' "$tmp"/src/{common,polypipe,polysocket,polyset}/*.c |
	grep -v -E ':[[:space:]]*CHAOS_POINT\(\);[[:space:]]*$' |
	grep -v 'define'; then
	echo "chaos-nop: CHAOS_POINT() used other than as a line of its own" \
		"(above): this check cannot blank it"
	exit 1
fi

echo "chaos-nop: building with the points"
build with
echo "chaos-nop: building with the points blanked"
find "$tmp/src" \( -name '*.c' -o -name '*.h' \) -exec sed -i -E \
	's/^[[:space:]]*CHAOS_POINT\(\);[[:space:]]*$//' {} +
build without

# The debugging information differs (a point is a statement with a line
# of its own), and with it the build-id; all else must be the same.
status=0
for f in "$tmp"/with/*; do
	name=$(basename "$f")
	for v in with without; do
		objcopy --strip-debug --remove-section=.note.gnu.build-id \
			"$tmp/$v/$name" "$tmp/$v.stripped"
	done
	if cmp -s "$tmp/with.stripped" "$tmp/without.stripped"; then
		echo "identical but for debug information: $name"
	else
		echo "DIFFERENT: $name"
		status=1
	fi
done

echo "chaos-nop: a chaos build, for comparison: calls of psync_chaos_point"
rm -rf "$tmp/src"
mkdir "$tmp/src"
tar -C "$tmp/src" -xf "$tmp/tree.tar"
(cd "$tmp/src" && ./autogen.sh >/dev/null 2>&1)
build chaos --enable-chaos
for f in "$tmp"/chaos/*.o; do
	n=$(objdump -r "$f" | grep -c 'psync_chaos_point' || true)
	echo "  $(basename "$f"): $n"
done
exit $status
