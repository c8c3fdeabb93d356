package authkit

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

func TestSafeReturnPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/dashboard?tab=1#x", "/dashboard?tab=1#x"},
		{"/", "/"},
		{"", "/fallback"},
		{"dashboard", "/fallback"},
		{"//evil.test/x", "/fallback"},
		{"/\\evil.test", "/fallback"},
		{"/%2F%2Fevil.test", "/fallback"},
		{"/%2Fevil.test", "/fallback"},
		{"/%5Cevil.test", "/fallback"},
		{"https://evil.test/", "/fallback"},
		{"javascript:alert(1)", "/fallback"},
		{"/a\r\nSet-Cookie: x=y", "/fallback"},
		{"/a\tb", "/fallback"},
	}
	for _, tt := range tests {
		if got := safeReturnPath(tt.in, "/fallback"); got != tt.want {
			t.Errorf("safeReturnPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSignInRoute(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.ReturnPathname = "/home" })
	sealed, _ := env.session(fakeworkos.UserBob, "", 0)
	tests := []struct {
		name, target, cookie, wantReturn string
	}{
		{"signed out, relative returnTo", "/auth/sign-in?returnTo=%2Freports%3Fy%3D1", "", "/reports?y=1"},
		{"signed in still starts a sign-in", "/auth/sign-in", "wos-session=" + sealed, "/home"},
		{"off-site returnTo falls back", "/auth/sign-in?returnTo=%2F%2Fevil.test", "", "/home"},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(document(tt.target, tt.cookie))
			if w.Code != http.StatusTemporaryRedirect {
				t.Fatalf("status %d", w.Code)
			}
			q := checkAuthorizeRedirect(t, env, w, tt.wantReturn)
			if q.Get("screen_hint") != "sign-in" {
				t.Errorf("screen_hint %q", q.Get("screen_hint"))
			}
		})
	}
}

func TestSignUpPathsUseTheSignUpScreen(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.MiddlewareAuth.Enabled = true
		c.SignUpPaths = []string{"/join/:team"}
	})
	q := mustQuery(t, env.do(document("/join/red", "")).Header().Get("Location"))
	if q.Get("screen_hint") != "sign-up" {
		t.Fatalf("screen_hint %q", q.Get("screen_hint"))
	}
	env.do(document("/join/red", ""))
	if env.upstream.calls != 0 {
		t.Fatal("upstream reached")
	}
}

func TestPKCECookiesAreEvictedAtFive(t *testing.T) {
	env := newTestEnv(t, nil)
	var cookies []string
	for i := 0; i < 5; i++ {
		cookies = append(cookies, pkceCookiePrefix+"-0000000"+string(rune('a'+i))+"=stale")
	}
	w := env.do(document("/auth/sign-in", strings.Join(cookies, "; ")))
	deleted := 0
	for _, c := range w.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, pkceCookiePrefix) && strings.Contains(c, "Max-Age=0") {
			deleted++
		}
	}
	if deleted != 5 {
		t.Fatalf("%d stale PKCE cookies deleted, want 5", deleted)
	}
	w = env.do(document("/auth/sign-in", strings.Join(cookies[:4], "; ")))
	if n := len(w.Result().Header.Values("Set-Cookie")); n != 1 {
		t.Fatalf("with four pending flows, %d Set-Cookie, want only the new one", n)
	}
}

