package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/traefik/traefik/v3/pkg/config/dynamic"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// The README's "Putting any service behind it" configurations and the lean
// route of examples/dynamic.yml are what people copy to put Grafana or an
// oauth2-proxy-style upstream behind the plugin. Each is decoded by
// Traefik's file provider, built by New compiled and interpreted, and sent
// a request with a real (fake WorkOS) session: the upstream must receive
// exactly the headers the configuration promises.

// readmeSection is the README section whose configurations are tested;
// every YAML block in it must carry an example marker.
const readmeSection = "## Putting any service behind it"

// alice is what the fake WorkOS knows about the user the sessions are for.
var alice = struct{ id, email, name, roles string }{
	id: fakeworkos.UserAlice, email: "alice@example.com", name: "Alice Admin", roles: "admin,member",
}

// exampleWant is what an upstream behind a configuration receives for
// Alice's session: the identity headers, and the Cookie header left from
// "theme=dark; <session>; lang=en".
type exampleWant struct {
	identity map[string]string
	cookie   string
}

// readmeExampleWants are the README's marked examples and what each one
// promises. A marker in the README without an entry here, or an entry
// whose marker is gone, fails TestREADMEExamples.
var readmeExampleWants = map[string]exampleWant{
	"oauth2-proxy": {identity: map[string]string{
		"X-Forwarded-User": alice.id, "X-Forwarded-Email": alice.email,
		"X-Forwarded-Groups": alice.roles, "X-Forwarded-Preferred-Username": alice.name,
	}, cookie: "theme=dark; lang=en"},
	"remote-user": {identity: map[string]string{
		"Remote-User": alice.id, "Remote-Email": alice.email, "Remote-Name": alice.name, "Remote-Groups": alice.roles,
	}, cookie: "theme=dark; lang=en"},
	// X-WEBAUTH-USER arrives in Go's canonical spelling; Grafana reads
	// header names case-insensitively.
	"grafana": {identity: map[string]string{
		"X-Webauth-User": alice.email, "X-Webauth-Name": alice.name,
	}, cookie: "theme=dark; lang=en"},
}

// readmeExample is one marked YAML block of the README.
type readmeExample struct{ name, yaml string }

var exampleMarker = regexp.MustCompile(`^<!-- example: ([a-z0-9-]+) -->$`)

// readmeExamples returns the README's marked YAML blocks: a line
// `<!-- example: name -->` directly followed by a ```yaml fence. A marker
// without its block, a name used twice, and a YAML block of readmeSection
// without a marker are errors.
func readmeExamples(readme string) ([]readmeExample, error) {
	lines := strings.Split(readme, "\n")
	var out []readmeExample
	seen := map[string]bool{}
	section := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		if line == "```yaml" && section == readmeSection && (i == 0 || !exampleMarker.MatchString(lines[i-1])) {
			return nil, fmt.Errorf("README line %d: a YAML block in %q without an example marker", i+1, readmeSection)
		}
		m := exampleMarker.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		if seen[name] {
			return nil, fmt.Errorf("README line %d: example %q marked twice", i+1, name)
		}
		seen[name] = true
		if i+1 >= len(lines) || lines[i+1] != "```yaml" {
			return nil, fmt.Errorf("README line %d: example %q is not followed by a ```yaml block", i+1, name)
		}
		var block []string
		j := i + 2
		for ; j < len(lines) && lines[j] != "```"; j++ {
			block = append(block, lines[j])
		}
		if j == len(lines) {
			return nil, fmt.Errorf("README line %d: example %q's block is not closed", i+1, name)
		}
		out = append(out, readmeExample{name: name, yaml: strings.Join(block, "\n") + "\n"})
		i = j
	}
	return out, nil
}

// checkExampleNames reports the difference between the README's examples
// and the ones this file knows.
func checkExampleNames(examples []readmeExample) error {
	var errs []error
	found := map[string]bool{}
	for _, ex := range examples {
		found[ex.name] = true
		if _, ok := readmeExampleWants[ex.name]; !ok {
			errs = append(errs, fmt.Errorf("README example %q has no entry in readmeExampleWants", ex.name))
		}
	}
	for name := range readmeExampleWants {
		if !found[name] {
			errs = append(errs, fmt.Errorf("README example %q is gone (no <!-- example: %s --> marker)", name, name))
		}
	}
	return errors.Join(errs...)
}

