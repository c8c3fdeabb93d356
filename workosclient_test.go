package authkit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Secrets the fake API receives; no error message may contain them.
const (
	testWorkOSClientID     = "client_01HTEST"
	testWorkOSAPIKey       = "sk_test_SECRETKEY0123"
	testWorkOSCode         = "01HCODESECRET"
	testWorkOSVerifier     = "VerifierSecret-0123456789abcdefghijklmnopqr"
	testWorkOSRefreshToken = "RefreshSecretYz0123"
)

const testWorkOSSuccessBody = `{
  "user": {
    "object": "user",
    "id": "user_01H",
    "email": "ada@example.com",
    "email_verified": true,
    "first_name": "Ada",
    "last_name": null,
    "profile_picture_url": null,
    "last_sign_in_at": "2024-05-01T10:00:00.000Z",
    "locale": null,
    "created_at": "2024-01-01T00:00:00.000Z",
    "updated_at": "2024-05-01T10:00:00.000Z",
    "external_id": "ext-1",
    "metadata": {"plan": "pro"},
    "future_field": 42
  },
  "organization_id": "org_01H",
  "access_token": "eyJ.access.token",
  "refresh_token": "new-refresh",
  "impersonator": {"email": "admin@example.com", "reason": null},
  "authentication_method": "SSO",
  "oauth_tokens": {"access_token": "x", "refresh_token": "y", "expires_at": 1, "scopes": []}
}`

