package authkit

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

func TestExpiredSessionIsRefreshed(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	w := env.do(document("/page", "wos-session="+sealed))
	if w.Code != http.StatusOK || env.fake.RefreshCalls() != 1 {
		t.Fatalf("status %d, refresh calls %d", w.Code, env.fake.RefreshCalls())
	}
	fresh := cookieValue(setCookie(w, "wos-session"))
	if fresh == "" || fresh == sealed {
		t.Fatalf("no new session cookie: %v", w.Result().Header.Values("Set-Cookie"))
	}
	h := env.upstream.last()
	if h.Get("X-Workos-Session") != fresh || h.Get("X-Workos-User-Id") != fakeworkos.UserAlice || h.Get("X-Workos-Session-Id") != issued.SessionID {
		t.Fatalf("upstream session %q… user %q", h.Get("X-Workos-Session")[:20], h.Get("X-Workos-User-Id"))
	}
	req := env.fake.AuthenticateRequests()[0]
	if req.OrganizationID != fakeworkos.OrgAcme {
		t.Errorf("refresh organization_id %q, want the token's org_id", req.OrganizationID)
	}
	if !strings.Contains(env.logs.String(), `"msg":"session_refreshed"`) {
		t.Errorf("no session_refreshed event")
	}
	// The new cookie works without another refresh.
	env.do(document("/page", "wos-session="+fresh))
	if env.fake.RefreshCalls() != 1 || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice {
		t.Fatalf("new cookie: refresh calls %d", env.fake.RefreshCalls())
	}
}

func TestExpiringSessionIsRefreshedInsideTheBuffer(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserBob, "", 20*time.Second) // 5 min tokens: 30 s buffer
	w := env.do(document("/page", "wos-session="+sealed))
	if env.fake.RefreshCalls() != 1 || setCookie(w, "wos-session") == "" {
		t.Fatalf("refresh calls %d, cookies %v", env.fake.RefreshCalls(), w.Result().Header.Values("Set-Cookie"))
	}
}

func TestRefreshBufferZeroRefreshesOnlyAfterExpiry(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.RefreshBufferSeconds = "0" })
	sealed, _ := env.session(fakeworkos.UserBob, "", 20*time.Second)
	env.do(document("/page", "wos-session="+sealed))
	if env.fake.RefreshCalls() != 0 {
		t.Fatalf("refresh calls %d, want 0", env.fake.RefreshCalls())
	}
}

func TestConcurrentRequestsShareOneRefresh(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	env.fake.InjectFault(fakeworkos.EndpointAuthenticate, fakeworkos.Fault{Kind: fakeworkos.FaultDelay, Delay: 200 * time.Millisecond, Count: 1})
	const n = 50
	results := make([]*httptest.ResponseRecorder, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = env.do(request{target: "/api", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}})
		}(i)
	}
	wg.Wait()
	if got := env.fake.RefreshCalls(); got != 1 {
		t.Fatalf("%d refresh calls for one session, want 1", got)
	}
	want := env.sessionOf(cookieValue(setCookie(results[0], "wos-session"))).refreshToken
	for i, w := range results {
		if w.Code != http.StatusOK || env.sessionOf(cookieValue(setCookie(w, "wos-session"))).refreshToken != want {
			t.Fatalf("request %d: status %d, without the refreshed session", i, w.Code)
		}
	}
}

