#!/bin/sh
# Every public header compiles on its own, twice over, as C99 and C11 with
# -pedantic and as C++11, with warnings as errors; a C++ caller links to
# the unmangled C names; POLYPIPE_TYPED is clean at file scope with its
# trailing semicolon, and its unused wrappers do not warn.
set -eu
: "${srcdir:=.}" "${CC:=cc}" "${CXX:=c++}"
flags="-Wall -Wextra -Werror -pedantic -I$srcdir/include"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have_cxx=yes
command -v "$CXX" >/dev/null 2>&1 || have_cxx=no
[ "$have_cxx" = yes ] || echo "# no C++ compiler ($CXX): C++ checks skipped"

for h in polypipe polysocket polyset typed; do
	printf '#include <polysocket/%s.h>\n#include <polysocket/%s.h>\n' \
		"$h" "$h" >"$tmp/t.c"
	for std in c99 c11; do
		$CC -std=$std $flags -c "$tmp/t.c" -o "$tmp/t.o"
	done
	if [ "$have_cxx" = yes ]; then
		cp "$tmp/t.c" "$tmp/t.cc"
		$CXX -std=c++11 $flags -c "$tmp/t.cc" -o "$tmp/t.o"
	fi
	echo "ok: $h.h"
done

cat >"$tmp/typed.c" <<'CODE'
#include <polysocket/typed.h>
struct job { int id; };
POLYPIPE_TYPED(job, struct job);
POLYPIPE_TYPED(other, int);
int
main(void)
{
	polypipe *rd, *wr;
	struct job j = { 1 }, *out;

	if (polypipe_create(1, &rd, &wr) == 0 && job_write(wr, &j, 0) == 0)
		(void)job_read(rd, &out, 0);
	return 0;
}
CODE
for std in c99 c11; do
	$CC -std=$std $flags -c "$tmp/typed.c" -o "$tmp/typed.o"
done
if [ "$have_cxx" = yes ]; then
	cp "$tmp/typed.c" "$tmp/typed.cc"
	$CXX -std=c++11 $flags -c "$tmp/typed.cc" -o "$tmp/typed.o"
	nm "$tmp/typed.o" | grep -q ' U polypipe_create$' || {
		echo "FAIL: C++ callers see mangled names"
		exit 1
	}
fi
echo "ok: POLYPIPE_TYPED"

# A message of the wrong type must not compile.
cat >"$tmp/wrong.c" <<'CODE'
#include <polysocket/typed.h>
struct job { int id; };
POLYPIPE_TYPED(job, struct job);
int
wrong(polypipe *wr, int *not_a_job)
{
	return job_write(wr, not_a_job, 0);
}
CODE
if $CC -std=c99 $flags -c "$tmp/wrong.c" -o "$tmp/wrong.o" 2>/dev/null; then
	echo "FAIL: a message of the wrong type compiled"
	exit 1
fi
echo "ok: a wrong message type is rejected"

# The C checks passed, but not all of them ran: a skip, not a pass.
if [ "$have_cxx" = no ]; then
	echo "SKIP: the C++ checks: no C++ compiler ($CXX)"
	exit 77
fi