// testWorkOSServer serves handler and returns a client for it and a counter
// of the requests the handler saw.
func testWorkOSServer(t *testing.T, apiKey string, timeout time.Duration, handler http.HandlerFunc) (*workosClient, *int32) {
	t.Helper()
	hits := new(int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt32(hits, 1)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return newWorkOSClient(srv.URL, testWorkOSClientID, apiKey, timeout), hits
}

func testWorkOSReply(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// testWorkOSAsError asserts that err is a *workosError, the way the
// middleware will inspect it, and that it leaks none of the request's
// secrets.
func testWorkOSAsError(t *testing.T, err error) *workosError {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
	we, ok := err.(*workosError)
	if !ok {
		t.Fatalf("error %v is %T, want *workosError", err, err)
	}
	msg := err.Error()
	for _, secret := range []string{testWorkOSAPIKey, testWorkOSCode, testWorkOSVerifier, testWorkOSRefreshToken} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
	return we
}

func TestWorkOSBaseURL(t *testing.T) {
	tests := []struct {
		name     string
		hostname string
		https    bool
		port     string
		want     string
	}{
		{"default host", "", true, "", "https://api.workos.com"},
		{"custom host over http", "localhost", false, "", "http://localhost"},
		{"custom port", "auth.example.com", true, "8443", "https://auth.example.com:8443"},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			if got := workosBaseURL(tc.hostname, tc.https, tc.port); got != tc.want {
				t.Errorf("workosBaseURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWorkOSAuthorizeURL(t *testing.T) {
	c := newWorkOSClient("https://api.workos.com/", "client_123", "sk", 0)
	tests := []struct {
		name   string
		params workosAuthorizeParams
		want   string
	}{
		{
			name: "sorted keys, sealed state with * and ~, empties omitted",
			params: workosAuthorizeParams{
				RedirectURI:   "https://app.example.com/callback",
				State:         "Fe26.2*1*abc-_.~xyz**99*mac~2",
				CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
				ScreenHint:    "sign-in",
			},
			want: "https://api.workos.com/user_management/authorize?" +
				"client_id=client_123" +
				"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" +
				"&code_challenge_method=S256" +
				"&provider=authkit" +
				"&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback" +
				"&response_type=code" +
				"&screen_hint=sign-in" +
				"&state=Fe26.2%2A1%2Aabc-_.~xyz%2A%2A99%2Amac~2",
		},
		{
			name: "sign-up for an organization with every hint",
			params: workosAuthorizeParams{
				RedirectURI:    "http://localhost:3000/cb?x=1&y=2",
				State:          "s",
				CodeChallenge:  "ch",
				ScreenHint:     "sign-up",
				OrganizationID: "org_01H",
				LoginHint:      "ada lovelace+test@example.com",
				DomainHint:     "example.com",
				ConnectionID:   "conn_01H",
				Prompt:         "consent",
			},
			want: "https://api.workos.com/user_management/authorize?" +
				"client_id=client_123" +
				"&code_challenge=ch" +
				"&code_challenge_method=S256" +
				"&connection_id=conn_01H" +
				"&domain_hint=example.com" +
				"&login_hint=ada+lovelace%2Btest%40example.com" +
				"&organization_id=org_01H" +
				"&prompt=consent" +
				"&provider=authkit" +
				"&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fx%3D1%26y%3D2" +
				"&response_type=code" +
				"&screen_hint=sign-up" +
				"&state=s",
		},
		{
			name:   "encodeURIComponent marks: ! ' * escaped, ( ) literal, UTF-8 percent-encoded",
			params: workosAuthorizeParams{LoginHint: "a!b'c*d(e)f é"},
			want: "https://api.workos.com/user_management/authorize?" +
				"client_id=client_123" +
				"&login_hint=a%21b%27c%2Ad(e)f+%C3%A9" +
				"&provider=authkit" +
				"&response_type=code",
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			if got := c.authorizeURL(tc.params); got != tc.want {
				t.Errorf("authorizeURL =\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestWorkOSLogoutURL(t *testing.T) {
	c := newWorkOSClient("https://api.workos.com", "client_123", "sk", 0)
	tests := []struct {
		name      string
		sessionID string
		returnTo  string
		want      string
	}{
		{
			name:      "without return_to",
			sessionID: "session_01H",
			want:      "https://api.workos.com/user_management/sessions/logout?session_id=session_01H",
		},
		{
			name:      "with return_to, URLSearchParams encoding",
			sessionID: "session_01H",
			returnTo:  "https://app.example.com/bye now?a=*~",
			want: "https://api.workos.com/user_management/sessions/logout?session_id=session_01H" +
				"&return_to=https%3A%2F%2Fapp.example.com%2Fbye+now%3Fa%3D*%7E",
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			if got := c.logoutURL(tc.sessionID, tc.returnTo); got != tc.want {
				t.Errorf("logoutURL =\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestWorkOSJWKSURL(t *testing.T) {
	c := newWorkOSClient("http://localhost:8080", "client_123", "", 0)
	if got, want := c.jwksURL(), "http://localhost:8080/sso/jwks/client_123"; got != want {
		t.Errorf("jwksURL = %q, want %q", got, want)
	}
}

func TestWorkOSAuthenticateRequest(t *testing.T) {
	type seen struct {
		method, path, contentType, accept, userAgent, authorization string
		body                                                        string
	}
	tests := []struct {
		name     string
		apiKey   string
		call     func(c *workosClient) error
		wantAuth string
		wantBody string
	}{
		{
			name:   "code grant with API key",
			apiKey: testWorkOSAPIKey,
			call: func(c *workosClient) error {
				_, err := c.authenticateWithCode(context.Background(), testWorkOSCode, testWorkOSVerifier)
				return err
			},
			wantAuth: "Bearer " + testWorkOSAPIKey,
			wantBody: `{"grant_type":"authorization_code","client_id":"` + testWorkOSClientID +
				`","client_secret":"` + testWorkOSAPIKey + `","code":"` + testWorkOSCode +
				`","code_verifier":"` + testWorkOSVerifier + `"}`,
		},
		{
			name: "code grant as public client",
			call: func(c *workosClient) error {
				_, err := c.authenticateWithCode(context.Background(), testWorkOSCode, testWorkOSVerifier)
				return err
			},
			wantBody: `{"grant_type":"authorization_code","client_id":"` + testWorkOSClientID +
				`","code":"` + testWorkOSCode + `","code_verifier":"` + testWorkOSVerifier + `"}`,
		},
		{
			name:   "refresh grant with organization",
			apiKey: testWorkOSAPIKey,
			call: func(c *workosClient) error {
				_, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "org_01H")
				return err
			},
			wantAuth: "Bearer " + testWorkOSAPIKey,
			wantBody: `{"grant_type":"refresh_token","client_id":"` + testWorkOSClientID +
				`","client_secret":"` + testWorkOSAPIKey + `","refresh_token":"` + testWorkOSRefreshToken +
				`","organization_id":"org_01H"}`,
		},
		{
			name:   "refresh grant without organization",
			apiKey: testWorkOSAPIKey,
			call: func(c *workosClient) error {
				_, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "")
				return err
			},
			wantAuth: "Bearer " + testWorkOSAPIKey,
			wantBody: `{"grant_type":"refresh_token","client_id":"` + testWorkOSClientID +
				`","client_secret":"` + testWorkOSAPIKey + `","refresh_token":"` + testWorkOSRefreshToken + `"}`,
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan seen, 1)
			c, _ := testWorkOSServer(t, tc.apiKey, 0, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- seen{
					method: r.Method, path: r.URL.Path,
					contentType: r.Header.Get("Content-Type"), accept: r.Header.Get("Accept"),
					userAgent: r.Header.Get("User-Agent"), authorization: r.Header.Get("Authorization"),
					body: string(b),
				}
				testWorkOSReply(200, "application/json", testWorkOSSuccessBody)(w, r)
			})
			if err := tc.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			s := <-got
			want := seen{
				method: "POST", path: "/user_management/authenticate",
				contentType: "application/json", accept: "application/json, text/plain, */*",
				userAgent: "traefik-authkit", authorization: tc.wantAuth,
				body: tc.wantBody,
			}
			if s != want {
				t.Errorf("request =\n %+v\nwant\n %+v", s, want)
			}
		})
	}
}

func TestWorkOSAuthenticateSuccess(t *testing.T) {
	c, _ := testWorkOSServer(t, testWorkOSAPIKey, 0, testWorkOSReply(200, "application/json; charset=utf-8", testWorkOSSuccessBody))
	got, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "")
	if err != nil {
		t.Fatalf("authenticateWithRefreshToken: %v", err)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"access token", got.AccessToken, "eyJ.access.token"},
		{"refresh token", got.RefreshToken, "new-refresh"},
		{"organization", got.OrganizationID, "org_01H"},
		{"authentication method", got.AuthenticationMethod, "SSO"},
		{"user id", got.User.ID, "user_01H"},
		{"user email", got.User.Email, "ada@example.com"},
		{"user first name", testWorkOSDeref(got.User.FirstName), "Ada"},
		{"user last name is null", testWorkOSDeref(got.User.LastName), "<nil>"},
		{"user external id", testWorkOSDeref(got.User.ExternalID), "ext-1"},
		{"user metadata raw", string(got.User.Metadata), `{"plan": "pro"}`},
		{"impersonator email", got.Impersonator.Email, "admin@example.com"},
		{"impersonator reason is null", testWorkOSDeref(got.Impersonator.Reason), "<nil>"},
		{"raw user keeps unknown fields", testWorkOSJSONField(t, got.UserJSON, "future_field"), "42"},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	t.Run("email verified", func(t *testing.T) {
		if !got.User.EmailVerified {
			t.Error("EmailVerified = false, want true")
		}
	})
}

func testWorkOSDeref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func testWorkOSJSONField(t *testing.T, raw json.RawMessage, key string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("unmarshal %s: %v", raw, err)
	}
	return string(m[key])
}

func TestWorkOSSessionUser(t *testing.T) {
	tests := []struct {
		name    string
		apiUser string
		want    string
		wantErr bool
	}{
		{
			name: "full user, unknown keys dropped, SDK key order",
			apiUser: `{"object":"user","id":"user_1","email":"a@b.c","email_verified":true,"first_name":"Ada",
				"last_name":"Lovelace","profile_picture_url":"https://p/x.png","last_sign_in_at":"2024-05-01T10:00:00.000Z",
				"locale":"en-GB","created_at":"2024-01-01T00:00:00.000Z","updated_at":"2024-05-02T00:00:00.000Z",
				"external_id":"ext-1","metadata":{ "plan" : "pro" },"name":"Ada Lovelace","future":1}`,
			want: `{"object":"user","id":"user_1","email":"a@b.c","emailVerified":true,"firstName":"Ada",` +
				`"profilePictureUrl":"https://p/x.png","lastName":"Lovelace","lastSignInAt":"2024-05-01T10:00:00.000Z",` +
				`"locale":"en-GB","createdAt":"2024-01-01T00:00:00.000Z","updatedAt":"2024-05-02T00:00:00.000Z",` +
				`"externalId":"ext-1","metadata":{"plan":"pro"}}`,
		},
		{
			name: "nulls stay null, null external_id and metadata get SDK defaults",
			apiUser: `{"object":"user","id":"user_1","email":"a@b.c","email_verified":false,"first_name":null,
				"last_name":null,"profile_picture_url":null,"last_sign_in_at":null,"locale":null,
				"created_at":"c","updated_at":"u","external_id":null,"metadata":null}`,
			want: `{"object":"user","id":"user_1","email":"a@b.c","emailVerified":false,"firstName":null,` +
				`"profilePictureUrl":null,"lastName":null,"lastSignInAt":null,"locale":null,` +
				`"createdAt":"c","updatedAt":"u","externalId":null,"metadata":{}}`,
		},
		{
			name:    "absent keys become null, absent metadata {}",
			apiUser: `{"object":"user","id":"user_1","email":"a@b.c","email_verified":true,"created_at":"c","updated_at":"u"}`,
			want: `{"object":"user","id":"user_1","email":"a@b.c","emailVerified":true,"firstName":null,` +
				`"profilePictureUrl":null,"lastName":null,"lastSignInAt":null,"locale":null,` +
				`"createdAt":"c","updatedAt":"u","externalId":null,"metadata":{}}`,
		},
		{name: "not an object", apiUser: `["user"]`, wantErr: true},
		{name: "null", apiUser: `null`, wantErr: true},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			got, err := workosSessionUser(json.RawMessage(tc.apiUser))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("workosSessionUser: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("got\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestWorkOSAuthenticateBadSuccess(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"JSON body without JSON Content-Type", "text/plain", testWorkOSSuccessBody},
		{"invalid JSON", "application/json", `{"access_token":` + testWorkOSRefreshToken},
		{"missing access_token", "application/json", `{"user":{"id":"u"},"refresh_token":"r"}`},
		{"missing refresh_token", "application/json", `{"user":{"id":"u"},"access_token":"a"}`},
		{"missing user", "application/json", `{"access_token":"a","refresh_token":"r"}`},
		{"user without id", "application/json", `{"user":{"object":"user"},"access_token":"a","refresh_token":"r"}`},
		{"user of the wrong shape", "application/json", `{"user":"user_1","access_token":"a","refresh_token":"r"}`},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			c, _ := testWorkOSServer(t, testWorkOSAPIKey, 0, testWorkOSReply(200, tc.contentType, tc.body))
			resp, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "")
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			we := testWorkOSAsError(t, err)
			if we.Status != 200 || we.Transient {
				t.Errorf("Status, Transient = %d, %v; want 200, false", we.Status, we.Transient)
			}
		})
	}
}

// TestWorkOSAuthenticateErrorResponses has one case per row of the C.4
// table (WORKOS-PROTOCOL.md) plus the edges of its transient rule.
func TestWorkOSAuthenticateErrorResponses(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		header      map[string]string
		body        string

		wantCode, wantDescription, wantRedirect string
		wantRetryAfter                          time.Duration
		wantTransient                           bool
	}{
		{
			name: "400 invalid_grant", status: 400, contentType: "application/json",
			body:     `{"error":"invalid_grant","error_description":"Session has already ended."}`,
			wantCode: "invalid_grant", wantDescription: "Session has already ended.",
		},
		{
			name: "400 code, errors, message", status: 400, contentType: "application/json",
			body:     `{"code":"invalid_request_parameters","errors":[{"field":"code","code":"required"}],"message":"Validation failed"}`,
			wantCode: "invalid_request_parameters", wantDescription: "Validation failed",
		},
		{
			name: "401", status: 401, contentType: "application/json",
			body: `{"message":"Unauthorized"}`, wantDescription: "Unauthorized",
		},
		{
			name: "403 sso_required with authkit_redirect_url", status: 403, contentType: "application/json",
			body: `{"error":"sso_required","error_description":"User must authenticate using one of the matching connections.",` +
				`"connection_ids":["conn_1"],"email":"a@b.c","pending_authentication_token":"pat",` +
				`"authkit_redirect_url":"https://auth.example.com/sso?x=1"}`,
			wantCode: "sso_required", wantDescription: "User must authenticate using one of the matching connections.",
			wantRedirect: "https://auth.example.com/sso?x=1",
		},
		{
			name: "403 mfa_enrollment", status: 403, contentType: "application/json",
			body:     `{"error":"mfa_enrollment","error_description":"The user must enroll in MFA.","user":{"id":"u"}}`,
			wantCode: "mfa_enrollment", wantDescription: "The user must enroll in MFA.",
		},
		{
			name: "404", status: 404, contentType: "application/json",
			body: `{"message":"Not Found"}`, wantDescription: "Not Found",
		},
		{
			name: "409", status: 409, contentType: "application/json",
			body: `{"code":"conflict","message":"Conflict"}`, wantCode: "conflict", wantDescription: "Conflict",
		},
		{
			name: "422", status: 422, contentType: "application/json",
			body:     `{"code":"invalid_request_parameters","message":"Unprocessable","errors":[]}`,
			wantCode: "invalid_request_parameters", wantDescription: "Unprocessable",
		},
		{
			name: "408 JSON", status: 408, contentType: "application/json",
			body: `{"error":"Request timeout"}`, wantCode: "Request timeout", wantTransient: true,
		},
		{
			name: "429 with Retry-After", status: 429, contentType: "application/json",
			header: map[string]string{"Retry-After": "7"},
			body:   `{"message":"Too many requests"}`, wantDescription: "Too many requests",
			wantRetryAfter: 7 * time.Second, wantTransient: true,
		},
		{
			name: "500 JSON", status: 500, contentType: "application/json",
			body: `{"message":"Internal Server Error"}`, wantDescription: "Internal Server Error", wantTransient: true,
		},
		{
			name: "502 JSON", status: 502, contentType: "application/json",
			body: `{"message":"Bad Gateway"}`, wantDescription: "Bad Gateway", wantTransient: true,
		},
		{
			name: "503 JSON", status: 503, contentType: "application/json",
			body: `{"message":"Service Unavailable"}`, wantDescription: "Service Unavailable", wantTransient: true,
		},
		{
			name: "504 JSON", status: 504, contentType: "application/json",
			body: `{"message":"Gateway Timeout"}`, wantDescription: "Gateway Timeout", wantTransient: true,
		},
		{
			name: "500 JSON body under a non-JSON Content-Type", status: 500, contentType: "text/plain",
			body: `{"message":"oops"}`, wantDescription: "oops", wantTransient: true,
		},
		{
			name: "503 JSON that is not an object", status: 503, contentType: "application/json",
			body: `"maintenance"`, wantTransient: true,
		},
		{
			name: "501 JSON", status: 501, contentType: "application/json",
			body: `{"message":"Not Implemented"}`, wantDescription: "Not Implemented",
		},
		{
			name: "505 JSON", status: 505, contentType: "application/json",
			body: `{"message":"HTTP Version Not Supported"}`, wantDescription: "HTTP Version Not Supported",
		},
		{
			name: "502 HTML is transient, whatever the body", status: 502, contentType: "text/html",
			body: `<html><body><h1>502 Bad Gateway</h1></body></html>`, wantTransient: true,
		},
		{
			name: "503 empty body is transient", status: 503, wantTransient: true,
		},
		{
			name: "429 HTML is transient", status: 429, contentType: "text/html",
			header: map[string]string{"Retry-After": "3"},
			body:   `<html>slow down</html>`, wantRetryAfter: 3 * time.Second, wantTransient: true,
		},
		{
			name: "400 HTML is terminal", status: 400, contentType: "text/html",
			body: `<html>bad request</html>`,
		},
		{
			name: "307 redirect is not followed", status: 307,
			header: map[string]string{"Location": "/elsewhere"},
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			c, hits := testWorkOSServer(t, testWorkOSAPIKey, 0, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("X-Request-ID", "req_123")
				testWorkOSReply(tc.status, tc.contentType, tc.body)(w, r)
			})
			resp, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "org_1")
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			we := testWorkOSAsError(t, err)
			got := workosError{
				Status: we.Status, Code: we.Code, Description: we.Description,
				AuthkitRedirectURL: we.AuthkitRedirectURL, RequestID: we.RequestID,
				RetryAfter: we.RetryAfter, Transient: we.Transient,
			}
			want := workosError{
				Status: tc.status, Code: tc.wantCode, Description: tc.wantDescription,
				AuthkitRedirectURL: tc.wantRedirect, RequestID: "req_123",
				RetryAfter: tc.wantRetryAfter, Transient: tc.wantTransient,
			}
			if got != want {
				t.Errorf("error fields =\n %+v\nwant\n %+v", got, want)
			}
			if n := atomic.LoadInt32(hits); n != 1 {
				t.Errorf("server saw %d requests, want exactly 1 (no retries, no redirects)", n)
			}
		})
	}
}

