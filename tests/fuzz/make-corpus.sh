#!/bin/sh
# Regenerates the seed corpora in tests/fuzz/corpus/<target>/ from the
# targets' own seed-writing mode (SKULD_FUZZ_SEEDS=<dir>, fuzz_common.h) and
# the committed sample log (tests/data/log-v1) for fuzz_log.
#   tests/fuzz/make-corpus.sh [build-dir]      (default: build-fuzz)
# Only seed-* and v1-* files are rewritten: regression inputs kept from
# crashes (crash-*, named after the fix) stay as they are.
set -eu
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
corpus=tests/fuzz/corpus
for target in fuzz_frame fuzz_ledger fuzz_log fuzz_snapshot fuzz_push_answers; do
	mkdir -p "$corpus/$target"
	rm -f "$corpus/$target"/seed-* "$corpus/$target"/v1-*
	SKULD_FUZZ_SEEDS="$corpus/$target" "$build/$target" >/dev/null
done
# fuzz_log's input is a mode byte and a segment file: the sample segments
# as they are (mode 0) and with their checksums recomputed (mode 1).
for segment in tests/data/log-v1/log-*.skl; do
	name=$(basename "$segment" .skl)
	{ printf '\000'; cat "$segment"; } >"$corpus/fuzz_log/v1-$name"
	{ printf '\001'; cat "$segment"; } >"$corpus/fuzz_log/v1-$name-fixed"
done
du -sh "$corpus"
