package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"

	"github.com/traefik-authkit/authkit/harness/browser"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// sites is one Traefik serving several hosts under browser.TestDomain
// (which Chromium resolves to 127.0.0.1) through one middleware whose
// callback lives on auth.example.test (SPEC "Several sites, one
// callback"): the session cookie has Domain=example.test, app.example.test
// and every *.tenants.example.test are listed in returnOrigins.
type sites struct {
	*stack
	port string
}

// origin is http://<sub>.example.test:<Traefik's port>.
func (s *sites) origin(sub string) string {
	return "http://" + sub + "." + browser.TestDomain + ":" + s.port
}

// startSites starts the fake WorkOS (accepting only the auth host's
// callback), the echo upstream, Traefik with a generated configuration and
// a fresh Chromium. "/" is public, so a sign-out can land somewhere.
func startSites(t *testing.T) *sites {
	t.Helper()
	traefiktest.RequireBinary(t)
	port, err := traefiktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &sites{port: port}
	callback := s.origin("auth") + "/callback"
	fake := fakeworkos.New(fakeworkos.Options{RedirectURIs: []string{callback}})
	fakeURL, stopFake, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopFake)
	api, err := url.Parse(fakeURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := traefiktest.Start(t, traefiktest.Options{
		WebPort: port,
		PluginConfig: map[string]any{
			"clientId":        fake.ClientID(),
			"apiKey":          fake.APIKey(),
			"cookiePassword":  cookiePassword,
			"redirectUri":     callback,
			"apiHostname":     api.Hostname(),
			"apiHttps":        false,
			"apiPort":         api.Port(),
			"cookieDomain":    browser.TestDomain,
			"returnOrigins":   []string{s.origin("app"), "http://*.tenants." + browser.TestDomain + ":" + port},
			"middlewareAuth":  map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/"}},
			"signOutReturnTo": "/",
		},
	})
	s.stack = &stack{t: t, fake: fake, traefik: tr, browser: browser.New(t)}
	return s
}

// signInOn opens target (an absolute URL on one of the sites) signed out,
// expects the fake's sign-in page with a verifier cookie that reaches the
// callback host, clicks userID in orgID and waits until the browser has
// left the callback. It returns where the browser landed.
func (s *sites) signInOn(target, userID, orgID string) string {
	s.t.Helper()
	b := s.browser
	b.Navigate(target)
	if loc := b.Location(); !strings.Contains(loc, "/user_management/authorize") {
		s.t.Fatalf("signed-out %s landed on %s, want the fake's sign-in page", target, loc)
	}
	authorize := s.fake.AuthorizeRequests()
	if last := authorize[len(authorize)-1]; last.RedirectURI != s.origin("auth")+"/callback" {
		s.t.Fatalf("authorize redirect_uri %q, want the auth host's callback", last.RedirectURI)
	}
	pkce := cookiesWithPrefix(b.CookiesFor(s.origin("auth")+"/callback"), pkceCookiePrefix)
	if len(pkce) != 1 || !pkce[0].HTTPOnly || pkce[0].Domain != "."+browser.TestDomain {
		s.t.Fatalf("verifier cookies for the callback host: %s, want one HttpOnly cookie of Domain=%s", describeCookies(pkce), browser.TestDomain)
	}
	b.Click(fmt.Sprintf(`button[data-user-id=%q][data-organization-id=%q]`, userID, orgID))
	u, _ := url.Parse(target)
	b.WaitPath(u.Path)
	b.WaitVisible("#upstream")
	return b.Location()
}

// page checks that the tab shows the upstream's answer for host and path
// and returns the headers the upstream received.
func (s *sites) page(origin, path string) traefiktest.Echo {
	s.t.Helper()
	b := s.browser
	if got := b.Text("#upstream"); got != traefiktest.UpstreamText {
		s.t.Fatalf("page at %s is not the upstream's (heading %q)", b.Location(), got)
	}
	echo, err := traefiktest.DecodeEcho(strings.NewReader(b.Text("#echo")))
	if err != nil {
		s.t.Fatal(err)
	}
	if want := strings.TrimPrefix(origin, "http://"); echo.Host != want || echo.Path != path {
		s.t.Fatalf("upstream saw host %q path %q, want %q %q", echo.Host, echo.Path, want, path)
	}
	return echo
}

// sessionCookies returns the session cookies the browser would send to
// any of the sites.
func (s *sites) sessionCookies() []*network.Cookie {
	s.t.Helper()
	return cookiesWithPrefix(s.browser.CookiesFor(s.origin("auth")+"/", s.origin("app")+"/",
		s.origin("acme.tenants")+"/", s.origin("other")+"/"), sessionCookie)
}

