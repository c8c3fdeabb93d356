package scale

import (
	"context"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const (
	cookiePassword = "scale-cookie-password-0123456789abcdefghijklmnop"
	sessionCookie  = browserjar.SessionCookie
)

// combos are the fake's users and organizations the sessions rotate
// over, with weights: Max's 6 KB of metadata makes his refreshed session
// a split cookie (wos-session.0, .1, …), a rarer case.
var combos = []struct {
	user, org string
	weight    int
}{
	{fakeworkos.UserAlice, fakeworkos.OrgAcme, 10},
	{fakeworkos.UserAlice, fakeworkos.OrgGlobex, 5},
	{fakeworkos.UserBob, fakeworkos.OrgAcme, 10},
	{fakeworkos.UserBob, "", 5},
	{fakeworkos.UserCarol, "", 10},
	{fakeworkos.UserZoe, fakeworkos.OrgGlobex, 8},
	{fakeworkos.UserMax, fakeworkos.OrgAcme, 2},
}

// userSession is one signed-in browser: its WorkOS session and its cookie
// jar, which holds only the session cookie (whole or split).
type userSession struct {
	idx    int
	userID string
	orgID  string

	mu    sync.Mutex
	sid   string
	jar   map[string]string // session cookie name → value
	ready bool              // false while a lost session signs in again
}

// cookieHeader is the Cookie header the browser sends.
func (s *userSession) cookieHeader() (header, sid string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return "", "", false
	}
	return browserjar.Jar(s.jar).Header(), s.sid, true
}

// applySetCookies updates a jar as a browser does, in the order the
// answers arrive: Max-Age ≤ 0 or an Expires in the past removes a cookie.
// It reports whether a session value was written and whether the jar held
// a session before and holds none after (a deletion).
func applySetCookies(jar map[string]string, lines []string, now time.Time) (written, deleted bool) {
	had := len(jar) > 0
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err != nil || !browserjar.IsSessionCookie(c.Name) {
			continue
		}
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(now)) {
			delete(jar, c.Name)
			continue
		}
		jar[c.Name] = c.Value
		written = true
	}
	return written, had && len(jar) == 0
}

// minter signs sessions in at the fake and seals their cookies.
type minter struct {
	fake    *fakeworkos.Server
	keyring *authkit.Keyring
	ttl     time.Duration
}

// minted is one session as a sign-in leaves it.
type minted struct {
	sid, refreshToken string
	sealed            string
}

// mint signs userID in (orgID may be empty) and seals a cookie whose
// access token, from fake.MintSessionToken, expires in expiresIn. (The
// fake signs under its lock, so parallel minters mostly overlap the
// sealing; measured, re-signing the claims outside the lock gained 7 %.)
func (m *minter) mint(userID, orgID string, expiresIn time.Duration) (minted, error) {
	issued, err := m.fake.IssueSession(fakeworkos.SessionParams{UserID: userID, OrganizationID: orgID})
	if err != nil {
		return minted{}, err
	}
	token, err := m.fake.MintSessionToken(issued.SessionID, expiresIn)
	if err != nil {
		return minted{}, err
	}
	sealed, err := m.seal(token, issued.RefreshToken, issued.User)
	if err != nil {
		return minted{}, err
	}
	return minted{sid: issued.SessionID, refreshToken: issued.RefreshToken, sealed: sealed}, nil
}

// seal builds the cookie value as harness/bench does: the access and
// refresh tokens and the user in the SDK's camelCase form.
func (m *minter) seal(accessToken, refreshToken string, apiUser json.RawMessage) (string, error) {
	var user struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(apiUser, &user); err != nil {
		return "", err
	}
	payload, err := json.Marshal(map[string]any{
		"accessToken":  accessToken,
		"refreshToken": refreshToken,
		"user":         map[string]any{"object": "user", "id": user.ID, "email": user.Email},
	})
	if err != nil {
		return "", err
	}
	return m.keyring.Seal(payload, 0, time.Now())
}

// comboFor spreads sessions over the combos by weight.
func comboFor(i int) (user, org string) {
	total := 0
	for _, c := range combos {
		total += c.weight
	}
	k := i % total
	for _, c := range combos {
		if k < c.weight {
			return c.user, c.org
		}
		k -= c.weight
	}
	panic("unreachable")
}

// mintSessions creates n sessions in parallel, their access tokens
// expiring uniformly over (0, ttl] so that refreshes are spread evenly
// from the start, and registers their refresh tokens with the recorder.
func mintSessions(ctx context.Context, m *minter, rec *recorder, n int, ttl time.Duration, progress func(done int)) ([]*userSession, error) {
	sessions := make([]*userSession, n)
	tokens := make([]string, n)
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	workers := 2 * runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(w), 99))
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				user, org := comboFor(i)
				expiresIn := time.Duration(1+rng.Int64N(int64(ttl/time.Second))) * time.Second
				got, err := m.mint(user, org, expiresIn)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				sessions[i] = &userSession{idx: i, userID: user, orgID: org, sid: got.sid,
					jar: map[string]string{sessionCookie: got.sealed}, ready: true}
				tokens[i] = got.refreshToken
				if d := done.Add(1); progress != nil && d%5000 == 0 {
					progress(int(d))
				}
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec.registerAll(tokens, ownerUser)
	return sessions, nil
}

// reissue signs a user whose session was lost in again, as the user
// would: a new WorkOS session and cookie.
func (s *userSession) reissue(m *minter, rec *recorder, ttl time.Duration) error {
	got, err := m.mint(s.userID, s.orgID, ttl)
	if err != nil {
		return err
	}
	rec.register(got.refreshToken, owner{ownerUser, s.idx})
	s.mu.Lock()
	s.sid = got.sid
	s.jar = map[string]string{sessionCookie: got.sealed}
	s.ready = true
	s.mu.Unlock()
	return nil
}
