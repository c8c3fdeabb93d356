package fakeworkos

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// validate POSTs body to the validation endpoint with bearer ("" for no
// Authorization header).
func (f *fixture) validate(bearer, body string) result {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+pathAPIKeyCheck, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return f.do(req)
}

func (f *fixture) validateValue(value string) result {
	f.t.Helper()
	body, _ := json.Marshal(map[string]string{"value": value})
	return f.validate("sk_test_key", string(body))
}

func (f *fixture) createKey(p APIKeyParams) APIKey {
	f.t.Helper()
	k, err := f.fake.CreateAPIKey(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func TestAPIKeyValidation(t *testing.T) {
	cases := []struct {
		name string
		// value creates what is validated.
		value func(f *fixture) string
		// want is the api_key object as JSON, with NOW standing for the
		// fixture's clock; "null" for none.
		want string
	}{
		{
			name: "organization-owned key",
			value: func(f *fixture) string {
				return f.createKey(APIKeyParams{Name: "CI", OrganizationID: OrgAcme}).Value
			},
			want: `{"object":"api_key","name":"CI","owner":{"type":"organization","id":"` + OrgAcme + `"},` +
				`"permissions":[],"last_used_at":null,"expires_at":null,"created_at":"NOW","updated_at":"NOW"}`,
		},
		{
			name: "user-owned key names the user's organization",
			value: func(f *fixture) string {
				return f.createKey(APIKeyParams{Name: "Bob's", OrganizationID: OrgAcme, UserID: "bob@example.com"}).Value
			},
			want: `{"object":"api_key","name":"Bob's","owner":{"type":"user","id":"` + UserBob + `","organization_id":"` + OrgAcme + `"},` +
				`"permissions":[],"last_used_at":null,"expires_at":null,"created_at":"NOW","updated_at":"NOW"}`,
		},
		{
			name: "permissions",
			value: func(f *fixture) string {
				return f.createKey(APIKeyParams{OrganizationID: OrgGlobex, Permissions: []string{"posts:read", "posts:write"}}).Value
			},
			want: `{"object":"api_key","name":"","owner":{"type":"organization","id":"` + OrgGlobex + `"},` +
				`"permissions":["posts:read","posts:write"],"last_used_at":null,"expires_at":null,"created_at":"NOW","updated_at":"NOW"}`,
		},
		{
			name: "expired key is returned with its expires_at",
			value: func(f *fixture) string {
				k := f.createKey(APIKeyParams{OrganizationID: OrgAcme, ExpiresAt: f.clock.Now().Add(time.Hour)})
				f.clock.Advance(2 * time.Hour)
				return k.Value
			},
			want: `{"object":"api_key","name":"","owner":{"type":"organization","id":"` + OrgAcme + `"},` +
				`"permissions":[],"last_used_at":null,"expires_at":"EXPIRES","created_at":"CREATED","updated_at":"CREATED"}`,
		},
		{
			name: "earlier validation shows as last_used_at",
			value: func(f *fixture) string {
				k := f.createKey(APIKeyParams{OrganizationID: OrgAcme})
				f.validateValue(k.Value)
				return k.Value
			},
			want: `{"object":"api_key","name":"","owner":{"type":"organization","id":"` + OrgAcme + `"},` +
				`"permissions":[],"last_used_at":"NOW","expires_at":null,"created_at":"NOW","updated_at":"NOW"}`,
		},
		{
			name:  "unknown value is null",
			value: func(f *fixture) string { return "sk_" + strings.Repeat("x", 40) },
			want:  "null",
		},
		{
			name: "revoked key is null",
			value: func(f *fixture) string {
				k := f.createKey(APIKeyParams{OrganizationID: OrgAcme})
				f.fake.RevokeAPIKey(k.ID)
				return k.Value
			},
			want: "null",
		},
		{
			name:  "the server's own API key is not a validated key",
			value: func(f *fixture) string { return "sk_test_key" },
			want:  "null",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			created := f.clock.Now()
			value := tc.value(f)
			res := f.validateValue(value)
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.raw)
			}
			var body struct {
				APIKey json.RawMessage `json:"api_key"`
			}
			if err := json.Unmarshal([]byte(res.raw), &body); err != nil || body.APIKey == nil {
				t.Fatalf("body %s: %v", res.raw, err)
			}
			if tc.want == "null" {
				if string(body.APIKey) != "null" {
					t.Errorf("api_key %s, want null", body.APIKey)
				}
				return
			}
			var got map[string]any
			_ = json.Unmarshal(body.APIKey, &got)
			id, obfuscated := str(got, "id"), str(got, "obfuscated_value")
			if !regexp.MustCompile(`^api_key_[0-9A-HJKMNP-TV-Z]{26}$`).MatchString(id) {
				t.Errorf("id %q", id)
			}
			if obfuscated != "sk_…"+value[len(value)-4:] {
				t.Errorf("obfuscated_value %q for %q", obfuscated, value)
			}
			delete(got, "id")
			delete(got, "obfuscated_value")
			want := strings.NewReplacer(
				"NOW", apiTime(f.clock.Now()),
				"CREATED", apiTime(created),
				"EXPIRES", apiTime(created.Add(time.Hour)),
			).Replace(tc.want)
			if gotJSON, _ := json.Marshal(got); !sameJSON(t, string(gotJSON), want) {
				t.Errorf("api_key\n%s\nwant\n%s", gotJSON, want)
			}
		})
	}
}

