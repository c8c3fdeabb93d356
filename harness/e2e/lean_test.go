package e2e

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// leanPath is served by examples/dynamic.yml's lean router, whose
// middleware (authkit-lean) sends identity as X-Forwarded-* headers, no
// authkit-nextjs headers, and takes the plugin's cookies out of the Cookie
// header the upstream receives.
const leanPath = "/lean/reports"

// appCookie is a cookie of the site's own, which the lean route must pass
// on while it removes the session.
const appCookie = "theme"

// TestLeanRoute is a person on the lean route in Chromium: signed in on
// the main route, then on /lean the upstream gets the user in the
// oauth2-proxy headers and neither X-Workos-* nor the session cookie, which
// the browser still holds and sends; a client's own X-Forwarded-User never
// gets through; and a sign-in started on /lean lands back there.
func TestLeanRoute(t *testing.T) {
	s := startStack(t)
	b := s.browser
	if errs, err := s.traefik.RouterErrors("lean"); err != nil || len(errs) != 0 {
		t.Fatalf("Traefik's lean router: errors %v (%v)", errs, err)
	}

	s.step("the site sets a cookie of its own")
	setSiteCookie(t, s)

	s.step("sign in as Alice in Acme on the main route: the upstream gets the session cookie there")
	s.signIn(protectedPath, fakeworkos.UserAlice, fakeworkos.OrgAcme)
	main := s.upstreamHeaders(protectedPath)
	if got := main.Get("X-Workos-User-Id"); got != fakeworkos.UserAlice {
		t.Fatalf("main route: X-Workos-User-Id %q", got)
	}
	if names := cookieNamesIn(main); !contains(names, sessionCookie) || !contains(names, appCookie) {
		t.Fatalf("main route: upstream cookies %v, want %s and %s", names, sessionCookie, appCookie)
	}

	s.step("open /lean: X-Forwarded-* identity, no X-Workos-*, no session cookie")
	b.Navigate(s.traefik.URL + leanPath)
	s.expectLean(s.upstreamHeaders(leanPath))
	if b.Cookie(sessionCookie) == nil || b.Cookie(appCookie) == nil {
		t.Fatalf("the browser does not hold %s and %s (cookies %v): the test proves nothing",
			sessionCookie, appCookie, cookieNames(b.Cookies()))
	}

	s.step("a client's own identity headers do not reach the upstream")
	expectNoSpoofedIdentity(t, s, b.Cookie(sessionCookie).Value)

	s.step("sign out, then a sign-in started on /lean comes back to /lean")
	b.Navigate(s.traefik.URL + "/auth/sign-out")
	b.WaitPath("/")
	s.signIn(leanPath, fakeworkos.UserAlice, fakeworkos.OrgAcme)
	s.expectLean(s.upstreamHeaders(leanPath))
}

// expectLean checks what the lean route's upstream received for Alice.
func (s *stack) expectLean(h http.Header) {
	s.t.Helper()
	s.expectIdentity(h, map[string]string{
		"X-Forwarded-User":               fakeworkos.UserAlice,
		"X-Forwarded-Email":              "alice@example.com",
		"X-Forwarded-Groups":             "admin,member",
		"X-Forwarded-Preferred-Username": "Alice Admin",
	})
	for name := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-workos-") || lower == "x-url" || lower == "x-redirect-uri" || lower == "x-sign-up-paths" {
			s.t.Errorf("lean route: the upstream received %s", name)
		}
	}
	names := cookieNamesIn(h)
	for _, n := range names {
		if n == sessionCookie || strings.HasPrefix(n, sessionCookie+".") || strings.HasPrefix(n, pkceCookiePrefix) {
			s.t.Errorf("lean route: the upstream received the plugin's cookie %s (cookies %v)", n, names)
		}
	}
	if !contains(names, appCookie) {
		s.t.Errorf("lean route: the site's own cookie %s did not reach the upstream (cookies %v)", appCookie, names)
	}
}

// setSiteCookie has the browser store a cookie for 127.0.0.1 that the
// plugin does not own, as the site's own pages would set it. Cookies are
// per host, not per port, so a server on another loopback port sets it
// for Traefik's site too.
func setSiteCookie(t *testing.T, s *stack) {
	t.Helper()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: "dark", Path: "/"})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>site</title><p id="set">cookie set</p>`))
	}))
	t.Cleanup(site.Close)
	s.browser.Navigate(site.URL + "/")
	s.browser.WaitVisible("#set")
	s.browser.Navigate(s.traefik.URL + "/")
	if s.browser.Cookie(appCookie) == nil {
		t.Fatalf("the browser does not send %s to %s; cookies %v", appCookie, s.traefik.URL, cookieNames(s.browser.Cookies()))
	}
}

// expectNoSpoofedIdentity sends the lean route a request with the
// browser's session and a forged X-Forwarded-User (as sent, lower case and
// with '_'), through Traefik, as a script would: the upstream must see
// Alice, and no forged copy.
func expectNoSpoofedIdentity(t *testing.T, s *stack, session string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.traefik.URL+leanPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", sessionCookie+"="+session)
	req.Header["X-Forwarded-User"] = []string{"user_mallory"}
	req.Header["x_forwarded_user"] = []string{"user_mallory"}
	req.Header["X-WORKOS-USER-ID"] = []string{"user_mallory"}
	resp, err := s.traefik.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s, want the upstream's 200", resp.Status)
	}
	echo, err := traefiktest.DecodeEcho(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := echo.Headers["X-Forwarded-User"]; len(got) != 1 || got[0] != fakeworkos.UserAlice {
		t.Errorf("X-Forwarded-User %q, want only %q", got, fakeworkos.UserAlice)
	}
	for name, v := range echo.Headers {
		for _, value := range v {
			if strings.Contains(value, "mallory") {
				t.Errorf("the forged %s: %s reached the upstream", name, value)
			}
		}
	}
	if names := cookieNamesIn(echo.Headers); len(names) != 0 || len(echo.Headers["Cookie"]) != 0 {
		t.Errorf("the upstream received cookies %v, want no Cookie header (only the session was sent)", names)
	}
}

// cookieNamesIn lists the names of the cookies in a request's Cookie
// headers, sorted; values are left out.
func cookieNamesIn(h http.Header) []string {
	r := &http.Request{Header: h}
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
