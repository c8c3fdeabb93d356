package hostile

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC `issuer`, "API keys" and "Several sites, one callback": tokens of
// another issuer, floods of made-up API keys and return targets crafted to
// leave the listed origins, through Traefik.

// startStackWith is startStack with a fake WorkOS made from opts (access
// tokens living an hour unless opts says otherwise).
func startStackWith(t *testing.T, opts fakeworkos.Options, configure func(config map[string]any)) *stack {
	t.Helper()
	traefiktest.RequireBinary(t)
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	fake := fakeworkos.New(opts)
	fakeURL, stopFake, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopFake)
	api, _ := url.Parse(fakeURL)
	config := map[string]any{
		"clientId":       fake.ClientID(),
		"apiKey":         fake.APIKey(),
		"cookiePassword": cookiePassword,
		"redirectUri":    "/callback",
		"apiHostname":    api.Hostname(),
		"apiHttps":       false,
		"apiPort":        api.Port(),
		"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
	}
	if configure != nil {
		configure(config)
	}
	tr := startTraefik(t, newUpstream(t).URL, config, os.Getenv(PluginDirEnv))
	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{
		t: t, fake: fake, traefik: tr, keyring: keyring,
		client: newClient(), host: strings.TrimPrefix(tr.URL, "http://"),
	}
}

// countLog waits up to two seconds for Traefik's log to hold at least want
// lines containing every one of substrs, and returns how many it holds.
func countLog(tr *traefiktest.Traefik, want int, substrs ...string) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := 0
		for _, line := range strings.Split(tr.Log(), "\n") {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(line, s)
			}
			if all {
				n++
			}
		}
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForeignIssuerIsRefusedWithoutRefresh: the plugin accepts only the
// real WorkOS issuer, the fake signs with another one (a token minted by
// another environment, or a forged signer that got hold of a key). Its
// session cookies, one with a valid access token and one with an expired
// one, are each sent 200 times, documents and API calls in turn: every
// answer is signed out (the sign-in redirect, or 401), never a 5xx, the
// cookie is never deleted (a configuration mistake must not destroy
// sessions), WorkOS sees no refresh, and one token_rejected event per
// cookie names the issuer seen. A bearer token of that issuer gets 401
// invalid_token, 50 times, with one event.
func TestForeignIssuerIsRefusedWithoutRefresh(t *testing.T) {
	const foreign = "https://evil.test/user_management/client_forged"
	s := startStackWith(t, fakeworkos.Options{Issuer: foreign}, func(config map[string]any) {
		config["issuer"] = []string{"https://api.workos.com/user_management/" + fakeworkos.DefaultClientID}
		config["allowBearerTokens"] = true
	})
	rejected := []string{`"msg":"token_rejected"`, `"iss":"` + foreign + `"`}
	events := 0
	for _, tt := range []struct {
		name      string
		accessTTL time.Duration
	}{{"a valid access token", 0}, {"an expired access token", -time.Minute}} {
		t.Run(tt.name, func(t *testing.T) {
			s := s.on(t)
			cookie, _ := s.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, tt.accessTTL)
			refreshes := s.fake.RefreshCalls()
			bad := 0
			for i := 0; i < 200; i++ {
				accept := "json"
				if i%2 == 0 {
					accept = "html"
				}
				resp, body := s.do(s.request(http.MethodGet, protectedPath, accept, cookie, nil))
				ok := resp.StatusCode == http.StatusUnauthorized
				if accept == "html" {
					ok = s.isSignInRedirect(resp)
				}
				if c := setCookie(resp, sessionCookie); c != "" {
					ok = false
					t.Errorf("request %d: the session cookie was touched: %.80q", i, c)
				}
				if !ok || resp.Header.Get(upstreamMark) != "" {
					if bad++; bad <= 5 {
						t.Errorf("request %d (%s): status %d, Location %q: %.200s", i, accept, resp.StatusCode, resp.Header.Get("Location"), body)
					}
				}
			}
			if d := s.fake.RefreshCalls() - refreshes; d != 0 {
				t.Errorf("%d WorkOS refresh calls for a token of another issuer, want 0", d)
			}
			events++
			if n := countLog(s.traefik, events, rejected...); n != events {
				t.Errorf("%d token_rejected events naming %s after %d cookies, want one per cookie", n, foreign, events)
			}
		})
	}

	t.Run("a bearer token", func(t *testing.T) {
		s := s.on(t)
		_, issued := s.session(fakeworkos.UserBob, fakeworkos.OrgAcme, 0)
		for i := 0; i < 50; i++ {
			req := s.request(http.MethodGet, protectedPath, "json", "", nil)
			req.Header.Set("Authorization", "Bearer "+issued.AccessToken)
			resp, body := s.do(req)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("request %d: status %d, WWW-Authenticate %q: %.200s", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
		}
		events++
		if n := countLog(s.traefik, events, rejected...); n != events {
			t.Errorf("%d token_rejected events after the bearer token, want %d", n, events)
		}
	})
	if n := s.fake.RefreshCalls(); n != 0 {
		t.Errorf("%d refresh calls in all, want 0", n)
	}
}

