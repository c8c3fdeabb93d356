package authkit

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// testEnv is the plugin in front of a recording upstream, talking to a
// fake WorkOS on 127.0.0.1.
type testEnv struct {
	t        testing.TB
	fake     *fakeworkos.Server
	api      *httptest.Server
	ak       *authKit
	upstream *recordingUpstream
	logs     *syncBuffer
}

// recordingUpstream remembers the last request's headers.
type recordingUpstream struct {
	mu      sync.Mutex
	headers http.Header
	calls   int
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.headers = r.Header.Clone()
	u.calls++
	u.mu.Unlock()
	w.Header().Set("X-Upstream", "yes")
	w.Write([]byte("upstream"))
}

func (u *recordingUpstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.headers
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestEnv(t testing.TB, configure func(*Config)) *testEnv {
	t.Helper()
	keyA, _ := testKeys(t)
	fake := fakeworkos.New(fakeworkos.Options{SigningKey: keyA})
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	u, _ := url.Parse(api.URL)
	cfg := CreateConfig()
	cfg.ClientID = fake.ClientID()
	cfg.APIKey = fake.APIKey()
	cfg.CookiePassword = testCookiePassword
	cfg.RedirectURI = "/callback"
	cfg.APIHostname = u.Hostname()
	cfg.APIHTTPS = "false"
	cfg.APIPort = u.Port()
	if configure != nil {
		configure(cfg)
	}
	upstream := &recordingUpstream{}
	h, err := New(context.Background(), upstream, cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ak := h.(*authKit)
	ak.log = newEventLog("test", true, logs)
	// Each test has its own key set and session cache: a later test's fake
	// may get a port an earlier one used, and with it the shared cache's
	// keys of another fake.
	ak.verifier.keys = newJWKSCache(ak.workos.jwksURL(), ak.workos.http, time.Now)
	ak.sessions = newSessionCache(maxCachedSessions, maxCachedBytes)
	ak.refreshes = newRefreshGroup()
	ak.revocations = newRevocationSet()
	return &testEnv{t: t, fake: fake, api: api, ak: ak, upstream: upstream, logs: logs}
}

// shiftClock moves the middleware's clock, its fast path's included, d
// into the future.
func (e *testEnv) shiftClock(d time.Duration) {
	e.ak.now = func() time.Time { return time.Now().Add(d) }
	e.ak.epoch = processStart.Add(-d)
}

// session signs userID in at the fake and returns the sealed cookie value;
// a non-zero accessTTL replaces the access token with one expiring then
// (negative: already expired).
func (e *testEnv) session(userID, orgID string, accessTTL time.Duration) (string, fakeworkos.IssuedSession) {
	e.t.Helper()
	return e.sessionFor(fakeworkos.SessionParams{UserID: userID, OrganizationID: orgID}, accessTTL)
}

// sessionFor is session for any session the fake can issue.
func (e *testEnv) sessionFor(p fakeworkos.SessionParams, accessTTL time.Duration) (string, fakeworkos.IssuedSession) {
	e.t.Helper()
	issued, err := e.fake.IssueSession(p)
	if err != nil {
		e.t.Fatal(err)
	}
	if accessTTL != 0 {
		if issued.AccessToken, err = e.fake.MintSessionToken(issued.SessionID, accessTTL); err != nil {
			e.t.Fatal(err)
		}
	}
	user, err := workosSessionUser(issued.User)
	if err != nil {
		e.t.Fatal(err)
	}
	sess, err := newSession(nil, issued.AccessToken, issued.RefreshToken, user, nil, "Password")
	if err != nil {
		e.t.Fatal(err)
	}
	sealed, err := e.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return sealed, issued
}

// request describes one request to the middleware.
type request struct {
	method  string
	target  string
	cookie  string // raw Cookie header
	headers map[string]string
}

func (e *testEnv) do(req request) *httptest.ResponseRecorder {
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	r := httptest.NewRequest(method, "http://app.test"+req.target, nil)
	if req.cookie != "" {
		r.Header.Set("Cookie", req.cookie)
	}
	for k, v := range req.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.ak.ServeHTTP(w, r)
	return w
}

const documentAccept = "text/html,application/xhtml+xml"

func document(target, cookie string) request {
	return request{target: target, cookie: cookie, headers: map[string]string{"Accept": documentAccept}}
}

// setCookie returns the Set-Cookie for name, or "".
func setCookie(w *httptest.ResponseRecorder, name string) string {
	for _, c := range w.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, name+"=") {
			return c
		}
	}
	return ""
}

