package authkit

import (
	"crypto/subtle"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The routes a proxy answers itself: callback, sign-in, sign-out and the
// organization switch (SPEC.md "Routes the plugin answers itself").

const signInFailed = "Couldn't sign in. If you are not sure what happened, please contact your organization admin."

// maxFormBytes caps the request bodies the plugin reads (SPEC "Bounded
// work"): an organization switch's form is a few dozen bytes.
const maxFormBytes = 16 << 10

// signInOptions are what a sign-in carries into the authorization URL
// (authkit-nextjs's getSignInUrl options) and into its sealed state.
type signInOptions struct {
	returnTo       string // a safe path, or an absolute URL on a listed origin
	screenHint     string
	organizationID string
	loginHint      string
	maxAge         int // seconds; 0: no step-up
}

// startSignIn redirects to AuthKit with a fresh PKCE state, sealed for 600 s
// into the state parameter and into this flow's own verifier cookie (E.4).
func (a *authKit) startSignIn(w http.ResponseWriter, r *http.Request, ext external, opts signInOptions, cookies []string) {
	secure := a.secureCookies(ext)
	st, sealed, err := a.sealAuthState(returnTargetFor(a, ext, opts.returnTo), opts.maxAge, secure)
	if err != nil {
		a.log.event("sign_in_failed", "reason", err.Error())
		writeProblem(w, r, http.StatusInternalServerError, "internal_error", "Could not start signing in.", cookies)
		return
	}
	name := pkceCookieName(sealed)
	cookies = append(cookies, a.s.cookie.pkceCookie(name, sealed, secure))
	if pending := readCookies(r.Header["Cookie"], a.s.cookie.name, readPKCE).pkceNames; len(pending) >= maxPKCECookies {
		// Abandoned sign-ins pile up verifier cookies; clear them before
		// they make the Cookie header too large (431).
		for _, old := range pending {
			if old != name {
				cookies = append(cookies, a.s.cookie.pkceDeletion(old, secure))
			}
		}
	}
	params := workosAuthorizeParams{
		RedirectURI:    a.redirectURI(ext),
		State:          sealed,
		CodeChallenge:  pkceChallenge(st.CodeVerifier),
		ScreenHint:     opts.screenHint,
		OrganizationID: opts.organizationID,
		LoginHint:      opts.loginHint,
	}
	if opts.maxAge > 0 {
		params.MaxAge = strconv.Itoa(opts.maxAge)
	}
	redirect(w, r, a.workos.authorizeURL(params), cookies)
}

// sealAuthState seals a new sign-in's state. A return path that would
// push the verifier cookie past the browsers' 4096 bytes (which would drop
// it, failing the callback) loses its query, then gives way to
// returnPathname (SPEC "Bounded work").
func (a *authKit) sealAuthState(returnPath string, maxAge int, secure bool) (*authState, string, error) {
	fits := func(sealed string) bool {
		return len(a.s.cookie.pkceCookie(pkceCookieName(sealed), sealed, secure)) <= maxCookieLength
	}
	var st *authState
	var sealed string
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if st, err = newAuthState(returnPath); err != nil {
			return nil, "", err
		}
		st.MaxAge = maxAge
		if sealed, err = a.s.keyring.Seal(jsonOf(st), authStateTTL, a.now()); err != nil || fits(sealed) {
			return st, sealed, err
		}
		if i := strings.IndexAny(returnPath, "?#"); attempt == 0 && i >= 0 {
			returnPath = returnPath[:i]
		} else {
			returnPath = a.s.returnPathname
		}
	}
	return st, sealed, nil
}

// maxSignInHint bounds organizationId and loginHint, which go into the
// authorization URL.
const maxSignInHint = 256

