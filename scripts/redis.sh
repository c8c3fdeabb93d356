#!/usr/bin/env bash
# Starts and stops the real Redis servers the Redis client tests
# (redisclient_test.go) run against. Those tests cannot start processes
# themselves: os/exec does not exist under yaegi.
#
#   scripts/redis.sh start DIR   start three servers in DIR, print their URLs
#   scripts/redis.sh stop DIR    stop them
#
# `start` runs, on 127.0.0.1 and free random ports, redis-server without
# persistence (`save ""`, `appendonly no`), daemonized with pid files:
#   plain  no authentication;
#   auth   `requirepass` for the default user and an ACL user `authkit`,
#          both with the same random password (a test tells them apart with
#          ACL WHOAMI);
#   tls    TLS only (`port 0`), with a CA and a server certificate for
#          127.0.0.1 and localhost generated into DIR.
# and prints, for eval, the variables the tests read:
#   export AUTHKIT_TEST_REDIS_URL=redis://127.0.0.1:PORT
#   export AUTHKIT_TEST_REDIS_AUTH_URL=redis://authkit:PASSWORD@127.0.0.1:PORT
#   export AUTHKIT_TEST_REDIS_TLS_URL=rediss://127.0.0.1:PORT
#   export AUTHKIT_TEST_REDIS_CA_FILE=DIR/ca.crt
# A redis-server built without TLS gets a warning on stderr and no TLS lines.
# Servers already running from DIR are stopped first.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# = 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
names="plain auth tls"

# stop_one NAME kills the server whose pid NAME.pid holds, if it is still
# a redis-server (a pid file left from an earlier boot may name any process
# by now), and waits up to 5 s for it to exit.
stop_one() {
  local pid i
  [ -f "$dir/$1.pid" ] || return 0
  pid=$(cat "$dir/$1.pid")
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ]; then
    kill "$pid"
    for i in $(seq 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
  fi
  rm -f "$dir/$1.pid"
}

stop() {
  local name
  for name in $names; do stop_one "$name"; done
}

# random_port prints a port nothing listens on now; a server that loses
# the race for it fails to start and start_server tries another.
random_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# certificates writes ca.crt and a server certificate (server.crt,
# server.key) for IP 127.0.0.1 and DNS localhost, signed by it: clients
# verify the server's name, so the SAN must hold what the URL names.
certificates() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 30 -subj /CN=traefik-authkit-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=localhost 2>/dev/null
  printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
}

# start_server NAME PING_ARGS... writes NAME.conf from $conf (a template
# where PORT stands for the port), starts the server and waits until
# `redis-cli PING_ARGS -p PORT ping` answers PONG. It prints the port.
# A port taken meanwhile (the server binds it after daemonizing) is
# retried with another. It returns 3 when the server refused its
# configuration or died over TLS (for the TLS server: a redis-server built
# without TLS), 1 for any other failure.
start_server() {
  local name=$1; shift
  local attempt port i
  mkdir -p "$dir/$name"
  for attempt in 1 2 3 4 5; do
    port=$(random_port)
    rm -f "$dir/$name.log"
    printf '%s\n' "${conf//PORT/$port}" \
      "bind 127.0.0.1" "daemonize yes" "pidfile \"$dir/$name.pid\"" "logfile \"$dir/$name.log\"" \
      "dir \"$dir/$name\"" 'save ""' "appendonly no" >"$dir/$name.conf"
    if ! redis-server "$dir/$name.conf" </dev/null >"$dir/$name.err" 2>&1; then
      cat "$dir/$name.err" >&2
      return 3
    fi
    for i in $(seq 50); do
      if [ "$(redis-cli "$@" -p "$port" ping 2>/dev/null)" = PONG ]; then
        echo "$port"
        return 0
      fi
      # Redis logs why it exits; no need to wait out the 5 s then.
      grep -qE 'Failed|Address already in use' "$dir/$name.log" 2>/dev/null && break
      sleep 0.1
    done
    stop_one "$name"
    grep -q 'Address already in use' "$dir/$name.log" 2>/dev/null && continue
    grep -qi 'tls' "$dir/$name.log" 2>/dev/null && return 3
    break
  done
  echo "redis.sh: the $name server did not answer; see $dir/$name.log" >&2
  return 1
}

start() {
  command -v redis-server >/dev/null || { echo "redis.sh: no redis-server (source scripts/tools.sh && ensure_redis)" >&2; exit 1; }
  stop
  local password plain auth tls rc
  password=$(openssl rand -hex 16)

  conf="port PORT"
  plain=$(start_server plain)

  conf="port PORT
requirepass $password
user authkit on >$password ~* &* +@all"
  auth=$(start_server auth --no-auth-warning -a "$password")

  certificates
  conf="port 0
tls-port PORT
tls-cert-file \"$dir/server.crt\"
tls-key-file \"$dir/server.key\"
tls-ca-cert-file \"$dir/ca.crt\"
tls-auth-clients no"
  rc=0
  tls=$(start_server tls --tls --cacert "$dir/ca.crt") || rc=$?

  printf 'export %s=%q\n' AUTHKIT_TEST_REDIS_URL "redis://127.0.0.1:$plain" \
    AUTHKIT_TEST_REDIS_AUTH_URL "redis://authkit:$password@127.0.0.1:$auth"
  if [ "$rc" = 0 ]; then
    printf 'export %s=%q\n' AUTHKIT_TEST_REDIS_TLS_URL "rediss://127.0.0.1:$tls" \
      AUTHKIT_TEST_REDIS_CA_FILE "$dir/ca.crt"
  elif [ "$rc" = 3 ]; then
    echo "redis.sh: no TLS server: this redis-server could not start one (built without TLS?); see $dir/tls.log" >&2
  else
    exit "$rc"
  fi
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
