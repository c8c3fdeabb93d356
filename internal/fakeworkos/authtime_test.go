package fakeworkos

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuthTime(t *testing.T) {
	cases := []struct {
		name string
		// token returns an access token and the auth_time it must carry.
		token func(f *fixture) (string, time.Time)
	}{
		{
			name: "code exchange carries the sign-in time, not the exchange time",
			token: func(f *fixture) (string, time.Time) {
				signedIn := f.clock.Now()
				code := f.codeFor(UserBob, nil)
				f.clock.Advance(time.Minute)
				return str(f.authenticate(f.codeCall(code)).body, "access_token"), signedIn
			},
		},
		{
			name: "IssueSession defaults to now",
			token: func(f *fixture) (string, time.Time) {
				issued, _ := f.fake.IssueSession(SessionParams{UserID: UserBob})
				return issued.AccessToken, f.clock.Now()
			},
		},
		{
			name: "IssueSession with AuthenticatedAt",
			token: func(f *fixture) (string, time.Time) {
				long := f.clock.Now().Add(-3 * time.Hour)
				issued, _ := f.fake.IssueSession(SessionParams{UserID: UserBob, AuthenticatedAt: long})
				return issued.AccessToken, long
			},
		},
		{
			name: "refresh keeps the original auth_time",
			token: func(f *fixture) (string, time.Time) {
				signedIn := f.clock.Now()
				token := str(f.signIn(UserAlice).body, "refresh_token")
				f.clock.Advance(time.Hour)
				return str(f.authenticate(f.refreshCall(token, OrgGlobex)).body, "access_token"), signedIn
			},
		},
		{
			name: "MintSessionToken carries the session's auth_time",
			token: func(f *fixture) (string, time.Time) {
				long := f.clock.Now().Add(-time.Hour)
				issued, _ := f.fake.IssueSession(SessionParams{UserID: UserBob, AuthenticatedAt: long})
				f.clock.Advance(time.Minute)
				token, _ := f.fake.MintSessionToken(issued.SessionID, time.Minute)
				return token, long
			},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			token, want := tc.token(f)
			claims := jwtPart(t, token, 1)
			got, ok := claims["auth_time"].(float64)
			if !ok || int64(got) != want.Unix() {
				t.Errorf("auth_time %v, want %d", claims["auth_time"], want.Unix())
			}
		})
	}
}

func TestAuthorizeRecordsMaxAge(t *testing.T) {
	cases := []struct {
		name string
		edit func(q url.Values)
		want string
	}{
		{name: "absent", want: ""},
		{name: "zero", edit: func(q url.Values) { q.Set("max_age", "0") }, want: "0"},
		{name: "five minutes", edit: func(q url.Values) { q.Set("max_age", "300") }, want: "300"},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if res := f.authorize(tc.edit); res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.raw)
			}
			got := f.fake.AuthorizeRequests()
			if len(got) != 1 || got[0].MaxAge != tc.want {
				t.Errorf("recorded %+v, want MaxAge %q", got, tc.want)
			}
		})
	}
}

func TestLoginHintWithMaxAgeShowsThePage(t *testing.T) {
	f := newFixture(t)
	page := f.authorize(func(q url.Values) {
		q.Set("login_hint", UserBob)
		q.Set("max_age", "60")
	})
	if page.status != http.StatusOK || !strings.Contains(page.raw, "<button") {
		t.Fatalf("got %d, want the sign-in page: %s", page.status, page.raw)
	}
	// The code that the page's form yields dates from the click.
	f.clock.Advance(2 * time.Minute)
	clicked := f.clock.Now()
	fields := signInForm(t, page.raw, "bob@example.com", OrgAcme)
	req, _ := http.NewRequest(http.MethodPost, f.url+pathSignIn, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res := f.do(req)
	if res.status != http.StatusSeeOther {
		t.Fatalf("sign-in form: %d %s", res.status, html.UnescapeString(res.raw))
	}
	claims := claimsOf(t, f.authenticate(f.codeCall(redirectParams(t, res).Get("code"))))
	if got, _ := claims["auth_time"].(float64); int64(got) != clicked.Unix() {
		t.Errorf("auth_time %v, want the sign-in time %d", claims["auth_time"], clicked.Unix())
	}
}
