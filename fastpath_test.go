package authkit

import (
	"net/http"
	"testing"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// TestFastPathReadsCookieLines sends each Cookie header twice: the first
// request verifies the session and fills the cache, the second takes the
// fast path. Both must decide alike.
func TestFastPathReadsCookieLines(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	half := len(sealed) / 2
	tests := []struct {
		name     string
		cookie   string
		signedIn bool
	}{
		{"session cookie alone", "wos-session=" + sealed, true},
		{"between other cookies", "theme=dark; wos-session=" + sealed + "; lang=en", true},
		{"separated without a space", "theme=dark;wos-session=" + sealed, true},
		{"a longer name is not the session", "xwos-session=" + sealed, false},
		{"a longer name before the session", "xwos-session=x; wos-session=" + sealed, true},
		{"the name in an earlier cookie's value", "a=wos-session=x; wos-session=" + sealed, true},
		{"a one-letter longer name", "theme=dark; xwos-session=" + sealed, false},
		{"split over numbered cookies", "wos-session.0=" + sealed[:half] + "; wos-session.1=" + sealed[half:], true},
		{"other cookies only", "theme=dark; lang=en", false},
		{"a bad seal", "wos-session=Fe26.2*1*bad", false},
	}
	for _, tt := range tests {
		for _, round := range []string{"first", "second"} {
			w := env.do(request{target: "/api/data", cookie: tt.cookie, headers: map[string]string{"Accept": "application/json"}})
			if signedIn := w.Code == http.StatusOK; signedIn != tt.signedIn {
				t.Fatalf("%s, %s request: status %d, want signed in %v", tt.name, round, w.Code, tt.signedIn)
			}
			if tt.signedIn && env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice {
				t.Fatalf("%s, %s request: upstream user %q", tt.name, round, env.upstream.last().Get("X-Workos-User-Id"))
			}
		}
	}
}

// TestFastPathStripsInternalHeaders checks the strip on the paths that
// pass: what a client sends in an internal header never reaches the
// upstream, anonymous or signed in.
func TestFastPathStripsInternalHeaders(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	spoofed := map[string]string{
		"X-Workos-User-Id": "user_spoofed", "X-Workos-Custom": "spoofed", "X-Sign-Up-Paths": "/spoofed",
		"X-Url": "https://evil.test/", "X-Redirect-Uri": "https://evil.test/callback",
	}
	for _, cookie := range []string{"", "theme=dark", "wos-session=" + sealed, "wos-session=" + sealed} {
		env.do(request{target: "/page", cookie: cookie, headers: spoofed})
		h := env.upstream.last()
		for name, value := range spoofed {
			if got := h.Get(name); got == value {
				t.Errorf("cookie %.20q: upstream %s = %q, the client's value", cookie, name, got)
			}
		}
	}
}
