package authkit

import (
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// BenchmarkColdPath splits a cache miss of a valid session into its steps,
// to show where its time goes; run it interpreted too (README,
// Performance):
//
//	go test -run '^$' -bench ColdPath -benchmem .
//	yaegi test -run '^$' -bench ColdPath -benchmem .   (in the GOPATH copy)
func BenchmarkColdPath(b *testing.B) {
	env := newTestEnv(b, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	a := env.ak
	now := time.Now()
	plain, err := unseal(a.s.keyring, sealed, now)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := decodeSession(plain)
	if err != nil {
		b.Fatal(err)
	}
	claims, err := verifyToken(a.verifier, sess.accessToken)
	if err != nil {
		b.Fatal(err)
	}
	lines := []string{"theme=dark; wos-session=" + sealed}
	steps := []struct {
		name string
		run  func()
	}{
		{"read cookies", func() { readCookies(lines, a.s.cookie.name, a.requestCookieKinds) }},
		{"unseal", func() { unseal(a.s.keyring, sealed, now) }},
		{"decode session", func() { decodeSession(plain) }},
		{"verify token", func() { verifyToken(a.verifier, sess.accessToken) }},
		{"build principal", func() { sessionPrincipal(claims, sess, false) }},
		// signIn builds the principal and caches it, here again and again
		// under the same key.
		{"sign in and cache", func() { signIn(a, &authResult{}, sess, claims, sealed, now) }},
	}
	for _, step := range steps {
		b.Run(step.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				step.run()
			}
		})
	}
}
