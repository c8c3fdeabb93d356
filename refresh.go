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
	// maxRefreshEntries bounds the results kept for the grace window.
	maxRefreshEntries = 10000
)

// refreshCall is one WorkOS refresh, shared by every request that carried the
// same refresh token (and organization).
type refreshCall struct {
	done     chan struct{}
	resp     *workosAuthResponse
	err      error
	finished time.Time
}

// refreshGroup runs each refresh once, whatever the number of concurrent
// requests and middleware instances asking for it. It is package-level
// because Traefik shares one interpreter among all instances of the plugin.
type refreshGroup struct {
	mu    sync.Mutex
	calls map[string]*refreshCall
}

var sharedRefreshes = &refreshGroup{calls: map[string]*refreshCall{}}

// refreshKey identifies a refresh without keeping the token itself in memory
// longer than the request that carried it.
func refreshKey(apiBaseURL, clientID, refreshToken, organizationID string) string {
	sum := sha256.Sum256([]byte(apiBaseURL + "\x00" + clientID + "\x00" + refreshToken + "\x00" + organizationID))
	return hex.EncodeToString(sum[:])
}

// do returns the result of the refresh for key, calling refresh only when no
// call is running and no successful result is within the grace window. The
// call runs detached from ctx so a client that goes away does not fail it
// for the others; ctx only bounds how long this caller waits.
func (g *refreshGroup) do(ctx context.Context, key string, now time.Time, refresh func(context.Context) (*workosAuthResponse, error)) (*workosAuthResponse, error) {
	g.mu.Lock()
	call, ok := g.calls[key]
	if ok && call.finished.IsZero() {
		g.mu.Unlock()
		return call.wait(ctx)
	}
	if ok && call.err == nil && now.Sub(call.finished) < refreshGrace {
		g.mu.Unlock()
		return call.resp, nil
	}
	call = &refreshCall{done: make(chan struct{})}
	g.calls[key] = call
	if len(g.calls) > maxRefreshEntries {
		g.pruneLocked(now)
	}
	g.mu.Unlock()

	callCtx, cancel := context.WithTimeout(context.Background(), workosAPITimeout)
	resp, err := refresh(callCtx)
	cancel()

	g.mu.Lock()
	call.resp, call.err, call.finished = resp, err, now
	if err != nil {
		// Failures are not replayed: the next request tries again.
		delete(g.calls, key)
	}
	g.mu.Unlock()
	close(call.done)
	return resp, err
}

func (c *refreshCall) wait(ctx context.Context) (*workosAuthResponse, error) {
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		return nil, &workosError{Transient: true, reason: "request ended while waiting for a refresh"}
	}
}

// pruneLocked drops results past their grace window, then, if still over
// the bound, any finished result.
func (g *refreshGroup) pruneLocked(now time.Time) {
	for k, c := range g.calls {
		if !c.finished.IsZero() && now.Sub(c.finished) >= refreshGrace {
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
