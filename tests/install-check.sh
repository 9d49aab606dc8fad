#!/bin/sh
# shellcheck disable=SC3013 # test -ef: dash and bash, Linux's sh, have it
# Run by make installcheck (and so by make distcheck) after make install:
# uses the installed library the way its users do, and runs every program
# with no LD_LIBRARY_PATH:
# - the README's first example, built with the README's own command;
# - tests/consumer as an autotools project (PKG_CHECK_MODULES), as a CMake
#   project (find_package, polysocket::polysocket) and as a meson project
#   (dependency('polysocket')), each linked shared and static;
# then checks the installed library's exports and that the installed man
# pages render.
#
# Installed as root where the dynamic linker and pkg-config look
# (/usr/local; make install runs ldconfig), everything is built and run in
# an empty environment, exactly as the README says.  Anywhere else (make
# distcheck's prefix) the builds are told the prefix (PKG_CONFIG_PATH,
# CMAKE_PREFIX_PATH) and the programs carry it (-Wl,-rpath, which CMake and
# meson add by themselves), as a user of such a prefix does.  Without cmake or meson, their consumers are skipped
# and the output says so.
#
# Environment from the Makefile: srcdir, prefix, libdir, mandir,
# PACKAGE_VERSION.
set -eu
: "${srcdir:?}" "${prefix:?}" "${libdir:?}" "${mandir:?}"
: "${PACKAGE_VERSION:?}"
srcdir=$(cd "$srcdir" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
lib=libpolysocket.so.0

# Runs a command with its output kept for when it fails.
quiet() {
	if ! "$@" >"$tmp/out" 2>&1; then
		cat "$tmp/out"
		echo "FAIL: $*"
		return 1
	fi
}

# Where the dynamic linker finds the shared library: "$libdir" if the
# program finds the installed one.
resolved() {
	path=$(env -i ldd "$1" | sed -n "s/^[[:space:]]*$lib => \(\/[^ ]*\).*/\1/p")
	if [ -z "$path" ] || ! [ "$path" -ef "$libdir/$lib" ]; then
		env -i ldd "$1"
		echo "FAIL: $1 does not find $libdir/$lib${path:+ but $path}"
		return 1
	fi
}

# A program linked statically must not need the shared library.
static() {
	if ldd "$1" | grep -q libpolysocket; then
		echo "FAIL: $1 is linked to the shared library"
		return 1
	fi
}

# --- how a user reaches this prefix ----------------------------------------

cached=$(env -i PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null |
	sed -n "s/^[[:space:]]*$lib .*=> //p")
pcdir=$(env -u PKG_CONFIG_PATH pkg-config --variable=libdir polysocket \
	2>/dev/null || true)
system=no
for path in $cached; do
	if [ "$path" -ef "$libdir/$lib" ] && [ -n "$pcdir" ] &&
		[ "$pcdir" -ef "$libdir" ]; then
		system=yes
	fi
done
if [ $system = yes ]; then
	echo "# $libdir: in the linker's cache and pkg-config's path;" \
		"no environment"
	run() { env -i PATH="$PATH" HOME="$tmp" "$@"; }
	rpath=
	cmake_prefix=
else
	echo "# $prefix: a prefix of its own: PKG_CONFIG_PATH," \
		"CMAKE_PREFIX_PATH, -Wl,-rpath,$libdir"
	run() {
		env -i PATH="$PATH" HOME="$tmp" \
			PKG_CONFIG_PATH="$libdir/pkgconfig" "$@"
	}
	rpath="-Wl,-rpath,$libdir"
	cmake_prefix="-DCMAKE_PREFIX_PATH=$prefix"
fi

cp -R "$srcdir/tests/consumer" "$tmp/consumer"
chmod -R u+w "$tmp/consumer"

# --- the README's example --------------------------------------------------

mkdir "$tmp/readme"
cd "$tmp/readme"
awk '/^```c$/ { on = 1; next } /^```/ { if (on) exit } on' \
	"$srcdir/README.md" >example.c
build=$(sed -n 's/^Build it with `\(cc example\.c [^`]*\)`\.$/\1/p' \
	"$srcdir/README.md")
if [ -z "$build" ] || ! grep -q 'int main' example.c; then
	echo "FAIL: no example, or no \"Build it with \`cc example.c ...\`\"" \
		"line, in README.md"
	exit 1
fi
quiet run sh -c "$build $rpath"
run ./a.out >out
if [ "$(cat out)" != "$(printf 'got 1\ngot 2\ngot 3')" ]; then
	cat out
	echo "FAIL: the README's example printed the above"
	exit 1
fi
resolved ./a.out
echo "ok: the README's example: $build${rpath:+ $rpath}; ./a.out"

# --- autotools -------------------------------------------------------------

cd "$tmp/consumer"
quiet autoreconf -fi
quiet run ./configure LDFLAGS="$rpath"
quiet run make
run ./consumer >/dev/null
resolved ./consumer
run ./consumer-static >/dev/null
static ./consumer-static
echo "ok: autotools consumer (PKG_CHECK_MODULES), shared and static"

# --- CMake -----------------------------------------------------------------

if command -v cmake >/dev/null 2>&1; then
	for kind in shared static; do
		b=$tmp/cmake-$kind
		use=OFF
		[ $kind = shared ] || use=ON
		# shellcheck disable=SC2086
		quiet run cmake -S "$tmp/consumer" -B "$b" $cmake_prefix \
			-DPOLYSOCKET_USE_STATIC_LIBS=$use
		quiet run cmake --build "$b"
		run "$b/consumer" >/dev/null
		if [ $kind = shared ]; then
			resolved "$b/consumer"
		else
			static "$b/consumer"
		fi
	done
	# Before 1.0, 0.1.x does not satisfy find_package(polysocket 0.2).
	next=$(echo "$PACKAGE_VERSION" |
		awk -F. '{ print ($1 > 0) ? $1 + 1 ".0" : "0." $2 + 1 }')
	# shellcheck disable=SC2086
	if run cmake -S "$tmp/consumer" -B "$tmp/cmake-next" $cmake_prefix \
		-DWANT_VERSION="$next" >"$tmp/out" 2>&1 ||
		! grep -q "compatible with requested version \"$next\"" \
			"$tmp/out"; then
		cat "$tmp/out"
		echo "FAIL: find_package(polysocket $next) took $PACKAGE_VERSION"
		exit 1
	fi
	echo "ok: cmake consumer (find_package(polysocket 0.1)," \
		"polysocket::polysocket), shared and static; $next refused"
else
	echo "SKIP: no cmake: the CMake consumer was not built"
fi

# --- meson -----------------------------------------------------------------

if command -v meson >/dev/null 2>&1 && command -v ninja >/dev/null 2>&1; then
	b=$tmp/meson
	# meson gives a program the run path of the libraries it found
	# outside the system's directories.
	quiet run meson setup "$b" "$tmp/consumer"
	quiet run meson compile -C "$b"
	run "$b/consumer" >/dev/null
	resolved "$b/consumer"
	run "$b/consumer-static" >/dev/null
	static "$b/consumer-static"
	echo "ok: meson consumer (dependency('polysocket')), shared and static"
else
	echo "SKIP: no meson or ninja: the meson consumer was not built"
fi
cd "$tmp"

# --- exports and man pages -------------------------------------------------

sh "$srcdir/tests/exports.sh" "$libdir/libpolysocket.so"

n=0
for page in "$mandir"/man3/poly*.3 "$mandir"/man3/POLYPIPE_TYPED.3 \
	"$mandir"/man7/poly*.7; do
	if command -v mandoc >/dev/null 2>&1; then
		(cd "$mandir" && mandoc -Tascii "$page") >/dev/null
	elif command -v man >/dev/null 2>&1; then
		man -l "$page" >/dev/null
	else
		echo "# neither mandoc nor man: pages not rendered"
		break
	fi
	n=$((n + 1))
done
echo "ok: $n installed man pages render"
