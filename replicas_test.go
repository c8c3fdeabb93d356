package authkit

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Several Traefik replicas" with redisUrl, against a real
// redis-server (scripts/redis.sh): two middlewares in one process, each
// with its own cache, refresh group and revocations, play two replicas.

// replicaPair returns two replicas of one configuration in front of one
// fake WorkOS, sharing the Redis at redisURL under a namespace of the
// test's own.
func replicaPair(t *testing.T, redisURL string) (*testEnv, *testEnv) {
	t.Helper()
	first := newTestEnv(t, func(c *Config) { c.MiddlewareAuth.Enabled = true })
	api, _ := url.Parse(first.api.URL)
	second := newTestEnv(t, func(c *Config) {
		c.MiddlewareAuth.Enabled = true
		c.APIPort = api.Port()
	})
	second.fake = first.fake
	opts, err := parseRedisURL(redisURL, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	prefix := replicaPrefix(first.ak.s) + t.Name() + ":"
	for _, env := range []*testEnv{first, second} {
		store := newReplicaStore(newRedisClient(opts), prefix, env.ak.s.keyring, env.ak.sessions, env.ak.revocations, env.ak.log)
		env.ak.replicas = store
		t.Cleanup(func() { store.stopped.Store(true) })
	}
	return first, second
}

func apiRequest(cookie string) request {
	return request{target: "/api", cookie: cookie, headers: map[string]string{"Accept": "application/json"}}
}

// TestReplicasShareOneRefresh: two replicas get the same expired cookie at
// once; WorkOS sees one refresh, and both answer with its result.
func TestReplicasShareOneRefresh(t *testing.T) {
	first, second := replicaPair(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"))
	sealed, _ := first.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
	first.fake.InjectFault(fakeworkos.EndpointAuthenticate, fakeworkos.Fault{Kind: fakeworkos.FaultDelay, Delay: 300 * time.Millisecond, Count: 1})
	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 6)
	for i := range answers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			env := first
			if i%2 == 1 {
				env = second
			}
			answers[i] = env.do(apiRequest("wos-session=" + sealed))
		}(i)
	}
	wg.Wait()
	if got := first.fake.RefreshCalls(); got != 1 {
		t.Fatalf("%d WorkOS refresh calls for one rotation across two replicas, want 1", got)
	}
	want := ""
	for i, w := range answers {
		fresh := cookieValue(setCookie(w, "wos-session"))
		if w.Code != http.StatusOK || fresh == "" {
			t.Fatalf("answer %d: status %d, no refreshed cookie", i, w.Code)
		}
		token := first.sessionOf(fresh).refreshToken
		if want == "" {
			want = token
		}
		if token != want {
			t.Fatalf("answer %d carries another refresh token: two rotations", i)
		}
	}
}

// TestReplicasShareTerminalAnswers: a refresh token one replica learned is
// spent costs the other no WorkOS call.
func TestReplicasShareTerminalAnswers(t *testing.T) {
	first, second := replicaPair(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"))
	sealed, issued := first.session(fakeworkos.UserBob, "", -time.Minute)
	first.fake.RevokeSession(issued.SessionID)
	for _, env := range []*testEnv{first, second, second, first} {
		if w := env.do(apiRequest("wos-session=" + sealed)); w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d for a revoked session", w.Code)
		}
	}
	if got := first.fake.RefreshCalls(); got != 1 {
		t.Fatalf("%d WorkOS refresh calls for one spent token on two replicas, want 1", got)
	}
}

