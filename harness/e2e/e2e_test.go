// Package e2e signs a real browser in and out through the real Traefik
// running the plugin with the repository's own examples/dynamic.yml, against
// the fake WorkOS. It is the closest the test suite gets to a user's first
// deployment: if the example configuration, Traefik's template rendering, the
// plugin's environment fallbacks or Chromium's cookie rules disagree with the
// plugin, these tests fail.
//
// Everything listens on 127.0.0.1: Traefik, the fake WorkOS and the echo
// upstream; Chromium sends anything else to a dead proxy.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"github.com/traefik-authkit/authkit/harness/browser"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const (
	// sessionCookie is the plugin's default session cookie name; a split
	// session uses sessionCookie.0, sessionCookie.1, …
	sessionCookie = "wos-session"
	// pkceCookiePrefix starts the name of each sign-in's verifier cookie.
	pkceCookiePrefix = "wos-auth-verifier"
	// cookiePassword seals the session cookies (≥ 32 characters).
	cookiePassword = "e2e-cookie-password-at-least-32-characters"

	// accessTokenTTL is short so the refresh steps need only seconds of
	// waiting; the sign-in steps take well under a second.
	accessTokenTTL = 3 * time.Second
	// refreshDeadline bounds how long past the token's expiry a reload may
	// still be served without a refresh. The plugin accepts a token a few
	// seconds past exp (clock-skew leeway) before refreshing it, so this
	// is that leeway plus a margin, not the exact point of refresh.
	refreshDeadline = 15 * time.Second

	// protectedPath is not listed in the example's unauthenticatedPaths.
	protectedPath = "/dashboard"
)

// stack is one Traefik, fake WorkOS, echo upstream and browser, wired
// through examples/dynamic.yml.
type stack struct {
	t       *testing.T
	fake    *fakeworkos.Server
	traefik *traefiktest.Traefik
	browser *browser.Browser
}

// startStack starts the fake WorkOS with accessTokenTTL, the echo upstream,
// Traefik serving examples/dynamic.yml verbatim (its secrets and addresses
// from the WORKOS_* and AUTHKIT_* variables the example documents) and a
// fresh Chromium. Everything stops when the test ends.
func startStack(t *testing.T) *stack {
	t.Helper()
	// Skip (or fail, with AUTHKIT_REQUIRE_TRAEFIK) before starting anything.
	traefiktest.RequireBinary(t)

	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The absolute WORKOS_REDIRECT_URI must name the web port before
	// Traefik starts.
	webPort, err := traefiktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	redirectURI := "http://127.0.0.1:" + webPort + "/callback"

	// The fake accepts only the configured redirect URI, so a plugin that
	// sent another one (say, resolved against the wrong origin) fails here.
	fake := fakeworkos.New(fakeworkos.Options{
		AccessTokenTTL: accessTokenTTL,
		RedirectURIs:   []string{redirectURI},
	})
	fakeURL, stopFake, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopFake)
	fakeAddr, err := url.Parse(fakeURL)
	if err != nil {
		t.Fatal(err)
	}

	upstream := traefiktest.NewEchoUpstream(t)
	tr := traefiktest.Start(t, traefiktest.Options{
		DynamicFile: filepath.Join(root, "examples", "dynamic.yml"),
		Upstream:    upstream.URL,
		WebPort:     webPort,
		Env: []string{
			"WORKOS_CLIENT_ID=" + fake.ClientID(),
			"WORKOS_API_KEY=" + fake.APIKey(),
			"WORKOS_COOKIE_PASSWORD=" + cookiePassword,
			"WORKOS_REDIRECT_URI=" + redirectURI,
			"WORKOS_API_HOSTNAME=127.0.0.1",
			"WORKOS_API_HTTPS=false",
			"WORKOS_API_PORT=" + fakeAddr.Port(),
			"AUTHKIT_UPSTREAM_URL=" + upstream.URL,
			// Refresh only once the token has expired, so the test can
			// tell exactly when a refresh is due.
			"AUTHKIT_REFRESH_BUFFER_SECONDS=0",
		},
	})
	return &stack{t: t, fake: fake, traefik: tr, browser: browser.New(t)}
}

// step logs the start of a named step, so a failure's log shows where in
// the scenario it happened.
func (s *stack) step(name string) {
	s.t.Helper()
	s.t.Logf("step: %s", name)
}

