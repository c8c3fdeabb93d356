package fakeworkos

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The verifier/challenge pair of RFC 7636 Appendix B, so PKCE is checked
// against an independent vector rather than the fake's own code.
const (
	testVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	testChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	testRedirect  = "http://app.test/callback"
	testState     = "Fe26.2*1*ab12*iv_-*ct**cd34*mac~2 +%&="
)

var (
	sharedKeyOnce sync.Once
	sharedKey     *rsa.PrivateKey
)

// testKey shares one RSA key between fixtures: generating one per test
// would dominate the run time.
func testKey() *rsa.PrivateKey {
	sharedKeyOnce.Do(func() { sharedKey = generateKey() })
	return sharedKey
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	t      *testing.T
	fake   *Server
	url    string
	clock  *testClock
	client *http.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with Options changed by edit.
func newFixtureWith(t *testing.T, edit func(o *Options)) *fixture {
	t.Helper()
	clock := &testClock{now: time.Now().Truncate(time.Second)}
	opts := Options{
		ClientID:     "client_TEST",
		APIKey:       "sk_test_key",
		Now:          clock.Now,
		SigningKey:   testKey(),
		RedirectURIs: []string{testRedirect, "http://app.test/callback?tenant=a"},
	}
	if edit != nil {
		edit(&opts)
	}
	fake := New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	// A fresh connection per request keeps a dropped connection from being
	// retried transparently by the transport.
	tr := &http.Transport{DisableKeepAlives: true}
	client := &http.Client{Timeout: 10 * time.Second}
	client.Transport = tr
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }
	return &fixture{t: t, fake: fake, url: srv.URL, clock: clock, client: client}
}

type result struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (f *fixture) do(req *http.Request) result {
	f.t.Helper()
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("reading body: %v", err)
	}
	res := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &res.body); err != nil {
			f.t.Fatalf("JSON body %q: %v", raw, err)
		}
	}
	return res
}

func (f *fixture) get(path string) result {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(req)
}

// authorizeQuery is a valid authorize query as authkit-nextjs sends it,
// changed by edit.
func (f *fixture) authorizeQuery(edit func(q url.Values)) url.Values {
	q := url.Values{
		"client_id":             {"client_TEST"},
		"code_challenge":        {testChallenge},
		"code_challenge_method": {"S256"},
		"provider":              {"authkit"},
		"redirect_uri":          {testRedirect},
		"response_type":         {"code"},
		"screen_hint":           {"sign-in"},
		"state":                 {testState},
	}
	if edit != nil {
		edit(q)
	}
	return q
}

func (f *fixture) authorize(edit func(q url.Values)) result {
	f.t.Helper()
	return f.get(pathAuthorize + "?" + f.authorizeQuery(edit).Encode())
}

// codeFor signs userID in through login_hint and returns the code.
func (f *fixture) codeFor(userID string, edit func(q url.Values)) string {
	f.t.Helper()
	res := f.authorize(func(q url.Values) {
		q.Set("login_hint", userID)
		if edit != nil {
			edit(q)
		}
	})
	if res.status != http.StatusFound {
		f.t.Fatalf("authorize with login_hint: status %d: %s", res.status, res.raw)
	}
	return redirectParams(f.t, res).Get("code")
}

func redirectParams(t *testing.T, res result) url.Values {
	t.Helper()
	loc, err := url.Parse(res.header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", res.header.Get("Location"), err)
	}
	return loc.Query()
}

// authCall is one POST to the authenticate endpoint.
type authCall struct {
	body        map[string]any
	raw         string // sent instead of body when set
	contentType string
	bearer      string
}

func (f *fixture) codeCall(code string) authCall {
	return authCall{
		body: map[string]any{
			"grant_type": "authorization_code", "client_id": "client_TEST",
			"client_secret": "sk_test_key", "code": code, "code_verifier": testVerifier,
		},
		contentType: "application/json",
		bearer:      "sk_test_key",
	}
}

func (f *fixture) refreshCall(refreshToken, orgID string) authCall {
	c := f.codeCall("")
	c.body = map[string]any{
		"grant_type": "refresh_token", "client_id": "client_TEST",
		"client_secret": "sk_test_key", "refresh_token": refreshToken,
	}
	if orgID != "" {
		c.body["organization_id"] = orgID
	}
	return c
}

func (f *fixture) authenticate(c authCall) result {
	f.t.Helper()
	payload := []byte(c.raw)
	if c.raw == "" {
		payload, _ = json.Marshal(c.body)
	}
	req, err := http.NewRequest(http.MethodPost, f.url+pathAuthenticate, bytes.NewReader(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	return f.do(req)
}

// signIn runs the whole code flow for userID and returns the response.
func (f *fixture) signIn(userID string) result {
	f.t.Helper()
	res := f.authenticate(f.codeCall(f.codeFor(userID, nil)))
	if res.status != http.StatusOK {
		f.t.Fatalf("code exchange: status %d: %s", res.status, res.raw)
	}
	return res
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func expectOAuthError(t *testing.T, res result, status int, code string) {
	t.Helper()
	if res.status != status || str(res.body, "error") != code {
		t.Fatalf("got %d %s, want %d with error %q", res.status, res.raw, status, code)
	}
	if str(res.body, "error_description") == "" {
		t.Errorf("error_description is empty: %s", res.raw)
	}
}

// jwtPart decodes part i (0 header, 1 claims) of a compact JWT.
func jwtPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	return m
}

func claimsOf(t *testing.T, res result) map[string]any {
	t.Helper()
	return jwtPart(t, str(res.body, "access_token"), 1)
}

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	cases := []struct {
		name string
		edit func(q url.Values)
		want string
	}{
		{"missing client_id", func(q url.Values) { q.Del("client_id") }, "client_id is missing"},
		{"unknown client_id", func(q url.Values) { q.Set("client_id", "client_OTHER") }, "client_OTHER"},
		{"response_type not code", func(q url.Values) { q.Set("response_type", "token") }, "response_type"},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, "redirect_uri is missing"},
		{"relative redirect_uri", func(q url.Values) { q.Set("redirect_uri", "/callback") }, "/callback"},
		{"redirect_uri outside allow-list", func(q url.Values) { q.Set("redirect_uri", "http://evil.test/cb") }, "evil.test"},
		{"provider missing", func(q url.Values) { q.Del("provider") }, "provider"},
		{"code_challenge missing", func(q url.Values) { q.Del("code_challenge") }, "code_challenge is missing"},
		{"plain challenge method", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "S256"},
		{"challenge is not a digest", func(q url.Values) { q.Set("code_challenge", "abc") }, "SHA-256"},
		{"padded challenge", func(q url.Values) { q.Set("code_challenge", testChallenge+"=") }, "SHA-256"},
		{"unknown screen_hint", func(q url.Values) { q.Set("screen_hint", "register") }, "screen_hint"},
		{"unknown organization", func(q url.Values) { q.Set("organization_id", "org_NOPE") }, "org_NOPE"},
		{"negative max_age", func(q url.Values) { q.Set("max_age", "-1") }, "max_age"},
		{"fractional max_age", func(q url.Values) { q.Set("max_age", "1.5") }, "max_age"},
		{"signed max_age", func(q url.Values) { q.Set("max_age", "+5") }, "max_age"},
		{"empty max_age", func(q url.Values) { q.Set("max_age", "") }, "max_age"},
		{"word max_age", func(q url.Values) { q.Set("max_age", "soon") }, "max_age"},
		{"overflowing max_age", func(q url.Values) { q.Set("max_age", "99999999999999999999") }, "max_age"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.authorize(tc.edit)
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", res.status)
			}
			if !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want HTML", res.header.Get("Content-Type"))
			}
			if !strings.Contains(html.UnescapeString(res.raw), tc.want) {
				t.Errorf("page does not mention %q:\n%s", tc.want, res.raw)
			}
			if n := len(f.fake.AuthorizeRequests()); n != 0 {
				t.Errorf("recorded %d invalid requests", n)
			}
		})
	}
}

