// Package authkit is a Traefik middleware plugin that puts WorkOS AuthKit in
// front of any service: it reads the wos-session cookie that authkit-nextjs
// writes, verifies and refreshes the access token, forwards the identity to
// the upstream and answers the callback, sign-in and sign-out routes itself.
package authkit

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config is the dynamic configuration of one middleware instance. Keys are
// matched case-insensitively by Traefik; SPEC.md lists each with its default.
type Config struct {
	ClientID        string            `json:"clientId,omitempty"`
	APIKey          string            `json:"apiKey,omitempty"`
	CookiePassword  string            `json:"cookiePassword,omitempty"`
	CookiePasswords map[string]string `json:"cookiePasswords,omitempty"`
	RedirectURI     string            `json:"redirectUri,omitempty"`

	APIHostname string `json:"apiHostname,omitempty"`
	// APIHTTPS and APIPort are strings so that "unset" can fall back to the
	// environment; Traefik's weak decoding turns booleans and numbers into
	// strings.
	APIHTTPS string `json:"apiHttps,omitempty"`
	APIPort  string `json:"apiPort,omitempty"`

	CookieName     string `json:"cookieName,omitempty"`
	CookieDomain   string `json:"cookieDomain,omitempty"`
	CookieMaxAge   string `json:"cookieMaxAge,omitempty"`
	CookieSameSite string `json:"cookieSameSite,omitempty"`

	Debug                bool   `json:"debug,omitempty"`
	ScreenHint           string `json:"screenHint,omitempty"`
	EagerAuth            bool   `json:"eagerAuth,omitempty"`
	RefreshBufferSeconds string `json:"refreshBufferSeconds,omitempty"`

	MiddlewareAuth MiddlewareAuth `json:"middlewareAuth,omitempty"`
	SignUpPaths    []string       `json:"signUpPaths,omitempty"`

	SignInPath             string `json:"signInPath,omitempty"`
	SignOutPath            string `json:"signOutPath,omitempty"`
	SignOutReturnTo        string `json:"signOutReturnTo,omitempty"`
	SwitchOrganizationPath string `json:"switchOrganizationPath,omitempty"`
	ReturnPathname         string `json:"returnPathname,omitempty"`
	BaseURL                string `json:"baseUrl,omitempty"`

	ForwardAccessToken bool `json:"forwardAccessToken,omitempty"`
	AllowBearerTokens  bool `json:"allowBearerTokens,omitempty"`

	RequiredPermissions  []string `json:"requiredPermissions,omitempty"`
	RequiredRoles        []string `json:"requiredRoles,omitempty"`
	AllowedOrganizations []string `json:"allowedOrganizations,omitempty"`
	RequiredEntitlements []string `json:"requiredEntitlements,omitempty"`
	RequiredFeatureFlags []string `json:"requiredFeatureFlags,omitempty"`
}

// MiddlewareAuth mirrors authkit-nextjs's middlewareAuth option.
type MiddlewareAuth struct {
	Enabled              bool     `json:"enabled,omitempty"`
	UnauthenticatedPaths []string `json:"unauthenticatedPaths,omitempty"`
}

// CreateConfig returns the defaults; Traefik decodes the user's keys over it.
func CreateConfig() *Config {
	return &Config{
		SignInPath:             "/auth/sign-in",
		SignOutPath:            "/auth/sign-out",
		SwitchOrganizationPath: "/auth/switch-organization",
		ReturnPathname:         "/",
		ScreenHint:             "sign-in",
	}
}

// New validates the configuration and builds the middleware. Every
// configuration problem is reported here, naming the key, never later on a
// request.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	s, err := parseSettings(config)
	if err != nil {
		return nil, err
	}
	client := newWorkOSClient(s.apiBaseURL, s.clientID, s.apiKey, workosAPITimeout)
	a := &authKit{
		next:     next,
		name:     name,
		s:        s,
		workos:   client,
		sessions: sharedSessions,
		cacheNS:  cacheNamespace(s),
		bearerNS: cacheNamespace(s) + "/bearer",
		log:      newEventLog(name, s.debug, nil),
		now:      time.Now,
	}
	a.verifier = &tokenVerifier{keys: sharedKeySet(client.jwksURL(), client.http), leeway: defaultTokenLeeway, now: a.now}
	if !strings.HasPrefix(s.redirectURI, "/") {
		a.redirectURIHeader = []string{s.redirectURI}
	}
	if s.signUpPathsHeader != "" {
		a.signUpPathsHeader = []string{s.signUpPathsHeader}
	}
	a.routes = map[string]http.HandlerFunc{
		s.callbackPath:           a.handleCallback,
		s.signInPath:             a.handleSignIn,
		s.signOutPath:            a.handleSignOut,
		s.switchOrganizationPath: a.handleSwitchOrganization,
	}
	a.sessionCookieKey = s.cookie.name + "="
	a.sessionChunkKey = s.cookie.name + "."
	if len(s.publicPaths) > 0 {
		a.publicPaths = s.publicPaths[0]
	}
	a.hasRequirements = s.requirements.any()
	a.gated = s.middlewareAuth || a.hasRequirements
	return a, nil
}

