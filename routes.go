package authkit

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// The routes a proxy answers itself: callback, sign-in, sign-out and the
// organization switch (SPEC.md "Routes the plugin answers itself").

const signInFailed = "Couldn't sign in. If you are not sure what happened, please contact your organization admin."

// safeReturnPath keeps a return path only when it stays on this site: it
// must be a single-slash absolute path with no scheme, host, backslash
// trick or control character; anything else yields fallback.
func safeReturnPath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") || len(p) > 2048 {
		return fallback
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return fallback
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\' {
			return fallback
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	// Encoded slashes and backslashes decode in some servers' routers; a
	// path that starts with one after decoding is refused too.
	if decoded := u.Path; len(decoded) > 1 && (decoded[1] == '/' || decoded[1] == '\\') {
		return fallback
	}
	return p
}

// startSignIn redirects to AuthKit with a fresh PKCE state, sealed for 600 s
// into the state parameter and into this flow's own verifier cookie (E.4).
func (a *authKit) startSignIn(w http.ResponseWriter, r *http.Request, ext external, returnPath, screenHint, organizationID string, cookies []string) {
	secure := a.secureCookies(ext)
	st, err := newAuthState(returnPath)
	var sealed string
	if err == nil {
		sealed, err = a.s.keyring.Seal(jsonOf(st), authStateTTL, a.now())
	}
	if err != nil {
		a.log.event("sign_in_failed", "reason", err.Error())
		writeProblem(w, r, http.StatusInternalServerError, "internal_error", "Could not start signing in.", cookies)
		return
	}
	name := pkceCookieName(sealed)
	cookies = append(cookies, a.s.cookie.pkceCookie(name, sealed, secure))
	if pending := readCookies(r, a.s.cookie.name).pkceNames; len(pending) >= maxPKCECookies {
		// Abandoned sign-ins pile up verifier cookies; clear them before
		// they make the Cookie header too large (431).
		for _, old := range pending {
			if old != name {
				cookies = append(cookies, a.s.cookie.pkceDeletion(old, secure))
			}
		}
	}
	location := a.workos.authorizeURL(workosAuthorizeParams{
		RedirectURI:    a.redirectURI(ext),
		State:          sealed,
		CodeChallenge:  pkceChallenge(st.CodeVerifier),
		ScreenHint:     screenHint,
		OrganizationID: organizationID,
	})
	redirect(w, r, location, cookies)
}

// handleSignIn always starts a new sign-in, signed in or not.
func (a *authKit) handleSignIn(w http.ResponseWriter, r *http.Request) {
	returnTo := safeReturnPath(r.URL.Query().Get("returnTo"), a.s.returnPathname)
	screenHint := a.s.screenHint
	returnPath := returnTo
	if i := strings.IndexAny(returnPath, "?#"); i >= 0 {
		returnPath = returnPath[:i]
	}
	if a.s.signUpPaths.matchAny(returnPath) {
		screenHint = "sign-up"
	}
	a.startSignIn(w, r, externalOf(a, r), returnTo, screenHint, "", nil)
}

// handleCallback completes a sign-in (E.11): the state must be this flow's
// cookie, the code is exchanged with its verifier, and the browser lands on
// the state's return path with a session cookie.
func (a *authKit) handleCallback(w http.ResponseWriter, r *http.Request) {
	ext := externalOf(a, r)
	secure := a.secureCookies(ext)
	q := r.URL.Query()
	code, state := q.Get("code"), q.Get("state")
	var cookies []string
	if state != "" {
		cookies = append(cookies, a.s.cookie.pkceDeletion(pkceCookieName(state), secure))
	}
	fail := func(status int, reason string) {
		a.log.event("callback_failed", "reason", reason)
		writeProblem(w, r, status, reason, signInFailed, cookies)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		fail(http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusBadRequest, "authorization_error")
		return
	}
	if code == "" || state == "" {
		fail(http.StatusBadRequest, "missing_auth_params")
		return
	}
	verifierCookie := pkceCookieValue(r, pkceCookieName(state))
	if verifierCookie == "" {
		verifierCookie = pkceCookieValue(r, pkceCookiePrefix) // authkit-nextjs's legacy name
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
	sess, sealed, err := a.sealResponse(nil, resp)
	if err != nil {
		fail(http.StatusBadGateway, "invalid_workos_response")
		return
	}
	rc := readCookies(r, a.s.cookie.name)
	cookies = append(cookies, a.s.cookie.sessionCookies(sealed, secure, rc.sessionNames)...)
	a.log.event("signed_in", "user_id", sess.userID)
	redirect(w, r, ext.origin+safeReturnPath(st.ReturnPathname, a.s.returnPathname), cookies)
}

// sealResponse builds and seals the session of an authenticate response,
// keeping previous's foreign keys.
func (a *authKit) sealResponse(previous *session, resp *workosAuthResponse) (*session, string, error) {
	user, err := workosSessionUser(resp.UserJSON)
	if err != nil {
		return nil, "", err
	}
	var impersonator []byte
	if resp.Impersonator != nil {
		impersonator = jsonOf(resp.Impersonator)
	}
	sess, err := newSession(previous, resp.AccessToken, resp.RefreshToken, user, impersonator, resp.AuthenticationMethod)
	if err != nil {
		return nil, "", err
	}
	sealed, err := a.s.keyring.Seal(sess.encode(), 0, a.now())
	return sess, sealed, err
}

// handleSignOut ends the session (E.12): cookies deleted, then WorkOS's
// logout URL for the session id, or the return address when there is none.
func (a *authKit) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Sign out with GET or POST.", nil)
		return
	}
	ext := externalOf(a, r)
	secure := a.secureCookies(ext)
	rc := readCookies(r, a.s.cookie.name)
	sessionID, userID := a.sessionIDForSignOut(r, &rc)
	a.sessions.remove(rc.session)
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

