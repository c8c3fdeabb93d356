package replicas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// These tests check the harness's own instruments, without Traefik, so a
// figure in a report can be trusted: the recorder counts rotations and
// replays as the fake does them, the cookie store keeps the last answer,
// and the Redis faults do what their names say.

// TestHarnessRecorder sends refresh grants through the recorder to a fake
// with a replay grace: a first exchange is a rotation, a replay inside
// the grace a grace replay, a spent token without grace invalid_grant.
func TestHarnessRecorder(t *testing.T) {
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: time.Minute, RefreshGrace: 30 * time.Second})
	fakeURL, stop, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	phase := "one"
	rec, recURL := startRecorder(t, fakeURL, func() string { return phase })
	issued, err := fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(token string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{
			"grant_type": "refresh_token", "client_id": fake.ClientID(), "client_secret": fake.APIKey(), "refresh_token": token,
		})
		req, _ := http.NewRequest(http.MethodPost, recURL+"/user_management/authenticate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fake.APIKey())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&answer)
		return resp.StatusCode, answer.RefreshToken
	}

	status, next := refresh(issued.RefreshToken)
	if status != http.StatusOK || next == "" {
		t.Fatalf("first exchange: %d", status)
	}
	if status, again := refresh(issued.RefreshToken); status != http.StatusOK || again != next {
		t.Fatalf("replay inside the grace: %d, same pair %t", status, again == next)
	}
	phase = "two"
	fake.SetRefreshGrace(0)
	if status, _ := refresh(issued.RefreshToken); status != http.StatusBadRequest {
		t.Fatalf("spent token without grace: %d, want 400", status)
	}
	if status, _ := refresh(next); status != http.StatusOK {
		t.Fatalf("second rotation: %d", status)
	}

	want := map[string]refreshFigures{
		"one": {Calls: 2, Rotations: 1, GraceReplays: 1},
		"two": {Calls: 2, Rotations: 1, InvalidGrant: 1},
	}
	for p, w := range want {
		if got := rec.figures(p); got != w {
			t.Errorf("phase %s: recorder saw %+v, want %+v", p, got, w)
		}
	}
	all := rec.figures("one", "two")
	if all.Calls != fake.RefreshCalls() || all.Rotations != fake.Rotations() || all.GraceReplays != fake.GraceReplays() {
		t.Errorf("recorder %+v disagrees with the fake: %d calls, %d rotations, %d grace replays",
			all, fake.RefreshCalls(), fake.Rotations(), fake.GraceReplays())
	}
}

// TestHarnessCookieOrder: the store applies answers in the order given,
// the last one winning, a deletion included.
func TestHarnessCookieOrder(t *testing.T) {
	now := time.Now()
	write := "wos-session=new; Path=/; HttpOnly; SameSite=Lax; Max-Age=34560000"
	del := "wos-session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
	j := browserjar.Jar{sessionCookie: "old", "theme": "dark"}
	j.Apply([]string{write}, now)
	j.Apply([]string{del}, now)
	if j.HasSession() {
		t.Errorf("a deletion arriving last must remove the session: %v", j)
	}
	j.Apply([]string{write}, now)
	if j[sessionCookie] != "new" || j["theme"] != "dark" {
		t.Errorf("a write arriving last must win: %v", j)
	}
	o := outcome{setCookies: []string{del}, end: now}
	if !o.sessionDelete() || o.sessionWrite() {
		t.Errorf("deletion misread: delete %t write %t", o.sessionDelete(), o.sessionWrite())
	}
}

// TestHarnessRedisFaults checks the Redis outage tools against a real
// redis-server: the proxy passes commands, the delay holds replies back,
// a killed server stops answering and comes back on its port, and a
// requirepass server refuses no password and a wrong one.
func TestHarnessRedisFaults(t *testing.T) {
	redis := startRedis(t, "")
	proxy := startTCPProxy(t, redis.Addr())

	if got := redisCommand(t, proxy.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("PING through the proxy: %q", got)
	}
	proxy.SetDelay(redisReplyDelay)
	start := time.Now()
	if got := redisCommand(t, proxy.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("slow PING: %q", got)
	}
	if took := time.Since(start); took < redisReplyDelay {
		t.Errorf("a delayed reply came after %s, want at least %s", took, redisReplyDelay)
	}
	proxy.SetDelay(0)

	redis.Kill()
	if got := redisCommand(t, proxy.Addr(), "PING"); got != "" {
		t.Errorf("PING to a killed redis-server answered %q", got)
	}
	redis.Restart()
	if got := redisCommand(t, proxy.Addr(), "PING"); got != "+PONG" {
		t.Errorf("PING after the restart: %q", got)
	}

	locked := startRedis(t, "right-password")
	if got := redisCommand(t, locked.Addr(), "PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without a password: %q, want NOAUTH", got)
	}
	if got := redisCommand(t, locked.Addr(), "AUTH wrong-password"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH with a wrong password: %q, want WRONGPASS", got)
	}
	if got := redisCommand(t, locked.Addr(), "AUTH right-password"); got != "+OK" {
		t.Errorf("AUTH with the right password: %q", got)
	}
}

// redisCommand sends one inline command and returns the first line of the
// answer, or "" when there is none.
func redisCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return ""
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(line, "\r\n")
}
