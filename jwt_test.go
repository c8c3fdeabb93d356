package authkit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	testKeysOnce sync.Once
	testKeyA     *rsa.PrivateKey
	testKeyB     *rsa.PrivateKey
)

// testKeys returns the two RSA-2048 test keys of testdata/. They are fixed,
// not generated, so signatures are the same in every process: fuzz workers
// then see the tokens their coordinator made.
func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	testKeysOnce.Do(func() {
		testKeyA = loadTestKey(t, "testdata/test-rsa-a.pem")
		testKeyB = loadTestKey(t, "testdata/test-rsa-b.pem")
	})
	return testKeyA, testKeyB
}

func loadTestKey(t testing.TB, path string) *rsa.PrivateKey {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key.(*rsa.PrivateKey)
}

func jsonSegment(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signRS signs claims with key under the given alg (RS256/384/512) and kid.
func signRS(t testing.TB, key *rsa.PrivateKey, alg, kid string, claims map[string]any) string {
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	input := jsonSegment(t, header) + "." + jsonSegment(t, claims)
	hash, _ := tokenHash(alg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, hash, digest(hash, input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func jwkOf(kid, alg string, pub *rsa.PublicKey) map[string]any {
	k := map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
	if alg != "" {
		k["alg"] = alg
	}
	return k
}

// fakeClock is a settable clock for cache and expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer serves a key set that tests can change and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	status  int
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...map[string]any) {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.set(http.StatusOK, string(b))
}

func (s *jwksServer) set(status int, body string) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func newTestVerifier(s *jwksServer, clock *fakeClock) *tokenVerifier {
	return &tokenVerifier{
		keys:   newJWKSCache(s.URL, s.Client(), clock.now),
		leeway: defaultTokenLeeway,
		now:    clock.now,
	}
}

func TestVerifyToken(t *testing.T) {
	keyA, keyB := testKeys(t)
	clock := newFakeClock()
	now := clock.now().Unix()
	server := newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey), jwkOf("kid-384", "", &keyA.PublicKey))
	verifier := newTestVerifier(server, clock)
	valid := map[string]any{"sub": "user_1", "sid": "session_1", "org_id": "org_1", "exp": now + 300, "iat": now,
		"role": "admin", "roles": []string{"admin", "member"}, "permissions": []string{"posts:read"},
		"entitlements": []string{"audit-logs"}, "feature_flags": []string{"beta"}}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for key, value := range valid {
			c[key] = value
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&keyA.PublicKey)
	hs256 := func() string { // HS256 keyed with the public key: the classic confusion attack
		input := jsonSegment(t, map[string]any{"alg": "HS256", "kid": "kid-a"}) + "." + jsonSegment(t, valid)
		m := hmac.New(sha256.New, pubDER)
		m.Write([]byte(input))
		return input + "." + b64url(m.Sum(nil))
	}
	good := signRS(t, keyA, "RS256", "kid-a", valid)
	parts := strings.Split(good, ".")

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"valid RS256", good, nil},
		{"valid RS384 against a key that pins no alg", signRS(t, keyA, "RS384", "kid-384", valid), nil},
		{"without exp", signRS(t, keyA, "RS256", "kid-a", with("exp", nil)), nil},
		{"expired within the leeway", signRS(t, keyA, "RS256", "kid-a", with("exp", now-2)), nil},
		{"expired", signRS(t, keyA, "RS256", "kid-a", with("exp", now-10)), ErrTokenExpired},
		{"not yet valid", signRS(t, keyA, "RS256", "kid-a", with("nbf", now+60)), ErrTokenNotYetValid},
		{"nbf within the leeway", signRS(t, keyA, "RS256", "kid-a", with("nbf", now+2)), nil},
		{"alg none", jsonSegment(t, map[string]any{"alg": "none"}) + "." + parts[1] + ".", ErrTokenAlgorithm},
		{"HS256 keyed with the public key", hs256(), ErrTokenAlgorithm},
		{"ES256", jsonSegment(t, map[string]any{"alg": "ES256", "kid": "kid-a"}) + "." + parts[1] + "." + parts[2], ErrTokenAlgorithm},
		{"unknown kid", signRS(t, keyA, "RS256", "kid-z", valid), ErrTokenUnknownKey},
		{"alg the key does not allow", signRS(t, keyA, "RS512", "kid-a", valid), ErrTokenUnknownKey},
		{"signed by another key", signRS(t, keyB, "RS256", "kid-a", valid), ErrTokenSignature},
		{"claims swapped after signing", parts[0] + "." + jsonSegment(t, with("sub", "user_2")) + "." + parts[2], ErrTokenSignature},
		{"signature truncated", good[:len(good)-10], ErrTokenSignature},
		{"signature with a line break", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], ErrTokenMalformed},
		{"crit header", jsonSegment(t, map[string]any{"alg": "RS256", "kid": "kid-a", "crit": []string{"x"}}) + "." + parts[1] + "." + parts[2], ErrTokenMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrTokenMalformed},
		{"four segments", good + ".x", ErrTokenMalformed},
		{"header not base64url", "@@." + parts[1] + "." + parts[2], ErrTokenMalformed},
		{"payload an array", parts[0] + "." + b64url([]byte(`[1]`)) + "." + parts[2], ErrTokenMalformed},
		{"exp a string", signRS(t, keyA, "RS256", "kid-a", with("exp", "tomorrow")), ErrTokenMalformed},
		{"roles not a list", signRS(t, keyA, "RS256", "kid-a", with("roles", "admin")), ErrTokenMalformed},
		{"empty", "", ErrTokenMalformed},
		{"huge", parts[0] + "." + strings.Repeat("A", maxTokenLength) + "." + parts[2], ErrTokenMalformed},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			claims, err := verifyToken(verifier, tt.token)
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && claims.Subject != "user_1" {
				t.Fatalf("claims = %+v", claims)
			}
		})
	}
}

