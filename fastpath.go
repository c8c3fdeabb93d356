package authkit

import (
	"net/http"
	"strings"
	"time"
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
	for name := range h {
		// The mask spares most headers the map lookup (stripSet); the bit
		// is stripBit's, written out: a call per header costs a frame.
		if len(name) > 2 && a.stripMask[name[2]]>>uint((len(name)*31+int(name[len(name)-1]))&63)&1 != 0 &&
			(a.stripNames[name] || isWorkosHeader(name)) {
			delete(h, name)
		}
	}
	if a.routes[r.URL.Path] != nil || len(h["Authorization"]) != 0 {
		serveFull(a, w, r)
	} else if a.corsPreflight && r.Method == http.MethodOptions && isPreflight(h) {
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
	setUpstreamHeaders(a, r, &signedOut)
	a.next.ServeHTTP(w, r)
}

// serveAnonymous passes a request without a session when its path may be
// seen signed out.
func serveAnonymous(a *authKit, w http.ResponseWriter, r *http.Request) {
	if a.gated && !isPublic(a, r.URL.Path) {
		serveFull(a, w, r) // the sign-in redirect or the 401
		return
	}
	if a.nextjsHeaders {
		setNextjsHeaders(a, r)
	}
	if a.cutsCookies && len(r.Header["Cookie"]) != 0 {
		removePluginCookies(a, r.Header)
	}
	a.next.ServeHTTP(w, r)
}

// serveWithCookies passes a request whose session cookie is in the session
// cache, or which has cookies but no session; anything else goes to
// serveFull.
func serveWithCookies(a *authKit, w http.ResponseWriter, r *http.Request) {
	h := r.Header
	p, sealed := cachedSessionOf(a, h["Cookie"])
	if p == nil || (a.decidesPerRequest && p != anonymous && !passesCached(a, r, p)) {
		serveFull(a, w, r)
		return
	}
	if p == anonymous {
		serveAnonymous(a, w, r)
		return
	}
	if a.nextjsHeaders {
		setNextjsHeaders(a, r)
		h["X-Workos-Session"] = []string{sealed}
	}
	for i, f := range a.identityFields {
		if len(p.values[f]) != 0 {
			h[a.identityNames[i]] = p.values[f]
		}
	}
	if a.rewritesRequest {
		rewriteRequest(a, h, p, p.accessToken)
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
// per-request rules on this path (requirements, recent authentication);
// when it does not, the full path answers.
func passesCached(a *authKit, r *http.Request, p *principal) bool {
	return isPublic(a, r.URL.Path) || (a.s.requirements.unmet(p) == "" && (a.s.maxAuthAge == 0 || !authTooOld(a, p, a.now())))
}

// anonymous is what cachedSessionOf returns for a Cookie header without a
// session cookie, or whose session the cache holds as refused: signed
// out, decided on the fast path.
var anonymous = &principal{}

// cachedSessionOf reads the Cookie header with a few calls into package
// strings, and no byte tests: under the interpreter each comparison costs
// frame slots, and each call into the standard library about ten
// allocations. Browsers write "name=value; name=value", so the session
// cookie starts the line or follows "; ". A session cookie in the session
// cache gives its principal and the cookie's value; anything else (a
// session not in the cache, a split session, other spacing, several Cookie
// lines, eagerAuth's extra cookie) gives nil: the full path decides.
func cachedSessionOf(a *authKit, lines []string) (*principal, string) {
	if len(lines) != 1 || a.s.eagerAuth {
		return nil, ""
	}
	line := lines[0]
	value := ""
	if strings.HasPrefix(line, a.sessionCookieKey) {
		value = line[len(a.sessionCookieKey):]
	} else if i := strings.Index(line, a.sessionCookieAfter); i >= 0 {
		value = line[i+len(a.sessionCookieAfter):]
	} else if strings.Contains(line, a.sessionCookieName) {
		return nil, "" // a split session, or the name in another form
	} else {
		return anonymous, ""
	}
	if j := strings.IndexByte(value, ';'); j >= 0 {
		value = value[:j]
	}
	e := lookupCached(a.sessions, a.cacheNS, value, time.Since(a.epoch))
	if e == nil {
		return nil, ""
	}
	if e.principal == nil {
		return anonymous, ""
	}
	return e.principal, value
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
