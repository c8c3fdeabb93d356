package providers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/loader"
)

// specKeys is SPEC.md's configuration table, kept here by hand on purpose:
// parsing the Markdown would make this test as fragile as the prose. A key
// added to SPEC needs a line here, a Config field and a keyCases entry;
// the tests below say which one is missing.
var specKeys = []string{
	"clientId", "apiKey", "cookiePassword", "cookiePasswords", "redirectUri",
	"apiHostname", "apiHttps", "apiPort",
	"cookieName", "cookieDomain", "cookieMaxAge", "cookieSameSite",
	"debug", "screenHint", "eagerAuth", "refreshBufferSeconds",
	"middlewareAuth.enabled", "middlewareAuth.unauthenticatedPaths", "signUpPaths",
	"signInPath", "signOutPath", "signOutReturnTo", "returnPathname", "baseUrl",
	"forwardAccessToken",
	"requiredPermissions", "requiredRoles", "allowedOrganizations", "requiredEntitlements", "requiredFeatureFlags",
	"allowBearerTokens", "switchOrganizationPath",
	"nextjsHeaders", "identityHeaders", "passSessionCookie", "passCorsPreflight",
	"issuer", "allowApiKeys", "maxAuthAgeSeconds", "returnOrigins", "redisUrl",
}

// configField is one leaf of the compiled Config: its dotted json-tag key
// and its dotted Go field path.
type configField struct{ key, goPath string }

// configFields flattens the compiled Config's nested structs (middlewareAuth)
// into dotted keys, the way SPEC and labels spell them.
func configFields(t reflect.Type, keyPrefix, goPrefix string) []configField {
	var out []configField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "" {
			key = f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, configFields(f.Type, keyPrefix+key+".", goPrefix+f.Name+".")...)
			continue
		}
		out = append(out, configField{key: keyPrefix + key, goPath: goPrefix + f.Name})
	}
	return out
}

// TestSpecKeysAreConfigFields keeps SPEC's key list and the Config struct in
// step, in both directions, and checks that every documented key can reach
// its field at all: Traefik decodes with mapstructure, which ignores json
// tags and matches the Go field name case-insensitively, so a json tag that
// differs from its field name by more than case documents a key Traefik
// would silently drop.
func TestSpecKeysAreConfigFields(t *testing.T) {
	fields := configFields(reflect.TypeOf(authkit.Config{}), "", "")
	byKey := map[string]configField{}
	for _, f := range fields {
		byKey[f.key] = f
	}
	spec := map[string]bool{}
	for _, k := range specKeys {
		spec[k] = true
	}

	t.Run("every SPEC key is a Config field", func(t *testing.T) {
		for _, k := range specKeys {
			if _, ok := byKey[k]; !ok {
				t.Errorf("SPEC key %q has no Config field with that json tag", k)
			}
		}
	})
	t.Run("every Config field is a SPEC key", func(t *testing.T) {
		for _, f := range fields {
			if !spec[f.key] {
				t.Errorf("Config.%s (json %q) is not in SPEC's table", f.goPath, f.key)
			}
		}
	})
	t.Run("json tags match field names as mapstructure does", func(t *testing.T) {
		for _, f := range fields {
			keyParts, goParts := strings.Split(f.key, "."), strings.Split(f.goPath, ".")
			for i := range keyParts {
				if !strings.EqualFold(keyParts[i], goParts[i]) {
					t.Errorf("key %q: Traefik matches field %s, not the json tag", f.key, f.goPath)
				}
			}
		}
	})
}

// keyCase is one SPEC key written for every provider. yaml is the plugin
// block as a user writes it both in a file-provider file and under a
// Kubernetes Middleware's spec.plugin (the same YAML text, which Traefik's
// file provider turns into strings and kubectl into JSON numbers and
// booleans); labels are the same settings as Docker label suffixes.
type keyCase struct {
	key    string // the SPEC key this case proves
	name   string
	yaml   string
	labels []string
	want   func(*authkit.Config)
	// wantKubernetes, when set, is what the CRD provider's typed values
	// decode to instead of want. It documents a known divergence.
	wantKubernetes func(*authkit.Config)
}

// Values that pass New's validation, so the same cases can later be fed to New.
const (
	password1 = "first-cookie-password-at-least-32-characters"
	password2 = "second-cookie-password-at-least-32-characters"
)

