package fakeworkos

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRefreshGraceReplay(t *testing.T) {
	cases := []struct {
		name  string
		grace time.Duration
		// rotateOrg and replayOrg are the organization_id of the first
		// exchange and of the replay ("" for none). The session is
		// Alice's, in Acme.
		rotateOrg string
		replayOrg string
		// after is the time between the rotation and the replay; before
		// runs just before the replay.
		after  time.Duration
		before func(f *fixture, sessionID string)
		ok     bool
	}{
		{name: "immediate replay returns the identical pair", grace: 30 * time.Second, ok: true},
		{name: "replay late in the grace returns the identical pair", grace: 30 * time.Second, after: 29 * time.Second, ok: true},
		{name: "replay once the grace is over is invalid_grant", grace: 30 * time.Second, after: 30 * time.Second},
		{name: "strict mode refuses an immediate replay", grace: 0},
		{
			name: "revoked session is refused inside the grace", grace: 30 * time.Second,
			before: func(f *fixture, sid string) { f.fake.RevokeSession(sid) },
		},
		{
			name: "logout ends the grace", grace: 30 * time.Second,
			before: func(f *fixture, sid string) { f.get(pathLogout + "?session_id=" + sid) },
		},
		{name: "switch replayed for the same organization", grace: 30 * time.Second, rotateOrg: OrgGlobex, replayOrg: OrgGlobex, ok: true},
		{name: "switch replayed without organization_id", grace: 30 * time.Second, rotateOrg: OrgGlobex, replayOrg: ""},
		{name: "switch replayed for another organization", grace: 30 * time.Second, rotateOrg: OrgGlobex, replayOrg: OrgAcme},
		{name: "plain refresh replayed naming the session's organization", grace: 30 * time.Second, replayOrg: OrgAcme, ok: true},
		{name: "plain refresh replayed as a switch", grace: 30 * time.Second, replayOrg: OrgGlobex},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.SetRefreshGrace(tc.grace)
			issued, err := f.fake.IssueSession(SessionParams{UserID: UserAlice, OrganizationID: OrgAcme})
			if err != nil {
				t.Fatal(err)
			}
			first := f.authenticate(f.refreshCall(issued.RefreshToken, tc.rotateOrg))
			if first.status != http.StatusOK {
				t.Fatalf("first exchange: %d %s", first.status, first.raw)
			}
			f.clock.Advance(tc.after)
			if tc.before != nil {
				tc.before(f, issued.SessionID)
			}
			replay := f.authenticate(f.refreshCall(issued.RefreshToken, tc.replayOrg))
			wantReplays := 0
			if tc.ok {
				wantReplays = 1
				if replay.status != http.StatusOK || replay.raw != first.raw {
					t.Errorf("replay got %d\n%s\nwant the first answer\n%s", replay.status, replay.raw, first.raw)
				}
			} else {
				expectOAuthError(t, replay, http.StatusBadRequest, "invalid_grant")
			}
			if n := f.fake.Rotations(); n != 1 {
				t.Errorf("Rotations = %d, want 1", n)
			}
			if n := f.fake.GraceReplays(); n != wantReplays {
				t.Errorf("GraceReplays = %d, want %d", n, wantReplays)
			}
		})
	}
}

func TestRefreshGraceOption(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { o.RefreshGrace = 10 * time.Second })
	token := str(f.signIn(UserBob).body, "refresh_token")
	first := f.authenticate(f.refreshCall(token, ""))
	if replay := f.authenticate(f.refreshCall(token, "")); replay.status != http.StatusOK || replay.raw != first.raw {
		t.Errorf("replay with Options.RefreshGrace: %d %s", replay.status, replay.raw)
	}
}

func TestGraceReplayDoesNotRotate(t *testing.T) {
	f := newFixture(t)
	f.fake.SetRefreshGrace(30 * time.Second)
	token := str(f.signIn(UserBob).body, "refresh_token")
	first := f.authenticate(f.refreshCall(token, ""))
	f.authenticate(f.refreshCall(token, ""))
	// The pair handed out twice is still the session's live one.
	next := f.authenticate(f.refreshCall(str(first.body, "refresh_token"), ""))
	if next.status != http.StatusOK {
		t.Fatalf("refresh with the replayed pair's token: %d %s", next.status, next.raw)
	}
	if n := f.fake.Rotations(); n != 2 {
		t.Errorf("Rotations = %d, want 2", n)
	}
}

