package scale

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reqKind is a request shape.
type reqKind struct {
	name, path, accept string
	public             bool
}

var (
	kindDocument = reqKind{"document", "/app/dashboard", "text/html,application/xhtml+xml,*/*;q=0.8", false}
	kindAPI      = reqKind{"api", "/api/items", "application/json", false}
	kindPublic   = reqKind{"public", "/public/info", "text/html", true}
)

// Headers between the harness and its upstream. The plugin strips only
// its own X-Workos-* names, so these pass through Traefik unchanged.
const (
	// expectHeader tells the upstream who the request is from:
	// "<user id>/<session id>" for a real user, or one of the words below.
	expectHeader = "X-Scale-Expect"
	// verdictHeader is the upstream's answer: verdictOK, or what was wrong.
	verdictHeader = "X-Scale-Identity"

	expectAnonymous = "anonymous"
	expectReplay    = "replay"
	expectForged    = "forged"

	verdictOK        = "ok"        // the identity the request expected
	verdictSignedIn  = "signed-in" // an attacker's request the plugin signed in
	verdictMismatch  = "mismatch"  // another user or session
	verdictMissing   = "missing"   // a real user's request without identity
	verdictAnonymous = "anonymous" // no identity, as expected
)

// upstream is the service behind Traefik. It checks that a request
// carries the identity of the session that sent it (X-Workos-User-Id and
// X-Workos-Session-Id) and says so in verdictHeader, and counts what it
// got wrong itself, so no misattribution can hide in the client.
type upstream struct {
	wrong atomic.Int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	expect := r.Header.Get(expectHeader)
	user, sid := r.Header.Get("X-Workos-User-Id"), r.Header.Get("X-Workos-Session-Id")
	verdict := verdictAnonymous
	switch {
	case expect == "" || expect == expectAnonymous || expect == expectForged:
		// "" is a request that claims no one: the readiness probe.
		if user != "" {
			verdict = verdictMismatch
		}
	case expect == expectReplay:
		if user != "" {
			verdict = verdictSignedIn
		}
	case user == "":
		verdict = verdictMissing
	case expect == user+"/"+sid:
		verdict = verdictOK
	default:
		verdict = verdictMismatch
	}
	if verdict == verdictMismatch || verdict == verdictMissing {
		u.wrong.Add(1)
	}
	w.Header().Set(verdictHeader, verdict)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// answer is one response as the harness reads it.
type answer struct {
	status     int
	verdict    string
	setCookies []string
	dur        time.Duration
	err        error
}

// send makes one request and reads the whole answer.
func send(ctx context.Context, client *http.Client, url string, kind reqKind, cookie, expect string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+kind.path, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Accept", kind.accept)
	req.Header.Set("User-Agent", "authkit-scale")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	req.Header.Set(expectHeader, expect)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err, dur: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return answer{
		status:     resp.StatusCode,
		verdict:    resp.Header.Get(verdictHeader),
		setCookies: resp.Header.Values("Set-Cookie"),
		dur:        time.Since(start),
	}
}

// newClient is a browser-like client: no redirects followed, a timeout on
// every request, keep-alive connections.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second,
			DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// openLoop calls fire at rate per second from its own goroutine each,
// whatever the answers' latency, until ctx ends, and waits for the calls
// in flight. A call that would exceed maxInFlight is not made: shed is
// called instead.
func openLoop(ctx context.Context, rate float64, fire func(), shed func()) {
	if rate <= 0 {
		<-ctx.Done()
		return
	}
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			wg.Wait()
			return
		}
		if inFlight.Load() >= maxInFlight {
			shed()
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			fire()
		}()
	}
}

// examples keeps a few descriptions of each kind of failure.
type examples struct {
	mu    sync.Mutex
	order []string
	count map[string]int
	some  map[string][]string
}

func newExamples() *examples {
	return &examples{count: map[string]int{}, some: map[string][]string{}}
}

func (e *examples) add(kind, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count[kind] == 0 {
		e.order = append(e.order, kind)
	}
	e.count[kind]++
	if len(e.some[kind]) < 3 {
		e.some[kind] = append(e.some[kind], detail)
	}
}

func (e *examples) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, k := range e.order {
		fmt.Fprintf(&b, "  %s: %d\n", k, e.count[k])
		for _, d := range e.some[k] {
			fmt.Fprintf(&b, "    e.g. %s\n", d)
		}
	}
	return b.String()
}

// pick chooses the session of a signed-in request: the hot subset with
// probability hotShare, else any session.
func (r *run) pick() *userSession {
	if mrand.Float64() < hotShare {
		return r.sessions[mrand.IntN(r.hot)]
	}
	return r.sessions[mrand.IntN(len(r.sessions))]
}

