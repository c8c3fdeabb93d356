// Package fakeworkos is an in-memory WorkOS AuthKit server for tests and
// demos. It speaks the wire protocol the plugin depends on (authorize,
// authenticate, JWKS, logout, API-key validation; see WORKOS-PROTOCOL.md
// C, D and H), serves an HTML sign-in page that a person or headless
// browser can click through, and lets tests inject faults, rotate keys,
// set a refresh replay grace or a write rate limit, and inspect what was
// sent.
//
// The package is imported by tests that also run under Traefik's Yaegi
// interpreter, so it sticks to the constructs listed in YAEGI.md.
package fakeworkos

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults used when Options leaves the credentials empty.
const (
	DefaultClientID = "client_01HZFAKEW0RKS0000000000000"
	DefaultAPIKey   = "sk_test_fakeworkos_0123456789abcdef"
)

// Endpoint names accepted by InjectFault and Calls.
const (
	EndpointAuthorize    = "authorize"
	EndpointAuthenticate = "authenticate"
	EndpointJWKS         = "jwks"
	EndpointLogout       = "logout"
	EndpointAPIKeys      = "api_keys"
)

// Grant types counted by GrantCalls.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

const (
	pathAuthorize    = "/user_management/authorize"
	pathAuthenticate = "/user_management/authenticate"
	pathLogout       = "/user_management/sessions/logout"
	pathJWKSPrefix   = "/sso/jwks/"
	pathAPIKeyCheck  = "/api_keys/validations"

	codeLifetime = 10 * time.Minute
	maxBodyBytes = 1 << 20
)

// Options configures a Server. Every field is optional.
type Options struct {
	// ClientID and APIKey are what callers must present; they default to
	// DefaultClientID and DefaultAPIKey.
	ClientID string
	APIKey   string
	// AccessTokenTTL is the lifetime of issued access tokens (default 5 min,
	// as WorkOS).
	AccessTokenTTL time.Duration
	// Users defaults to DefaultUsers().
	Users []User
	// OrgPolicies makes refreshes that switch into an organization fail, as
	// an organization enforcing SSO or MFA does. See SetOrgPolicy.
	OrgPolicies map[string]OrgPolicy
	// RedirectURIs, when set, is the allow-list for redirect_uri; otherwise
	// any absolute http(s) URL is accepted.
	RedirectURIs []string
	// Now is the clock for token times and code expiry (default time.Now).
	Now func() time.Time
	// Issuer is the iss claim (default
	// https://api.workos.com/user_management/<ClientID>).
	Issuer string
	// SigningKey is the first signing key. It defaults to a fresh RSA-2048
	// key; sharing one across servers saves the key generation per test.
	SigningKey *rsa.PrivateKey
	// RefreshGrace is how long a rotated refresh token can be replayed
	// for the same new pair (H.1). Zero, the default, is strict single
	// use. See SetRefreshGrace.
	RefreshGrace time.Duration
	// WriteRateLimit, when positive, is how many POSTs to
	// /user_management/* are allowed in any 10 s window (H.2). Zero, the
	// default, means no limit. See SetWriteRateLimit.
	WriteRateLimit int
}

// OrgPolicy is an organization's answer to a refresh that switches a
// session into it.
type OrgPolicy struct {
	// Error is the OAuth error code, typically "sso_required" or
	// "mfa_enrollment". Empty removes the policy.
	Error string
	// Status is the HTTP status (default 403).
	Status int
	// RedirectURL, when set, is sent as authkit_redirect_url.
	RedirectURL string
}

// Impersonator marks a session started by an admin acting as the user.
type Impersonator struct {
	Email  string
	Reason string
}

// AuthorizeRequest records one valid GET /user_management/authorize.
type AuthorizeRequest struct {
	ClientID       string
	RedirectURI    string
	State          string
	ScreenHint     string
	OrganizationID string
	LoginHint      string
	CodeChallenge  string
	Prompt         string
	// MaxAge is the max_age parameter as sent (empty when absent).
	MaxAge string
	// RawQuery is the query string exactly as received (key order and
	// escaping included); Query is its parsed form.
	RawQuery string
	Query    url.Values
}

// AuthenticateRequest records one POST /user_management/authenticate that
// got past fault injection, whether or not it succeeded.
type AuthenticateRequest struct {
	GrantType      string
	OrganizationID string
	Header         http.Header
	Body           string
}

