#!/bin/sh
# The test driver of make check (LOG_DRIVER): runs automake's test-driver,
# then puts on the terminal why a test was skipped, which test-driver
# writes only to the test's .log.  The reason is the last line the test
# printed (tests here print it just before they exit 77); a test that
# passed but skipped part of its work says so in a line "# ... skipped",
# which is shown as well.
#
# Usage: driver.sh SHELL TEST-DRIVER [test-driver's options] -- TEST ...
set -u
shell=$1
driver=$2
shift 2
log=
trs=
prev=
for arg in "$@"; do
	case $prev in
	--log-file) log=$arg ;;
	--trs-file) trs=$arg ;;
	esac
	prev=$arg
done
"$shell" "$driver" "$@"
status=$?
[ -n "$log" ] && [ -n "$trs" ] && [ -f "$log" ] && [ -f "$trs" ] ||
	exit $status
# test-driver's own last line is "RESULT test (exit status: N)".
if grep '^:test-result: SKIP' "$trs" >/dev/null; then
	why=$(sed '$d' "$log" | grep -v '^[[:space:]]*$' | tail -n 1 |
		sed 's/^\(# *\|SKIP: *\)//')
	echo "    why: ${why:-the test printed no reason}"
else
	sed '$d' "$log" | grep -i '^# .*skipped' | sed 's/^/    /'
fi
exit $status
