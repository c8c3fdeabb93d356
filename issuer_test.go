package authkit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC `issuer`: a token of another issuer is not accepted and is not
// refreshed; the request is signed out and token_rejected names the iss.

func fakeIssuer(env *testEnv) string {
	return "https://api.workos.com/user_management/" + env.fake.ClientID()
}

func TestIssuerAcceptsListedIssuers(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ak.s.issuers = []string{"https://auth.example.com", fakeIssuer(env)}
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	if w := env.do(document("/page", "wos-session="+sealed)); w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice {
		t.Fatalf("a listed issuer: status %d, user %q", w.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
}

func TestIssuerRefusesOthersWithoutRefreshing(t *testing.T) {
	tests := []struct {
		name      string
		accessTTL time.Duration
	}{
		{"a valid token", 0},
		{"an expiring token", 20 * time.Second},
		{"an expired token", -time.Minute},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) {
				c.MiddlewareAuth.Enabled = true
				c.Issuer = []string{"https://auth.example.com"}
			})
			sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, tt.accessTTL)
			api := request{target: "/api", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}}
			for i := 0; i < 5; i++ {
				w := env.do(api)
				if w.Code != http.StatusUnauthorized || setCookie(w, "wos-session") != "" {
					t.Fatalf("request %d: status %d, Set-Cookie %q; want 401, the cookie kept", i, w.Code, setCookie(w, "wos-session"))
				}
			}
			if env.fake.RefreshCalls() != 0 {
				t.Fatalf("%d refresh calls for a token of another issuer", env.fake.RefreshCalls())
			}
			if n := strings.Count(env.logs.String(), `"msg":"token_rejected"`); n != 1 || !strings.Contains(env.logs.String(), fakeIssuer(env)) {
				t.Fatalf("%d token_rejected events (want one, naming the iss seen): %s", n, env.logs)
			}
		})
	}
}

func TestIssuerFromTheEnvironment(t *testing.T) {
	setenv(t, "WORKOS_ISSUER", "https://a.example.com, https://b.example.com/")
	c := CreateConfig()
	c.ClientID, c.APIKey, c.CookiePassword, c.RedirectURI = "client_1", "sk_1", testCookiePassword, "/callback"
	s, err := parseSettings(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.issuers, " ") != "https://a.example.com https://b.example.com/" {
		t.Fatalf("issuers %q", s.issuers)
	}
}

func TestIssuerAppliesToBearerTokens(t *testing.T) {
	env := newTestEnv(t, func(c *Config) {
		c.AllowBearerTokens = true
		c.MiddlewareAuth.Enabled = true
		c.Issuer = []string{"https://auth.example.com"}
	})
	_, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	for i := 0; i < 3; i++ {
		w := env.do(request{target: "/api", headers: map[string]string{"Authorization": "Bearer " + issued.AccessToken}})
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("status %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := strings.Count(env.logs.String(), `"msg":"token_rejected"`); n != 1 {
		t.Fatalf("%d token_rejected events for one token, want 1", n)
	}
}

// TestIssuerRefusedAtTheCallback: a sign-in whose token another issuer
// signed gets an error page, not a cookie the next request refuses (which
// would loop through AuthKit).
func TestIssuerRefusedAtTheCallback(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Issuer = []string{"https://auth.example.com"} })
	w := signInThroughFake(t, env, env.do(document("/auth/sign-in", "")), fakeworkos.UserBob)
	if w.Code != http.StatusForbidden || setCookie(w, "wos-session") != "" {
		t.Fatalf("callback %d, Set-Cookie %q", w.Code, setCookie(w, "wos-session"))
	}
}