// authKit is one configured middleware instance.
type authKit struct {
	next     http.Handler
	name     string
	s        *settings
	workos   *workosClient
	verifier *tokenVerifier
	sessions *sessionCache
	cacheNS  string
	bearerNS string // the cache's namespace for bearer tokens
	log      *eventLog
	now      func() time.Time

	// Prepared in New so requests do not rebuild them.
	routes            map[string]http.HandlerFunc
	sessionCookieKey  string         // "<cookie name>="
	sessionChunkKey   string         // "<cookie name>.", a split session's cookies
	publicPaths       *regexp.Regexp // unauthenticatedPaths, or nil
	gated             bool           // signed-out requests to non-public paths are stopped
	hasRequirements   bool
	redirectURIHeader []string // nil when the redirect URI is a path
	signUpPathsHeader []string // nil without signUpPaths
}

// keySets shares one JWKS cache per URL among all instances (and
// configuration reloads) of the plugin, which Traefik runs in one
// interpreter: keys are fetched once, not once per router.
var keySets = struct {
	sync.Mutex
	byURL map[string]*jwksCache
}{byURL: map[string]*jwksCache{}}

func sharedKeySet(url string, client *http.Client) *jwksCache {
	keySets.Lock()
	defer keySets.Unlock()
	c, ok := keySets.byURL[url]
	if !ok {
		c = newJWKSCache(url, client, time.Now)
		keySets.byURL[url] = c
	}
	return c
}

// serveFull decides a request the fast path of ServeHTTP did not: it reads
// every cookie, unseals, verifies and refreshes as needed, answers the
// plugin's routes and stops what may not pass. Internal headers are
// already stripped.
func serveFull(a *authKit, w http.ResponseWriter, r *http.Request) {
	if route := a.routes[r.URL.Path]; route != nil {
		route(w, r)
		return
	}
	ext := externalOf(a, r)
	rc := &noCookies
	res := &signedOut
	if len(r.Header["Cookie"]) != 0 || len(r.Header["Authorization"]) != 0 {
		parsed := readCookies(r, a.s.cookie.name)
		rc = &parsed
		res = authenticate(a, r, rc, ext)
	}
	public := isPublic(a, r.URL.Path)
	if !res.signedIn && a.gated && !public {
		a.unauthenticated(w, r, ext, res)
		return
	}
	if res.signedIn && a.hasRequirements && !public {
		if unmet := a.s.requirements.unmet(res.claims); unmet != "" {
			a.forbidden(w, r, res, unmet)
			return
		}
	}
	setUpstreamHeaders(a, r, ext.origin, res)
	setResponseHeaders(a, w, r, rc, res)
	a.next.ServeHTTP(w, r)
}

// hasDotSegment reports whether a path has a "." or ".." segment, which
// the upstream may resolve to another path than the one matched.
func hasDotSegment(path string) bool {
	return strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
		strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..")
}

// noCookies stands for the cookies of a request that carries none.
// signedOut is the shared result of a request without cookie or
// Authorization header. Neither is ever written to.
var (
	noCookies requestCookies
	signedOut authResult
)

// external is the request as the browser sees it, in front of Traefik.
type external struct {
	origin string // scheme://host
	https  bool
}

// externalOf derives the browser-facing origin and scheme.
func externalOf(a *authKit, r *http.Request) external {
	origin := requestOrigin(a, r)
	return external{origin: origin, https: strings.HasPrefix(origin, "https:")}
}