func TestWorkOSAuthenticateTransportErrors(t *testing.T) {
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	tests := []struct {
		name    string
		baseURL string // when empty, a server running handler
		timeout time.Duration
		ctxWait time.Duration // when non-zero, the context's deadline
		handler http.HandlerFunc
	}{
		{name: "connection refused", baseURL: refusedURL},
		{
			name: "client timeout", timeout: 100 * time.Millisecond,
			handler: testWorkOSStall,
		},
		{
			name: "context deadline", ctxWait: 100 * time.Millisecond,
			handler: testWorkOSStall,
		},
		{
			name: "connection closed before the response",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				conn.Close()
			},
		},
		{
			name: "connection dropped mid-body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
				buf.WriteString(`{"user":{"object":"user","id":"user_01H"`)
				buf.Flush()
				conn.Close()
			},
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			c := newWorkOSClient(tc.baseURL, testWorkOSClientID, testWorkOSAPIKey, tc.timeout)
			if tc.baseURL == "" {
				c, _ = testWorkOSServer(t, testWorkOSAPIKey, tc.timeout, tc.handler)
			}
			ctx := context.Background()
			if tc.ctxWait > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxWait)
				defer cancel()
			}
			start := time.Now()
			resp, err := c.authenticateWithCode(ctx, testWorkOSCode, testWorkOSVerifier)
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			we := testWorkOSAsError(t, err)
			if we.Status != 0 || !we.Transient {
				t.Errorf("Status, Transient = %d, %v; want 0, true (%v)", we.Status, we.Transient, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v, want the timeout to cut the request short", d)
			}
		})
	}
}

