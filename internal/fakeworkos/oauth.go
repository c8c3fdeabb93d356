package fakeworkos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// authCode is a one-time authorization code and what the token exchange
// needs from the sign-in. WorkOS's authenticate call carries no
// redirect_uri, and client_id is checked for every call, so neither is
// stored.
type authCode struct {
	userID    string
	orgID     string
	challenge string
	method    string
	expires   time.Time
	used      bool
	// authTime is when the user signed in: the code's issue time, which
	// becomes the session's auth_time.
	authTime time.Time
}

// session is one WorkOS session: its id is the sid claim, stable across
// refreshes; only its latest refresh token is valid.
type session struct {
	id           string
	userID       string
	orgID        string
	refreshToken string
	method       string
	impersonator *Impersonator
	revoked      bool
	// authTime is the auth_time claim: when the user authenticated. A
	// refresh keeps it; only a new sign-in starts a new session.
	authTime time.Time
}

// authenticateBody is the JSON body of POST /user_management/authenticate.
type authenticateBody struct {
	GrantType      string `json:"grant_type"`
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
	Code           string `json:"code"`
	CodeVerifier   string `json:"code_verifier"`
	RefreshToken   string `json:"refresh_token"`
	OrganizationID string `json:"organization_id"`
}

// authResponse is the success body of authenticate (C.3).
type authResponse struct {
	User                 apiUser          `json:"user"`
	OrganizationID       string           `json:"organization_id,omitempty"`
	AccessToken          string           `json:"access_token"`
	RefreshToken         string           `json:"refresh_token"`
	AuthenticationMethod string           `json:"authentication_method"`
	Impersonator         *apiImpersonator `json:"impersonator,omitempty"`
}

type apiImpersonator struct {
	Email  string  `json:"email"`
	Reason *string `json:"reason"`
}

// authorize handles GET /user_management/authorize: it validates the
// request, then either signs the login_hint user in at once or shows the
// sign-in page.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeProblemPage(w, http.StatusMethodNotAllowed, "The authorize endpoint only answers GET.")
		return
	}
	req, problem := s.parseAuthorize(r.URL.Query())
	if problem != "" {
		writeProblemPage(w, http.StatusBadRequest, problem)
		return
	}
	req.RawQuery = r.URL.RawQuery
	s.mu.Lock()
	s.authorizeLog = append(s.authorizeLog, req)
	s.mu.Unlock()
	if req.LoginHint == "" {
		s.renderSignIn(w, req, "")
		return
	}
	// The fake keeps no AuthKit-side session, so every sign-in is a fresh
	// authentication. max_age asks for one the user takes part in, so a
	// hint alone does not sign in: the page is shown.
	if _, ok := req.Query["max_age"]; ok {
		s.renderSignIn(w, req, fmt.Sprintf("max_age=%s asks for a fresh sign-in; pick %s below.", req.MaxAge, req.LoginHint))
		return
	}
	s.mu.Lock()
	hinted, found := s.userLocked(req.LoginHint)
	s.mu.Unlock()
	if !found {
		s.renderSignIn(w, req, fmt.Sprintf("login_hint %q matches no test user; pick one below.", req.LoginHint))
		return
	}
	s.completeSignIn(w, r, req, hinted, "", http.StatusFound)
}