var keyCases = []keyCase{
	{key: "clientId", name: "clientId",
		yaml: "clientId: client_01HXYZ", labels: []string{"clientId=client_01HXYZ"},
		want: func(c *authkit.Config) { c.ClientID = "client_01HXYZ" }},
	{key: "apiKey", name: "apiKey",
		yaml: "apiKey: sk_test_123", labels: []string{"apiKey=sk_test_123"},
		want: func(c *authkit.Config) { c.APIKey = "sk_test_123" }},
	{key: "cookiePassword", name: "cookiePassword",
		yaml: "cookiePassword: " + password1, labels: []string{"cookiePassword=" + password1},
		want: func(c *authkit.Config) { c.CookiePassword = password1 }},
	{key: "cookiePasswords", name: "cookiePasswords with quoted ids",
		yaml:   "cookiePasswords:\n  \"1\": " + password1 + "\n  \"2\": " + password2,
		labels: []string{"cookiePasswords.1=" + password1, "cookiePasswords.2=" + password2},
		want: func(c *authkit.Config) {
			c.CookiePasswords = map[string]string{"1": password1, "2": password2}
		}},
	{key: "redirectUri", name: "redirectUri absolute",
		yaml: "redirectUri: https://app.example.com/callback", labels: []string{"redirectUri=https://app.example.com/callback"},
		want: func(c *authkit.Config) { c.RedirectURI = "https://app.example.com/callback" }},
	{key: "apiHostname", name: "apiHostname",
		yaml: "apiHostname: api.example.test", labels: []string{"apiHostname=api.example.test"},
		want: func(c *authkit.Config) { c.APIHostname = "api.example.test" }},
	{key: "apiHttps", name: "apiHttps false",
		yaml: "apiHttps: false", labels: []string{"apiHttps=false"},
		want: func(c *authkit.Config) { c.APIHTTPS = "false" },
		// mapstructure's weak decoding writes a bool into a string field as
		// "0"/"1". strconv.ParseBool reads both spellings alike, which
		// TestAPIHttpsFalseFromEveryProviderReachesTheAPIOverHTTP shows.
		wantKubernetes: func(c *authkit.Config) { c.APIHTTPS = "0" }},
	{key: "apiPort", name: "apiPort",
		yaml: "apiPort: 8443", labels: []string{"apiPort=8443"},
		want: func(c *authkit.Config) { c.APIPort = "8443" }},
	{key: "cookieName", name: "cookieName",
		yaml: "cookieName: app-session", labels: []string{"cookieName=app-session"},
		want: func(c *authkit.Config) { c.CookieName = "app-session" }},
	{key: "cookieDomain", name: "cookieDomain",
		yaml: "cookieDomain: .example.com", labels: []string{"cookieDomain=.example.com"},
		want: func(c *authkit.Config) { c.CookieDomain = ".example.com" }},
	{key: "cookieMaxAge", name: "cookieMaxAge",
		yaml: "cookieMaxAge: 34560000", labels: []string{"cookieMaxAge=34560000"},
		want: func(c *authkit.Config) { c.CookieMaxAge = "34560000" }},
	{key: "cookieSameSite", name: "cookieSameSite",
		yaml: "cookieSameSite: strict", labels: []string{"cookieSameSite=strict"},
		want: func(c *authkit.Config) { c.CookieSameSite = "strict" }},
	{key: "debug", name: "debug",
		yaml: "debug: true", labels: []string{"debug=true"},
		want: func(c *authkit.Config) { c.Debug = true }},
	{key: "screenHint", name: "screenHint",
		yaml: "screenHint: sign-up", labels: []string{"screenHint=sign-up"},
		want: func(c *authkit.Config) { c.ScreenHint = "sign-up" }},
	{key: "eagerAuth", name: "eagerAuth",
		yaml: "eagerAuth: true", labels: []string{"eagerAuth=true"},
		want: func(c *authkit.Config) { c.EagerAuth = true }},
	{key: "refreshBufferSeconds", name: "refreshBufferSeconds number",
		yaml: "refreshBufferSeconds: 45", labels: []string{"refreshBufferSeconds=45"},
		want: func(c *authkit.Config) { c.RefreshBufferSeconds = "45" }},
	// Zero means "refresh only after expiry"; a decoder that treated it as
	// unset would silently restore the automatic buffer.
	{key: "refreshBufferSeconds", name: "refreshBufferSeconds zero",
		yaml: "refreshBufferSeconds: 0", labels: []string{"refreshBufferSeconds=0"},
		want: func(c *authkit.Config) { c.RefreshBufferSeconds = "0" }},
	{key: "refreshBufferSeconds", name: "refreshBufferSeconds auto",
		yaml: "refreshBufferSeconds: auto", labels: []string{"refreshBufferSeconds=auto"},
		want: func(c *authkit.Config) { c.RefreshBufferSeconds = "auto" }},
	{key: "middlewareAuth.enabled", name: "middlewareAuth.enabled nested",
		yaml: "middlewareAuth:\n  enabled: true", labels: []string{"middlewareAuth.enabled=true"},
		want: func(c *authkit.Config) { c.MiddlewareAuth.Enabled = true }},
	{key: "middlewareAuth.unauthenticatedPaths", name: "middlewareAuth.unauthenticatedPaths nested list",
		yaml:   "middlewareAuth:\n  unauthenticatedPaths:\n    - /\n    - /public/:path*",
		labels: []string{"middlewareAuth.unauthenticatedPaths=/,/public/:path*"},
		want:   func(c *authkit.Config) { c.MiddlewareAuth.UnauthenticatedPaths = []string{"/", "/public/:path*"} }},
	{key: "signUpPaths", name: "signUpPaths list",
		yaml: "signUpPaths:\n  - /join\n  - /register", labels: []string{"signUpPaths=/join,/register"},
		want: func(c *authkit.Config) { c.SignUpPaths = []string{"/join", "/register"} }},
	{key: "signInPath", name: "signInPath",
		yaml: "signInPath: /login", labels: []string{"signInPath=/login"},
		want: func(c *authkit.Config) { c.SignInPath = "/login" }},
	{key: "signOutPath", name: "signOutPath",
		yaml: "signOutPath: /logout", labels: []string{"signOutPath=/logout"},
		want: func(c *authkit.Config) { c.SignOutPath = "/logout" }},
	{key: "signOutReturnTo", name: "signOutReturnTo URL",
		yaml: "signOutReturnTo: https://www.example.com/", labels: []string{"signOutReturnTo=https://www.example.com/"},
		want: func(c *authkit.Config) { c.SignOutReturnTo = "https://www.example.com/" }},
	{key: "returnPathname", name: "returnPathname",
		yaml: "returnPathname: /dashboard", labels: []string{"returnPathname=/dashboard"},
		want: func(c *authkit.Config) { c.ReturnPathname = "/dashboard" }},
	{key: "baseUrl", name: "baseUrl",
		yaml: "baseUrl: https://app.example.com", labels: []string{"baseUrl=https://app.example.com"},
		want: func(c *authkit.Config) { c.BaseURL = "https://app.example.com" }},
	{key: "forwardAccessToken", name: "forwardAccessToken",
		yaml: "forwardAccessToken: true", labels: []string{"forwardAccessToken=true"},
		want: func(c *authkit.Config) { c.ForwardAccessToken = true }},
	{key: "requiredPermissions", name: "requiredPermissions list",
		yaml: "requiredPermissions:\n  - posts:read\n  - posts:write", labels: []string{"requiredPermissions=posts:read,posts:write"},
		want: func(c *authkit.Config) { c.RequiredPermissions = []string{"posts:read", "posts:write"} }},
	{key: "requiredRoles", name: "requiredRoles list",
		yaml: "requiredRoles:\n  - admin\n  - owner", labels: []string{"requiredRoles=admin,owner"},
		want: func(c *authkit.Config) { c.RequiredRoles = []string{"admin", "owner"} }},
	{key: "allowedOrganizations", name: "allowedOrganizations list",
		yaml: "allowedOrganizations:\n  - org_01A\n  - org_01B", labels: []string{"allowedOrganizations=org_01A,org_01B"},
		want: func(c *authkit.Config) { c.AllowedOrganizations = []string{"org_01A", "org_01B"} }},
	{key: "requiredEntitlements", name: "requiredEntitlements list",
		yaml: "requiredEntitlements:\n  - audit-logs\n  - sso", labels: []string{"requiredEntitlements=audit-logs,sso"},
		want: func(c *authkit.Config) { c.RequiredEntitlements = []string{"audit-logs", "sso"} }},
	{key: "requiredFeatureFlags", name: "requiredFeatureFlags list",
		yaml: "requiredFeatureFlags:\n  - beta-dashboard\n  - new-nav", labels: []string{"requiredFeatureFlags=beta-dashboard,new-nav"},
		want: func(c *authkit.Config) { c.RequiredFeatureFlags = []string{"beta-dashboard", "new-nav"} }},
	{key: "allowBearerTokens", name: "allowBearerTokens",
		yaml: "allowBearerTokens: true", labels: []string{"allowBearerTokens=true"},
		want: func(c *authkit.Config) { c.AllowBearerTokens = true }},
	{key: "switchOrganizationPath", name: "switchOrganizationPath",
		yaml: "switchOrganizationPath: /auth/org", labels: []string{"switchOrganizationPath=/auth/org"},
		want: func(c *authkit.Config) { c.SwitchOrganizationPath = "/auth/org" }},
	{key: "nextjsHeaders", name: "nextjsHeaders false",
		yaml: "nextjsHeaders: false", labels: []string{"nextjsHeaders=false"},
		want: func(c *authkit.Config) { c.NextjsHeaders = false }},
	{key: "identityHeaders", name: "identityHeaders map",
		yaml:   "identityHeaders:\n  X-Forwarded-User: user.id\n  X-WEBAUTH-EMAIL: user.email",
		labels: []string{"identityHeaders.X-Forwarded-User=user.id", "identityHeaders.X-WEBAUTH-EMAIL=user.email"},
		want: func(c *authkit.Config) {
			c.IdentityHeaders = map[string]any{"X-Forwarded-User": "user.id", "X-WEBAUTH-EMAIL": "user.email"}
		}},
	// An empty map sends no identity header. The file provider and labels
	// hand it over as "", the CRD as an empty map; both decode.
	{key: "identityHeaders", name: "identityHeaders empty",
		yaml: "identityHeaders: {}", labels: []string{"identityHeaders="},
		want:           func(c *authkit.Config) { c.IdentityHeaders = "" },
		wantKubernetes: func(c *authkit.Config) { c.IdentityHeaders = map[string]any{} }},
	{key: "passSessionCookie", name: "passSessionCookie false",
		yaml: "passSessionCookie: false", labels: []string{"passSessionCookie=false"},
		want: func(c *authkit.Config) { c.PassSessionCookie = false }},
	{key: "issuer", name: "issuer list",
		yaml:   "issuer:\n  - https://api.workos.com/\n  - https://auth.example.com",
		labels: []string{"issuer=https://api.workos.com/,https://auth.example.com"},
		want:   func(c *authkit.Config) { c.Issuer = []string{"https://api.workos.com/", "https://auth.example.com"} }},
	{key: "allowApiKeys", name: "allowApiKeys",
		yaml: "allowApiKeys: true", labels: []string{"allowApiKeys=true"},
		want: func(c *authkit.Config) { c.AllowAPIKeys = true }},
	{key: "maxAuthAgeSeconds", name: "maxAuthAgeSeconds",
		yaml: "maxAuthAgeSeconds: 600", labels: []string{"maxAuthAgeSeconds=600"},
		want: func(c *authkit.Config) { c.MaxAuthAgeSeconds = "600" }},
	{key: "returnOrigins", name: "returnOrigins with a wildcard",
		yaml:   "returnOrigins:\n  - https://app.example.com\n  - https://*.example.com",
		labels: []string{"returnOrigins=https://app.example.com,https://*.example.com"},
		want: func(c *authkit.Config) {
			c.ReturnOrigins = []string{"https://app.example.com", "https://*.example.com"}
		}},
	{key: "redisUrl", name: "redisUrl",
		yaml: "redisUrl: rediss://redis.internal:6380/2", labels: []string{"redisUrl=rediss://redis.internal:6380/2"},
		want: func(c *authkit.Config) { c.RedisURL = "rediss://redis.internal:6380/2" }},
	{key: "passCorsPreflight", name: "passCorsPreflight",
		yaml: "passCorsPreflight: true", labels: []string{"passCorsPreflight=true"},
		want: func(c *authkit.Config) { c.PassCorsPreflight = true }},
}