// testWorkOSStall answers only after the client has given up. It reads the
// body first: only then does net/http watch the connection and cancel the
// request's context when the client hangs up.
func testWorkOSStall(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

// TestWorkOSAuthenticateOversizedResponse: a body past the 1 MiB cap is
// not read, and the status alone classifies the answer.
func TestWorkOSAuthenticateOversizedResponse(t *testing.T) {
	body := `{"message":"` + strings.Repeat("x", 2*workosMaxResponseBytes) + `"}`
	tests := []struct {
		name          string
		status        int
		wantTransient bool
	}{
		{"503 is transient whatever the body", 503, true},
		{"429 is transient whatever the body", 429, true},
		{"400 is terminal", 400, false},
		{"200 is an unusable answer", 200, false},
	}
	for _, tt := range tests {
		c, _ := testWorkOSServer(t, testWorkOSAPIKey, 0, testWorkOSReply(tt.status, "application/json", body))
		_, err := c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "")
		we := testWorkOSAsError(t, err)
		if we.Status != tt.status || we.Transient != tt.wantTransient {
			t.Errorf("%s: Status, Transient = %d, %v; want %d, %v", tt.name, we.Status, we.Transient, tt.status, tt.wantTransient)
		}
	}
}

func TestWorkOSAuthenticateRefusedLocally(t *testing.T) {
	tests := []struct {
		name   string
		apiKey string
		call   func(c *workosClient) (*workosAuthResponse, error)
	}{
		{
			name: "empty code", apiKey: testWorkOSAPIKey,
			call: func(c *workosClient) (*workosAuthResponse, error) {
				return c.authenticateWithCode(context.Background(), "", testWorkOSVerifier)
			},
		},
		{
			name: "public client without verifier",
			call: func(c *workosClient) (*workosAuthResponse, error) {
				return c.authenticateWithCode(context.Background(), testWorkOSCode, "")
			},
		},
		{
			name: "empty refresh token", apiKey: testWorkOSAPIKey,
			call: func(c *workosClient) (*workosAuthResponse, error) {
				return c.authenticateWithRefreshToken(context.Background(), "", "org_1")
			},
		},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			c, hits := testWorkOSServer(t, tc.apiKey, 0, testWorkOSReply(200, "application/json", testWorkOSSuccessBody))
			resp, err := tc.call(c)
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			we := testWorkOSAsError(t, err)
			if we.Status != 0 || we.Transient {
				t.Errorf("Status, Transient = %d, %v; want 0, false", we.Status, we.Transient)
			}
			if n := atomic.LoadInt32(hits); n != 0 {
				t.Errorf("server saw %d requests, want 0", n)
			}
		})
	}
}