// parseAuthorize validates an authorize query. The problem string, when
// not empty, tells a developer what to fix.
func (s *Server) parseAuthorize(q url.Values) (AuthorizeRequest, string) {
	req := AuthorizeRequest{
		ClientID:       q.Get("client_id"),
		RedirectURI:    q.Get("redirect_uri"),
		State:          q.Get("state"),
		ScreenHint:     q.Get("screen_hint"),
		OrganizationID: q.Get("organization_id"),
		LoginHint:      q.Get("login_hint"),
		CodeChallenge:  q.Get("code_challenge"),
		Prompt:         q.Get("prompt"),
		MaxAge:         q.Get("max_age"),
		Query:          q,
	}
	_, hasMaxAge := q["max_age"]
	s.mu.Lock()
	orgKnown := req.OrganizationID == "" || s.orgKnownLocked(req.OrganizationID)
	s.mu.Unlock()
	switch {
	case req.ClientID == "":
		return req, "client_id is missing."
	case req.ClientID != s.clientID:
		return req, fmt.Sprintf("client_id %q is not this application's client id.", req.ClientID)
	case q.Get("response_type") != "code":
		return req, `response_type must be "code".`
	case req.RedirectURI == "":
		return req, "redirect_uri is missing."
	case !s.redirectAllowed(req.RedirectURI):
		return req, fmt.Sprintf("redirect_uri %q is not an allowed absolute http(s) URL.", req.RedirectURI)
	case q.Get("provider") != "authkit":
		return req, `provider must be "authkit".`
	case req.CodeChallenge == "":
		return req, "code_challenge is missing (PKCE is required)."
	case q.Get("code_challenge_method") != "S256":
		return req, `code_challenge_method must be "S256".`
	case !validChallenge(req.CodeChallenge):
		return req, "code_challenge must be the unpadded base64url SHA-256 digest of the verifier (43 characters)."
	case req.ScreenHint != "" && req.ScreenHint != "sign-in" && req.ScreenHint != "sign-up":
		return req, `screen_hint must be "sign-in" or "sign-up".`
	case !orgKnown:
		return req, fmt.Sprintf("organization_id %q is not a known organization.", req.OrganizationID)
	case hasMaxAge && !validMaxAge(req.MaxAge):
		return req, fmt.Sprintf("max_age %q must be a non-negative whole number of seconds.", req.MaxAge)
	}
	return req, ""
}

func (s *Server) redirectAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if len(s.redirectURIs) == 0 {
		return true
	}
	for i := 0; i < len(s.redirectURIs); i++ {
		if s.redirectURIs[i] == raw {
			return true
		}
	}
	return false
}

// validMaxAge accepts what OIDC allows for max_age: decimal digits only
// (no sign, no fraction), small enough to be a number of seconds.
func validMaxAge(raw string) bool {
	if raw == "" {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(raw, 10, 64)
	return err == nil
}

func validChallenge(challenge string) bool {
	digest, err := base64.RawURLEncoding.Strict().DecodeString(challenge)
	return err == nil && len(digest) == 32
}

// signIn handles the sign-in page's form: it re-validates the original
// authorize query (carried in a hidden field, so the page needs no server
// state) and issues a code for the chosen user and organization.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeProblemPage(w, http.StatusMethodNotAllowed, "The sign-in form must be POSTed.")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeProblemPage(w, http.StatusBadRequest, "The sign-in form is malformed: "+err.Error())
		return
	}
	q, err := url.ParseQuery(r.PostForm.Get("authorize_query"))
	if err != nil {
		writeProblemPage(w, http.StatusBadRequest, "authorize_query is malformed: "+err.Error())
		return
	}
	req, problem := s.parseAuthorize(q)
	if problem != "" {
		writeProblemPage(w, http.StatusBadRequest, problem)
		return
	}
	s.mu.Lock()
	user, found := s.userLocked(r.PostForm.Get("user_id"))
	s.mu.Unlock()
	if !found {
		writeProblemPage(w, http.StatusBadRequest, fmt.Sprintf("user_id %q is not a test user.", r.PostForm.Get("user_id")))
		return
	}
	s.completeSignIn(w, r, req, user, r.PostForm.Get("organization_id"), http.StatusSeeOther)
}

// completeSignIn issues a code for user in orgID and redirects back to
// the application. An empty orgID means the requested organization, or
// else the user's first one.
func (s *Server) completeSignIn(w http.ResponseWriter, r *http.Request, req AuthorizeRequest, user User, orgID string, status int) {
	if orgID == "" {
		orgID = req.OrganizationID
	}
	if orgID == "" {
		orgID = user.defaultOrg()
	}
	if req.OrganizationID != "" && orgID != req.OrganizationID {
		writeProblemPage(w, http.StatusBadRequest, fmt.Sprintf("This sign-in is for organization %q.", req.OrganizationID))
		return
	}
	if _, member := user.membership(orgID); orgID != "" && !member {
		writeProblemPage(w, http.StatusBadRequest, fmt.Sprintf("%s is not a member of organization %q.", user.Email, orgID))
		return
	}
	code := s.issueCode(req, user.ID, orgID)
	target, _ := url.Parse(req.RedirectURI) // validated by parseAuthorize
	q := target.Query()
	q.Set("code", code)
	if _, ok := req.Query["state"]; ok {
		q.Set("state", req.State)
	}
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), status)
}