// TestEveryKeyHasAProviderCase makes keyCases a complete proof: each SPEC
// key is decoded from every provider by at least one case, and no case
// claims a key SPEC does not have.
func TestEveryKeyHasAProviderCase(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range keyCases {
		covered[c.key] = true
	}
	for _, k := range specKeys {
		if !covered[k] {
			t.Errorf("SPEC key %q has no keyCases entry", k)
		}
		delete(covered, k)
	}
	for k := range covered {
		t.Errorf("keyCases entry for %q, which is not a SPEC key", k)
	}
}

// providerKind is one way a configuration reaches Traefik.
type providerKind struct {
	name   string
	decode func(c keyCase) (map[string]any, error)
}

var providerKinds = []providerKind{
	{name: "file", decode: func(c keyCase) (map[string]any, error) {
		return FilePluginConfig(middlewareName, pluginName, c.yaml)
	}},
	{name: "docker labels", decode: func(c keyCase) (map[string]any, error) {
		return LabelPluginConfig(middlewareName, pluginName, c.labels...)
	}},
	{name: "kubernetes CRD", decode: func(c keyCase) (map[string]any, error) {
		return KubernetesPluginConfig(middlewareName, pluginName, c.yaml)
	}},
}

// TestProvidersDeliverDifferentTypes shows that the providers really hand
// the plugin differently typed maps (YAEGI.md's decoding notes), so the
// agreement TestKeysDecodeIdenticallyFromEveryProvider finds is the work of
// Traefik's decoding and not of three identical inputs.
func TestProvidersDeliverDifferentTypes(t *testing.T) {
	c := keyCase{
		yaml:   "apiPort: 8443\ndebug: true\nrequiredRoles: [admin, owner]",
		labels: []string{"apiPort=8443", "debug=true", "requiredRoles=admin,owner"},
	}
	want := map[string]map[string]any{
		"file":           {"apiPort": "8443", "debug": "true", "requiredRoles": []any{"admin", "owner"}},
		"docker labels":  {"apiPort": "8443", "debug": "true", "requiredRoles": "admin,owner"},
		"kubernetes CRD": {"apiPort": float64(8443), "debug": true, "requiredRoles": []any{"admin", "owner"}},
	}
	for _, pk := range providerKinds {
		t.Run(pk.name, func(t *testing.T) {
			raw, err := pk.decode(c)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[pk.name], raw); diff != "" {
				t.Errorf("plugin settings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeysDecodeIdenticallyFromEveryProvider is the core proof: for every
// SPEC key, the file provider, Docker labels and a Kubernetes Middleware
// produce maps of different Go types, and Traefik's decoding turns each into
// the same Config, in the interpreter Traefik runs and in the compiled build
// the unit tests use.
func TestKeysDecodeIdenticallyFromEveryProvider(t *testing.T) {
	p := cachedPlugin(t)
	for _, kc := range keyCases {
		for _, pk := range providerKinds {
			t.Run(kc.name+"/"+pk.name, func(t *testing.T) {
				raw, err := pk.decode(kc)
				if err != nil {
					t.Fatalf("provider: %v", err)
				}
				want := withDefaults(kc.want)
				if pk.name == "kubernetes CRD" && kc.wantKubernetes != nil {
					want = withDefaults(kc.wantKubernetes)
				}
				interpreted, err := decodeInterpreted(p, raw)
				if err != nil {
					t.Fatalf("interpreted decode of %#v: %v", raw, err)
				}
				if diff := cmp.Diff(want, interpreted); diff != "" {
					t.Errorf("interpreted Config from %#v (-want +got):\n%s", raw, diff)
				}
				compiled, err := decodeCompiled(raw)
				if err != nil {
					t.Fatalf("compiled decode of %#v: %v", raw, err)
				}
				if diff := cmp.Diff(want, compiled); diff != "" {
					t.Errorf("compiled Config from %#v (-want +got):\n%s", raw, diff)
				}
			})
		}
	}
}

// TestListShapesDecodeToTheSameList covers every spelling of a list that a
// provider can deliver, for one list key (all list keys share the field
// type, and the decoding hook is per type): SPEC promises that a YAML list
// and one comma-separated label string are interchangeable.
func TestListShapesDecodeToTheSameList(t *testing.T) {
	p := cachedPlugin(t)
	two := []string{"admin", "owner"}
	tests := []struct {
		name   string
		decode func() (map[string]any, error)
		want   []string
	}{
		{name: "file YAML list", want: two, decode: func() (map[string]any, error) {
			return FilePluginConfig(middlewareName, pluginName, "requiredRoles: [admin, owner]")
		}},
		{name: "file comma-separated string", want: two, decode: func() (map[string]any, error) {
			return FilePluginConfig(middlewareName, pluginName, "requiredRoles: admin,owner")
		}},
		{name: "file single item", want: []string{"admin"}, decode: func() (map[string]any, error) {
			return FilePluginConfig(middlewareName, pluginName, "requiredRoles: admin")
		}},
		{name: "label comma-separated string", want: two, decode: func() (map[string]any, error) {
			return LabelPluginConfig(middlewareName, pluginName, "requiredRoles=admin,owner")
		}},
		{name: "label indexed entries", want: two, decode: func() (map[string]any, error) {
			return LabelPluginConfig(middlewareName, pluginName, "requiredRoles[0]=admin", "requiredRoles[1]=owner")
		}},
		{name: "label single item", want: []string{"admin"}, decode: func() (map[string]any, error) {
			return LabelPluginConfig(middlewareName, pluginName, "requiredRoles=admin")
		}},
		{name: "kubernetes array", want: two, decode: func() (map[string]any, error) {
			return KubernetesPluginConfig(middlewareName, pluginName, "requiredRoles: [admin, owner]")
		}},
		{name: "kubernetes comma-separated string", want: two, decode: func() (map[string]any, error) {
			return KubernetesPluginConfig(middlewareName, pluginName, "requiredRoles: admin,owner")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.decode()
			if err != nil {
				t.Fatalf("provider: %v", err)
			}
			got, err := decodeInterpreted(p, raw)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.RequiredRoles); diff != "" {
				t.Errorf("RequiredRoles from %#v (-want +got):\n%s", raw, diff)
			}
		})
	}
}

// requiredSettings makes New accept a configuration without any
// environment, so behaviour tests can use the shared interpreter.
const requiredSettings = "clientId: client_01HXYZ\napiKey: sk_test_123\ncookiePassword: " + password1 +
	"\nredirectUri: https://app.example.com/callback\n"

var requiredLabels = []string{
	"clientId=client_01HXYZ", "apiKey=sk_test_123", "cookiePassword=" + password1,
	"redirectUri=https://app.example.com/callback",
}

// signInLocation builds the middleware from config in the interpreter and
// returns where its sign-in route redirects: the WorkOS authorize URL,
// which shows the API base URL and client id New settled on.
func signInLocation(t *testing.T, p *loader.Plugin, config map[string]any) string {
	t.Helper()
	h, err := p.New(config, middlewareName, http.NotFoundHandler())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "https://app.example.com/auth/sign-in", nil)
	req.Header.Set("Accept", "text/html")
	h.ServeHTTP(rec, req)
	loc := rec.Header().Get("Location")
	if loc == "" {
		t.Fatalf("sign-in answered %d without Location", rec.Code)
	}
	return loc
}

// TestAPIHttpsFalseFromEveryProviderReachesTheAPIOverHTTP closes the one
// gap TestKeysDecodeIdenticallyFromEveryProvider leaves open: apiHttps is
// a string field (so that unset can fall back to WORKOS_API_HTTPS), and a
// Kubernetes boolean arrives there as "0" rather than "false". What counts
// is that New reads both the same.
func TestAPIHttpsFalseFromEveryProviderReachesTheAPIOverHTTP(t *testing.T) {
	p := cachedPlugin(t)
	const api = "apiHostname: api.example.test\napiPort: 8443\napiHttps: false\n"
	labels := append([]string{"apiHostname=api.example.test", "apiPort=8443", "apiHttps=false"}, requiredLabels...)
	c := keyCase{yaml: requiredSettings + api, labels: labels}
	for _, pk := range providerKinds {
		t.Run(pk.name, func(t *testing.T) {
			raw, err := pk.decode(c)
			if err != nil {
				t.Fatal(err)
			}
			loc := signInLocation(t, p, raw)
			if want := "http://api.example.test:8443/user_management/authorize?"; !strings.HasPrefix(loc, want) {
				t.Errorf("sign-in Location %q, want prefix %q", loc, want)
			}
		})
	}
}

// TestCookiePasswordIDsInYAML pins a file-provider trap: paerser's YAML
// decoding of Traefik v3.6.12 turns an unquoted numeric map key (`2: ...`)
// into the key "<int Value>", so the id is lost, while kubectl's YAML-to-
// JSON conversion and labels keep it. The plugin must then fail in New
// naming cookiePasswords, never run with a wrong keyring.
func TestCookiePasswordIDsInYAML(t *testing.T) {
	p := cachedPlugin(t)
	quoted := "cookiePasswords:\n  \"2\": " + password2 + "\n"
	unquoted := "cookiePasswords:\n  2: " + password2 + "\n"
	tests := []struct {
		name    string
		decode  func() (map[string]any, error)
		wantErr string // "" when New must accept
	}{
		{name: "file provider quoted id", decode: func() (map[string]any, error) {
			return FilePluginConfig(middlewareName, pluginName, requiredSettings+quoted)
		}},
		{name: "file provider unquoted id", wantErr: "cookiePasswords", decode: func() (map[string]any, error) {
			return FilePluginConfig(middlewareName, pluginName, requiredSettings+unquoted)
		}},
		{name: "kubernetes unquoted id", decode: func() (map[string]any, error) {
			return KubernetesPluginConfig(middlewareName, pluginName, requiredSettings+unquoted)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.decode()
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.New(raw, middlewareName, http.NotFoundHandler())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New rejected %#v: %v", raw, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New(%#v) error %v, want one naming %q", raw, err, tt.wantErr)
			}
		})
	}
}

// testSecret is a Secret manifest that plugin settings can reference.
const testSecret = `apiVersion: v1
kind: Secret
metadata:
  name: workos
  namespace: default
type: Opaque
stringData:
  clientId: client_from_secret
  password2: ` + password2 + `
`

// TestKubernetesSecretReferences exercises the CRD provider's own
// resolution of urn:k8s:secret:<name>:<key> values in plugin settings,
// which examples/kubernetes.yml relies on: wherever the string sits
// (top level, in a map, in a list) it is replaced before the plugin sees it,
// and a reference that cannot be resolved fails the Middleware.
func TestKubernetesSecretReferences(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		secrets []string
		want    map[string]any
		wantErr string
	}{
		{name: "top-level value", yaml: "clientId: urn:k8s:secret:workos:clientId", secrets: []string{testSecret},
			want: map[string]any{"clientId": "client_from_secret"}},
		{name: "value inside a map", yaml: "cookiePasswords:\n  \"2\": urn:k8s:secret:workos:password2", secrets: []string{testSecret},
			want: map[string]any{"cookiePasswords": map[string]any{"2": password2}}},
		{name: "list element", yaml: "requiredRoles: [admin, urn:k8s:secret:workos:clientId]", secrets: []string{testSecret},
			want: map[string]any{"requiredRoles": []any{"admin", "client_from_secret"}}},
		{name: "plain strings untouched", yaml: "signOutReturnTo: urn:example:not-a-secret", secrets: []string{testSecret},
			want: map[string]any{"signOutReturnTo": "urn:example:not-a-secret"}},
		{name: "missing secret", yaml: "clientId: urn:k8s:secret:nope:clientId",
			wantErr: "secret default/nope is not found"},
		{name: "missing key", yaml: "clientId: urn:k8s:secret:workos:nope", secrets: []string{testSecret},
			wantErr: `key "nope" not found in secret default/workos`},
		{name: "malformed reference", yaml: "clientId: urn:k8s:secret:workos", secrets: []string{testSecret},
			wantErr: "malformed secret URN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KubernetesPluginConfig(middlewareName, pluginName, tt.yaml, tt.secrets...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plugin settings (-want +got):\n%s", diff)
			}
		})
	}
}

