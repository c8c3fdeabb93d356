package hostile

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Bounded work": a forged or spent cookie, however often sent,
// costs no WorkOS call beyond the first.

// forgedSeal is shaped like an iron seal of password id 1 (the configured
// one) with random salts, IV, ciphertext and MAC:
// Fe26.2*1*<64 hex>*<22 b64url>*<b64url>**<64 hex>*<43 b64url>~2.
func forgedSeal() string {
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return "Fe26.2*1*" + hex.EncodeToString(random(32)) + "*" + b64(random(16)) + "*" + b64(random(1024)) +
		"**" + hex.EncodeToString(random(32)) + "*" + b64(random(32)) + "~2"
}

// outcome is one answer of a concurrent run.
type outcome struct {
	i      int
	status int
	ok     bool // the answer is the one wanted for its kind
	err    error
}

// concurrently sends n requests from workers goroutines; build makes
// request i, check judges its answer.
func (s *stack) concurrently(n, workers int, build func(i int) *http.Request, check func(i int, resp *http.Response) bool) []outcome {
	s.t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = build(i)
	}
	out := make([]outcome, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				resp, _, err := send(s.client, reqs[i])
				out[i] = outcome{i: i, err: err}
				if err == nil {
					out[i].status, out[i].ok = resp.StatusCode, check(i, resp)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// report fails the test for every unwanted answer (the first few shown)
// and logs how many of each status there were.
func report(t *testing.T, what string, out []outcome, elapsed time.Duration) {
	t.Helper()
	statuses := map[int]int{}
	bad := 0
	for _, o := range out {
		statuses[o.status]++
		if o.err != nil || !o.ok || o.status >= 500 {
			if bad++; bad <= 5 {
				t.Errorf("%s %d: status %d, error %v", what, o.i, o.status, o.err)
			}
		}
	}
	if bad > 5 {
		t.Errorf("… %d unwanted answers in all", bad)
	}
	var counts []string
	for status, n := range statuses {
		counts = append(counts, fmt.Sprintf("%d×%d", n, status))
	}
	sort.Strings(counts)
	t.Logf("%d %s in %s: %s", len(out), what, elapsed.Round(time.Millisecond), strings.Join(counts, ", "))
}

// TestForgedCookieFloodCostsNoWorkOSCall sends 2 000 distinct forged
// session cookies concurrently, half as documents, half as API calls, on
// a protected path: each is signed out (the sign-in redirect, or 401),
// never a 5xx, and WorkOS sees no authenticate call and no JWKS fetch.
func TestForgedCookieFloodCostsNoWorkOSCall(t *testing.T) {
	s := startStack(t, nil)
	const n, workers = 2000, 16
	authenticate, jwks := s.fake.Calls(fakeworkos.EndpointAuthenticate), s.fake.Calls(fakeworkos.EndpointJWKS)
	start := time.Now()
	out := s.concurrently(n, workers, func(i int) *http.Request {
		accept := "json"
		if i%2 == 0 {
			accept = "html"
		}
		return s.request(http.MethodGet, protectedPath, accept, sessionCookie+"="+forgedSeal(), nil)
	}, func(i int, resp *http.Response) bool {
		if i%2 == 0 {
			return s.isSignInRedirect(resp)
		}
		return resp.StatusCode == http.StatusUnauthorized
	})
	report(t, "forged cookies", out, time.Since(start))
	if d := s.fake.Calls(fakeworkos.EndpointAuthenticate) - authenticate; d != 0 {
		t.Errorf("%d WorkOS authenticate calls for forged cookies, want 0", d)
	}
	if d := s.fake.Calls(fakeworkos.EndpointJWKS) - jwks; d != 0 {
		t.Errorf("%d JWKS fetches for forged cookies, want 0", d)
	}
}

// TestSpentCookieReplayCostsOneRefresh replays, 1 000 times from 8
// clients at once, a cookie whose access token has expired and whose
// refresh token WorkOS revoked: WorkOS sees at most one refresh, every
// answer is signed out (the sign-in redirect, or 401), never a 5xx.
func TestSpentCookieReplayCostsOneRefresh(t *testing.T) {
	s := startStack(t, nil)
	cookie, issued := s.session(fakeworkos.UserBob, "", -time.Minute)
	s.fake.RevokeSession(issued.SessionID)
	const n, workers = 1000, 8
	refreshes := s.fake.RefreshCalls()
	start := time.Now()
	out := s.concurrently(n, workers, func(i int) *http.Request {
		accept := "json"
		if i%2 == 0 {
			accept = "html"
		}
		return s.request(http.MethodGet, protectedPath, accept, cookie, nil)
	}, func(i int, resp *http.Response) bool {
		if i%2 == 0 {
			return s.isSignInRedirect(resp)
		}
		return resp.StatusCode == http.StatusUnauthorized
	})
	report(t, "replays", out, time.Since(start))
	if d := s.fake.RefreshCalls() - refreshes; d > 1 {
		t.Errorf("%d WorkOS refresh calls for %d replays of one spent cookie, want at most 1", d, n)
	} else {
		t.Logf("%d WorkOS refresh calls", d)
	}
}
