#!/bin/sh
# server-bench.sh — the server figures of docs/BENCHMARKS.md in one run:
# starts skuld (bench/skuld-bench.conf) on a free port in a temporary data
# directory, runs skuld-bench batched, unbatched and hot, runs
# redis-benchmark's PING (-c 64 -P 1) as the round-trip yardstick when
# redis-server is installed, and removes everything it made. FSYNC_DELAY_US
# (default 0) is the server's fsync_delay_us: each log write completes that
# much later, as on a slower disk (benchmarks only, docs/OPERATIONS.md).
#
#   bench/server-bench.sh [BUILD_DIR] [SECONDS] [FSYNC_DELAY_US]
set -eu
build=${1:-build}
seconds=${2:-8}
fsync_delay_us=${3:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(mktemp -d /tmp/skuld-bench-XXXXXX)
server_pid=""
redis_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	rm -rf "$data"
}
trap cleanup EXIT INT TERM

{ cat "$root/bench/skuld-bench.conf"; echo "fsync_delay_us = $fsync_delay_us"; } >"$data/skuld.conf"
"$build/server/skuld" --listen 127.0.0.1:0 --data-dir "$data" \
	--config "$data/skuld.conf" >"$data/server.out" 2>"$data/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
	[ -s "$data/port" ] && break
	sleep 0.1
done
[ -s "$data/port" ] || { cat "$data/server.err"; exit 1; }
server="127.0.0.1:$(cat "$data/port")"
bench="$build/bench/skuld-bench --server $server --server-pid $server_pid --duration $seconds"

echo "== batched: 4 connections x 1000 events, uniform over 100,000 item-locations"
$bench --setup --connections 4 --batch 1000
echo "== unbatched: 64 connections x 1 event"
$bench --connections 64 --batch 1
echo "== hot: 4 connections x 1000 events on 10 items"
$bench --connections 4 --batch 1000 --hot 10

if command -v redis-server >/dev/null 2>&1; then
	echo "== yardstick: redis-benchmark -t ping -c 64 -P 1"
	redis-server --port 6399 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
	redis_pid=$!
	sleep 0.5
	redis-benchmark -p 6399 -t ping -c 64 -P 1 -n 800000 -q 2>/dev/null | tr '\r' '\n' |
		grep "requests per second"
fi
