#!/usr/bin/env bash
# Throughput through real Traefik v3.6.12 with wrk: no middleware, a
# do-nothing plugin, the contract floor (harness/bench/floor),
# traefik-authkit signed in and on a public path, in alternating rounds of
# one run, with the ratios and Traefik's memory.
# Then the Go benchmarks of the plugin compiled and interpreted, compared
# with benchstat. Installs wrk and benchstat, builds Traefik when missing.
set -euo pipefail
. "$(dirname "$0")/tools.sh"
ensure_debian_package wrk wrk
[ -x "$tool_bin/benchstat" ] || GOFLAGS= GOBIN="$tool_bin" go install golang.org/x/perf/cmd/benchstat@latest
(cd "$repo_root/harness" && ./build-traefik.sh >/dev/null && go run ./cmd/bench-traefik "$@")

echo
echo "Go benchmarks, compiled and interpreted (harness/bench):"
out="$repo_root/.cache/bench.txt"
(cd "$repo_root/harness" && go test -run '^$' -bench . -count 6 ./bench) > "$out"
benchstat "$out"
