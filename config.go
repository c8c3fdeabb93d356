package authkit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/textproto"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	defaultAPIHostname  = "api.workos.com"
	defaultCookieName   = "wos-session"
	defaultCookieMaxAge = 34560000 // 400 days, as authkit-nextjs
	// workosAPITimeout bounds each WorkOS API call made on a request's behalf.
	workosAPITimeout = 10 * time.Second
)

// settings is a validated Config with environment fallbacks applied and
// every value in the form the request path uses.
type settings struct {
	clientID, apiKey string
	keyring          *Keyring
	apiBaseURL       string

	// redirectURI is absolute, or a path resolved per request against the
	// external origin; callbackPath is its path.
	redirectURI  string
	callbackPath string

	cookie cookieSettings

	debug          bool
	screenHint     string
	eagerAuth      bool
	refreshBuffer  time.Duration // negative: automatic (D.3)
	middlewareAuth bool

	publicPaths       pathPatterns
	signUpPaths       pathPatterns
	signUpPathsHeader string

	signInPath, signOutPath, switchOrganizationPath string
	signOutReturnTo                                 string
	returnPathname                                  string
	baseURL                                         string // external origin, no trailing slash

	forwardAccessToken bool
	allowBearerTokens  bool
	requirements       requirements

	nextjsHeaders     bool
	identityHeaders   []identityHeader
	passSessionCookie bool
	passCorsPreflight bool
	// strippedHeaders are the names, normalised, that the strip removes
	// beside x-workos-*.
	strippedHeaders []string

	issuers       []string // accepted iss values; none: any
	allowAPIKeys  bool
	maxAuthAge    time.Duration // 0: no step-up
	returnOrigins []returnOrigin
	redisURL      string
	redis         redisOptions
}

// configError names the key at fault, so a Traefik user knows what to fix.
func configError(key, problem string) error {
	return errors.New("authkit: " + key + " " + problem)
}

// fallback returns value, or the first non-empty environment variable.
func fallback(value string, envNames ...string) string {
	if value != "" {
		return value
	}
	for _, name := range envNames {
		if v := os.Getenv(name); v != "" {
			return v
		}
	}
	return ""
}