// signIn opens path while signed out, expects the fake's sign-in page,
// checks the PKCE cookie the plugin set on the way, clicks userID's
// membership in orgID and waits until the browser is back on path through
// /callback. It returns when the sign-in completed, which is about when the
// access token was issued.
func (s *stack) signIn(path, userID, orgID string) time.Time {
	s.t.Helper()
	b := s.browser
	b.Navigate(s.traefik.URL + path)
	if loc := b.Location(); !strings.Contains(loc, "/user_management/authorize") {
		s.t.Fatalf("signed-out %s landed on %s, want the fake's sign-in page", path, loc)
	}
	if c := cookiesWithPrefix(b.Cookies(), pkceCookiePrefix); len(c) != 1 || !c[0].HTTPOnly {
		s.t.Fatalf("before the callback: PKCE cookies %v, want one HttpOnly %s-… cookie", cookieNames(c), pkceCookiePrefix)
	}
	b.Click(fmt.Sprintf(`button[data-user-id=%q][data-organization-id=%q]`, userID, orgID))
	b.WaitPath(path)
	b.WaitVisible("#upstream")
	return time.Now()
}

// upstreamHeaders returns the request headers the echo upstream rendered
// into the current page, after checking that the page is the upstream's
// answer for path.
func (s *stack) upstreamHeaders(path string) http.Header {
	s.t.Helper()
	b := s.browser
	if got := b.Text("#upstream"); got != traefiktest.UpstreamText {
		s.t.Fatalf("page at %s is not the upstream's (heading %q)", b.Location(), got)
	}
	echo, err := traefiktest.DecodeEcho(strings.NewReader(b.Text("#echo")))
	if err != nil {
		s.t.Fatal(err)
	}
	if echo.Path != path {
		s.t.Fatalf("upstream saw path %q, want %q", echo.Path, path)
	}
	return echo.Headers
}

// expectIdentity checks the identity headers the upstream received.
func (s *stack) expectIdentity(h http.Header, want map[string]string) {
	s.t.Helper()
	for name, v := range want {
		if got := h.Get(name); got != v {
			s.t.Errorf("upstream got %s %q, want %q", name, got, v)
		}
	}
}

