package authkit

import (
	"hash/maphash"
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
		// Under the interpreter a lookup in a map[string]bool allocates
		// nothing (one in an http.Header does: it boxes the []string),
		// and a byte test spares most names the call.
		if a.stripNames[name] || len(name) > 9 && a.workosThirdByte[name[2]] && isWorkosHeader(name) {
			delete(h, name)
		}
	}
	if a.isRoute[r.URL.Path] || len(h["Authorization"]) != 0 {
		serveFull(a, w, r)
	} else if a.corsPreflight && isPreflight(r) {
		servePreflight(a, w, r)
	} else if len(h["Cookie"]) == 0 {
		serveAnonymous(a, w, r)
	} else {
		serveWithCookies(a, w, r)
	}
}

// isPreflight reports whether a request is a CORS preflight, which
// browsers send without credentials before a cross-origin call.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Origin"]) != 0 && len(r.Header["Access-Control-Request-Method"]) != 0
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
	if a.cutsCookies {
		removePluginCookies(a, r.Header)
	}
	a.next.ServeHTTP(w, r)
}

// serveWithCookies passes a request whose session cookie is in the session
// cache, or which has cookies but no session; anything else goes to
// serveFull. It reads the Cookie header with two calls into package
// strings and few byte tests, and looks the cookie up itself
// (lookupCached, written out): under the interpreter each call into the
// standard library costs about five allocations, each call of the
// plugin's own several more, and each expression in the function one.
// Browsers write "name=value; name=value", so the session cookie starts
// the line or follows "; ". Anything else (a session not in the cache,
// the name elsewhere in the line, other spacing, several Cookie lines,
// eagerAuth's extra cookie) is the full path's to decide.
func serveWithCookies(a *authKit, w http.ResponseWriter, r *http.Request) {
	h := r.Header
	lines := h["Cookie"]
	if len(lines) != 1 || a.eagerAuth {
		serveFull(a, w, r)
		return
	}
	line := lines[0]
	i := strings.Index(line, a.sessionCookieKey)
	if i < 0 {
		serveWithoutSessionCookie(a, w, r, line)
		return
	}
	if i != 0 && (i == 1 || line[i-2:i] != "; ") {
		serveFull(a, w, r)
		return
	}
	value := line[i+len(a.sessionCookieKey):]
	if j := strings.IndexByte(value, ';'); j >= 0 {
		value = value[:j]
	}
	key := maphash.String(a.cacheNS.seed, value)
	a.sessions.indexMu.RLock()
	e := a.sessions.index[key]
	a.sessions.indexMu.RUnlock()
	if e == nil || time.Since(a.epoch) >= e.expires || !strings.HasSuffix(value, e.tail) {
		serveFull(a, w, r)
		return
	}
	p := e.principal
	if p == nil { // a session the cache holds as refused: signed out
		serveAnonymous(a, w, r)
		return
	}
	parts := strings.Split(p.text, fieldSeparator) // principalParts, without a call
	if a.decidesPerRequest && !passesCached(a, r, p, parts) {
		serveFull(a, w, r)
		return
	}
	if a.nextjsHeaders {
		setNextjsSessionHeaders(a, r, value)
	}
	for k, name := range a.identityNames {
		if v := parts[a.identityFields[k]]; v != "" {
			h[name] = []string{v}
		}
	}
	if a.rewritesRequest {
		rewriteRequest(a, h, p, parts[partAccessToken])
	}
	if wh := w.Header(); len(wh["Vary"]) == 0 {
		wh["Cache-Control"] = headerNoStore
		wh["Vary"] = headerCookie
	} else {
		preventCaching(wh, false)
	}
	a.next.ServeHTTP(w, r)
}

// serveWithoutSessionCookie serves a Cookie line without "<name>=": signed
// out, unless the name is there in another form (a split session's parts),
// which the full path reads.
func serveWithoutSessionCookie(a *authKit, w http.ResponseWriter, r *http.Request, line string) {
	if strings.Contains(line, a.sessionCookieName) {
		serveFull(a, w, r)
	} else {
		serveAnonymous(a, w, r)
	}
}

// passesCached reports whether a cached principal meets the instance's
// per-request rules on this path (requirements, recent authentication);
// when it does not, the full path answers.
func passesCached(a *authKit, r *http.Request, p *principal, parts []string) bool {
	return isPublic(a, r.URL.Path) || ((!a.hasRequirements || a.s.requirements.unmet(parts) == "") &&
		(a.s.maxAuthAge == 0 || !authTooOld(a, p, a.now())))
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