func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

func TestAPIKeyValidationUpdatesLastUsedAt(t *testing.T) {
	f := newFixture(t)
	k := f.createKey(APIKeyParams{OrganizationID: OrgAcme})
	f.validateValue(k.Value)
	f.clock.Advance(time.Minute)
	used := f.clock.Now()
	f.validateValue(k.Value)
	res := f.validateValue(k.Value)
	key, _ := res.body["api_key"].(map[string]any)
	if str(key, "last_used_at") != apiTime(used) {
		t.Errorf("last_used_at %v, want %s", key["last_used_at"], apiTime(used))
	}
}

func TestAPIKeyValidationRejects(t *testing.T) {
	cases := []struct {
		name   string
		bearer string
		body   string
		status int
		code   string
	}{
		{name: "missing bearer", body: `{"value":"sk_x"}`, status: 401, code: "unauthorized"},
		{name: "wrong bearer", bearer: "sk_wrong", body: `{"value":"sk_x"}`, status: 401, code: "unauthorized"},
		{name: "body is not JSON", bearer: "sk_test_key", body: `value=sk_x`, status: 422, code: "invalid_request_parameters"},
		{name: "value missing", bearer: "sk_test_key", body: `{}`, status: 422, code: "invalid_request_parameters"},
		{name: "value not a string", bearer: "sk_test_key", body: `{"value":42}`, status: 422, code: "invalid_request_parameters"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.validate(tc.bearer, tc.body)
			if res.status != tc.status || str(res.body, "code") != tc.code || str(res.body, "message") == "" {
				t.Errorf("got %d %s, want %d with code %q and a message", res.status, res.raw, tc.status, tc.code)
			}
		})
	}
}

func TestCreateAPIKey(t *testing.T) {
	cases := []struct {
		name    string
		params  APIKeyParams
		wantErr bool
	}{
		{name: "organization key", params: APIKeyParams{OrganizationID: OrgAcme}},
		{name: "user key by email", params: APIKeyParams{OrganizationID: OrgGlobex, UserID: "zoe@example.com"}},
		{name: "no organization", params: APIKeyParams{Name: "x"}, wantErr: true},
		{name: "unknown user", params: APIKeyParams{OrganizationID: OrgAcme, UserID: "user_NOPE"}, wantErr: true},
		{name: "user outside the organization", params: APIKeyParams{OrganizationID: OrgGlobex, UserID: UserBob}, wantErr: true},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			k, err := f.fake.CreateAPIKey(tc.params)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && (k.ID == "" || k.OrganizationID != tc.params.OrganizationID) {
				t.Errorf("key %+v", k)
			}
		})
	}
}

func TestAPIKeyValuesAreFreshAndWellFormed(t *testing.T) {
	f := newFixture(t)
	form := regexp.MustCompile(`^sk_[0-9A-Za-z]{40}$`)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		v := f.createKey(APIKeyParams{OrganizationID: OrgAcme}).Value
		if !form.MatchString(v) || seen[v] {
			t.Fatalf("value %q (seen before: %v)", v, seen[v])
		}
		seen[v] = true
	}
}