// waitForRefresh waits until the access token issued at signedIn has
// expired, then reloads path until the page is served with a session other
// than oldSeal (the x-workos-session at sign-in). Every reload must still
// show userID signed in: the plugin may serve the token a little past exp,
// but it must never show the user as signed out.
//
// It waits for a new seal on the page rather than for the fake's refresh
// count because the refresh may be made by a request of the browser's own
// (the favicon) just after the page loaded: the count is then already 1
// while the page and, for a moment, the cookie jar still hold the old
// session. The next reload carries the refreshed cookie.
func (s *stack) waitForRefresh(path, userID, oldSeal string, signedIn time.Time) http.Header {
	s.t.Helper()
	time.Sleep(time.Until(signedIn.Add(accessTokenTTL)))
	deadline := signedIn.Add(accessTokenTTL + refreshDeadline)
	for reloads := 1; ; reloads++ {
		s.browser.Navigate(s.traefik.URL + path)
		h := s.upstreamHeaders(path)
		if got := h.Get("X-Workos-User-Id"); got != userID {
			s.t.Fatalf("reload %s after sign-in: X-Workos-User-Id %q, want %q (signed out instead of refreshed)",
				time.Since(signedIn).Round(time.Millisecond), got, userID)
		}
		if seal := h.Get("X-Workos-Session"); seal != "" && seal != oldSeal {
			s.t.Logf("refreshed session on the page %s after sign-in, at reload %d",
				time.Since(signedIn).Round(time.Millisecond), reloads)
			return h
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no refreshed session %s after sign-in (token TTL %s, fake refreshes %d)",
				time.Since(signedIn).Round(time.Millisecond), accessTokenTTL, s.fake.RefreshCalls())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestSignInRefreshSignOut is a person's whole session in Chromium: sign in
// from a protected page, stay signed in across a token refresh, sign out;
// plus the 401 a script gets without a session.
func TestSignInRefreshSignOut(t *testing.T) {
	s := startStack(t)
	b := s.browser

	s.step("sign in as Alice in Acme from a protected page")
	signedIn := s.signIn(protectedPath, fakeworkos.UserAlice, fakeworkos.OrgAcme)
	h := s.upstreamHeaders(protectedPath)
	s.expectIdentity(h, map[string]string{
		"X-Workos-User-Id":         fakeworkos.UserAlice,
		"X-Workos-User-Email":      "alice@example.com",
		"X-Workos-Organization-Id": fakeworkos.OrgAcme,
		"X-Workos-Role":            "admin",
		"X-Workos-Roles":           "admin,member",
		"X-Workos-Permissions":     "posts:read,posts:write,users:manage",
		"X-Workos-Middleware":      "true",
		"X-Redirect-Uri":           s.traefik.URL + "/callback",
	})
	sessionID := h.Get("X-Workos-Session-Id")
	if sessionID == "" {
		t.Fatal("upstream got no X-Workos-Session-Id")
	}
	cookies := b.Cookies()
	session := findCookie(cookies, sessionCookie)
	if session == nil {
		t.Fatalf("no %s cookie after sign-in; cookies: %v", sessionCookie, cookieNames(cookies))
	}
	// HttpOnly keeps the refresh token away from page scripts; over plain
	// http the cookie must not be Secure or the browser would not send it.
	if !session.HTTPOnly || session.Secure || session.SameSite != network.CookieSameSiteLax || session.Path != "/" {
		t.Errorf("%s: HttpOnly=%v Secure=%v SameSite=%q Path=%q, want HttpOnly, not Secure, Lax, /",
			sessionCookie, session.HTTPOnly, session.Secure, session.SameSite, session.Path)
	}
	if got := h.Get("X-Workos-Session"); got != session.Value {
		t.Errorf("x-workos-session is not the session cookie's value (%d vs %d bytes)", len(got), len(session.Value))
	}
	if c := cookiesWithPrefix(cookies, pkceCookiePrefix); len(c) != 0 {
		t.Errorf("PKCE cookies left after the callback: %v", cookieNames(c))
	}
	if n := s.fake.RefreshCalls(); n != 0 {
		t.Errorf("%d refreshes right after sign-in, want 0", n)
	}

	s.step("an admin passes the stricter /admin route")
	s.browser.Navigate(s.traefik.URL + "/admin")
	s.expectIdentity(s.upstreamHeaders("/admin"), map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
	s.browser.Navigate(s.traefik.URL + protectedPath)

	s.step("reload after the access token expired: refreshed, still signed in")
	h = s.waitForRefresh(protectedPath, fakeworkos.UserAlice, session.Value, signedIn)
	if n := s.fake.RefreshCalls(); n != 1 {
		t.Errorf("fake saw %d refreshes, want 1", n)
	}
	s.expectIdentity(h, map[string]string{
		"X-Workos-User-Email":      "alice@example.com",
		"X-Workos-Organization-Id": fakeworkos.OrgAcme,
		"X-Workos-Session-Id":      sessionID,
	})
	refreshed := b.Cookie(sessionCookie)
	if refreshed == nil || refreshed.Value == session.Value {
		t.Fatalf("%s cookie not replaced by the refresh (present: %v)", sessionCookie, refreshed != nil)
	}
	if refreshed.Value != h.Get("X-Workos-Session") {
		t.Errorf("the refreshed %s cookie is not the seal the upstream received", sessionCookie)
	}
	if !refreshed.HTTPOnly {
		t.Errorf("refreshed %s is not HttpOnly", sessionCookie)
	}

	s.step("sign out: WorkOS logout for the session, back to the public landing page")
	b.Navigate(s.traefik.URL + "/auth/sign-out")
	b.WaitPath("/")
	if loc := b.Location(); !strings.HasPrefix(loc, s.traefik.URL+"/") {
		t.Fatalf("after sign-out at %s, want %s/", loc, s.traefik.URL)
	}
	h = s.upstreamHeaders("/")
	if got := h.Get("X-Workos-User-Id"); got != "" {
		t.Errorf("public page after sign-out still signed in as %q", got)
	}
	logouts := s.fake.LogoutRequests()
	if len(logouts) != 1 || logouts[0].SessionID != sessionID || logouts[0].ReturnTo != s.traefik.URL+"/" {
		t.Errorf("fake logout requests %+v, want one for session %s returning to %s/", logouts, sessionID, s.traefik.URL)
	}
	if !s.fake.SessionRevoked(sessionID) {
		t.Errorf("session %s not revoked at the fake", sessionID)
	}
	if c := cookiesWithPrefix(b.Cookies(), sessionCookie); len(c) != 0 {
		t.Errorf("session cookies left after sign-out: %v", cookieNames(c))
	}

	s.step("a protected page asks to sign in again")
	b.Navigate(s.traefik.URL + protectedPath)
	if loc := b.Location(); !strings.Contains(loc, "/user_management/authorize") {
		t.Errorf("after sign-out %s landed on %s, want the fake's sign-in page", protectedPath, loc)
	}
	b.WaitVisible(fmt.Sprintf(`button[data-user-id=%q]`, fakeworkos.UserAlice))

	s.step("a script's request without a session gets 401 JSON, not a redirect")
	expectUnauthenticatedJSON(t, s.traefik, protectedPath)
}

// TestLargeSessionSplitCookies signs in Max, whose ~6 KB of user metadata
// makes a sealed session longer than the 4096 bytes Chromium stores in one
// cookie. Only a plugin that splits the session into wos-session.0, .1, …
// and reassembles them keeps Max signed in, before and after a refresh.
func TestLargeSessionSplitCookies(t *testing.T) {
	s := startStack(t)
	b := s.browser

	s.step("sign in as Max (large metadata)")
	signedIn := s.signIn(protectedPath, fakeworkos.UserMax, fakeworkos.OrgAcme)
	h := s.upstreamHeaders(protectedPath)
	s.expectIdentity(h, map[string]string{
		"X-Workos-User-Id":         fakeworkos.UserMax,
		"X-Workos-User-Email":      "max@example.com",
		"X-Workos-Organization-Id": fakeworkos.OrgAcme,
		"X-Workos-Role":            "member",
	})
	first := s.splitSession(h)

	s.step("a member is refused /admin (requiredRoles: admin) with a 403 page, not a sign-in loop")
	b.Navigate(s.traefik.URL + "/admin")
	if got := b.Text("h1"); got != "Forbidden" || !strings.HasSuffix(b.Location(), "/admin") {
		t.Fatalf("/admin for a member: heading %q at %s, want the 403 page", got, b.Location())
	}
	b.Navigate(s.traefik.URL + protectedPath)

	s.step("reload after the access token expired: the split session refreshes")
	h = s.waitForRefresh(protectedPath, fakeworkos.UserMax, first, signedIn)
	if n := s.fake.RefreshCalls(); n != 1 {
		t.Errorf("fake saw %d refreshes, want 1", n)
	}
	if second := s.splitSession(h); second == first {
		t.Error("the split session cookies did not change with the refresh")
	}

	s.step("sign out clears every part")
	b.Navigate(s.traefik.URL + "/auth/sign-out")
	b.WaitPath("/")
	if c := cookiesWithPrefix(b.Cookies(), sessionCookie); len(c) != 0 {
		t.Errorf("session cookies left after sign-out: %v", cookieNames(c))
	}
}

// splitSession checks that the browser holds the session as numbered,
// HttpOnly parts only, that each fits the browser's limit, and that they
// join to the seal the upstream received in x-workos-session, which it
// returns.
func (s *stack) splitSession(h http.Header) string {
	s.t.Helper()
	cookies := s.browser.Cookies()
	if findCookie(cookies, sessionCookie) != nil {
		s.t.Errorf("an unsplit %s cookie is set next to the parts", sessionCookie)
	}
	parts := map[int]*network.Cookie{}
	for _, c := range cookiesWithPrefix(cookies, sessionCookie+".") {
		i, err := strconv.Atoi(strings.TrimPrefix(c.Name, sessionCookie+"."))
		if err != nil {
			s.t.Fatalf("unexpected cookie %s", c.Name)
		}
		parts[i] = c
	}
	if len(parts) < 2 {
		s.t.Fatalf("session parts %v, want at least %s.0 and %s.1; all cookies: %v",
			cookieNames(cookiesWithPrefix(cookies, sessionCookie)), sessionCookie, sessionCookie, cookieNames(cookies))
	}
	var joined strings.Builder
	for i := 0; i < len(parts); i++ {
		c := parts[i]
		if c == nil {
			s.t.Fatalf("session parts are not numbered 0..%d: %s.%d missing", len(parts)-1, sessionCookie, i)
		}
		if !c.HTTPOnly {
			s.t.Errorf("%s is not HttpOnly", c.Name)
		}
		if n := len(c.Name) + len(c.Value); n > 4096 {
			s.t.Errorf("%s is %d bytes, over the browser's limit", c.Name, n)
		}
		joined.WriteString(c.Value)
	}
	seal := h.Get("X-Workos-Session")
	if joined.String() != seal {
		s.t.Errorf("the %d parts (%d bytes) do not join to x-workos-session (%d bytes)", len(parts), joined.Len(), len(seal))
	}
	return joined.String()
}

// expectUnauthenticatedJSON requests path as fetch() would (Accept:
// application/json, no cookies) and expects the plugin's 401 JSON answer:
// a redirect to AuthKit would be useless to a script.
func expectUnauthenticatedJSON(t *testing.T, tr *traefiktest.Traefik, path string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tr.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Sec-Fetch-Dest", "empty")
	resp, err := tr.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %s (Location %q), want 401; body %s", resp.Status, resp.Header.Get("Location"), body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var problem struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &problem); err != nil || problem.Error != "unauthenticated" {
		t.Errorf("body %s, want {\"error\":\"unauthenticated\",…} (%v)", body, err)
	}
	if resp.Header.Get("X-Echo-Upstream") != "" {
		t.Error("the request reached the upstream")
	}
}

func findCookie(cookies []*network.Cookie, name string) *network.Cookie {
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// cookiesWithPrefix returns the cookies whose name starts with prefix.
func cookiesWithPrefix(cookies []*network.Cookie, prefix string) []*network.Cookie {
	var out []*network.Cookie
	for _, c := range cookies {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// cookieNames lists names for failure messages; values are secrets.
func cookieNames(cookies []*network.Cookie) []string {
	names := make([]string, 0, len(cookies))
	for _, c := range cookies {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}
