package authkit

import (
	"encoding/json"
	"html"
	"net/http"
	"strings"
)

// noStore is authkit-nextjs's cache prevention value (E.7).
const noStore = "private, no-cache, no-store, must-revalidate, max-age=0"

// setUpstreamHeaders tells the upstream who the user is, in the headers
// authkit-nextjs's withAuth() reads and in X-Workos-* identity headers.
// Incoming copies were stripped before anything else ran.
func (a *authKit) setUpstreamHeaders(r *http.Request, ext external, res *authResult) {
	h := r.Header
	h.Set("X-Workos-Middleware", "true")
	h.Set("X-Url", ext.origin+r.URL.RequestURI())
	h.Set("X-Redirect-Uri", a.redirectURI(ext))
	if a.s.signUpPathsHeader != "" {
		h.Set("X-Sign-Up-Paths", a.s.signUpPathsHeader)
	}
	if !res.signedIn {
		return
	}
	c := res.claims
	setIfNotEmpty(h, "X-Workos-User-Id", c.Subject)
	setIfNotEmpty(h, "X-Workos-Session-Id", c.SessionID)
	setIfNotEmpty(h, "X-Workos-Organization-Id", c.OrganizationID)
	setIfNotEmpty(h, "X-Workos-Role", c.Role)
	setIfNotEmpty(h, "X-Workos-Roles", strings.Join(c.Roles, ","))
	setIfNotEmpty(h, "X-Workos-Permissions", strings.Join(c.Permissions, ","))
	setIfNotEmpty(h, "X-Workos-Entitlements", strings.Join(c.Entitlements, ","))
	setIfNotEmpty(h, "X-Workos-Feature-Flags", strings.Join(c.FeatureFlags, ","))
	if res.bearer {
		return // a bearer client keeps its Authorization header and has no session
	}
	h.Set("X-Workos-Session", res.sealed)
	setIfNotEmpty(h, "X-Workos-User-Email", res.session.userEmail)
	setIfNotEmpty(h, "X-Workos-Impersonator-Email", res.session.impersonatorEmail)
	if a.s.forwardAccessToken {
		h.Set("Authorization", "Bearer "+res.session.accessToken)
	}
}

func setIfNotEmpty(h http.Header, name, value string) {
	if value != "" {
		h.Set(name, value)
	}
}

// setResponseHeaders adds to the upstream's response only Set-Cookie,
// Cache-Control and Vary (E.7). They are set before the upstream runs, on
// the writer Traefik gave us: wrapping it would hide http.Flusher from
// streaming upstreams under the interpreter.
func (a *authKit) setResponseHeaders(w http.ResponseWriter, r *http.Request, rc *requestCookies, res *authResult) {
	h := w.Header()
	cookies := res.setCookies
	if a.s.eagerAuth && res.signedIn && !res.bearer && isInitialDocumentRequest(r) &&
		(res.refreshed || rc.eager != res.session.accessToken) {
		cookies = append(cookies, eagerCookie(res.session.accessToken, a.secureCookies(a.external(r))))
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	if rc.session != "" || res.hadAuthzHdr || res.signedIn {
		h.Set("Cache-Control", noStore)
		vary := "Cookie"
		if res.hadAuthzHdr {
			vary = "Cookie, Authorization"
		}
		h.Set("Vary", mergeVary(h.Values("Vary"), vary))
	} else if len(cookies) > 0 {
		h.Set("Cache-Control", "no-store")
	}
}

// mergeVary joins existing Vary values with ours, each once, capitalised as
// authkit-nextjs writes them.
func mergeVary(existing []string, ours string) string {
	var out []string
	seen := map[string]bool{}
	add := func(list string) {
		for _, v := range strings.Split(list, ",") {
			v = strings.ToLower(strings.TrimSpace(v))
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			out = append(out, strings.ToUpper(v[:1])+v[1:])
		}
	}
	for _, e := range existing {
		add(e)
	}
	add(ours)
	return strings.Join(out, ", ")
}

// isInitialDocumentRequest tells a page navigation from fetch, XHR, RSC and
// prefetch requests (E.6): only navigations can follow a redirect to AuthKit.
func isInitialDocumentRequest(r *http.Request) bool {
	h := r.Header
	return strings.Contains(h.Get("Accept"), "text/html") &&
		h.Get("RSC") == "" && h.Get("Next-Router-State-Tree") == "" && h.Get("Next-Router-Prefetch") == "" &&
		h.Get("Purpose") != "prefetch" && h.Get("Sec-Purpose") != "prefetch"
}

// writeOwnResponse starts a response the plugin answers itself: cookies,
// no caching, and no upstream header.
func writeOwnResponse(w http.ResponseWriter, cookies []string) {
	h := w.Header()
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	h.Set("Cache-Control", noStore)
	h.Set("Vary", "Cookie")
}

// redirect answers with Location: 307 keeps a GET or HEAD, 303 turns any
// other method into a GET (E.8).
func redirect(w http.ResponseWriter, r *http.Request, location string, cookies []string) {
	writeOwnResponse(w, cookies)
	w.Header().Set("Location", location)
	status := http.StatusSeeOther
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		status = http.StatusTemporaryRedirect
	}
	w.WriteHeader(status)
}

// writeProblem answers an error: a short HTML page for a browser
// navigation, JSON {"error": code, "message": …} for anything else.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, message string, cookies []string) {
	writeOwnResponse(w, cookies)
	if isInitialDocumentRequest(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte("<!doctype html><meta charset=utf-8><title>" + http.StatusText(status) +
			"</title><h1>" + http.StatusText(status) + "</h1><p>" + html.EscapeString(message) + "</p>\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(jsonOf(map[string]string{"error": code, "message": message}))
	w.Write([]byte("\n"))
}

func jsonOf(v any) []byte {
	b, _ := json.Marshal(v) // only plain maps and structs of strings reach here
	return b
}

// unauthenticated stops a signed-out request to a protected path: a
// navigation goes to AuthKit, anything else gets 401.
func (a *authKit) unauthenticated(w http.ResponseWriter, r *http.Request, rc *requestCookies, ext external, res *authResult) {
	if res.badBearer {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "The bearer token is invalid or expired.", res.setCookies)
		return
	}
	if !isInitialDocumentRequest(r) {
		writeProblem(w, r, http.StatusUnauthorized, "unauthenticated", "Sign in to access this resource.", res.setCookies)
		return
	}
	screenHint := a.s.screenHint
	if a.s.signUpPaths.matchAny(r.URL.Path) {
		screenHint = "sign-up"
	}
	a.startSignIn(w, r, rc, ext, r.URL.RequestURI(), screenHint, "", res.setCookies)
}

// forbidden answers a signed-in user who lacks a requirement. Cookies the
// request produced (a refreshed session) still go out.
func (a *authKit) forbidden(w http.ResponseWriter, r *http.Request, res *authResult, unmet string) {
	a.log.debug("requirement not met", "requirement", unmet, "user_id", res.claims.Subject)
	writeProblem(w, r, http.StatusForbidden, "forbidden", "You do not have access to this page.", res.setCookies)
}
