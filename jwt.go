package authkit

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Access-token verification as authkit-nextjs does it with jose
// (WORKOS-PROTOCOL.md D.2): RS* signatures against the WorkOS JWKS, exp and
// nbf checked, nothing else required. Sentinel errors compare with ==.
var (
	ErrTokenMalformed   = errors.New("jwt: malformed token")
	ErrTokenAlgorithm   = errors.New("jwt: unsupported algorithm")
	ErrTokenUnknownKey  = errors.New("jwt: no unique key for the token")
	ErrTokenSignature   = errors.New("jwt: bad signature")
	ErrTokenExpired     = errors.New("jwt: token expired")
	ErrTokenNotYetValid = errors.New("jwt: token not yet valid")
)

// maxTokenLength bounds parsing work; WorkOS tokens are a few KB even with
// many permissions.
const maxTokenLength = 32 << 10

// defaultTokenLeeway absorbs small clock differences between WorkOS and the
// proxy for exp and nbf.
const defaultTokenLeeway = 5 * time.Second

// tokenClaims are the access-token claims AuthKit reads (D.1). Numeric dates
// are pointers because jose treats absent exp and nbf as "no limit".
type tokenClaims struct {
	Subject        string   `json:"sub"`
	SessionID      string   `json:"sid"`
	OrganizationID string   `json:"org_id"`
	Role           string   `json:"role"`
	Roles          []string `json:"roles"`
	Permissions    []string `json:"permissions"`
	Entitlements   []string `json:"entitlements"`
	FeatureFlags   []string `json:"feature_flags"`
	ExpiresAt      *float64 `json:"exp"`
	NotBefore      *float64 `json:"nbf"`
	IssuedAt       *float64 `json:"iat"`
	AuthTime       *float64 `json:"auth_time"`
	Issuer         string   `json:"iss"`
}

type tokenHeader struct {
	Algorithm string          `json:"alg"`
	KeyID     string          `json:"kid"`
	Critical  json.RawMessage `json:"crit"`
}

// parsedToken is a compact JWS split and decoded, not yet verified.
type parsedToken struct {
	header       tokenHeader
	claims       tokenClaims
	signingInput string
	signature    []byte
}

// parseToken decodes a compact JWS without checking its signature. Callers
// use the claims unverified only where authkit-nextjs does: the org_id of an
// expired token for its refresh, and sid for sign-out.
func parseToken(token string) (*parsedToken, error) {
	if len(token) > maxTokenLength || strings.Count(token, ".") != 2 {
		return nil, ErrTokenMalformed
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	p := &parsedToken{signingInput: token[:last]}
	// json.Unmarshal gets its target directly: under the interpreter a
	// pointer to a type with methods, passed on as an `any`, is refused.
	header, err := decodeSegment(token[:first])
	if err != nil || json.Unmarshal(header, &p.header) != nil {
		return nil, ErrTokenMalformed
	}
	claims, err := decodeSegment(token[first+1 : last])
	if err != nil || json.Unmarshal(claims, &p.claims) != nil {
		return nil, ErrTokenMalformed
	}
	// Decoding skips CR and LF, which would make one token many.
	sig, err := base64.RawURLEncoding.DecodeString(token[last+1:])
	if err != nil || strings.ContainsAny(token[last+1:], "\r\n") {
		return nil, ErrTokenMalformed
	}
	p.signature = sig
	return p, nil
}

// decodeSegment base64url-decodes a JWS segment that must hold a JSON object.
func decodeSegment(segment string) ([]byte, error) {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil || len(data) == 0 || data[0] != '{' {
		return nil, ErrTokenMalformed
	}
	return data, nil
}

// tokenHash maps the RSA algorithms WorkOS can sign with to their digest.
// none, HS* (a public key used as an HMAC secret) and anything else are
// refused before a key is looked up.
func tokenHash(alg string) (crypto.Hash, bool) {
	switch alg {
	case "RS256":
		return crypto.SHA256, true
	case "RS384":
		return crypto.SHA384, true
	case "RS512":
		return crypto.SHA512, true
	}
	return 0, false
}

func digest(hash crypto.Hash, data string) []byte {
	switch hash {
	case crypto.SHA384:
		sum := sha512.Sum384([]byte(data))
		return sum[:]
	case crypto.SHA512:
		sum := sha512.Sum512([]byte(data))
		return sum[:]
	}
	sum := sha256.Sum256([]byte(data))
	return sum[:]
}

// tokenVerifier checks access tokens against the keys of one JWKS.
type tokenVerifier struct {
	keys   *jwksCache
	leeway time.Duration
	now    func() time.Time
}

// verifyToken checks the token's algorithm, signature and validity window and
// returns its claims. The error tells apart why a token was refused.
func verifyToken(v *tokenVerifier, token string) (*tokenClaims, error) {
	p, err := parseToken(token)
	if err != nil {
		return nil, err
	}
	hash, ok := tokenHash(p.header.Algorithm)
	if !ok {
		return nil, ErrTokenAlgorithm
	}
	if len(p.header.Critical) > 0 {
		// No extension is understood, so a critical one cannot be honoured.
		return nil, ErrTokenMalformed
	}
	// Time first: an expired token is refused whatever its signature, so
	// it costs no key lookup and no RSA (a session on its way to a refresh,
	// or a replayed cookie).
	if err := checkTokenTime(&p.claims, v.now(), v.leeway); err != nil {
		return nil, err
	}
	key, err := jwksKey(v.keys, p.header.KeyID, p.header.Algorithm)
	if err != nil {
		return nil, err
	}
	if len(p.signature) != key.Size() {
		return nil, ErrTokenSignature
	}
	if rsa.VerifyPKCS1v15(key, hash, digest(hash, p.signingInput), p.signature) != nil {
		return nil, ErrTokenSignature
	}
	return &p.claims, nil
}

// checkTokenTime applies exp and nbf with the given leeway.
func checkTokenTime(c *tokenClaims, now time.Time, leeway time.Duration) error {
	t := float64(now.Unix())
	slack := leeway.Seconds()
	if c.ExpiresAt != nil && *c.ExpiresAt+slack <= t {
		return ErrTokenExpired
	}
	if c.NotBefore != nil && *c.NotBefore-slack > t {
		return ErrTokenNotYetValid
	}
	return nil
}

// tokenExpiry is the token's exp as a time; ok is false when it has none.
func tokenExpiry(c *tokenClaims) (time.Time, bool) {
	if c.ExpiresAt == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.ExpiresAt), 0), true
}

// refreshBuffer is how long before exp a token counts as expiring (D.3):
// 30 s for tokens living 300 s or less, 60 s otherwise, unless configured.
func refreshBuffer(c *tokenClaims, configured time.Duration) time.Duration {
	if configured >= 0 {
		return configured
	}
	if c.ExpiresAt == nil {
		return 0
	}
	issued := *c.ExpiresAt
	if c.IssuedAt != nil {
		issued = *c.IssuedAt
	}
	if *c.ExpiresAt-issued <= 300 {
		return 30 * time.Second
	}
	return 60 * time.Second
}
