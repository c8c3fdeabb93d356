package authkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// The operator chooses what the upstream receives (SPEC "What the upstream
// receives"). Each case is sent twice: a cache miss, then the fast path.

func TestIdentityHeadersFromConfiguration(t *testing.T) {
	tests := []struct {
		name     string
		headers  any
		user     string
		org      string
		want     map[string]string // "" : must be absent
		wantNone string            // a prefix no header may have
	}{
		{"default X-Workos-* table", nil, fakeworkos.UserZoe, fakeworkos.OrgGlobex, map[string]string{
			"X-Workos-User-Id": fakeworkos.UserZoe, "X-Workos-User-Email": "zoe@example.com",
			"X-Workos-Roles": "billing,viewer", "X-Workos-Permissions": "invoices:read,invoices:pay",
			"X-Workos-Api-Key-Id": "",
		}, ""},
		{"oauth2-proxy style", map[string]string{
			"X-Forwarded-User": "user.id", "X-Forwarded-Email": "user.email", "X-Forwarded-Groups": "roles",
			"X-Forwarded-Preferred-Username": "user.name",
		}, fakeworkos.UserZoe, fakeworkos.OrgGlobex, map[string]string{
			"X-Forwarded-User": fakeworkos.UserZoe, "X-Forwarded-Email": "zoe@example.com",
			"X-Forwarded-Groups": "billing,viewer", "X-Forwarded-Preferred-Username": "Zoë Ångström-Nuñez",
		}, "X-Workos-User"},
		{"lower-case names and every field", map[string]any{
			"remote-user": "user.id", "remote-name": "user.name", "remote-first": "user.firstName",
			"remote-last": "user.lastName", "remote-session": "sessionId", "remote-org": "organizationId",
			"remote-role": "role", "remote-entitlements": "entitlements", "remote-flags": "featureFlags",
		}, fakeworkos.UserAlice, fakeworkos.OrgAcme, map[string]string{
			"Remote-User": fakeworkos.UserAlice, "Remote-Name": "Alice Admin", "Remote-First": "Alice",
			"Remote-Last": "Admin", "Remote-Org": fakeworkos.OrgAcme, "Remote-Role": "admin",
			"Remote-Entitlements": "audit-logs,sso", "Remote-Flags": "new-dashboard,beta-search",
		}, "X-Workos-User"},
		{"an empty map sends none", map[string]string{}, fakeworkos.UserAlice, fakeworkos.OrgAcme, nil, "X-Workos-User"},
		{"an empty string (the file provider's {}) sends none", "", fakeworkos.UserAlice, fakeworkos.OrgAcme, nil, "X-Workos-User"},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.IdentityHeaders = tt.headers })
			sealed, _ := env.session(tt.user, tt.org, 0)
			for _, round := range []string{"cache miss", "cached"} {
				env.do(document("/page", "wos-session="+sealed))
				h := env.upstream.last()
				for name, want := range tt.want {
					if got := h.Get(name); got != want {
						t.Errorf("%s: %s = %q, want %q", round, name, got, want)
					}
				}
				for name := range h {
					if tt.wantNone != "" && strings.HasPrefix(name, tt.wantNone) {
						t.Errorf("%s: %s was sent", round, name)
					}
				}
			}
		})
	}
}

// TestIdentityValueWithAControlCharacterIsLeftOut: Go's client refuses
// such a value, so forwarding it would fail the request; the other headers
// still go, each with its own value (NUL also separates a principal's
// fields in memory, so a NUL in a value must not shift the others).
func TestIdentityValueWithAControlCharacterIsLeftOut(t *testing.T) {
	for _, tt := range []struct{ name, lastName string }{
		{"CR LF", "Line\r\nX-Injected: yes"},
		{"NUL", "Line\x00X-Injected: yes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) {
				c.IdentityHeaders = map[string]string{"X-User": "user.id", "X-Name": "user.name",
					"X-Last": "user.lastName", "X-Session": "sessionId"}
			})
			env.fake.PutUser(fakeworkos.User{ID: "user_01HZCTRL000000000000000000", Email: "ctrl@example.com",
				FirstName: "Eve", LastName: tt.lastName})
			sealed, _ := env.session("user_01HZCTRL000000000000000000", "", 0)
			token, err := parseToken(env.sessionOf(sealed).accessToken)
			if err != nil || token.claims.SessionID == "" {
				t.Fatalf("the session's token: %v", err)
			}
			sid := token.claims.SessionID
			for _, round := range []string{"cache miss", "cached"} {
				w := env.do(document("/page", "wos-session="+sealed))
				h := env.upstream.last()
				if w.Code != http.StatusOK || h.Get("X-User") != "user_01HZCTRL000000000000000000" || h.Get("X-Session") != sid {
					t.Fatalf("%s: status %d, X-User %q, X-Session %q (want %q)", round, w.Code, h.Get("X-User"), h.Get("X-Session"), sid)
				}
				if _, ok := h["X-Name"]; ok || h.Get("X-Last") != "" || h.Get("X-Injected") != "" {
					t.Fatalf("%s: a value with a control character was forwarded: %v", round, h)
				}
			}
		})
	}
}