// cleanList trims a list's items and drops empty ones. Items are never
// split: a path pattern may hold a comma ("/(\\d{1,3})"). A Docker label's
// comma-separated string arrives already split by Traefik's decoding.
func cleanList(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func parseSettings(c *Config) (*settings, error) {
	s := &settings{
		clientID:               fallback(c.ClientID, "WORKOS_CLIENT_ID"),
		apiKey:                 fallback(c.APIKey, "WORKOS_API_KEY"),
		debug:                  c.Debug,
		eagerAuth:              c.EagerAuth,
		middlewareAuth:         c.MiddlewareAuth.Enabled,
		forwardAccessToken:     c.ForwardAccessToken,
		allowBearerTokens:      c.AllowBearerTokens,
		signOutReturnTo:        c.SignOutReturnTo,
		nextjsHeaders:          c.NextjsHeaders,
		passSessionCookie:      c.PassSessionCookie,
		passCorsPreflight:      c.PassCorsPreflight,
		signInPath:             orDefault(c.SignInPath, "/auth/sign-in"),
		signOutPath:            orDefault(c.SignOutPath, "/auth/sign-out"),
		switchOrganizationPath: orDefault(c.SwitchOrganizationPath, "/auth/switch-organization"),
		returnPathname:         orDefault(c.ReturnPathname, "/"),
	}
	if s.clientID == "" {
		return nil, configError("clientId", "is required (or set WORKOS_CLIENT_ID)")
	}
	if s.apiKey == "" {
		return nil, configError("apiKey", "is required (or set WORKOS_API_KEY)")
	}
	var err error
	if s.keyring, err = parseCookiePasswords(c); err != nil {
		return nil, err
	}
	if err := s.parseRedirectURI(fallback(c.RedirectURI, "WORKOS_REDIRECT_URI", "NEXT_PUBLIC_WORKOS_REDIRECT_URI")); err != nil {
		return nil, err
	}
	if s.apiBaseURL, err = parseAPIBaseURL(c); err != nil {
		return nil, err
	}
	if s.cookie, err = parseCookieSettings(c); err != nil {
		return nil, err
	}
	s.screenHint = orDefault(c.ScreenHint, "sign-in")
	if s.screenHint != "sign-in" && s.screenHint != "sign-up" {
		return nil, configError("screenHint", "must be sign-in or sign-up, not "+strconv.Quote(c.ScreenHint))
	}
	if s.refreshBuffer, err = parseRefreshBuffer(c.RefreshBufferSeconds); err != nil {
		return nil, err
	}
	for _, p := range []struct{ key, value string }{
		{"signInPath", s.signInPath}, {"signOutPath", s.signOutPath},
		{"switchOrganizationPath", s.switchOrganizationPath}, {"returnPathname", s.returnPathname},
	} {
		if !strings.HasPrefix(p.value, "/") || strings.HasPrefix(p.value, "//") {
			return nil, configError(p.key, "must be a path starting with a single /, not "+strconv.Quote(p.value))
		}
	}
	routes := map[string]string{s.callbackPath: "redirectUri"}
	for _, p := range []struct{ key, value string }{
		{"signInPath", s.signInPath}, {"signOutPath", s.signOutPath}, {"switchOrganizationPath", s.switchOrganizationPath},
	} {
		if other, taken := routes[p.value]; taken {
			return nil, configError(p.key, "is the same path as "+other+": "+strconv.Quote(p.value))
		}
		routes[p.value] = p.key
	}
	if s.signOutReturnTo != "" && !isAbsoluteHTTPURL(s.signOutReturnTo) && !strings.HasPrefix(s.signOutReturnTo, "/") {
		return nil, configError("signOutReturnTo", "must be an absolute http(s) URL or a path")
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || !isAbsoluteHTTPURL(c.BaseURL) || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, configError("baseUrl", "must be an origin such as https://app.example.com, not "+strconv.Quote(c.BaseURL))
		}
		s.baseURL = u.Scheme + "://" + u.Host
	}
	if s.publicPaths, err = compilePathPatterns(cleanList(c.MiddlewareAuth.UnauthenticatedPaths)); err != nil {
		return nil, configError("middlewareAuth.unauthenticatedPaths", err.Error())
	}
	signUp := cleanList(c.SignUpPaths)
	if s.signUpPaths, err = compilePathPatterns(signUp); err != nil {
		return nil, configError("signUpPaths", err.Error())
	}
	s.signUpPathsHeader = strings.Join(signUp, ",")
	s.requirements = requirements{
		permissions:   cleanList(c.RequiredPermissions),
		roles:         cleanList(c.RequiredRoles),
		organizations: cleanList(c.AllowedOrganizations),
		entitlements:  cleanList(c.RequiredEntitlements),
		featureFlags:  cleanList(c.RequiredFeatureFlags),
	}
	if s.identityHeaders, err = parseIdentityHeaders(c.IdentityHeaders); err != nil {
		return nil, err
	}
	s.issuers = cleanList(c.Issuer)
	if len(s.issuers) == 0 {
		// As authkit-nextjs reads WORKOS_ISSUER: a comma-separated list.
		s.issuers = cleanList(strings.Split(os.Getenv("WORKOS_ISSUER"), ","))
	}
	for _, iss := range s.issuers {
		if !isAbsoluteHTTPURL(iss) {
			return nil, configError("issuer", "values must be absolute URLs such as https://api.workos.com/user_management/<client id>, not "+strconv.Quote(iss))
		}
	}
	s.allowAPIKeys = c.AllowAPIKeys
	if v := c.MaxAuthAgeSeconds; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, configError("maxAuthAgeSeconds", "must be a positive number of seconds, not "+strconv.Quote(v))
		}
		s.maxAuthAge = time.Duration(n) * time.Second
	}
	if s.returnOrigins, err = parseReturnOrigins(cleanList(c.ReturnOrigins), s.cookie.domain); err != nil {
		return nil, err
	}
	if s.redisURL = fallback(c.RedisURL, "AUTHKIT_REDIS_URL"); s.redisURL != "" {
		if s.redis, err = parseRedisURL(s.redisURL, os.Getenv); err != nil {
			return nil, err
		}
	}
	s.strippedHeaders = append([]string(nil), nextjsHeaderNames...)
	for _, ih := range s.identityHeaders {
		s.strippedHeaders = append(s.strippedHeaders, strings.ToLower(ih.name))
	}
	return s, nil
}

func orDefault(value, def string) string {
	if value == "" {
		return def
	}
	return value
}

func isAbsoluteHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parseCookiePasswords builds the keyring: cookiePassword is id 1, and
// cookiePasswords adds ids for rotation.
func parseCookiePasswords(c *Config) (*Keyring, error) {
	passwords := map[string]string{}
	for id, pw := range c.CookiePasswords {
		if _, err := strconv.ParseUint(id, 10, 31); err != nil {
			return nil, configError("cookiePasswords", "ids must be non-negative integers, not "+strconv.Quote(id)+
				` (in YAML, quote them: "2": "...")`)
		}
		if utf16Length(pw) < MinPasswordLength {
			return nil, configError("cookiePasswords", "entry "+id+" must be at least 32 characters")
		}
		passwords[id] = pw
	}
	single := fallback(c.CookiePassword, "WORKOS_COOKIE_PASSWORD")
	if single != "" {
		if utf16Length(single) < MinPasswordLength {
			return nil, configError("cookiePassword", "must be at least 32 characters")
		}
		if other, ok := passwords["1"]; ok && other != single {
			return nil, configError("cookiePasswords", "entry 1 differs from cookiePassword, which is id 1")
		}
		passwords["1"] = single
	}
	if len(passwords) == 0 {
		return nil, configError("cookiePassword", "is required (or set WORKOS_COOKIE_PASSWORD)")
	}
	k, err := NewKeyring(passwords)
	if err != nil {
		return nil, configError("cookiePasswords", err.Error())
	}
	return k, nil
}

func (s *settings) parseRedirectURI(raw string) error {
	if raw == "" {
		return configError("redirectUri", "is required (or set WORKOS_REDIRECT_URI)")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return configError("redirectUri", "is not a URL: "+strconv.Quote(raw))
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(raw, "//"):
	case isAbsoluteHTTPURL(raw) && u.User == nil:
	default:
		return configError("redirectUri", "must be an absolute http(s) URL or a path, not "+strconv.Quote(raw))
	}
	if u.Path == "" || u.Path == "/" {
		// "/" as the callback would answer every visit to the home page.
		return configError("redirectUri", "needs a callback path such as /callback, not "+strconv.Quote(raw))
	}
	s.redirectURI, s.callbackPath = raw, u.Path
	return nil
}

func parseAPIBaseURL(c *Config) (string, error) {
	host := fallback(c.APIHostname, "WORKOS_API_HOSTNAME")
	if host == "" {
		host = defaultAPIHostname
	}
	if strings.ContainsAny(host, "/:@?# ") {
		return "", configError("apiHostname", "must be a bare host name, not "+strconv.Quote(host))
	}
	https := true
	if v := fallback(c.APIHTTPS, "WORKOS_API_HTTPS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", configError("apiHttps", "must be true or false, not "+strconv.Quote(v))
		}
		https = b
	}
	port := fallback(c.APIPort, "WORKOS_API_PORT")
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", configError("apiPort", "must be a port number, not "+strconv.Quote(port))
		}
	}
	return workosBaseURL(host, https, port), nil
}

func parseCookieSettings(c *Config) (cookieSettings, error) {
	cs := cookieSettings{
		name:   fallback(c.CookieName, "WORKOS_COOKIE_NAME"),
		domain: fallback(c.CookieDomain, "WORKOS_COOKIE_DOMAIN"),
		maxAge: defaultCookieMaxAge,
	}
	if cs.name == "" {
		cs.name = defaultCookieName
	}
	if !isCookieName(cs.name) {
		return cs, configError("cookieName", "is not a valid cookie name: "+strconv.Quote(cs.name))
	}
	if strings.ContainsAny(cs.domain, ";, ") {
		return cs, configError("cookieDomain", "is not a valid cookie domain: "+strconv.Quote(cs.domain))
	}
	if v := fallback(c.CookieMaxAge, "WORKOS_COOKIE_MAX_AGE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return cs, configError("cookieMaxAge", "must be a number of seconds, not "+strconv.Quote(v))
		}
		if n == 0 {
			return cs, configError("cookieMaxAge", "must be more than 0: a session cookie that expires at once signs every user out")
		}
		cs.maxAge = n
	}
	switch v := strings.ToLower(fallback(c.CookieSameSite, "WORKOS_COOKIE_SAMESITE")); v {
	case "", "lax":
		cs.sameSite = "Lax"
	case "strict":
		cs.sameSite = "Strict"
	case "none":
		cs.sameSite = "None"
	default:
		return cs, configError("cookieSameSite", "must be lax, strict or none, not "+strconv.Quote(v))
	}
	return cs, nil
}

// isCookieName reports whether name is an RFC 6265 token.
func isCookieName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

func parseRefreshBuffer(v string) (time.Duration, error) {
	if v == "" || strings.EqualFold(v, "auto") {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, configError("refreshBufferSeconds", "must be a number of seconds or auto, not "+strconv.Quote(v))
	}
	return time.Duration(n) * time.Second, nil
}

