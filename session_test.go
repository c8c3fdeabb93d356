package authkit

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPKCECookieNameVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/fnv1a-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			Input      string `json:"input"`
			CookieName string `json:"cookieName"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range file.Cases {
		if got := pkceCookieName(c.Input); got != c.CookieName {
			t.Errorf("pkceCookieName(%.40q) = %s, want %s", c.Input, got, c.CookieName)
		}
	}
}

func TestPKCEPair(t *testing.T) {
	// RFC 7636 appendix B.
	if got := pkceChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge = %s", got)
	}
	v, err := pkceVerifier()
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 43 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("verifier %q is not 43 base64url characters", v)
	}
}

func TestRandomUUIDIsVersion4(t *testing.T) {
	id, err := randomUUID()
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 36 || id[14] != '4' || strings.IndexByte("89ab", id[19]) < 0 || strings.Count(id, "-") != 4 {
		t.Fatalf("%q is not a v4 UUID", id)
	}
}

func TestDecodeSessionFromVectors(t *testing.T) {
	for _, v := range loadIronVectors(t) {
		if !strings.HasPrefix(v.Name, "authkit-session") && v.Name != "sealed-by-authkit-session-v2" {
			continue
		}
		v := v
		t.Run(v.Name, func(t *testing.T) {
			plain, err := mustKeyring(t, v.passwords(t)).Unseal(v.Sealed, time.UnixMilli(v.NowMs))
			if err != nil {
				t.Fatal(err)
			}
			s, err := decodeSession(plain)
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				AccessToken  string `json:"accessToken"`
				RefreshToken string `json:"refreshToken"`
				User         struct {
					ID    string `json:"id"`
					Email string `json:"email"`
				} `json:"user"`
			}
			if err := json.Unmarshal(v.Expected, &want); err != nil {
				t.Fatal(err)
			}
			if s.accessToken != want.AccessToken || s.refreshToken != want.RefreshToken ||
				s.userID != want.User.ID || s.userEmail != want.User.Email || s.userID == "" {
				t.Fatalf("decoded %+v, want %+v", s, want)
			}
		})
	}
}

func TestDecodeSession(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		wantErr bool
		check   func(*session) bool
	}{
		{"minimal", `{"accessToken":"t","refreshToken":"r","user":{"id":"u","email":"e@x"}}`, false,
			func(s *session) bool {
				return s.accessToken == "t" && s.refreshToken == "r" && s.userID == "u" && s.userEmail == "e@x"
			}},
		{"impersonator", `{"accessToken":"t","impersonator":{"email":"admin@x","reason":null}}`, false,
			func(s *session) bool { return s.impersonatorEmail == "admin@x" }},
		{"null user", `{"accessToken":"t","user":null}`, false, func(s *session) bool { return s.userID == "" }},
		{"empty object, as iron-session returns for a bad seal", `{}`, true, nil},
		{"null", `null`, true, nil},
		{"array", `[]`, true, nil},
		{"access token not a string", `{"accessToken":1}`, true, nil},
		{"refresh token not a string", `{"accessToken":"t","refreshToken":{}}`, true, nil},
		{"user not an object", `{"accessToken":"t","user":"u"}`, true, nil},
		{"not JSON", `{"accessToken":`, true, nil},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			s, err := decodeSession([]byte(tt.payload))
			if tt.wantErr {
				if err != errSessionPayload {
					t.Fatalf("err = %v, want errSessionPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Fatalf("decoded %+v", s)
			}
		})
	}
}

func TestNewSessionKeepsForeignKeysAndReplacesAuthKitOnes(t *testing.T) {
	old, err := decodeSession([]byte(`{"accessToken":"old","refreshToken":"r0","user":{"id":"u"},"impersonator":{"email":"i@x"},"authenticationMethod":"SSO","appTheme":"dark"}`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSession(old, "new", "r1", json.RawMessage(`{"object":"user","id":"u","email":"e@x"}`), nil, "Password")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(s.encode(), &got); err != nil {
		t.Fatal(err)
	}
	if got["accessToken"] != "new" || got["refreshToken"] != "r1" || got["appTheme"] != "dark" ||
		got["authenticationMethod"] != "Password" || got["impersonator"] != nil || s.userEmail != "e@x" {
		t.Fatalf("new session = %v", got)
	}
}

func TestAuthStateRoundTripAndValidation(t *testing.T) {
	st, err := newAuthState("/dashboard?tab=1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "customState") {
		t.Errorf("absent customState written: %s", b)
	}
	back, err := decodeAuthState(b)
	if err != nil || *back != *st {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	invalid := []string{`{}`, `{"nonce":"n"}`, `{"nonce":1,"codeVerifier":"v"}`, `{"nonce":"n","codeVerifier":"v","returnPathname":5}`, `"x"`}
	for _, payload := range invalid {
		if _, err := decodeAuthState([]byte(payload)); err != errAuthState {
			t.Errorf("decodeAuthState(%s) err = %v, want errAuthState", payload, err)
		}
	}
}
