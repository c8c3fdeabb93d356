package authkit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Bounded work": no request makes the plugin do work, or call
// WorkOS, out of proportion to a normal one.

// junkCookies returns n short cookies whose names start with prefix.
func junkCookies(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(prefix + strconv.Itoa(i) + "=v")
	}
	return b.String()
}

func TestCookieReaderExaminesABoundedNumberOfMatches(t *testing.T) {
	tests := []struct {
		name        string
		cookie      string
		wantSession string
	}{
		{"the session after many other cookies", junkCookies("c", 5000) + "; wos-session=S", "S"},
		{"the session after many that start like it, past the bound", junkCookies("wos-session.x", 5000) + "; wos-session=S", ""},
		{"the session inside another cookie's value is not the session", "a=b wos-session=S", ""},
		{"the session after a few that start like it", junkCookies("wos-session.x", 10) + "; wos-session=S", "S"},
	}
	for _, tt := range tests {
		rc := readCookies([]string{tt.cookie}, "wos-session", readAll)
		if rc.session != tt.wantSession {
			t.Errorf("%s: session %q, want %q", tt.name, rc.session, tt.wantSession)
		}
	}
	many := readCookies([]string{junkCookies("wos-auth-verifier-", 5000)}, "wos-session", readAll)
	if len(many.pkceNames) > maxCookieMatches {
		t.Errorf("%d verifier names kept, bound %d", len(many.pkceNames), maxCookieMatches)
	}
	lines := make([]string, 1000)
	for i := range lines {
		lines[i] = "c=1"
	}
	lines = append(lines, "wos-session=S")
	if rc := readCookies(lines, "wos-session", readAll); rc.session != "" {
		t.Errorf("a session on Cookie line %d was read; lines past %d are not", len(lines), maxCookieLines)
	}
}

// TestSessionCookiesReadBackForEveryPartCount: what sessionCookies writes,
// readCookies reassembles, for every number of parts writing allows; one
// more part is refused when written.
func TestSessionCookiesReadBackForEveryPartCount(t *testing.T) {
	c := cookieSettings{name: "wos-session", maxAge: defaultCookieMaxAge, sameSite: "Lax"}
	room := maxCookieLength - len(c.name) - len(".9=") - len(c.attributes("Lax", defaultCookieMaxAge, false))
	for parts := 1; parts <= maxSessionChunks; parts++ {
		sealed := strings.Repeat("x", parts*room-7)
		cookies, err := c.sessionCookies(sealed, false, sessionCookieNames{})
		if err != nil {
			t.Fatalf("%d parts: %v", parts, err)
		}
		var pairs []string
		for _, sc := range cookies {
			if len(sc) > maxCookieLength {
				t.Fatalf("%d parts: a Set-Cookie of %d bytes", parts, len(sc))
			}
			pairs = append(pairs, strings.SplitN(sc, ";", 2)[0])
		}
		if got := readCookies([]string{strings.Join(pairs, "; ")}, c.name, readAll).session; got != sealed {
			t.Fatalf("%d parts: read back %d bytes of %d", parts, len(got), len(sealed))
		}
	}
	if _, err := c.sessionCookies(strings.Repeat("x", maxSessionChunks*room+1), false, sessionCookieNames{}); err != errSessionTooLarge {
		t.Fatalf("a session needing %d parts: err %v, want errSessionTooLarge", maxSessionChunks+1, err)
	}
}

// TestSessionTooLargeForCookiesIsRefusedAtSignIn: a user whose session
// needs more cookies than the plugin reads back gets an error page, not a
// cookie the next request cannot read (which would loop through AuthKit).
func TestSessionTooLargeForCookiesIsRefusedAtSignIn(t *testing.T) {
	env := newTestEnv(t, nil)
	huge := fakeworkos.User{ID: "user_01HZHUGEMETADATA0000000000", Email: "huge@example.com", Metadata: map[string]string{}}
	for i := 0; i < 80; i++ {
		huge.Metadata["k"+strconv.Itoa(i)] = strings.Repeat("m", 600)
	}
	env.fake.PutUser(huge)
	w := signInThroughFake(t, env, env.do(document("/auth/sign-in", "")), huge.ID)
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "sign in") {
		t.Fatalf("callback %d: %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "wos-session") {
			t.Fatalf("a session cookie was written: %.60q", c)
		}
	}
	if !strings.Contains(env.logs.String(), "too large") {
		t.Errorf("no event says why: %s", env.logs)
	}
}