func TestVerifiedClaims(t *testing.T) {
	keyA, _ := testKeys(t)
	clock := newFakeClock()
	now := clock.now().Unix()
	verifier := newTestVerifier(newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey)), clock)
	token := signRS(t, keyA, "RS256", "kid-a", map[string]any{"sub": "user_1", "sid": "session_1", "org_id": "org_1",
		"role": "admin", "roles": []string{"admin", "member"}, "permissions": []string{"a", "b"},
		"entitlements": []string{"e"}, "feature_flags": []string{"f"}, "exp": now + 600, "iat": now})
	c, err := verifyToken(verifier, token)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join([]string{c.Subject, c.SessionID, c.OrganizationID, c.Role, strings.Join(c.Roles, ","),
		strings.Join(c.Permissions, ","), strings.Join(c.Entitlements, ","), strings.Join(c.FeatureFlags, ",")}, "|")
	if want := "user_1|session_1|org_1|admin|admin,member|a,b|e|f"; got != want {
		t.Fatalf("claims %s, want %s", got, want)
	}
	if exp, ok := tokenExpiry(c); !ok || exp.Unix() != now+600 {
		t.Fatalf("expiresAt = %v, %v", exp, ok)
	}
}

func TestRefreshBuffer(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name       string
		claims     tokenClaims
		configured time.Duration
		want       time.Duration
	}{
		{"long-lived token", tokenClaims{IssuedAt: f(1000), ExpiresAt: f(1000 + 3600)}, -1, 60 * time.Second},
		{"token living 300 s", tokenClaims{IssuedAt: f(1000), ExpiresAt: f(1300)}, -1, 30 * time.Second},
		{"no iat counts as lifetime 0", tokenClaims{ExpiresAt: f(5000)}, -1, 30 * time.Second},
		{"no exp never expires", tokenClaims{}, -1, 0},
		{"configured", tokenClaims{IssuedAt: f(1000), ExpiresAt: f(1300)}, 90 * time.Second, 90 * time.Second},
		{"configured zero", tokenClaims{IssuedAt: f(1000), ExpiresAt: f(4600)}, 0, 0},
	}
	for _, tt := range tests {
		if got := refreshBuffer(&tt.claims, tt.configured); got != tt.want {
			t.Errorf("%s: buffer = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestJWKSRefetchesForANewKidAtMostEvery30s(t *testing.T) {
	keyA, keyB := testKeys(t)
	clock := newFakeClock()
	server := newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey))
	verifier := newTestVerifier(server, clock)
	claims := map[string]any{"sub": "user_1"}

	if _, err := verifyToken(verifier, signRS(t, keyA, "RS256", "kid-a", claims)); err != nil {
		t.Fatal(err)
	}
	// WorkOS publishes a new key; a token signed with it arrives at once.
	server.setKeys(t, jwkOf("kid-a", "RS256", &keyA.PublicKey), jwkOf("kid-b", "RS256", &keyB.PublicKey))
	fresh := signRS(t, keyB, "RS256", "kid-b", claims)
	if _, err := verifyToken(verifier, fresh); err != ErrTokenUnknownKey {
		t.Fatalf("within 30 s of the last fetch: err = %v, want ErrTokenUnknownKey", err)
	}
	clock.advance(jwksRefetchInterval)
	if _, err := verifyToken(verifier, fresh); err != nil {
		t.Fatalf("after 30 s the new kid must be fetched: %v", err)
	}
	if got := server.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

func TestJWKSUnknownKidFloodCausesOneFetch(t *testing.T) {
	keyA, _ := testKeys(t)
	clock := newFakeClock()
	server := newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey))
	verifier := newTestVerifier(server, clock)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		kid := "forged-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		token := signRS(t, keyA, "RS256", kid, map[string]any{"sub": "x"})
		wg.Add(1)
		go func(token string) {
			defer wg.Done()
			verifyToken(verifier, token)
		}(token)
	}
	wg.Wait()
	if got := server.fetches.Load(); got != 1 {
		t.Fatalf("50 concurrent unknown kids caused %d fetches, want 1", got)
	}
}

