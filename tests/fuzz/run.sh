#!/bin/sh
# Runs the libFuzzer targets of a fuzz build (docs/FUZZING.md), each for a
# bounded time on a scratch copy of its seed corpus, so a run never writes
# into the source tree. Fails on the first target that crashes, leaks,
# times out or breaks an invariant; its reproducer is kept under
# <build>/fuzz-artifacts/<target>/.
#   tests/fuzz/run.sh [build-dir [seconds [target...]]]
# defaults: build-fuzz, $FUZZ_SECONDS or 15, every target.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
seconds=${2:-${FUZZ_SECONDS:-15}}
[ $# -gt 2 ] && shift 2 || set --
targets=${*:-fuzz_frame fuzz_ledger fuzz_log fuzz_snapshot fuzz_push_answers}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/skuld-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM

# One input per second at most before libFuzzer calls it a hang; inputs as
# large as the largest seed (fuzz_log's segments) plus room to grow.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for target in $targets; do
	binary="$build/$target"
	[ -x "$binary" ] || { echo "fuzz: $binary is not built" >&2; exit 1; }
	mkdir -p "$scratch/$target/corpus" "$scratch/$target/artifacts"
	cp tests/fuzz/corpus/"$target"/* "$scratch/$target/corpus/"
	echo "fuzz: $target for ${seconds}s"
	if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$scratch/$target/artifacts/" \
		"$scratch/$target/corpus" >"$scratch/$target/log" 2>&1; then
		tail -n 60 "$scratch/$target/log" >&2
		mkdir -p "$build/fuzz-artifacts/$target"
		cp "$scratch/$target/artifacts"/* "$build/fuzz-artifacts/$target/" 2>/dev/null || true
		echo "fuzz: $target FAILED; reproducer(s) in $build/fuzz-artifacts/$target/" >&2
		echo "fuzz: replay with: $binary $build/fuzz-artifacts/$target/<file>" >&2
		exit 1
	fi
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
		"$scratch/$target/log" | sed "s/^/fuzz: $target /"
done
echo "fuzz: every target ran ${seconds}s without a failure"
