package replicas

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const (
	// signOutPoll is how often the old cookie is presented again.
	signOutPoll = 50 * time.Millisecond
	// signOutMargin is added to the token lifetime for the bound: past
	// it, a replica that still accepts the cookie is reported as never
	// refusing it.
	signOutMargin = 3 * time.Second
	// signOutLinger keeps polling a replica that refused, to catch one
	// that accepts the cookie again.
	signOutLinger = time.Second
)

// signOutResult is how long one replica went on accepting a cookie after
// the session was signed out through replica 1.
type signOutResult struct {
	Replica int  `json:"replica"`
	Refused bool `json:"refused"`
	// AfterSeconds is the time from the sign-out answer to the first
	// refusal; with Refused false, the bound that passed without one.
	AfterSeconds float64 `json:"after_seconds"`
	// How the replica refused: 401, redirect, cookie deleted.
	How string `json:"how,omitempty"`
	// AcceptedAgain counts answers that signed the old cookie in after
	// this replica had refused it once.
	AcceptedAgain int `json:"accepted_again,omitempty"`
	Polls         int `json:"polls"`
	// Other counts answers that were neither (5xx, transport errors).
	Other int `json:"other,omitempty"`
}

func (r signOutResult) String() string {
	if !r.Refused {
		return fmt.Sprintf("never (>%.0fs)", r.AfterSeconds)
	}
	s := fmt.Sprintf("%.2fs", r.AfterSeconds)
	if r.AcceptedAgain > 0 {
		s += fmt.Sprintf(" then accepted again ×%d", r.AcceptedAgain)
	}
	return s
}

// signOutWindow signs a fresh session out through replica 1 as a browser
// does (GET the sign-out path, then follow the redirect to WorkOS's
// logout URL, which ends the session there), then presents the cookie it
// held before, every signOutPoll, to every replica, and reports for each
// how long until it refused it. Every replica has seen the session
// signed in first, as replicas behind a load balancer would have.
func (cl *cluster) signOutWindow(s *stats) ([]signOutResult, error) {
	cl.setPhase("sign-out")
	c := &client{id: -1, user: fakeworkos.UserAlice, org: fakeworkos.OrgAcme, jar: browserjar.Jar{}}
	if err := cl.signIn(c, false); err != nil {
		return nil, err
	}
	old := c.jar.Header()
	for i := range cl.replicas {
		if o := cl.get(i, apiPath, false, old); o.err != nil || o.status != http.StatusOK || o.user != c.user {
			return nil, fmt.Errorf("replica %d did not accept the fresh session before the sign-out: %s", i+1, o.summary())
		}
	}

	o := cl.get(0, signOutPath, true, old)
	signedOut := o.end
	if o.err != nil || o.status < 300 || o.status >= 400 {
		return nil, fmt.Errorf("sign-out through replica 1: %s", o.summary())
	}
	if !o.sessionDelete() {
		s.example("sign-out", "the sign-out answer did not delete the session cookie: "+o.summary())
	}
	if strings.HasPrefix(o.location, cl.workosURL+"/") {
		resp, err := cl.http.Get(o.location)
		if err != nil {
			return nil, fmt.Errorf("following the sign-out to WorkOS: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	} else {
		s.example("sign-out", "the sign-out did not redirect to WorkOS's logout URL: Location "+o.location)
	}
	if !cl.fake.SessionRevoked(c.sid) {
		s.example("sign-out", "the WorkOS session is still alive after the sign-out")
	}

	bound := cl.cfg.tokenTTL + signOutMargin
	results := make([]signOutResult, len(cl.replicas))
	var wg sync.WaitGroup
	for i := range cl.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = cl.pollRefusal(i, old, signedOut, bound)
		}()
	}
	wg.Wait()
	return results, nil
}

// pollRefusal presents cookies to one replica until it refuses them (and
// a little longer), or until bound has passed since since.
func (cl *cluster) pollRefusal(replica int, cookies string, since time.Time, bound time.Duration) signOutResult {
	r := signOutResult{Replica: replica + 1}
	var stopAt time.Time
	for tick := time.Now(); ; tick = tick.Add(signOutPoll) {
		time.Sleep(time.Until(tick))
		now := time.Now()
		if !stopAt.IsZero() && now.After(stopAt) {
			return r
		}
		if stopAt.IsZero() && now.Sub(since) > bound {
			r.AfterSeconds = bound.Seconds()
			return r
		}
		o := cl.get(replica, apiPath, false, cookies)
		r.Polls++
		accepted := o.err == nil && o.status == http.StatusOK && o.user != ""
		how := ""
		switch {
		case o.err != nil || o.status >= 500:
			r.Other++
		case o.sessionDelete():
			how = "cookie deleted"
		case o.status == http.StatusUnauthorized:
			how = "401"
		case cl.isSignInRedirect(o):
			how = "redirect"
		case !accepted:
			r.Other++
		}
		if how != "" && !r.Refused {
			r.Refused, r.How = true, how
			r.AfterSeconds = o.end.Sub(since).Seconds()
			stopAt = now.Add(signOutLinger)
		}
		if accepted && r.Refused {
			r.AcceptedAgain++
		}
	}
}