func TestAuthorizeSignInPage(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(q url.Values)
		choices  int
		contains []string
		absent   []string
	}{
		{
			name: "lists every user and organization", choices: 6,
			contains: []string{"<h1>Sign in</h1>", "alice@example.com", "Acme Corp", "Globex", "carol@example.com", "no organization", "Zoë"},
		},
		{
			name:     "organization_id narrows to its members",
			edit:     func(q url.Values) { q.Set("organization_id", OrgGlobex) },
			choices:  2,
			contains: []string{"alice@example.com", "zoe@example.com"},
			absent:   []string{"bob@example.com", "carol@example.com"},
		},
		{
			name:     "sign-up screen hint",
			edit:     func(q url.Values) { q.Set("screen_hint", "sign-up") },
			choices:  6,
			contains: []string{"<h1>Sign up</h1>"},
		},
		{
			name:     "unknown login_hint falls back to the page",
			edit:     func(q url.Values) { q.Set("login_hint", "nobody@example.com") },
			choices:  6,
			contains: []string{"nobody@example.com", "matches no test user"},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.authorize(tc.edit)
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.raw)
			}
			page := html.UnescapeString(res.raw)
			if n := strings.Count(page, "<button"); n != tc.choices {
				t.Errorf("%d choices, want %d", n, tc.choices)
			}
			for _, s := range tc.contains {
				if !strings.Contains(page, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(page, s) {
					t.Errorf("page shows %q", s)
				}
			}
		})
	}
}

func TestAuthorizeRecordsRequest(t *testing.T) {
	f := newFixture(t)
	f.authorize(func(q url.Values) {
		q.Set("screen_hint", "sign-up")
		q.Set("organization_id", OrgAcme)
	})
	got := f.fake.AuthorizeRequests()
	if len(got) != 1 {
		t.Fatalf("%d requests recorded, want 1", len(got))
	}
	r := got[0]
	if r.State != testState || r.ScreenHint != "sign-up" || r.OrganizationID != OrgAcme ||
		r.CodeChallenge != testChallenge || r.RedirectURI != testRedirect || r.Query.Get("provider") != "authkit" {
		t.Errorf("recorded %+v", r)
	}
	if !strings.Contains(r.RawQuery, "state=Fe26.2%2A1") {
		t.Errorf("RawQuery %q is not the query as sent", r.RawQuery)
	}
}

// signInForm extracts the hidden fields of the sign-in page's form whose
// button has the given data-email and data-organization-id.
func signInForm(t *testing.T, page, email, orgID string) url.Values {
	t.Helper()
	forms := regexp.MustCompile(`(?s)<form.*?</form>`).FindAllString(page, -1)
	input := regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)
	for _, form := range forms {
		if !strings.Contains(form, `data-email="`+email+`"`) || !strings.Contains(form, `data-organization-id="`+orgID+`"`) {
			continue
		}
		fields := url.Values{}
		for _, m := range input.FindAllStringSubmatch(form, -1) {
			fields.Set(m[1], html.UnescapeString(m[2]))
		}
		return fields
	}
	t.Fatalf("no form for %s in %s", email, orgID)
	return nil
}

func TestSignIn(t *testing.T) {
	cases := []struct {
		name string
		// run returns the response that should redirect to the app.
		run      func(f *fixture) result
		status   int
		user     string
		org      string
		redirect string
	}{
		{
			name:   "login_hint with a user id redirects at once",
			run:    func(f *fixture) result { return f.authorize(func(q url.Values) { q.Set("login_hint", UserBob) }) },
			status: http.StatusFound, user: UserBob, org: OrgAcme, redirect: testRedirect,
		},
		{
			name: "login_hint with an email ignores case",
			run: func(f *fixture) result {
				return f.authorize(func(q url.Values) { q.Set("login_hint", "CAROL@example.com") })
			},
			status: http.StatusFound, user: UserCarol, org: "", redirect: testRedirect,
		},
		{
			name: "login_hint honours organization_id",
			run: func(f *fixture) result {
				return f.authorize(func(q url.Values) {
					q.Set("login_hint", UserAlice)
					q.Set("organization_id", OrgGlobex)
				})
			},
			status: http.StatusFound, user: UserAlice, org: OrgGlobex, redirect: testRedirect,
		},
		{
			name: "redirect_uri keeps its own query",
			run: func(f *fixture) result {
				return f.authorize(func(q url.Values) {
					q.Set("login_hint", UserBob)
					q.Set("redirect_uri", "http://app.test/callback?tenant=a")
				})
			},
			status: http.StatusFound, user: UserBob, org: OrgAcme, redirect: testRedirect,
		},
		{
			name: "clicking a page button posts the form",
			run: func(f *fixture) result {
				fields := signInForm(f.t, f.authorize(nil).raw, "alice@example.com", OrgGlobex)
				req, _ := http.NewRequest(http.MethodPost, f.url+pathSignIn, strings.NewReader(fields.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return f.do(req)
			},
			status: http.StatusSeeOther, user: UserAlice, org: OrgGlobex, redirect: testRedirect,
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := tc.run(f)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.raw)
			}
			loc := res.header.Get("Location")
			if !strings.HasPrefix(loc, tc.redirect+"?") {
				t.Errorf("Location %q does not go to %s", loc, tc.redirect)
			}
			params := redirectParams(t, res)
			if params.Get("state") != testState {
				t.Errorf("state %q, want %q", params.Get("state"), testState)
			}
			token := f.authenticate(f.codeCall(params.Get("code")))
			if token.status != http.StatusOK {
				t.Fatalf("exchange: %d %s", token.status, token.raw)
			}
			user, _ := token.body["user"].(map[string]any)
			if str(user, "id") != tc.user || str(token.body, "organization_id") != tc.org {
				t.Errorf("signed in %s in %q, want %s in %q", str(user, "id"), str(token.body, "organization_id"), tc.user, tc.org)
			}
		})
	}
}

func TestSignInFormRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(fields url.Values)
		want string
	}{
		{"unknown user", func(v url.Values) { v.Set("user_id", "user_NOPE") }, "user_NOPE"},
		{"user outside the organization", func(v url.Values) { v.Set("organization_id", OrgGlobex); v.Set("user_id", UserBob) }, "not a member"},
		{"tampered authorize query", func(v url.Values) { v.Set("authorize_query", "client_id=client_TEST") }, "response_type"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			fields := signInForm(t, f.authorize(nil).raw, "bob@example.com", OrgAcme)
			tc.edit(fields)
			req, _ := http.NewRequest(http.MethodPost, f.url+pathSignIn, strings.NewReader(fields.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res := f.do(req)
			if res.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(res.raw), tc.want) {
				t.Errorf("got %d %s, want 400 mentioning %q", res.status, res.raw, tc.want)
			}
		})
	}
}

func TestCodeExchange(t *testing.T) {
	cases := []struct {
		name string
		// call builds the request from a fresh code for Alice.
		call   func(f *fixture, code string) authCall
		status int
		error  string
	}{
		{
			name:   "valid code and verifier",
			call:   func(f *fixture, code string) authCall { return f.codeCall(code) },
			status: http.StatusOK,
		},
		{
			name: "wrong verifier",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.body["code_verifier"] = strings.Repeat("x", 43)
				return c
			},
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name: "missing verifier",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				delete(c.body, "code_verifier")
				return c
			},
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name:   "unknown code",
			call:   func(f *fixture, code string) authCall { return f.codeCall("01NOTACODE") },
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name: "code reused",
			call: func(f *fixture, code string) authCall {
				if res := f.authenticate(f.codeCall(code)); res.status != http.StatusOK {
					f.t.Fatalf("first use: %d %s", res.status, res.raw)
				}
				return f.codeCall(code)
			},
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name: "failed attempt spends the code",
			call: func(f *fixture, code string) authCall {
				bad := f.codeCall(code)
				bad.body["code_verifier"] = "wrong"
				f.authenticate(bad)
				return f.codeCall(code)
			},
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name: "code older than ten minutes",
			call: func(f *fixture, code string) authCall {
				f.clock.Advance(10*time.Minute + time.Second)
				return f.codeCall(code)
			},
			status: http.StatusBadRequest, error: "invalid_grant",
		},
		{
			name: "wrong client_id",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.body["client_id"] = "client_OTHER"
				return c
			},
			status: http.StatusUnauthorized, error: "invalid_client",
		},
		{
			name: "client_secret is not the API key",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.body["client_secret"] = "sk_wrong"
				return c
			},
			status: http.StatusUnauthorized, error: "invalid_client",
		},
		{
			name: "missing bearer token",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.bearer = ""
				return c
			},
			status: http.StatusUnauthorized, error: "invalid_client",
		},
		{
			name: "form-encoded body",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.raw = "grant_type=authorization_code&code=" + code
				c.contentType = "application/x-www-form-urlencoded"
				return c
			},
			status: http.StatusBadRequest, error: "invalid_request",
		},
		{
			name: "malformed JSON",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.raw = `{"grant_type":`
				return c
			},
			status: http.StatusBadRequest, error: "invalid_request",
		},
		{
			name: "unsupported grant type",
			call: func(f *fixture, code string) authCall {
				c := f.codeCall(code)
				c.body["grant_type"] = "password"
				return c
			},
			status: http.StatusBadRequest, error: "unsupported_grant_type",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			res := f.authenticate(tc.call(f, f.codeFor(UserAlice, nil)))
			if res.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", res.header.Get("Content-Type"))
			}
			if tc.error != "" {
				expectOAuthError(t, res, tc.status, tc.error)
				return
			}
			if res.status != tc.status {
				t.Fatalf("status %d: %s", res.status, res.raw)
			}
		})
	}
}

func TestCodeExchangeResponse(t *testing.T) {
	f := newFixture(t)
	res := f.signIn(UserAlice)
	user, _ := res.body["user"].(map[string]any)
	wantUser := map[string]any{
		"object": "user", "id": UserAlice, "email": "alice@example.com", "email_verified": true,
		"first_name": "Alice", "last_name": "Admin", "locale": "en-US", "external_id": "ext-alice-1",
		"created_at": "2024-01-15T09:30:00.000Z", "updated_at": "2024-01-15T09:30:00.000Z",
		"last_sign_in_at": apiTime(f.clock.Now()),
	}
	for k, v := range wantUser {
		if user[k] != v {
			t.Errorf("user.%s = %v, want %v", k, user[k], v)
		}
	}
	if _, ok := user["metadata"].(map[string]any); !ok {
		t.Errorf("user.metadata = %v, want an object", user["metadata"])
	}
	if str(res.body, "organization_id") != OrgAcme || str(res.body, "authentication_method") != "Password" ||
		str(res.body, "refresh_token") == "" {
		t.Errorf("response %s", res.raw)
	}
	if _, ok := res.body["impersonator"]; ok {
		t.Errorf("impersonator present without impersonation")
	}
	if n := f.fake.CodeExchangeCalls(); n != 1 {
		t.Errorf("CodeExchangeCalls = %d, want 1", n)
	}
	sent := f.fake.AuthenticateRequests()
	if len(sent) != 1 || sent[0].GrantType != GrantAuthorizationCode || sent[0].Header.Get("Authorization") != "Bearer sk_test_key" {
		t.Errorf("recorded %+v", sent)
	}
}

