package soak

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// forger makes session cookies an attacker (or a corrupted browser profile)
// could send. Every one must be answered as signed out, never with a 5xx and
// never with an identity.
type forger struct {
	fake      *fakeworkos.Server
	keyring   *authkit.Keyring // the plugin's own password: authentic seals
	stranger  *authkit.Keyring // another password: seals the plugin cannot open
	rogueKey  *rsa.PrivateKey  // a key the JWKS never publishes
	decoySeal string           // a real, signed-in session to tamper with
}

// forgery is one kind of bad cookie; make returns the cookies to send.
// refreshes marks the ones that make the plugin call WorkOS: an authentic
// seal whose token does not verify.
type forgery struct {
	name      string
	refreshes bool
	make      func(f *forger, rng *mrand.Rand) []*http.Cookie
}

// forgeries is the catalogue the forged clients draw from. The ones that
// carry an authentic seal with a bad token make the plugin try a refresh
// with a forged refresh token, which the fake refuses (terminal).
var forgeries = []forgery{
	{"random string", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return session(randomText(rng, 1+rng.IntN(3000)))
	}},
	{"Fe26.2 shaped garbage", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		fields := []string{"Fe26.2", "1", randomHex(rng, 64), randomText(rng, 22), randomText(rng, 200), "", randomHex(rng, 64), randomText(rng, 43)}
		return session(strings.Join(fields, "*") + "~2")
	}},
	{"tampered ciphertext", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return session(tamper(f.decoySeal, 4, rng))
	}},
	{"tampered MAC", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return session(tamper(f.decoySeal, 7, rng))
	}},
	{"sealed with another password", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return session(f.seal(f.stranger, f.rogueToken(rng, "rogue-kid", time.Hour), rng))
	}},
	{"token signed by an unknown key", true, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		kid := fmt.Sprintf("rogue-kid-%d", rng.IntN(1000))
		return session(f.seal(f.keyring, f.rogueToken(rng, kid, time.Hour), rng))
	}},
	{"known kid, wrong key", true, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return session(f.seal(f.keyring, f.rogueToken(rng, f.fake.KeyID(), time.Hour), rng))
	}},
	{"expired real-key token, forged refresh token", true, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		token := f.fake.MintAccessToken(map[string]any{
			"sub": fakeworkos.UserAlice, "sid": "session_forged", "org_id": fakeworkos.OrgAcme,
			"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix(),
		})
		return session(f.seal(f.keyring, token, rng))
	}},
	{"split form garbage", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		return []*http.Cookie{
			{Name: sessionCookie + ".0", Value: "Fe26.2*1*" + randomText(rng, 3000)},
			{Name: sessionCookie + ".1", Value: randomText(rng, 500) + "~2"},
		}
	}},
	{"split form of a tampered seal", false, func(f *forger, rng *mrand.Rand) []*http.Cookie {
		s := tamper(f.decoySeal, 4, rng)
		cut := len(s) / 2
		return []*http.Cookie{{Name: sessionCookie + ".0", Value: s[:cut]}, {Name: sessionCookie + ".1", Value: s[cut:]}}
	}},
}

func session(value string) []*http.Cookie {
	return []*http.Cookie{{Name: sessionCookie, Value: value}}
}

// seal wraps token in an authentic-looking session whose refresh token is
// forged, claiming to be Alice.
func (f *forger) seal(k *authkit.Keyring, token string, rng *mrand.Rand) string {
	payload, _ := json.Marshal(map[string]any{
		"accessToken":  token,
		"refreshToken": forgedTokenPrefix + randomText(rng, 24),
		"user":         map[string]any{"object": "user", "id": fakeworkos.UserAlice, "email": "alice@example.com"},
	})
	sealed, err := k.Seal(payload, 0, time.Now())
	if err != nil {
		panic(err)
	}
	return sealed
}

// rogueToken is a well-formed RS256 access token for Alice signed with a
// key WorkOS never published.
func (f *forger) rogueToken(rng *mrand.Rand, kid string, expiresIn time.Duration) string {
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://api.workos.com/user_management/" + f.fake.ClientID(),
		"sub": fakeworkos.UserAlice, "sid": "session_rogue_" + randomHex(rng, 8),
		"org_id": fakeworkos.OrgAcme, "role": "admin", "permissions": []string{"users:manage"},
		"iat": now.Unix(), "exp": now.Add(expiresIn).Unix(),
	})
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, f.rogueKey, crypto.SHA256, digest[:])
	if err != nil {
		panic(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tamper replaces one character in the middle of an iron field (4 is the
// ciphertext, 7 the MAC) with a different base64url character, so the
// decoded bytes change.
func tamper(seal string, field int, rng *mrand.Rand) string {
	parts := strings.Split(strings.TrimSuffix(seal, "~2"), "*")
	if field >= len(parts) || len(parts[field]) < 4 {
		return seal + "x"
	}
	b := []byte(parts[field])
	i := 1 + rng.IntN(len(b)-2)
	orig := b[i]
	for b[i] == orig {
		b[i] = base64Alphabet[rng.IntN(len(base64Alphabet))]
	}
	parts[field] = string(b)
	return strings.Join(parts, "*") + "~2"
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func randomText(rng *mrand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base64Alphabet[rng.IntN(len(base64Alphabet))]
	}
	return string(b)
}

func randomHex(rng *mrand.Rand, n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = hex[rng.IntN(16)]
	}
	return string(b)
}
