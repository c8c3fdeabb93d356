package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const cookiePassword = "this-is-a-bench-cookie-password-0123456789abcdef"

// fixture is a fake WorkOS, a plugin configuration that uses it, and a
// sealed session for one of its users.
type fixture struct {
	config  map[string]any
	cookie  string
	payload []byte
	keyring *authkit.Keyring
	fake    *fakeworkos.Server
}

func newFixture(b testing.TB) fixture {
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: time.Hour})
	api := httptest.NewServer(fake)
	b.Cleanup(api.Close)
	u, _ := url.Parse(api.URL)
	issued, err := fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	if err != nil {
		b.Fatal(err)
	}
	var user map[string]any
	if err := json.Unmarshal(issued.User, &user); err != nil {
		b.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{
		"accessToken": issued.AccessToken, "refreshToken": issued.RefreshToken,
		"user": map[string]any{"object": "user", "id": user["id"], "email": user["email"]},
	})
	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := keyring.Seal(payload, 0, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return fixture{
		config: map[string]any{
			"clientId": fake.ClientID(), "apiKey": fake.APIKey(), "cookiePassword": cookiePassword,
			"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
			"middlewareAuth": map[string]any{"enabled": "true", "unauthenticatedPaths": "/public/:path*"},
		},
		cookie:  "theme=dark; wos-session=" + sealed,
		payload: payload,
		keyring: keyring,
		fake:    fake,
	}
}

var noop = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// discard keeps nothing, so the numbers are the middleware's.
type discard struct{ h http.Header }

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) Write(b []byte) (int, error) { return len(b), nil }
func (w *discard) WriteHeader(int)             {}

// handlers returns the plugin compiled and interpreted, built from the same
// configuration, in front of next.
func handlers(b testing.TB, config map[string]any, next http.Handler) map[string]http.Handler {
	root, err := loader.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	plugin, err := loader.Cached(root)
	if err != nil {
		b.Fatal(err)
	}
	interpreted, err := plugin.New(config, "bench", next)
	if err != nil {
		b.Fatal(err)
	}
	cfg := authkit.CreateConfig()
	raw, _ := json.Marshal(config)
	json.Unmarshal(raw, cfg)
	cfg.MiddlewareAuth.Enabled = true
	cfg.MiddlewareAuth.UnauthenticatedPaths = []string{"/public/:path*"}
	compiled, err := authkit.New(context.Background(), next, cfg, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return map[string]http.Handler{"compiled": compiled, "interpreted": interpreted}
}

func serve(b *testing.B, h http.Handler, target, cookie string) {
	serveWith(b, h, target, "Cookie", cookie)
}

// serveWith is serve with the request header name set to value (none
// when value is empty) instead of a Cookie header.
func serveWith(b *testing.B, h http.Handler, target, name, value string) {
	base := httptest.NewRequest(http.MethodGet, "http://app.test"+target, nil)
	base.RequestURI = target // the origin form Traefik's server reads
	base.Header.Set("Accept", "text/html")
	base.Header.Set("User-Agent", "bench")
	// What Traefik's entry point adds before any middleware runs.
	for name, value := range map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "app.test", "X-Forwarded-Port": "80",
		"X-Forwarded-Proto": "http", "X-Forwarded-Server": "traefik", "X-Real-Ip": "127.0.0.1",
		"Accept-Encoding": "gzip",
	} {
		base.Header.Set(name, value)
	}
	if value != "" {
		base.Header.Set(name, value)
	}
	w := &discard{h: http.Header{}}
	// Warm up: the first request verifies and fills the session cache
	// (or validates the API key).
	h.ServeHTTP(w, base.Clone(context.Background()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := *base
		r.Header = base.Header.Clone()
		for k := range w.h {
			delete(w.h, k)
		}
		h.ServeHTTP(w, &r)
	}
}

// serveCold seals the same session anew before each request, outside the
// timer: every request is a cache miss, so it unseals and verifies.
func serveCold(b *testing.B, h http.Handler, f fixture) {
	w := &discard{h: http.Header{}}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sealed, err := f.keyring.Seal(f.payload, 0, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "http://app.test/page?x=1", nil)
		r.Header.Set("Accept", "text/html")
		r.Header.Set("Cookie", "wos-session="+sealed)
		for k := range w.h {
			delete(w.h, k)
		}
		b.StartTimer()
		h.ServeHTTP(w, r)
	}
}