func TestSignOut(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.SignOutReturnTo = "/goodbye" })
	sealed, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	expired, expiredIssued := env.session(fakeworkos.UserBob, "", -time.Hour)
	tests := []struct {
		name, method, cookie, wantSession string
		wantStatus                        int
	}{
		{"GET", http.MethodGet, "wos-session=" + sealed + "; wos-auth-verifier-12345678=x", issued.SessionID, http.StatusTemporaryRedirect},
		{"POST", http.MethodPost, "wos-session=" + sealed, issued.SessionID, http.StatusSeeOther},
		{"expired session still ends at WorkOS", http.MethodGet, "wos-session=" + expired, expiredIssued.SessionID, http.StatusTemporaryRedirect},
		{"no session", http.MethodGet, "", "", http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(request{method: tt.method, target: "/auth/sign-out", cookie: tt.cookie})
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d", w.Code)
			}
			loc := w.Header().Get("Location")
			if tt.wantSession == "" {
				if loc != "http://app.test/goodbye" {
					t.Fatalf("Location %q", loc)
				}
			} else if loc != env.api.URL+"/user_management/sessions/logout?session_id="+tt.wantSession+"&return_to="+url.QueryEscape("http://app.test/goodbye") {
				t.Fatalf("Location %q", loc)
			}
			if c := setCookie(w, "wos-session"); !strings.Contains(c, "Max-Age=0") {
				t.Fatalf("session cookie not deleted: %q", c)
			}
			if strings.Contains(tt.cookie, "wos-auth-verifier-12345678") && !strings.Contains(setCookie(w, "wos-auth-verifier-12345678"), "Max-Age=0") {
				t.Fatal("PKCE cookie not deleted")
			}
		})
	}
	if w := env.do(request{method: http.MethodDelete, target: "/auth/sign-out"}); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", w.Code)
	}
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Config)
		headers   map[string]string
		want      []string
		wantNot   []string
	}{
		{"https from X-Forwarded-Proto", nil, map[string]string{"X-Forwarded-Proto": "https"}, []string{"Secure", "SameSite=Lax"}, nil},
		{"plain http", nil, nil, []string{"SameSite=Lax"}, []string{"Secure"}},
		{"SameSite=None is always Secure", func(c *Config) { c.CookieSameSite = "none" }, nil, []string{"Secure", "SameSite=None"}, nil},
		{"domain and max age", func(c *Config) { c.CookieDomain = "app.test"; c.CookieMaxAge = "3600" }, nil, []string{"Domain=app.test", "Max-Age=3600"}, nil},
		{"baseUrl decides the scheme", func(c *Config) { c.BaseURL = "https://public.test" }, nil, []string{"Secure"}, nil},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.configure)
			sealed, _ := env.session(fakeworkos.UserBob, "", -time.Minute)
			req := document("/page", "wos-session="+sealed)
			for k, v := range tt.headers {
				req.headers[k] = v
			}
			c := setCookie(env.do(req), "wos-session")
			for _, attr := range tt.want {
				if !strings.Contains(c, "; "+attr) {
					t.Errorf("cookie lacks %s: %q", attr, c)
				}
			}
			for _, attr := range tt.wantNot {
				if strings.Contains(c, attr) {
					t.Errorf("cookie has %s: %q", attr, c)
				}
			}
		})
	}
}

func TestEagerAuthCookie(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.EagerAuth = true })
	sealed, issued := env.session(fakeworkos.UserBob, "", 0)
	w := env.do(document("/page", "wos-session="+sealed))
	c := setCookie(w, eagerCookieName)
	if cookieValue(c) != issued.AccessToken || strings.Contains(c, "HttpOnly") || strings.Contains(c, "Path=") || !strings.Contains(c, "Max-Age=30") {
		t.Fatalf("eager cookie %q", c)
	}
	if setCookie(env.do(document("/page", "wos-session="+sealed+"; workos-access-token="+issued.AccessToken)), eagerCookieName) != "" {
		t.Error("eager cookie set again although the browser holds it")
	}
	if setCookie(env.do(request{target: "/api", cookie: "wos-session=" + sealed}), eagerCookieName) != "" {
		t.Error("eager cookie on a non-document request")
	}
}

