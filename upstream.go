package authkit

import (
	"net/http"
	"net/textproto"
	"strings"
)

// What the upstream receives (SPEC "What the upstream receives"): the
// strip of every header only the plugin may set, authkit-nextjs's request
// headers, the identity headers and, on request, the access token and a
// Cookie header without the plugin's cookies.

var (
	headerTrue    = []string{"true"}
	headerNoStore = []string{noStore}
	headerCookie  = []string{"Cookie"}
)

// nextjsHeaderNames are authkit-nextjs's internal request headers beside
// x-workos-*, normalised (lower case, '-').
var nextjsHeaderNames = []string{"x-url", "x-redirect-uri", "x-sign-up-paths"}

// defaultIdentityHeaders is the X-Workos-* table SPEC gives, used when
// identityHeaders is not configured.
var defaultIdentityHeaders = []identityHeader{
	{"X-Workos-User-Id", fieldUserID},
	{"X-Workos-User-Email", fieldUserEmail},
	{"X-Workos-Session-Id", fieldSessionID},
	{"X-Workos-Organization-Id", fieldOrganizationID},
	{"X-Workos-Role", fieldRole},
	{"X-Workos-Roles", fieldRoles},
	{"X-Workos-Permissions", fieldPermissions},
	{"X-Workos-Entitlements", fieldEntitlements},
	{"X-Workos-Feature-Flags", fieldFeatureFlags},
	{"X-Workos-Impersonator-Email", fieldImpersonatorEmail},
	{"X-Workos-Api-Key-Id", fieldAPIKeyID},
}

// identityHeader is one upstream header and the identity field it carries.
// The name is canonical, so it is assigned without canonicalisation.
type identityHeader struct {
	name  string
	field int
}

// stripNames returns the set of incoming header names an instance
// removes: every spelling, by case and by '_' for '-', of the given
// normalised names (lower case, '-' separated), the names only the plugin
// may set. net/http hands the plugin canonical names, and each spelling
// has one canonical form, so the set holds those forms. X-Workos-* is a
// prefix, which isWorkosHeader tests.
func stripNames(names []string) map[string]bool {
	set := map[string]bool{}
	for _, n := range names {
		for _, spelling := range separatorSpellings(n) {
			set[textproto.CanonicalMIMEHeaderKey(spelling)] = true
		}
	}
	return set
}

// separatorSpellings returns name with each '-' also written as '_'.
func separatorSpellings(name string) []string {
	out := []string{name}
	for i := 0; i < len(name); i++ {
		if name[i] != '-' {
			continue
		}
		n := len(out)
		for j := 0; j < n; j++ {
			out = append(out, out[j][:i]+"_"+out[j][i+1:])
		}
	}
	return out
}

// isWorkosHeader reports whether a header name starts with x-workos- in
// any case and with '_' for either '-'.
func isWorkosHeader(name string) bool {
	return len(name) > 9 && (name[0]|0x20) == 'x' && (name[1] == '-' || name[1] == '_') &&
		(name[8] == '-' || name[8] == '_') && strings.EqualFold(name[2:8], "workos")
}

// setUpstreamHeaders tells the upstream about the request: authkit-nextjs's
// headers when configured, and who is signed in. Incoming copies were
// stripped before anything else ran.
func setUpstreamHeaders(a *authKit, r *http.Request, res *authResult) {
	if a.nextjsHeaders {
		setNextjsHeaders(a, r)
	}
	h := r.Header
	if res.principal != nil {
		setIdentityHeaders(a, h, res.principal)
		if a.nextjsHeaders && res.sealed != "" {
			h["X-Workos-Session"] = []string{res.sealed}
		}
	}
	if a.rewritesRequest {
		rewriteRequest(a, h, res.principal, res.accessToken)
	}
}

// setNextjsHeaders sets what authkit-nextjs's middleware sets on every
// request that passes, signed in or not, so withAuth() works behind Traefik.
// It runs on every such request, so it is written for the interpreter: one
// frame, few intermediate values, slices tested with len (a nil comparison
// of a slice allocates).
func setNextjsHeaders(a *authKit, r *http.Request) {
	h := r.Header
	origin := a.s.baseURL
	if len(origin) == 0 {
		origin = "http://" + r.Host
		if isHTTPS(r) {
			origin = "https://" + r.Host
		}
	}
	uri := r.RequestURI // the request line's target, unless not in origin form
	if len(uri) == 0 || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	h["X-Workos-Middleware"] = headerTrue
	h["X-Url"] = []string{origin + uri}
	if len(a.redirectURIHeader) != 0 {
		h["X-Redirect-Uri"] = a.redirectURIHeader
	} else {
		h["X-Redirect-Uri"] = []string{origin + a.s.redirectURI}
	}
	if len(a.signUpPathsHeader) != 0 {
		h["X-Sign-Up-Paths"] = a.signUpPathsHeader
	}
}