func TestAccessTokenClaims(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		want   map[string]any
		absent []string
	}{
		{
			name: "organization session carries its membership",
			user: UserAlice,
			want: map[string]any{
				"sub": UserAlice, "org_id": OrgAcme, "role": "admin",
				"roles":         []any{"admin", "member"},
				"permissions":   []any{"posts:read", "posts:write", "users:manage"},
				"entitlements":  []any{"audit-logs", "sso"},
				"feature_flags": []any{"new-dashboard", "beta-search"},
				"iss":           "https://api.workos.com/user_management/client_TEST",
			},
		},
		{
			name: "roles default to the primary role",
			user: UserBob,
			want: map[string]any{"role": "member", "roles": []any{"member"}, "feature_flags": []any{}},
		},
		{
			name:   "session without organization has no organization claims",
			user:   UserCarol,
			want:   map[string]any{"sub": UserCarol},
			absent: []string{"org_id", "role", "roles", "permissions", "entitlements", "feature_flags"},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			claims := claimsOf(t, f.signIn(tc.user))
			for k, v := range tc.want {
				got, _ := json.Marshal(claims[k])
				want, _ := json.Marshal(v)
				if string(got) != string(want) {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if _, ok := claims[k]; ok {
					t.Errorf("claim %s present", k)
				}
			}
			iat, _ := claims["iat"].(float64)
			exp, _ := claims["exp"].(float64)
			if int64(iat) != f.clock.Now().Unix() || exp-iat != 300 {
				t.Errorf("iat %v exp %v, want now and now+300", iat, exp)
			}
			if !strings.HasPrefix(str(claims, "sid"), "session_") || str(claims, "jti") == "" {
				t.Errorf("sid %v jti %v", claims["sid"], claims["jti"])
			}
		})
	}
}