// TestPKCECookieStaysWithinTheBrowsersLimit: a sign-in from a page with a
// long query keeps its path; a path too long by itself falls back.
func TestPKCECookieStaysWithinTheBrowsersLimit(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true; c.ReturnPathname = "/home" })
	tests := []struct {
		name, target, wantReturn string
	}{
		{"a 3 KB query is dropped", "/reports?q=" + strings.Repeat("a", 3000), "/reports"},
		{"a 3 KB path falls back to returnPathname", "/" + strings.Repeat("p", 3000), "/home"},
		{"a short query is kept", "/reports?q=1", "/reports?q=1"},
	}
	for _, tt := range tests {
		w := env.do(document(tt.target, ""))
		state := mustQuery(t, w.Header().Get("Location")).Get("state")
		pkce := setCookie(w, pkceCookieName(state))
		if pkce == "" || len(pkce) > maxCookieLength {
			t.Fatalf("%s: PKCE cookie of %d bytes", tt.name, len(pkce))
		}
		plain, err := env.ak.s.keyring.Unseal(state, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := decodeAuthState(plain); st.ReturnPathname != tt.wantReturn {
			t.Errorf("%s: return path %.40q, want %q", tt.name, st.ReturnPathname, tt.wantReturn)
		}
	}
}

func TestSwitchOrganizationReadsABoundedForm(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"a form", "application/x-www-form-urlencoded", "organizationId=" + fakeworkos.OrgGlobex, http.StatusSeeOther},
		{"a form past 16 KiB", "application/x-www-form-urlencoded", "organizationId=" + fakeworkos.OrgGlobex + "&pad=" + strings.Repeat("x", 16<<10), http.StatusRequestEntityTooLarge},
		{"a multipart body", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"organizationId\"\r\n\r\n" + fakeworkos.OrgGlobex + "\r\n--x--\r\n", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "http://app.test/auth/switch-organization", strings.NewReader(tt.body))
		r.Header.Set("Content-Type", tt.contentType)
		r.Header.Set("Cookie", "wos-session="+sealed)
		w := httptest.NewRecorder()
		env.ak.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, w.Code, tt.want)
		}
	}
}

// TestSpentCookieReplayCostsOneWorkOSCall replays a cookie whose refresh
// token WorkOS no longer accepts: the first answer is remembered.
func TestSpentCookieReplayCostsOneWorkOSCall(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, issued := env.session(fakeworkos.UserBob, "", -time.Minute)
	env.fake.RevokeSession(issued.SessionID)
	for i := 0; i < 1000; i++ {
		w := env.do(request{target: "/api", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}})
		if env.upstream.last().Get("X-Workos-User-Id") != "" && w.Code == http.StatusOK {
			t.Fatalf("replay %d was signed in", i)
		}
	}
	if got := env.fake.RefreshCalls(); got != 1 {
		t.Fatalf("%d WorkOS refresh calls for 1000 replays of one spent cookie, want 1", got)
	}
}

// TestForgedCookieFloodCostsNoWorkOSCallAndNoKey sends distinct cookies
// shaped like seals: each fails at the MAC, before any key lookup.
func TestForgedCookieFloodCostsNoWorkOSCallAndNoKey(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	for i := 0; i < 500; i++ {
		forged := "Fe26.2*1*" + strings.Repeat(strconv.Itoa(i%10), 64) + "*AAAAAAAAAAAAAAAAAAAAAA*" +
			b64url([]byte("ciphertext-"+strconv.Itoa(i)+"-padding....")) + "**" + strings.Repeat("a", 64) + "*" + b64url(make([]byte, 32)) + "~2"
		if w := env.do(document("/page", "wos-session="+forged)); w.Code != http.StatusTemporaryRedirect {
			t.Fatalf("forged cookie %d: status %d", i, w.Code)
		}
	}
	if calls := env.fake.Calls(fakeworkos.EndpointAuthenticate) + env.fake.Calls(fakeworkos.EndpointJWKS); calls != 0 {
		t.Fatalf("%d WorkOS calls (authenticate and JWKS) for forged cookies, want 0", calls)
	}
}

