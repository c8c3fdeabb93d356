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
// (serveFull, authenticate, verifyToken, unseal, putSession…) are plain
// functions rather than methods: a method call allocates a function
// wrapper and costs about three times a plain call. harness/bench counts
// the allocations; see Performance in the README.

// ServeHTTP strips the internal headers and dispatches.
func (a *authKit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	for name := range h {
		// net/http canonicalises incoming names; one byte test spares most
		// headers the full one.
		if len(name) > 2 && internalHeaderThirdByte[name[2]] && isInternalHeader(name) {
			delete(h, name)
		}
	}
	if a.routes[r.URL.Path] != nil || len(h["Authorization"]) != 0 {
		serveFull(a, w, r)
	} else if len(h["Cookie"]) == 0 {
		serveAnonymous(a, w, r)
	} else {
		serveWithCookies(a, w, r)
	}
}

// internalHeaderThirdByte holds the third byte of the canonical names
// ServeHTTP strips: X-Workos-* and X-Sign-Up-Paths. X-Url and
// X-Redirect-Uri need no strip: every request that reaches the upstream
// gets them overwritten (setUpstreamHeaders).
var internalHeaderThirdByte = [256]bool{'W': true, 'S': true}

// isInternalHeader reports whether a canonical header name is one only the
// plugin may set (SPEC "What the upstream receives"): a client can never
// tell the upstream who it is.
func isInternalHeader(name string) bool {
	return strings.HasPrefix(name, "X-Workos-") || name == "X-Sign-Up-Paths"
}

// serveAnonymous passes a request without cookies or Authorization header
// when its path may be seen signed out.
func serveAnonymous(a *authKit, w http.ResponseWriter, r *http.Request) {
	if a.gated && !isPublic(a, r.URL.Path) {
		serveFull(a, w, r) // the sign-in redirect or the 401
		return
	}
	setBaseHeaders(a, r, requestOrigin(a, r))
	a.next.ServeHTTP(w, r)
}

// serveWithCookies passes a request whose session cookie is in the session
// cache, or which has cookies but no session; anything else goes to
// serveFull.
func serveWithCookies(a *authKit, w http.ResponseWriter, r *http.Request) {
	res := cookieResult(a, r.Header["Cookie"])
	if res == nil || (res.signedIn && a.hasRequirements) {
		serveFull(a, w, r)
		return
	}
	if !res.signedIn {
		serveAnonymous(a, w, r)
		return
	}
	setBaseHeaders(a, r, requestOrigin(a, r))
	h := r.Header
	for _, f := range res.identity {
		h[f.name] = f.value
	}
	if a.s.forwardAccessToken {
		forwardAccessToken(h, res)
	}
	if wh := w.Header(); len(wh["Vary"]) == 0 {
		wh["Cache-Control"] = headerNoStore
		wh["Vary"] = headerCookie
	} else {
		preventCaching(wh, false)
	}
	a.next.ServeHTTP(w, r)
}

// cookieResult reads the Cookie header with two calls into package
// strings (Request.Cookie would parse and validate every byte of every
// cookie). A session cookie in the session cache gives the entry's ready,
// read-only result; cookies without a session cookie give &signedOut;
// anything else (a quoted value, a split or unknown session, several
// Cookie headers, eagerAuth's extra cookie) returns nil: the full path
// decides.
func cookieResult(a *authKit, lines []string) *authResult {
	if len(lines) != 1 || a.s.eagerAuth {
		return nil
	}
	line := lines[0]
	i := strings.Index(line, a.sessionCookieKey)
	if i < 0 {
		return withoutSession(a, line)
	}
	if i > 0 && line[i-1] != ' ' {
		return nil // the first match ends a longer name ("xwos-session=")
	}
	value := line[i+len(a.sessionCookieKey):]
	if j := strings.IndexByte(value, ';'); j >= 0 {
		value = value[:j]
	}
	if e := lookupSession(a.sessions, a.cacheNS, value, a.now()); e != nil {
		return e.result
	}
	return nil
}

// withoutSession is the result of a Cookie line without "<name>=":
// signed out, unless the session may be split into "<name>.0",
// "<name>.1"… cookies, which the full path reassembles.
func withoutSession(a *authKit, line string) *authResult {
	if strings.Contains(line, a.sessionChunkKey) {
		return nil
	}
	return &signedOut
}

// isPublic reports whether a path is one of middlewareAuth's
// unauthenticatedPaths, compiled into one regexp. A path with dot segments
// is never public: "/public/../admin" must not pass as "/public/:p*".
func isPublic(a *authKit, path string) bool {
	return a.publicPaths != nil && a.publicPaths.MatchString(path) &&
		!(strings.Contains(path, "/.") && hasDotSegment(path))
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