// TestSignOutReachesEveryReplica: the replica that did not sign the user
// out drops its cached session within a second.
func TestSignOutReachesEveryReplica(t *testing.T) {
	first, second := replicaPair(t, redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"))
	sealed, _ := first.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	for _, env := range []*testEnv{first, second} {
		if w := env.do(apiRequest("wos-session=" + sealed)); w.Code != http.StatusOK {
			t.Fatalf("before sign-out: %d", w.Code)
		}
	}
	first.do(document("/auth/sign-out", "wos-session="+sealed))
	if w := first.do(apiRequest("wos-session=" + sealed)); w.Code != http.StatusUnauthorized {
		t.Fatalf("the replica that signed out still accepts the cookie: %d", w.Code)
	}
	deadline := time.Now().Add(time.Second)
	for second.do(apiRequest("wos-session="+sealed)).Code == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the other replica still accepts the cookie a second after the sign-out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaStartedAfterASignOutRefusesIt: a replica reads the recent
// sign-outs when it starts.
func TestReplicaStartedAfterASignOutRefusesIt(t *testing.T) {
	redisURL := redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL")
	first, _ := replicaPair(t, redisURL)
	sealed, _ := first.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	first.do(document("/auth/sign-out", "wos-session="+sealed))
	api, _ := url.Parse(first.api.URL)
	late := newTestEnv(t, func(c *Config) {
		c.MiddlewareAuth.Enabled = true
		c.APIPort = api.Port()
	})
	opts, _ := parseRedisURL(redisURL, os.Getenv)
	store := newReplicaStore(newRedisClient(opts), first.ak.replicas.prefix, late.ak.s.keyring, late.ak.sessions, late.ak.revocations, late.ak.log)
	t.Cleanup(func() { store.stopped.Store(true) })
	late.ak.replicas = store
	deadline := time.Now().Add(time.Second)
	for late.do(apiRequest("wos-session="+sealed)).Code == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("a replica started after the sign-out accepts the cookie")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisTroubleNeverFailsARequest: a dead, a silent and a slow Redis
// leave every replica working alone, each request within its usual time.
func TestRedisTroubleNeverFailsARequest(t *testing.T) {
	slow := redisDelayProxy(t, strings.TrimPrefix(redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL"), "redis://"), 300*time.Millisecond)
	tests := []struct{ name, url string }{
		{"nothing listening", "redis://" + redisClosedPort(t)},
		{"accepts, never answers", "redis://" + redisSilentListener(t)},
		{"answers after 300 ms", "redis://" + slow},
	}
	for _, tt := range tests {
		first, _ := replicaPair(t, tt.url)
		logs := first.logs
		for i := 0; i < 3; i++ {
			sealed, _ := first.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, -time.Minute)
			start := time.Now()
			w := first.do(apiRequest("wos-session=" + sealed))
			if w.Code != http.StatusOK || setCookie(w, "wos-session") == "" {
				t.Fatalf("%s: status %d, no refreshed cookie", tt.name, w.Code)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("%s: a refresh took %v", tt.name, took)
			}
		}
		if n := strings.Count(logs.String(), "redis_unavailable"); n > 1 {
			t.Errorf("%s: %d redis_unavailable lines, want at most one", tt.name, n)
		}
	}
}

// TestRedisRoundTrips counts the commands each kind of request sends to
// Redis (the server's own statistics, without the sign-out reader's
// XREAD): none for a cached or a cold session, five for the replica that
// refreshes (look for a result, lock, look again, store, unlock) and one
// for a replica that adopts the stored result.
func TestRedisRoundTrips(t *testing.T) {
	redisURL := redisTestEnv(t, "AUTHKIT_TEST_REDIS_URL")
	first, second := replicaPair(t, redisURL)
	stats := redisTestClient(t, redisURL, nil)
	commands := func() int {
		ctx, cancel := redisCall()
		defer cancel()
		reply, err := redisDo(ctx, stats, "INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, line := range strings.Split(reply.str, "\n") {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
			if !ok || name == "xread" || name == "info" || strings.HasPrefix(name, "config") {
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			c, _ := strconv.Atoi(calls)
			n += c
		}
		return n
	}
	reset := func() {
		ctx, cancel := redisCall()
		defer cancel()
		if _, err := redisDo(ctx, stats, "CONFIG", "RESETSTAT"); err != nil {
			t.Fatal(err)
		}
	}
	valid, _ := first.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	expired, _ := first.session(fakeworkos.UserBob, "", -time.Minute)
	steps := []struct {
		name   string
		env    *testEnv
		cookie string
		want   int
	}{
		{"a cold session", first, valid, 0},
		{"the same session, cached", first, valid, 0},
		{"an expired token, refreshed", first, expired, 5},
		{"the same cookie on the other replica, which adopts the result", second, expired, 1},
	}
	for _, step := range steps {
		reset()
		if w := step.env.do(apiRequest("wos-session=" + step.cookie)); w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", step.name, w.Code)
		}
		if got := commands(); got != step.want {
			t.Errorf("%s: %d Redis commands, want %d", step.name, got, step.want)
		}
	}
	if got := first.fake.RefreshCalls(); got != 1 {
		t.Errorf("%d WorkOS refresh calls, want 1", got)
	}
}
