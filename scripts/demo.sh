#!/usr/bin/env bash
# Starts the local demo stack on 127.0.0.1:8080: Traefik with the plugin in
# front of a page that shows what the upstream received, signing in against
# a built-in fake WorkOS unless WORKOS_CLIENT_ID, WORKOS_API_KEY,
# WORKOS_COOKIE_PASSWORD and WORKOS_REDIRECT_URI point at a real one.
# Uses real Traefik v3.6.12 once harness/build-traefik.sh has built it (the
# test command does), else the plugin in yaegi as Traefik loads it.
set -euo pipefail
. "$(dirname "$0")/tools.sh"
cd "$repo_root/harness"
exec go run ./cmd/demo "$@"
