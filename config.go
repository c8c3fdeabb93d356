package authkit

import (
	"errors"
	"net/url"
	"os"
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

// splitList normalises a list from any provider: YAML lists, Kubernetes
// arrays and Docker labels' comma-separated strings all become one flat,
// trimmed list without empty entries.
func splitList(values []string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
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
	if s.publicPaths, err = compilePathPatterns(splitList(c.MiddlewareAuth.UnauthenticatedPaths)); err != nil {
		return nil, configError("middlewareAuth.unauthenticatedPaths", err.Error())
	}
	signUp := splitList(c.SignUpPaths)
	if s.signUpPaths, err = compilePathPatterns(signUp); err != nil {
		return nil, configError("signUpPaths", err.Error())
	}
	s.signUpPathsHeader = strings.Join(signUp, ",")
	s.requirements = requirements{
		permissions:   splitList(c.RequiredPermissions),
		roles:         splitList(c.RequiredRoles),
		organizations: splitList(c.AllowedOrganizations),
		entitlements:  splitList(c.RequiredEntitlements),
		featureFlags:  splitList(c.RequiredFeatureFlags),
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
	if u.Path == "" {
		u.Path = "/"
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