// sessionIDForSignOut reads sid from the verified session, or failing that
// from the cookie's token unverified, as authkit-nextjs does: signing out
// an expired session must still end it at WorkOS.
func (a *authKit) sessionIDForSignOut(r *http.Request, rc *requestCookies) (sessionID, userID string) {
	if rc.session == "" {
		return "", ""
	}
	sess, err := openSession(a, rc.session, a.now())
	if err != nil {
		return "", ""
	}
	if claims, err := verifyToken(r.Context(), a.verifier, sess.accessToken); err == nil {
		return claims.SessionID, sess.userID
	}
	if p, err := parseToken(sess.accessToken); err == nil {
		return p.claims.SessionID, sess.userID
	}
	return "", sess.userID
}

// handleSwitchOrganization refreshes the session into another organization
// (E.13). A signed-out user signs in straight into it.
func (a *authKit) handleSwitchOrganization(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeProblem(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Switch organizations with GET or POST.", nil)
		return
	}
	organizationID := r.FormValue("organizationId")
	if organizationID == "" {
		writeProblem(w, r, http.StatusBadRequest, "missing_organization_id", "The organizationId parameter is required.", nil)
		return
	}
	returnTo := safeReturnPath(r.FormValue("returnTo"), "/")
	rc := readCookies(r, a.s.cookie.name)
	ext := externalOf(a, r)
	res := authenticate(a, r, &rc, ext)
	if !res.signedIn || res.bearer {
		a.startSignIn(w, r, ext, returnTo, a.s.screenHint, organizationID, res.setCookies)
		return
	}
	key := refreshKey(a.s.apiBaseURL, a.s.clientID, res.session.refreshToken, organizationID)
	resp, _, err := sharedRefreshes.do(r.Context(), key, a.now, func(ctx context.Context) (*workosAuthResponse, error) {
		return a.workos.authenticateWithRefreshToken(ctx, res.session.refreshToken, organizationID)
	})
	if err != nil {
		we, _ := err.(*workosError)
		a.log.event("organization_switch_failed", "organization_id", organizationID, "reason", err.Error())
		switch {
		case we != nil && we.AuthkitRedirectURL != "":
			redirect(w, r, we.AuthkitRedirectURL, res.setCookies)
		case we != nil && (we.Code == "sso_required" || we.Code == "mfa_enrollment"):
			a.startSignIn(w, r, ext, returnTo, a.s.screenHint, organizationID, res.setCookies)
		case we != nil && we.Transient:
			writeProblem(w, r, http.StatusBadGateway, "workos_unavailable", "Could not switch organizations right now; try again.", res.setCookies)
		default:
			writeProblem(w, r, http.StatusForbidden, "organization_switch_refused", "Could not switch to that organization.", res.setCookies)
		}
		return
	}
	// The cookies of any refresh authenticate did are superseded. The cache
	// keeps sessions without their foreign keys, so read those afresh.
	res.setCookies = nil
	previous := res.session
	if full, err := openSession(a, res.sealed, a.now()); err == nil {
		previous = full
	}
	if err := a.adoptRefresh(&rc, a.secureCookies(ext), previous, resp, res, false); err != nil {
		writeProblem(w, r, http.StatusBadGateway, "invalid_workos_response", "Could not switch organizations.", nil)
		return
	}
	a.log.event("organization_switched", "organization_id", organizationID, "user_id", res.session.userID)
	redirect(w, r, ext.origin+returnTo, res.setCookies)
}