// userRequest is one real user's request to target: an anonymous public
// page, or a page load or API call of a signed-in session. book is false
// for the baseline Traefik: only the latency is kept.
func (r *run) userRequest(target string, book bool) {
	ctx := r.ctx
	if mrand.Float64() < anonymousShare {
		a := send(ctx, r.userClient, target, kindPublic, "", expectAnonymous)
		r.bookUser(a, book)
		if book && a.err == nil && a.verdict != verdictAnonymous {
			r.tl.add(time.Now(), mIdentity, 1)
			r.failures.add("identity on an anonymous request", fmt.Sprintf("status %d, upstream verdict %q", a.status, a.verdict))
		}
		return
	}
	s := r.pick()
	cookie, sid, ok := s.cookieHeader()
	if !ok {
		s = r.sessions[mrand.IntN(len(r.sessions))] // signing in again: another user
		if cookie, sid, ok = s.cookieHeader(); !ok {
			return
		}
	}
	kind := kindAPI
	if mrand.Float64() < documentShare {
		kind = kindDocument
	}
	a := send(ctx, r.userClient, target, kind, cookie, s.userID+"/"+sid)
	r.bookUser(a, book)
	if book {
		r.settle(s, sid, kind, a)
	}
}

// bookUser books a user's answer: count, latency, 5xx, transport error.
func (r *run) bookUser(a answer, book bool) {
	now := time.Now()
	if !book {
		if a.err == nil {
			r.baselineMu.Lock()
			r.baselineLat = append(r.baselineLat, a.dur)
			r.baselineMu.Unlock()
		}
		return
	}
	if a.err != nil {
		r.tl.add(now, mUserErr, 1)
		r.failures.add("users' transport error or timeout", a.err.Error())
		return
	}
	r.tl.add(now, mUserReq, 1)
	r.tl.latency(now, a.dur)
	if a.dur > stallThreshold {
		r.tl.add(now, mSlow, 1)
	}
	if a.status >= 500 {
		r.tl.add(now, mUser5xx, 1)
		r.failures.add("users' 5xx", fmt.Sprintf("status %d", a.status))
	}
}

// settle checks a signed-in session's answer and applies its cookies.
func (r *run) settle(s *userSession, sid string, kind reqKind, a answer) {
	if a.err != nil {
		return
	}
	now := time.Now()
	switch {
	case a.status >= 500:
	case a.status == http.StatusOK && a.verdict == verdictOK:
		r.tl.add(now, mSignedIn, 1)
		r.tl.add(now, mSignedInAll, 1)
	case a.status == http.StatusOK:
		r.tl.add(now, mIdentity, 1)
		r.failures.add("wrong or missing identity upstream", fmt.Sprintf("session %d (%s) %s: upstream verdict %q", s.idx, sid, kind.name, a.verdict))
	case !r.fake.SessionRevoked(sid):
		r.tl.add(now, mFailed, 1)
		r.failures.add("signed-in request of a live session refused", fmt.Sprintf("session %d (%s) %s: status %d", s.idx, sid, kind.name, a.status))
	}
	if len(a.setCookies) == 0 {
		return
	}
	s.mu.Lock()
	if s.sid != sid || !s.ready {
		s.mu.Unlock()
		return // an answer for a session the user has already replaced
	}
	written, deleted := applySetCookies(s.jar, a.setCookies, now)
	if deleted {
		s.ready = false
	}
	s.mu.Unlock()
	if written {
		r.tl.add(now, mRefreshed, 1)
	}
	if !deleted {
		return
	}
	if !r.fake.SessionRevoked(sid) {
		r.tl.add(now, mLost, 1)
		r.failures.add("session cookie deleted while the session was alive", fmt.Sprintf("session %d (%s) %s: status %d", s.idx, sid, kind.name, a.status))
	}
	// The user signs in again (a new WorkOS session), a few at a time.
	go func() {
		r.reissueSem <- struct{}{}
		defer func() { <-r.reissueSem }()
		if err := s.reissue(r.minter, r.rec, r.p.tokenTTL); err != nil {
			r.failures.add("signing a lost session in again", err.Error())
		}
	}()
}

// warmUp touches every session once, in a random order, with as many
// requests at once as warmupWorkers: the plugin's cache fills.
func (r *run) warmUp(ctx context.Context) {
	order := mrand.Perm(len(r.sessions))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < warmupWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(order) {
					return
				}
				s := r.sessions[order[i]]
				cookie, sid, ok := s.cookieHeader()
				if !ok {
					continue
				}
				a := send(ctx, r.userClient, r.traefik.url, kindAPI, cookie, s.userID+"/"+sid)
				r.bookUser(a, true)
				r.settle(s, sid, kindAPI, a)
			}
		}()
	}
	wg.Wait()
}

// usersLoad runs the real users' traffic on target until stop ends; the
// requests in flight then finish (their own timeout bounds them).
func (r *run) usersLoad(stop context.Context, target string, book bool) {
	openLoop(stop, r.p.rate, func() { r.userRequest(target, book) }, func() {
		if book {
			r.tl.add(time.Now(), mShed, 1)
		}
	})
}
