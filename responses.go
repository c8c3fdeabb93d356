package authkit

import (
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// What the browser receives: the cache headers and cookies the plugin adds
// to upstream responses (authkit's allowlist: Set-Cookie, Cache-Control,
// Vary), and the plugin's own answers: redirects to AuthKit, 401, 403 and
// error pages.

// noStore is authkit-nextjs's cache prevention value (E.7).
const noStore = "private, no-cache, no-store, must-revalidate, max-age=0"

// setResponseHeaders adds to the upstream's response only Set-Cookie,
// Cache-Control and Vary (E.7). They are set before the upstream runs, on
// the writer Traefik gave us: wrapping it would hide http.Flusher from
// streaming upstreams under the interpreter.
func setResponseHeaders(a *authKit, w http.ResponseWriter, r *http.Request, rc *requestCookies, res *authResult) {
	h := w.Header()
	cookies := res.setCookies
	if a.s.eagerAuth && res.accessToken != "" && isInitialDocumentRequest(r) &&
		(res.refreshed || rc.eager != res.accessToken) {
		cookies = append(cookies, eagerCookie(res.accessToken, a.secureCookies(externalOf(a, r))))
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	authz := len(r.Header["Authorization"]) > 0
	if rc.session != "" || authz || res.principal != nil {
		preventCaching(h, authz)
	} else if len(cookies) > 0 {
		h.Set("Cache-Control", "no-store")
	}
}

// preventCaching marks a response that depends on the session as private
// and varying by Cookie (and Authorization when the request had one),
// merged into any Vary already set.
func preventCaching(h http.Header, authz bool) {
	h["Cache-Control"] = headerNoStore
	if existing := h["Vary"]; authz || len(existing) > 0 {
		vary := "Cookie"
		if authz {
			vary = "Cookie, Authorization"
		}
		h["Vary"] = []string{mergeVary(existing, vary)}
	} else {
		h["Vary"] = headerCookie
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
func unauthenticated(a *authKit, w http.ResponseWriter, r *http.Request, ext external, res *authResult) {
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
	a.startSignIn(w, r, ext, signInOptions{returnTo: r.URL.RequestURI(), screenHint: screenHint}, res.setCookies)
}

// reauthenticate stops a signed-in request whose authentication is older
// than maxAuthAgeSeconds (SPEC "Recent authentication"): a navigation goes
// to a new authorization with max_age, the session kept until it ends;
// anything else gets 401 reauthentication_required.
func reauthenticate(a *authKit, w http.ResponseWriter, r *http.Request, ext external, res *authResult) {
	if !isInitialDocumentRequest(r) || res.principal.kind != signedInBySession {
		writeProblem(w, r, http.StatusUnauthorized, "reauthentication_required", "Sign in again to access this resource.", res.setCookies)
		return
	}
	maxAge := int(a.s.maxAuthAge / time.Second)
	a.startSignIn(w, r, ext, signInOptions{returnTo: r.URL.RequestURI(), screenHint: a.s.screenHint, maxAge: maxAge}, res.setCookies)
}

// unavailable answers a request whose credential cannot be checked now:
// 503 with Retry-After, never 401 for an outage.
func unavailable(w http.ResponseWriter, r *http.Request, res *authResult) {
	seconds := int(res.retryAfter / time.Second)
	if seconds < 1 {
		seconds = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "The credential cannot be checked right now; try again.", res.setCookies)
}

// forbidden answers a signed-in user who lacks a requirement. Cookies the
// request produced (a refreshed session) still go out.
func forbidden(a *authKit, w http.ResponseWriter, r *http.Request, res *authResult, unmet string) {
	a.log.debug("requirement not met", "requirement", unmet, "user_id", fieldValue(res.principal, fieldUserID))
	writeProblem(w, r, http.StatusForbidden, "forbidden", "You do not have access to this page.", res.setCookies)
}