// writeHook runs before once the handler starts writing its response.
type writeHook struct {
	*httptest.ResponseRecorder
	before func()
}

func (w *writeHook) WriteHeader(status int) {
	if w.before != nil {
		w.before()
		w.before = nil
	}
	w.ResponseRecorder.WriteHeader(status)
}

func TestGraceReplayWhileTheFirstResponseIsWritten(t *testing.T) {
	f := newFixture(t)
	f.fake.SetRefreshGrace(30 * time.Second)
	token := str(f.signIn(UserBob).body, "refresh_token")
	call := f.refreshCall(token, "")
	payload, _ := json.Marshal(call.body)
	req := httptest.NewRequest(http.MethodPost, pathAuthenticate, bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk_test_key")
	var replay result
	w := &writeHook{ResponseRecorder: httptest.NewRecorder()}
	w.before = func() { replay = f.authenticate(call) }
	f.fake.ServeHTTP(w, req)
	if w.Code != http.StatusOK || replay.status != http.StatusOK || replay.raw != w.Body.String() {
		t.Errorf("first %d %s\nreplay %d %s", w.Code, w.Body.String(), replay.status, replay.raw)
	}
}

func TestRefreshCounters(t *testing.T) {
	f := newFixture(t)
	f.fake.SetRefreshGrace(30 * time.Second)
	token := str(f.signIn(UserBob).body, "refresh_token")
	f.authenticate(f.refreshCall(token, ""))         // rotation
	f.authenticate(f.refreshCall(token, ""))         // grace replay
	f.authenticate(f.refreshCall("not-a-token", "")) // refused
	f.authenticate(f.refreshCall(token, OrgGlobex))  // refused: Bob is not in Globex
	if got := [3]int{f.fake.RefreshCalls(), f.fake.Rotations(), f.fake.GraceReplays()}; got != [3]int{4, 1, 1} {
		t.Errorf("RefreshCalls, Rotations, GraceReplays = %v, want [4 1 1]", got)
	}
	res := f.control("GET", "/__fake/stats", "", true)
	if res.body["rotations"] != 1.0 || res.body["grace_replays"] != 1.0 {
		t.Errorf("stats %s", res.raw)
	}
}

func TestRefreshGraceControl(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		// after is the time between rotation and replay; ok whether the
		// replay must succeed.
		after time.Duration
		ok    bool
	}{
		{name: "fractional seconds inside", body: `{"seconds":0.5}`, status: 204, after: 400 * time.Millisecond, ok: true},
		{name: "fractional seconds past", body: `{"seconds":0.5}`, status: 204, after: 500 * time.Millisecond},
		{name: "zero is strict", body: `{"seconds":0}`, status: 204},
		{name: "negative is refused", body: `{"seconds":-1}`, status: 400},
		{name: "missing seconds is refused", body: `{}`, status: 400},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if err := expectStatus(f.control("POST", "/__fake/refresh-grace", tc.body, true), tc.status); err != nil {
				t.Fatal(err)
			}
			token := str(f.signIn(UserBob).body, "refresh_token")
			f.authenticate(f.refreshCall(token, ""))
			f.clock.Advance(tc.after)
			replay := f.authenticate(f.refreshCall(token, ""))
			if (replay.status == http.StatusOK) != tc.ok {
				t.Errorf("replay %d %s, want success %v", replay.status, replay.raw, tc.ok)
			}
		})
	}
}

func TestSpentTokensExpire(t *testing.T) {
	f := newFixture(t)
	f.fake.SetRefreshGrace(time.Second)
	token := str(f.signIn(UserBob).body, "refresh_token")
	for i := 0; i < 5; i++ {
		token = str(f.authenticate(f.refreshCall(token, "")).body, "refresh_token")
	}
	f.clock.Advance(time.Second)
	f.authenticate(f.refreshCall(token, ""))
	f.fake.mu.Lock()
	kept, order := len(f.fake.spent), len(f.fake.spentOrder)
	f.fake.mu.Unlock()
	if kept != 1 || order != 1 {
		t.Errorf("%d records (%d in order) kept, want only the latest rotation", kept, order)
	}
}