func (s *Server) issueCode(req AuthorizeRequest, userID, orgID string) string {
	code := randomID("")
	s.mu.Lock()
	defer s.mu.Unlock()
	method := "Password"
	if s.policies[orgID].Error == "sso_required" {
		method = "SSO"
	}
	now := s.now()
	s.codes[code] = &authCode{
		userID:    userID,
		orgID:     orgID,
		challenge: req.CodeChallenge,
		method:    method,
		expires:   now.Add(codeLifetime),
		authTime:  now,
	}
	s.lastSignIn[userID] = now
	return code
}

// authenticate handles POST /user_management/authenticate.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, raw []byte, readErr error) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Code: "method_not_allowed", Message: "Use POST."})
		return
	}
	var b authenticateBody
	bodyErr := readErr
	if bodyErr == nil {
		bodyErr = json.Unmarshal(raw, &b)
	}
	s.mu.Lock()
	s.authLog = append(s.authLog, AuthenticateRequest{
		GrantType:      b.GrantType,
		OrganizationID: b.OrganizationID,
		Header:         r.Header.Clone(),
		Body:           string(raw),
	})
	s.mu.Unlock()
	status, resp := s.authenticateResult(r, b, bodyErr)
	writeJSON(w, status, resp)
}

func (s *Server) authenticateResult(r *http.Request, b authenticateBody, bodyErr error) (int, any) {
	if !isJSON(r.Header.Get("Content-Type")) {
		return invalid(http.StatusBadRequest, "invalid_request", "Content-Type must be application/json.")
	}
	if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		return invalid(http.StatusUnauthorized, "invalid_client", `The Authorization header must be "Bearer <API key>".`)
	}
	if bodyErr != nil {
		return invalid(http.StatusBadRequest, "invalid_request", "The body is not valid JSON: "+bodyErr.Error())
	}
	if b.ClientID != s.clientID {
		return invalid(http.StatusUnauthorized, "invalid_client", fmt.Sprintf("client_id %q is not this application's client id.", b.ClientID))
	}
	if b.ClientSecret != s.apiKey {
		return invalid(http.StatusUnauthorized, "invalid_client", "client_secret must be the API key.")
	}
	switch b.GrantType {
	case GrantAuthorizationCode:
		return s.exchangeCode(b)
	case GrantRefreshToken:
		return s.refresh(b)
	}
	return invalid(http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported.", b.GrantType))
}

func invalid(status int, code, description string) (int, any) {
	return status, oauthError{Error: code, ErrorDescription: description}
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}

// exchangeCode redeems an authorization code. The code is spent by any
// attempt that names it, right or wrong, so a leaked code cannot be
// brute-forced against verifiers.
func (s *Server) exchangeCode(b authenticateBody) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[b.Code]
	switch {
	case c == nil:
		return invalid(http.StatusBadRequest, "invalid_grant", "The code is invalid.")
	case c.used:
		return invalid(http.StatusBadRequest, "invalid_grant", "The code has already been used.")
	case !s.now().Before(c.expires):
		return invalid(http.StatusBadRequest, "invalid_grant", "The code has expired.")
	}
	c.used = true
	if b.CodeVerifier == "" {
		return invalid(http.StatusBadRequest, "invalid_grant", "code_verifier is required.")
	}
	if pkceChallenge(b.CodeVerifier) != c.challenge {
		return invalid(http.StatusBadRequest, "invalid_grant", "The code_verifier does not match the code_challenge.")
	}
	sess := s.newSessionLocked(c.userID, c.orgID, c.method, nil, c.authTime)
	return http.StatusOK, s.authResponseLocked(sess)
}

