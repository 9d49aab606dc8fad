#!/bin/sh
# The shared library exports exactly the functions the public headers
# declare: nothing missing, nothing extra.  The library is the one built
# here, or the one named as the first argument (an installed one).
set -eu
: "${srcdir:=.}"
lib=${1:-.libs/libpolysocket.so}
if [ ! -f "$lib" ]; then
	echo "# $lib not built (--disable-shared?): skipped"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$srcdir/tests/api-names.sh" "$srcdir"/include/polysocket/*.h |
	sort >"$tmp/declared"
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' |
	sort >"$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
	echo "FAIL: exports differ from the headers (< declared, > exported):"
	diff "$tmp/declared" "$tmp/exported" || true
	exit 1
fi
n=$(wc -l <"$tmp/exported")
echo "ok: $lib exports exactly the $n declared functions"
if nm -D --defined-only "$lib" | awk '$2 != "T"' | grep -q .; then
	echo "FAIL: $lib exports data or other symbols:"
	nm -D --defined-only "$lib" | awk '$2 != "T"'
	exit 1
fi