func readREADME(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// authkitMiddlewares returns the plugin settings of every middleware in a
// file-provider configuration, by middleware name: from content, or from
// the file at path when path is set.
func authkitMiddlewares(t *testing.T, content, path string) map[string]map[string]any {
	t.Helper()
	var dyn *dynamic.Configuration
	var err error
	if path != "" {
		dyn, err = FromFile(path)
	} else {
		dyn, err = FromFileContent(content)
	}
	if err != nil {
		t.Fatalf("file provider: %v", err)
	}
	if dyn.HTTP == nil || len(dyn.HTTP.Middlewares) == 0 {
		t.Fatal("file provider: no HTTP middlewares")
	}
	out := map[string]map[string]any{}
	for name := range dyn.HTTP.Middlewares {
		raw, err := PluginConfig(dyn, name, pluginName)
		if err != nil {
			t.Fatalf("file provider: %v", err)
		}
		out[name] = raw
	}
	return out
}

// configKeySet is every configuration key Config accepts, lower case (as
// mapstructure matches them), leaves and the nested blocks apart.
func configKeySet() (leaves, blocks map[string]bool) {
	leaves, blocks = map[string]bool{}, map[string]bool{}
	for _, f := range configFields(reflect.TypeOf(authkit.Config{}), "", "") {
		key := strings.ToLower(f.key)
		leaves[key] = true
		parts := strings.Split(key, ".")
		for i := 1; i < len(parts); i++ {
			blocks[strings.Join(parts[:i], ".")] = true
		}
	}
	return leaves, blocks
}

// unknownKeys lists the keys of plugin settings that no Config field takes.
// Traefik's decoding drops them without a word, so a misspelled key would
// otherwise load as if it were not there.
func unknownKeys(raw map[string]any) []string {
	leaves, blocks := configKeySet()
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			lower := strings.ToLower(key)
			if leaves[lower] {
				continue // a map-valued key (identityHeaders) holds header names, not keys
			}
			if sub, ok := v.(map[string]any); ok && blocks[lower] {
				walk(key+".", sub)
				continue
			}
			out = append(out, key)
		}
	}
	walk("", raw)
	sort.Strings(out)
	return out
}

// signedIn is a fake WorkOS, the settings that point the plugin at it, and
// a sealed session of Alice in Acme.
type signedIn struct {
	settings map[string]any
	sealed   string
}

const readmeCookiePassword = "readme-example-cookie-password-at-least-32"

