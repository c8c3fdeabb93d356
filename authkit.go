// Package authkit is a Traefik middleware plugin that puts WorkOS AuthKit in
// front of any service: it reads the wos-session cookie that authkit-nextjs
// writes, verifies and refreshes the access token, forwards the identity to
// the upstream and answers the callback, sign-in and sign-out routes itself.
//
// The request flow, file by file: ServeHTTP and the fast path (fastpath.go);
// the per-request session algorithm (authenticate.go); what the upstream
// receives (upstream.go); the plugin's own answers (responses.go) and
// routes (routes.go). The stores and clients each have a file:
// sessioncache.go, refresh.go, revocations.go, jwks.go, workosclient.go.
package authkit

import (
	"context"
	"net/http"
	"regexp"
	"strings"
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

	// NextjsHeaders and PassSessionCookie default to true (CreateConfig).
	NextjsHeaders bool `json:"nextjsHeaders"`
	// IdentityHeaders maps header names to identity fields. It is untyped
	// because Traefik's file provider and Docker labels hand an empty map
	// ({}) to the plugin as "", which a map field would refuse.
	IdentityHeaders   any  `json:"identityHeaders,omitempty"`
	PassSessionCookie bool `json:"passSessionCookie"`
	PassCorsPreflight bool `json:"passCorsPreflight,omitempty"`

	Issuer            []string `json:"issuer,omitempty"`
	AllowAPIKeys      bool     `json:"allowApiKeys,omitempty"`
	MaxAuthAgeSeconds string   `json:"maxAuthAgeSeconds,omitempty"`
	ReturnOrigins     []string `json:"returnOrigins,omitempty"`
	RedisURL          string   `json:"redisUrl,omitempty"`
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
		NextjsHeaders:          true,
		PassSessionCookie:      true,
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
	ns := cacheNamespaceName(s)
	a := &authKit{
		next:            next,
		name:            name,
		s:               s,
		workos:          client,
		sessions:        sharedSessions,
		refreshes:       sharedRefreshes,
		revocations:     sharedRevocations,
		cacheNS:         namespaceFor(ns),
		bearerNS:        namespaceFor(ns + "/bearer"),
		apiKeyNS:        namespaceFor(ns + "/api-key"),
		log:             newEventLog(name, s.debug, nil),
		now:             time.Now,
		corsPreflight:   s.passCorsPreflight,
		nextjsHeaders:   s.nextjsHeaders,
		rewritesRequest: s.forwardAccessToken || !s.passSessionCookie,
		cutsCookies:     !s.passSessionCookie,
		epoch:           processStart,
		keepAccessToken: s.forwardAccessToken || s.eagerAuth,
	}
	for _, ih := range s.identityHeaders {
		a.identityNames = append(a.identityNames, ih.name)
		a.identityFields = append(a.identityFields, ih.field)
	}
	a.stripNames = stripNames(s.strippedHeaders)
	a.workosThirdByte['W'], a.workosThirdByte['w'] = true, true
	if s.redisURL != "" {
		a.replicas = sharedReplicaStore(s.redisURL, s.redis, s, a.log)
	}
	a.verifier = &tokenVerifier{keys: sharedKeySet(client.jwksURL(), client.http), leeway: defaultTokenLeeway, now: a.now}
	if !strings.HasPrefix(s.redirectURI, "/") {
		a.redirectURIHeader = []string{s.redirectURI}
		a.callbackOrigin = originOf(s.redirectURI)
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
	a.isRoute = map[string]bool{}
	for path := range a.routes {
		a.isRoute[path] = true
	}
	a.sessionCookieName = s.cookie.name
	a.sessionCookieKey = s.cookie.name + "="
	a.eagerAuth = s.eagerAuth
	if len(s.publicPaths) > 0 {
		a.publicPaths = s.publicPaths[0]
	}
	a.requestCookieKinds = readSession
	if s.eagerAuth {
		a.requestCookieKinds |= readEager
	}
	a.hasRequirements = s.requirements.any()
	a.gated = s.middlewareAuth || a.hasRequirements
	a.decidesPerRequest = a.hasRequirements || s.maxAuthAge > 0
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
	// refreshes and revocations, like the cache, are the process's own,
	// shared by every instance (tests give an instance its own, to play
	// several replicas in one process).
	refreshes   *refreshGroup
	revocations *revocationSet
	cacheNS     *cacheNamespace // cookie sessions
	bearerNS    *cacheNamespace // bearer tokens
	apiKeyNS    *cacheNamespace // API keys, by digest
	replicas    *replicaStore   // the Redis shared with other replicas; nil without redisUrl
	log         *eventLog
	now         func() time.Time
	// epoch is what the fast path measures the time from (time.Since,
	// one call); tests move it to move the fast path's clock.
	epoch time.Time

	// Prepared in New so requests do not rebuild them.
	routes            map[string]http.HandlerFunc
	isRoute           map[string]bool // the paths of routes
	stripNames        map[string]bool // the canonical names stripped
	workosThirdByte   [256]bool       // 'W' and 'w': the names isWorkosHeader may match
	corsPreflight     bool
	nextjsHeaders     bool
	rewritesRequest   bool     // forwardAccessToken or passSessionCookie false
	cutsCookies       bool     // passSessionCookie false
	identityNames     []string // identity headers, and the field each one carries
	identityFields    []int
	keepAccessToken   bool // cached principals keep the access token
	sessionCookieName string
	sessionCookieKey  string // "<cookie name>="
	eagerAuth         bool
	publicPaths       *regexp.Regexp // unauthenticatedPaths, or nil
	gated             bool           // signed-out requests to non-public paths are stopped
	hasRequirements   bool
	decidesPerRequest bool // a cached principal still needs a per-request check
	// requestCookieKinds are the cookies a request that is not a route
	// needs read (readCookies).
	requestCookieKinds int
	redirectURIHeader  []string // nil when the redirect URI is a path
	callbackOrigin     string   // the redirect URI's origin; "" when it is a path
	signUpPathsHeader  []string // nil without signUpPaths
}

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
	if len(proto) == 0 {
		return r.TLS != nil
	}
	return proto[0] == "https" || (proto[0] != "http" && isHTTPSProto(proto[0]))
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
