package authkit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The fuzz targets check two things on any input: nothing panics, and
// nothing the fuzzer makes up is accepted unless it carries a MAC or a
// signature the test itself produced. Seeds come from the vectors.

func FuzzUnseal(f *testing.F) {
	// Seeds must be the same in every fuzz worker, so they are the vectors
	// (random seals made here would differ from process to process).
	keyring := mustKeyring(f, map[string]string{"1": testCookiePassword})
	now := time.UnixMilli(1_800_000_000_000)
	genuine := map[string]bool{}
	for _, v := range loadIronVectors(f) {
		if v.ExpectedError == "" { // made by iron-session: genuine when its password is ours
			genuine[strings.TrimSuffix(v.Sealed, "~2")] = true
		}
		f.Add(v.Sealed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if _, err := keyring.Unseal(value, now); err == nil {
			if seal := value[:strings.IndexByte(value, '~')]; !genuine[seal] {
				t.Fatalf("forgery accepted: %q", value)
			}
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	keyA, keyB := testKeys(f)
	clock := newFakeClock()
	cache := newJWKSCache("http://127.0.0.1:1/unused", nil, clock.now)
	keys, err := parseJWKS(mustJSON(f, map[string]any{"keys": []any{jwkOf("kid-a", "RS256", &keyA.PublicKey)}}))
	if err != nil {
		f.Fatal(err)
	}
	cache.keys, cache.fetched, cache.fetchedAt, cache.lastAttempt = keys, true, clock.now(), clock.now()
	verifier := &tokenVerifier{keys: cache, leeway: defaultTokenLeeway, now: clock.now}
	genuine := map[string]bool{}
	for _, claims := range []map[string]any{{"sub": "u"}, {"sub": "u", "exp": clock.now().Unix() + 60, "roles": []string{"a"}}} {
		token := signRS(f, keyA, "RS256", "kid-a", claims)
		genuine[token[:strings.LastIndexByte(token, '.')]] = true
		f.Add(token)
		f.Add(signRS(f, keyB, "RS256", "kid-a", claims))
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	for _, v := range loadIronVectors(f) {
		var payload struct {
			AccessToken string `json:"accessToken"`
		}
		if json.Unmarshal(v.Expected, &payload) == nil && payload.AccessToken != "" {
			f.Add(payload.AccessToken)
		}
	}
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := verifyToken(verifier, token); err == nil {
			if !genuine[token[:strings.LastIndexByte(token, '.')]] {
				t.Fatalf("forgery accepted: %q", token)
			}
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	keyA, _ := testKeys(f)
	f.Add(mustJSON(f, map[string]any{"keys": []any{jwkOf("kid-a", "RS256", &keyA.PublicKey)}}))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.key.N.BitLen() < minRSABits || k.key.E < 3 {
				t.Fatalf("weak key accepted: %d bits, e=%d", k.key.N.BitLen(), k.key.E)
			}
		}
	})
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
