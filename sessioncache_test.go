package authkit

import (
	"hash/maphash"
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
	env.ak.sessions = newSessionCache(16, maxCachedBytes)
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
	env.ak.sessions = newSessionCache(16, maxCachedBytes)
	sealed, _ := env.session(fakeworkos.UserBob, "", 40*time.Second) // refresh point: exp - 30 s
	env.do(document("/page", "wos-session="+sealed))
	if env.ak.sessions.len() != 1 || env.fake.RefreshCalls() != 0 {
		t.Fatalf("entries %d, refreshes %d", env.ak.sessions.len(), env.fake.RefreshCalls())
	}
	env.shiftClock(11 * time.Second)
	w := env.do(document("/page", "wos-session="+sealed))
	if env.fake.RefreshCalls() != 1 || setCookie(w, "wos-session") == "" {
		t.Fatalf("past the refresh point the cached session was still served (refreshes %d)", env.fake.RefreshCalls())
	}
}

func TestSignOutForgetsTheCachedSession(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ak.sessions = newSessionCache(16, maxCachedBytes)
	sealed, _ := env.session(fakeworkos.UserBob, "", 0)
	env.do(document("/page", "wos-session="+sealed))
	env.do(document("/auth/sign-out", "wos-session="+sealed))
	if env.ak.sessions.len() != 0 {
		t.Fatalf("%d entries after sign-out", env.ak.sessions.len())
	}
}

// testPrincipal is a session principal of an ordinary size.
func testPrincipal(i int) *principal {
	p := &principal{kind: signedInBySession}
	var v identityValues
	v[fieldUserID] = "user_01HZA1CEADM1N" + strconv.Itoa(100000000+i)
	v[fieldUserEmail] = "user" + strconv.Itoa(i) + "@example.com"
	v[fieldUserFirstName] = "Alice"
	v[fieldUserLastName] = "Example"
	v[fieldUserName] = "Alice Example"
	v[fieldSessionID] = "session_01HZSESSI0N" + strconv.Itoa(100000000+i)
	v[fieldOrganizationID] = "org_01HZACMEC0RP00000000000000"
	v[fieldRole] = "member"
	v[fieldRoles] = "member"
	v[fieldPermissions] = "posts:read,posts:write"
	setValues(p, &v, "")
	return p
}

// testSeal looks like a session cookie's value: what makes entries apart
// is its end, as in a seal.
func testSeal(i int) string {
	return "Fe26.2*1*" + strings.Repeat("s", 2800) + "*" + strings.Repeat("m", 33) + strconv.Itoa(1000000000+i) + "~2"
}

func testNamespace(t testing.TB) *cacheNamespace {
	return namespaceFor(t.Name())
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := newSessionCache(64, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		storeCached(c, ns, testSeal(i), testPrincipal(i), now.Add(time.Minute), now)
		if c.len() > 64 {
			t.Fatalf("%d entries after %d inserts, bound 64", c.len(), i+1)
		}
	}
	if lookupCached(c, ns, testSeal(999), now.Sub(processStart)) == nil {
		t.Fatal("the newest entry was evicted")
	}
}

func TestSessionCacheIsBoundedInBytes(t *testing.T) {
	c := newSessionCache(1000, 64<<10)
	ns := testNamespace(t)
	now := time.Now()
	big := &principal{kind: signedInBySession} // a principal with a huge claim
	var v identityValues
	v[fieldSessionID] = "session_01HZBIG"
	v[fieldPermissions] = strings.Repeat("p", 9000)
	setValues(big, &v, "")
	for i := 0; i < 100; i++ {
		storeCached(c, ns, testSeal(i), big, now.Add(time.Minute), now)
		if c.bytes > c.maxBytes {
			t.Fatalf("%d bytes after %d inserts, bound %d", c.bytes, i+1, c.maxBytes)
		}
	}
	if c.len() == 0 || c.len() > 7 {
		t.Fatalf("%d entries of 10 KB within 64 KB", c.len())
	}
}

func TestSessionCacheKeepsNamespacesApart(t *testing.T) {
	c := newSessionCache(4, maxCachedBytes)
	a, b := namespaceFor(t.Name()+"/a"), namespaceFor(t.Name()+"/b")
	now := time.Now()
	storeCached(c, a, testSeal(1), testPrincipal(1), now.Add(time.Minute), now)
	tests := []struct {
		name   string
		ns     *cacheNamespace
		cookie string
		at     time.Time
		hit    bool
	}{
		{"same namespace and cookie", a, testSeal(1), now, true},
		{"other namespace", b, testSeal(1), now, false},
		{"other cookie", a, testSeal(2), now, false},
		{"at the end of its time", a, testSeal(1), now.Add(time.Minute), false},
	}
	for _, tt := range tests {
		if hit := lookupCached(c, tt.ns, tt.cookie, tt.at.Sub(processStart)) != nil; hit != tt.hit {
			t.Errorf("%s: hit %v, want %v", tt.name, hit, tt.hit)
		}
	}
}