func cookieValue(setCookieLine string) string {
	v := setCookieLine[strings.IndexByte(setCookieLine, '=')+1:]
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return v
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	base := func() *Config {
		c := CreateConfig()
		c.ClientID, c.APIKey, c.CookiePassword, c.RedirectURI = "client_1", "sk_1", testCookiePassword, "https://app.test/callback"
		return c
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantKey string
	}{
		{"missing client id", func(c *Config) { c.ClientID = "" }, "clientId"},
		{"missing api key", func(c *Config) { c.APIKey = "" }, "apiKey"},
		{"missing cookie password", func(c *Config) { c.CookiePassword = "" }, "cookiePassword"},
		{"short cookie password", func(c *Config) { c.CookiePassword = "short" }, "cookiePassword"},
		{"short rotated password", func(c *Config) { c.CookiePasswords = map[string]string{"2": "short"} }, "cookiePasswords"},
		{"conflicting id 1", func(c *Config) { c.CookiePasswords = map[string]string{"1": strings.Repeat("x", 32)} }, "cookiePasswords"},
		{"non-numeric password id", func(c *Config) { c.CookiePasswords = map[string]string{"new": strings.Repeat("x", 32)} }, "cookiePasswords"},
		{"missing redirect uri", func(c *Config) { c.RedirectURI = "" }, "redirectUri"},
		{"relative redirect uri", func(c *Config) { c.RedirectURI = "callback" }, "redirectUri"},
		{"redirect uri with another scheme", func(c *Config) { c.RedirectURI = "ftp://app.test/callback" }, "redirectUri"},
		{"unknown SameSite", func(c *Config) { c.CookieSameSite = "sometimes" }, "cookieSameSite"},
		{"bad max age", func(c *Config) { c.CookieMaxAge = "forever" }, "cookieMaxAge"},
		{"bad cookie name", func(c *Config) { c.CookieName = "wos session" }, "cookieName"},
		{"bad apiHttps", func(c *Config) { c.APIHTTPS = "maybe" }, "apiHttps"},
		{"bad apiPort", func(c *Config) { c.APIPort = "70000" }, "apiPort"},
		{"apiHostname with a scheme", func(c *Config) { c.APIHostname = "https://api.workos.com" }, "apiHostname"},
		{"bad screen hint", func(c *Config) { c.ScreenHint = "register" }, "screenHint"},
		{"bad refresh buffer", func(c *Config) { c.RefreshBufferSeconds = "-5" }, "refreshBufferSeconds"},
		{"relative sign-in path", func(c *Config) { c.SignInPath = "auth/sign-in" }, "signInPath"},
		{"sign-out on the callback path", func(c *Config) { c.SignOutPath = "/callback" }, "signOutPath"},
		{"protocol-relative return path", func(c *Config) { c.ReturnPathname = "//evil.test" }, "returnPathname"},
		{"base url with a path", func(c *Config) { c.BaseURL = "https://app.test/x" }, "baseUrl"},
		{"bad unauthenticated path", func(c *Config) { c.MiddlewareAuth.UnauthenticatedPaths = []string{"/a/(b"} }, "middlewareAuth.unauthenticatedPaths"},
		{"bad sign-up path", func(c *Config) { c.SignUpPaths = []string{"/:"} }, "signUpPaths"},
		{"redirect uri without a path", func(c *Config) { c.RedirectURI = "https://app.test" }, "redirectUri"},
		{"redirect uri on the root path", func(c *Config) { c.RedirectURI = "https://app.test/" }, "redirectUri"},
		{"cookie max age of zero", func(c *Config) { c.CookieMaxAge = "0" }, "cookieMaxAge"},
		{"identity header with an unknown field", func(c *Config) { c.IdentityHeaders = map[string]string{"X-User": "user.phone"} }, "identityHeaders.X-User"},
		{"identity header with an invalid name", func(c *Config) { c.IdentityHeaders = map[string]string{"X User": "user.id"} }, "identityHeaders.X User"},
		{"identity header that is hop-by-hop", func(c *Config) { c.IdentityHeaders = map[string]string{"Connection": "user.id"} }, "identityHeaders.Connection"},
		{"identity header Traefik sets", func(c *Config) { c.IdentityHeaders = map[string]string{"X-Forwarded-For": "user.id"} }, "identityHeaders.X-Forwarded-For"},
		{"identity header the plugin sets", func(c *Config) { c.IdentityHeaders = map[string]string{"x_url": "user.id"} }, "identityHeaders.x_url"},
		{"identity header twice", func(c *Config) {
			c.IdentityHeaders = map[string]string{"Remote-User": "user.id", "remote_user": "user.email"}
		}, "identityHeaders.remote_user"},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(c)
			_, err := New(context.Background(), http.NotFoundHandler(), c, "test")
			if err == nil || !strings.Contains(err.Error(), tt.wantKey+" ") {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantKey)
			}
		})
	}
}