func TestAuthorizationRequirements(t *testing.T) {
	tests := []struct {
		name       string
		configure  func(*Config)
		user, org  string
		accept     string
		signedOut  bool
		wantStatus int
	}{
		{"permission held", func(c *Config) { c.RequiredPermissions = []string{"users:manage"} }, fakeworkos.UserAlice, fakeworkos.OrgAcme, "application/json", false, 200},
		{"permission lacking, JSON", func(c *Config) { c.RequiredPermissions = []string{"billing:manage"} }, fakeworkos.UserBob, fakeworkos.OrgAcme, "application/json", false, 403},
		{"permission lacking, document", func(c *Config) { c.RequiredPermissions = []string{"billing:manage"} }, fakeworkos.UserBob, fakeworkos.OrgAcme, documentAccept, false, 403},
		{"one of the roles", func(c *Config) { c.RequiredRoles = []string{"owner", "admin"} }, fakeworkos.UserAlice, fakeworkos.OrgAcme, "application/json", false, 200},
		{"none of the roles", func(c *Config) { c.RequiredRoles = []string{"owner,admin"} }, fakeworkos.UserBob, fakeworkos.OrgAcme, "application/json", false, 403},
		{"allowed organization", func(c *Config) { c.AllowedOrganizations = []string{fakeworkos.OrgAcme} }, fakeworkos.UserBob, fakeworkos.OrgAcme, "application/json", false, 200},
		{"other organization", func(c *Config) { c.AllowedOrganizations = []string{fakeworkos.OrgGlobex} }, fakeworkos.UserBob, fakeworkos.OrgAcme, "application/json", false, 403},
		{"no organization", func(c *Config) { c.AllowedOrganizations = []string{fakeworkos.OrgGlobex} }, fakeworkos.UserCarol, "", "application/json", false, 403},
		{"signed out is sent to sign in", func(c *Config) { c.RequiredRoles = []string{"admin"} }, "", "", documentAccept, true, 307},
		{"signed out fetch gets 401", func(c *Config) { c.RequiredRoles = []string{"admin"} }, "", "", "application/json", true, 401},
		{"public path is not checked", func(c *Config) {
			c.RequiredRoles = []string{"owner"}
			c.MiddlewareAuth.UnauthenticatedPaths = []string{"/page"}
		}, fakeworkos.UserBob, fakeworkos.OrgAcme, "application/json", false, 200},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.configure)
			cookie := ""
			if !tt.signedOut {
				sealed, _ := env.session(tt.user, tt.org, 0)
				cookie = "wos-session=" + sealed
			}
			w := env.do(request{target: "/page", cookie: cookie, headers: map[string]string{"Accept": tt.accept}})
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if w.Code == 403 && tt.accept == "application/json" && !strings.Contains(w.Body.String(), `"error":"forbidden"`) {
				t.Errorf("403 body %s", w.Body)
			}
			if w.Code == 403 && tt.accept == documentAccept && !strings.Contains(w.Header().Get("Content-Type"), "text/html") {
				t.Errorf("403 for a document is %s", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestRefreshedCookieSurvivesA403(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.RequiredPermissions = []string{"billing:manage"} })
	sealed, _ := env.session(fakeworkos.UserBob, fakeworkos.OrgAcme, -time.Minute)
	w := env.do(request{target: "/page", cookie: "wos-session=" + sealed})
	if w.Code != http.StatusForbidden || setCookie(w, "wos-session") == "" {
		t.Fatalf("status %d, cookies %v", w.Code, w.Result().Header.Values("Set-Cookie"))
	}
}

func TestBearerTokens(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.AllowBearerTokens = true
		c.RequiredPermissions = []string{"users:manage"}
	})
	_, alice := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	_, bob := env.session(fakeworkos.UserBob, fakeworkos.OrgAcme, 0)
	expired, _ := env.fake.MintSessionToken(alice.SessionID, -time.Minute)
	_, otherKey := testKeys(t)
	forged := signRS(t, otherKey, "RS256", env.fake.KeyID(), map[string]any{"sub": fakeworkos.UserAlice, "permissions": []string{"users:manage"}})
	tests := []struct {
		name       string
		token      string
		wantStatus int
	}{
		{"valid", alice.AccessToken, 200},
		{"expired", expired, 401},
		{"forged", forged, 401},
		{"lacking the permission", bob.AccessToken, 403},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(request{target: "/api", headers: map[string]string{"Authorization": "Bearer " + tt.token, "Accept": documentAccept}})
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if len(w.Result().Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("cookies for a bearer client: %v", w.Result().Header.Values("Set-Cookie"))
			}
			switch w.Code {
			case 200:
				h := env.upstream.last()
				if h.Get("X-Workos-User-Id") != fakeworkos.UserAlice || h.Get("Authorization") != "Bearer "+tt.token || h.Get("X-Workos-Session") != "" {
					t.Fatalf("upstream headers %v", h)
				}
			case 401:
				if w.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
}

func TestSwitchOrganization(t *testing.T) {
	tests := []struct {
		name     string
		policy   *fakeworkos.OrgPolicy
		signedIn bool
		check    func(t *testing.T, env *testEnv, w *http.Response)
	}{
		{"success", nil, true, func(t *testing.T, env *testEnv, w *http.Response) {
			if w.StatusCode != 307 || w.Header.Get("Location") != "http://app.test/projects" {
				t.Fatalf("%d to %q", w.StatusCode, w.Header.Get("Location"))
			}
			var fresh string
			for _, c := range w.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, "wos-session=") {
					fresh = cookieValue(c)
				}
			}
			claims, err := parseToken(env.sessionOf(fresh).accessToken)
			if err != nil || claims.claims.OrganizationID != fakeworkos.OrgGlobex {
				t.Fatalf("new session org %q (%v)", claims.claims.OrganizationID, err)
			}
		}},
		{"sso_required starts a sign-in into the organization", &fakeworkos.OrgPolicy{Error: "sso_required"}, true, func(t *testing.T, env *testEnv, w *http.Response) {
			q := mustQuery(t, w.Header.Get("Location"))
			if w.StatusCode != 307 || q.Get("organization_id") != fakeworkos.OrgGlobex {
				t.Fatalf("%d to %q", w.StatusCode, w.Header.Get("Location"))
			}
			for _, c := range w.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, "wos-session=") {
					t.Fatalf("session changed: %q", c)
				}
			}
		}},
		{"authkit_redirect_url is followed", &fakeworkos.OrgPolicy{Error: "mfa_enrollment", RedirectURL: "https://auth.example.test/mfa"}, true, func(t *testing.T, env *testEnv, w *http.Response) {
			if w.Header.Get("Location") != "https://auth.example.test/mfa" {
				t.Fatalf("Location %q", w.Header.Get("Location"))
			}
		}},
		{"signed out signs in with the organization", nil, false, func(t *testing.T, env *testEnv, w *http.Response) {
			if q := mustQuery(t, w.Header.Get("Location")); q.Get("organization_id") != fakeworkos.OrgGlobex {
				t.Fatalf("Location %q", w.Header.Get("Location"))
			}
		}},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			if tt.policy != nil {
				env.fake.SetOrgPolicy(fakeworkos.OrgGlobex, *tt.policy)
			}
			cookie := ""
			if tt.signedIn {
				sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
				cookie = "wos-session=" + sealed
			}
			w := env.do(document("/auth/switch-organization?organizationId="+fakeworkos.OrgGlobex+"&returnTo=/projects", cookie))
			tt.check(t, env, w.Result())
		})
	}
	env := newTestEnv(t, nil)
	if w := env.do(document("/auth/switch-organization", "")); w.Code != http.StatusBadRequest {
		t.Fatalf("without organizationId: %d", w.Code)
	}
}