// setNextjsSessionHeaders is setNextjsHeaders for a signed-in request:
// with the sealed session, which withAuth() reads.
func setNextjsSessionHeaders(a *authKit, r *http.Request, sealed string) {
	setNextjsHeaders(a, r)
	r.Header["X-Workos-Session"] = []string{sealed}
}

// rewriteRequest applies the options that change the request's own
// headers: forwardAccessToken and passSessionCookie false.
func rewriteRequest(a *authKit, h http.Header, p *principal, accessToken string) {
	if a.s.forwardAccessToken {
		forwardAccessToken(h, p, accessToken)
	}
	if !a.s.passSessionCookie {
		removePluginCookies(a, h)
	}
}

// setIdentityHeaders writes the instance's identity headers from a
// principal's shared values. (len, not a nil test: under the interpreter
// comparing a slice with nil allocates.)
func setIdentityHeaders(a *authKit, h http.Header, p *principal) {
	parts := principalParts(p)
	for i, f := range a.identityFields {
		if v := parts[f]; v != "" {
			h[a.identityNames[i]] = []string{v}
		}
	}
}

// forwardAccessToken sends a cookie session's access token as
// Authorization: Bearer. A credential the plugin verified itself (a bearer
// token, an API key) goes on unchanged; any other Authorization header is
// removed, so the upstream never trusts one the plugin did not check.
func forwardAccessToken(h http.Header, p *principal, accessToken string) {
	switch {
	case p != nil && p.kind == signedInBySession && accessToken != "":
		h["Authorization"] = []string{"Bearer " + accessToken}
	case p == nil || p.kind == signedInBySession:
		delete(h, "Authorization")
	}
}

// removePluginCookies takes the plugin's own cookies (the session and its
// parts, the PKCE verifiers, the eager cookie) out of the Cookie header the
// upstream receives, keeping every other byte as it was; a line left empty
// is removed.
func removePluginCookies(a *authKit, h http.Header) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := make([]string, 0, len(lines))
	for i, line := range lines {
		if i == maxCookieLines {
			break // what the reader never looked at is not passed on unread
		}
		if line = withoutPluginCookies(line, a.s.cookie.name); line != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// withoutPluginCookies returns a Cookie line without the plugin's cookies.
// Where the bounded reader stopped before the end of a crafted line, the
// rest of it is dropped rather than passed on unexamined.
func withoutPluginCookies(line, sessionName string) string {
	var spans [][2]int
	cut := len(line)
	for _, prefix := range [3]string{sessionName, pkceCookiePrefix, eagerCookieName} {
		s := cookieScan{line: line, prefix: prefix, budget: maxCookieMatches}
		for {
			name, _, start, end, ok := nextCookie(&s)
			if !ok {
				break
			}
			if isPluginCookie(name, sessionName) {
				spans = append(spans, [2]int{start, end})
			}
		}
		if s.exhausted && s.pos < cut {
			cut = s.pos
		}
	}
	if len(spans) == 0 && cut == len(line) {
		return line
	}
	return cutSpans(line[:cut], spans)
}

// isPluginCookie reports whether a cookie name is one the plugin writes.
func isPluginCookie(name, sessionName string) bool {
	return name == sessionName || chunkIndex(name, sessionName) >= 0 || isPKCECookieName(name) || name == eagerCookieName
}

// cutSpans removes the cookies at spans (offsets of their first byte and
// of their end) from line, each with the separator after it, or before it
// for the last cookie.
func cutSpans(line string, spans [][2]int) string {
	sortSpans(spans)
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp[0] < last || sp[0] >= len(line) {
			continue
		}
		b.WriteString(line[last:sp[0]])
		last = sp[1]
		if last < len(line) {
			rest := strings.TrimLeft(line[last+1:], " \t")
			last = len(line) - len(rest)
		}
	}
	if last >= len(line) {
		return strings.TrimRight(b.String(), "; \t")
	}
	b.WriteString(line[last:])
	return b.String()
}

// sortSpans orders a handful of spans by start (insertion sort: sort.Slice
// would call an interpreted comparison through reflection).
func sortSpans(spans [][2]int) {
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j][0] < spans[j-1][0]; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
}
