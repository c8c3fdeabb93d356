package authkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// maxRefreshEntries bounds the results kept; refreshPruneEvery is how
	// many refreshes pass between sweeps of entries past their time.
	maxRefreshEntries = 10000
	refreshPruneEvery = 256
)

// refreshCall is one WorkOS refresh, shared by every request that carried the
// same refresh token (and organization).
type refreshCall struct {
	done     chan struct{}
	resp     *workosAuthResponse
	err      error
	finished time.Time
	// until is when the result stops being handed out: the end of the
	// grace window for a success, the retry time for a transient failure.
	until time.Time
}

// refreshGroup runs each refresh once, whatever the number of concurrent
// requests and middleware instances asking for it. It is package-level
// because Traefik shares one interpreter among all instances of the plugin.
type refreshGroup struct {
	mu      sync.Mutex
	calls   map[string]*refreshCall
	started int
}

var sharedRefreshes = &refreshGroup{calls: map[string]*refreshCall{}}

// refreshKey identifies a refresh without keeping the token itself in memory
// longer than the request that carried it.
func refreshKey(apiBaseURL, clientID, refreshToken, organizationID string) string {
	sum := sha256.Sum256([]byte(apiBaseURL + "\x00" + clientID + "\x00" + refreshToken + "\x00" + organizationID))
	return hex.EncodeToString(sum[:])
}

// do returns the result of the refresh for key, calling refresh only when no
// call is running and no earlier result is still being handed out; called
// reports whether this caller made the call, so each WorkOS call is logged
// once. The call runs detached from ctx so a client that goes away does not
// fail it for the others; ctx only bounds how long this caller waits.
func (g *refreshGroup) do(ctx context.Context, key string, clock func() time.Time, refresh func(context.Context) (*workosAuthResponse, error)) (resp *workosAuthResponse, called bool, err error) {
	g.mu.Lock()
	call, ok := g.calls[key]
	if ok && call.finished.IsZero() {
		g.mu.Unlock()
		resp, err = call.wait(ctx)
		return resp, false, err
	}
	if ok && clock().Before(call.until) {
		g.mu.Unlock()
		return call.resp, false, call.err
	}
	call = &refreshCall{done: make(chan struct{})}
	g.calls[key] = call
	g.started++
	if g.started%refreshPruneEvery == 0 || len(g.calls) > maxRefreshEntries {
		g.pruneLocked(clock())
	}
	g.mu.Unlock()

	callCtx, cancel := context.WithTimeout(context.Background(), workosAPITimeout)
	resp, err = refresh(callCtx)
	cancel()

	finished := clock()
	g.mu.Lock()
	call.resp, call.err, call.finished = resp, err, finished
	we, _ := err.(*workosError)
	if err == nil {
		call.until = finished.Add(refreshGrace)
	} else if we != nil && we.Transient {
		call.until = finished.Add(clampDuration(we.RetryAfter, refreshRetryMin, refreshRetryMax))
	} else {
		// A terminal failure is final for this token; nothing to share.
		delete(g.calls, key)
	}
	g.mu.Unlock()
	close(call.done)
	return resp, true, err
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

func (c *refreshCall) wait(ctx context.Context) (*workosAuthResponse, error) {
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		return nil, &workosError{Transient: true, reason: "request ended while waiting for a refresh"}
	}
}

// pruneLocked drops results past their time, then, if still over the
// bound, any finished result.
func (g *refreshGroup) pruneLocked(now time.Time) {
	for k, c := range g.calls {
		if !c.finished.IsZero() && !now.Before(c.until) {
			delete(g.calls, k)
		}
	}
	for k, c := range g.calls {
		if len(g.calls) <= maxRefreshEntries {
			return
		}
		if !c.finished.IsZero() {
			delete(g.calls, k)
		}
	}
}