// refresh redeems a refresh token. Tokens rotate: success invalidates the
// presented token, and the check-and-rotate happens under one lock so
// that of several concurrent uses exactly one wins, unless the replay
// grace answers the others (grace.go). The rotation is recorded under
// that same lock, before any response is written, so a replay racing the
// first exchange already finds it. A refused organization switch leaves
// the token valid.
func (s *Server) refresh(b authenticateBody) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.RefreshToken == "" {
		return invalid(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, revoked or already used.")
	}
	sess := s.sessions[s.refreshTokens[b.RefreshToken]]
	if sess == nil {
		return s.replayLocked(b)
	}
	switched := b.OrganizationID != "" && b.OrganizationID != sess.orgID
	if switched {
		if status, refusal := s.switchRefusalLocked(sess, b.OrganizationID); status != 0 {
			return status, refusal
		}
		sess.orgID = b.OrganizationID
	}
	delete(s.refreshTokens, sess.refreshToken)
	sess.refreshToken = randomToken()
	s.refreshTokens[sess.refreshToken] = sess.id
	resp := s.authResponseLocked(sess)
	s.rotations++
	s.recordSpentLocked(b.RefreshToken, sess.id, b.OrganizationID, switched, resp)
	return http.StatusOK, resp
}

// switchRefusalLocked returns a non-zero status and an error body when the
// session may not switch into orgID.
func (s *Server) switchRefusalLocked(sess *session, orgID string) (int, any) {
	user, _ := s.userLocked(sess.userID)
	if _, member := user.membership(orgID); !member {
		return invalid(http.StatusBadRequest, "invalid_grant",
			fmt.Sprintf("The user is not a member of organization %q.", orgID))
	}
	p, ok := s.policies[orgID]
	if !ok {
		return 0, nil
	}
	status := p.Status
	if status == 0 {
		status = http.StatusForbidden
	}
	return status, oauthError{
		Error:              p.Error,
		ErrorDescription:   policyDescription(p.Error),
		Email:              user.Email,
		AuthKitRedirectURL: p.RedirectURL,
	}
}

func policyDescription(code string) string {
	switch code {
	case "sso_required":
		return "The organization requires the user to authenticate with SSO."
	case "mfa_enrollment":
		return "The user must enroll in MFA to finish authenticating."
	}
	return "The organization's policy refused the request: " + code + "."
}

func (s *Server) newSessionLocked(userID, orgID, method string, imp *Impersonator, authTime time.Time) *session {
	sess := &session{
		id:           randomID("session_"),
		userID:       userID,
		orgID:        orgID,
		refreshToken: randomToken(),
		method:       method,
		impersonator: imp,
		authTime:     authTime,
	}
	s.sessions[sess.id] = sess
	s.refreshTokens[sess.refreshToken] = sess.id
	return sess
}

func (s *Server) authResponseLocked(sess *session) authResponse {
	user, _ := s.userLocked(sess.userID)
	resp := authResponse{
		User:                 toAPIUser(user, s.lastSignIn[user.ID]),
		OrganizationID:       sess.orgID,
		AccessToken:          s.current.sign(s.claimsLocked(sess, s.ttl)),
		RefreshToken:         sess.refreshToken,
		AuthenticationMethod: sess.method,
	}
	if sess.impersonator != nil {
		resp.Impersonator = &apiImpersonator{
			Email:  sess.impersonator.Email,
			Reason: nullable(sess.impersonator.Reason),
		}
	}
	return resp
}

// serveJWKS handles GET /sso/jwks/{clientId}.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Code: "method_not_allowed", Message: "Use GET."})
		return
	}
	if strings.TrimPrefix(r.URL.Path, pathJWKSPrefix) != s.clientID {
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "No JWKS for this client id."})
		return
	}
	s.mu.Lock()
	set := s.jwksLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// logout handles GET /user_management/sessions/logout: it revokes the