func TestAPIKeyValidationsCountOnlyPastFaults(t *testing.T) {
	f := newFixture(t)
	f.fake.InjectFault(EndpointAPIKeys, Fault{Kind: FaultServerError, Count: 1, Status: 503})
	if res := f.validateValue("sk_x"); res.status != 503 {
		t.Fatalf("faulted call: %d %s", res.status, res.raw)
	}
	f.validateValue("sk_x")
	f.validate("sk_wrong", `{"value":"sk_x"}`)
	if calls, checks := f.fake.Calls(EndpointAPIKeys), f.fake.APIKeyValidations(); calls != 3 || checks != 2 {
		t.Errorf("Calls = %d, APIKeyValidations = %d, want 3 and 2", calls, checks)
	}
	res := f.control("GET", "/__fake/stats", "", true)
	calls, _ := res.body["calls"].(map[string]any)
	if calls["api_keys"] != 3.0 || res.body["api_key_validations"] != 2.0 {
		t.Errorf("stats %s", res.raw)
	}
}

func TestAPIKeyControl(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		// check runs on a created key's answer.
		check func(t *testing.T, f *fixture, res result)
	}{
		{
			name: "round trip", status: http.StatusCreated,
			body: `{"name":"deploy","organization_id":"` + OrgAcme + `","user_id":"` + UserAlice + `","permissions":["posts:read"],"expires_at":""}`,
			check: func(t *testing.T, f *fixture, res result) {
				value := str(res.body, "value")
				key, _ := f.validateValue(value).body["api_key"].(map[string]any)
				owner, _ := key["owner"].(map[string]any)
				if str(key, "id") != str(res.body, "id") || str(key, "name") != "deploy" || str(owner, "id") != UserAlice ||
					key["expires_at"] != nil || str(res.body, "obfuscated_value") != str(key, "obfuscated_value") {
					t.Errorf("created %s, validated %v", res.raw, key)
				}
			},
		},
		{
			name: "expiry in RFC 3339", status: http.StatusCreated,
			body: `{"organization_id":"` + OrgAcme + `","expires_at":"2030-01-02T03:04:05Z"}`,
			check: func(t *testing.T, f *fixture, res result) {
				if str(res.body, "expires_at") != "2030-01-02T03:04:05.000Z" {
					t.Errorf("created %s", res.raw)
				}
			},
		},
		{
			name: "DELETE revokes", status: http.StatusCreated,
			body: `{"organization_id":"` + OrgAcme + `"}`,
			check: func(t *testing.T, f *fixture, res result) {
				if err := expectStatus(f.control("DELETE", "/__fake/api-keys/"+str(res.body, "id"), "", true), 204); err != nil {
					t.Fatal(err)
				}
				if v := f.validateValue(str(res.body, "value")); v.body["api_key"] != nil {
					t.Errorf("revoked key validated: %s", v.raw)
				}
			},
		},
		{name: "bad expires_at", body: `{"organization_id":"` + OrgAcme + `","expires_at":"tomorrow"}`, status: 400},
		{name: "missing organization", body: `{"name":"x"}`, status: 400},
		{name: "not JSON", body: `name=x`, status: 400},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.control("POST", "/__fake/api-keys", tc.body, true)
			if err := expectStatus(res, tc.status); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, f, res)
			}
		})
	}
}

func TestAPIKeyFaults(t *testing.T) {
	cases := []struct {
		name  string
		fault Fault
		// status 0 means no response at all.
		status int
	}{
		{"invalid_grant", Fault{Kind: FaultInvalidGrant, Count: 1}, http.StatusBadRequest},
		{"rate limit", Fault{Kind: FaultRateLimit, Count: 1}, http.StatusTooManyRequests},
		{"JSON 503", Fault{Kind: FaultServerError, Count: 1, Status: 503}, http.StatusServiceUnavailable},
		{"HTML 502", Fault{Kind: FaultHTMLError, Count: 1}, http.StatusBadGateway},
		{"short delay", Fault{Kind: FaultDelay, Count: 1, Delay: 30 * time.Millisecond}, http.StatusOK},
		{"dropped connection", Fault{Kind: FaultDrop, Count: 1}, 0},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.InjectFault(EndpointAPIKeys, tc.fault)
			req, _ := http.NewRequest(http.MethodPost, f.url+pathAPIKeyCheck, strings.NewReader(`{"value":"sk_x"}`))
			req.Header.Set("Authorization", "Bearer sk_test_key")
			resp, err := f.client.Do(req)
			status := 0
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if status != tc.status {
				t.Errorf("status %d (err %v), want %d", status, err, tc.status)
			}
			if after := f.validateValue("sk_x"); after.status != http.StatusOK {
				t.Errorf("fault outlived its count: %d", after.status)
			}
		})
	}
}
