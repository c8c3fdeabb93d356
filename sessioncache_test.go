package authkit

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// brokenVerifier refuses every token: a request that still signs in was
// answered from the cache.
func brokenVerifier() *tokenVerifier {
	never := func() time.Time { return time.Now() }
	keys := newJWKSCache("http://127.0.0.1:1/none", &http.Client{}, never)
	keys.fetched, keys.fetchedAt, keys.lastAttempt = true, time.Now(), time.Now()
	return &tokenVerifier{keys: keys, now: never}
}

func TestSignedInRequestsAreServedFromTheCache(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ak.sessions = newSessionCache(16)
	sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	env.do(document("/page", "wos-session="+sealed))
	if env.ak.sessions.len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", env.ak.sessions.len())
	}
	env.ak.verifier = brokenVerifier()
	w := env.do(document("/page", "wos-session="+sealed))
	if w.Code != http.StatusOK || env.upstream.last().Get("X-Workos-User-Id") != fakeworkos.UserAlice ||
		env.upstream.last().Get("X-Workos-Session") != sealed {
		t.Fatalf("cache hit: %d, user %q", w.Code, env.upstream.last().Get("X-Workos-User-Id"))
	}
	// Another cookie of the same user is not a hit: it is verified, fails
	// with this verifier, and is refreshed.
	other, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	env.do(document("/page", "wos-session="+other))
	if env.fake.RefreshCalls() != 1 {
		t.Fatalf("refreshes %d: an uncached cookie was not verified", env.fake.RefreshCalls())
	}
}

func TestCachedSessionEndsAtTheRefreshPoint(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ak.sessions = newSessionCache(16)
	sealed, _ := env.session(fakeworkos.UserBob, "", 40*time.Second) // refresh point: exp - 30 s
	env.do(document("/page", "wos-session="+sealed))
	if env.ak.sessions.len() != 1 || env.fake.RefreshCalls() != 0 {
		t.Fatalf("entries %d, refreshes %d", env.ak.sessions.len(), env.fake.RefreshCalls())
	}
	env.ak.now = func() time.Time { return time.Now().Add(11 * time.Second) }
	w := env.do(document("/page", "wos-session="+sealed))
	if env.fake.RefreshCalls() != 1 || setCookie(w, "wos-session") == "" {
		t.Fatalf("past the refresh point the cached session was still served (refreshes %d)", env.fake.RefreshCalls())
	}
}