// LogoutRequest records one GET /user_management/sessions/logout.
type LogoutRequest struct {
	SessionID string
	ReturnTo  string
}

// Server is a fake WorkOS API. It is safe for concurrent use.
type Server struct {
	clientID     string
	apiKey       string
	issuer       string
	ttl          time.Duration
	now          func() time.Time
	redirectURIs []string

	mu            sync.Mutex
	users         []User
	policies      map[string]OrgPolicy
	keys          []*signingKey
	current       *signingKey
	codes         map[string]*authCode
	sessions      map[string]*session
	refreshTokens map[string]string // refresh token → session id
	lastSignIn    map[string]time.Time
	faults        map[string][]Fault
	calls         map[string]int
	grants        map[string]int
	authorizeLog  []AuthorizeRequest
	authLog       []AuthenticateRequest
	logoutLog     []LogoutRequest

	// Refresh-token replay grace (grace.go).
	grace        time.Duration
	spent        map[string]*spentToken // spent refresh token → its rotation
	spentOrder   []string               // spent tokens, oldest rotation first
	rotations    int
	graceReplays int

	// API keys (apikeys.go).
	apiKeys      map[string]*APIKey // id → key
	apiKeyValues map[string]string  // value → id
	apiKeyChecks int

	// Write rate limit (ratelimit.go).
	writeLimit  int
	writeTimes  []time.Time // accepted writes inside the current window
	rateLimited int
}

// New returns a fake WorkOS server configured by opts.
func New(opts Options) *Server {
	s := &Server{
		clientID:      opts.ClientID,
		apiKey:        opts.APIKey,
		issuer:        opts.Issuer,
		ttl:           opts.AccessTokenTTL,
		now:           opts.Now,
		redirectURIs:  append([]string(nil), opts.RedirectURIs...),
		users:         append([]User(nil), opts.Users...),
		policies:      map[string]OrgPolicy{},
		codes:         map[string]*authCode{},
		sessions:      map[string]*session{},
		refreshTokens: map[string]string{},
		lastSignIn:    map[string]time.Time{},
		faults:        map[string][]Fault{},
		calls:         map[string]int{},
		grants:        map[string]int{},
		grace:         opts.RefreshGrace,
		spent:         map[string]*spentToken{},
		apiKeys:       map[string]*APIKey{},
		apiKeyValues:  map[string]string{},
		writeLimit:    opts.WriteRateLimit,
	}
	if s.clientID == "" {
		s.clientID = DefaultClientID
	}
	if s.apiKey == "" {
		s.apiKey = DefaultAPIKey
	}
	if s.issuer == "" {
		s.issuer = "https://api.workos.com/user_management/" + s.clientID
	}
	if s.ttl <= 0 {
		s.ttl = 5 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Users == nil {
		s.users = DefaultUsers()
	}
	for org, p := range opts.OrgPolicies {
		s.policies[org] = p
	}
	key := opts.SigningKey
	if key == nil {
		key = generateKey()
	}
	s.current = newSigningKey(key, true)
	s.keys = []*signingKey{s.current}
	return s
}

// ClientID returns the client id callers must present.
func (s *Server) ClientID() string { return s.clientID }

// APIKey returns the API key callers must present.
func (s *Server) APIKey() string { return s.apiKey }

// JWKSPath returns the path of this client's JWKS.
func (s *Server) JWKSPath() string { return pathJWKSPrefix + s.clientID }

// ServeHTTP routes WorkOS API paths and the fake's own /__fake/ paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == pathAuthorize:
		if !s.intercept(w, r, EndpointAuthorize) {
			s.authorize(w, r)
		}
	case p == pathAuthenticate:
		body, err := readBody(r)
		s.countGrant(body)
		if !s.intercept(w, r, EndpointAuthenticate) {
			s.authenticate(w, r, body, err)
		}
	case strings.HasPrefix(p, pathJWKSPrefix):
		if !s.intercept(w, r, EndpointJWKS) {
			s.serveJWKS(w, r)
		}
	case p == pathLogout:
		if !s.intercept(w, r, EndpointLogout) {
			s.logout(w, r)
		}
	case p == pathAPIKeyCheck:
		if !s.intercept(w, r, EndpointAPIKeys) {
			s.validateAPIKey(w, r)
		}
	case p == pathSignIn:
		s.signIn(w, r)
	case strings.HasPrefix(p, controlPrefix):
		s.control(w, r)
	default:
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "Not Found"})
	}
}

