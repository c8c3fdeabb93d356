package authkit

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "API keys".

func apiKeyEnv(t *testing.T, configure func(*Config)) *testEnv {
	t.Helper()
	// Each test gets its own ration, as its own cache.
	sharedAPIKeyValidations = &apiKeyValidations{calls: map[string]*apiKeyCall{}, tokens: apiKeyBurst}
	return newTestEnv(t, func(c *Config) {
		c.AllowAPIKeys = true
		c.MiddlewareAuth.Enabled = true
		if configure != nil {
			configure(c)
		}
	})
}

func createKey(t *testing.T, env *testEnv, p fakeworkos.APIKeyParams) fakeworkos.APIKey {
	t.Helper()
	key, err := env.fake.CreateAPIKey(p)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func withKey(value string) request {
	return request{target: "/api/things", headers: map[string]string{"Authorization": "Bearer " + value, "Accept": "application/json"}}
}

func TestAPIKeySignsAClientIn(t *testing.T) {
	env := apiKeyEnv(t, nil)
	orgKey := createKey(t, env, fakeworkos.APIKeyParams{Name: "ci", OrganizationID: fakeworkos.OrgAcme, Permissions: []string{"posts:read", "posts:write"}})
	userKey := createKey(t, env, fakeworkos.APIKeyParams{Name: "bob's", OrganizationID: fakeworkos.OrgAcme, UserID: fakeworkos.UserBob, Permissions: []string{"posts:read"}})
	tests := []struct {
		name string
		key  fakeworkos.APIKey
		want map[string]string
	}{
		{"owned by an organization", orgKey, map[string]string{
			"X-Workos-Api-Key-Id": orgKey.ID, "X-Workos-Organization-Id": fakeworkos.OrgAcme,
			"X-Workos-Permissions": "posts:read,posts:write", "X-Workos-User-Id": "", "X-Workos-User-Email": "",
		}},
		{"owned by a user", userKey, map[string]string{
			"X-Workos-Api-Key-Id": userKey.ID, "X-Workos-Organization-Id": fakeworkos.OrgAcme,
			"X-Workos-User-Id": fakeworkos.UserBob, "X-Workos-Permissions": "posts:read",
		}},
	}
	for _, tt := range tests {
		w := env.do(withKey(tt.key.Value))
		if w.Code != http.StatusOK || len(w.Result().Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("%s: status %d, cookies %v", tt.name, w.Code, w.Result().Header.Values("Set-Cookie"))
		}
		h := env.upstream.last()
		for name, want := range tt.want {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", tt.name, name, got, want)
			}
		}
		if h.Get("Authorization") != "Bearer "+tt.key.Value {
			t.Errorf("%s: the verified key did not go on unchanged", tt.name)
		}
	}
	if strings.Contains(env.logs.String(), orgKey.Value) || strings.Contains(env.logs.String(), userKey.Value) {
		t.Fatalf("a key reached the log: %s", env.logs)
	}
}

func TestAPIKeyRefusals(t *testing.T) {
	env := apiKeyEnv(t, nil)
	expired := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme, ExpiresAt: time.Now().Add(-time.Hour)})
	revoked := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme})
	env.fake.RevokeAPIKey(revoked.ID)
	tests := []struct{ name, value string }{
		{"unknown to WorkOS", "sk_test_unknown_0123456789abcdefghijklmnop"},
		{"expired", expired.Value},
		{"revoked", revoked.Value},
		{"not a key at all", "sk test; with spaces"},
	}
	for _, tt := range tests {
		w := env.do(withKey(tt.value))
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: status %d, WWW-Authenticate %q", tt.name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestAPIKeyOutageIsNot401: when WorkOS cannot answer, the client is told
// to retry, and nothing is cached: the key works once WorkOS is back.
func TestAPIKeyOutageIsNot401(t *testing.T) {
	faults := []struct {
		name  string
		fault fakeworkos.Fault
	}{
		{"JSON 500", fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 500}},
		{"HTML 502", fakeworkos.Fault{Kind: fakeworkos.FaultHTMLError, Status: 502}},
		{"429", fakeworkos.Fault{Kind: fakeworkos.FaultRateLimit, RetryAfter: 3}},
		{"dropped connection", fakeworkos.Fault{Kind: fakeworkos.FaultDrop}},
	}
	for _, f := range faults {
		env := apiKeyEnv(t, nil)
		key := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme})
		fault := f.fault
		fault.Count = 1
		env.fake.InjectFault(fakeworkos.EndpointAPIKeys, fault)
		w := env.do(withKey(key.Value))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: status %d, Retry-After %q; want 503 with Retry-After", f.name, w.Code, w.Header().Get("Retry-After"))
		}
		if w := env.do(withKey(key.Value)); w.Code != http.StatusOK {
			t.Errorf("%s: after the outage: status %d", f.name, w.Code)
		}
	}
}