func TestLargeSessionIsSplitAndReassembled(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserMax, "", -time.Minute)
	w := env.do(document("/page", "wos-session="+sealed))
	var parts []string
	for _, c := range w.Result().Header.Values("Set-Cookie") {
		if len(c) > maxCookieLength {
			t.Fatalf("Set-Cookie of %d bytes", len(c))
		}
		if strings.HasPrefix(c, "wos-session.") {
			parts = append(parts, strings.SplitN(c, ";", 2)[0])
		}
	}
	if len(parts) < 2 || !strings.Contains(setCookie(w, "wos-session"), "Max-Age=0") {
		t.Fatalf("parts %d; single cookie %q", len(parts), setCookie(w, "wos-session"))
	}
	next := env.do(document("/page", strings.Join(parts, "; ")))
	if next.Code != 200 || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserMax || len(next.Result().Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("reassembled session: %d, user %q", next.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
	if got := env.upstream.last().Get("X-Workos-Session"); len(got) < maxCookieLength {
		t.Fatalf("x-workos-session carries %d bytes, want the whole seal", len(got))
	}
}

func TestMergeVary(t *testing.T) {
	tests := []struct {
		existing []string
		ours     string
		want     string
	}{
		{nil, "Cookie", "Cookie"},
		{[]string{"accept-encoding"}, "Cookie, Authorization", "Accept-encoding, Cookie, Authorization"},
		{[]string{"Cookie", "origin"}, "Cookie", "Cookie, Origin"},
	}
	for _, tt := range tests {
		if got := mergeVary(tt.existing, tt.ours); got != tt.want {
			t.Errorf("mergeVary(%q, %q) = %q, want %q", tt.existing, tt.ours, got, tt.want)
		}
	}
}

func TestIsInitialDocumentRequest(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    bool
	}{
		{"navigation", map[string]string{"Accept": documentAccept}, true},
		{"fetch", map[string]string{"Accept": "*/*"}, false},
		{"RSC", map[string]string{"Accept": documentAccept, "RSC": "1"}, false},
		{"router state tree", map[string]string{"Accept": documentAccept, "Next-Router-State-Tree": "x"}, false},
		{"Next prefetch", map[string]string{"Accept": documentAccept, "Next-Router-Prefetch": "1"}, false},
		{"Purpose prefetch", map[string]string{"Accept": documentAccept, "Purpose": "prefetch"}, false},
		{"Sec-Purpose prefetch", map[string]string{"Accept": documentAccept, "Sec-Purpose": "prefetch"}, false},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodGet, "http://app.test/", nil)
		for k, v := range tt.headers {
			r.Header.Set(k, v)
		}
		if got := isInitialDocumentRequest(r); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDotSegmentsAreNeverPublic(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.MiddlewareAuth.Enabled = true
		c.MiddlewareAuth.UnauthenticatedPaths = []string{"/public/:path*"}
	})
	tests := []struct {
		path   string
		status int
	}{
		{"/public/page", http.StatusOK},
		{"/public/../admin", http.StatusUnauthorized},
		{"/public/./x", http.StatusUnauthorized},
		{"/public/..", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := request{target: "/", headers: map[string]string{"Accept": "application/json"}}
		w := httptestRecorderFor(env, r, tt.path)
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, w.Code, tt.status)
		}
	}
}

// httptestRecorderFor sends r with a raw path that httptest.NewRequest
// would otherwise clean.
func httptestRecorderFor(env *testEnv, req request, rawPath string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
	r.URL.Path = rawPath
	for k, v := range req.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	env.ak.ServeHTTP(w, r)
	return w
}

func TestBearerTokenVerificationIsCached(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.AllowBearerTokens = true; c.MiddlewareAuth.Enabled = true })
	_, alice := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	req := request{target: "/api", headers: map[string]string{"Authorization": "Bearer " + alice.AccessToken}}
	if w := env.do(req); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	env.ak.verifier = brokenVerifier()
	w := env.do(req)
	if w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice || env.upstream.last().Get("X-Workos-Session") != "" {
		t.Fatalf("cached bearer: %d, headers %v", w.Code, env.upstream.last())
	}
	// The same token as a session cookie is not a bearer client.
	if w := env.do(request{target: "/api", cookie: "wos-session=" + alice.AccessToken, headers: map[string]string{"Accept": "application/json"}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("a token in the session cookie: %d", w.Code)
	}
}