// exampleEnv is what a deployment of the examples supplies: the secrets the
// file and Docker examples leave to the environment.
var exampleEnv = map[string]string{
	"WORKOS_CLIENT_ID":       "client_from_env",
	"WORKOS_API_KEY":         "sk_test_from_env",
	"WORKOS_COOKIE_PASSWORD": password1,
	"WORKOS_REDIRECT_URI":    "http://localhost/callback",
}

// examples are the three shipped example files, each reduced to the plugin
// settings Traefik would hand the plugin.
var examples = []struct {
	name     string
	file     string
	settings func(path string) (map[string]any, error)
}{
	{name: "file provider", file: "dynamic.yml", settings: func(path string) (map[string]any, error) {
		conf, err := FromFile(path)
		if err != nil {
			return nil, err
		}
		return PluginConfig(conf, middlewareName, pluginName)
	}},
	{name: "docker compose labels", file: "docker-compose.yml", settings: func(path string) (map[string]any, error) {
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		labels, err := ComposeLabels(content, "app")
		if err != nil {
			return nil, err
		}
		conf, err := FromLabels(labels)
		if err != nil {
			return nil, err
		}
		return PluginConfig(conf, middlewareName, pluginName)
	}},
	{name: "kubernetes middleware", file: "kubernetes.yml", settings: func(path string) (map[string]any, error) {
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms, err := ParseManifests(content)
		if err != nil {
			return nil, err
		}
		return ms.PluginConfig("default/"+middlewareName, pluginName)
	}},
}