func TestClientThatLostTheRefreshedCookieStaysSignedIn(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	first := env.do(document("/page", "wos-session="+sealed))
	if setCookie(first, "wos-session") == "" {
		t.Fatal("no refresh")
	}
	// The browser never stored the answer and sends the old cookie again;
	// its refresh token is spent at WorkOS.
	again := env.do(document("/page", "wos-session="+sealed))
	if again.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice {
		t.Fatalf("second request: %d, user %q", again.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
	if env.sessionOf(cookieValue(setCookie(again, "wos-session"))).refreshToken !=
		env.sessionOf(cookieValue(setCookie(first, "wos-session"))).refreshToken {
		t.Fatal("the lost cookie was not handed out again")
	}
	if env.fake.RefreshCalls() != 1 {
		t.Fatalf("refresh calls %d, want 1", env.fake.RefreshCalls())
	}
}

// TestRefreshFailures covers E.9 step 5 for each kind of WorkOS answer.
func TestRefreshFailures(t *testing.T) {
	tests := []struct {
		name        string
		fault       fakeworkos.Fault
		accessTTL   time.Duration // negative: expired; positive: inside the buffer
		wantSigned  bool          // request still signed in
		wantDeleted bool          // session cookie deleted
	}{
		{"expired, invalid_grant: signed out, the cookie kept for a sibling's rotation", fakeworkos.Fault{Kind: fakeworkos.FaultInvalidGrant}, -time.Minute, false, false},
		{"expired, HTML 400: terminal", fakeworkos.Fault{Kind: fakeworkos.FaultHTMLError, Status: 400}, -time.Minute, false, true},
		{"expired, HTML 502: transient whatever the body", fakeworkos.Fault{Kind: fakeworkos.FaultHTMLError, Status: 502}, -time.Minute, false, false},
		{"expired, JSON 501: terminal", fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 501}, -time.Minute, false, true},
		{"expired, 429: transient", fakeworkos.Fault{Kind: fakeworkos.FaultRateLimit}, -time.Minute, false, false},
		{"expired, JSON 503: transient", fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 503}, -time.Minute, false, false},
		{"expired, dropped connection: transient", fakeworkos.Fault{Kind: fakeworkos.FaultDrop}, -time.Minute, false, false},
		{"expiring, JSON 500: served with the current token", fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 500}, 20 * time.Second, true, false},
		{"expiring, invalid_grant: served with the current token", fakeworkos.Fault{Kind: fakeworkos.FaultInvalidGrant}, 20 * time.Second, true, false},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
			sealed, _ := env.session(fakeworkos.UserBob, "", tt.accessTTL)
			fault := tt.fault
			fault.Count = 1
			env.fake.InjectFault(fakeworkos.EndpointAuthenticate, fault)
			w := env.do(request{target: "/api", cookie: "wos-session=" + sealed, headers: map[string]string{"Accept": "application/json"}})
			if signedIn := w.Code == http.StatusOK; signedIn != tt.wantSigned {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			c := setCookie(w, "wos-session")
			if deleted := strings.Contains(c, "Max-Age=0"); deleted != tt.wantDeleted || (!deleted && c != "") {
				t.Fatalf("session Set-Cookie %q, want deleted=%v", c, tt.wantDeleted)
			}
			if !strings.Contains(env.logs.String(), `"msg":"session_refresh_failed"`) {
				t.Errorf("no session_refresh_failed event")
			}
		})
	}
}

func TestTransientFailureIsSharedUntilRetryAfterThenRecovers(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserBob, "", -time.Minute)
	env.fake.InjectFault(fakeworkos.EndpointAuthenticate, fakeworkos.Fault{Kind: fakeworkos.FaultRateLimit, RetryAfter: 3, Count: 1})
	for i := 0; i < 5; i++ {
		if w := env.do(document("/page", "wos-session="+sealed)); setCookie(w, "wos-session") != "" {
			t.Fatalf("request %d changed the cookie during the outage", i)
		}
	}
	if got := env.fake.RefreshCalls(); got != 1 {
		t.Fatalf("%d refresh calls within Retry-After, want 1", got)
	}
	env.shiftClock(4 * time.Second)
	w := env.do(document("/page", "wos-session="+sealed))
	if setCookie(w, "wos-session") == "" || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserBob {
		t.Fatalf("the kept cookie did not refresh once Retry-After passed (refresh calls %d)", env.fake.RefreshCalls())
	}
}

func TestUnusableCookiesSignOutWithoutError(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	otherPassword, _ := NewKeyring(map[string]string{"1": strings.Repeat("z", 40)})
	foreign, _ := otherPassword.Seal([]byte(`{"accessToken":"x"}`), 0, time.Now())
	notSession, _ := env.ak.s.keyring.Seal([]byte(`{"hello":"world"}`), 0, time.Now())
	garbageToken, _ := env.ak.s.keyring.Seal([]byte(`{"accessToken":"not.a.jwt","refreshToken":""}`), 0, time.Now())
	tests := []struct{ name, value string }{
		{"garbage", "garbage"},
		{"truncated seal", foreign[:40]},
		{"other password", foreign},
		{"authentic but not a session", notSession},
		{"session with a broken token and no refresh token", garbageToken},
		{"oversized", strings.Repeat("a", 5000)},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(request{target: "/api", cookie: "wos-session=" + tt.value, headers: map[string]string{"Accept": "application/json"}})
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if c := setCookie(w, "wos-session"); !strings.Contains(c, "Max-Age=0") || !strings.Contains(c, "Path=/") {
				t.Fatalf("cookie not deleted: %q", c)
			}
		})
	}
}

func TestUserAndTokenSubjectMustAgree(t *testing.T) {
	env := newTestEnv(t, nil)
	_, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	user, _ := workosSessionUser([]byte(`{"object":"user","id":"user_someone_else","email":"x@example.com"}`))
	sess, _ := newSession(nil, issued.AccessToken, issued.RefreshToken, user, nil, "")
	sealed, _ := env.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	w := env.do(document("/page", "wos-session="+sealed))
	if env.upstream.last().Get("X-Workos-User-Id") != "" || setCookie(w, "wos-session") != "" {
		t.Fatalf("mismatched session signed in, or its cookie was touched")
	}
}

