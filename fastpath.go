package authkit

import (
	"net/http"
	"strings"
)

// The per-request fast path. Under Traefik's interpreter a call allocates
// every frame slot of the callee (one per variable and per intermediate
// value of any expression in it, whether that code runs or not), and
// each evaluated expression costs a fraction of a microsecond. So the
// paths that most requests take (a cached session cookie, an anonymous
// visitor) are spread over small functions that hold only what that path
// evaluates; everything else goes to serveFull, which is written for
// clarity. Functions that run on every request or every cache miss
// (serveFull, authenticate, verifyToken, unseal, storeCached…) are plain
// functions rather than methods: a method call allocates a function
// wrapper and costs about three times a plain call. harness/bench counts
// the allocations; see Performance in the README.

// ServeHTTP strips the internal headers and dispatches.
func (a *authKit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	s := a.strip
	for name := range h {
		// One byte test spares most headers the full one.
		if len(name) > 2 && s.thirdByte[name[2]] && isStrippedHeader(s, name) {
			delete(h, name)
		}
	}
	if a.routes[r.URL.Path] != nil || len(h["Authorization"]) != 0 {
		serveFull(a, w, r)
	} else if a.s.passCorsPreflight && r.Method == http.MethodOptions && isPreflight(h) {
		servePreflight(a, w, r)
	} else if len(h["Cookie"]) == 0 {
		serveAnonymous(a, w, r)
	} else {
		serveWithCookies(a, w, r)
	}
}

// isPreflight reports whether an OPTIONS request is a CORS preflight,
// which browsers send without credentials before a cross-origin call.
func isPreflight(h http.Header) bool {
	return len(h["Origin"]) != 0 && len(h["Access-Control-Request-Method"]) != 0
}

// servePreflight passes a CORS preflight unauthenticated, with no
// identity (passCorsPreflight): the upstream answers it.
func servePreflight(a *authKit, w http.ResponseWriter, r *http.Request) {
	setUpstreamHeaders(a, r, requestOrigin(a, r), &signedOut)
	a.next.ServeHTTP(w, r)
}

// serveAnonymous passes a request without a session when its path may be
// seen signed out.
func serveAnonymous(a *authKit, w http.ResponseWriter, r *http.Request) {
	if a.gated && !isPublic(a, r.URL.Path) {
		serveFull(a, w, r) // the sign-in redirect or the 401
		return
	}
	if a.s.nextjsHeaders {
		setNextjsHeaders(a, r, requestOrigin(a, r))
	}
	if !a.s.passSessionCookie && len(r.Header["Cookie"]) != 0 {
		removePluginCookies(a, r.Header)
	}
	a.next.ServeHTTP(w, r)
}

// serveWithCookies passes a request whose session cookie is in the session
// cache, or which has cookies but no session; anything else goes to
// serveFull.
func serveWithCookies(a *authKit, w http.ResponseWriter, r *http.Request) {
	e, sealed := cachedCookie(a, r.Header["Cookie"])
	if e == nil || (e.principal != nil && a.decidesPerRequest && !passesCached(a, r, e.principal)) {
		serveFull(a, w, r)
		return
	}
	p := e.principal
	if p == nil {
		serveAnonymous(a, w, r)
		return
	}
	h := r.Header
	if a.s.nextjsHeaders {
		setNextjsHeaders(a, r, requestOrigin(a, r))
		h["X-Workos-Session"] = []string{sealed}
	}
	for _, ih := range a.identityHeaders {
		if p.fields[ih.field] != "" {
			h[ih.name] = p.fields[ih.field : ih.field+1 : ih.field+1]
		}
	}
	if a.s.forwardAccessToken {
		forwardAccessToken(h, p, p.accessToken)
	}
	if !a.s.passSessionCookie {
		removePluginCookies(a, h)
	}
	if wh := w.Header(); len(wh["Vary"]) == 0 {
		wh["Cache-Control"] = headerNoStore
		wh["Vary"] = headerCookie
	} else {
		preventCaching(wh, false)
	}
	a.next.ServeHTTP(w, r)
}

// passesCached reports whether a cached principal meets the instance's
// per-request rules (requirements); when it does not, the full path
// answers.
func passesCached(a *authKit, r *http.Request, p *principal) bool {
	return isPublic(a, r.URL.Path) || a.s.requirements.unmet(p) == ""
}

// noSession is the lookup result of a Cookie header without a session
// cookie: signed out, decided on the fast path.
var noSession = &cacheEntry{}

// cachedCookie reads the Cookie header with a few calls into package
// strings. A session cookie in the session cache gives the entry and the
// cookie's value; cookies without a session cookie give noSession;
// anything else (a session not in the cache, a split session, several
// Cookie lines, eagerAuth's extra cookie) returns nil: the full path
// decides.
func cachedCookie(a *authKit, lines []string) (*cacheEntry, string) {
	if len(lines) != 1 || a.s.eagerAuth {
		return nil, ""
	}
	line := lines[0]
	i := strings.Index(line, a.sessionCookieKey)
	if i < 0 {
		if strings.Contains(line, a.sessionChunkKey) {
			return nil, ""
		}
		return noSession, ""
	}
	if i > 0 {
		// The first match must start a cookie, not end a longer name
		// ("xwos-session=") or sit in a value.
		if before := strings.TrimRight(line[:i], " \t"); before != "" && before[len(before)-1] != ';' {
			return nil, ""
		}
	}
	value := line[i+len(a.sessionCookieKey):]
	if j := strings.IndexByte(value, ';'); j >= 0 {
		value = value[:j]
	}
	value = strings.TrimSpace(value)
	return lookupCached(a.sessions, a.cacheNS, value, a.now().UnixNano()), value
}

// isPublic reports whether a path is one of middlewareAuth's
// unauthenticatedPaths, compiled into one regexp. A path with dot segments
// is never public: "/public/../admin" must not pass as "/public/:p*".
func isPublic(a *authKit, path string) bool {
	return a.publicPaths != nil && a.publicPaths.MatchString(path) &&
		!(strings.Contains(path, "/.") && hasDotSegment(path))
}

// hasDotSegment reports whether a path has a "." or ".." segment, which
// the upstream may resolve to another path than the one matched.
func hasDotSegment(path string) bool {
	return strings.Contains(path, "/./") || strings.Contains(path, "/../") ||
		strings.HasSuffix(path, "/.") || strings.HasSuffix(path, "/..")
}

// requestOrigin is externalOf's origin alone: baseUrl when configured,
// else the scheme isHTTPS reads and the Host header.
func requestOrigin(a *authKit, r *http.Request) string {
	if a.s.baseURL != "" {
		return a.s.baseURL
	}
	if isHTTPS(r) {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}