// exampleSettings loads one example's plugin settings from the checkout.
func exampleSettings(t *testing.T, i int) map[string]any {
	t.Helper()
	ex := examples[i]
	raw, err := ex.settings(filepath.Join(repoRoot(t), "examples", ex.file))
	if err != nil {
		t.Fatalf("%s: %v", ex.file, err)
	}
	return raw
}

// TestExamplesAreAcceptedByNew builds each example's middleware with the
// environment a deployment supplies, in the interpreter (whose environment
// is fixed at import, hence a fresh one) and compiled. The interpreter's
// sign-in redirect also shows the client id arrived: from the environment
// for file and Docker, from the referenced Secret for Kubernetes.
func TestExamplesAreAcceptedByNew(t *testing.T) {
	// Unset, so dynamic.yml's template falls back to its default.
	t.Setenv("AUTHKIT_REFRESH_BUFFER_SECONDS", "")
	p := pluginWithEnv(t, exampleEnv)
	wantClient := map[string]string{
		"dynamic.yml":        "client_id=client_from_env",
		"docker-compose.yml": "client_id=client_from_env",
		"kubernetes.yml":     "client_id=client_replace_me",
	}
	for i, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			raw := exampleSettings(t, i)
			if loc := signInLocation(t, p, raw); !strings.Contains(loc, wantClient[ex.file]) {
				t.Errorf("interpreted sign-in Location %q lacks %q", loc, wantClient[ex.file])
			}
			cfg, err := decodeCompiled(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := authkit.New(context.Background(), http.NotFoundHandler(), cfg, middlewareName); err != nil {
				t.Errorf("compiled New: %v", err)
			}
		})
	}
}

