#!/usr/bin/env bash
# plant-bugs.sh - shows what the stress suite catches, with and without
# the chaos build's preemption points: plants one concurrency bug at a
# time (tools/plant-bugs.txt) into a scratch copy of the tree, builds it
# in each mode (plain, and configure --enable-chaos, by default), runs
# tests/check_sync (the eventcount in set orders of events) and
# tests/check_stress over and over with fresh seeds until they fail or
# the time is up, and prints a table: each bug, whether and after how long
# each build caught it.  The working tree is never touched.  Not part of
# CI: it takes about (modes) x SECONDS per bug at worst.
#
# Usage: tools/plant-bugs.sh [-t SECONDS] [-m MODE[,MODE...]] [-k] [BUG...]
#   -t SECONDS  time per bug and build (default 60)
#   -m MODES    the builds, from plain, chaos, tsan (ThreadSanitizer,
#               clang) and tsan-chaos (default plain,chaos)
#   -k          keep the scratch directory
#   BUG...      only these bugs (default: all)
#
# Environment: CC, CFLAGS for the plain and chaos builds (default: the
# configure defaults); PLANT_JOBS for make -j (default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
bugs_file=$here/plant-bugs.txt
limit=60
keep=no
modes=(plain chaos)
while getopts t:m:k opt; do
	case $opt in
	t) limit=$OPTARG ;;
	m) IFS=, read -r -a modes <<<"$OPTARG" ;;
	k) keep=yes ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
jobs=${PLANT_JOBS:-2}
progs=(tests/check_sync tests/check_stress)

# The bug file's parser: "list" prints the names, "what NAME" the line
# that says what the bug is, "file NAME" its file, "apply NAME DIR"
# plants it in DIR (exit 3: a hunk does not match exactly once).
bugtool() {
	perl -e '
	use strict;
	my ($cmd, $file, $name, $dir) = @ARGV;
	open(my $fh, "<", $file) or die "$file: $!\n";
	my (@bugs, $b);
	while (my $line = <$fh>) {
		chomp $line;
		if ($line =~ /^= (\S+) (\S+)\s*$/) {
			$b = { name => $1, file => $2, what => "", hunks => [] };
			push @bugs, $b;
			push @{$b->{hunks}}, { old => [], new => [] };
		} elsif (!$b) {
			next;
		} elsif ($line =~ /^# ?(.*)/) {
			$b->{what} = $1 if $b->{what} eq "";
		} elsif ($line =~ /^@@/) {
			push @{$b->{hunks}}, { old => [], new => [] };
		} elsif ($line =~ /^([-+]) ?(.*)/) {
			push @{$b->{hunks}[-1]{$1 eq "-" ? "old" : "new"}}, $2;
		}
	}
	if ($cmd eq "list") {
		print "$_->{name}\n" for @bugs;
		exit 0;
	}
	my ($bug) = grep { $_->{name} eq $name } @bugs;
	die "no bug named $name\n" unless $bug;
	if ($cmd eq "what") { print "$bug->{what}\n"; exit 0; }
	if ($cmd eq "file") { print "$bug->{file}\n"; exit 0; }
	my $path = "$dir/$bug->{file}";
	open($fh, "<", $path) or die "$path: $!\n";
	my $text = do { local $/; <$fh> };
	close $fh;
	my $i = 0;
	for my $h (@{$bug->{hunks}}) {
		$i++;
		my @tok = split " ", join(" ", @{$h->{old}});
		die "hunk $i: nothing to find\n" unless @tok;
		# Any whitespace between tokens, and chaos points.
		my $re = join(q{\s+(?:CHAOS_POINT\(\);\s+)*},
		              map { quotemeta } @tok);
		my $n = () = $text =~ /$re/g;
		if ($n != 1) {
			print STDERR "hunk $i matches $n times in $bug->{file}\n";
			exit 3;
		}
		# The new lines take the indentation of the first one.
		$text =~ /$re/;
		my ($indent) = substr($text, 0, $-[0]) =~ /([ \t]*)\z/;
		my $new = join("\n$indent", @{$h->{new}});
		$text =~ s/$re/$new/;
	}
	open($fh, ">", $path) or die "$path: $!\n";
	print $fh $text;
	close $fh;
	' "$@"
}

if (($# > 0)); then
	names=("$@")
else
	mapfile -t names < <(bugtool list "$bugs_file")
fi
for name in "${names[@]}"; do
	bugtool what "$bugs_file" "$name" >/dev/null
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/plant-bugs.XXXXXX")
if [ "$keep" = no ]; then
	trap 'rm -rf "$tmp"' EXIT
else
	echo "plant-bugs: scratch directory $tmp"
fi

# The source files as they are in the working tree, uncommitted changes
# and new files included; pristine/ stays as it is, tree/ gets the bugs.
mkdir "$tmp/pristine"
git -C "$src" ls-files -z --cached --others --exclude-standard | tar -C "$src" --null -T - -cf - |
	tar -C "$tmp/pristine" -xf -
cp -a "$tmp/pristine" "$tmp/tree"
(cd "$tmp/tree" && ./autogen.sh >/dev/null 2>&1) || {
	echo "plant-bugs: autogen.sh failed" >&2
	exit 1
}
for mode in "${modes[@]}"; do
	mkdir "$tmp/$mode"
	# A data race that loses nothing in the runs is still a report
	# under TSan, which is the tool for those.
	case $mode in
	plain) flags=() ;;
	chaos) flags=(--enable-chaos) ;;
	tsan) flags=(CC=clang "CFLAGS=-g -O1" --disable-shared
		--enable-sanitizers=thread) ;;
	tsan-chaos) flags=(CC=clang "CFLAGS=-g -O1" --disable-shared
		--enable-sanitizers=thread --enable-chaos) ;;
	*) echo "plant-bugs: no mode $mode" >&2; exit 2 ;;
	esac
	echo "plant-bugs: building ($mode)"
	(cd "$tmp/$mode" && ../tree/configure -q "${flags[@]}" &&
		make -j"$jobs" "${progs[@]}") >"$tmp/build.log" 2>&1 || {
		tail -n 20 "$tmp/build.log" >&2
		echo "plant-bugs: the $mode build of the unchanged tree failed" >&2
		exit 1
	}
