# Sourced by the scripts in this folder: installs, once per machine, the tools
# the tests and the demo need. Everything lands under .cache/ (git-ignored) or
# comes from Debian's packages, so a clean clone needs nothing else.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tool_bin="$repo_root/.cache/bin"
mkdir -p "$tool_bin"
export PATH="$tool_bin:$PATH"

yaegi_version=v0.16.1

ensure_yaegi() {
  if [ -x "$tool_bin/yaegi" ] && [ "$(cat "$tool_bin/.yaegi-version" 2>/dev/null)" = "$yaegi_version" ]; then
    return
  fi
  echo "installing yaegi $yaegi_version" >&2
  GOFLAGS= GOBIN="$tool_bin" go install "github.com/traefik/yaegi/cmd/yaegi@$yaegi_version"
  echo "$yaegi_version" > "$tool_bin/.yaegi-version"
}

ensure_debian_package() { # command package
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing Debian package $2" >&2
  if [ "$(id -u)" != 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

ensure_chromium() { ensure_debian_package chromium chromium; }

# ensure_redis installs Debian's redis-server (7.0 on bookworm, built with
# TLS; bookworm has no valkey-server) for scripts/redis.sh, which starts
# its own instances on random ports. The package's system service is never
# started or enabled: a policy-rc.d that refuses every start is in place
# during the installation (Docker images already ship one), and nothing
# here relies on port 6379.
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return
  echo "installing Debian package redis-server" >&2
  if [ "$(id -u)" != 0 ]; then sudo=sudo; else sudo=; fi
  local policy=/usr/sbin/policy-rc.d own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && own_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 redis-server >/dev/null
  local rc=$?
  [ -z "$own_policy" ] || $sudo rm -f "$policy"
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now redis-server >/dev/null 2>&1
  else
    $sudo update-rc.d redis-server disable >/dev/null 2>&1
  fi
  return $rc
}

ensure_node_modules() { # directory holding package.json and package-lock.json
  if [ ! -d "$1/node_modules" ] || [ "$1/package-lock.json" -nt "$1/node_modules" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >&2 && touch node_modules)
  fi
}

# gopath_copy prints a GOPATH whose src/ holds this module at its import path:
# the layout yaegi (and Traefik's plugin loader) resolve imports from.
gopath_copy() {
  local gopath="$repo_root/.cache/gopath"
  local dest="$gopath/src/github.com/traefik-authkit/authkit"
  rm -rf "$dest" && mkdir -p "$dest"
  tar -C "$repo_root" --exclude=./.git --exclude=./.cache --exclude=./harness --exclude=node_modules -cf - . |
    tar -C "$dest" -xf -
  echo "$gopath"
}