// isHTTPS reports whether the browser reached Traefik over TLS: Traefik's
// own TLS, or the X-Forwarded-Proto Traefik sets (it overwrites a client's
// unless the client is a trusted proxy).
func isHTTPS(r *http.Request) bool {
	proto := r.Header["X-Forwarded-Proto"]
	return r.TLS != nil || (len(proto) != 0 && proto[0] != "http" && (proto[0] == "https" || isHTTPSProto(proto[0])))
}

// isHTTPSProto reads an X-Forwarded-Proto value that is not plain "http" or
// "https": a list from several proxies (the first is the client's) or
// another spelling.
func isHTTPSProto(proto string) bool {
	if i := strings.IndexByte(proto, ','); i >= 0 {
		proto = proto[:i]
	}
	proto = strings.TrimSpace(proto)
	return strings.EqualFold(proto, "https") || strings.EqualFold(proto, "wss")
}

// secureCookies reports whether cookies get the Secure attribute: on https,
// and always with SameSite=None, which browsers require it for.
func (a *authKit) secureCookies(ext external) bool {
	return ext.https || a.s.cookie.sameSite == "None"
}

// redirectURI is the absolute callback URL for this request.
func (a *authKit) redirectURI(ext external) string {
	if strings.HasPrefix(a.s.redirectURI, "/") {
		return ext.origin + a.s.redirectURI
	}
	return a.s.redirectURI
}

// authResult is what authenticate learned about a request.
type authResult struct {
	signedIn   bool
	bearer     bool // signed in by an Authorization header, not a cookie
	badBearer  bool // an Authorization bearer token was present and refused
	claims     *tokenClaims
	session    *session
	sealed     string // the session as sealed, after any refresh
	identity   []headerField
	refreshed  bool
	setCookies []string
}

// authenticate runs authkit-nextjs's per-request algorithm (E.9): unseal,
// verify, refresh when expired or expiring, and decide which cookies change.
func authenticate(a *authKit, r *http.Request, rc *requestCookies, ext external) *authResult {
	res := &authResult{}
	if rc.session == "" {
		if a.s.allowBearerTokens {
			if token := bearerToken(r); token != "" {
				a.authenticateBearer(r, token, res)
			}
		}
		return res
	}
	now := a.now()
	if e := lookupSession(a.sessions, a.cacheNS, rc.session, now); e != nil {
		copied := *e.result // callers of authenticate may change their result
		return &copied
	}
	sess, err := openSession(a, rc.session, now)
	if err != nil {
		// authkit-nextjs ends here with a terminal error: the cookie goes.
		a.log.debug("session cookie unusable", "reason", err.Error())
		res.setCookies = a.terminalDeletions(rc, a.secureCookies(ext))
		return res
	}
	claims, verifyErr := verifyToken(r.Context(), a.verifier, sess.accessToken)
	if verifyErr == nil && !expiring(a, claims, now) {
		signIn(a, res, sess, claims, rc.session)
		return res
	}
	if verifyErr != nil {
		a.log.debug("access token not accepted, refreshing", "reason", verifyErr.Error())
	}
	a.refresh(r, rc, ext, sess, claims, res)
	return res
}

// openSession unseals and decodes a session cookie value.
func openSession(a *authKit, sealed string, now time.Time) (*session, error) {
	plain, err := unseal(a.s.keyring, sealed, now)
	if err != nil {
		return nil, err
	}
	return decodeSession(plain)
}

// signIn records a verified session, unless its token names no user or
// another user than the session (E.10): then the request is signed out but
// the cookie is kept. A session
// that stays valid past its refresh point is cached until then.
func signIn(a *authKit, res *authResult, sess *session, claims *tokenClaims, sealed string) {
	if claims.Subject == "" || (sess.userID != "" && sess.userID != claims.Subject) {
		a.log.event("session_rejected", "reason", "the token has no subject or another user's", "user_id", sess.userID)
		return
	}
	res.signedIn, res.session, res.claims, res.sealed = true, sess, claims, sealed
	res.identity = identityHeaders(claims, sess, sealed)
	now := a.now()
	validUntil := now.Add(maxCacheLifetime)
	if exp, ok := tokenExpiry(claims); ok {
		validUntil = exp.Add(-refreshBuffer(claims, a.s.refreshBuffer))
	}
	putSession(a.sessions, a.cacheNS, sealed, sess, claims, res.identity, validUntil, now)
}

// expiring reports whether the token is inside its refresh buffer (D.3).
func expiring(a *authKit, c *tokenClaims, now time.Time) bool {
	exp, ok := tokenExpiry(c)
	if !ok {
		return false
	}
	buffer := refreshBuffer(c, a.s.refreshBuffer)
	return buffer > 0 && exp.Before(now.Add(buffer))
}

