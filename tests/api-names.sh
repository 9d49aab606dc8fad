#!/bin/sh
# Prints the name of every function the given public headers declare
# (POLYSOCKET_EXPORT <type> <name>(...);), one a line, however the
# declaration is wrapped.
set -eu
cat "$@" | awk '
	/^POLYSOCKET_EXPORT/ { decl = ""; on = 1 }
	on { decl = decl " " $0 }
	on && /;/ {
		on = 0
		sub(/\(.*/, "", decl)
		n = split(decl, word, /[^A-Za-z0-9_]+/)
		print word[n]
	}'