// TestExamplesConfigureTheSameMiddleware checks that the three examples are
// one middleware written three ways, so a reader can switch provider
// without changing behaviour. Only Kubernetes carries credentials in the
// configuration (from a Secret); the others take them from the
// environment, so those four fields are left out of the comparison.
func TestExamplesConfigureTheSameMiddleware(t *testing.T) {
	t.Setenv("AUTHKIT_REFRESH_BUFFER_SECONDS", "")
	p := cachedPlugin(t)
	var reference *authkit.Config
	for i, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			cfg, err := decodeInterpreted(p, exampleSettings(t, i))
			if err != nil {
				t.Fatal(err)
			}
			cfg.ClientID, cfg.APIKey, cfg.CookiePassword, cfg.RedirectURI = "", "", "", ""
			if reference == nil {
				reference = cfg
				return
			}
			if diff := cmp.Diff(reference, cfg); diff != "" {
				t.Errorf("%s differs from %s (-%s +%s):\n%s", ex.file, examples[0].file, examples[0].file, ex.file, diff)
			}
		})
	}
}

// TestDynamicExampleTemplate checks that the Go-template expression in
// examples/dynamic.yml renders with the functions Traefik's file provider
// offers, reading the variable when set and the default otherwise.
func TestDynamicExampleTemplate(t *testing.T) {
	tests := []struct {
		name string
		env  string
		want string
	}{
		{name: "variable unset uses the default", env: "", want: "auto"},
		{name: "variable set wins", env: "45", want: "45"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AUTHKIT_REFRESH_BUFFER_SECONDS", tt.env)
			raw := exampleSettings(t, 0)
			if got := raw["refreshBufferSeconds"]; got != tt.want {
				t.Errorf("refreshBufferSeconds %#v, want %q", got, tt.want)
			}
		})
	}
}

// TestComposeLabelSpellings checks ComposeLabels itself, since the Docker
// example test depends on it: Compose accepts labels as a list of
// key=value strings or as a mapping, and both give Docker the same labels.
func TestComposeLabelSpellings(t *testing.T) {
	want := map[string]string{"traefik.enable": "true", "a.b": "x=y"}
	tests := []struct{ name, compose string }{
		{name: "list", compose: "services:\n  app:\n    labels:\n      - traefik.enable=true\n      - a.b=x=y\n"},
		{name: "mapping", compose: "services:\n  app:\n    labels:\n      traefik.enable: \"true\"\n      a.b: x=y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ComposeLabels([]byte(tt.compose), "app")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}