// TestOneCallbackForSeveralSites is a person on three sites of one domain
// in Chromium, all through one Traefik whose callback is on
// auth.example.test:
//   - a sign-in started on app.example.test (listed) goes through the
//     fake and the callback host and lands back on app.example.test,
//     signed in, with a session cookie of Domain=example.test that the
//     tenants' hosts receive too;
//   - a sign-out on a tenant clears it for every host;
//   - a sign-in started on a tenant (the *.tenants wildcard) lands back on
//     the tenant, query kept;
//   - a sign-in started on other.example.test (under the cookie domain,
//     not listed) lands on the callback host instead, signed in.
func TestOneCallbackForSeveralSites(t *testing.T) {
	s := startSites(t)
	b := s.browser
	app, auth, acme, globex, other := s.origin("app"), s.origin("auth"), s.origin("acme.tenants"), s.origin("globex.tenants"), s.origin("other")

	s.step("sign in on app.example.test: back on app, signed in")
	if loc := s.signInOn(app+protectedPath, fakeworkos.UserAlice, fakeworkos.OrgAcme); loc != app+protectedPath {
		t.Fatalf("after the callback the browser is at %s, want %s", loc, app+protectedPath)
	}
	e := s.page(app, protectedPath)
	s.expectIdentity(e.Headers, map[string]string{
		"X-Workos-User-Id":         fakeworkos.UserAlice,
		"X-Workos-Organization-Id": fakeworkos.OrgAcme,
		"X-Redirect-Uri":           auth + "/callback",
	})
	session := b.Cookie(sessionCookie)
	if session == nil {
		t.Fatalf("app.example.test has no %s cookie; cookies %v", sessionCookie, cookieNames(b.Cookies()))
	}
	if session.Domain != "."+browser.TestDomain || !session.HTTPOnly || session.Path != "/" || session.Secure {
		t.Errorf("%s: Domain=%q HttpOnly=%v Path=%q Secure=%v, want Domain=%s (stored as .%s), HttpOnly, /, not Secure",
			sessionCookie, session.Domain, session.HTTPOnly, session.Path, session.Secure, browser.TestDomain, browser.TestDomain)
	}
	if got := e.Headers.Get("X-Workos-Session"); got != session.Value {
		t.Errorf("x-workos-session is not the cookie the browser holds (%d vs %d bytes)", len(got), len(session.Value))
	}
	if c := cookiesWithPrefix(b.CookiesFor(auth+"/", app+"/"), pkceCookiePrefix); len(c) != 0 {
		t.Errorf("verifier cookies left after the callback: %s", describeCookies(c))
	}

	s.step("the shared cookie signs Alice in on a tenant without another sign-in")
	signIns := len(s.fake.AuthorizeRequests())
	b.Navigate(acme + "/reports")
	s.expectIdentity(s.page(acme, "/reports").Headers, map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
	if n := len(s.fake.AuthorizeRequests()); n != signIns {
		t.Errorf("%d authorize requests for a signed-in tenant page, want none", n-signIns)
	}

	s.step("sign out on the tenant: the cookie is gone for every host")
	b.Navigate(acme + "/auth/sign-out")
	if loc := b.WaitPath("/"); loc != acme+"/" {
		t.Errorf("after sign-out at %s, want %s/", loc, acme)
	}
	if c := s.sessionCookies(); len(c) != 0 {
		t.Fatalf("session cookies left after sign-out: %s", describeCookies(c))
	}

	s.step("sign in on a tenant under the wildcard: back on the tenant, query kept")
	if loc := s.signInOn(globex+"/reports?tab=2", fakeworkos.UserBob, fakeworkos.OrgAcme); loc != globex+"/reports?tab=2" {
		t.Fatalf("after the callback the browser is at %s, want %s/reports?tab=2", loc, globex)
	}
	e = s.page(globex, "/reports")
	s.expectIdentity(e.Headers, map[string]string{"X-Workos-User-Id": fakeworkos.UserBob})
	if e.Query != "tab=2" {
		t.Errorf("upstream saw query %q, want tab=2", e.Query)
	}
	b.Navigate(globex + "/auth/sign-out")
	b.WaitPath("/")
	if c := s.sessionCookies(); len(c) != 0 {
		t.Fatalf("session cookies left after sign-out: %s", describeCookies(c))
	}

	s.step("sign in on an unlisted host: lands on the callback host, signed in")
	if loc := s.signInOn(other+"/reports", fakeworkos.UserAlice, fakeworkos.OrgGlobex); loc != auth+"/reports" {
		t.Fatalf("after the callback the browser is at %s, want the callback host's %s/reports", loc, auth)
	}
	s.expectIdentity(s.page(auth, "/reports").Headers, map[string]string{
		"X-Workos-User-Id": fakeworkos.UserAlice, "X-Workos-Organization-Id": fakeworkos.OrgGlobex,
	})
	// The cookie still reaches the unlisted host: only the redirect
	// refused to go there.
	b.Navigate(other + "/reports")
	s.expectIdentity(s.page(other, "/reports").Headers, map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
}

// describeCookies lists names and domains for failure messages; values
// are secrets.
func describeCookies(cookies []*network.Cookie) string {
	var out []string
	for _, c := range cookies {
		out = append(out, fmt.Sprintf("%s (Domain=%s HttpOnly=%v)", c.Name, c.Domain, c.HTTPOnly))
	}
	return "[" + strings.Join(out, ", ") + "]"
}
