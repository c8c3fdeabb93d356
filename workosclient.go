package authkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	workosDefaultHostname = "api.workos.com"

	// workosDefaultTimeout is the WorkOS Node SDK's default. A zero
	// http.Client timeout would mean no timeout at all, which a proxy that
	// holds a user's request during a refresh cannot afford.
	workosDefaultTimeout = 60 * time.Second

	// workosMaxResponseBytes caps what is read from the API: an
	// authentication response is a few kilobytes, and a misbehaving server
	// must not make the proxy buffer without bound.
	workosMaxResponseBytes = 1 << 20

	workosUserAgent = "traefik-authkit"

	workosGrantCode    = "authorization_code"
	workosGrantRefresh = "refresh_token"
)

// workosClient calls the few WorkOS User Management endpoints that AuthKit
// needs. It is safe for concurrent use. It never retries: like the WorkOS
// SDK for /user_management/authenticate, it leaves that decision to the
// caller, which knows whether a refresh token may already have been rotated.
type workosClient struct {
	baseURL   string
	clientID  string
	apiKey    string
	http      *http.Client
	userAgent string
}

// newWorkOSClient returns a client for the API at baseURL (see
// workosBaseURL). An empty apiKey makes it a public client: no
// client_secret and no Authorization header are sent, so a code exchange
// then needs a PKCE verifier. A timeout ≤ 0 selects workosDefaultTimeout.
func newWorkOSClient(baseURL, clientID, apiKey string, timeout time.Duration) *workosClient {
	if timeout <= 0 {
		timeout = workosDefaultTimeout
	}
	hc := &http.Client{Timeout: timeout}
	// The request body carries the API key as client_secret, and net/http
	// re-sends a body on 307/308 even to another host: never follow.
	hc.CheckRedirect = workosRefuseRedirect
	return &workosClient{
		baseURL:   strings.TrimRight(baseURL, "/"),
		clientID:  clientID,
		apiKey:    apiKey,
		http:      hc,
		userAgent: workosUserAgent,
	}
}

// workosRefuseRedirect names its parameters because yaegi v0.16.1 mis-wraps
// an interpreted func with unnamed ones when net/http calls it (reflect.Set
// panic: *http.Request is not assignable to error).
func workosRefuseRedirect(req *http.Request, via []*http.Request) error {
	return http.ErrUseLastResponse
}

// workosBaseURL builds the API base URL the way the WorkOS SDK does from
// authkit-nextjs's WORKOS_API_HOSTNAME, WORKOS_API_HTTPS and WORKOS_API_PORT:
// scheme://hostname[:port], with api.workos.com when hostname is empty.
func workosBaseURL(hostname string, https bool, port string) string {
	if hostname == "" {
		hostname = workosDefaultHostname
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	if port == "" {
		return scheme + "://" + hostname
	}
	return scheme + "://" + hostname + ":" + port
}

// workosAuthorizeParams are the per-request inputs of the AuthKit
// authorization URL. Empty fields are left out of the URL.
type workosAuthorizeParams struct {
	RedirectURI    string
	State          string // the sealed PKCE state
	CodeChallenge  string // base64url(SHA-256(verifier)), method S256
	ScreenHint     string // "sign-in" or "sign-up"
	OrganizationID string
	LoginHint      string
	DomainHint     string
	ConnectionID   string
	Prompt         string
	MaxAge         string // seconds; recent authentication required
}

// authorizeURL returns the URL that starts an AuthKit sign-in. Keys are
// sorted and values encoded exactly as the WorkOS SDK does, so that URLs
// match those authkit-nextjs produces for the same inputs.
func (c *workosClient) authorizeURL(p workosAuthorizeParams) string {
	params := map[string]string{
		"client_id":       c.clientID,
		"code_challenge":  p.CodeChallenge,
		"connection_id":   p.ConnectionID,
		"domain_hint":     p.DomainHint,
		"login_hint":      p.LoginHint,
		"max_age":         p.MaxAge,
		"organization_id": p.OrganizationID,
		"prompt":          p.Prompt,
		"provider":        "authkit",
		"redirect_uri":    p.RedirectURI,
		"response_type":   "code",
		"screen_hint":     p.ScreenHint,
		"state":           p.State,
	}
	// A method without a challenge would make the API reject the request.
	if p.CodeChallenge != "" {
		params["code_challenge_method"] = "S256"
	}
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)

	var b strings.Builder
	b.WriteString(c.baseURL)
	b.WriteString("/user_management/authorize?")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(workosAuthorizeEscape(params[k]))
	}
	return b.String()
}

