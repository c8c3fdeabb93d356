#!/usr/bin/env bash
# Throughput through real Traefik v3.6.12 with wrk, in alternating rounds
# of one run: no middleware, a do-nothing plugin, and for each plugin
# configuration (-configs default,lean) the contract (Traefik's compiled
# headers middleware making the header changes the plugin makes for the
# signed-in request, captured from the compiled plugin), traefik-authkit
# signed in and on a public path; medians, spreads, ratios and Traefik's
# memory; then latencies with an 880 KiB junk Cookie header (-junk 0 skips).
# Then the Go benchmarks of the plugin compiled and interpreted, compared
# with benchstat; the junk Cookie header ones run 20 iterations each, and
# signed-in-redis runs against a redis-server started here.
# Installs wrk, benchstat and redis-server, builds Traefik when missing.
set -euo pipefail
. "$(dirname "$0")/tools.sh"
ensure_debian_package wrk wrk
[ -x "$tool_bin/benchstat" ] || GOFLAGS= GOBIN="$tool_bin" go install golang.org/x/perf/cmd/benchstat@latest
(cd "$repo_root/harness" && ./build-traefik.sh >/dev/null && go run ./cmd/bench-traefik "$@")

ensure_redis
redis_dir="$repo_root/.cache/redis-bench"
eval "$("$repo_root/scripts/redis.sh" start "$redis_dir")"
trap '"$repo_root/scripts/redis.sh" stop "$redis_dir"' EXIT

echo
echo "Go benchmarks, compiled and interpreted (harness/bench):"
out="$repo_root/.cache/bench.txt"
(cd "$repo_root/harness" &&
  go test -run '^$' -bench . -skip 'Plugin/junk-cookie' -benchmem -count 6 ./bench &&
  go test -run '^$' -bench 'Plugin/junk-cookie' -benchtime 20x -benchmem -count 6 ./bench) > "$out"
benchstat "$out"