func TestAPIKeyResultsAreCached(t *testing.T) {
	env := apiKeyEnv(t, nil)
	key := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme})
	unknown := "sk_test_unknown_0123456789abcdefghijklmnop"
	for i := 0; i < 100; i++ {
		env.do(withKey(key.Value))
		env.do(withKey(unknown))
	}
	if got := env.fake.Calls(fakeworkos.EndpointAPIKeys); got != 2 {
		t.Fatalf("%d validations for 200 requests with two keys, want 2", got)
	}
	env.shiftClock(apiKeyInvalidFor + time.Second)
	env.do(withKey(unknown))
	env.do(withKey(key.Value))
	if got := env.fake.Calls(fakeworkos.EndpointAPIKeys); got != 3 {
		t.Fatalf("after a minute: %d validations; want the unknown key checked again, the valid one still cached", got)
	}
	env.shiftClock(apiKeyValidFor + time.Second)
	env.do(withKey(key.Value))
	if got := env.fake.Calls(fakeworkos.EndpointAPIKeys); got != 4 {
		t.Fatalf("after five minutes: %d validations, want the valid key checked again", got)
	}
}

func TestAPIKeyIsValidatedOnceAtATime(t *testing.T) {
	env := apiKeyEnv(t, nil)
	key := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme})
	env.fake.InjectFault(fakeworkos.EndpointAPIKeys, fakeworkos.Fault{Kind: fakeworkos.FaultDelay, Delay: 200 * time.Millisecond, Count: 1})
	var wg sync.WaitGroup
	codes := make([]int, 40)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = env.do(withKey(key.Value)).Code
		}(i)
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	if got := env.fake.Calls(fakeworkos.EndpointAPIKeys); got != 1 {
		t.Fatalf("%d validations for 40 concurrent requests with one key, want 1", got)
	}
}

// TestAPIKeyAnswerIsCachedBeforeTheCallEnds: a request with the key that
// arrives just after the validation left the in-flight table finds the
// answer cached, rather than starting a second validation.
func TestAPIKeyAnswerIsCachedBeforeTheCallEnds(t *testing.T) {
	env := apiKeyEnv(t, nil)
	key := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme})
	code := 0
	sharedAPIKeyValidations.left = func() {
		sharedAPIKeyValidations.left = nil
		code = env.do(withKey(key.Value)).Code
	}
	if got := env.do(withKey(key.Value)).Code; got != http.StatusOK || code != http.StatusOK {
		t.Fatalf("statuses %d and %d, want 200 twice", got, code)
	}
	if got := env.fake.Calls(fakeworkos.EndpointAPIKeys); got != 1 {
		t.Fatalf("%d validations, want 1: the second request came after the call had left the table, and before its answer was cached", got)
	}
}

// TestAPIKeyFloodIsRationed: made-up keys cost a validation each, so past
// a ration the plugin answers 503 without asking WorkOS.
func TestAPIKeyFloodIsRationed(t *testing.T) {
	env := apiKeyEnv(t, nil)
	unavailable := 0
	for i := 0; i < 200; i++ {
		switch env.do(withKey("sk_test_made_up_" + strconv.Itoa(i) + "_0123456789abcdef")).Code {
		case http.StatusServiceUnavailable:
			unavailable++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("made-up key %d was let in", i)
		}
	}
	if calls := env.fake.Calls(fakeworkos.EndpointAPIKeys); calls > apiKeyBurst+apiKeyCallsPerSecond || unavailable == 0 {
		t.Fatalf("%d validations for 200 made-up keys, %d answered 503; want at most the burst and the rest rationed", calls, unavailable)
	}
}

func TestAPIKeyRequirements(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Config)
		want      int
	}{
		{"a permission the key has", func(c *Config) { c.RequiredPermissions = []string{"posts:read"} }, http.StatusOK},
		{"a permission it lacks", func(c *Config) { c.RequiredPermissions = []string{"users:manage"} }, http.StatusForbidden},
		{"its organization", func(c *Config) { c.AllowedOrganizations = []string{fakeworkos.OrgAcme} }, http.StatusOK},
		{"another organization", func(c *Config) { c.AllowedOrganizations = []string{fakeworkos.OrgGlobex} }, http.StatusForbidden},
		{"a role, which keys cannot have", func(c *Config) { c.RequiredRoles = []string{"admin"} }, http.StatusForbidden},
		{"recent authentication, which keys cannot have", func(c *Config) { c.MaxAuthAgeSeconds = "300" }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		env := apiKeyEnv(t, tt.configure)
		key := createKey(t, env, fakeworkos.APIKeyParams{OrganizationID: fakeworkos.OrgAcme, Permissions: []string{"posts:read"}})
		for _, round := range []string{"first", "cached"} {
			if w := env.do(withKey(key.Value)); w.Code != tt.want {
				t.Errorf("%s (%s): status %d, want %d", tt.name, round, w.Code, tt.want)
			}
		}
	}
}
