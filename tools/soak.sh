#!/usr/bin/env bash
# soak.sh SECONDS PROGRAM... - run by make soak in a chaos build: runs
# each program in turn, over and over, each run with a fresh chaos seed,
# until SECONDS have passed (the last round may run over by one round).
# Stops at the first failure, with its output and the seeds that replay
# it.  Prints per program the runs made and what the runs counted (the
# stress suites' STRESS_VERBOSE=1 figures, the replay's inputs).
set -uo pipefail

secs=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A runs checks msgs clients calls inputs
for p in "$@"; do
	runs[$p]=0 checks[$p]=0 msgs[$p]=0 clients[$p]=0 calls[$p]=0
	inputs[$p]=0
done

# The sum of the numbers just before WORDS on each line of a log.
sum() {
	grep -oE "[0-9]+ $2" "$1" | awk '{ s += $1 } END { print s + 0 }'
}

echo "soak: $* under chaos for $secs s, a fresh seed per run"
start=$SECONDS
round=0
while ((SECONDS - start < secs)); do
	round=$((round + 1))
	for p in "$@"; do
		seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
		log=$tmp/log
		# A run that hangs past Check's own timeouts is a failure too.
		POLYSOCKET_CHAOS_SEED=$seed STRESS_VERBOSE=1 \
			timeout -k 10 900 "./$p" >"$log" 2>&1
		rc=$?
		if ((rc != 0)); then
			echo "soak: FAIL: $p, round $round, after" \
				"$((SECONDS - start)) s (exit $rc):"
			grep -vE '^(mpmc|teardown|notify|connect)[a-z_]*: ' \
				"$log" | tail -n 40
			echo "soak: replay with POLYSOCKET_CHAOS_SEED=$seed" \
				"(and STRESS_SEED=<the seed in the failure" \
				"message> for a stress test)"
			exit 1
		fi
		runs[$p]=$((runs[$p] + 1))
		n=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1 |
			sed -E 's/.*Checks: ([0-9]+).*/\1/')
		checks[$p]=$((checks[$p] + ${n:-0}))
		msgs[$p]=$((msgs[$p] + $(sum "$log" messages)))
		clients[$p]=$((clients[$p] + $(sum "$log" clients)))
		calls[$p]=$((calls[$p] + $(sum "$log" 'notifier calls')))
		inputs[$p]=$((inputs[$p] + $(sum "$log" inputs)))
	done
done

echo "soak: $((SECONDS - start)) s, $round rounds, no failure:"
for p in "$@"; do
	line="$p: ${runs[$p]} runs"
	((checks[$p] > 0)) && line+=", ${checks[$p]} checks passed"
	((msgs[$p] > 0)) && line+=", ${msgs[$p]} messages"
	((clients[$p] > 0)) && line+=", ${clients[$p]} clients"
	((calls[$p] > 0)) && line+=", ${calls[$p]} notifier calls"
	((inputs[$p] > 0)) && line+=", ${inputs[$p]} inputs replayed"
	echo "  $line"
done
