package authkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Several sites, one callback (returnOrigins)" and the sign-in
// route's options.

var testOrigins = []string{"https://app.example.com", "https://*.tenants.example.com", "http://localhost:3000"}

func TestSafeReturnToWithOrigins(t *testing.T) {
	if _, err := parseReturnOrigins(testOrigins, ".example.com"); err == nil {
		t.Fatal("localhost is not under .example.com, yet it was accepted")
	}
	origins, err := parseReturnOrigins(testOrigins[:2], ".example.com")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"/dashboard?x=1", "/dashboard?x=1"},
		{"https://app.example.com/x?y=1#z", "https://app.example.com/x?y=1#z"},
		{"https://APP.example.com:443/x", "https://APP.example.com:443/x"},
		{"https://acme.tenants.example.com/", "https://acme.tenants.example.com/"},
		{"http://app.example.com/x", "/fallback"},                 // another scheme
		{"https://app.example.com@evil.test/", "/fallback"},       // userinfo
		{"https://evil.test#@app.example.com/", "/fallback"},      // fragment trick
		{"https://evil.test\\@app.example.com/", "/fallback"},     // backslash
		{"https://app.example.com.evil.test/", "/fallback"},       // suffix trick
		{"https://tenants.example.com/", "/fallback"},             // the wildcard's own domain
		{"https://a.b.tenants.example.com/", "/fallback"},         // two levels
		{"https://example.com/", "/fallback"},                     // unlisted
		{"//app.example.com/x", "/fallback"},                      // scheme-relative
		{"javascript:alert(1)", "/fallback"},                      // another scheme
		{"https://app.example.com:8443/", "/fallback"},            // another port
		{"https://app.example.com/\r\nSet-Cookie:x", "/fallback"}, // control characters
		{"https:app.example.com/", "/fallback"},                   // opaque
		{"https://evil\u3002x.tenants.example.com/", "/fallback"}, // an ideographic dot: two labels to a browser
		{"https://evil\uff0ex.tenants.example.com/", "/fallback"}, // a full-width dot
	}
	for _, tt := range tests {
		if got := safeReturnTo(tt.in, "/fallback", origins); got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := safeReturnTo("https://app.example.com/x", "/fallback", nil); got != "/fallback" {
		t.Errorf("without returnOrigins an absolute URL was kept: %q", got)
	}
}

func TestReturnOriginsConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		domain  string
		ok      bool
	}{
		{"listed origins under the cookie domain", []string{"https://app.example.com", "https://*.example.com"}, "example.com", true},
		{"no cookie domain", []string{"https://app.example.com"}, "", false},
		{"an origin with a path", []string{"https://app.example.com/x"}, "example.com", false},
		{"a wildcard in the middle", []string{"https://app.*.example.com"}, "example.com", false},
		{"a wildcard over a top-level domain", []string{"https://*.com"}, "com", false},
		{"userinfo", []string{"https://u@app.example.com"}, "example.com", false},
	}
	for _, tt := range tests {
		_, err := parseReturnOrigins(tt.origins, tt.domain)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "returnOrigins") {
			t.Errorf("%s: the error does not name the key: %v", tt.name, err)
		}
	}
}

// multiSiteEnv is one callback host, auth.example.com, for sites under
// example.com.
func multiSiteEnv(t *testing.T) *testEnv {
	return newTestEnv(t, func(c *Config) {
		c.RedirectURI = "https://auth.example.com/callback"
		c.CookieDomain = "example.com"
		c.ReturnOrigins = []string{"https://app.example.com", "https://*.tenants.example.com"}
		c.MiddlewareAuth.Enabled = true
	})
}

// doOn is a document request to another host, over https.
func doOn(env *testEnv, host, target, cookie string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://"+host+target, nil)
	r.Header.Set("Accept", documentAccept)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	w := httptest.NewRecorder()
	env.ak.ServeHTTP(w, r)
	return w
}

func TestSignInOnOneSiteReturnsToIt(t *testing.T) {
	env := multiSiteEnv(t)
	tests := []struct{ name, host, wantLocation string }{
		{"a listed origin", "app.example.com", "https://app.example.com/reports?y=1"},
		{"a tenant under the wildcard", "acme.tenants.example.com", "https://acme.tenants.example.com/reports?y=1"},
		{"an unlisted site lands on the callback host", "other.example.com", "https://auth.example.com/reports?y=1"},
	}
	for _, tt := range tests {
		start := doOn(env, tt.host, "/reports?y=1", "")
		if start.Code != http.StatusTemporaryRedirect {
			t.Fatalf("%s: status %d", tt.name, start.Code)
		}
		if pkce := setCookie(start, pkceCookieName(mustQuery(t, start.Header().Get("Location")).Get("state"))); !strings.Contains(pkce, "Domain=example.com") {
			t.Fatalf("%s: the verifier cookie does not reach the callback host: %q", tt.name, pkce)
		}
		w := signInThroughFake(t, env, start, fakeworkos.UserBob)
		if w.Header().Get("Location") != tt.wantLocation {
			t.Errorf("%s: callback sends the browser to %q, want %q", tt.name, w.Header().Get("Location"), tt.wantLocation)
		}
		if c := setCookie(w, "wos-session"); !strings.Contains(c, "Domain=example.com") {
			t.Errorf("%s: the session cookie is not shared: %q", tt.name, c)
		}
	}
}