func newSignedIn(t *testing.T) *signedIn {
	t.Helper()
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: time.Hour})
	api := httptest.NewServer(fake)
	t.Cleanup(api.Close)
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	if err != nil {
		t.Fatal(err)
	}
	// The session holds the user as authkit-nextjs stores it (camelCase).
	var user struct {
		ID            string `json:"id"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	}
	if err := json.Unmarshal(issued.User, &user); err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{
		"accessToken": issued.AccessToken, "refreshToken": issued.RefreshToken,
		"user": map[string]any{
			"object": "user", "id": user.ID, "email": user.Email, "emailVerified": user.EmailVerified,
			"firstName": user.FirstName, "lastName": user.LastName,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := authkit.NewKeyring(map[string]string{"1": readmeCookiePassword})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keyring.Seal(payload, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &signedIn{
		settings: map[string]any{
			"clientId": fake.ClientID(), "apiKey": fake.APIKey(), "cookiePassword": readmeCookiePassword,
			"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
		},
		sealed: sealed,
	}
}

// with returns raw plus the fixture's secrets and WorkOS address, the part
// a deployment gives through the environment.
func (s *signedIn) with(raw map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range raw {
		out[k] = v
	}
	for k, v := range s.settings {
		out[k] = v
	}
	return out
}

// capture is an upstream that keeps the headers of the last request.
type capture struct {
	calls  int
	header http.Header
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.calls++
	c.header = r.Header.Clone()
}

// builds returns the middleware built from config by the compiled plugin
// and by the interpreter, each in front of its own capture.
func builds(t *testing.T, config map[string]any, name string) (map[string]http.Handler, map[string]*capture, error) {
	t.Helper()
	handlers, upstreams := map[string]http.Handler{}, map[string]*capture{}
	cfg, err := decodeCompiled(config)
	if err != nil {
		return nil, nil, fmt.Errorf("compiled decode: %w", err)
	}
	upstreams["compiled"] = &capture{}
	if handlers["compiled"], err = authkit.New(context.Background(), upstreams["compiled"], cfg, name); err != nil {
		return nil, nil, fmt.Errorf("compiled New: %w", err)
	}
	upstreams["interpreted"] = &capture{}
	if handlers["interpreted"], err = cachedPlugin(t).New(config, name, upstreams["interpreted"]); err != nil {
		return nil, nil, fmt.Errorf("interpreted New: %w", err)
	}
	return handlers, upstreams, nil
}

// spoofs are the headers a client adds to pretend to be someone: each
// identity header in lower case and with '_' for '-', and an X-Workos-*
// header. net/http gives the plugin the canonical forms.
func spoofs(identity map[string]string) http.Header {
	h := http.Header{}
	for name := range identity {
		h.Add(strings.ToLower(name), "mallory")
		h.Add(strings.ReplaceAll(strings.ToLower(name), "-", "_"), "mallory")
	}
	h.Add("x-workos-user-id", "user_mallory")
	h.Add("X_Workos_User_Email", "mallory@example.com")
	return h
}

// expectUpstreamHeaders sends a signed-in document request, with spoofed
// identity and other cookies around the session, to the middleware built
// from config, and checks that the upstream receives exactly what want
// promises: the request's own headers, the identity headers, the Cookie
// header want names, and nothing else (no X-Workos-*, no spoofed value).
// A signed-out request must not reach the upstream at all.
func expectUpstreamHeaders(t *testing.T, s *signedIn, config map[string]any, name string, want exampleWant) {
	t.Helper()
	handlers, upstreams, err := builds(t, s.with(config), name)
	if err != nil {
		t.Fatal(err)
	}
	own := http.Header{
		"Accept":            {"text/html"},
		"User-Agent":        {"readme-example-test"},
		"X-Forwarded-For":   {"203.0.113.7"},
		"X-Forwarded-Host":  {"app.example.test"},
		"X-Forwarded-Proto": {"http"},
	}
	expected := own.Clone()
	for k, v := range want.identity {
		expected[k] = []string{v}
	}
	if want.cookie != "" {
		expected["Cookie"] = []string{want.cookie}
	}
	for _, build := range []string{"compiled", "interpreted"} {
		h, up := handlers[build], upstreams[build]
		// Twice: the first request verifies the session, the second is
		// answered from the session cache, a different code path.
		for _, round := range []string{"cold", "cached"} {
			req := httptest.NewRequest(http.MethodGet, "http://app.example.test/reports?x=1", nil)
			for k, v := range own {
				req.Header[k] = v
			}
			for k, v := range spoofs(want.identity) {
				req.Header[k] = v
			}
			req.Header.Set("Cookie", "theme=dark; wos-session="+s.sealed+"; lang=en")
			rec := httptest.NewRecorder()
			before := up.calls
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || up.calls != before+1 {
				t.Fatalf("%s, %s: status %d, Location %q; the signed-in request did not reach the upstream",
					build, round, rec.Code, rec.Header().Get("Location"))
			}
			if diff := cmp.Diff(expected, redacted(up.header, s.sealed)); diff != "" {
				t.Errorf("%s, %s: upstream headers (-promised +received):\n%s", build, round, diff)
			}
			for k := range up.header {
				if lower := strings.ToLower(k); strings.HasPrefix(lower, "x-workos") || lower == "x-url" || lower == "x-redirect-uri" {
					t.Errorf("%s, %s: the upstream received %s", build, round, k)
				}
			}
		}

		req := httptest.NewRequest(http.MethodGet, "http://app.example.test/reports", nil)
		req.Header.Set("Accept", "text/html")
		for k, v := range spoofs(want.identity) {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		before := up.calls
		h.ServeHTTP(rec, req)
		if up.calls != before || rec.Code != http.StatusTemporaryRedirect ||
			!strings.Contains(rec.Header().Get("Location"), "/user_management/authorize") {
			t.Errorf("%s, signed out: status %d, Location %q, upstream reached %v; want the sign-in redirect",
				build, rec.Code, rec.Header().Get("Location"), up.calls != before)
		}
	}
}

// redacted returns h with the sealed session replaced by a placeholder, so
// a failure message shows where it went without printing it.
func redacted(h http.Header, sealed string) http.Header {
	out := http.Header{}
	for k, values := range h {
		for _, v := range values {
			out[k] = append(out[k], strings.ReplaceAll(v, sealed, "<the sealed session>"))
		}
	}
	return out
}

// expectLoads checks what a configuration's keys become: every key is one
// Config takes, both builds decode it alike, and New accepts it compiled
// and interpreted (an unknown identity field or a reserved header name
// fails there).
func expectLoads(t *testing.T, s *signedIn, raw map[string]any, name string) {
	t.Helper()
	if keys := unknownKeys(raw); len(keys) != 0 {
		t.Errorf("keys no Config field takes (Traefik would drop them): %v", keys)
	}
	interpreted, err := decodeInterpreted(cachedPlugin(t), raw)
	if err != nil {
		t.Fatalf("interpreted decode: %v", err)
	}
	compiled, err := decodeCompiled(raw)
	if err != nil {
		t.Fatalf("compiled decode: %v", err)
	}
	if diff := cmp.Diff(compiled, interpreted); diff != "" {
		t.Errorf("interpreted and compiled Config differ (-compiled +interpreted):\n%s", diff)
	}
	if _, _, err := builds(t, s.with(raw), name); err != nil {
		t.Error(err)
	}
}

// TestREADMEExamples loads every marked configuration of the README's
// "Putting any service behind it" through Traefik's file provider and the
// plugin, and checks the headers each one promises.
func TestREADMEExamples(t *testing.T) {
	examples, err := readmeExamples(readREADME(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkExampleNames(examples); err != nil {
		t.Fatal(err)
	}
	s := newSignedIn(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			middlewares := authkitMiddlewares(t, ex.yaml, "")
			if len(middlewares) != 1 {
				t.Fatalf("%d middlewares in the block, want one", len(middlewares))
			}
			for name, raw := range middlewares {
				t.Run("loads", func(t *testing.T) { expectLoads(t, s, raw, name) })
				t.Run("upstream headers", func(t *testing.T) {
					expectUpstreamHeaders(t, s, raw, name, readmeExampleWants[ex.name])
				})
			}
		})
	}
}

// TestREADMEExampleChecksFail shows that the checks above catch what they
// are for: a README without one of the examples, a block without a
// marker, a misspelled key, an unknown field and a reserved header name.
func TestREADMEExampleChecksFail(t *testing.T) {
	readme := readREADME(t)
	t.Run("an example removed", func(t *testing.T) {
		start := strings.Index(readme, "<!-- example: grafana -->\n")
		end := strings.Index(readme[start:], "\n```\n") + start + len("\n```\n")
		examples, err := readmeExamples(readme[:start] + readme[end:])
		if err != nil {
			t.Fatal(err)
		}
		if err := checkExampleNames(examples); err == nil || !strings.Contains(err.Error(), `"grafana" is gone`) {
			t.Errorf("README without the grafana example: error %v", err)
		}
	})
	t.Run("a block without its marker", func(t *testing.T) {
		broken := strings.Replace(readme, "<!-- example: grafana -->\n", "", 1)
		if _, err := readmeExamples(broken); err == nil || !strings.Contains(err.Error(), "without an example marker") {
			t.Errorf("README with an unmarked block: error %v", err)
		}
	})
	t.Run("an example the test does not know", func(t *testing.T) {
		broken := strings.Replace(readme, "<!-- example: grafana -->", "<!-- example: gitea -->", 1)
		examples, err := readmeExamples(broken)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkExampleNames(examples); err == nil || !strings.Contains(err.Error(), `"gitea" has no entry`) {
			t.Errorf("unknown example: error %v", err)
		}
	})
	t.Run("a marker without its block", func(t *testing.T) {
		broken := strings.Replace(readme, "<!-- example: grafana -->\n```yaml", "<!-- example: grafana -->\n\n```yaml", 1)
		if _, err := readmeExamples(broken); err == nil {
			t.Error("a marker separated from its block was accepted")
		}
	})

	examples, err := readmeExamples(readme)
	if err != nil || len(examples) == 0 {
		t.Fatalf("README examples: %v", err)
	}
	s := newSignedIn(t)
	var name string
	var raw map[string]any
	for name, raw = range authkitMiddlewares(t, examples[0].yaml, "") {
	}
	t.Run("a misspelled key", func(t *testing.T) {
		broken := s.with(raw)
		broken["passSessionCookies"] = "false"
		broken["middlewareAuth"] = map[string]any{"enable": "true"}
		if got := unknownKeys(broken); !reflect.DeepEqual(got, []string{"middlewareAuth.enable", "passSessionCookies"}) {
			t.Errorf("unknown keys %v", got)
		}
		if got := unknownKeys(s.with(raw)); len(got) != 0 {
			t.Errorf("unknown keys in the example itself: %v", got)
		}
	})
	for _, tt := range []struct{ name, header, field, want string }{
		{"an unknown field", "X-Forwarded-User", "user.username", `identityHeaders.X-Forwarded-User names unknown field "user.username"`},
		{"a reserved header", "X-Forwarded-For", "user.id", "identityHeaders.X-Forwarded-For collides"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			broken := s.with(raw)
			headers := map[string]any{}
			for k, v := range raw["identityHeaders"].(map[string]any) {
				headers[k] = v
			}
			headers[tt.header] = tt.field
			broken["identityHeaders"] = headers
			cfg, err := decodeCompiled(broken)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := authkit.New(context.Background(), http.NotFoundHandler(), cfg, name); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compiled New: %v, want %q", err, tt.want)
			}
			if _, err := cachedPlugin(t).New(broken, name, http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("interpreted New: %v, want %q", err, tt.want)
			}
		})
	}
}

// dynamicExampleMiddlewares are the authkit middlewares of
// examples/dynamic.yml; the e2e tests and the demo use each of them.
var dynamicExampleMiddlewares = []string{"authkit", "authkit-admin", "authkit-lean"}

// TestDynamicExampleMiddlewares loads every middleware of
// examples/dynamic.yml (TestExamplesAreAcceptedByNew covers the main one
// in all three providers), checks that each router names middlewares that
// exist, and that the lean route's upstream receives what the README
// promises for it: X-Forwarded-* identity, no X-Workos-* header and no
// session cookie.
func TestDynamicExampleMiddlewares(t *testing.T) {
	t.Setenv("AUTHKIT_REFRESH_BUFFER_SECONDS", "")
	path := filepath.Join(repoRoot(t), "examples", "dynamic.yml")
	conf, err := FromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, router := range conf.HTTP.Routers {
		for _, m := range router.Middlewares {
			if _, ok := conf.HTTP.Middlewares[m]; !ok {
				t.Errorf("router %s names middleware %q, which dynamic.yml does not define", name, m)
			}
		}
	}
	middlewares := authkitMiddlewares(t, "", path)
	var names []string
	for name := range middlewares {
		names = append(names, name)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, dynamicExampleMiddlewares) {
		t.Fatalf("dynamic.yml's middlewares %v, want %v", names, dynamicExampleMiddlewares)
	}
	s := newSignedIn(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) { expectLoads(t, s, middlewares[name], name) })
	}

	t.Run("lean decodes", func(t *testing.T) {
		got, err := decodeInterpreted(cachedPlugin(t), middlewares["authkit-lean"])
		if err != nil {
			t.Fatal(err)
		}
		want := withDefaults(func(c *authkit.Config) {
			c.MiddlewareAuth.Enabled = true
			c.NextjsHeaders = false
			c.PassSessionCookie = false
			c.IdentityHeaders = map[string]any{
				"X-Forwarded-User": "user.id", "X-Forwarded-Email": "user.email",
				"X-Forwarded-Groups": "roles", "X-Forwarded-Preferred-Username": "user.name",
			}
			c.RefreshBufferSeconds = "auto"
		})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("authkit-lean (-want +got):\n%s", diff)
		}
	})
	t.Run("lean upstream headers", func(t *testing.T) {
		expectUpstreamHeaders(t, s, middlewares["authkit-lean"], "authkit-lean", exampleWant{identity: map[string]string{
			"X-Forwarded-User": alice.id, "X-Forwarded-Email": alice.email,
			"X-Forwarded-Groups": alice.roles, "X-Forwarded-Preferred-Username": alice.name,
		}, cookie: "theme=dark; lang=en"})
	})
}