// setenv is os.Setenv undone at cleanup. t.Setenv would change the host
// process's environment, which the interpreter does not see: yaegi gives
// interpreted code its own copy, as Traefik's plugin loader does.
func setenv(t *testing.T, name, value string) {
	old, had := os.LookupEnv(name)
	os.Setenv(name, value)
	t.Cleanup(func() {
		if had {
			os.Setenv(name, old)
		} else {
			os.Unsetenv(name)
		}
	})
}

func TestConfigurationDefaultsAndFallbacks(t *testing.T) {
	setenv(t, "WORKOS_CLIENT_ID", "client_env")
	setenv(t, "WORKOS_API_KEY", "sk_env")
	setenv(t, "WORKOS_COOKIE_PASSWORD", testCookiePassword)
	setenv(t, "NEXT_PUBLIC_WORKOS_REDIRECT_URI", "https://app.test/auth/callback")
	setenv(t, "WORKOS_COOKIE_SAMESITE", "STRICT")
	c := CreateConfig()
	c.SignUpPaths = []string{" /join", "/register/:step", ""}
	c.CookiePasswords = map[string]string{"2": strings.Repeat("n", 32)}
	s, err := parseSettings(c)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{s.clientID, s.apiKey, s.callbackPath, s.apiBaseURL, s.cookie.name, s.cookie.sameSite,
		s.signUpPathsHeader, s.keyring.sealID, s.signInPath, s.returnPathname}
	want := []string{"client_env", "sk_env", "/auth/callback", "https://api.workos.com", "wos-session", "Strict",
		"/join,/register/:step", "2", "/auth/sign-in", "/"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("setting %d = %q, want %q", i, got[i], want[i])
		}
	}
	if s.cookie.maxAge != 34560000 || s.refreshBuffer >= 0 {
		t.Errorf("maxAge %d, refreshBuffer %v", s.cookie.maxAge, s.refreshBuffer)
	}
}