// TestSignInRoutePathOnAListedSiteReturnsThere: a plain "sign in" link on a
// listed site (a path returnTo) comes back to that site, not the callback
// host.
func TestSignInRoutePathOnAListedSiteReturnsThere(t *testing.T) {
	env := multiSiteEnv(t)
	start := doOn(env, "app.example.com", "/auth/sign-in?returnTo=%2Freports%3Fy%3D1", "")
	w := signInThroughFake(t, env, start, fakeworkos.UserBob)
	if loc := w.Header().Get("Location"); loc != "https://app.example.com/reports?y=1" {
		t.Fatalf("callback sends the browser to %q", loc)
	}
}

func TestSignInRouteOptions(t *testing.T) {
	env := multiSiteEnv(t)
	tests := []struct {
		name, query string
		wantStatus  int
		want        map[string]string // authorize query
		wantReturn  string
	}{
		{"organization, login hint and sign-up screen",
			"?organizationId=" + fakeworkos.OrgAcme + "&loginHint=bob%2Bwork%40example.com&screenHint=sign-up", http.StatusTemporaryRedirect,
			map[string]string{"organization_id": fakeworkos.OrgAcme, "login_hint": "bob+work@example.com", "screen_hint": "sign-up"}, "/"},
		{"returnTo on a listed origin", "?returnTo=https%3A%2F%2Fapp.example.com%2Fx", http.StatusTemporaryRedirect,
			map[string]string{"screen_hint": "sign-in"}, "https://app.example.com/x"},
		{"returnTo elsewhere falls back", "?returnTo=https%3A%2F%2Fapp.example.com%40evil.test%2F", http.StatusTemporaryRedirect, nil, "/"},
		{"an unknown screen hint", "?screenHint=register", http.StatusBadRequest, nil, ""},
		{"a login hint with a line break", "?loginHint=a%0d%0ab", http.StatusBadRequest, nil, ""},
		{"an overlong organization", "?organizationId=" + strings.Repeat("o", 300), http.StatusBadRequest, nil, ""},
	}
	for _, tt := range tests {
		w := doOn(env, "auth.example.com", "/auth/sign-in"+tt.query, "")
		if w.Code != tt.wantStatus {
			t.Fatalf("%s: status %d, want %d", tt.name, w.Code, tt.wantStatus)
		}
		if w.Code != http.StatusTemporaryRedirect {
			continue
		}
		q := mustQuery(t, w.Header().Get("Location"))
		for k, v := range tt.want {
			if q.Get(k) != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, q.Get(k), v)
			}
		}
		plain, err := env.ak.s.keyring.Unseal(q.Get("state"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := decodeAuthState(plain); st.ReturnPathname != tt.wantReturn {
			t.Errorf("%s: return target %q, want %q", tt.name, st.ReturnPathname, tt.wantReturn)
		}
	}
}

// TestCallbackChecksTheReturnOriginItself: a state sealed when another
// origin was listed (or by a Next.js app) is checked again at the callback.
func TestCallbackChecksTheReturnOriginItself(t *testing.T) {
	env := multiSiteEnv(t)
	start := doOn(env, "auth.example.com", "/auth/sign-in?returnTo=https%3A%2F%2Fapp.example.com%2Fx", "")
	env.ak.s.returnOrigins = nil // the operator removed the origin meanwhile
	w := signInThroughFake(t, env, start, fakeworkos.UserBob)
	if loc := w.Header().Get("Location"); loc != "https://auth.example.com/" {
		t.Fatalf("callback sends the browser to %q; an unlisted origin falls back to returnPathname", loc)
	}
}

func TestSwitchOrganizationReturnsToAListedOrigin(t *testing.T) {
	env := multiSiteEnv(t)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	w := doOn(env, "app.example.com", "/auth/switch-organization?organizationId="+fakeworkos.OrgGlobex+
		"&returnTo=https%3A%2F%2Facme.tenants.example.com%2Fhome", "wos-session="+sealed)
	if w.Header().Get("Location") != "https://acme.tenants.example.com/home" {
		t.Fatalf("switch sends the browser to %q", w.Header().Get("Location"))
	}
	w = doOn(env, "app.example.com", "/auth/switch-organization?organizationId="+fakeworkos.OrgGlobex+
		"&returnTo=https%3A%2F%2Fevil.test%2F", "wos-session="+sealed)
	if w.Header().Get("Location") != "https://app.example.com/" {
		t.Fatalf("switch to an unlisted origin sends the browser to %q", w.Header().Get("Location"))
	}
}