func TestNextjsHeadersOff(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.NextjsHeaders = false
		c.SignUpPaths = []string{"/join"}
	})
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	for _, cookie := range []string{"", "wos-session=" + sealed, "wos-session=" + sealed} {
		env.do(document("/page", cookie))
		h := env.upstream.last()
		for _, name := range []string{"X-Workos-Middleware", "X-Url", "X-Redirect-Uri", "X-Sign-Up-Paths", "X-Workos-Session"} {
			if _, ok := h[name]; ok {
				t.Errorf("cookie %.20q: %s was sent with nextjsHeaders off", cookie, name)
			}
		}
		if cookie != "" && h.Get("X-Workos-User-Id") != fakeworkos.UserAlice {
			t.Errorf("identity headers went missing with nextjsHeaders off")
		}
	}
}

func TestWithoutPluginCookies(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"only the session", "wos-session=S", ""},
		{"session among others", "theme=dark; wos-session=S; lang=en", "theme=dark; lang=en"},
		{"session last", "theme=dark;wos-session=S", "theme=dark"},
		{"other bytes kept as they were", "a=1;b=2 ;  wos-session=S;c=\"q v\"", "a=1;b=2 ;  c=\"q v\""},
		{"parts, verifiers and the eager cookie", "wos-session.0=A; x=1; wos-session.1=B; wos-auth-verifier-1a2b3c4d=P; workos-access-token=T; wos-auth-verifier=L",
			"x=1"},
		{"look-alikes stay", "wos-session.x=1; my-wos-session=2; wos-sessions=3; a=wos-session=4", "wos-session.x=1; my-wos-session=2; wos-sessions=3; a=wos-session=4"},
		{"no plugin cookie: unchanged", "a=1; b=2", "a=1; b=2"},
	}
	for _, tt := range tests {
		if got := withoutPluginCookies(tt.in, "wos-session"); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPassSessionCookieOff(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.PassSessionCookie = false })
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	tests := []struct{ name, cookie, want string }{
		{"signed in, other cookies kept byte for byte", "theme=dark;  wos-session=" + sealed + "; lang=en", "theme=dark;  lang=en"},
		{"signed in, only the session: no Cookie header", "wos-session=" + sealed, ""},
		{"a verifier cookie while signed out", "wos-auth-verifier-1a2b3c4d=x; a=1", "a=1"},
	}
	for _, tt := range tests {
		for _, round := range []string{"first", "second"} {
			env.do(document("/page", tt.cookie))
			h := env.upstream.last()
			if got := h.Get("Cookie"); got != tt.want {
				t.Errorf("%s (%s request): upstream Cookie %q, want %q", tt.name, round, got, tt.want)
			}
			if _, ok := h["Cookie"]; tt.want == "" && ok {
				t.Errorf("%s (%s request): an empty Cookie header was sent", tt.name, round)
			}
		}
	}
	if env.upstream.calls == 0 || env.upstream.last().Get("X-Workos-User-Id") != "" {
		t.Fatal("the last request was signed out, yet identity went upstream")
	}
}

func TestCorsPreflight(t *testing.T) {
	tests := []struct {
		name     string
		pass     bool
		headers  map[string]string
		signedIn bool // a crafted preflight with a session cookie still passes without identity
		wantPass bool
	}{
		{"a preflight passes", true, map[string]string{"Origin": "https://other.test", "Access-Control-Request-Method": "PUT"}, false, true},
		{"a preflight with a cookie passes without identity", true, map[string]string{"Origin": "https://other.test", "Access-Control-Request-Method": "PUT"}, true, true},
		{"a plain OPTIONS is gated", true, map[string]string{"Origin": "https://other.test"}, false, false},
		{"a preflight with the option off is gated", false, map[string]string{"Origin": "https://other.test", "Access-Control-Request-Method": "PUT"}, false, false},
	}
	for _, tt := range tests {
		env := newTestEnv(t, func(c *Config) {
			c.MiddlewareAuth.Enabled = true
			c.PassCorsPreflight = tt.pass
		})
		cookie := ""
		if tt.signedIn {
			sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
			cookie = "wos-session=" + sealed
		}
		headers := map[string]string{"X-Workos-User-Id": "user_spoofed"}
		for k, v := range tt.headers {
			headers[k] = v
		}
		w := env.do(request{method: http.MethodOptions, target: "/api/things", cookie: cookie, headers: headers})
		passed := env.upstream.calls > 0
		if passed != tt.wantPass {
			t.Errorf("%s: status %d, passed %v", tt.name, w.Code, passed)
		}
		if passed && env.upstream.last().Get("X-Workos-User-Id") != "" {
			t.Errorf("%s: the preflight carried identity %q", tt.name, env.upstream.last().Get("X-Workos-User-Id"))
		}
	}
}

// TestSharedIdentityValuesAreNotWrittenThrough: the fast path hands the
// upstream slices of the cached principal; a later Header.Add by another
// middleware or the upstream must not change what the next request gets.
func TestSharedIdentityValuesAreNotWrittenThrough(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	env.ak.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Add("X-Workos-User-Id", "appended")
		r.Header.Add("X-Workos-Session-Id", "appended")
	})
	env.do(document("/page", "wos-session="+sealed))
	env.do(document("/page", "wos-session="+sealed))
	upstream := &recordingUpstream{}
	env.ak.next = upstream
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://app.test/page", nil)
	r.Header.Set("Cookie", "wos-session="+sealed)
	env.ak.ServeHTTP(w, r)
	if got := upstream.last().Values("X-Workos-Session-Id"); len(got) != 1 || got[0] == "appended" {
		t.Fatalf("X-Workos-Session-Id %q after another middleware appended to a shared value", got)
	}
}