// url.QueryEscape leaves only A-Z a-z 0-9 - _ . ~ literal and turns space
// into '+'. The SDK's encoding (encodeURIComponent, space as '+', and
// ! ' * escaped) additionally leaves ( and ); URLSearchParams leaves * but
// escapes ~. The replacers turn one into the other: every '%' that
// QueryEscape writes starts a triple, so no match can straddle two.
var (
	workosAuthorizeUnescaper = strings.NewReplacer("%28", "(", "%29", ")")
	workosFormUnescaper      = strings.NewReplacer("%2A", "*", "~", "%7E")
)

func workosAuthorizeEscape(s string) string {
	return workosAuthorizeUnescaper.Replace(url.QueryEscape(s))
}

func workosFormEscape(s string) string {
	return workosFormUnescaper.Replace(url.QueryEscape(s))
}

// logoutURL returns the URL that ends the WorkOS session sessionID (the
// access token's sid) and then sends the browser to returnTo, if given.
func (c *workosClient) logoutURL(sessionID, returnTo string) string {
	u := c.baseURL + "/user_management/sessions/logout?session_id=" + workosFormEscape(sessionID)
	if returnTo != "" {
		u += "&return_to=" + workosFormEscape(returnTo)
	}
	return u
}

// jwksURL returns the URL of the key set that signs this client's access
// tokens.
func (c *workosClient) jwksURL() string {
	return c.baseURL + "/sso/jwks/" + url.PathEscape(c.clientID)
}

// workosAuthResponse is a successful /user_management/authenticate answer.
// Fields are flat and exported because the interpreter Traefik runs plugins
// in neither flattens embedded structs nor calls custom JSON methods.
type workosAuthResponse struct {
	// User is UserJSON decoded; UserJSON keeps the API's object intact so
	// that fields this struct does not know are not lost.
	User                 workosUser          `json:"-"`
	UserJSON             json.RawMessage     `json:"user"`
	OrganizationID       string              `json:"organization_id,omitempty"`
	AccessToken          string              `json:"access_token"`
	RefreshToken         string              `json:"refresh_token"`
	Impersonator         *workosImpersonator `json:"impersonator,omitempty"`
	AuthenticationMethod string              `json:"authentication_method,omitempty"`
}

// workosUser is the API's (snake_case) user object. Nullable strings are
// pointers so that null stays distinguishable from "".
type workosUser struct {
	Object            string  `json:"object"`
	ID                string  `json:"id"`
	Email             string  `json:"email"`
	EmailVerified     bool    `json:"email_verified"`
	FirstName         *string `json:"first_name"`
	LastName          *string `json:"last_name"`
	ProfilePictureURL *string `json:"profile_picture_url"`
	LastSignInAt      *string `json:"last_sign_in_at"`
	Locale            *string `json:"locale"`
	CreatedAt         string  `json:"created_at"`
	UpdatedAt         string  `json:"updated_at"`
	ExternalID        *string `json:"external_id"`
	// Metadata is documented as string→string, but is kept raw so that a
	// value of another type cannot make a sign-in fail.
	Metadata json.RawMessage `json:"metadata"`
}

// workosImpersonator is present when an admin signed in as the user. It has
// the same keys in the API and in the sealed session.
type workosImpersonator struct {
	Email  string  `json:"email"`
	Reason *string `json:"reason"`
}

// workosSessionUserKeys lists, in the order the WorkOS Node SDK 8.13.0
// writes them, the camelCase keys of the user that authkit-nextjs seals into
// its session cookie, each with the API key it comes from.
var workosSessionUserKeys = []struct{ session, api string }{
	{"object", "object"},
	{"id", "id"},
	{"email", "email"},
	{"emailVerified", "email_verified"},
	{"firstName", "first_name"},
	{"profilePictureUrl", "profile_picture_url"},
	{"lastName", "last_name"},
	{"lastSignInAt", "last_sign_in_at"},
	{"locale", "locale"},
	{"createdAt", "created_at"},
	{"updatedAt", "updated_at"},
	{"externalId", "external_id"},
	{"metadata", "metadata"},
}

