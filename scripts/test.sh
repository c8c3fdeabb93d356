#!/usr/bin/env bash
# Runs every test layer: compiled (with the race detector), interpreted by
# yaegi, iron-session interop, the harness module (loader, providers, real
# Traefik with headless Chromium, soak, several replicas, a scale run) and
# bounded fuzzing. Installs what is missing, and starts the redis-server
# instances the tests use (scripts/redis.sh), stopped when the run ends.
# Each layer prints "<layer>: N passed, N failed"; any failure fails the run.
set -uo pipefail
. "$(dirname "$0")/tools.sh"
cd "$repo_root"

ensure_redis
redis_dir="$repo_root/.cache/redis"
eval "$("$repo_root/scripts/redis.sh" start "$redis_dir")"
export AUTHKIT_REQUIRE_REDIS=1
trap '"$repo_root/scripts/redis.sh" stop "$redis_dir"' EXIT

logs="$repo_root/.cache/test-logs"
mkdir -p "$logs"
total_pass=0
total_fail=0
failed_layers=""

# layer NAME COMMAND...: runs a `go test -v`-style command, shows its output,
# and counts its test results (subtests included).
layer() {
  local name=$1; shift
  echo "=== layer: $name"
  local log="$logs/$name.log" rc
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local pass fail
  # go test -v prints a line per test; node's runner prints totals.
  pass=$(( $(grep -cE '^ *--- PASS' "$log") + $(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | paste -sd+ | sed 's/^$/0/' | bc) ))
  fail=$(( $(grep -cE '^ *--- FAIL' "$log") + $(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | paste -sd+ | sed 's/^$/0/' | bc) ))
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
  echo "$name: $pass passed, $fail failed"
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  [ "$fail" = 0 ] || failed_layers="$failed_layers $name"
}

compiled() {
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
  if [ -n "$unformatted" ]; then
    echo "not gofmt-ed: $unformatted"
    return 1
  fi
  go vet ./... && go test -race -count=1 -v ./...
}

interpreted() {
  ensure_yaegi
  local gopath
  gopath=$(gopath_copy)
  (cd "$gopath/src/github.com/traefik-authkit/authkit" && GOPATH="$gopath" GO111MODULE=off yaegi test -v .)
}

fuzz_seconds=${FUZZ_SECONDS:-10}
fuzzing() {
  local target rc=0
  for target in $(go test -list '^Fuzz' . | grep '^Fuzz'); do
    go test -run '^$' -fuzz "^$target\$" -fuzztime "${fuzz_seconds}s" -v . || rc=1
  done
  return $rc
}

# interop: seals cross between the plugin and the real iron-session (npm).
interop() {
  ensure_node_modules interop
  (cd interop && node --test)
}

# The harness module's packages run as separate layers, so CI shows each
# count: Traefik's loader mirrored, the configuration providers, real
# Traefik with headless Chromium, and the soak under WorkOS faults.
harness() { (cd harness && ./test.sh "$@"); }

# The benchmark tools, and scripts/slots.sh, which must still find ServeHTTP.
harness_tools() {
  harness ./bench/... ./cmd/... && "$repo_root/scripts/slots.sh" '^ *[0-9]+ ServeHTTP$'
}

layer compiled compiled
layer interpreted interpreted
layer interop interop
layer loader harness ./loader/...
layer providers harness ./providers/...
layer traefik-browser harness ./traefiktest/... ./browser/... ./e2e/...
layer hostile harness ./hostile/...
layer soak harness ./soak/...
layer replicas harness ./replicas/...
layer scale harness ./scale/...
layer harness-tools harness_tools
layer fuzz fuzzing

echo
if [ -n "$failed_layers" ]; then
  echo "FAILED layers:$failed_layers"
fi
echo "all layers: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