func (a *authKit) terminalDeletions(rc *requestCookies, secure bool) []string {
	out := a.s.cookie.sessionDeletions(secure, rc.sessionNames)
	if a.s.eagerAuth {
		out = append(out, eagerDeletion(secure))
	}
	return out
}

// refresh trades the session's refresh token for new tokens, once for all
// concurrent requests carrying it, and applies E.9 step 5 on failure.
func (a *authKit) refresh(r *http.Request, rc *requestCookies, ext external, sess *session, claims *tokenClaims, res *authResult) {
	secure := a.secureCookies(ext)
	orgID := ""
	if claims != nil {
		orgID = claims.OrganizationID
	} else if p, err := parseToken(sess.accessToken); err == nil {
		orgID = p.claims.OrganizationID // unverified, as authkit-nextjs does
	}
	if sess.refreshToken == "" {
		a.log.event("session_refresh_failed", "transient", false, "reason", "no refresh token", "user_id", sess.userID)
		res.setCookies = a.terminalDeletions(rc, secure)
		return
	}
	key := refreshKey(a.s.apiBaseURL, a.s.clientID, sess.refreshToken, orgID)
	resp, called, err := sharedRefreshes.do(r.Context(), key, a.now, func(ctx context.Context) (*workosAuthResponse, error) {
		return a.workos.authenticateWithRefreshToken(ctx, sess.refreshToken, orgID)
	})
	if err == nil {
		err = a.adoptRefresh(rc, secure, sess, resp, res, called)
	}
	if err == nil {
		return
	}
	transient := false
	if we, ok := err.(*workosError); ok {
		transient = we.Transient
	}
	if called {
		a.log.event("session_refresh_failed", "transient", transient, "reason", err.Error(), "user_id", sess.userID)
	}
	if claims != nil && checkTokenTime(claims, a.now(), 0) == nil {
		// Only expiring: serve the still-valid token and change nothing. A
		// concurrent request may already have rotated the refresh token.
		signIn(a, res, sess, claims, rc.session)
		return
	}
	if !transient {
		res.setCookies = a.terminalDeletions(rc, secure)
	}
}

// adoptRefresh seals the refreshed session and records its cookies; the
// caller that made the WorkOS call logs the event.
func (a *authKit) adoptRefresh(rc *requestCookies, secure bool, old *session, resp *workosAuthResponse, res *authResult, logEvent bool) error {
	sess, sealed, err := a.sealResponse(old, resp)
	if err != nil {
		return err
	}
	// The token comes straight from WorkOS over the API connection; it is
	// read, not verified, as authkit-nextjs does after a refresh.
	parsed, err := parseToken(resp.AccessToken)
	if err != nil {
		return err
	}
	if logEvent {
		a.log.event("session_refreshed", "user_id", sess.userID, "session_id", parsed.claims.SessionID, "organization_id", parsed.claims.OrganizationID)
	}
	res.setCookies = append(res.setCookies, a.s.cookie.sessionCookies(sealed, secure, rc.sessionNames)...)
	res.refreshed = true
	signIn(a, res, sess, &parsed.claims, sealed)
	return nil
}

// authenticateBearer signs an API client in with a WorkOS access token
// (SPEC "Bearer tokens"): verified, never refreshed, never a cookie.
func (a *authKit) authenticateBearer(r *http.Request, token string, res *authResult) {
	now := a.now()
	if e := lookupSession(a.sessions, a.bearerNS, token, now); e != nil {
		res.signedIn, res.bearer, res.claims, res.identity = true, true, e.result.claims, e.result.identity
		return
	}
	claims, err := verifyToken(r.Context(), a.verifier, token)
	if err != nil || claims.Subject == "" {
		a.log.debug("bearer token refused", "reason", errorText(err, "no sub claim"))
		res.badBearer = true
		return
	}
	res.signedIn, res.bearer, res.claims = true, true, claims
	res.identity = identityHeaders(claims, nil, "")
	validUntil := now.Add(maxCacheLifetime)
	if exp, ok := tokenExpiry(claims); ok {
		validUntil = exp // a bearer token is never refreshed: valid to its end
	}
	putSession(a.sessions, a.bearerNS, token, nil, claims, res.identity, validUntil, now)
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func errorText(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}
