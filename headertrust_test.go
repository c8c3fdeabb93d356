package authkit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "What the upstream receives": a client can never supply identity,
// in any spelling a server behind Traefik may read as the same header.

// spoofedHeaders are headers a client sends to pose as the plugin: CGI,
// Rack, PHP and WSGI servers read X_Workos_User_Id as X-Workos-User-Id.
var spoofedHeaders = map[string]string{
	"X-Workos-User-Id":         "user_spoofed",
	"X_Workos_User_Id":         "user_spoofed",
	"x_workos_user_id":         "user_spoofed",
	"X-Workos_Organization-Id": "org_spoofed",
	"X_WORKOS_CUSTOM":          "spoofed",
	"x_url":                    "https://evil.test/",
	"X-Url":                    "https://evil.test/",
	"X_Redirect_Uri":           "https://evil.test/callback",
	"x-sign-up-paths":          "/spoofed",
	"X_Sign_Up_Paths":          "/spoofed",
	"Remote-User":              "spoofed",
	"remote_user":              "spoofed",
}

func TestStripRemovesEverySpelling(t *testing.T) {
	for _, nextjs := range []bool{true, false} {
		env := newTestEnv(t, func(c *Config) {
			c.NextjsHeaders = nextjs
			c.IdentityHeaders = map[string]string{"Remote-User": "user.id", "X-Workos-User-Id": "user.id"}
		})
		sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
		paths := []struct{ name, cookie string }{
			{"anonymous", ""},
			{"cookies without a session", "theme=dark"},
			{"signed in, cache miss", "wos-session=" + sealed},
			{"signed in, cached", "wos-session=" + sealed},
		}
		for _, path := range paths {
			env.do(request{target: "/page", cookie: path.cookie, headers: spoofedHeaders})
			for name, value := range env.upstream.last() {
				for _, v := range value {
					if strings.Contains(v, "spoofed") || strings.Contains(v, "evil.test") {
						t.Errorf("nextjsHeaders %v, %s: upstream %s = %q, the client's value", nextjs, path.name, name, v)
					}
				}
			}
		}
	}
}

func TestForwardAccessTokenNeverPassesAnUnverifiedAuthorization(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.ForwardAccessToken = true
		c.MiddlewareAuth.Enabled = true
		c.MiddlewareAuth.UnauthenticatedPaths = []string{"/public/:path*"}
	})
	sealed, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	tests := []struct {
		name, target, cookie, want string
	}{
		{"signed out on a public path", "/public/x", "", ""},
		{"cookies but no session", "/public/x", "theme=dark", ""},
		{"signed in: the session's token replaces the client's", "/page", "wos-session=" + sealed, "Bearer " + issued.AccessToken},
	}
	for _, tt := range tests {
		for _, round := range []string{"first", "second"} { // cache miss, then hit
			env.do(request{target: tt.target, cookie: tt.cookie, headers: map[string]string{"Authorization": "Bearer forged"}})
			if got := env.upstream.last().Get("Authorization"); got != tt.want {
				t.Errorf("%s (%s request): upstream Authorization %.30q, want %.30q", tt.name, round, got, tt.want)
			}
		}
	}
}

func TestSwitchOrganizationRefusesRequestsFromAnotherSite(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		refused bool
	}{
		{"neither header (curl)", nil, false},
		{"same origin", map[string]string{"Origin": "http://app.test", "Sec-Fetch-Site": "same-origin"}, false},
		{"a navigation typed by the user", map[string]string{"Sec-Fetch-Site": "none"}, false},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"a sibling subdomain", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"a foreign Origin", map[string]string{"Origin": "https://evil.test"}, true},
		{"an opaque Origin", map[string]string{"Origin": "null"}, true},
	}
	for _, tt := range tests {
		env := newTestEnv(t, nil)
		sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
		w := env.do(request{
			target:  "/auth/switch-organization?organizationId=" + fakeworkos.OrgGlobex + "&returnTo=/projects",
			cookie:  "wos-session=" + sealed,
			headers: tt.headers,
		})
		if refused := w.Code == http.StatusForbidden; refused != tt.refused {
			t.Errorf("%s: status %d, want refused %v", tt.name, w.Code, tt.refused)
		}
		if tt.refused && env.fake.RefreshCalls() != 0 {
			t.Errorf("%s: refused, yet the session was refreshed", tt.name)
		}
	}
}

// TestCopiedCookieIsRefusedAfterSignOut: a copy of the cookie taken before
// sign-out, even one whose refresh result the grace window still holds,
// is refused at once by the process that signed the user out.
func TestCopiedCookieIsRefusedAfterSignOut(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	old, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	refreshed := cookieValue(setCookie(env.do(document("/page", "wos-session="+old)), "wos-session"))
	if refreshed == "" {
		t.Fatal("no refresh")
	}
	if w := env.do(document("/page", "wos-session="+refreshed)); w.Code != http.StatusOK {
		t.Fatalf("before sign-out: %d", w.Code)
	}
	env.do(document("/auth/sign-out", "wos-session="+refreshed))
	for _, copied := range []struct{ name, value string }{
		{"the current cookie (cached)", refreshed},
		{"the cookie before the refresh (grace result)", old},
	} {
		w := env.do(request{target: "/api", cookie: "wos-session=" + copied.value, headers: map[string]string{"Accept": "application/json"}})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s after sign-out: status %d, want 401", copied.name, w.Code)
		}
	}
}