// session, then sends the browser to return_to or shows a short page.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sid, returnTo := q.Get("session_id"), q.Get("return_to")
	s.mu.Lock()
	s.logoutLog = append(s.logoutLog, LogoutRequest{SessionID: sid, ReturnTo: returnTo})
	s.mu.Unlock()
	if sid == "" {
		writeProblemPage(w, http.StatusBadRequest, "session_id is missing.")
		return
	}
	if returnTo != "" && !isAbsoluteHTTP(returnTo) {
		writeProblemPage(w, http.StatusBadRequest, fmt.Sprintf("return_to %q must be an absolute http(s) URL.", returnTo))
		return
	}
	s.RevokeSession(sid)
	if returnTo != "" {
		http.Redirect(w, r, returnTo, http.StatusFound)
		return
	}
	writePage(w, http.StatusOK, "Signed out", "<p>You have been signed out.</p>")
}

func isAbsoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// RevokeSession ends a session: its refresh token stops working. Access
// tokens already issued stay valid until they expire, as with WorkOS.
func (s *Server) RevokeSession(sessionID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sessionID]
	if sess == nil {
		return
	}
	sess.revoked = true
	delete(s.refreshTokens, sess.refreshToken)
}

// SessionRevoked reports whether sessionID was revoked.
func (s *Server) SessionRevoked(sessionID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[sessionID]
	return sess != nil && sess.revoked
}

// SessionParams describes a session created directly by a test.
type SessionParams struct {
	// UserID is a user id or email.
	UserID string
	// OrganizationID is the session's organization; empty means none.
	OrganizationID string
	Impersonator   *Impersonator
	// AuthenticationMethod defaults to "Password", or "Impersonation"
	// with an Impersonator.
	AuthenticationMethod string
	// AuthenticatedAt is the session's auth_time (zero: now), so a test
	// can mint a session whose user signed in long ago.
	AuthenticatedAt time.Time
}

// IssuedSession is what a successful sign-in would have returned.
type IssuedSession struct {
	SessionID            string
	OrganizationID       string
	AccessToken          string
	RefreshToken         string
	AuthenticationMethod string
	// User is the API (snake_case) user object; Response the whole
	// authenticate response body.
	User     json.RawMessage
	Response json.RawMessage
}

// IssueSession signs a user in without the browser, so tests can build a
// session cookie directly.
func (s *Server) IssueSession(p SessionParams) (IssuedSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user, found := s.userLocked(p.UserID)
	if !found {
		return IssuedSession{}, fmt.Errorf("fakeworkos: unknown user %q", p.UserID)
	}
	if _, member := user.membership(p.OrganizationID); p.OrganizationID != "" && !member {
		return IssuedSession{}, fmt.Errorf("fakeworkos: %s is not a member of %q", user.Email, p.OrganizationID)
	}
	method := p.AuthenticationMethod
	if method == "" && p.Impersonator != nil {
		method = "Impersonation"
	}
	if method == "" {
		method = "Password"
	}
	authTime := p.AuthenticatedAt
	if authTime.IsZero() {
		authTime = s.now()
	}
	if authTime.After(s.lastSignIn[user.ID]) {
		s.lastSignIn[user.ID] = authTime
	}
	sess := s.newSessionLocked(user.ID, p.OrganizationID, method, p.Impersonator, authTime)
	resp := s.authResponseLocked(sess)
	return IssuedSession{
		SessionID:            sess.id,
		OrganizationID:       sess.orgID,
		AccessToken:          resp.AccessToken,
		RefreshToken:         resp.RefreshToken,
		AuthenticationMethod: method,
		User:                 mustJSON(resp.User),
		Response:             mustJSON(resp),
	}, nil
}

// IssueSessionForUser is IssueSession for the common case: it returns the
// tokens and the API-form user of a new session of userID in orgID
// (empty for none).
func (s *Server) IssueSessionForUser(userID, orgID string) (accessToken, refreshToken string, user json.RawMessage, err error) {
	issued, err := s.IssueSession(SessionParams{UserID: userID, OrganizationID: orgID})
	if err != nil {
		return "", "", nil, err
	}
	return issued.AccessToken, issued.RefreshToken, issued.User, nil
}
