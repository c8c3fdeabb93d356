package authkit

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

const (
	// refreshGrace keeps a refresh result for requests that still carry the
	// old refresh token: a tab that lost the response, or requests that were
	// in flight during the refresh. WorkOS refresh tokens are single-use, so
	// without it such a request would get invalid_grant and sign the user out.
	refreshGrace = 2 * time.Minute
	// A transient failure is shared by the requests that follow for its
	// Retry-After, clamped to these bounds, so an outage at WorkOS is not
	// met with one refresh call per request.
	refreshRetryMin = time.Second
	refreshRetryMax = 10 * time.Second
	// terminalMemory is how long a terminal answer is remembered (SPEC
	// "Bounded work"): replaying a spent or revoked cookie costs one WorkOS
	// call per token in that time, however often it comes back.
	terminalMemory = 10 * time.Minute
	// maxRefreshEntries bounds the results kept. It holds the grace window
	// of 100 000 sessions with 5-minute tokens (about 370 refreshes a
	// second for 2 minutes: 44 000 results) with room to spare; past it the
	// oldest result goes first.
	maxRefreshEntries = 60000
	// refreshPrunePerCall is how many results past their time each refresh
	// retires, in order: more than it adds, so the table never needs a scan.
	refreshPrunePerCall = 8
)

// refreshCall is one WorkOS refresh, shared by every request that carried the
// same refresh token (and organization). The failure is kept as the
// concrete *workosError, never as an error interface: under yaegi v0.16.1
// an interpreted value held in an interface keeps the frame that made it
// alive (the WorkOS response body with it), tens of kilobytes per entry
// for as long as the answer is remembered.
type refreshCall struct {
	done     chan struct{}
	resp     *workosAuthResponse
	failure  *workosError
	finished time.Time
	// until is when the result stops being handed out: the end of the
	// grace window for a success, the retry time for a transient failure,
	// the end of the terminal memory otherwise.
	until time.Time
}

// refreshOutcome is what a request learns from the group.
type refreshOutcome struct {
	resp *workosAuthResponse
	err  error
	// called reports whether this request made the WorkOS call, so each
	// call is logged once.
	called bool
	// answered is when WorkOS gave the answer.
	answered time.Time
}

// refreshQueue holds finished calls in the order their time ends. The
// calls of one kind (grace, retry, terminal memory) all keep their results
// for the same length of time, so each kind has its own queue and its head
// is always the next to expire.
type refreshQueue struct {
	keys  []string
	calls []*refreshCall
	head  int
}

func (q *refreshQueue) push(key string, c *refreshCall) {
	if q.head > 0 && q.head >= len(q.keys)/2 {
		// Reclaim the consumed half, so the slices follow the live calls.
		n := copy(q.keys, q.keys[q.head:])
		copy(q.calls, q.calls[q.head:])
		for i := n; i < len(q.calls); i++ {
			q.calls[i] = nil
		}
		q.keys, q.calls, q.head = q.keys[:n], q.calls[:n], 0
	}
	q.keys = append(q.keys, key)
	q.calls = append(q.calls, c)
}

func (q *refreshQueue) len() int { return len(q.keys) - q.head }

func (q *refreshQueue) pop() (string, *refreshCall) {
	k, c := q.keys[q.head], q.calls[q.head]
	q.calls[q.head] = nil
	q.head++
	return k, c
}

// refreshGroup runs each refresh once, whatever the number of concurrent
// requests and middleware instances asking for it, and remembers the
// answer for as long as it is useful. It is package-level because Traefik
// shares one interpreter among all instances of the plugin.
type refreshGroup struct {
	mu     sync.Mutex
	calls  map[string]*refreshCall
	queues [3]refreshQueue // grace, retry, terminal
}

const (
	queueGrace = iota
	queueRetry
	queueTerminal
)

var sharedRefreshes = newRefreshGroup()

func newRefreshGroup() *refreshGroup {
	return &refreshGroup{calls: map[string]*refreshCall{}}
}