func TestSignedInRequestReachesUpstreamWithIdentity(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	w := env.do(request{target: "/dashboard?x=1", cookie: "wos-session=" + sealed, headers: map[string]string{
		"X-Workos-User-Id": "user_spoofed", "X-Workos-Anything": "spoofed", "X-Url": "https://evil.test",
		"X-Forwarded-Proto": "https",
	}})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	h := env.upstream.last()
	want := map[string]string{
		"X-Workos-User-Id":         fakeworkos.UserAlice,
		"X-Workos-User-Email":      "alice@example.com",
		"X-Workos-Session-Id":      issued.SessionID,
		"X-Workos-Organization-Id": fakeworkos.OrgAcme,
		"X-Workos-Role":            "admin",
		"X-Workos-Middleware":      "true",
		"X-Workos-Session":         sealed,
		"X-Url":                    "https://app.test/dashboard?x=1",
		"X-Redirect-Uri":           "https://app.test/callback",
		"X-Workos-Anything":        "",
	}
	for name, value := range want {
		if got := h.Get(name); got != value {
			t.Errorf("upstream %s = %q, want %q", name, got, value)
		}
	}
	if h.Get("X-Workos-Permissions") == "" {
		t.Errorf("no permissions header")
	}
	for name := range w.Result().Header {
		switch name {
		case "Cache-Control", "Vary", "X-Upstream", "Content-Type":
		default:
			t.Errorf("browser received header %s", name)
		}
	}
	if w.Header().Get("Cache-Control") != noStore || w.Header().Get("Vary") != "Cookie" {
		t.Errorf("cache headers %q / %q", w.Header().Get("Cache-Control"), w.Header().Get("Vary"))
	}
}

func TestSignedOutRequests(t *testing.T) {
	tests := []struct {
		name       string
		middleware bool
		req        request
		wantStatus int
	}{
		{"pass without middlewareAuth", false, document("/page", ""), http.StatusOK},
		{"document redirected to AuthKit", true, document("/page", ""), http.StatusTemporaryRedirect},
		{"POST document gets 303", true, request{method: http.MethodPost, target: "/form", headers: map[string]string{"Accept": documentAccept}}, http.StatusSeeOther},
		{"fetch gets 401", true, request{target: "/api/data", headers: map[string]string{"Accept": "application/json"}}, http.StatusUnauthorized},
		{"prefetch gets 401", true, request{target: "/page", headers: map[string]string{"Accept": documentAccept, "Sec-Purpose": "prefetch"}}, http.StatusUnauthorized},
		{"RSC request gets 401", true, request{target: "/page", headers: map[string]string{"Accept": documentAccept, "RSC": "1"}}, http.StatusUnauthorized},
		{"public pattern passes", true, document("/public/about", ""), http.StatusOK},
		{"public pattern is case-insensitive with trailing slash", true, document("/PUBLIC/about/", ""), http.StatusOK},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) {
				c.MiddlewareAuth.Enabled = tt.middleware
				c.MiddlewareAuth.UnauthenticatedPaths = []string{"/public/:page*"}
			})
			w := env.do(tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			switch w.Code {
			case http.StatusOK:
				if h := env.upstream.last(); h.Get("X-Workos-User-Id") != "" || h.Get("X-Workos-Middleware") != "true" {
					t.Errorf("upstream headers %v", h)
				}
			case http.StatusUnauthorized:
				if !strings.Contains(w.Body.String(), `"error":"unauthenticated"`) || setCookie(w, pkceCookiePrefix) != "" {
					t.Errorf("401 body %q, cookies %v", w.Body, w.Result().Header.Values("Set-Cookie"))
				}
			default:
				checkAuthorizeRedirect(t, env, w, tt.req.target)
			}
		})
	}
}

