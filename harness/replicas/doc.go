// Package replicas measures the plugin behind several Traefik replicas:
// one fake WorkOS with short-lived, single-use refresh tokens, N real
// Traefik v3.6.12 processes running one plugin configuration, and B
// simulated browsers whose pages fire parallel requests that land on
// different replicas, each browser keeping its cookies as a browser does
// (the last Set-Cookie to arrive wins, deletions included). It counts what
// users would see — requests refused while their WorkOS session was alive,
// sessions lost, 5xx — and what WorkOS would see: refresh calls per
// rotation. It then signs one session out through replica 1 and times how
// long each replica keeps accepting the old cookie.
//
// Modes: strict single use (TestReplicasStrict), WorkOS's replay grace
// (TestReplicasGrace), a shared
// redis-server the test starts (TestReplicasRedis, plugin key redisUrl),
// and Redis faults (TestReplicasRedisFaults: killed and restarted, slow,
// wrong password). The thresholds in replicas_test.go are the
// specification; each test prints its figures whether or not it passes.
//
// Everything listens on 127.0.0.1 and stops by itself. The CI default
// runs each mode's load for 30 s with 3 replicas and 40 clients; a long
// run is
//
//	cd harness && AUTHKIT_REQUIRE_TRAEFIK=1 REPLICAS_DURATION=10m \
//	  REPLICAS_COUNT=3 REPLICAS_CLIENTS=40 REPLICAS_REPORT_DIR=/tmp \
//	  go test -count=1 -v -timeout 90m -run 'TestReplicas' ./replicas/
//
// Variables: REPLICAS_DURATION (load phase per mode; the fault tests'
// phases are a quarter of it, at least one idle cycle), REPLICAS_COUNT,
// REPLICAS_CLIENTS, REPLICAS_SPREAD (random, the default, or roundrobin:
// how a burst's requests pick replicas), REPLICAS_TOKEN_TTL (the fake's
// access-token lifetime, default 6s), REPLICAS_GRACE (TestReplicasGrace's
// window, default 30s), REPLICAS_REPORT_DIR (write replicas-<test>.json
// there), REPLICAS_PLUGIN_DIR (the plugin source to run, default this
// repository: another checkout, e.g. one exported with git archive).
// Like the other end-to-end tests it is skipped when the Traefik binary
// or redis-server is missing, unless AUTHKIT_REQUIRE_TRAEFIK is set.
package replicas