// TestJWKSFetchOutlivesTheClientThatStartedIt: a client that hangs up
// while the key set is fetched neither cancels the fetch nor spends the
// retry interval; the next request verifies with the fetched keys, without
// a refresh in place of the verification.
func TestJWKSFetchOutlivesTheClientThatStartedIt(t *testing.T) {
	env := newTestEnv(t, nil)
	first, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	second, _ := env.session(fakeworkos.UserBob, fakeworkos.OrgAcme, 0)
	env.fake.InjectFault(fakeworkos.EndpointJWKS, fakeworkos.Fault{Kind: fakeworkos.FaultDelay, Delay: 300 * time.Millisecond, Count: 1})
	gone, hangUp := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodGet, "http://app.test/page", nil).WithContext(gone)
	r.Header.Set("Cookie", "wos-session="+first)
	done := make(chan struct{})
	go func() { env.ak.ServeHTTP(httptest.NewRecorder(), r); close(done) }()
	time.Sleep(50 * time.Millisecond)
	hangUp()
	<-done
	w := env.do(document("/page", "wos-session="+second))
	if w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserBob {
		t.Fatalf("the next request: status %d, user %q", w.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
	if jwks, refreshes := env.fake.Calls(fakeworkos.EndpointJWKS), env.fake.RefreshCalls(); jwks != 1 || refreshes != 0 {
		t.Fatalf("%d JWKS fetches and %d refreshes; want the first fetch to serve both requests", jwks, refreshes)
	}
}

// TestInvalidGrantKeepsTheCookieForASiblingsRotation: another Traefik
// replica may have rotated the refresh token a moment ago; its answer
// carries the new cookie, so this one must not delete it. The same cookie
// coming back after the window is deleted, without another WorkOS call.
func TestInvalidGrantKeepsTheCookieForASiblingsRotation(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	sealed, issued := env.session(fakeworkos.UserBob, "", -time.Minute)
	// A sibling replica rotates the token first.
	if _, err := env.ak.workos.authenticateWithRefreshToken(context.Background(), issued.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	api := request{target: "/api", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}}
	w := env.do(api)
	if w.Code != http.StatusUnauthorized || setCookie(w, "wos-session") != "" {
		t.Fatalf("inside the window: status %d, Set-Cookie %q; want 401 and the cookie kept", w.Code, setCookie(w, "wos-session"))
	}
	calls := env.fake.RefreshCalls()
	env.shiftClock(siblingRotationWindow + time.Second)
	w = env.do(api)
	if c := setCookie(w, "wos-session"); w.Code != http.StatusUnauthorized || !strings.Contains(c, "Max-Age=0") {
		t.Fatalf("after the window: status %d, Set-Cookie %q; want the cookie deleted", w.Code, c)
	}
	if env.fake.RefreshCalls() != calls {
		t.Fatalf("the remembered answer cost another WorkOS call")
	}
}

// TestRevokedSessionIsSignedOutPromptly: a session revoked at WorkOS (not
// through this process) is refused on its first refresh, not served.
func TestRevokedSessionIsSignedOutPromptly(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	sealed, issued := env.session(fakeworkos.UserBob, "", -time.Minute)
	env.fake.RevokeSession(issued.SessionID)
	if w := env.do(document("/page", "wos-session="+sealed)); w.Code != http.StatusTemporaryRedirect {
		t.Fatalf("revoked session: status %d, want the sign-in redirect", w.Code)
	}
}

// TestCacheNamespaceCoversTheRefreshBuffer: two middlewares whose refresh
// buffers differ share the cache, but a session one serves until its
// expiry is not served by the other past its refresh point.
func TestCacheNamespaceCoversTheRefreshBuffer(t *testing.T) {
	lazy := newTestEnv(t, func(c *Config) { c.RefreshBufferSeconds = "0" })
	sameWorkOS, _ := url.Parse(lazy.api.URL)
	eager := newTestEnv(t, func(c *Config) {
		c.RefreshBufferSeconds = "120"
		c.APIPort = sameWorkOS.Port()
	})
	eager.ak.sessions = lazy.ak.sessions
	sealed, _ := lazy.session(fakeworkos.UserBob, "", 90*time.Second)
	lazy.do(document("/page", "wos-session="+sealed))
	if lazy.fake.RefreshCalls() != 0 {
		t.Fatal("the lazy middleware refreshed a token with 90 s left")
	}
	w := eager.do(document("/page", "wos-session="+sealed))
	if lazy.fake.RefreshCalls() != 1 || setCookie(w, "wos-session") == "" {
		t.Fatalf("the eager middleware served the other's cached session past its own refresh point (refreshes %d)", lazy.fake.RefreshCalls())
	}
}

func TestStillValidTokenWithoutRefreshTokenIsServed(t *testing.T) {
	env := newTestEnv(t, nil)
	issued, err := env.fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserBob})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := env.fake.MintSessionToken(issued.SessionID, 20*time.Second) // inside the 30 s buffer
	user, _ := workosSessionUser(issued.User)
	sess, _ := newSession(nil, token, "", user, nil, "Password")
	sealed, _ := env.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	w := env.do(document("/page", "wos-session="+sealed))
	if w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserBob || setCookie(w, "wos-session") != "" {
		t.Fatalf("status %d, user %q, Set-Cookie %q: want served, cookie untouched", w.Code,
			env.upstream.last().Get("X-Workos-User-Id"), setCookie(w, "wos-session"))
	}
}