done

# run MODE: runs the stress suite in build MODE, a fresh seed each time,
# until it fails or $limit seconds are up.  Prints "yes SECONDS" or "no",
# and leaves the failing run's output in $tmp/MODE.log.
run() {
	local mode=$1 start=$SECONDS left rc
	while :; do
		left=$((limit - (SECONDS - start)))
		((left > 0)) || break
		# Hangs show as Check's test timeouts (15 s instead of 60).
		# A run begun in time may finish past the limit: a lost
		# wake-up takes a few of those timeouts to report, and a run
		# cut short would count it as not caught.
		# TSan runs slower: full timeouts there, and its first
		# report ends the run.
		rc=0
		(cd "$tmp/$mode" && export TSAN_OPTIONS=halt_on_error=1 &&
			case $mode in tsan*) mult=1 ;; *) mult=0.25 ;; esac &&
			CK_TIMEOUT_MULTIPLIER=$mult \
			timeout -k 5 "$((left + 120))" sh -c \
			'./tests/check_sync && ./tests/check_stress' \
			>"$tmp/$mode.log" 2>&1) || rc=$?
		# 124, 137: stopped by our limit, not a failure it reported.
		if ((rc != 0 && rc != 124 && rc != 137)); then
			echo "yes $((SECONDS - start))"
			return
		fi
	done
	echo "no"
}

# What a failing run said: the seed and the first failure.
summary() {
	local log=$1
	grep -m1 '^chaos seed:' "$log" | sed 's/ (.*//' || true
	grep -m2 -E ':[EF]:' "$log" | cut -c1-300 || true
	grep -m1 -A3 'WARNING: ThreadSanitizer' "$log" | cut -c1-200 || true
	if ! grep -q -E ':[EF]:' "$log"; then
		tail -n 3 "$log"
	fi
}

echo "plant-bugs: unchanged tree, one run per build"
for mode in "${modes[@]}"; do
	if ! (cd "$tmp/$mode" && ./tests/check_sync >"$tmp/$mode.log" 2>&1 &&
		./tests/check_stress >>"$tmp/$mode.log" 2>&1); then
		echo "plant-bugs: the unchanged tree fails ($mode):" >&2
		summary "$tmp/$mode.log" >&2
		exit 1
	fi
done

rows=()
details=()
for name in "${names[@]}"; do
	file=$(bugtool file "$bugs_file" "$name")
	what=$(bugtool what "$bugs_file" "$name")
	cp "$tmp/pristine/$file" "$tmp/tree/$file"
	echo "plant-bugs: $name ($file): $what"
	if ! bugtool apply "$bugs_file" "$name" "$tmp/tree" 2>"$tmp/apply.log"; then
		row="$name|$what"
		for mode in "${modes[@]}"; do row+="|not applied"; done
		rows+=("$row")
		details+=("$name: not applied: $(cat "$tmp/apply.log")")
		continue
	fi
	res=()
	for i in "${!modes[@]}"; do
		mode=${modes[i]}
		res[i]="-"
		if ! make -C "$tmp/$mode" -j"$jobs" "${progs[@]}" \
			>"$tmp/build.log" 2>&1; then
			res[i]="build failed"
			details+=("$name ($mode): build failed:
$(grep -m3 -E 'error' "$tmp/build.log")")
			continue
		fi
		r=$(run "$mode")
		if [ "$r" = no ]; then
			res[i]="no (${limit} s)"
		else
			res[i]="yes, ${r#yes } s"
			details+=("$name ($mode):
$(summary "$tmp/$mode.log" | sed 's/^/    /')")
		fi
		echo "  $mode: ${res[i]}"
	done
	row="$name|$what"
	for i in "${!modes[@]}"; do row+="|${res[i]}"; done
	rows+=("$row")
	cp "$tmp/pristine/$file" "$tmp/tree/$file"
done

echo
echo "Planted bugs, tests/check_sync and tests/check_stress run over and" \
	"over for up to $limit s:"
echo
head="| bug | what it is |"
rule="|---|---|"
for mode in "${modes[@]}"; do
	head+=" caught, $mode build |"
	rule+="---|"
done
echo "$head"
echo "$rule"
for row in "${rows[@]}"; do
	echo "| ${row//|/ | } |"
done
if ((${#details[@]})); then
	echo
	echo "How each was caught (the first failure reported):"
	for d in "${details[@]}"; do
		echo "- $d"
	done
fi