// intercept counts the call, then applies the write rate limit and any
// pending fault. It reports whether either already answered the request.
// The limit comes first, as WorkOS's edge answers 429 before the API sees
// the request.
func (s *Server) intercept(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	s.mu.Lock()
	s.calls[endpoint]++
	s.mu.Unlock()
	if s.limitWrite(w, r) {
		return true
	}
	return s.applyFault(w, r, endpoint)
}

// countGrant counts authenticate calls per grant type before faults apply,
// so a test can tell how many refreshes a client attempted.
func (s *Server) countGrant(body []byte) {
	var b authenticateBody
	_ = json.Unmarshal(body, &b)
	s.mu.Lock()
	s.grants[b.GrantType]++
	s.mu.Unlock()
}

// Calls returns how many requests reached endpoint, faulted ones included.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// GrantCalls returns how many authenticate requests carried grantType,
// faulted ones included.
func (s *Server) GrantCalls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants[grantType]
}

// RefreshCalls returns GrantCalls(GrantRefreshToken).
func (s *Server) RefreshCalls() int { return s.GrantCalls(GrantRefreshToken) }

// CodeExchangeCalls returns GrantCalls(GrantAuthorizationCode).
func (s *Server) CodeExchangeCalls() int { return s.GrantCalls(GrantAuthorizationCode) }

// AuthorizeRequests returns every valid authorize request, oldest first.
func (s *Server) AuthorizeRequests() []AuthorizeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AuthorizeRequest(nil), s.authorizeLog...)
}

// AuthenticateRequests returns every authenticate request that got past
// fault injection, oldest first.
func (s *Server) AuthenticateRequests() []AuthenticateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AuthenticateRequest(nil), s.authLog...)
}

// LogoutRequests returns every logout request, oldest first.
func (s *Server) LogoutRequests() []LogoutRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LogoutRequest(nil), s.logoutLog...)
}

// SetOrgPolicy sets (or, with an empty Error, removes) orgID's policy.
func (s *Server) SetOrgPolicy(orgID string, p OrgPolicy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Error == "" {
		delete(s.policies, orgID)
		return
	}
	s.policies[orgID] = p
}

// PutUser adds u, or replaces the user with the same ID. Sessions pick up
// the change (roles, permissions, profile) at their next refresh.
func (s *Server) PutUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < len(s.users); i++ {
		if s.users[i].ID == u.ID {
			s.users[i] = u
			return
		}
	}
	s.users = append(s.users, u)
}

// Users returns the users the fake knows.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]User(nil), s.users...)
}

// userLocked finds a user by id, or by email ignoring case.
func (s *Server) userLocked(idOrEmail string) (User, bool) {
	for i := 0; i < len(s.users); i++ {
		u := s.users[i]
		if u.ID == idOrEmail || strings.EqualFold(u.Email, idOrEmail) {
			return u, true
		}
	}
	return User{}, false
}

// orgKnownLocked reports whether any user belongs to orgID or a policy
// names it.
func (s *Server) orgKnownLocked(orgID string) bool {
	if _, ok := s.policies[orgID]; ok {
		return true
	}
	for i := 0; i < len(s.users); i++ {
		if _, ok := s.users[i].membership(orgID); ok {
			return true
		}
	}
	return false
}

// Start serves the fake on addr (default host 127.0.0.1; ":0" or "" picks
// a free port) and returns its base URL and a function that stops it.
func (s *Server) Start(addr string) (string, func(), error) {
	if addr == "" {
		addr = ":0"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("fakeworkos: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	srv.Handler = s
	go func() { _ = srv.Serve(ln) }()
	stop := func() { _ = srv.Close() }
	return "http://" + ln.Addr().String(), stop, nil
}

// apiError is the body of WorkOS's non-OAuth errors.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// oauthError is the body of WorkOS's OAuth errors (C.4).
type oauthError struct {
	Error              string `json:"error"`
	ErrorDescription   string `json:"error_description"`
	Email              string `json:"email,omitempty"`
	AuthKitRedirectURL string `json:"authkit_redirect_url,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
}