// checkAuthorizeRedirect checks a redirect to AuthKit: the authorize URL's
// parameters and the PKCE cookie holding exactly the state.
func checkAuthorizeRedirect(t *testing.T, env *testEnv, w *httptest.ResponseRecorder, returnPath string) url.Values {
	t.Helper()
	loc, err := url.Parse(w.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(w.Header().Get("Location"), env.api.URL+"/user_management/authorize?") {
		t.Fatalf("Location %q", w.Header().Get("Location"))
	}
	q := loc.Query()
	if q.Get("client_id") != env.fake.ClientID() || q.Get("redirect_uri") != "http://app.test/callback" ||
		q.Get("code_challenge_method") != "S256" || q.Get("provider") != "authkit" || q.Get("response_type") != "code" {
		t.Errorf("authorize query %v", q)
	}
	state := q.Get("state")
	c := setCookie(w, pkceCookieName(state))
	if c == "" || cookieValue(c) != state || !strings.Contains(c, "Max-Age=600") || !strings.Contains(c, "HttpOnly") {
		t.Fatalf("PKCE cookie %q for state", c)
	}
	plain, err := env.ak.s.keyring.Unseal(state, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeAuthState(plain)
	if err != nil || st.ReturnPathname != returnPath || pkceChallenge(st.CodeVerifier) != q.Get("code_challenge") {
		t.Fatalf("state %+v, err %v", st, err)
	}
	return q
}

// signInThroughFake follows a sign-in redirect through the fake's
// login_hint shortcut and the plugin's callback, returning the callback's
// response and the PKCE cookie the browser held.
func signInThroughFake(t *testing.T, env *testEnv, start *httptest.ResponseRecorder, userID string) *httptest.ResponseRecorder {
	t.Helper()
	state, _ := url.Parse(start.Header().Get("Location"))
	pkce := setCookie(start, pkceCookieName(state.Query().Get("state")))
	client := &http.Client{}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(start.Header().Get("Location") + "&login_hint=" + url.QueryEscape(userID))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return followToCallback(t, env, resp, pkce)
}

// followToCallback sends the fake's redirect to the plugin's callback, at
// the redirect URI's own scheme and host, with the flow's PKCE cookie.
func followToCallback(t *testing.T, env *testEnv, resp *http.Response, pkce string) *httptest.ResponseRecorder {
	t.Helper()
	callback, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || callback.Path != "/callback" {
		t.Fatalf("fake answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	r := httptest.NewRequest(http.MethodGet, callback.String(), nil)
	r.Header.Set("Accept", documentAccept)
	r.Header.Set("Cookie", strings.SplitN(pkce, ";", 2)[0])
	w := httptest.NewRecorder()
	env.ak.ServeHTTP(w, r)
	return w
}

// signInThroughFakePage is signInThroughFake for a sign-in that must show
// the fake's page (max_age asks for a new authentication): it submits the
// page's form for userID in orgID.
func signInThroughFakePage(t *testing.T, env *testEnv, start *httptest.ResponseRecorder, userID, orgID string) *httptest.ResponseRecorder {
	t.Helper()
	authorize, _ := url.Parse(start.Header().Get("Location"))
	pkce := setCookie(start, pkceCookieName(authorize.Query().Get("state")))
	client := &http.Client{}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.PostForm(env.api.URL+"/__fake/sign-in", url.Values{
		"authorize_query": {authorize.RawQuery}, "user_id": {userID}, "organization_id": {orgID},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return followToCallback(t, env, resp, pkce)
}

func TestSignInFlowThroughCallback(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	start := env.do(document("/reports?year=2026", ""))
	w := signInThroughFake(t, env, start, fakeworkos.UserBob)
	if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "http://app.test/reports?year=2026" {
		t.Fatalf("callback %d to %q: %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	sessionCookie := setCookie(w, "wos-session")
	for _, attr := range []string{"Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=34560000"} {
		if !strings.Contains(sessionCookie, attr) {
			t.Errorf("session cookie lacks %s: %q", attr, sessionCookie)
		}
	}
	if strings.Contains(sessionCookie, "Secure") {
		t.Errorf("Secure on plain http: %q", sessionCookie)
	}
	state, _ := url.Parse(start.Header().Get("Location"))
	if del := setCookie(w, pkceCookieName(state.Query().Get("state"))); !strings.Contains(del, "Max-Age=0") {
		t.Errorf("PKCE cookie not deleted: %q", del)
	}
	page := env.do(document("/reports", "wos-session="+cookieValue(sessionCookie)))
	if page.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserBob {
		t.Fatalf("after sign-in: %d, user %q", page.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
	if !strings.Contains(env.logs.String(), `"msg":"signed_in"`) {
		t.Errorf("no signed_in event in %s", env.logs)
	}
}

func TestCallbackRefusals(t *testing.T) {
	env := newTestEnv(t, nil)
	start := env.do(document("/auth/sign-in", ""))
	state := mustQuery(t, start.Header().Get("Location")).Get("state")
	pkce := pkceCookieName(state) + "=" + state
	other := mustQuery(t, env.do(document("/auth/sign-in?returnTo=/other", "")).Header().Get("Location")).Get("state")
	tests := []struct {
		name   string
		target string
		cookie string
		status int
		reason string
	}{
		{"no code", "/callback?state=" + url.QueryEscape(state), pkce, 400, "missing_auth_params"},
		{"no state", "/callback?code=abc", pkce, 400, "missing_auth_params"},
		{"no PKCE cookie", "/callback?code=abc&state=" + url.QueryEscape(state), "", 400, "missing_pkce_cookie"},
		{"state from another flow", "/callback?code=abc&state=" + url.QueryEscape(other), "wos-auth-verifier=" + state, 400, "oauth_state_mismatch"},
		{"forged state", "/callback?code=abc&state=forged", pkceCookieName("forged") + "=forged", 400, "invalid_state"},
		{"unknown code", "/callback?code=abc&state=" + url.QueryEscape(state), pkce, 400, "authentication_failed"},
		{"AuthKit error", "/callback?error=access_denied&state=" + url.QueryEscape(state), pkce, 400, "authorization_error"},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(request{target: tt.target, cookie: tt.cookie, headers: map[string]string{"Accept": "application/json"}})
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.reason) || setCookie(w, "wos-session") != "" {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.status, tt.reason)
			}
		})
	}
}

func TestCallbackReplayIsRefused(t *testing.T) {
	env := newTestEnv(t, nil)
	start := env.do(document("/auth/sign-in", ""))
	first := signInThroughFake(t, env, start, fakeworkos.UserBob)
	if first.Code != http.StatusTemporaryRedirect {
		t.Fatalf("first callback %d", first.Code)
	}
	// The same callback URL again, with the PKCE cookie still held.
	state := mustQuery(t, start.Header().Get("Location")).Get("state")
	code := lastCode(t, env)
	w := env.do(request{target: "/callback?code=" + code + "&state=" + url.QueryEscape(state),
		cookie: pkceCookieName(state) + "=" + state})
	if w.Code != http.StatusBadRequest || setCookie(w, "wos-session") != "" {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
}

func lastCode(t *testing.T, env *testEnv) string {
	reqs := env.fake.AuthenticateRequests()
	for i := len(reqs) - 1; i >= 0; i-- {
		var body struct {
			Code string `json:"code"`
		}
		if json.Unmarshal([]byte(reqs[i].Body), &body) == nil && body.Code != "" {
			return body.Code
		}
	}
	t.Fatal("no code exchange recorded")
	return ""
}

func mustQuery(t *testing.T, location string) url.Values {
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestListItemsAreNotSplitOnCommas: a YAML list item is one value, commas
// and all (a pattern's quantifier, a role named with one). Traefik's
// decoding splits a single comma-separated string (Docker labels) before
// the plugin sees it; harness/providers proves that part.
func TestListItemsAreNotSplitOnCommas(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.MiddlewareAuth.Enabled = true
		c.MiddlewareAuth.UnauthenticatedPaths = []string{`/files/(\d{1,3})`}
	})
	for _, tt := range []struct {
		path   string
		public bool
	}{{"/files/12", true}, {"/files/1234", false}} {
		w := env.do(request{target: tt.path, headers: map[string]string{"Accept": "application/json"}})
		if public := w.Code == http.StatusOK; public != tt.public {
			t.Errorf("%s: status %d, want public %v", tt.path, w.Code, tt.public)
		}
	}
}
