package authkit

import (
	"testing"
	"time"
)

// Benchmarks of the per-request cryptography. Run them compiled with
// `go test -bench . -run '^$'` and interpreted with `yaegi test -bench`;
// scripts/bench.sh compares both with benchstat.

func benchSession(b *testing.B) (*Keyring, string, time.Time) {
	for _, v := range loadIronVectors(b) {
		if v.Name == "authkit-session-ttl0" {
			return mustKeyring(b, v.passwords(b)), v.Sealed, time.UnixMilli(v.NowMs)
		}
	}
	b.Fatal("vector authkit-session-ttl0 missing")
	return nil, "", time.Time{}
}

func BenchmarkUnsealSession(b *testing.B) {
	keyring, sealed, now := benchSession(b)
	b.SetBytes(int64(len(sealed)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := keyring.Unseal(sealed, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealSession(b *testing.B) {
	keyring, sealed, now := benchSession(b)
	plain, err := keyring.Unseal(sealed, now)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plain)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := keyring.Seal(plain, 0, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	keyA, _ := testKeys(b)
	clock := newFakeClock()
	verifier := newTestVerifier(newJWKSServer(b, jwkOf("kid-a", "RS256", &keyA.PublicKey)), clock)
	token := signRS(b, keyA, "RS256", "kid-a", map[string]any{"sub": "user_1", "sid": "s", "exp": clock.now().Unix() + 300,
		"permissions": []string{"a", "b", "c"}, "roles": []string{"admin"}})
	if _, err := verifyToken(verifier, token); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := verifyToken(verifier, token); err != nil {
			b.Fatal(err)
		}
	}
}