// publicKey builds the RSA key of a JWKS entry the way a verifier does.
func publicKey(t *testing.T, k map[string]any) *rsa.PublicKey {
	t.Helper()
	n, err := base64.RawURLEncoding.DecodeString(str(k, "n"))
	if err != nil {
		t.Fatalf("n: %v", err)
	}
	e, err := base64.RawURLEncoding.DecodeString(str(k, "e"))
	if err != nil {
		t.Fatalf("e: %v", err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// jwksKey fetches the JWKS and returns the entry with kid.
func (f *fixture) jwksKey(kid string) (map[string]any, bool) {
	f.t.Helper()
	res := f.get(f.fake.JWKSPath())
	keys, _ := res.body["keys"].([]any)
	for _, k := range keys {
		m, _ := k.(map[string]any)
		if str(m, "kid") == kid {
			return m, true
		}
	}
	return nil, false
}

func verify(t *testing.T, pub *rsa.PublicKey, token string) error {
	t.Helper()
	i := strings.LastIndex(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	digest := sha256.Sum256([]byte(token[:i]))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
}

func TestAccessTokenSignature(t *testing.T) {
	cases := []struct {
		name  string
		token func(f *fixture) string
		// tamper changes the token after signing; the signature must
		// then fail.
		tamper bool
	}{
		{"issued token verifies", func(f *fixture) string { return str(f.signIn(UserBob).body, "access_token") }, false},
		{"minted token verifies", func(f *fixture) string { return f.fake.MintAccessToken(map[string]any{"sub": "x"}) }, false},
		{"token after rotation verifies with the new key", func(f *fixture) string {
			f.fake.RotateKey()
			return str(f.signIn(UserBob).body, "access_token")
		}, false},
		{"tampered claims fail", func(f *fixture) string { return str(f.signIn(UserBob).body, "access_token") }, true},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			token := tc.token(f)
			header := jwtPart(t, token, 0)
			if str(header, "alg") != "RS256" || str(header, "typ") != "JWT" || str(header, "kid") != f.fake.KeyID() {
				t.Errorf("header %v", header)
			}
			if tc.tamper {
				parts := strings.Split(token, ".")
				parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory"}`))
				token = strings.Join(parts, ".")
			}
			jwk, ok := f.jwksKey(str(header, "kid"))
			if !ok {
				t.Fatalf("kid %v not in JWKS", header["kid"])
			}
			err := verify(t, publicKey(t, jwk), token)
			if tc.tamper != (err != nil) {
				t.Errorf("verify error %v, tampered %v", err, tc.tamper)
			}
		})
	}
}

func TestMintSessionToken(t *testing.T) {
	f := newFixture(t)
	issued, err := f.fake.IssueSession(SessionParams{UserID: UserAlice, OrganizationID: OrgAcme})
	if err != nil {
		t.Fatal(err)
	}
	token, err := f.fake.MintSessionToken(issued.SessionID, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwtPart(t, token, 1)
	exp, _ := claims["exp"].(float64)
	if int64(exp) != f.clock.Now().Add(-time.Minute).Unix() || str(claims, "sid") != issued.SessionID || str(claims, "org_id") != OrgAcme {
		t.Errorf("claims %v", claims)
	}
	if res := f.authenticate(f.refreshCall(issued.RefreshToken, "")); res.status != http.StatusOK {
		t.Errorf("refresh token stopped working: %d %s", res.status, res.raw)
	}
	if _, err := f.fake.MintSessionToken("session_NOPE", time.Minute); err == nil {
		t.Errorf("unknown session accepted")
	}
}

func TestRefreshRotation(t *testing.T) {
	f := newFixture(t)
	first := f.signIn(UserAlice)
	old := str(first.body, "refresh_token")

	second := f.authenticate(f.refreshCall(old, ""))
	if second.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", second.status, second.raw)
	}
	next := str(second.body, "refresh_token")
	if next == "" || next == old {
		t.Fatalf("refresh token not rotated: %q", next)
	}
	c1, c2 := claimsOf(t, first), claimsOf(t, second)
	if c1["sid"] != c2["sid"] || c1["jti"] == c2["jti"] || str(second.body, "organization_id") != OrgAcme {
		t.Errorf("sid %v→%v jti %v→%v org %v", c1["sid"], c2["sid"], c1["jti"], c2["jti"], second.body["organization_id"])
	}

	t.Run("old token is rejected", func(t *testing.T) {
		expectOAuthError(t, f.authenticate(f.refreshCall(old, "")), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("new token still works", func(t *testing.T) {
		if res := f.authenticate(f.refreshCall(next, "")); res.status != http.StatusOK {
			t.Errorf("%d %s", res.status, res.raw)
		}
	})
	t.Run("empty token is rejected", func(t *testing.T) {
		expectOAuthError(t, f.authenticate(f.refreshCall("", "")), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("refresh calls are counted", func(t *testing.T) {
		if n := f.fake.RefreshCalls(); n != 4 {
			t.Errorf("RefreshCalls = %d, want 4", n)
		}
	})
}

func TestConcurrentRefresh(t *testing.T) {
	cases := []struct {
		name  string
		grace time.Duration
		// won is how many racers must get 200; they must all get the
		// same pair.
		won int
	}{
		{name: "without grace exactly one wins", grace: 0, won: 1},
		{name: "with grace every racer gets the same pair", grace: 30 * time.Second, won: 12},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.SetRefreshGrace(tc.grace)
			token := str(f.signIn(UserBob).body, "refresh_token")
			const racers = 12
			results := make(chan result, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < racers; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results <- f.authenticate(f.refreshCall(token, ""))
				}()
			}
			close(start)
			wg.Wait()
			close(results)
			won, pair := 0, ""
			for res := range results {
				switch res.status {
				case http.StatusOK:
					won++
					if pair != "" && res.raw != pair {
						t.Errorf("racers got different pairs:\n%s\n%s", pair, res.raw)
					}
					pair = res.raw
				case http.StatusBadRequest:
				default:
					t.Errorf("unexpected status %d", res.status)
				}
			}
			if won != tc.won {
				t.Errorf("%d refreshes succeeded, want %d", won, tc.won)
			}
			if n := f.fake.Rotations(); n != 1 {
				t.Errorf("Rotations = %d, want 1", n)
			}
		})
	}
}

func TestOrganizationSwitch(t *testing.T) {
	cases := []struct {
		name   string
		user   string
		policy OrgPolicy
		target string
		status int
		error  string
		// redirect is the expected authkit_redirect_url.
		redirect string
	}{
		{name: "member switches", user: UserAlice, target: OrgGlobex, status: http.StatusOK},
		{name: "same organization is no switch", user: UserAlice, target: OrgAcme, status: http.StatusOK},
		{name: "non-member is refused", user: UserBob, target: OrgGlobex, status: http.StatusBadRequest, error: "invalid_grant"},
		{
			name: "organization requiring SSO", user: UserAlice, target: OrgGlobex,
			policy: OrgPolicy{Error: "sso_required", RedirectURL: "http://authkit.test/sso"},
			status: http.StatusForbidden, error: "sso_required", redirect: "http://authkit.test/sso",
		},
		{
			name: "organization requiring MFA with a chosen status", user: UserAlice, target: OrgGlobex,
			policy: OrgPolicy{Error: "mfa_enrollment", Status: http.StatusBadRequest},
			status: http.StatusBadRequest, error: "mfa_enrollment",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.SetOrgPolicy(tc.target, tc.policy)
			token := str(f.signIn(tc.user).body, "refresh_token")
			res := f.authenticate(f.refreshCall(token, tc.target))
			if tc.error == "" {
				if res.status != tc.status || str(res.body, "organization_id") != tc.target || claimsOf(t, res)["org_id"] != tc.target {
					t.Fatalf("got %d %s", res.status, res.raw)
				}
				// Later refreshes without organization_id stay in the new organization.
				again := f.authenticate(f.refreshCall(str(res.body, "refresh_token"), ""))
				if str(again.body, "organization_id") != tc.target {
					t.Errorf("next refresh went to %v", again.body["organization_id"])
				}
				return
			}
			expectOAuthError(t, res, tc.status, tc.error)
			if str(res.body, "authkit_redirect_url") != tc.redirect {
				t.Errorf("authkit_redirect_url %v, want %q", res.body["authkit_redirect_url"], tc.redirect)
			}
			// A refused switch does not spend the refresh token.
			if keep := f.authenticate(f.refreshCall(token, "")); keep.status != http.StatusOK {
				t.Errorf("refresh token spent by the refused switch: %d %s", keep.status, keep.raw)
			}
		})
	}
}

func TestPolicyAllowsSessionsStartedInTheOrganization(t *testing.T) {
	f := newFixture(t)
	f.fake.SetOrgPolicy(OrgGlobex, OrgPolicy{Error: "sso_required"})
	code := f.codeFor(UserZoe, func(q url.Values) { q.Set("organization_id", OrgGlobex) })
	res := f.authenticate(f.codeCall(code))
	if str(res.body, "authentication_method") != "SSO" {
		t.Errorf("authentication_method %v, want SSO", res.body["authentication_method"])
	}
	if again := f.authenticate(f.refreshCall(str(res.body, "refresh_token"), OrgGlobex)); again.status != http.StatusOK {
		t.Errorf("refresh in the SSO organization: %d %s", again.status, again.raw)
	}
}

func TestJWKS(t *testing.T) {
	cases := []struct {
		name string
		// setup returns the kids that must be published and those that
		// must not.
		setup  func(f *fixture) (published, hidden []string)
		status int
		path   string
	}{
		{
			name:  "publishes the signing key",
			setup: func(f *fixture) ([]string, []string) { return []string{f.fake.KeyID()}, nil },
		},
		{
			name: "rotation keeps the old key",
			setup: func(f *fixture) ([]string, []string) {
				old := f.fake.KeyID()
				return []string{old, f.fake.RotateKey()}, nil
			},
		},
		{
			name: "unpublished key stays hidden",
			setup: func(f *fixture) ([]string, []string) {
				old := f.fake.KeyID()
				return []string{old}, []string{f.fake.RotateKeyUnpublished()}
			},
		},
		{
			name: "publishing reveals the key",
			setup: func(f *fixture) ([]string, []string) {
				old := f.fake.KeyID()
				kid := f.fake.RotateKeyUnpublished()
				f.fake.PublishKeys()
				return []string{old, kid}, nil
			},
		},
		{
			name: "retired key disappears",
			setup: func(f *fixture) ([]string, []string) {
				old := f.fake.KeyID()
				kid := f.fake.RotateKey()
				f.fake.RetireKey(old)
				return []string{kid}, []string{old}
			},
		},
		{name: "other client id is not found", path: "/sso/jwks/client_OTHER", status: http.StatusNotFound},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.path != "" {
				if res := f.get(tc.path); res.status != tc.status {
					t.Errorf("status %d, want %d", res.status, tc.status)
				}
				return
			}
			published, hidden := tc.setup(f)
			res := f.get(f.fake.JWKSPath())
			keys, _ := res.body["keys"].([]any)
			if res.status != http.StatusOK || len(keys) != len(published) {
				t.Fatalf("got %d with %d keys, want %d: %s", res.status, len(keys), len(published), res.raw)
			}
			for _, kid := range published {
				k, ok := f.jwksKey(kid)
				if !ok {
					t.Errorf("kid %s missing", kid)
					continue
				}
				n, _ := base64.RawURLEncoding.DecodeString(str(k, "n"))
				if len(k) != 6 || str(k, "kty") != "RSA" || str(k, "use") != "sig" || str(k, "alg") != "RS256" ||
					str(k, "e") != "AQAB" || len(n) != 256 {
					t.Errorf("key %v", k)
				}
			}
			for _, kid := range hidden {
				if _, ok := f.jwksKey(kid); ok {
					t.Errorf("kid %s published", kid)
				}
			}
		})
	}
}

func TestLogout(t *testing.T) {
	cases := []struct {
		name     string
		query    func(sid string) string
		status   int
		location string
		page     string
		revoked  bool
	}{
		{
			name:   "revokes and returns",
			query:  func(sid string) string { return "session_id=" + sid + "&return_to=http%3A%2F%2Fapp.test%2Fbye" },
			status: http.StatusFound, location: "http://app.test/bye", revoked: true,
		},
		{
			name:   "without return_to shows a page",
			query:  func(sid string) string { return "session_id=" + sid },
			status: http.StatusOK, page: "signed out", revoked: true,
		},
		{
			name:   "missing session_id",
			query:  func(string) string { return "return_to=http%3A%2F%2Fapp.test%2F" },
			status: http.StatusBadRequest, page: "session_id is missing",
		},
		{
			name:   "relative return_to",
			query:  func(sid string) string { return "session_id=" + sid + "&return_to=%2Fbye" },
			status: http.StatusBadRequest, page: "absolute",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			issued, err := f.fake.IssueSession(SessionParams{UserID: UserBob, OrganizationID: OrgAcme})
			if err != nil {
				t.Fatal(err)
			}
			res := f.get(pathLogout + "?" + tc.query(issued.SessionID))
			if res.status != tc.status || res.header.Get("Location") != tc.location || !strings.Contains(res.raw, tc.page) {
				t.Fatalf("got %d Location %q: %s", res.status, res.header.Get("Location"), res.raw)
			}
			if f.fake.SessionRevoked(issued.SessionID) != tc.revoked {
				t.Errorf("revoked = %v, want %v", !tc.revoked, tc.revoked)
			}
			refresh := f.authenticate(f.refreshCall(issued.RefreshToken, ""))
			if tc.revoked {
				expectOAuthError(t, refresh, http.StatusBadRequest, "invalid_grant")
			} else if refresh.status != http.StatusOK {
				t.Errorf("refresh after refused logout: %d", refresh.status)
			}
			if n := len(f.fake.LogoutRequests()); n != 1 {
				t.Errorf("%d logout requests recorded", n)
			}
		})
	}
}

// faultProbe sends one request to a faultable endpoint.
func (f *fixture) faultProbe(endpoint string) result {
	f.t.Helper()
	switch endpoint {
	case EndpointAuthenticate:
		return f.authenticate(f.codeCall(f.codeFor(UserBob, nil)))
	case EndpointAuthorize:
		return f.authorize(nil)
	case EndpointLogout:
		return f.get(pathLogout + "?session_id=session_X")
	}
	return f.get(f.fake.JWKSPath())
}

func TestFaults(t *testing.T) {
	cases := []struct {
		name        string
		endpoint    string
		fault       Fault
		status      int
		contentType string
		check       func(t *testing.T, res result)
	}{
		{
			name: "invalid_grant", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultInvalidGrant, Count: 1},
			status: http.StatusBadRequest, contentType: "application/json",
			check: func(t *testing.T, res result) { expectOAuthError(t, res, http.StatusBadRequest, "invalid_grant") },
		},
		{
			name: "rate limit with Retry-After", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultRateLimit, Count: 1, RetryAfter: 7},
			status: http.StatusTooManyRequests, contentType: "application/json",
			check: func(t *testing.T, res result) {
				if res.header.Get("Retry-After") != "7" {
					t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
				}
			},
		},
		{
			name: "rate limit defaults Retry-After to 1", endpoint: EndpointJWKS, fault: Fault{Kind: FaultRateLimit, Count: 1},
			status: http.StatusTooManyRequests, contentType: "application/json",
			check: func(t *testing.T, res result) {
				if res.header.Get("Retry-After") != "1" {
					t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
				}
			},
		},
		{
			name: "rate limit without Retry-After", endpoint: EndpointJWKS, fault: Fault{Kind: FaultRateLimit, Count: 1, RetryAfter: -1},
			status: http.StatusTooManyRequests, contentType: "application/json",
			check: func(t *testing.T, res result) {
				if _, ok := res.header["Retry-After"]; ok {
					t.Errorf("Retry-After sent")
				}
			},
		},
		{name: "JSON 500 by default", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultServerError, Count: 1}, status: 500, contentType: "application/json"},
		{name: "JSON 502", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultServerError, Count: 1, Status: 502}, status: 502, contentType: "application/json"},
		{name: "JSON 503", endpoint: EndpointJWKS, fault: Fault{Kind: FaultServerError, Count: 1, Status: 503}, status: 503, contentType: "application/json"},
		{name: "JSON 504", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultServerError, Count: 1, Status: 504}, status: 504, contentType: "application/json"},
		{name: "JSON 501", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultServerError, Count: 1, Status: 501}, status: 501, contentType: "application/json"},
		{
			name: "HTML 502", endpoint: EndpointAuthenticate, fault: Fault{Kind: FaultHTMLError, Count: 1},
			status: http.StatusBadGateway, contentType: "text/html",
			check: func(t *testing.T, res result) {
				if !strings.HasPrefix(res.raw, "<html>") || res.body != nil {
					t.Errorf("body %q", res.raw)
				}
			},
		},
		{name: "HTML on authorize", endpoint: EndpointAuthorize, fault: Fault{Kind: FaultHTMLError, Count: 1, Status: 503}, status: 503, contentType: "text/html"},
		{name: "JSON 500 on logout", endpoint: EndpointLogout, fault: Fault{Kind: FaultServerError, Count: 1}, status: 500, contentType: "application/json"},
		{
			name: "short delay then a normal answer", endpoint: EndpointJWKS, fault: Fault{Kind: FaultDelay, Count: 1, Delay: 80 * time.Millisecond},
			status: http.StatusOK, contentType: "application/json",
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.InjectFault(tc.endpoint, tc.fault)
			start := time.Now()
			res := f.faultProbe(tc.endpoint)
			if res.status != tc.status || !strings.HasPrefix(res.header.Get("Content-Type"), tc.contentType) {
				t.Fatalf("got %d %q %s, want %d %s", res.status, res.header.Get("Content-Type"), res.raw, tc.status, tc.contentType)
			}
			if time.Since(start) < tc.fault.Delay {
				t.Errorf("answered after %v, before the %v delay", time.Since(start), tc.fault.Delay)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			if after := f.faultProbe(tc.endpoint); after.status >= 500 || after.status == http.StatusTooManyRequests {
				t.Errorf("fault outlived its count: %d", after.status)
			}
		})
	}
}