// sessionOf opens a session cookie value the plugin wrote.
func (e *testEnv) sessionOf(value string) *session {
	e.t.Helper()
	plain, err := e.ak.s.keyring.Unseal(value, time.Now())
	if err != nil {
		e.t.Fatalf("session cookie %.20q…: %v", value, err)
	}
	s, err := decodeSession(plain)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func TestLogsNeverCarrySecrets(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Debug = true; c.MiddlewareAuth.Enabled = true })
	sealed, issued := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	env.fake.InjectFault(fakeworkos.EndpointAuthenticate, fakeworkos.Fault{Kind: fakeworkos.FaultInvalidGrant, Count: 1})
	env.do(document("/page", "wos-session="+sealed)) // refresh fails, terminal
	sealed2, issued2 := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	refreshed := env.do(document("/page", "wos-session="+sealed2))
	env.do(document("/page", "wos-session=garbage"))
	env.do(request{target: "/page", headers: map[string]string{"Authorization": "Bearer " + issued.AccessToken}})
	start := env.do(document("/auth/sign-in", ""))
	signInThroughFake(t, env, start, fakeworkos.UserBob)
	env.do(document("/auth/sign-out", "wos-session="+sealed2))

	logs := env.logs.String()
	secrets := map[string]string{
		"access token": issued.AccessToken, "refresh token": issued.RefreshToken, "sealed session": sealed,
		"second refresh token": issued2.RefreshToken, "refreshed cookie": cookieValue(setCookie(refreshed, "wos-session")),
		"API key": env.fake.APIKey(), "cookie password": testCookiePassword,
		"state": mustQuery(t, start.Header().Get("Location")).Get("state"),
	}
	for name, secret := range secrets {
		if len(secret) < 16 {
			t.Fatalf("%s is too short to search for", name)
		}
		// Any 16-byte window of the secret would betray it.
		for i := 0; i+16 <= len(secret); i += 8 {
			if strings.Contains(logs, secret[i:i+16]) {
				t.Fatalf("the logs contain part of the %s", name)
			}
		}
	}
	for _, event := range []string{"session_refresh_failed", "session_refreshed", "signed_in", "signed_out"} {
		if !strings.Contains(logs, `"msg":"`+event+`"`) {
			t.Errorf("no %s event", event)
		}
	}
}

func TestTokenWithoutSubjectIsNotSignedIn(t *testing.T) {
	env := newTestEnv(t, nil)
	_, issued := env.session(fakeworkos.UserBob, "", 0)
	token := env.fake.MintAccessToken(map[string]any{"sid": issued.SessionID, "exp": time.Now().Add(time.Hour).Unix()})
	user, _ := workosSessionUser(issued.User)
	sess, _ := newSession(nil, token, issued.RefreshToken, user, nil, "")
	sealed, _ := env.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	env.do(document("/page", "wos-session="+sealed))
	if env.upstream.last().Get("X-Workos-User-Id") != "" || env.upstream.last().Get("X-Workos-Session") != "" {
		t.Fatal("a token without sub signed the request in")
	}
}

func TestDuplicatedSessionCookies(t *testing.T) {
	env := newTestEnv(t, nil)
	sealed, _ := env.session(fakeworkos.UserBob, "", 0)
	tests := []struct {
		name, cookie, wantUser string
	}{
		{"valid first", "wos-session=" + sealed + "; wos-session=garbage", fakeworkos.UserBob},
		{"garbage first", "wos-session=garbage; wos-session=" + sealed, ""},
		{"same cookie twice", "wos-session=" + sealed + "; wos-session=" + sealed, fakeworkos.UserBob},
	}
	for _, tt := range tests {
		tt := tt
		t.Run(tt.name, func(t *testing.T) {
			w := env.do(document("/page", tt.cookie))
			if w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != tt.wantUser {
				t.Fatalf("status %d, user %q", w.Code, env.upstream.last().Get("X-Workos-User-Id"))
			}
		})
	}
}

// TestRememberedAnswersHoldLittleMemory: the refresh table keeps terminal
// answers for ten minutes, so what each holds is bounded. (Under yaegi, an
// interpreted error kept as an error interface held the frame that made
// it, WorkOS's response body included: tens of kilobytes each.)
func TestRememberedAnswersHoldLittleMemory(t *testing.T) {
	env := newTestEnv(t, nil)
	issued, _ := env.fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	expired, _ := env.fake.MintSessionToken(issued.SessionID, -time.Minute)
	user, _ := workosSessionUser(issued.User)
	cookies := make([]string, 300)
	for i := range cookies {
		sess, _ := newSession(nil, expired, "spent-"+strconv.Itoa(i), user, nil, "Password")
		cookies[i], _ = env.ak.s.keyring.Seal(sess.encode(), 0, time.Now())
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for _, c := range cookies {
		env.do(request{target: "/api", cookie: "wos-session=" + c, headers: map[string]string{"Accept": "application/json"}})
	}
	perAnswer := int64(heap()-before) / int64(len(cookies))
	if env.ak.refreshes.len() != len(cookies) {
		t.Fatalf("%d answers remembered, want %d", env.ak.refreshes.len(), len(cookies))
	}
	if perAnswer > 4<<10 {
		t.Fatalf("each remembered answer holds %d bytes", perAnswer)
	}
	runtime.KeepAlive(cookies)
}
