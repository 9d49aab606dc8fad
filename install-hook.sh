#!/bin/sh
# shellcheck disable=SC3013 # test -ef: dash and bash, Linux's sh, have it
# Run by make install (install-exec-hook) and make uninstall
# (uninstall-hook).  Installed as root, not into a DESTDIR staging tree,
# in a directory the dynamic linker searches (/usr/local/lib, /usr/lib),
# the shared library is added to the linker's cache (ldconfig), as a
# distribution's package does, so that programs find libpolysocket.so.0
# at once; make uninstall takes it out again.  Otherwise this changes
# nothing and says what a program will need.
#
# Usage: install-hook.sh install|uninstall LIBDIR DESTDIR
set -u
action=$1
libdir=$2
destdir=$3
lib=libpolysocket.so.0
what="$lib installed in $libdir"
[ "$action" = install ] || what="$lib removed from $libdir"

# A package build (DESTDIR) runs ldconfig when the package is installed;
# a static-only build has no shared library to find.
[ -z "$destdir" ] || exit 0
[ "$action" = uninstall ] || [ -f "$libdir/$lib" ] || exit 0
PATH=$PATH:/sbin:/usr/sbin
command -v ldconfig >/dev/null 2>&1 || exit 0

# The directories the linker searches, as ldconfig lists them; -ef also
# matches a directory reached through a symbolic link (/lib, /usr/lib).
searched=no
for dir in $(ldconfig -N -X -v 2>/dev/null |
	sed -n 's/^\(\/[^:]*\):.*/\1/p'); do
	if [ "$dir" -ef "$libdir" ]; then
		searched=yes
	fi
done

if [ $searched = no ]; then
	[ "$action" = install ] || exit 0
	echo "polysocket: the dynamic linker does not search $libdir."
	echo "polysocket: Programs find $lib there when linked with"
	echo "polysocket: -Wl,-rpath,$libdir, or run with"
	echo "polysocket: LD_LIBRARY_PATH=$libdir, or once the directory is"
	echo "polysocket: listed in /etc/ld.so.conf.d/ and root has run ldconfig."
elif [ "$(id -u)" != 0 ]; then
	echo "polysocket: $what: run ldconfig as root to tell the linker"
elif ldconfig; then
	echo "polysocket: $what: ran ldconfig to tell the linker"
else
	echo "polysocket: $what: ldconfig failed: run it again as root"
fi
exit 0
