#!/usr/bin/env bash
# Runs the harness module's tests: the Traefik-mirroring loader, the real
# Traefik v3.6.12 with the plugin in local mode, and headless Chromium through
# it. Installs what is missing first (Chromium from Debian, the Traefik binary
# via build-traefik.sh) and sets AUTHKIT_REQUIRE_TRAEFIK so that a missing
# binary fails the run instead of skipping the end-to-end tests.
# Called by ../scripts/test.sh, which counts the "--- PASS"/"--- FAIL" lines.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium" >&2
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

./build-traefik.sh >/dev/null

# With package arguments, test only those (scripts/test.sh runs the
# packages as separate layers); without, every package.
export AUTHKIT_REQUIRE_TRAEFIK=1
if [ $# -eq 0 ]; then set -- ./...; fi
go vet "$@"
go test -count=1 -v -timeout 15m "$@"