func TestFaultsWithoutResponse(t *testing.T) {
	cases := []struct {
		name    string
		fault   Fault
		timeout time.Duration
	}{
		{"dropped connection", Fault{Kind: FaultDrop, Count: 1}, 0},
		{"delay beyond the client timeout", Fault{Kind: FaultDelay, Count: 1, Delay: 5 * time.Second}, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.InjectFault(EndpointAuthenticate, tc.fault)
			if tc.timeout > 0 {
				f.client.Timeout = tc.timeout
			}
			body, _ := json.Marshal(f.codeCall("x").body)
			req, _ := http.NewRequest(http.MethodPost, f.url+pathAuthenticate, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			resp, err := f.client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got status %d, want a transport error", resp.StatusCode)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if n := f.fake.Calls(EndpointAuthenticate); n != 1 {
				t.Errorf("Calls = %d, want 1", n)
			}
			if n := f.fake.CodeExchangeCalls(); n != 1 {
				t.Errorf("CodeExchangeCalls = %d, want 1", n)
			}
		})
	}
}

func TestFaultQueue(t *testing.T) {
	cases := []struct {
		name   string
		faults []Fault
		clear  int // ClearFaults before this request (0 = never)
		want   []int
	}{
		{
			name:   "faults apply in order, each for its count",
			faults: []Fault{{Kind: FaultRateLimit, Count: 2}, {Kind: FaultServerError, Count: 1, Status: 503}},
			want:   []int{429, 429, 503, 200},
		},
		{
			name:   "count 0 lasts until cleared",
			faults: []Fault{{Kind: FaultServerError, Status: 502}},
			clear:  3,
			want:   []int{502, 502, 502, 200},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for _, fault := range tc.faults {
				f.fake.InjectFault(EndpointJWKS, fault)
			}
			for i, want := range tc.want {
				if tc.clear != 0 && i == tc.clear {
					f.fake.ClearFaults()
				}
				if got := f.get(f.fake.JWKSPath()).status; got != want {
					t.Errorf("request %d: status %d, want %d", i, got, want)
				}
			}
			if n := f.fake.Calls(EndpointJWKS); n != len(tc.want) {
				t.Errorf("Calls = %d, want %d", n, len(tc.want))
			}
		})
	}
}

