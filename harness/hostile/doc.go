// Package hostile sends hostile traffic through the real Traefik v3.6.12
// running the plugin (SPEC.md "Bounded work", "What the upstream
// receives", "Routes the plugin answers itself"), so Traefik's own HTTP
// parsing, header canonicalisation and limits sit between the attacker
// and the plugin: forged and spent session cookies in bulk, identity
// headers spoofed in every spelling (written byte for byte on a net.Conn),
// an unverified Authorization with forwardAccessToken, Cookie headers of
// ~900 KiB, organization switches from other sites, a HEAD to the
// callback and oversized or multipart bodies. The root package's
// bounded_test.go and headertrust_test.go prove the same behaviours
// against the plugin alone.
//
// Each test starts its own Traefik, fake WorkOS and upstream on
// 127.0.0.1. The upstream also sits behind a router without the plugin
// (/bare/), which shows what Traefik itself does with a request.
//
//	cd harness && AUTHKIT_REQUIRE_TRAEFIK=1 go test -count=1 -v ./hostile/
//
// HOSTILE_PLUGIN_DIR runs another plugin checkout instead of this
// repository, e.g. the plugin before its hardening:
//
//	mkdir -p /tmp/authkit-before && git archive 271351d | tar -x -C /tmp/authkit-before
//	HOSTILE_PLUGIN_DIR=/tmp/authkit-before AUTHKIT_REQUIRE_TRAEFIK=1 go test -count=1 -v ./hostile/
//
// Like the other end-to-end tests, these are skipped when the Traefik
// binary is missing, unless AUTHKIT_REQUIRE_TRAEFIK is set.
package hostile
