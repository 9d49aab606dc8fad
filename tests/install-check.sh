#!/bin/sh
# Run by make installcheck (and so by make distcheck) after make install:
# builds tests/consumer, a separate autotools project, against the
# installed library the way a user would (PKG_CHECK_MODULES), linked
# shared and static, and runs both; checks the installed library's
# exports and that the installed man pages render.
#
# Environment from the Makefile: srcdir, prefix, libdir, mandir.
set -eu
: "${srcdir:?}" "${prefix:?}" "${libdir:?}" "${mandir:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp -R "$srcdir/tests/consumer" "$tmp/consumer"
chmod -R u+w "$tmp/consumer"
cd "$tmp/consumer"
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
	./configure -q
make -s
LD_LIBRARY_PATH="$libdir" ./consumer
./consumer-static
if ldd ./consumer-static | grep -q libpolysocket; then
	echo "FAIL: consumer-static is linked to the shared library"
	exit 1
fi
echo "ok: the installed library works shared and static"
cd - >/dev/null

sh "$srcdir/tests/exports.sh" "$libdir/libpolysocket.so"

n=0
if command -v mandoc >/dev/null 2>&1 || command -v man >/dev/null 2>&1; then
	for page in "$mandir"/man3/poly*.3 "$mandir"/man3/POLYPIPE_TYPED.3 \
		"$mandir"/man7/poly*.7; do
		if command -v mandoc >/dev/null 2>&1; then
			(cd "$mandir" && mandoc -Tascii "$page") >/dev/null
		else
			man -l "$page" >/dev/null
		fi
		n=$((n + 1))
	done
	echo "ok: $n installed man pages render"
else
	echo "SKIP: installed man pages not rendered: neither mandoc nor man"
fi