func TestInjectFaultPanicsOnMistakes(t *testing.T) {
	cases := []struct {
		name     string
		endpoint string
		fault    Fault
	}{
		{"unknown endpoint", "token", Fault{Kind: FaultDrop}},
		{"unknown kind", EndpointJWKS, Fault{Kind: "explode"}},
		{"4xx server error", EndpointJWKS, Fault{Kind: FaultServerError, Status: 404}},
		{"delay without duration", EndpointJWKS, Fault{Kind: FaultDelay}},
		{"negative count", EndpointJWKS, Fault{Kind: FaultDrop, Count: -1}},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			panicked := false
			func() {
				defer func() { panicked = recover() != nil }()
				f.fake.InjectFault(tc.endpoint, tc.fault)
			}()
			if !panicked {
				t.Errorf("no panic")
			}
		})
	}
}

func (f *fixture) control(method, path, body string, authorized bool) result {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if authorized {
		req.Header.Set("Authorization", "Bearer sk_test_key")
	}
	return f.do(req)
}

func TestControlEndpoints(t *testing.T) {
	cases := []struct {
		name string
		run  func(f *fixture) error
	}{
		{"requires the API key", func(f *fixture) error {
			return expectStatus(f.control("POST", "/__fake/faults", `{"endpoint":"jwks","kind":"drop"}`, false), 401)
		}},
		{"injects a fault", func(f *fixture) error {
			if err := expectStatus(f.control("POST", "/__fake/faults", `{"endpoint":"jwks","kind":"server_error","status":503,"count":1}`, true), 204); err != nil {
				return err
			}
			return expectStatus(f.get(f.fake.JWKSPath()), 503)
		}},
		{"injects a delay given as text", func(f *fixture) error {
			if err := expectStatus(f.control("POST", "/__fake/faults", `{"endpoint":"jwks","kind":"delay","delay":"50ms","count":1}`, true), 204); err != nil {
				return err
			}
			start := time.Now()
			f.get(f.fake.JWKSPath())
			if time.Since(start) < 50*time.Millisecond {
				return errors.New("answered before the delay")
			}
			return nil
		}},
		{"injects a fault on api_keys", func(f *fixture) error {
			if err := expectStatus(f.control("POST", "/__fake/faults", `{"endpoint":"api_keys","kind":"rate_limit","count":1}`, true), 204); err != nil {
				return err
			}
			return expectStatus(f.validateValue("sk_x"), 429)
		}},
		{"rejects an invalid fault", func(f *fixture) error {
			return expectStatus(f.control("POST", "/__fake/faults", `{"endpoint":"jwks","kind":"explode"}`, true), 400)
		}},
		{"clears faults", func(f *fixture) error {
			f.fake.InjectFault(EndpointJWKS, Fault{Kind: FaultServerError})
			if err := expectStatus(f.control("DELETE", "/__fake/faults", "", true), 204); err != nil {
				return err
			}
			return expectStatus(f.get(f.fake.JWKSPath()), 200)
		}},
		{"reports counters", func(f *fixture) error {
			f.signIn(UserBob)
			res := f.control("GET", "/__fake/stats", "", true)
			calls, _ := res.body["calls"].(map[string]any)
			grants, _ := res.body["grants"].(map[string]any)
			if calls["authorize"] != 1.0 || calls["authenticate"] != 1.0 || grants["authorization_code"] != 1.0 {
				return fmt.Errorf("stats %s", res.raw)
			}
			return nil
		}},
		{"rotates the key unpublished", func(f *fixture) error {
			res := f.control("POST", "/__fake/keys/rotate?published=false", "", true)
			kid := str(res.body, "kid")
			if _, ok := f.jwksKey(kid); ok || kid != f.fake.KeyID() {
				return fmt.Errorf("rotate %s", res.raw)
			}
			if err := expectStatus(f.control("POST", "/__fake/keys/publish", "", true), 204); err != nil {
				return err
			}
			if _, ok := f.jwksKey(kid); !ok {
				return errors.New("key not published")
			}
			return nil
		}},
		{"sets an organization policy", func(f *fixture) error {
			if err := expectStatus(f.control("POST", "/__fake/org-policies", `{"organization_id":"`+OrgGlobex+`","error":"sso_required"}`, true), 204); err != nil {
				return err
			}
			token := str(f.signIn(UserAlice).body, "refresh_token")
			return expectStatus(f.authenticate(f.refreshCall(token, OrgGlobex)), 403)
		}},
		{"unknown route", func(f *fixture) error {
			return expectStatus(f.control("GET", "/__fake/nothing", "", true), 404)
		}},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(newFixture(t)); err != nil {
				t.Error(err)
			}
		})
	}
}