// TestWorkOSErrorHidesEchoedSecrets checks that what a server echoes back
// (descriptions, codes, HTML pages) never reaches Error().
func TestWorkOSErrorHidesEchoedSecrets(t *testing.T) {
	echo := testWorkOSAPIKey + " " + testWorkOSCode + " " + testWorkOSVerifier + " " + testWorkOSRefreshToken
	quoted, _ := json.Marshal(echo)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
	}{
		{"description", 400, "application/json", `{"error":"invalid_grant","error_description":` + string(quoted) + `}`},
		{"message", 500, "application/json", `{"code":"server_error","message":` + string(quoted) + `}`},
		{"error code", 400, "application/json", `{"error":` + string(quoted) + `}`},
		{"HTML page", 502, "text/html", "<html>" + echo + "</html>"},
		{"success body", 200, "application/json", "not json " + echo},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			c, _ := testWorkOSServer(t, testWorkOSAPIKey, 0, testWorkOSReply(tc.status, tc.contentType, tc.body))
			_, err := c.authenticateWithCode(context.Background(), testWorkOSCode, testWorkOSVerifier)
			testWorkOSAsError(t, err)
			_, err = c.authenticateWithRefreshToken(context.Background(), testWorkOSRefreshToken, "")
			testWorkOSAsError(t, err)
		})
	}
}