// TestCallbackActsOnGETOnly: a HEAD (a link scanner's) must not spend the
// code, so the browser's GET that follows still signs in.
func TestCallbackActsOnGETOnly(t *testing.T) {
	env := newTestEnv(t, nil)
	start := env.do(document("/auth/sign-in", ""))
	state := mustQuery(t, start.Header().Get("Location")).Get("state")
	client := &http.Client{}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(start.Header().Get("Location") + "&login_hint=" + url.QueryEscape(fakeworkos.UserBob))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback, _ := url.Parse(resp.Header.Get("Location"))
	pkce := pkceCookieName(state) + "=" + state
	head := env.do(request{method: http.MethodHead, target: callback.RequestURI(), cookie: pkce})
	if head.Code != http.StatusMethodNotAllowed || env.fake.CodeExchangeCalls() != 0 || len(head.Result().Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("HEAD: status %d, code exchanges %d, cookies %v: want 405 and nothing spent",
			head.Code, env.fake.CodeExchangeCalls(), head.Result().Header.Values("Set-Cookie"))
	}
	if get := env.do(document(callback.RequestURI(), pkce)); setCookie(get, "wos-session") == "" {
		t.Fatalf("GET after the HEAD: status %d, no session", get.Code)
	}
}

// TestSpentCookieIsRefusedFromTheCache: once the answer for a cookie is
// final, a replay is refused and deleted without unsealing it again.
func TestSpentCookieIsRefusedFromTheCache(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	sealed, issued := env.session(fakeworkos.UserBob, "", -time.Minute)
	env.fake.RevokeSession(issued.SessionID)
	env.do(apiRequest("wos-session=" + sealed))
	env.shiftClock(siblingRotationWindow + time.Second)
	env.do(apiRequest("wos-session=" + sealed)) // the answer is final now
	// Another password: the cookie no longer opens, so only the cache can
	// answer it as spent.
	env.ak.s.keyring = mustKeyring(t, map[string]string{"1": strings.Repeat("z", 32)})
	w := env.do(apiRequest("wos-session=" + sealed))
	if c := setCookie(w, "wos-session"); w.Code != http.StatusUnauthorized || !strings.Contains(c, "Max-Age=0") {
		t.Fatalf("replay: status %d, Set-Cookie %q; want 401 and the cookie deleted", w.Code, c)
	}
	if strings.Contains(env.logs.String(), "session cookie unusable") {
		t.Fatal("the replay was unsealed again")
	}
}