func expectStatus(res result, status int) error {
	if res.status != status {
		return fmt.Errorf("status %d, want %d: %s", res.status, status, res.raw)
	}
	return nil
}

func TestIssueSession(t *testing.T) {
	cases := []struct {
		name    string
		params  SessionParams
		wantErr bool
		check   func(t *testing.T, s IssuedSession)
	}{
		{
			name:   "user JSON is the API form",
			params: SessionParams{UserID: UserZoe, OrganizationID: OrgGlobex},
			check: func(t *testing.T, s IssuedSession) {
				var u map[string]any
				if err := json.Unmarshal(s.User, &u); err != nil {
					t.Fatal(err)
				}
				if u["first_name"] != "Zoë" || u["profile_picture_url"] != nil || u["email_verified"] != true {
					t.Errorf("user %s", s.User)
				}
				if s.AuthenticationMethod != "Password" || s.OrganizationID != OrgGlobex {
					t.Errorf("session %+v", s)
				}
			},
		},
		{
			name:   "large metadata user",
			params: SessionParams{UserID: "max@example.com"},
			check: func(t *testing.T, s IssuedSession) {
				if len(s.User) < 6000 {
					t.Errorf("user JSON is %d bytes, want at least 6000", len(s.User))
				}
			},
		},
		{
			name:   "impersonation",
			params: SessionParams{UserID: UserBob, Impersonator: &Impersonator{Email: "admin@example.com"}},
			check: func(t *testing.T, s IssuedSession) {
				if s.AuthenticationMethod != "Impersonation" || !strings.Contains(string(s.Response), `"impersonator":{"email":"admin@example.com","reason":null}`) {
					t.Errorf("response %s", s.Response)
				}
			},
		},
		{name: "unknown user", params: SessionParams{UserID: "user_NOPE"}, wantErr: true},
		{name: "organization the user is not in", params: SessionParams{UserID: UserBob, OrganizationID: OrgGlobex}, wantErr: true},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s, err := f.fake.IssueSession(tc.params)
			if tc.wantErr != (err != nil) {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestIssueSessionForUser(t *testing.T) {
	f := newFixture(t)
	access, refresh, user, err := f.fake.IssueSessionForUser(UserAlice, OrgAcme)
	if err != nil {
		t.Fatal(err)
	}
	if jwtPart(t, access, 1)["org_id"] != OrgAcme || !strings.Contains(string(user), `"id":"`+UserAlice+`"`) {
		t.Errorf("access %s user %s", access, user)
	}
	if res := f.authenticate(f.refreshCall(refresh, "")); res.status != http.StatusOK {
		t.Errorf("refresh: %d %s", res.status, res.raw)
	}
}

func TestDefaultUsersLookLikeWorkOS(t *testing.T) {
	id := regexp.MustCompile(`^(user|org)_[0-9A-HJKMNP-TV-Z]{26}$`)
	for _, u := range DefaultUsers() {
		if !id.MatchString(u.ID) {
			t.Errorf("user id %q", u.ID)
		}
		for _, m := range u.Memberships {
			if !id.MatchString(m.OrganizationID) {
				t.Errorf("organization id %q", m.OrganizationID)
			}
		}
	}
}

func TestStart(t *testing.T) {
	fake := New(Options{SigningKey: testKey()})
	base, stop, err := fake.Start(":0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("base URL %q", base)
	}
	resp, err := http.Get(base + fake.JWKSPath())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	stop()
	if resp, err := http.Get(base + fake.JWKSPath()); err == nil {
		resp.Body.Close()
		t.Errorf("still serving after stop")
	}
}

func TestPutUser(t *testing.T) {
	cases := []struct {
		name  string
		user  func(f *fixture) User
		check func(t *testing.T, f *fixture, res result)
	}{
		{
			name: "changed membership shows at the next refresh",
			user: func(f *fixture) User {
				bob := DefaultUsers()[1]
				bob.Memberships[0].Role = "admin"
				bob.Memberships[0].Permissions = []string{"users:manage"}
				return bob
			},
			check: func(t *testing.T, f *fixture, res result) {
				claims := claimsOf(t, res)
				if claims["role"] != "admin" || len(f.fake.Users()) != 5 {
					t.Errorf("claims %v", claims)
				}
			},
		},
		{
			name: "new user without dates gets a creation date",
			user: func(f *fixture) User { return User{ID: "user_NEW", Email: "new@example.com"} },
			check: func(t *testing.T, f *fixture, res result) {
				var u map[string]any
				issued, err := f.fake.IssueSession(SessionParams{UserID: "new@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				_ = json.Unmarshal(issued.User, &u)
				if u["created_at"] != "2024-01-15T09:30:00.000Z" || u["updated_at"] != u["created_at"] || u["first_name"] != nil {
					t.Errorf("user %s", issued.User)
				}
			},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			token := str(f.signIn(UserBob).body, "refresh_token")
			f.fake.PutUser(tc.user(f))
			res := f.authenticate(f.refreshCall(token, ""))
			if res.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", res.status, res.raw)
			}
			tc.check(t, f, res)
		})
	}
}