// workosSessionUser converts the API's user object into the form that
// authkit-nextjs seals, so that a session written by this plugin reads
// the same in a Next.js app on the same cookie. Like the SDK it keeps only
// the known keys; unlike the SDK (which drops absent keys) it writes every
// key, with null when absent. Values are copied verbatim, except that a
// missing external_id becomes null and a missing metadata becomes {}.
func workosSessionUser(apiUser json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(apiUser, &fields); err != nil {
		return nil, errors.New("workos: user is not a JSON object: " + err.Error())
	}
	if fields == nil {
		return nil, errors.New("workos: user is null")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range workosSessionUserKeys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + k.session + `":`)
		v := fields[k.api]
		if len(v) == 0 || string(v) == "null" {
			if k.session == "metadata" {
				b.WriteString("{}")
			} else {
				b.WriteString("null")
			}
			continue
		}
		if err := json.Compact(&b, v); err != nil {
			return nil, errors.New("workos: user." + k.api + ": " + err.Error())
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// workosError is the only error type the authenticate calls return, so
// callers can use a plain err.(*workosError) assertion (the interpreter
// Traefik uses cannot run errors.As on interpreted types).
//
// Error() never includes what the server said beyond a short code: an
// error description may echo request values, and these requests carry
// codes, verifiers, refresh tokens and the API key.
type workosError struct {
	// Status is the HTTP status, or 0 when no complete response arrived
	// (network failure, timeout, connection lost mid-body) or the request
	// was refused locally.
	Status int
	// Code is the body's "error" (OAuth style: invalid_grant, sso_required,
	// mfa_enrollment, …) or, failing that, its "code" ({code, errors,
	// message} style).
	Code string
	// Description is the body's "error_description", or else "message".
	// It comes from the server verbatim: log it with care.
	Description string
	// AuthkitRedirectURL is where WorkOS wants the browser to go to
	// satisfy the error (for example sso_required on an organization
	// switch).
	AuthkitRedirectURL string
	// RequestID is the X-Request-ID response header, for WorkOS support.
	RequestID string
	// RetryAfter is the Retry-After header in seconds, or 0.
	RetryAfter time.Duration
	// Transient is true for network failures, timeouts and the statuses
	// 408, 429, 500, 502, 503 and 504 whatever the body (SPEC.md "Refresh
	// and keys"). authkit-nextjs counts an HTML 502 from a proxy in front of
	// WorkOS as terminal and signs the user out; the proxy's outage says
	// nothing about the refresh token, so here it keeps the session.
	// Anything else is terminal: the refresh token will not work later.
	Transient bool

	op     string // "refresh_token grant", "API key validation", …
	reason string
}

func (e *workosError) Error() string {
	return "workos: " + e.op + ": " + e.reason
}

// authenticateWithCode exchanges an authorization code and its PKCE
// verifier for tokens. Every error is a *workosError.
func (c *workosClient) authenticateWithCode(ctx context.Context, code, codeVerifier string) (*workosAuthResponse, error) {
	if code == "" {
		return nil, &workosError{op: workosGrantCode + " grant", reason: "no authorization code"}
	}
	// The SDK refuses the same way: a public client proves itself only
	// through the verifier.
	if codeVerifier == "" && c.apiKey == "" {
		return nil, &workosError{op: workosGrantCode + " grant", reason: "neither a code verifier nor an API key"}
	}
	return c.authenticate(ctx, workosAuthenticateRequest{
		GrantType:    workosGrantCode,
		Code:         code,
		CodeVerifier: codeVerifier,
	})
}

// authenticateWithRefreshToken trades a refresh token for new tokens,
// scoped to organizationID when it is not empty (authkit-nextjs passes the
// org_id of the current access token, or the target of an organization
// switch). Refresh tokens are single-use: on success the old one is spent.
// Every error is a *workosError.
func (c *workosClient) authenticateWithRefreshToken(ctx context.Context, refreshToken, organizationID string) (*workosAuthResponse, error) {
	if refreshToken == "" {
		return nil, &workosError{op: workosGrantRefresh + " grant", reason: "no refresh token"}
	}
	return c.authenticate(ctx, workosAuthenticateRequest{
		GrantType:      workosGrantRefresh,
		RefreshToken:   refreshToken,
		OrganizationID: organizationID,
	})
}

// workosAuthenticateRequest is the JSON body of both grants, fields in the
// SDK's order. Empty optional values are omitted, as the SDK omits
// undefined ones.
type workosAuthenticateRequest struct {
	GrantType      string `json:"grant_type"`
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret,omitempty"`
	Code           string `json:"code,omitempty"`
	CodeVerifier   string `json:"code_verifier,omitempty"`
	RefreshToken   string `json:"refresh_token,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
}

func (c *workosClient) authenticate(ctx context.Context, body workosAuthenticateRequest) (*workosAuthResponse, error) {
	op := body.GrantType + " grant"
	body.ClientID = c.clientID
	// The SDK sends the API key both as client_secret and as the Bearer
	// token; the API accepts either, so do the same.
	body.ClientSecret = c.apiKey
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &workosError{op: op, reason: "encoding request: " + err.Error()}
	}
	resp, data, err := c.post(ctx, op, "/user_management/authenticate", payload)
	if err != nil {
		return nil, err
	}
	return workosParseAuthResponse(op, resp, data)
}

// post sends a JSON body to the API with the API key as Bearer, and
// returns a 2xx response with its body, read up to the cap. Every error is
// a *workosError naming op.
func (c *workosClient) post(ctx context.Context, op, path string, payload []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(payload))
	if err != nil {
		return nil, nil, &workosError{op: op, reason: "building request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/plain, */*")
	req.Header.Set("User-Agent", c.userAgent)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, workosTransportError(op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, workosMaxResponseBytes+1))
	if err != nil {
		// Headers arrived but the body did not: as for fetch's
		// "terminated", the connection failed, not the API.
		return nil, nil, workosTransportError(op, err)
	}
	if len(data) > workosMaxResponseBytes {
		// The status still decides: a 503 is transient however long the
		// page that came with it.
		return nil, nil, &workosError{op: op, Status: resp.StatusCode, Transient: workosTransientStatus(resp.StatusCode),
			reason: "HTTP " + strconv.Itoa(resp.StatusCode) + " with a body larger than 1 MiB"}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, nil, workosResponseError(op, resp, data)
	}
	return resp, data, nil
}

// workosTransportError reports a request that got no complete response.
// Such failures are transient (fetch's TypeError in authkit-nextjs's rule;
// a timeout is the SDK's 408). The underlying message names the failure,
// never the request body.
func workosTransportError(op string, err error) error {
	reason := "network error: "
	if ue, ok := err.(*url.Error); ok {
		if ue.Timeout() {
			reason = "timed out: "
		}
		err = ue.Err // the URL it adds is already known to the operator
	}
	return &workosError{op: op, Transient: true, reason: reason + err.Error()}
}

// workosResponseError classifies a non-2xx response as authkit-nextjs
// does. The SDK parses an error body as JSON whatever its Content-Type; a
// body that is not JSON (an HTML page from a load balancer) makes the SDK
// throw a parse error without a status, which nextjs treats as terminal.
func workosResponseError(op string, resp *http.Response, body []byte) error {
	e := &workosError{
		op:         op,
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-ID"),
		RetryAfter: workosRetryAfter(resp.Header.Get("Retry-After")),
	}
	status := "HTTP " + strconv.Itoa(resp.StatusCode)
	e.Transient = workosTransientStatus(resp.StatusCode)
	if !json.Valid(body) {
		e.reason = status + " with a non-JSON body"
		return e
	}
	var fields map[string]json.RawMessage
	// A JSON body that is not an object carries no fields; it still
	// counts as JSON for the classification.
	if json.Unmarshal(body, &fields) == nil {
		e.Code = workosStringField(fields, "error")
		if e.Code == "" {
			e.Code = workosStringField(fields, "code")
		}
		e.Description = workosStringField(fields, "error_description")
		if e.Description == "" {
			e.Description = workosStringField(fields, "message")
		}
		e.AuthkitRedirectURL = workosStringField(fields, "authkit_redirect_url")
	}
	e.reason = status
	if workosIsPlainCode(e.Code) {
		e.reason += " " + e.Code
	}
	return e
}

// workosTransientStatus reports whether a status is one of authkit-nextjs's
// transient ones (408, 429, 500, 502, 503, 504), whatever the body.
func workosTransientStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func workosStringField(fields map[string]json.RawMessage, key string) string {
	var s string
	if json.Unmarshal(fields[key], &s) != nil {
		return ""
	}
	return s
}

// workosIsPlainCode reports whether a server-chosen code looks like one
// (invalid_grant, sso_required, …) and may therefore go into Error().
func workosIsPlainCode(code string) bool {
	return code != "" && len(code) <= 64 &&
		strings.Trim(code, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
}

// workosRetryAfter reads Retry-After as the SDK does: a number of seconds.
func workosRetryAfter(v string) time.Duration {
	// 32 bits keep the multiplication below from overflowing.
	s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// workosParseAuthResponse decodes a 2xx answer. Like the SDK it only parses
// a JSON Content-Type, and like authkit-nextjs's callback it rejects an
// answer without both tokens. It also requires a user with an id: the
// session binds the token's subject to it.
func workosParseAuthResponse(op string, resp *http.Response, data []byte) (*workosAuthResponse, error) {
	fail := func(reason string) error {
		return &workosError{op: op, Status: resp.StatusCode, reason: "unexpected success response: " + reason}
	}
	if !strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "application/json") {
		return nil, fail("Content-Type is not JSON")
	}
	var out workosAuthResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fail(err.Error())
	}
	switch {
	case out.AccessToken == "":
		return nil, fail("no access_token")
	case out.RefreshToken == "":
		return nil, fail("no refresh_token")
	case len(out.UserJSON) == 0 || string(out.UserJSON) == "null":
		return nil, fail("no user")
	}
	if err := json.Unmarshal(out.UserJSON, &out.User); err != nil {
		return nil, fail("user: " + err.Error())
	}
	if out.User.ID == "" {
		return nil, fail("user has no id")
	}
	return &out, nil
}

// workosAPIKey is a WorkOS API key as POST /api_keys/validations describes
// it (WORKOS-PROTOCOL.md H.5). Flat exported fields: the interpreter does
// not flatten embedded structs.
type workosAPIKey struct {
	ID          string            `json:"id"`
	Owner       workosAPIKeyOwner `json:"owner"`
	Permissions []string          `json:"permissions"`
	ExpiresAt   *string           `json:"expires_at"`
}

// workosAPIKeyOwner is the organization, or the user within an
// organization, that owns a key.
type workosAPIKeyOwner struct {
	Type           string `json:"type"` // "organization" or "user"
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id"`
}

// workosAPIKeyValidation is the response: api_key is null for a value
// WorkOS does not know.
type workosAPIKeyValidation struct {
	APIKey *workosAPIKey `json:"api_key"`
}

// validateAPIKey asks WorkOS about an API key value. A value WorkOS does
// not know is (nil, nil); every error is a *workosError, and none of them
// carries the value.
func (c *workosClient) validateAPIKey(ctx context.Context, value string) (*workosAPIKey, error) {
	const op = "API key validation"
	payload, err := json.Marshal(map[string]string{"value": value})
	if err != nil {
		return nil, &workosError{op: op, reason: "encoding request: " + err.Error()}
	}
	resp, data, err := c.post(ctx, op, "/api_keys/validations", payload)
	if err != nil {
		return nil, err
	}
	var v workosAPIKeyValidation
	if !strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "application/json") || json.Unmarshal(data, &v) != nil {
		return nil, &workosError{op: op, Status: resp.StatusCode, reason: "unexpected success response: not a validation"}
	}
	if v.APIKey != nil && v.APIKey.ID == "" {
		return nil, &workosError{op: op, Status: resp.StatusCode, reason: "unexpected success response: a key without an id"}
	}
	return v.APIKey, nil
}