func TestSignOutForgetsTheCachedSession(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ak.sessions = newSessionCache(16)
	sealed, _ := env.session(fakeworkos.UserBob, "", 0)
	env.do(document("/page", "wos-session="+sealed))
	env.do(document("/auth/sign-out", "wos-session="+sealed))
	if env.ak.sessions.len() != 0 {
		t.Fatalf("%d entries after sign-out", env.ak.sessions.len())
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := newSessionCache(64)
	now := time.Now()
	claims := &tokenClaims{Subject: "u"}
	for i := 0; i < 1000; i++ {
		putSession(c, "ns", "cookie-"+strconv.Itoa(i), &session{userID: "u"}, claims, nil, now.Add(time.Minute), now)
		if c.len() > 64 {
			t.Fatalf("%d entries after %d inserts, bound 64", c.len(), i+1)
		}
	}
	if lookupSession(c, "ns", "cookie-999", now) == nil {
		t.Fatal("the newest entry was evicted")
	}
}

func TestSessionCacheKeepsNamespacesApart(t *testing.T) {
	c := newSessionCache(4)
	now := time.Now()
	putSession(c, "a", "cookie", &session{userID: "u"}, &tokenClaims{}, nil, now.Add(time.Minute), now)
	tests := []struct {
		name, namespace, cookie string
		at                      time.Time
		hit                     bool
	}{
		{"same namespace and cookie", "a", "cookie", now, true},
		{"other namespace", "b", "cookie", now, false},
		{"other cookie", "a", "cookie2", now, false},
		{"after validUntil", "a", "cookie", now.Add(time.Minute), false},
	}
	for _, tt := range tests {
		if hit := lookupSession(c, tt.namespace, tt.cookie, tt.at) != nil; hit != tt.hit {
			t.Errorf("%s: hit %v, want %v", tt.name, hit, tt.hit)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so benchmarks
// measure the middleware rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkSignedInRequest measures ServeHTTP for a signed-in request in
// front of an upstream that does nothing: warm is a cache hit, cold unseals
// and verifies every time; baseline is the upstream alone, with the same
// per-request copying of the request, for comparison.
func BenchmarkSignedInRequest(b *testing.B) {
	for _, mode := range []struct {
		name  string
		cache int
	}{{"baseline", 0}, {"warm", 16}, {"cold", 0}} {
		mode := mode
		b.Run(mode.name, func(b *testing.B) {
			env := newTestEnv(b, nil)
			env.ak.sessions = newSessionCache(mode.cache)
			env.ak.next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			var handler http.Handler = env.ak
			if mode.name == "baseline" {
				handler = env.ak.next
			}
			sealed, _ := env.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
			base := httptest.NewRequest(http.MethodGet, "http://app.test/page?x=1", nil)
			base.Header.Set("Accept", documentAccept)
			base.Header.Set("Cookie", "theme=dark; wos-session="+sealed)
			base.Header.Set("User-Agent", "bench")
			w := &discardWriter{h: http.Header{}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := *base
				r.Header = base.Header.Clone()
				for k := range w.h {
					delete(w.h, k)
				}
				handler.ServeHTTP(w, &r)
			}
		})
	}
}

func TestSessionCacheIsBoundedInBytes(t *testing.T) {
	c := newSessionCache(1000)
	c.maxBytes = 64 << 10
	now := time.Now()
	big := strings.Repeat("s", 9000) // a session with large user metadata
	for i := 0; i < 100; i++ {
		putSession(c, "ns", big+strconv.Itoa(i), &session{userID: "u"}, &tokenClaims{}, nil, now.Add(time.Minute), now)
		if c.bytes.Load() > c.maxBytes {
			t.Fatalf("%d bytes after %d inserts, bound %d", c.bytes.Load(), i+1, c.maxBytes)
		}
	}
	if c.len() == 0 || c.len() > 8 {
		t.Fatalf("%d entries of 10 KB within 64 KB", c.len())
	}
}

func TestSessionCacheSweepsExpiredEntries(t *testing.T) {
	c := newSessionCache(100000)
	now := time.Now()
	for i := 0; i < cachePruneEvery-1; i++ {
		putSession(c, "ns", "old-"+strconv.Itoa(i), &session{}, &tokenClaims{}, nil, now.Add(time.Second), now)
	}
	later := now.Add(time.Minute)
	putSession(c, "ns", "new", &session{}, &tokenClaims{}, nil, later.Add(time.Minute), later)
	if c.len() != 1 || c.bytes.Load() != lookupSession(c, "ns", "new", later).cost {
		t.Fatalf("%d entries, %d bytes after the sweep; want only the live one", c.len(), c.bytes.Load())
	}
}

func TestSessionCacheSweepsAfterAQuarterOfItsSize(t *testing.T) {
	c := newSessionCache(100000)
	now := time.Now()
	later := now.Add(time.Minute)
	for i := 0; i < 4096; i++ {
		putSession(c, "ns", "live-"+strconv.Itoa(i), &session{}, &tokenClaims{}, nil, later.Add(time.Hour), now)
	}
	c.evict(now, "") // start counting inserts from a sweep
	putSession(c, "ns", "short", &session{}, &tokenClaims{}, nil, now.Add(time.Second), now)
	present := func() bool { return lookupSession(c, "ns", "short", now) != nil }
	for i := 0; i < 2000; i++ {
		putSession(c, "ns", "new-"+strconv.Itoa(i), &session{}, &tokenClaims{}, nil, later.Add(time.Hour), later)
		if i == cachePruneEvery && !present() {
			t.Fatalf("the expired entry was swept within %d inserts into a cache of 4096", cachePruneEvery)
		}
	}
	if present() {
		t.Fatal("the expired entry outlived 2000 inserts into a cache of 4096")
	}
}