// handleSignIn always starts a new sign-in, signed in or not, with the
// options authkit-nextjs's getSignInUrl() takes: returnTo, organizationId,
// loginHint and screenHint.
func (a *authKit) handleSignIn(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := signInOptions{
		returnTo:       safeReturnTo(q.Get("returnTo"), a.s.returnPathname, a.s.returnOrigins),
		screenHint:     q.Get("screenHint"),
		organizationID: q.Get("organizationId"),
		loginHint:      q.Get("loginHint"),
	}
	for _, v := range [2]string{opts.organizationID, opts.loginHint} {
		if len(v) > maxSignInHint || strings.ContainsAny(v, controlCharacters) {
			writeProblem(w, r, http.StatusBadRequest, "bad_sign_in_option", "organizationId and loginHint must be short and printable.", nil)
			return
		}
	}
	switch opts.screenHint {
	case "sign-in", "sign-up":
	case "":
		opts.screenHint = a.s.screenHint
		returnPath := opts.returnTo
		if origin := originOf(returnPath); origin != "" {
			returnPath = returnPath[len(origin):]
		}
		if i := strings.IndexAny(returnPath, "?#"); i >= 0 {
			returnPath = returnPath[:i]
		}
		if a.s.signUpPaths.matchAny(returnPath) {
			opts.screenHint = "sign-up"
		}
	default:
		writeProblem(w, r, http.StatusBadRequest, "bad_screen_hint", "screenHint must be sign-in or sign-up.", nil)
		return
	}
	a.startSignIn(w, r, externalOf(a, r), opts, nil)
}

// handleCallback completes a sign-in (E.11): the state must be this flow's
// cookie, the code is exchanged with its verifier, and the browser lands on
// the state's return path with a session cookie.
func (a *authKit) handleCallback(w http.ResponseWriter, r *http.Request) {
	ext := externalOf(a, r)
	secure := a.secureCookies(ext)
	q := r.URL.Query()
	if r.Method != http.MethodGet {
		// A HEAD (a link scanner's, a prefetch) must not spend the code, nor
		// the flow's verifier cookie, which the browser's GET still needs.
		w.Header().Set("Allow", "GET")
		writeProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The callback answers GET only.", nil)
		return
	}
	code, state := q.Get("code"), q.Get("state")
	var cookies []string
	if state != "" {
		cookies = append(cookies, a.s.cookie.pkceDeletion(pkceCookieName(state), secure))
	}
	fail := func(status int, reason string) {
		a.log.event("callback_failed", "reason", reason)
		writeProblem(w, r, status, reason, signInFailed, cookies)
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusBadRequest, "authorization_error")
		return
	}
	if code == "" || state == "" {
		fail(http.StatusBadRequest, "missing_auth_params")
		return
	}
	verifierCookie := findCookie(r.Header["Cookie"], pkceCookieName(state))
	if verifierCookie == "" {
		verifierCookie = findCookie(r.Header["Cookie"], pkceCookiePrefix) // authkit-nextjs's legacy name
	}
	if verifierCookie == "" {
		fail(http.StatusBadRequest, "missing_pkce_cookie")
		return
	}
	if subtle.ConstantTimeCompare([]byte(verifierCookie), []byte(state)) != 1 {
		fail(http.StatusBadRequest, "oauth_state_mismatch")
		return
	}
	plain, err := unseal(a.s.keyring, state, a.now())
	var st *authState
	if err == nil {
		st, err = decodeAuthState(plain)
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid_state")
		return
	}
	resp, err := a.workos.authenticateWithCode(r.Context(), code, st.CodeVerifier)
	if err != nil {
		status := http.StatusBadRequest
		if we, ok := err.(*workosError); ok && we.Transient {
			status = http.StatusBadGateway
		}
		a.log.event("callback_failed", "reason", err.Error())
		writeProblem(w, r, status, "authentication_failed", signInFailed, cookies)
		return
	}
	sess, sealed, err := sealResponse(a, nil, resp)
	if err != nil {
		fail(http.StatusBadGateway, "invalid_workos_response")
		return
	}
	token, err := parseToken(resp.AccessToken)
	if err != nil {
		fail(http.StatusBadGateway, "invalid_workos_response")
		return
	}
	if !issuerAccepted(a, token.claims.Issuer) {
		// Stored, the session would be refused on the next request and send
		// the browser back to AuthKit: a loop. Say so instead.
		a.log.event("token_rejected", "reason", "issuer not accepted", "iss", token.claims.Issuer, "user_id", sess.userID)
		writeProblem(w, r, http.StatusForbidden, "issuer_not_accepted", signInFailed, cookies)
		return
	}
	rc := readCookies(r.Header["Cookie"], a.s.cookie.name, readAll)
	sessionCookies, err := a.s.cookie.sessionCookies(sealed, secure, rc.sessionNames)
	if err != nil {
		// Set anyway, the browser would drop it and send the user back to
		// AuthKit, which signs them in again: a loop. Say so instead.
		a.log.event("callback_failed", "reason", err.Error(), "user_id", sess.userID, "bytes", len(sealed))
		writeProblem(w, r, http.StatusInternalServerError, "session_too_large", signInFailed, cookies)
		return
	}
	cookies = append(cookies, sessionCookies...)
	a.log.event("signed_in", "user_id", sess.userID)
	if st.MaxAge > 0 {
		if at := token.claims.AuthTime; at == nil || a.now().Unix()-int64(*at) > int64(st.MaxAge)+int64(defaultTokenLeeway/time.Second) {
			// WorkOS did not authenticate the user again: going back to
			// the page would start another step-up, and so on.
			a.log.event("callback_failed", "reason", "reauthentication_not_done", "user_id", sess.userID)
			writeProblem(w, r, http.StatusForbidden, "reauthentication_not_done", "Signing in again did not renew the authentication this page requires.", cookies)
			return
		}
	}
	redirect(w, r, absolute(ext, safeReturnTo(st.ReturnPathname, a.s.returnPathname, a.s.returnOrigins)), cookies)
}