// apiKeyBurst and apiKeyPerSecond are the plugin's ration of validations
// of keys it has not cached (SPEC "API keys").
const (
	apiKeyBurst     = 40
	apiKeyPerSecond = 20
)

// madeUpKey looks like a WorkOS key ("sk_" and 40 base62 characters) that
// WorkOS never issued.
func madeUpKey() string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 40)
	rand.Read(b)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return "sk_" + string(b)
}

// withKey is an API call to protectedPath carrying key.
func (s *stack) withKey(key string) *http.Request {
	req := s.request(http.MethodGet, protectedPath, "json", "", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	return req
}

// rationed is report for the flood, where a 503 is a wanted answer: it
// fails the test for every unwanted one (the first few shown) and logs the
// statuses.
func rationed(t *testing.T, out []outcome, statuses map[int]int, elapsed time.Duration) {
	t.Helper()
	bad := 0
	for _, o := range out {
		if o.err != nil || !o.ok {
			if bad++; bad <= 5 {
				t.Errorf("made-up key %d: status %d, error %v", o.i, o.status, o.err)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d unwanted answers in all", bad)
	}
	t.Logf("%d made-up keys in %s: %d×401, %d×503", len(out), elapsed.Round(time.Millisecond),
		statuses[http.StatusUnauthorized], statuses[http.StatusServiceUnavailable])
}

// TestAPIKeyFloodIsRationed sends 500 distinct made-up API keys from 16
// clients at once: WorkOS sees at most the ration (40, and 20 a second of
// the flood's duration); each key it saw is answered 401 invalid_token,
// every other one 503 with Retry-After, never another 5xx, and none
// reaches the upstream. A real key sent right after the flood is never
// 401 (the flood may make it wait, not make it invalid); once the ration
// has recovered, the real key sent 300 times from 16 clients is served
// each time with its identity, for one validation in all.
func TestAPIKeyFloodIsRationed(t *testing.T) {
	s := startStack(t, func(config map[string]any) { config["allowApiKeys"] = true })
	key, err := s.fake.CreateAPIKey(fakeworkos.APIKeyParams{Name: "ci", OrganizationID: fakeworkos.OrgAcme, Permissions: []string{"posts:read"}})
	if err != nil {
		t.Fatal(err)
	}

	const n, workers = 500, 16
	keys := make([]string, n)
	for i := range keys {
		keys[i] = madeUpKey()
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	calls := s.fake.Calls(fakeworkos.EndpointAPIKeys)
	start := time.Now()
	out := s.concurrently(n, workers, func(i int) *http.Request { return s.withKey(keys[i]) }, func(i int, resp *http.Response) bool {
		mu.Lock()
		statuses[resp.StatusCode]++
		mu.Unlock()
		if resp.Header.Get(upstreamMark) != "" {
			return false
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
		case http.StatusServiceUnavailable:
			return resp.Header.Get("Retry-After") != ""
		}
		return false
	})
	elapsed := time.Since(start)
	validations := s.fake.Calls(fakeworkos.EndpointAPIKeys) - calls
	rationed(t, out, statuses, elapsed)
	ration := apiKeyBurst + int(apiKeyPerSecond*elapsed.Seconds()) + 1
	t.Logf("%d validations at WorkOS for %d made-up keys in %s (ration %d)", validations, n, elapsed.Round(time.Millisecond), ration)
	if validations > ration {
		t.Errorf("%d validations reached WorkOS, more than the ration of %d", validations, ration)
	}
	if statuses[http.StatusUnauthorized] != validations || statuses[http.StatusServiceUnavailable] != n-validations {
		t.Errorf("%d×401 and %d×503 for %d validations: want a 401 for each key WorkOS saw and a 503 for each it did not",
			statuses[http.StatusUnauthorized], statuses[http.StatusServiceUnavailable], validations)
	}

	calls = s.fake.Calls(fakeworkos.EndpointAPIKeys)
	resp, body := s.do(s.withKey(key.Value))
	switch {
	case resp.StatusCode == http.StatusOK && resp.Header.Get(upstreamMark) == "1":
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
	default:
		t.Errorf("a real key right after the flood: status %d, Retry-After %q: %.200s; want 200, or 503 to retry", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	t.Logf("a real key right after the flood: %d", resp.StatusCode)

	time.Sleep(time.Second) // the ration refills 20 a second
	start = time.Now()
	out = s.concurrently(300, workers, func(int) *http.Request { return s.withKey(key.Value) }, func(i int, resp *http.Response) bool {
		return resp.StatusCode == http.StatusOK && resp.Header.Get(upstreamMark) == "1"
	})
	report(t, "requests with a real key", out, time.Since(start))
	if d := s.fake.Calls(fakeworkos.EndpointAPIKeys) - calls; d != 1 {
		t.Errorf("%d validations for the real key, want 1", d)
	}
	e := s.echo(s.do(s.withKey(key.Value)))
	if e.Headers.Get("X-Workos-Api-Key-Id") != key.ID || e.Headers.Get("X-Workos-Organization-Id") != fakeworkos.OrgAcme {
		t.Errorf("upstream identity: key %q, organization %q; want %s in %s",
			e.Headers.Get("X-Workos-Api-Key-Id"), e.Headers.Get("X-Workos-Organization-Id"), key.ID, fakeworkos.OrgAcme)
	}
}

// The hosts of the open-redirect test: one callback host for listed sites
// under cookieDomain example.test, over http (Traefik's web entrypoint).
const (
	authHost  = "auth.example.test"
	appHost   = "app.example.test"
	tenantsWC = "http://*.tenants.example.test"
)

// returnToCases are absolute return targets an attacker puts in a link,
// each kept (a listed origin) or refused (the fallback, returnPathname).
// Paths are TestPathReturnToStaysOnTheListedSite's.
var returnToCases = []struct {
	name, returnTo string
	kept           bool
}{
	{"a listed origin", "http://app.example.test/reports?y=1", true},
	{"a tenant under the wildcard", "http://acme.tenants.example.test/home", true},
	{"a listed origin in upper case", "http://APP.Example.TEST/x", true},
	{"a listed origin with its default port", "http://app.example.test:80/x", true},

	{"userinfo", "http://app.example.test@evil.test/", false},
	{"userinfo over https", "https://app.example.test@evil.test/", false},
	{"userinfo with a password", "http://app.example.test:80@evil.test/", false},
	{"a fragment before @", "http://evil.test#@app.example.test/", false},
	{"a query before @", "http://evil.test?@app.example.test/", false},
	{"a backslash before @", `http://evil.test\@app.example.test/`, false},
	{"an encoded backslash before @", "http://evil.test%5C@app.example.test/", false},
	{"a listed host as a prefix", "http://app.example.test.evil.test/", false},
	{"a listed host with a trailing dot", "http://app.example.test./", false},
	{"an unlisted host under the cookie domain", "http://evilapp.example.test/", false},
	{"scheme-relative", "//evil.test/", false},
	{"scheme-relative to a listed host", "//app.example.test/", false},
	{"slash, backslash", `/\evil.test`, false},
	{"backslash, slash", `\/evil.test`, false},
	{"two backslashes", `\\evil.test`, false},
	{"an encoded second slash", "/%2Fevil.test", false},
	{"an encoded backslash", "/%5Cevil.test", false},
	{"encoded twice", "%2F%2Fevil.test", false},
	{"opaque", "http:app.example.test", false},
	{"opaque over https", "https:app.example.test", false},
	{"one slash after the scheme", "http:/evil.test/", false},
	{"backslashes after the scheme", `http:\\evil.test\`, false},
	{"a tab in the scheme", "ht\ttp://evil.test/", false},
	{"a line break in the host", "http://app.example.test\n.evil.test/", false},
	{"a header injection", "http://app.example.test/\r\nSet-Cookie: x=1", false},
	{"an unlisted scheme", "https://app.example.test/", false},
	{"javascript:", "javascript:alert(document.domain)//http://app.example.test/", false},
	{"data:", "data:text/html,<script>alert(1)</script>", false},
	{"ftp:", "ftp://app.example.test/", false},
	{"two levels under the wildcard", "http://a.b.tenants.example.test/", false},
	{"the wildcard's own domain", "http://tenants.example.test/", false},
	{"an encoded slash in a wildcard label", "http://evil.test%2F.tenants.example.test/", false},
	{"another port on a tenant", "http://acme.tenants.example.test:8080/", false},
}

// idnaDotCases are hosts two levels under the wildcard spelled with dots
// that are not ".": browsers map them to "." (IDNA; Chromium lands on
// evil.test.tenants.example.test), so each is a host the one-level
// wildcard must refuse.
var idnaDotCases = []struct{ name, returnTo string }{
	{"an ideographic full stop", "http://evil\u3002test.tenants.example.test/"},
	{"a fullwidth full stop", "http://evil\uff0etest.tenants.example.test/"},
	{"a halfwidth ideographic full stop", "http://evil\uff61test.tenants.example.test/"},
	{"an encoded fullwidth full stop", "http://evil%EF%BC%8Etest.tenants.example.test/"},
}

// onHost is req sent to Traefik for host.
func onHost(req *http.Request, host string) *http.Request {
	req.Host = host
	return req
}

// throughFake follows a sign-in redirect to the fake WorkOS with
// login_hint (the fake signs that user in at once) and sends the
// callback it redirects to to Traefik with the verifier cookie the
// sign-in set; it returns the callback's answer.
func (s *stack) throughFake(start *http.Response, hint string) *http.Response {
	s.t.Helper()
	if !s.isSignInRedirect(start) {
		s.t.Fatalf("status %d, Location %q: want the sign-in redirect", start.StatusCode, start.Header.Get("Location"))
	}
	authorize, body := s.do(mustRequest(s.t, start.Header.Get("Location")+"&login_hint="+url.QueryEscape(hint)))
	callback, err := url.Parse(authorize.Header.Get("Location"))
	if err != nil || callback.Host != authHost || callback.Path != "/callback" || callback.Query().Get("code") == "" {
		s.t.Fatalf("the fake answered %d, Location %q: %.200s", authorize.StatusCode, authorize.Header.Get("Location"), body)
	}
	resp, body := s.do(onHost(s.request(http.MethodGet, callback.RequestURI(), "html", cookiePairs(start), nil), authHost))
	if resp.StatusCode != http.StatusTemporaryRedirect || setCookie(resp, sessionCookie) == "" {
		s.t.Fatalf("callback: status %d, session cookie %t: %.200s", resp.StatusCode, setCookie(resp, sessionCookie) != "", body)
	}
	return resp
}

// expectLocation checks where a redirect sends the browser: one of want,
// and in any case an http origin that is the callback host, the listed
// one, or one label under the wildcard, without userinfo.
func expectLocation(t *testing.T, resp *http.Response, want ...string) {
	t.Helper()
	loc := resp.Header.Get("Location")
	if !slices.Contains(want, loc) {
		t.Errorf("Location %q, want %s", loc, strings.Join(want, " or "))
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	host := strings.ToLower(u.Hostname())
	label, underTenants := strings.CutSuffix(host, ".tenants.example.test")
	// A label with an IDNA dot, raw or encoded, is two labels to a browser.
	label, _ = url.PathUnescape(label)
	listed := host == authHost || host == appHost || (underTenants && label != "" && !strings.ContainsAny(label, ".\u3002\uff0e\uff61"))
	if u.Scheme != "http" || u.User != nil || !listed || strings.ContainsAny(loc, "\\\r\n\t") {
		t.Errorf("Location %q is not on a listed origin", loc)
	}
}

// startSitesStack is one callback host, auth.example.test, for
// app.example.test and *.tenants.example.test (returnOrigins,
// cookieDomain example.test).
func startSitesStack(t *testing.T) *stack {
	t.Helper()
	callback := "http://" + authHost + "/callback"
	return startStackWith(t, fakeworkos.Options{RedirectURIs: []string{callback}}, func(config map[string]any) {
		config["redirectUri"] = callback
		config["cookieDomain"] = "example.test"
		config["returnOrigins"] = []string{"http://" + appHost, tenantsWC}
	})
}

// returnToFlows drives the three ways a return target gets in, each on
// app.example.test, and checks where each one sends the browser:
//   - the sign-in route's returnTo: through the fake WorkOS to the
//     callback, whose Location must be one of signInWant;
//   - the organization switch's returnTo, signed in: the switch redirects
//     itself, to switchWant;
//   - the organization switch's returnTo, signed out: a sign-in into the
//     organization, through the callback, to one of signInWant.
func (s *stack) returnToFlows(t *testing.T, returnTo, switchWant string, signInWant ...string) {
	t.Helper()
	query := "returnTo=" + url.QueryEscape(returnTo)
	t.Run("sign-in", func(t *testing.T) {
		s := s.on(t)
		start, _ := s.do(onHost(s.request(http.MethodGet, "/auth/sign-in?"+query, "html", "", nil), appHost))
		expectLocation(t, s.throughFake(start, fakeworkos.UserBob), signInWant...)
	})
	switchQuery := "/auth/switch-organization?organizationId=" + fakeworkos.OrgGlobex + "&" + query
	t.Run("switch, signed in", func(t *testing.T) {
		s := s.on(t)
		cookie, _ := s.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
		resp, body := s.do(onHost(s.request(http.MethodGet, switchQuery, "html", cookie, nil), appHost))
		if resp.StatusCode != http.StatusTemporaryRedirect || setCookie(resp, sessionCookie) == "" {
			t.Fatalf("switch: status %d, session cookie %t: %.200s", resp.StatusCode, setCookie(resp, sessionCookie) != "", body)
		}
		expectLocation(t, resp, switchWant)
	})
	t.Run("switch, signed out", func(t *testing.T) {
		s := s.on(t)
		start, _ := s.do(onHost(s.request(http.MethodGet, switchQuery, "html", "", nil), appHost))
		expectLocation(t, s.throughFake(start, fakeworkos.UserAlice), signInWant...)
	})
}

// fallbacks are where a refused return target may land after a sign-in:
// returnPathname on the callback host, which the plugin does now, or on
// the listed site the sign-in started on (see
// TestPathReturnToStaysOnTheListedSite).
var fallbacks = []string{"http://" + authHost + "/", "http://" + appHost + "/"}

// TestReturnToNeverLeavesTheListedOrigins drives every return target of
// returnToCases through the sign-in route and the organization switch
// (returnToFlows): a listed target is kept; anything else falls back to
// returnPathname (fallbacks; the signed-in switch, which needs no
// callback, to / on its own host).
func TestReturnToNeverLeavesTheListedOrigins(t *testing.T) {
	s := startSitesStack(t)
	for _, tt := range returnToCases {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kept {
				s.on(t).returnToFlows(t, tt.returnTo, tt.returnTo, tt.returnTo)
			} else {
				s.on(t).returnToFlows(t, tt.returnTo, "http://"+appHost+"/", fallbacks...)
			}
		})
	}
}

// TestReturnOriginsWildcardIsOneLevelAfterIDNA: a host two levels under
// "http://*.tenants.example.test" whose first dot is an IDNA dot
// (idnaDotCases) must fall back like a.b.tenants.example.test does.
func TestReturnOriginsWildcardIsOneLevelAfterIDNA(t *testing.T) {
	s := startSitesStack(t)
	for _, tt := range idnaDotCases {
		t.Run(tt.name, func(t *testing.T) {
			s.on(t).returnToFlows(t, tt.returnTo, "http://"+appHost+"/", fallbacks...)
		})
	}
}

// TestPathReturnToStaysOnTheListedSite: SPEC "Several sites, one
// callback" has a sign-in started on a listed origin carry that absolute
// return URL, as the plugin does for the sign-in it starts itself on a
// protected page. A sign-in link on app.example.test with a path as
// returnTo (the sign-in route, or a signed-out organization switch) must
// then land back on app.example.test, as the signed-in switch does, not
// on the callback host.
func TestPathReturnToStaysOnTheListedSite(t *testing.T) {
	s := startSitesStack(t)
	want := "http://" + appHost + "/reports?y=1"
	s.returnToFlows(t, "/reports?y=1", want, want)
}