// TestSessionCacheHashCollisionIsNotAHit files an entry under another
// credential's key, as a collision of the 64-bit hash would: the
// credential's end, which the entry keeps, tells them apart.
func TestSessionCacheHashCollisionIsNotAHit(t *testing.T) {
	c := newSessionCache(4, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	storeCached(c, ns, testSeal(1), testPrincipal(1), now.Add(time.Minute), now)
	c.index[maphash.String(ns.seed, testSeal(2))] = c.index[maphash.String(ns.seed, testSeal(1))]
	if lookupCached(c, ns, testSeal(2), now.Sub(processStart)) != nil {
		t.Fatal("a credential whose hash collides was taken for the cached one")
	}
}

func TestSessionCacheSweepsExpiredEntries(t *testing.T) {
	c := newSessionCache(100000, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	const n = 1000
	for i := 0; i < n; i++ {
		storeCached(c, ns, testSeal(i), testPrincipal(i), now.Add(time.Second), now)
	}
	later := now.Add(time.Minute)
	// The hand moves cacheSweepSteps slots per insert: one turn of the
	// ring reclaims every expired entry.
	for i := 0; i < n/cacheSweepSteps+1; i++ {
		storeCached(c, ns, testSeal(n+i), testPrincipal(n+i), later.Add(time.Hour), later)
	}
	if got, want := c.len(), n/cacheSweepSteps+1; got != want {
		t.Fatalf("%d entries after one turn of the hand; want only the %d live ones", got, want)
	}
}

// TestSessionCacheEvictsOldInsertsFirst: under pressure the entries that
// go are the oldest inserts; a new entry survives a whole turn of the hand.
func TestSessionCacheEvictsOldInsertsFirst(t *testing.T) {
	const size = 32
	c := newSessionCache(size, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	for i := 0; i < 3*size; i++ {
		storeCached(c, ns, testSeal(i), testPrincipal(i), now.Add(time.Hour), now)
		if lookupCached(c, ns, testSeal(i), now.Sub(processStart)) == nil {
			t.Fatalf("insert %d was evicted at once", i)
		}
	}
	kept := 0
	for i := 2 * size; i < 3*size; i++ {
		if lookupCached(c, ns, testSeal(i), now.Sub(processStart)) != nil {
			kept++
		}
	}
	if kept < size/2 {
		t.Fatalf("only %d of the last %d inserts are cached", kept, size)
	}
}

// TestSessionCacheInsertWorkIsBounded fills the cache with entries that
// have not been through a turn of the hand: an insert still finds its slot
// within cacheEvictSteps visits, whatever the size of the cache.
func TestSessionCacheInsertWorkIsBounded(t *testing.T) {
	c := newSessionCache(4096, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	for i := 0; i < 4096; i++ {
		storeCached(c, ns, testSeal(i), testPrincipal(i), now.Add(time.Hour), now)
	}
	storeCached(c, ns, testSeal(5000), testPrincipal(5000), now.Add(time.Hour), now)
	visited := 0
	for _, e := range c.ring {
		if e != nil && !e.young {
			visited++
		}
	}
	if visited > cacheEvictSteps {
		t.Fatalf("one insert visited %d entries; the bound is %d", visited, cacheEvictSteps)
	}
	if c.len() != 4096 {
		t.Fatalf("%d entries, want the bound 4096", c.len())
	}
}

func TestSessionCacheRemovesEverySessionCookie(t *testing.T) {
	c := newSessionCache(16, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	p := testPrincipal(7)
	for i := 0; i < 3; i++ { // one session, three cookies (refreshes, a switch)
		storeCached(c, ns, testSeal(i), p, now.Add(time.Minute), now)
	}
	storeCached(c, ns, testSeal(9), testPrincipal(9), now.Add(time.Minute), now)
	c.removeSession(fieldValue(p, fieldSessionID))
	for i := 0; i < 3; i++ {
		if lookupCached(c, ns, testSeal(i), now.Sub(processStart)) != nil {
			t.Errorf("cookie %d of the signed-out session is still cached", i)
		}
	}
	if lookupCached(c, ns, testSeal(9), now.Sub(processStart)) == nil || c.len() != 1 {
		t.Errorf("another session's entry went too (%d left)", c.len())
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
			env.ak.sessions = newSessionCache(mode.cache, maxCachedBytes)
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

// TestSessionCacheCostIsHonest measures the heap that cached sessions of an
// ordinary size hold and checks it against what the cache counts, so its
// byte bound means what it says, and against SPEC's target of 1 KiB.
func TestSessionCacheCostIsHonest(t *testing.T) {
	const n = 20000
	c := newSessionCache(n, 1<<40)
	ns := testNamespace(t)
	now := time.Now()
	seals := make([]string, n)
	for i := range seals {
		seals[i] = testSeal(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		storeCached(c, ns, seals[i], testPrincipal(i), now.Add(time.Hour), now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	measured := int64(after.HeapAlloc-before.HeapAlloc) / n
	counted := c.bytes / n
	t.Logf("per cached session: %d bytes measured, %d counted", measured, counted)
	if measured > 1024 {
		t.Errorf("a cached session holds %d bytes, more than 1 KiB", measured)
	}
	if counted < measured*3/4 || counted > measured*5/4 {
		t.Errorf("the cache counts %d bytes per session, the heap holds %d", counted, measured)
	}
	runtime.KeepAlive(seals)
}

// TestSessionCacheLookupsRunBesideInserts: lookups read the index while
// inserts and evictions write it; the race detector and the runtime's
// map-access check watch them.
func TestSessionCacheLookupsRunBesideInserts(t *testing.T) {
	c := newSessionCache(64, maxCachedBytes)
	ns := testNamespace(t)
	now := time.Now()
	seals := make([]string, 512)
	for i := range seals {
		seals[i] = testSeal(i)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				lookupCached(c, ns, seals[i%len(seals)], now.Sub(processStart))
			}
		}()
	}
	for i := 0; i < 4*len(seals); i++ {
		storeCached(c, ns, seals[i%len(seals)], testPrincipal(i%len(seals)), now.Add(time.Minute), now)
	}
	close(stop)
	wg.Wait()
	if n := c.len(); n != 64 {
		t.Fatalf("%d entries, want the bound, 64", n)
	}
}
