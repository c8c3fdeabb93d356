package authkit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"time"
)

// Sealed payloads (WORKOS-PROTOCOL.md section B): the wos-session cookie and
// the PKCE state that travels as the OAuth state and in the verifier cookie.

const (
	// authStateTTL is the PKCE state's lifetime, in the seal and in its cookie.
	authStateTTL = 600 * time.Second
	// pkceCookiePrefix names the per-flow verifier cookies (E.1).
	pkceCookiePrefix = "wos-auth-verifier"
)

// errSessionPayload reports an authentic seal whose JSON is not a session.
var errSessionPayload = errors.New("session: payload is not a session")

// session is the wos-session payload. Every key it was sealed with is kept
// (fields, decoded from payload when a rewrite needs them), so a rewrite
// preserves what a Next.js app may have sealed beside AuthKit's keys.
type session struct {
	accessToken       string
	refreshToken      string
	userID            string
	userEmail         string
	firstName         string
	lastName          string
	impersonatorEmail string
	payload           []byte // the JSON as unsealed; nil for a new session
	fields            map[string]json.RawMessage
}

// sessionPayload picks what the proxy reads out of the payload in one
// decoding: the tokens must be strings, user and impersonator objects or
// null. (encoding/json matches these names case-insensitively; no
// payload AuthKit or authkit-nextjs writes spells them otherwise.)
type sessionPayload struct {
	AccessToken  string               `json:"accessToken"`
	RefreshToken string               `json:"refreshToken"`
	User         *sessionUser         `json:"user"`
	Impersonator *sessionImpersonator `json:"impersonator"`
}

// sessionUser and sessionImpersonator pick the fields the proxy needs out of
// the camelCase user object authkit-nextjs seals.
type sessionUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

type sessionImpersonator struct {
	Email string `json:"email"`
}

// decodeSession parses an unsealed wos-session payload: a JSON object with
// a string access token. It runs on every cache miss, so it decodes once;
// the other keys are read only when the session is rewritten
// (sessionFields).
func decodeSession(plaintext []byte) (*session, error) {
	var p sessionPayload
	if len(plaintext) == 0 || plaintext[0] != '{' || json.Unmarshal(plaintext, &p) != nil || p.AccessToken == "" {
		return nil, errSessionPayload
	}
	s := &session{accessToken: p.AccessToken, refreshToken: p.RefreshToken, payload: plaintext}
	if p.User != nil {
		s.userID, s.userEmail, s.firstName, s.lastName = p.User.ID, p.User.Email, p.User.FirstName, p.User.LastName
	}
	if p.Impersonator != nil {
		s.impersonatorEmail = p.Impersonator.Email
	}
	return s, nil
}

// sessionFields returns every key of the session's payload.
func sessionFields(s *session) map[string]json.RawMessage {
	if s.fields == nil && s.payload != nil {
		json.Unmarshal(s.payload, &s.fields) // decodeSession checked it is an object
	}
	return s.fields
}

// newSession builds the payload authkit-nextjs seals after a sign-in or a
// refresh: {accessToken, refreshToken, user, impersonator?,
// authenticationMethod?}. Keys of previous that AuthKit does not own survive.
// user is the camelCase SDK user; impersonator may be nil.
func newSession(previous *session, accessToken, refreshToken string, user json.RawMessage, impersonator json.RawMessage, authenticationMethod string) (*session, error) {
	s := &session{accessToken: accessToken, refreshToken: refreshToken, fields: map[string]json.RawMessage{}}
	if previous != nil {
		for k, v := range sessionFields(previous) {
			s.fields[k] = v
		}
	}
	delete(s.fields, "impersonator")
	delete(s.fields, "authenticationMethod")
	s.fields["accessToken"] = jsonString(accessToken)
	s.fields["refreshToken"] = jsonString(refreshToken)
	s.fields["user"] = user
	if len(impersonator) > 0 && string(impersonator) != "null" {
		s.fields["impersonator"] = impersonator
	}
	if authenticationMethod != "" {
		s.fields["authenticationMethod"] = jsonString(authenticationMethod)
	}
	// Re-read the result so the parsed fields cannot disagree with the JSON.
	return decodeSession(s.encode())
}

// encode returns the JSON to seal.
func (s *session) encode() []byte {
	if s.payload != nil {
		return s.payload
	}
	b, _ := json.Marshal(s.fields) // a map of RawMessage values cannot fail
	return b
}

func jsonString(v string) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// authState is the sealed PKCE state (B.2). Field names are the ones
// authkit-nextjs writes, so states from either side open on the other.
type authState struct {
	Nonce          string `json:"nonce"`
	CodeVerifier   string `json:"codeVerifier"`
	CustomState    string `json:"customState,omitempty"`
	ReturnPathname string `json:"returnPathname,omitempty"`
	// MaxAge is the step-up limit a sign-in was started for (seconds): the
	// callback checks the new session meets it. authkit-nextjs ignores it.
	MaxAge int `json:"maxAge,omitempty"`
}

var errAuthState = errors.New("state: payload is not a PKCE state")

// decodeAuthState validates like authkit-nextjs's non-strict schema: nonce and
// codeVerifier are required strings, the rest are strings when present, and
// unknown keys are ignored.
func decodeAuthState(plaintext []byte) (*authState, error) {
	var st authState
	if err := json.Unmarshal(plaintext, &st); err != nil || st.Nonce == "" || st.CodeVerifier == "" {
		return nil, errAuthState
	}
	return &st, nil
}

// newAuthState starts a sign-in flow: a fresh nonce and PKCE verifier.
func newAuthState(returnPathname string) (*authState, error) {
	nonce, err := randomUUID()
	if err != nil {
		return nil, err
	}
	verifier, err := pkceVerifier()
	if err != nil {
		return nil, err
	}
	return &authState{Nonce: nonce, CodeVerifier: verifier, ReturnPathname: returnPathname}, nil
}

// pkceVerifier returns 43 base64url characters from 33 random bytes, as the
// WorkOS SDK does (C.2).
func pkceVerifier() (string, error) {
	b := make([]byte, 33)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b)[:43], nil
}

// pkceChallenge is the S256 challenge for a verifier.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pkceCookieName names the verifier cookie of one flow after the FNV-1a 32
// hash of its sealed state (E.2), so parallel sign-ins in several tabs do
// not overwrite each other.
func pkceCookieName(sealedState string) string {
	h := fnv.New32a()
	h.Write([]byte(sealedState))
	return pkceCookiePrefix + "-" + hex.EncodeToString(h.Sum(nil))
}

// randomUUID returns a version 4 UUID, the nonce authkit-nextjs uses.
func randomUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