// absolute resolves a return target against the request's origin.
func absolute(ext external, target string) string {
	if strings.HasPrefix(target, "/") {
		return ext.origin + target
	}
	return target
}

// handleSignOut ends the session (E.12): cookies deleted, then WorkOS's
// logout URL for the session id, or the return address when there is none.
// The session is also refused by this process from now on, whatever copy
// of its cookie comes back.
func (a *authKit) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Sign out with GET or POST.", nil)
		return
	}
	ext := externalOf(a, r)
	secure := a.secureCookies(ext)
	rc := readCookies(r.Header["Cookie"], a.s.cookie.name, readAll)
	sessionID, userID, lifetime := a.sessionForSignOut(r, &rc)
	if sessionID != "" {
		now := a.now()
		// As long as a token of the session can live, and a refresh result
		// of it be handed out.
		until := now.Add(lifetime + refreshGrace + defaultTokenLeeway)
		a.revocations.add(sessionID, until, now)
		a.sessions.removeSession(sessionID)
		if a.replicas != nil {
			a.replicas.signOut(sessionID, until)
		}
	}
	cookies := a.s.cookie.sessionDeletions(secure, rc.sessionNames)
	for _, name := range rc.pkceNames {
		cookies = append(cookies, a.s.cookie.pkceDeletion(name, secure))
	}
	if a.s.eagerAuth {
		cookies = append(cookies, eagerDeletion(secure))
	}
	returnTo := a.s.signOutReturnTo
	if strings.HasPrefix(returnTo, "/") {
		returnTo = ext.origin + returnTo
	}
	location := returnTo
	if sessionID != "" {
		location = a.workos.logoutURL(sessionID, returnTo)
	} else if location == "" {
		location = ext.origin + "/"
	}
	a.log.event("signed_out", "user_id", userID, "session_id", sessionID)
	redirect(w, r, location, cookies)
}

// sessionForSignOut reads sid from the verified session, or failing that
// from the cookie's token unverified, as authkit-nextjs does: signing out
// an expired session must still end it at WorkOS. (The seal is
// authenticated, so its token is the session's own.) lifetime is how long
// the session's tokens live, for the revocation.
func (a *authKit) sessionForSignOut(r *http.Request, rc *requestCookies) (sessionID, userID string, lifetime time.Duration) {
	if rc.session == "" {
		return "", "", 0
	}
	sess, err := openSession(a, rc.session, a.now())
	if err != nil {
		return "", "", 0
	}
	claims, err := verifyToken(a.verifier, sess.accessToken)
	if err != nil {
		p, err := parseToken(sess.accessToken)
		if err != nil {
			return "", sess.userID, 0
		}
		claims = &p.claims
	}
	lifetime = maxCacheLifetime
	if claims.ExpiresAt != nil && claims.IssuedAt != nil && *claims.ExpiresAt > *claims.IssuedAt {
		lifetime = time.Duration(*claims.ExpiresAt-*claims.IssuedAt) * time.Second
	}
	return claims.SessionID, sess.userID, lifetime
}

