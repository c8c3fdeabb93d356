#!/usr/bin/env bash
# Builds the real Traefik v3.6.12 (a Go tool of this module, see go.mod) into
# ../.cache/bin/traefik-v3.6.12, once. The first build takes about 6 minutes on
# 2 cores, so it is skipped while the binary exists and was built from the
# same go.sum (recorded next to it); a changed go.sum means other dependency
# versions and triggers a rebuild. Prints the binary's path last.
set -euo pipefail
cd "$(dirname "$0")"

version=v3.6.12
bin_dir=../.cache/bin
bin="$bin_dir/traefik-$version"
stamp="$bin.gosum"
# The stamp covers go.sum and this script, so a change of build flags here
# rebuilds too.
sum=$(cat go.sum "$(basename "$0")" | sha256sum | cut -d' ' -f1)

if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
  echo "traefik $version: up to date" >&2
else
  mkdir -p "$bin_dir"
  echo "traefik $version: building (first build takes ~6 min on 2 cores)" >&2
  start=$(date +%s)
  # Build to a temporary name so an interrupted build never leaves a
  # half-written binary that the next run would trust.
  # Stamp the version as Traefik's release build does; without it the
  # binary reports "dev", which Traefik treats specially (version check).
  go build -o "$bin.tmp" \
    -ldflags "-X github.com/traefik/traefik/v3/pkg/version.Version=$version" \
    github.com/traefik/traefik/v3/cmd/traefik
  mv "$bin.tmp" "$bin"
  echo "$sum" >"$stamp"
  echo "traefik $version: built in $(($(date +%s) - start))s" >&2
fi
realpath "$bin"
