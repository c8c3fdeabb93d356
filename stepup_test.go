package authkit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Recent authentication (maxAuthAgeSeconds)", as authkit-nextjs's
// checkRecentAuth({maxAge}).

func stepUpEnv(t *testing.T) *testEnv {
	return newTestEnv(t, func(c *Config) {
		c.MaxAuthAgeSeconds = "300"
		c.MiddlewareAuth.UnauthenticatedPaths = []string{"/public/:path*"}
	})
}

func TestRecentAuthentication(t *testing.T) {
	tests := []struct {
		name          string
		authenticated time.Duration // ago
		target        string
		accept        string
		wantStatus    int
	}{
		{"fresh: served", time.Minute, "/admin", documentAccept, http.StatusOK},
		{"old document: a new authorization with max_age", time.Hour, "/admin", documentAccept, http.StatusTemporaryRedirect},
		{"old API call: 401", time.Hour, "/admin/api", "application/json", http.StatusUnauthorized},
		{"old, on a public path: served", time.Hour, "/public/x", documentAccept, http.StatusOK},
	}
	for _, tt := range tests {
		env := stepUpEnv(t)
		sealed, _ := env.sessionFor(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme,
			AuthenticatedAt: time.Now().Add(-tt.authenticated)}, 0)
		for _, round := range []string{"cache miss", "cached"} {
			w := env.do(request{target: tt.target, cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": tt.accept}})
			if w.Code != tt.wantStatus {
				t.Fatalf("%s (%s): status %d, want %d", tt.name, round, w.Code, tt.wantStatus)
			}
			if w.Code == http.StatusTemporaryRedirect {
				q := mustQuery(t, w.Header().Get("Location"))
				if q.Get("max_age") != "300" || setCookie(w, "wos-session") != "" {
					t.Fatalf("%s: max_age %q, Set-Cookie %q: want max_age=300 and the session kept", tt.name, q.Get("max_age"), setCookie(w, "wos-session"))
				}
			}
			if w.Code == http.StatusUnauthorized && !strings.Contains(w.Body.String(), "reauthentication_required") {
				t.Fatalf("%s: body %s", tt.name, w.Body)
			}
		}
	}
}

func TestRecentAuthenticationFailsClosedWithoutAuthTime(t *testing.T) {
	env := stepUpEnv(t)
	issued, _ := env.fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserBob})
	token := env.fake.MintAccessToken(map[string]any{"sub": fakeworkos.UserBob, "sid": issued.SessionID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	user, _ := workosSessionUser(issued.User)
	sess, _ := newSession(nil, token, issued.RefreshToken, user, nil, "Password")
	sealed, _ := env.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	if w := env.do(request{target: "/admin", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("a token without auth_time: status %d, want 401", w.Code)
	}
}

// TestStepUpThroughTheCallback: after the new authorization the browser
// lands back on the page it asked for; a sign-in that did not renew the
// authentication gets an error page, never another step-up (a loop).
func TestStepUpThroughTheCallback(t *testing.T) {
	env := stepUpEnv(t)
	old, _ := env.sessionFor(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme,
		AuthenticatedAt: time.Now().Add(-time.Hour)}, 0)
	start := env.do(document("/admin?tab=users", "wos-session="+old))
	w := signInThroughFakePage(t, env, start, fakeworkos.UserAlice, fakeworkos.OrgAcme)
	if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "http://app.test/admin?tab=users" {
		t.Fatalf("callback %d to %q", w.Code, w.Header().Get("Location"))
	}
	fresh := cookieValue(setCookie(w, "wos-session"))
	if page := env.do(document("/admin?tab=users", "wos-session="+fresh)); page.Code != http.StatusOK {
		t.Fatalf("after the step-up: status %d", page.Code)
	}

	// A sign-in started for a step-up, whose token still authenticated
	// long ago (an identity provider that ignored max_age).
	stale := env.do(document("/admin", "wos-session="+old))
	state := mustQuery(t, stale.Header().Get("Location")).Get("state")
	plain, _ := env.ak.s.keyring.Unseal(state, time.Now())
	st, _ := decodeAuthState(plain)
	env.shiftClock(time.Duration(st.MaxAge+60) * time.Second)
	callback := signInThroughFakePage(t, env, stale, fakeworkos.UserAlice, fakeworkos.OrgAcme)
	if callback.Code != http.StatusForbidden || !strings.Contains(callback.Body.String(), "renew") {
		t.Fatalf("a step-up that did not renew the authentication: status %d, Location %q", callback.Code, callback.Header().Get("Location"))
	}
}
