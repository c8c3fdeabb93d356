package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/browser"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// stepUpMaxAge is AUTHKIT_ADMIN_MAX_AUTH_AGE, examples/dynamic.yml's
// maxAuthAgeSeconds for the /admin route: short, so the test waits only
// seconds for a sign-in to grow too old, and long enough that the first
// visit, right after signing in, is fresh on a busy machine.
const stepUpMaxAge = 5 * time.Second

// stepUpTokenTTL makes the access token of the first sign-in expire, past
// the plugin's clock-skew leeway, before the wait for the step-up ends: the
// first request after it refreshes the session, whose new token carries the
// old auth_time.
const stepUpTokenTTL = time.Second

// startExampleStack is startStack with access tokens living tokenTTL and
// more of the variables examples/dynamic.yml reads.
func startExampleStack(t *testing.T, tokenTTL time.Duration, env ...string) *stack {
	t.Helper()
	traefiktest.RequireBinary(t)
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	webPort, err := traefiktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	redirectURI := "http://127.0.0.1:" + webPort + "/callback"
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: tokenTTL, RedirectURIs: []string{redirectURI}})
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
		Env: append([]string{
			"WORKOS_CLIENT_ID=" + fake.ClientID(),
			"WORKOS_API_KEY=" + fake.APIKey(),
			"WORKOS_COOKIE_PASSWORD=" + cookiePassword,
			"WORKOS_REDIRECT_URI=" + redirectURI,
			"WORKOS_API_HOSTNAME=127.0.0.1",
			"WORKOS_API_HTTPS=false",
			"WORKOS_API_PORT=" + fakeAddr.Port(),
			"AUTHKIT_UPSTREAM_URL=" + upstream.URL,
			"AUTHKIT_REFRESH_BUFFER_SECONDS=0",
		}, env...),
	})
	return &stack{t: t, fake: fake, traefik: tr, browser: browser.New(t)}
}

// TestStepUpOnAdmin is the /admin route of examples/dynamic.yml with
// maxAuthAgeSeconds (AUTHKIT_ADMIN_MAX_AUTH_AGE) in Chromium: Alice, an
// admin of Acme, signs in from /admin and is served; once her sign-in is
// older than the limit the main route still serves her (refreshing her
// session, whose new token keeps the old auth_time), a script on /admin gets 401
// reauthentication_required, and the browser on /admin goes to a new
// authorization with max_age, where the fake shows its sign-in page;
// picking Alice there lands back on /admin, query kept, served.
func TestStepUpOnAdmin(t *testing.T) {
	maxAge := strconv.Itoa(int(stepUpMaxAge / time.Second))
	s := startExampleStack(t, stepUpTokenTTL, "AUTHKIT_ADMIN_MAX_AUTH_AGE="+maxAge)
	b := s.browser

	s.step("sign in as Alice from /admin: a fresh sign-in is served")
	signedIn := s.signIn("/admin", fakeworkos.UserAlice, fakeworkos.OrgAcme)
	s.expectIdentity(s.upstreamHeaders("/admin"), map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice, "X-Workos-Role": "admin"})
	authorize := s.fake.AuthorizeRequests()
	if len(authorize) != 1 || authorize[0].MaxAge != "" {
		t.Fatalf("authorize requests %d, the first with max_age %q: want one sign-in without max_age", len(authorize), authorize[0].MaxAge)
	}
	old := b.Cookie(sessionCookie)
	if old == nil {
		t.Fatalf("no %s cookie after sign-in", sessionCookie)
	}

	s.step("wait until the sign-in is older than maxAuthAgeSeconds")
	// auth_time is whole seconds: past the limit means a full second more.
	time.Sleep(time.Until(signedIn.Add(stepUpMaxAge + 1500*time.Millisecond)))
	b.Navigate(s.traefik.URL + protectedPath)
	s.expectIdentity(s.upstreamHeaders(protectedPath), map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
	if n := len(s.fake.AuthorizeRequests()); n != 1 {
		t.Fatalf("the main route (no maxAuthAgeSeconds) started %d sign-ins", n-1)
	}
	if n := s.fake.RefreshCalls(); n < 1 {
		t.Fatalf("%d refreshes after the access token expired, want the session refreshed before the step-up", n)
	}

	s.step("a script on /admin gets 401 reauthentication_required")
	expectReauthenticationRequired(t, s.traefik, "/admin/api", b.Cookie(sessionCookie).Value)

	s.step("the browser on /admin goes to a new authorization with max_age")
	b.Navigate(s.traefik.URL + "/admin?tab=users")
	if loc := b.Location(); !strings.Contains(loc, "/user_management/authorize") {
		t.Fatalf("/admin after %s landed on %s, want the fake's sign-in page", stepUpMaxAge, loc)
	}
	authorize = s.fake.AuthorizeRequests()
	if len(authorize) != 2 || authorize[1].MaxAge != maxAge {
		t.Fatalf("%d authorize requests, the last with max_age %q, want a second one with max_age=%s", len(authorize), authorize[len(authorize)-1].MaxAge, maxAge)
	}
	if c := b.CookiesFor(s.traefik.URL + "/"); findCookie(c, sessionCookie) == nil {
		t.Errorf("the session cookie was dropped by the step-up (cookies %v), want it kept until the new sign-in", cookieNames(c))
	}
	b.Click(fmt.Sprintf(`button[data-user-id=%q][data-organization-id=%q]`, fakeworkos.UserAlice, fakeworkos.OrgAcme))
	if loc := b.WaitPath("/admin"); loc != s.traefik.URL+"/admin?tab=users" {
		t.Errorf("after the new sign-in at %s, want %s/admin?tab=users", loc, s.traefik.URL)
	}
	b.WaitVisible("#upstream")
	s.expectIdentity(s.upstreamHeaders("/admin"), map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
	if fresh := b.Cookie(sessionCookie); fresh == nil || fresh.Value == old.Value {
		t.Errorf("no new session cookie after the step-up")
	}

	s.step("the renewed sign-in is served again without another authorization")
	b.Navigate(s.traefik.URL + "/admin")
	s.expectIdentity(s.upstreamHeaders("/admin"), map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice})
	if n := len(s.fake.AuthorizeRequests()); n != 2 {
		t.Errorf("%d authorize requests, want 2", n)
	}
}

// expectReauthenticationRequired requests path as fetch() would with the
// session cookie and expects 401 {"error":"reauthentication_required"}.
func expectReauthenticationRequired(t *testing.T, tr *traefiktest.Traefik, path, session string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tr.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Cookie", sessionCookie+"="+session)
	resp, err := tr.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var problem struct {
		Error string `json:"error"`
	}
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &problem) != nil || problem.Error != "reauthentication_required" {
		t.Fatalf("status %s (Location %q), body %s: want 401 reauthentication_required", resp.Status, resp.Header.Get("Location"), body)
	}
}