func TestJWKSFailures(t *testing.T) {
	keyA, _ := testKeys(t)
	claims := map[string]any{"sub": "user_1"}
	tests := []struct {
		name string
		// before breaks the server before the first verification; after
		// breaks it once keys are cached and then lets them go stale.
		before, after func(*jwksServer)
		want          error
	}{
		{"down before any fetch", func(s *jwksServer) { s.set(http.StatusBadGateway, "<html>") }, nil, ErrJWKSUnavailable},
		{"garbage before any fetch", func(s *jwksServer) { s.set(http.StatusOK, "not json") }, nil, ErrJWKSUnavailable},
		{"empty key set", func(s *jwksServer) { s.set(http.StatusOK, `{"keys":[]}`) }, nil, ErrTokenUnknownKey},
		{"only weak keys", func(s *jwksServer) {
			weak, _ := rsa.GenerateKey(rand.Reader, 1024)
			s.setKeys(t, jwkOf("kid-a", "RS256", &weak.PublicKey))
		}, nil, ErrTokenUnknownKey},
		{"down after keys were cached keeps them", nil, func(s *jwksServer) { s.set(http.StatusServiceUnavailable, "") }, nil},
		{"garbage after keys were cached keeps them", nil, func(s *jwksServer) { s.set(http.StatusOK, "{") }, nil},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			server := newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey))
			verifier := newTestVerifier(server, clock)
			token := signRS(t, keyA, "RS256", "kid-a", claims)
			if tt.before != nil {
				tt.before(server)
			}
			_, err := verifyToken(verifier, token)
			if tt.after != nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.after(server)
				clock.advance(jwksMaxAge)
				_, err = verifyToken(verifier, token)
			}
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestJWKSRecoversAfterOutage(t *testing.T) {
	keyA, _ := testKeys(t)
	clock := newFakeClock()
	server := newJWKSServer(t, jwkOf("kid-a", "RS256", &keyA.PublicKey))
	verifier := newTestVerifier(server, clock)
	token := signRS(t, keyA, "RS256", "kid-a", map[string]any{"sub": "user_1"})
	server.set(http.StatusInternalServerError, "")
	for i := 0; i < 10; i++ {
		if _, err := verifyToken(verifier, token); err != ErrJWKSUnavailable {
			t.Fatalf("err = %v", err)
		}
	}
	if got := server.fetches.Load(); got != 1 {
		t.Fatalf("retries within a second: %d fetches, want 1", got)
	}
	server.setKeys(t, jwkOf("kid-a", "RS256", &keyA.PublicKey))
	clock.advance(jwksRetryInterval)
	if _, err := verifyToken(verifier, token); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	keyA, keyB := testKeys(t)
	set := map[string]any{"keys": []any{
		jwkOf("enc", "RS256", &keyA.PublicKey),
		map[string]any{"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
		map[string]any{"kty": "RSA", "kid": "bad-n", "n": "@@", "e": "AQAB"},
		map[string]any{"kty": "RSA", "kid": "ops", "key_ops": []string{"encrypt"}, "n": "AQAB", "e": "AQAB"},
		jwkOf("good", "RS256", &keyB.PublicKey),
	}}
	set["keys"].([]any)[0].(map[string]any)["use"] = "enc"
	b, _ := json.Marshal(set)
	keys, err := parseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].kid != "good" || keys[0].key.N.Cmp(keyB.PublicKey.N) != 0 {
		t.Fatalf("keys = %+v", keys)
	}
}
