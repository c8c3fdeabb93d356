// Package soak holds a long-running end-to-end test: a sustained, mixed
// load through the real Traefik v3.6.12 with the plugin, against the fake
// WorkOS, while the fake misbehaves on a schedule (rate limits, JSON and
// HTML 5xx, timeouts, dropped connections, invalid_grant, a JWKS outage).
// It checks what unit tests cannot: that under concurrency and faults the
// plugin never answers 5xx, never mixes identities, never burns a session
// whose refresh token was still good, refreshes each token once, and keeps
// Traefik's memory flat. See soak_test.go for the invariants.
//
// The test only talks to 127.0.0.1 and stops by itself. Its length comes from
// SOAK_DURATION (default 60s, enough for CI); a longer soak is
//
//	cd harness && ./build-traefik.sh &&
//	  AUTHKIT_REQUIRE_TRAEFIK=1 SOAK_DURATION=5m go test -count=1 -v -timeout 20m ./soak
//
// Like the other end-to-end tests it is skipped when the Traefik binary is
// missing, unless AUTHKIT_REQUIRE_TRAEFIK is set.
package soak