// refreshKey identifies a refresh by a digest, so the token itself is not
// kept in memory longer than the request that carried it.
func refreshKey(apiBaseURL, clientID, refreshToken, organizationID string) string {
	sum := sha256.Sum256([]byte(apiBaseURL + "\x00" + clientID + "\x00" + refreshToken + "\x00" + organizationID))
	return string(sum[:])
}

// do returns the answer of the refresh for key, calling refresh only when
// no call is running and no earlier answer is still remembered. The call
// runs detached from the request, so a client that goes away does not fail
// it for the others.
func (g *refreshGroup) do(key string, clock func() time.Time, refresh func(ctx context.Context) (*workosAuthResponse, error)) refreshOutcome {
	now := clock()
	g.mu.Lock()
	g.pruneLocked(now)
	call, ok := g.calls[key]
	if ok && call.finished.IsZero() {
		g.mu.Unlock()
		return call.wait()
	}
	if ok && now.Before(call.until) {
		g.mu.Unlock()
		return call.outcome()
	}
	call = &refreshCall{done: make(chan struct{})}
	g.calls[key] = call
	g.mu.Unlock()

	callCtx, cancel := context.WithTimeout(context.Background(), workosAPITimeout)
	resp, err := refresh(callCtx)
	cancel()

	finished := clock()
	failure := asWorkOSError(err)
	queue, until := queueTerminal, finished.Add(terminalMemory)
	if failure == nil {
		queue, until = queueGrace, finished.Add(refreshGrace)
	} else if failure.Transient {
		queue, until = queueRetry, finished.Add(clampDuration(failure.RetryAfter, refreshRetryMin, refreshRetryMax))
	}
	g.mu.Lock()
	call.resp, call.failure, call.finished, call.until = resp, failure, finished, until
	g.queues[queue].push(key, call)
	for len(g.calls) > maxRefreshEntries && g.dropOldestLocked() {
	}
	g.mu.Unlock()
	close(call.done)
	out := call.outcome()
	out.called = true
	return out
}

// outcome is what a request learns from a finished call.
func (c *refreshCall) outcome() refreshOutcome {
	out := refreshOutcome{resp: c.resp, answered: c.finished}
	if c.failure != nil {
		out.err = c.failure
	}
	return out
}

// asWorkOSError keeps an error as the concrete *workosError (see
// refreshCall); every error the WorkOS client returns is one.
func asWorkOSError(err error) *workosError {
	if err == nil {
		return nil
	}
	if we, ok := err.(*workosError); ok {
		return we
	}
	return &workosError{op: "refresh_token grant", reason: err.Error()}
}

func clampDuration(d, min, max time.Duration) time.Duration {
	if d < min {
		return min
	}
	if d > max {
		return max
	}
	return d
}

// wait blocks until the call ends, at most workosAPITimeout. It does not
// select on the request's context as well: yaegi v0.16.1 keeps one case
// table per select statement and shares it among the goroutines running
// it, so concurrent waiters could wait on each other's channels.
func (c *refreshCall) wait() refreshOutcome {
	<-c.done
	return c.outcome()
}

// pruneLocked retires, in order, a few results whose time is over.
func (g *refreshGroup) pruneLocked(now time.Time) {
	for i := 0; i < len(g.queues); i++ {
		q := &g.queues[i]
		for n := 0; n < refreshPrunePerCall && q.len() > 0 && !now.Before(q.calls[q.head].until); n++ {
			k, c := q.pop()
			if g.calls[k] == c {
				delete(g.calls, k)
			}
		}
	}
}

// dropOldestLocked retires the result that finished first, whatever its
// time; it reports false when nothing is left to drop.
func (g *refreshGroup) dropOldestLocked() bool {
	oldest := -1
	for i := 0; i < len(g.queues); i++ {
		q := &g.queues[i]
		if q.len() > 0 && (oldest < 0 || q.calls[q.head].finished.Before(g.queues[oldest].calls[g.queues[oldest].head].finished)) {
			oldest = i
		}
	}
	if oldest < 0 {
		return false
	}
	k, c := g.queues[oldest].pop()
	if g.calls[k] == c {
		delete(g.calls, k)
	}
	return true
}

func (g *refreshGroup) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}