// identityFieldList names the identityHeaders fields for error messages.
const identityFieldList = "user.id, user.email, user.firstName, user.lastName, user.name, sessionId, organizationId, " +
	"role, roles, permissions, entitlements, featureFlags, impersonator.email, apiKey.id"

// reservedHeaders are request headers the upstream must get from the client
// or from Traefik, never from identityHeaders: hop-by-hop headers, those
// that frame or route the request, Traefik's forwarded headers, and the
// plugin's own.
var reservedHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true, "proxy-authorization": true,
	"proxy-connection": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "content-length": true, "content-type": true, "expect": true, "cookie": true, "authorization": true,
	"forwarded": true, "via": true, "x-real-ip": true,
	"x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-port": true, "x-forwarded-proto": true,
	"x-forwarded-server": true, "x-forwarded-prefix": true, "x-forwarded-uri": true, "x-forwarded-method": true,
	"x-forwarded-tls-client-cert": true, "x-forwarded-tls-client-cert-info": true,
	"x-url": true, "x-redirect-uri": true, "x-sign-up-paths": true, "x-workos-middleware": true, "x-workos-session": true,
}

// maxIdentityHeaders bounds the table, and with it the names the strip
// knows (each '-' doubles a name's spellings).
const (
	maxIdentityHeaders    = 32
	maxHeaderNameDashes   = 8
	maxIdentityHeaderName = 64
)

// parseIdentityHeaders validates identityHeaders: unset keeps SPEC's
// default X-Workos-* table, an empty map (which Traefik's file provider and
// labels deliver as "") sends none. Names are canonicalised, as header
// names are case-insensitive.
func parseIdentityHeaders(v any) ([]identityHeader, error) {
	if v == nil {
		return defaultIdentityHeaders, nil
	}
	m, ok := v.(map[string]string)
	if !ok {
		if s, isString := v.(string); isString && strings.TrimSpace(s) == "" {
			return nil, nil
		}
		untyped, isMap := v.(map[string]any)
		if !isMap {
			return nil, configError("identityHeaders", "must map header names to fields, such as {X-Forwarded-User: user.id}")
		}
		m = make(map[string]string, len(untyped))
		for name, field := range untyped {
			s, isString := field.(string)
			if !isString {
				return nil, configError("identityHeaders."+name, "must name a field, such as user.id")
			}
			m[name] = s
		}
	}
	if len(m) > maxIdentityHeaders {
		return nil, configError("identityHeaders", "has more than "+strconv.Itoa(maxIdentityHeaders)+" headers")
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	out := make([]identityHeader, 0, len(m))
	for _, name := range names {
		key := "identityHeaders." + name
		if !isCookieName(name) || len(name) > maxIdentityHeaderName || strings.ContainsAny(name, "\"/") {
			return nil, configError(key, "is not a valid header name")
		}
		if strings.Count(name, "-")+strings.Count(name, "_") > maxHeaderNameDashes {
			return nil, configError(key, "has more than "+strconv.Itoa(maxHeaderNameDashes)+" separators")
		}
		normalised := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if reservedHeaders[normalised] {
			return nil, configError(key, "collides with a header the upstream gets from the client, Traefik or the plugin itself")
		}
		if seen[normalised] {
			return nil, configError(key, "is configured twice (header names ignore case, and '_' stands for '-')")
		}
		seen[normalised] = true
		field, ok := identityFieldNames[strings.TrimSpace(m[name])]
		if !ok {
			return nil, configError(key, "names unknown field "+strconv.Quote(m[name])+"; fields are "+identityFieldList)
		}
		out = append(out, identityHeader{name: textproto.CanonicalMIMEHeaderKey(name), field: field})
	}
	return out, nil
}

// cacheNamespaceName identifies what a cached decision depends on: the
// WorkOS client (its JWKS), the cookie passwords, the refresh buffer (a
// session is cached until its refresh point), the accepted issuers and
// whether principals keep the access token.
func cacheNamespaceName(s *settings) string {
	ids := make([]string, 0, len(s.keyring.passwords))
	for id := range s.keyring.passwords {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	h.Write([]byte(s.apiBaseURL + "\x00" + s.clientID + "\x00" + s.refreshBuffer.String() + "\x00" +
		strconv.FormatBool(s.forwardAccessToken || s.eagerAuth) + "\x00" + strings.Join(s.issuers, " ")))
	for _, id := range ids {
		h.Write([]byte("\x00" + id + "\x00"))
		h.Write(s.keyring.passwords[id])
	}
	return hex.EncodeToString(h.Sum(nil))
}
