package authkit

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The per-request session algorithm (authkit-nextjs's updateSession,
// WORKOS-PROTOCOL.md E.9) for the requests the fast path does not decide:
// unseal, verify, refresh when expired or expiring, and decide which
// cookies change. Everything a cache miss runs is a plain function: under
// the interpreter a method call builds a function wrapper and costs about
// three times a plain call (see fastpath.go).

// siblingRotationWindow is how long an invalid_grant for a refresh token
// only signs the request out and keeps the cookie. Another Traefik replica
// may have rotated the token a moment ago, and its answer, on its way to
// the browser, carries the new cookie: deleting the old one here could
// land after it and sign the user out. If the same token comes back after
// the window, that answer never replaced it, and the cookie is deleted.
// (SPEC "Several Traefik replicas": correct with and without WorkOS's
// replay grace.) The window covers the longest a sibling's refresh takes.
const siblingRotationWindow = workosAPITimeout + 5*time.Second

// authResult is what authenticate learned about a request.
type authResult struct {
	principal *principal // nil: signed out
	// sealed is the session cookie the upstream receives as
	// x-workos-session: the request's, or the refreshed one.
	sealed string
	// accessToken is a cookie session's access token, for
	// forwardAccessToken and the eager cookie.
	accessToken string
	session     *session // the unsealed session, when this request unsealed it
	refreshed   bool
	setCookies  []string
	badBearer   bool // an Authorization credential was present and refused
	// unavailable: the credential could not be checked now (an API key
	// while WorkOS fails); the answer is 503 with Retry-After.
	unavailable bool
	retryAfter  time.Duration
}

// noCookies stands for the cookies of a request that carries none.
// signedOut is the shared result of a request without cookie or
// Authorization header. Neither is ever written to.
var (
	noCookies requestCookies
	signedOut authResult
)

// serveFull decides a request the fast path of ServeHTTP did not: it reads
// the plugin's cookies, unseals, verifies and refreshes as needed, answers
// the plugin's routes and stops what may not pass. Internal headers are
// already stripped.
func serveFull(a *authKit, w http.ResponseWriter, r *http.Request) {
	if route := a.routes[r.URL.Path]; route != nil {
		route(w, r)
		return
	}
	ext := externalOf(a, r)
	rc := &noCookies
	res := &signedOut
	if len(r.Header["Cookie"]) != 0 || len(r.Header["Authorization"]) != 0 {
		parsed := readCookies(r.Header["Cookie"], a.s.cookie.name, a.requestCookieKinds)
		rc = &parsed
		res = authenticate(a, r, rc, ext)
	}
	public := isPublic(a, r.URL.Path)
	if res.unavailable && !public {
		unavailable(w, r, res)
		return
	}
	if res.principal == nil && a.gated && !public {
		unauthenticated(a, w, r, ext, res)
		return
	}
	if res.principal != nil && !public {
		if a.hasRequirements {
			if unmet := a.s.requirements.unmet(principalParts(res.principal)); unmet != "" {
				forbidden(a, w, r, res, unmet)
				return
			}
		}
		if a.s.maxAuthAge > 0 && authTooOld(a, res.principal, a.now()) {
			reauthenticate(a, w, r, ext, res)
			return
		}
	}
	setUpstreamHeaders(a, r, res)
	setResponseHeaders(a, w, r, rc, res)
	a.next.ServeHTTP(w, r)
}

// authenticate runs authkit-nextjs's per-request algorithm (E.9).
func authenticate(a *authKit, r *http.Request, rc *requestCookies, ext external) *authResult {
	res := &authResult{}
	if rc.session == "" {
		token := ""
		if a.s.allowBearerTokens || a.s.allowAPIKeys {
			token = bearerToken(r)
		}
		switch {
		case token == "":
		case isJWT(token) && a.s.allowBearerTokens:
			authenticateBearer(a, token, res)
		case !isJWT(token) && a.s.allowAPIKeys:
			authenticateAPIKey(a, token, res)
		default:
			res.badBearer = true
		}
		return res
	}
	now := a.now()
	if e := lookupCached(a.sessions, a.cacheNS, rc.session, sinceEpoch(a, now)); e != nil {
		if e.principal != nil {
			// Three statements: under the interpreter, a call on the right
			// of a multiple assignment clobbers the values beside it.
			res.principal = e.principal
			res.sealed = rc.session
			res.accessToken = principalAccessToken(e.principal)
		} else if e.spent {
			res.setCookies = terminalDeletions(a, rc, a.secureCookies(ext))
		}
		return res
	}
	sess, err := openSession(a, rc.session, now)
	if err != nil {
		// authkit-nextjs ends here with a terminal error: the cookie goes.
		a.log.debug("session cookie unusable", "reason", err.Error())
		res.setCookies = terminalDeletions(a, rc, a.secureCookies(ext))
		return res
	}
	res.session = sess
	claims, verifyErr := verifyToken(a.verifier, sess.accessToken)
	if verifyErr == nil && !expiring(a, claims, now) {
		if !signIn(a, res, sess, claims, rc.session, now) {
			res.setCookies = terminalDeletions(a, rc, a.secureCookies(ext))
		}
		return res
	}
	if verifyErr != nil {
		a.log.debug("access token not accepted, refreshing", "reason", verifyErr.Error())
	}
	if iss := tokenIssuer(claims, sess.accessToken); !issuerAccepted(a, iss) {
		// A refresh would bring a token of the same issuer: refusing it
		// here keeps a wrong issuer from costing a refresh per request.
		rejectIssuer(a, rc.session, iss, sess.userID, now.Add(time.Minute), now)
		return res
	}
	refreshSession(a, r, rc, ext, sess, claims, res)
	return res
}

// issuerAccepted reports whether the instance accepts a token's iss: any,
// when issuer is not configured (as authkit-nextjs without WORKOS_ISSUER).
func issuerAccepted(a *authKit, iss string) bool {
	return len(a.s.issuers) == 0 || containsString(a.s.issuers, iss)
}

// tokenIssuer is a token's iss, from its verified claims or, for a token
// that did not verify (expired), read from the sealed session unverified.
func tokenIssuer(claims *tokenClaims, token string) string {
	if claims != nil {
		return claims.Issuer
	}
	if p, err := parseToken(token); err == nil {
		return p.claims.Issuer
	}
	return ""
}

// rejectIssuer signs a request out whose token another issuer signed,
// keeps its cookie (a configuration mistake must not destroy sessions)
// and caches the refusal, so repeating the cookie costs neither a
// verification nor a log line until then.
func rejectIssuer(a *authKit, credential, iss, userID string, until, now time.Time) {
	a.log.event("token_rejected", "reason", "issuer not accepted", "iss", iss, "user_id", userID)
	storeCached(a.sessions, a.cacheNS, credential, nil, until, now)
}

// authTooOld reports whether a principal's authentication is older than
// maxAuthAgeSeconds, or of unknown age (checkRecentAuth fails closed).
func authTooOld(a *authKit, p *principal, now time.Time) bool {
	return p.authTime == 0 || now.Unix()-p.authTime > int64(a.s.maxAuthAge/time.Second)
}

// errSessionSignedOut reports a refreshed session that was signed out
// through this process meanwhile.
var errSessionSignedOut = errors.New("session: signed out")

// openSession unseals and decodes a session cookie value.
func openSession(a *authKit, sealed string, now time.Time) (*session, error) {
	plain, err := unseal(a.s.keyring, sealed, now)
	if err != nil {
		return nil, err
	}
	return decodeSession(plain)
}

// signIn records a verified session and caches it until its refresh
// point, unless its token names no user or another user than the session
// (E.10): then the request is signed out, the cookie kept, and the refusal
// cached, so repeating the cookie costs no verification and no log line.
// It reports false for a session signed out through this process, whose
// cookie the caller deletes.
func signIn(a *authKit, res *authResult, sess *session, claims *tokenClaims, sealed string, now time.Time) bool {
	expires := now.Add(maxCacheLifetime)
	if exp, ok := tokenExpiry(claims); ok {
		expires = exp.Add(-refreshBuffer(claims, a.s.refreshBuffer))
	}
	if claims.Subject == "" || (sess.userID != "" && sess.userID != claims.Subject) {
		a.log.event("session_rejected", "reason", "the token has no subject or another user's", "user_id", sess.userID)
		storeCached(a.sessions, a.cacheNS, sealed, nil, expires, now)
		return true
	}
	if !issuerAccepted(a, claims.Issuer) {
		rejectIssuer(a, sealed, claims.Issuer, sess.userID, expires, now)
		return true
	}
	if isRevoked(a.revocations, claims.SessionID, now) {
		return false
	}
	p := sessionPrincipal(claims, sess, a.keepAccessToken)
	res.principal, res.sealed, res.accessToken = p, sealed, sess.accessToken
	storeCached(a.sessions, a.cacheNS, sealed, p, expires, now)
	// A sign-out that ran between the check above and the store dropped
	// the session's entries before this one existed: check again.
	if isRevoked(a.revocations, claims.SessionID, now) {
		a.sessions.removeSession(claims.SessionID)
	}
	if a.s.debug {
		reportCache(a, now)
	}
	return true
}

// expiring reports whether the token is inside its refresh buffer (D.3).
func expiring(a *authKit, c *tokenClaims, now time.Time) bool {
	exp, ok := tokenExpiry(c)
	if !ok {
		return false
	}
	buffer := refreshBuffer(c, a.s.refreshBuffer)
	return buffer > 0 && exp.Before(now.Add(buffer))
}

// terminalDeletions are the Set-Cookie values that end a session in the
// browser: every form of the session cookie the request had, and the
// eager cookie.
func terminalDeletions(a *authKit, rc *requestCookies, secure bool) []string {
	out := a.s.cookie.sessionDeletions(secure, rc.sessionNames)
	if a.s.eagerAuth {
		out = append(out, eagerDeletion(secure))
	}
	return out
}

// refreshSession trades the session's refresh token for new tokens, once
// for all concurrent requests carrying it, and applies E.9 step 5 on
// failure.
func refreshSession(a *authKit, r *http.Request, rc *requestCookies, ext external, sess *session, claims *tokenClaims, res *authResult) {
	secure := a.secureCookies(ext)
	if sess.refreshToken == "" {
		if claims != nil && checkTokenTime(claims, a.now(), 0) == nil {
			// Nothing to refresh with, but the token is still good: serve
			// it (E.9 5(a)); the session ends when the token does.
			if !signIn(a, res, sess, claims, rc.session, a.now()) {
				res.setCookies = terminalDeletions(a, rc, secure)
			}
			return
		}
		a.log.event("session_refresh_failed", "transient", false, "reason", "no refresh token", "user_id", sess.userID)
		res.setCookies = terminalDeletions(a, rc, secure)
		return
	}
	orgID := ""
	if claims != nil {
		orgID = claims.OrganizationID
	} else if p, err := parseToken(sess.accessToken); err == nil {
		orgID = p.claims.OrganizationID // unverified, as authkit-nextjs does
	}
	out := refreshOnce(a, sess.refreshToken, orgID)
	err := out.err
	if err == nil {
		err = adoptRefresh(a, rc, secure, sess, out.resp, res, out.called)
	}
	if err == nil {
		return
	}
	if err == errSessionSignedOut {
		res.setCookies = terminalDeletions(a, rc, secure)
		return
	}
	we, _ := err.(*workosError)
	transient := we != nil && we.Transient
	if out.called {
		a.log.event("session_refresh_failed", "transient", transient, "reason", err.Error(), "user_id", sess.userID)
	}
	if claims != nil && checkTokenTime(claims, a.now(), 0) == nil {
		// Only expiring: serve the still-valid token and change nothing. A
		// concurrent request may already have rotated the refresh token.
		if !signIn(a, res, sess, claims, rc.session, a.now()) {
			res.setCookies = terminalDeletions(a, rc, secure)
		}
		return
	}
	if transient {
		return
	}
	now := a.now()
	if we != nil && we.Code == "invalid_grant" && now.Sub(out.answered) < siblingRotationWindow {
		a.log.debug("refresh token already used; keeping the cookie a moment for a sibling's rotation", "user_id", sess.userID)
		return
	}
	res.setCookies = terminalDeletions(a, rc, secure)
	// The answer is final: a replay of this cookie is refused from the
	// cache, without unsealing, verifying or asking the refresh group.
	storeSpent(a.sessions, a.cacheNS, rc.session, out.answered.Add(terminalMemory), now)
}

// refreshOnce trades a refresh token, once for every request of this
// process that carries it (the refresh group) and, with redisUrl, once for
// every replica.
func refreshOnce(a *authKit, refreshToken, orgID string) refreshOutcome {
	key := refreshKey(a.s.apiBaseURL, a.s.clientID, refreshToken, orgID)
	return a.refreshes.do(key, a.now, func(ctx context.Context) (*workosAuthResponse, error) {
		call := func() (*workosAuthResponse, error) {
			return a.workos.authenticateWithRefreshToken(ctx, refreshToken, orgID)
		}
		if a.replicas == nil {
			return call()
		}
		return a.replicas.refresh(key, call)
	})
}

// adoptRefresh seals the refreshed session and records its cookies; the
// caller that made the WorkOS call logs the event.
func adoptRefresh(a *authKit, rc *requestCookies, secure bool, old *session, resp *workosAuthResponse, res *authResult, logEvent bool) error {
	sess, sealed, err := sealResponse(a, old, resp)
	if err != nil {
		return err
	}
	// The token comes straight from WorkOS over the API connection; it is
	// read, not verified, as authkit-nextjs does after a refresh.
	parsed, err := parseToken(resp.AccessToken)
	if err != nil {
		return err
	}
	cookies, err := a.s.cookie.sessionCookies(sealed, secure, rc.sessionNames)
	if err != nil {
		return err
	}
	if logEvent {
		a.log.event("session_refreshed", "user_id", sess.userID, "session_id", parsed.claims.SessionID, "organization_id", parsed.claims.OrganizationID)
	}
	if !signIn(a, res, sess, &parsed.claims, sealed, a.now()) {
		return errSessionSignedOut
	}
	res.setCookies = append(res.setCookies, cookies...)
	res.refreshed = true
	res.session = sess
	return nil
}

// sealResponse builds and seals the session of an authenticate response,
// keeping previous's foreign keys.
func sealResponse(a *authKit, previous *session, resp *workosAuthResponse) (*session, string, error) {
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

// authenticateBearer signs an API client in with a WorkOS access token
// (SPEC "Bearer tokens"): verified, never refreshed, never a cookie.
func authenticateBearer(a *authKit, token string, res *authResult) {
	now := a.now()
	if e := lookupCached(a.sessions, a.bearerNS, token, sinceEpoch(a, now)); e != nil {
		res.principal = e.principal
		res.badBearer = e.principal == nil
		return
	}
	claims, err := verifyToken(a.verifier, token)
	if err != nil || claims.Subject == "" {
		a.log.debug("bearer token refused", "reason", errorText(err, "no sub claim"))
		res.badBearer = true
		return
	}
	expires := now.Add(maxCacheLifetime)
	if exp, ok := tokenExpiry(claims); ok {
		expires = exp // a bearer token is never refreshed: valid to its end
	}
	if !issuerAccepted(a, claims.Issuer) {
		// Cached as refused: an authentic token that comes back costs
		// neither a verification nor a log line.
		a.log.event("token_rejected", "reason", "issuer not accepted", "iss", claims.Issuer, "user_id", claims.Subject)
		res.badBearer = true
		storeCached(a.sessions, a.bearerNS, token, nil, expires, now)
		return
	}
	res.principal = claimsPrincipal(claims, signedInByBearerToken)
	storeCached(a.sessions, a.bearerNS, token, res.principal, expires, now)
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func errorText(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

// cacheReportInterval spaces the session_cache debug events.
const cacheReportInterval = time.Minute

// lastCacheReport is when the last session_cache event went out, in Unix
// nanoseconds; shared, like the cache, by every instance.
var lastCacheReport int64

// reportCache logs the cache's size and churn at most once a minute, with
// debug on (the caller tests it: a call costs its frame under the
// interpreter): how full it is, and how many inserts (misses of valid
// sessions), evictions and expiries the last minute had.
func reportCache(a *authKit, now time.Time) {
	last := atomic.LoadInt64(&lastCacheReport)
	if now.UnixNano()-last < int64(cacheReportInterval) || !atomic.CompareAndSwapInt64(&lastCacheReport, last, now.UnixNano()) {
		return
	}
	st := a.sessions.takeStats()
	a.log.debug("session_cache", "entries", st.entries, "bytes", st.bytes, "inserts", st.inserts, "evictions", st.evictions, "expired", st.expired)
}