func BenchmarkPlugin(b *testing.B) {
	f := newFixture(b)
	hs := handlers(b, f.config, noop)
	for _, mode := range []string{"compiled", "interpreted"} {
		h := hs[mode]
		b.Run("signed-in/"+mode, func(b *testing.B) { serve(b, h, "/page?x=1", f.cookie) })
		b.Run("public/"+mode, func(b *testing.B) { serve(b, h, "/public/about", "") })
		b.Run("cold/"+mode, func(b *testing.B) { serveCold(b, h, f) })
	}
	lean := map[string]any{}
	for k, v := range f.config {
		lean[k] = v
	}
	lean["nextjsHeaders"] = "false"
	lean["identityHeaders"] = map[string]any{"X-Forwarded-User": "user.id", "X-Forwarded-Email": "user.email",
		"X-Forwarded-Groups": "roles", "X-Forwarded-Org": "organizationId"}
	leanHandlers := handlers(b, lean, noop)
	for _, mode := range []string{"compiled", "interpreted"} {
		h := leanHandlers[mode]
		b.Run("signed-in-lean/"+mode, func(b *testing.B) { serve(b, h, "/page?x=1", f.cookie) })
		b.Run("public-lean/"+mode, func(b *testing.B) { serve(b, h, "/public/about", "") })
	}
	benchAPIKey(b, f)
	benchRedis(b, f)
	b.Run("signed-in/no-middleware", func(b *testing.B) { serve(b, noop, "/page?x=1", f.cookie) })
	b.Run("signed-in/do-nothing-plugin", func(b *testing.B) { serve(b, doNothingPlugin(b), "/page?x=1", f.cookie) })
	benchJunkCookies(b, f)
}

// benchAPIKey sends an API client's request with a WorkOS API key
// (allowApiKeys) that the warm-up validated at the fake, so each timed
// request is a cache hit: the extra latency of a cached key check, beside
// signed-in and public. Each one must reach the upstream, or the
// benchmark would time a 401 or 503 instead.
func benchAPIKey(b *testing.B, f fixture) {
	key, err := f.fake.CreateAPIKey(fakeworkos.APIKeyParams{Name: "bench", OrganizationID: fakeworkos.OrgAcme, Permissions: []string{"posts:read"}})
	if err != nil {
		b.Fatal(err)
	}
	config := map[string]any{"allowApiKeys": true}
	for k, v := range f.config {
		config[k] = v
	}
	reached := 0
	hs := handlers(b, config, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, mode := range []string{"compiled", "interpreted"} {
		h := hs[mode]
		b.Run("api-key/"+mode, func(b *testing.B) {
			reached = 0
			validations := f.fake.APIKeyValidations()
			serveWith(b, h, "/page?x=1", "Authorization", "Bearer "+key.Value)
			if reached != b.N+1 {
				b.Fatalf("%d of %d requests reached the upstream", reached, b.N+1)
			}
			if n := f.fake.APIKeyValidations() - validations; n > 1 {
				b.Fatalf("%d validations for %d requests with one key, want the warm-up's alone", n, b.N+1)
			}
		})
	}
}

// benchRedis is signed-in with redisUrl set (AUTHKIT_TEST_REDIS_URL, which
// scripts/bench.sh starts): a cached session makes no Redis call, so it
// must cost what it costs without Redis.
func benchRedis(b *testing.B, f fixture) {
	redisURL := os.Getenv("AUTHKIT_TEST_REDIS_URL")
	if redisURL == "" {
		return
	}
	config := map[string]any{"redisUrl": redisURL}
	for k, v := range f.config {
		config[k] = v
	}
	hs := handlers(b, config, noop)
	for _, mode := range []string{"compiled", "interpreted"} {
		h := hs[mode]
		b.Run("signed-in-redis/"+mode, func(b *testing.B) { serve(b, h, "/page?x=1", f.cookie) })
	}
}

// benchJunkCookies sends an anonymous request on a public path with a
// junk Cookie header (JunkCookie) of each size and variant. Each one must
// reach the upstream: the plugin may not turn junk into an error page, or
// the benchmark would time that instead. At 1 MiB an iteration can take
// a third of a second interpreted; -benchtime 20x bounds the run.
func benchJunkCookies(b *testing.B, f fixture) {
	reached := 0
	hs := handlers(b, f.config, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 1 << 10}, {"150KiB", 150 << 10}, {"1MiB", 1 << 20}} {
		for _, variant := range JunkVariants {
			cookie := JunkCookie(size.bytes, variant)
			for _, mode := range []string{"compiled", "interpreted"} {
				h := hs[mode]
				b.Run("junk-cookie/"+size.name+"/"+variant+"/"+mode, func(b *testing.B) {
					b.ReportAllocs()
					reached = 0
					serve(b, h, "/public/about", cookie)
					if reached != b.N+1 { // b.N requests and the warm-up
						b.Fatalf("%d of %d requests reached the upstream", reached, b.N+1)
					}
				})
			}
		}
	}
}

// doNothingPlugin loads bench/noop into its own interpreter: the floor
// that any plugin costs under yaegi, beside which the plugin's numbers read.
func doNothingPlugin(b *testing.B) http.Handler {
	return loadReference(b, "noop", "github.com/traefik-authkit/noop", map[string]any{}, noop)
}
