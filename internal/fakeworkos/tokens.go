package fakeworkos

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"time"
)

// signingKey is one RSA key pair. Unpublished keys sign tokens but are not
// served by the JWKS endpoint, which is how tests reach the verifier's
// "unknown kid → refetch" path.
type signingKey struct {
	id        string
	private   *rsa.PrivateKey
	published bool
}

// jwk is the public half of a signing key in JWKS form (RFC 7517).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

func generateKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("fakeworkos: generating RSA key: " + err.Error())
	}
	return key
}

func newSigningKey(private *rsa.PrivateKey, published bool) *signingKey {
	return &signingKey{id: randomID("sso_oidc_key_pair_"), private: private, published: published}
}

func (k *signingKey) public() jwk {
	e := big.NewInt(int64(k.private.PublicKey.E)).Bytes()
	return jwk{
		Kty: "RSA",
		Kid: k.id,
		Use: "sig",
		Alg: "RS256",
		N:   base64.RawURLEncoding.EncodeToString(k.private.PublicKey.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(e),
	}
}

// sign produces a compact RS256 JWS of claims.
func (k *signingKey) sign(claims map[string]any) string {
	header := mustJSON(jwtHeader{Alg: "RS256", Kid: k.id, Typ: "JWT"})
	input := base64.RawURLEncoding.EncodeToString(header) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(claims))
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.private, crypto.SHA256, digest[:])
	if err != nil {
		panic("fakeworkos: signing token: " + err.Error())
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// MintAccessToken signs exactly the given claims with the current signing
// key, so tests can build tokens the real service would never issue
// (missing exp, foreign sub, odd types).
func (s *Server) MintAccessToken(claims map[string]any) string {
	s.mu.Lock()
	key := s.current
	s.mu.Unlock()
	return key.sign(claims)
}

// MintSessionToken issues an access token for an existing session as a
// refresh would (auth_time included), but with exp = now + expiresIn. A negative expiresIn gives
// an already expired token, which lets tests exercise the refresh path.
// The session's refresh token is left untouched.
func (s *Server) MintSessionToken(sessionID string, expiresIn time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sessionID]
	if sess == nil {
		return "", fmt.Errorf("fakeworkos: unknown session %q", sessionID)
	}
	return s.current.sign(s.claimsLocked(sess, expiresIn)), nil
}

// claimsLocked builds the claims WorkOS puts in an access token (D.1).
// Organization-scoped claims appear only when the session has an
// organization, as in the real service.
func (s *Server) claimsLocked(sess *session, ttl time.Duration) map[string]any {
	now := s.now()
	claims := map[string]any{
		"iss": s.issuer,
		"sub": sess.userID,
		"sid": sess.id,
		"jti": randomID(""),
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		// auth_time is when the user authenticated, which refreshes keep
		// (H.4): checkRecentAuth-style limits compare against it.
		"auth_time": sess.authTime.Unix(),
	}
	if sess.orgID == "" {
		return claims
	}
	claims["org_id"] = sess.orgID
	user, _ := s.userLocked(sess.userID)
	m, _ := user.membership(sess.orgID)
	roles := m.Roles
	if len(roles) == 0 && m.Role != "" {
		roles = []string{m.Role}
	}
	if m.Role != "" {
		claims["role"] = m.Role
	}
	claims["roles"] = nonNil(roles)
	claims["permissions"] = nonNil(m.Permissions)
	claims["entitlements"] = nonNil(m.Entitlements)
	claims["feature_flags"] = nonNil(m.FeatureFlags)
	return claims
}

// nonNil makes absent lists serialize as [] rather than null.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// KeyID returns the kid of the key that currently signs tokens.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current.id
}

// Key returns the private key that currently signs tokens.
func (s *Server) Key() *rsa.PrivateKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current.private
}

// RotateKey publishes a fresh key and signs with it from now on. Older
// keys stay in the JWKS, as during a real rotation. It returns the new kid.
func (s *Server) RotateKey() string {
	return s.addKey(true)
}

// RotateKeyUnpublished signs with a fresh key that the JWKS does not list
// until PublishKeys is called, so a verifier sees an unknown kid first.
func (s *Server) RotateKeyUnpublished() string {
	return s.addKey(false)
}

func (s *Server) addKey(published bool) string {
	k := newSigningKey(generateKey(), published)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	s.current = k
	return k.id
}

// PublishKeys adds every unpublished key to the JWKS.
func (s *Server) PublishKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(s.keys); i++ {
		s.keys[i].published = true
	}
}

// RetireKey removes a key from the JWKS, so tokens it signed no longer
// verify. Retiring the current key leaves it signing, unpublished.
func (s *Server) RetireKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(s.keys); i++ {
		if s.keys[i].id == kid {
			s.keys[i].published = false
		}
	}
}

func (s *Server) jwksLocked() jwks {
	out := jwks{Keys: []jwk{}}
	for i := 0; i < len(s.keys); i++ {
		if s.keys[i].published {
			out.Keys = append(out.Keys, s.keys[i].public())
		}
	}
	return out
}

// pkceChallenge is the S256 transform of RFC 7636.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// crockford is the ULID alphabet WorkOS identifiers use.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// randomID returns prefix plus 26 random ULID characters.
func randomID(prefix string) string {
	b := randomBytes(26)
	for i := 0; i < len(b); i++ {
		b[i] = crockford[b[i]&31]
	}
	return prefix + string(b)
}

// randomToken returns an opaque, URL-safe secret (codes, refresh tokens).
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(24))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("fakeworkos: reading random bytes: " + err.Error())
	}
	return b
}