// fromAnotherSite reports whether a browser sent the request from another
// site: its Sec-Fetch-Site, or an Origin that is not this one. A client that
// sends neither (curl, an old browser) is not refused.
func fromAnotherSite(r *http.Request, ext external) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "cross-site" || site == "same-site" {
		return true
	}
	origin := r.Header.Get("Origin")
	return origin != "" && origin != ext.origin
}

// readForm returns the query's values with, for a POSTed urlencoded form,
// the body's on top (as Request.FormValue ranks them), reading at most
// maxFormBytes and never a multipart body. status is non-zero when the body
// is refused.
func readForm(r *http.Request) (url.Values, int) {
	values := r.URL.Query()
	if r.Method != http.MethodPost || r.Body == nil {
		return values, 0
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType == "multipart/form-data" {
		return nil, http.StatusUnsupportedMediaType
	}
	if mediaType != "application/x-www-form-urlencoded" {
		return values, 0
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil {
		return nil, http.StatusBadRequest
	}
	if len(body) > maxFormBytes {
		return nil, http.StatusRequestEntityTooLarge
	}
	posted, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, http.StatusBadRequest
	}
	for k, v := range posted {
		values[k] = v
	}
	return values, 0
}

// handleSwitchOrganization refreshes the session into another organization
// (E.13). A signed-out user signs in straight into it. A request from
// another site is refused: a link or form elsewhere must not move a user
// into another organization.
func (a *authKit) handleSwitchOrganization(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Switch organizations with GET or POST.", nil)
		return
	}
	ext := externalOf(a, r)
	if fromAnotherSite(r, ext) {
		writeProblem(w, r, http.StatusForbidden, "cross_site_request", "Switching organizations must start on this site.", nil)
		return
	}
	form, status := readForm(r)
	if status != 0 {
		writeProblem(w, r, status, "bad_form", "The form could not be read.", nil)
		return
	}
	organizationID := form.Get("organizationId")
	if organizationID == "" {
		writeProblem(w, r, http.StatusBadRequest, "missing_organization_id", "The organizationId parameter is required.", nil)
		return
	}
	returnTo := safeReturnTo(form.Get("returnTo"), "/", a.s.returnOrigins)
	signIn := signInOptions{returnTo: returnTo, screenHint: a.s.screenHint, organizationID: organizationID}
	rc := readCookies(r.Header["Cookie"], a.s.cookie.name, readAll)
	res := authenticate(a, r, &rc, ext)
	if res.principal == nil || res.principal.kind != signedInBySession {
		a.startSignIn(w, r, ext, signIn, res.setCookies)
		return
	}
	// The cache keeps no session, and a session from a refresh lacks the
	// foreign keys of the cookie it replaces: read the cookie afresh.
	previous, err := openSession(a, res.sealed, a.now())
	if err != nil {
		writeProblem(w, r, http.StatusBadGateway, "invalid_session", "Could not switch organizations.", res.setCookies)
		return
	}
	out := refreshOnce(a, previous.refreshToken, organizationID)
	if err := out.err; err != nil {
		we, _ := err.(*workosError)
		a.log.event("organization_switch_failed", "organization_id", organizationID, "reason", err.Error())
		switch {
		case we != nil && we.AuthkitRedirectURL != "":
			redirect(w, r, we.AuthkitRedirectURL, res.setCookies)
		case we != nil && (we.Code == "sso_required" || we.Code == "mfa_enrollment"):
			a.startSignIn(w, r, ext, signIn, res.setCookies)
		case we != nil && we.Transient:
			writeProblem(w, r, http.StatusBadGateway, "workos_unavailable", "Could not switch organizations right now; try again.", res.setCookies)
		default:
			writeProblem(w, r, http.StatusForbidden, "organization_switch_refused", "Could not switch to that organization.", res.setCookies)
		}
		return
	}
	// The cookies of any refresh authenticate did are superseded.
	res.setCookies = nil
	if err := adoptRefresh(a, &rc, a.secureCookies(ext), previous, out.resp, res, false); err != nil {
		writeProblem(w, r, http.StatusBadGateway, "invalid_workos_response", "Could not switch organizations.", nil)
		return
	}
	a.log.event("organization_switched", "organization_id", organizationID, "user_id", previous.userID)
	redirect(w, r, absolute(ext, returnTo), res.setCookies)
}
