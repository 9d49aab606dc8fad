#!/bin/sh
# Checks the manual in man/:
# - every function declared POLYSOCKET_EXPORT in include/polysocket/*.h,
#   and every public function-like macro (POLYPIPE_TYPED), has man/<name>.3;
# - man/local.am installs every page in man/, and every page it lists exists;
# - every .Xr reference names a page in man/ or an allowed system page;
# - a page that is only a .so link points at a page in man/;
# - every other page is clean under mandoc -Tlint -W warning (without
#   mandoc: groff -ww -z -mandoc), and no file in man/ has trailing blanks;
# - every page that is not a link says ".Os polysocket VERSION" once, with
#   VERSION the package's (PACKAGE_VERSION, from configure; without it,
#   AC_INIT in configure.ac), so that a release cannot ship old pages.
# Exits 1 saying why on a failure, 77 (skipped) if neither mandoc nor groff
# is there and nothing else failed.  MANDOC and GROFF name the tools.
set -u
: "${srcdir:=$(dirname "$0")/..}" "${MANDOC:=mandoc}" "${GROFF:=groff}"
man=$srcdir/man
inc=$srcdir/include/polysocket

if [ -z "${PACKAGE_VERSION:-}" ]; then
	PACKAGE_VERSION=$(sed -n \
		's/^AC_INIT(\[polysocket\], *\[\([^]]*\)\].*/\1/p' \
		"$srcdir/configure.ac")
fi
if [ -z "$PACKAGE_VERSION" ]; then
	echo "FAIL: no PACKAGE_VERSION, and none in $srcdir/configure.ac"
	exit 1
fi

# The system pages the manual refers to.
system_pages='close.2 eventfd.2 poll.2 select.2 epoll.7 pthreads.7'

status=0
fail() {
	echo "FAIL: $*"
	status=1
}

if [ ! -f "$man/local.am" ] || [ ! -d "$inc" ]; then
	echo "FAIL: no man/local.am or include/polysocket under srcdir=$srcdir"
	exit 1
fi

# --- every public name has a page ------------------------------------------

# Functions: tests/api-names.sh reads the POLYSOCKET_EXPORT declarations;
# public macros are "#define NAME(", internal ones end in "_".
names=$(sh "$srcdir/tests/api-names.sh" "$inc"/*.h
	sed -n \
	-e 's/^#[ 	]*define[ 	]\{1,\}\([A-Z][A-Z0-9_]*[A-Z0-9]\)(.*/\1/p' \
	"$inc"/*.h)
decls=$(cat "$inc"/*.h | grep -c '^POLYSOCKET_EXPORT')
found=$(printf '%s\n' "$names" | grep -c '^[a-z]')
if [ "$decls" -eq 0 ] || [ "$found" -ne "$decls" ]; then
	fail "found $found function names in $decls POLYSOCKET_EXPORT" \
		"declarations"
fi
nnames=0
for name in $names; do
	nnames=$((nnames + 1))
	[ -f "$man/$name.3" ] || fail "$name is public but has no man/$name.3"
done

# --- local.am installs exactly the pages in man/ ---------------------------

listed=$(awk '{ for (i = 1; i <= NF; i++)
		if ($i ~ /^man\/[^\/]*\.[1-9]$/) print substr($i, 5) }' \
	"$man/local.am")
for f in $listed; do
	[ -f "$man/$f" ] || fail "man/local.am lists man/$f, which is missing"
done
pages=
for path in "$man"/*.[1-9]; do
	[ -f "$path" ] || continue
	page=${path##*/}
	pages="$pages $page"
	case " $(echo $listed) " in
	*" $page "*) ;;
	*) fail "man/$page is not in dist_man_MANS in man/local.am" ;;
	esac
done

# --- links, references, blanks ---------------------------------------------

links=
for page in $pages; do
	path=$man/$page
	if grep -n '[[:space:]]$' "$path" >/dev/null; then
		fail "man/$page: trailing whitespace on line" \
			"$(grep -n '[[:space:]]$' "$path" | cut -d: -f1 | head -n 1)"
	fi
	first=$(sed -n '1p' "$path")
	case $first in
	.so\ *)
		[ "$(wc -l <"$path")" -eq 1 ] ||
			fail "man/$page: a .so link must be one line"
		target=${first#.so }
		case $target in
		man[1-9]/*) ;;
		*) fail "man/$page: .so target must be man<section>/<page>" ;;
		esac
		[ -f "$man/${target##*/}" ] ||
			fail "man/$page: .so target $target is not in man/"
		links="$links $page"
		continue
		;;
	esac
	os=$(grep '^\.Os' "$path")
	[ "$os" = ".Os polysocket $PACKAGE_VERSION" ] ||
		fail "man/$page: .Os must be \".Os polysocket $PACKAGE_VERSION\"" \
			"(the package's version) once, not \"$os\""
	refs=$(awk '/^\./ { for (i = 1; i < NF - 1; i++)
			if ($i == "Xr" || $i == ".Xr") print $(i + 1) "." $(i + 2) }' \
		"$path")
	for ref in $refs; do
		[ -f "$man/$ref" ] && continue
		case " $system_pages " in
		*" $ref "*) continue ;;
		esac
		fail "man/$page: .Xr ${ref%.*} ${ref##*.}: no such page in man/" \
			"(system pages allowed: $system_pages)"
	done
done
for f in "$srcdir/man/local.am" "$0"; do
	if grep '[[:space:]]$' "$f" >/dev/null; then
		fail "$f: trailing whitespace"
	fi
done

# --- lint ------------------------------------------------------------------

if command -v "$MANDOC" >/dev/null 2>&1; then
	lint() { "$MANDOC" -Tlint -W warning "$1" 2>&1; }
	tool="$MANDOC -Tlint -W warning"
elif command -v "$GROFF" >/dev/null 2>&1; then
	lint() { "$GROFF" -ww -z -mandoc "$1" 2>&1; }
	tool="$GROFF -ww -z -mandoc"
else
	tool=
fi
if [ -n "$tool" ]; then
	for page in $pages; do
		case " $links " in
		*" $page "*) continue ;;
		esac
		out=$(lint "$man/$page")
		rc=$?
		if [ $rc -ne 0 ] || [ -n "$out" ]; then
			fail "$tool man/$page (exit $rc):"
			printf '%s\n' "$out"
		fi
	done
fi

if [ $status -ne 0 ]; then
	exit 1
fi
if [ -z "$tool" ]; then
	echo "SKIP: neither $MANDOC nor $GROFF to lint the pages"
	exit 77
fi
echo "ok: $nnames public names have pages; $(echo $pages | wc -w) pages" \
	"($(echo $links | wc -w) .so links, the others .Os polysocket" \
	"$PACKAGE_VERSION) lint clean with $tool"
exit 0
