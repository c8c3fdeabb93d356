package replicas

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// users the clients sign in as: with and without an organization (the
// refresh carries the token's org_id).
var users = []struct{ id, org string }{
	{fakeworkos.UserAlice, fakeworkos.OrgAcme},
	{fakeworkos.UserBob, fakeworkos.OrgAcme},
	{fakeworkos.UserZoe, fakeworkos.OrgGlobex},
	{fakeworkos.UserCarol, ""},
}

// client is one simulated browser: its cookie store for the site (all
// replicas are one origin behind a load balancer) and its WorkOS session.
type client struct {
	id   int
	user string
	org  string
	sid  string
	jar  browserjar.Jar
	rng  *mrand.Rand
}

// outcome is one request and its answer.
type outcome struct {
	replica    int
	document   bool
	start, end time.Time
	status     int
	err        error
	user       string // X-Workos-User-Id as the upstream saw it
	session    string // X-Workos-Session-Id as the upstream saw it
	location   string
	setCookies []string
}

// sessionWrite reports whether the answer writes a session value (a
// refresh), and sessionDelete whether it deletes the session cookie.
func (o outcome) sessionWrite() bool  { return o.sessionCookie(false) }
func (o outcome) sessionDelete() bool { return o.sessionCookie(true) }

func (o outcome) sessionCookie(deletion bool) bool {
	for _, sc := range o.setCookies {
		c, err := http.ParseSetCookie(sc)
		if err != nil || !browserjar.IsSessionCookie(c.Name) {
			continue
		}
		gone := c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(o.end))
		if gone == deletion {
			return true
		}
	}
	return false
}

func (o outcome) summary() string {
	kind := "api"
	if o.document {
		kind = "document"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s r%d %s → ", o.end.Format("15:04:05.000"), o.replica+1, kind)
	if o.err != nil {
		fmt.Fprintf(&b, "error %v", o.err)
	} else {
		fmt.Fprintf(&b, "%d after %s", o.status, o.end.Sub(o.start).Round(time.Millisecond))
	}
	if o.user != "" {
		fmt.Fprintf(&b, ", upstream saw %s/%s", o.user, o.session)
	}
	if o.sessionWrite() {
		b.WriteString(", session written")
	}
	if o.sessionDelete() {
		b.WriteString(", session deleted")
	}
	return b.String()
}

// tally counts what clients saw in one phase.
type tally struct {
	Bursts   int `json:"bursts"`
	Requests int `json:"requests"`
	// OK: 2xx and the upstream saw the client's own user and session.
	OK int `json:"ok"`
	// FailedLive: 401, or a redirect to the authorize URL, while the
	// client's WorkOS session was alive. FailedRevoked: the same for a
	// session WorkOS had ended (expected).
	FailedLive    int `json:"failed_live"`
	FailedRevoked int `json:"failed_revoked"`
	// FailedDocuments are the FailedLive that were document requests:
	// pages the browser left for the AuthKit sign-in.
	FailedDocuments int `json:"failed_documents"`
	// Lost: bursts after which the client's session cookie was gone while
	// its WorkOS session was alive; the client then signs in again.
	Lost int `json:"lost"`
	// ServerErrors: 5xx answers. TransportErrors: no answer at all.
	ServerErrors    int `json:"server_errors"`
	TransportErrors int `json:"transport_errors"`
	// Unexpected: any other answer (404, 403, 2xx without identity, a
	// redirect elsewhere).
	Unexpected int `json:"unexpected"`
	// Fatal: the upstream saw another user or session than the client's.
	Fatal int `json:"fatal"`
	// HarnessErrors: the harness itself failed (a new sign-in at the
	// fake); the figures of such a run are not to be trusted.
	HarnessErrors int `json:"harness_errors,omitempty"`
	// Written and Deleted count answers that wrote / deleted the session
	// cookie.
	Written int `json:"session_written"`
	Deleted int `json:"session_deleted"`
}

func (t *tally) add(o tally) {
	t.Bursts += o.Bursts
	t.Requests += o.Requests
	t.OK += o.OK
	t.FailedLive += o.FailedLive
	t.FailedRevoked += o.FailedRevoked
	t.FailedDocuments += o.FailedDocuments
	t.Lost += o.Lost
	t.ServerErrors += o.ServerErrors
	t.TransportErrors += o.TransportErrors
	t.Unexpected += o.Unexpected
	t.Fatal += o.Fatal
	t.HarnessErrors += o.HarnessErrors
	t.Written += o.Written
	t.Deleted += o.Deleted
}

// stats collects tallies by phase and a few examples of each problem.
type stats struct {
	mu        sync.Mutex
	byPhase   map[string]*tally
	latencies map[string][]time.Duration // answered requests, by phase
	order     []string
	examples  map[string][]string
}

const examplesPerKind = 4

func newStats() *stats {
	return &stats{byPhase: map[string]*tally{}, latencies: map[string][]time.Duration{}, examples: map[string][]string{}}
}

func (s *stats) add(phase string, t tally, latencies []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byPhase[phase]
	if p == nil {
		p = &tally{}
		s.byPhase[phase] = p
	}
	p.add(t)
	s.latencies[phase] = append(s.latencies[phase], latencies...)
}

// percentiles returns the median and 99th percentile latency of the
// answered requests of the given phases.
func (s *stats) percentiles(phases ...string) (p50, p99 time.Duration) {
	s.mu.Lock()
	var all []time.Duration
	for _, p := range phases {
		all = append(all, s.latencies[p]...)
	}
	s.mu.Unlock()
	if len(all) == 0 {
		return 0, 0
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return at(0.50), at(0.99)
}

func (s *stats) example(kind, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.examples[kind]; !ok {
		s.order = append(s.order, kind)
	}
	if len(s.examples[kind]) < examplesPerKind {
		s.examples[kind] = append(s.examples[kind], detail)
	}
}

func (s *stats) tally(phases ...string) tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out tally
	for _, p := range phases {
		if t := s.byPhase[p]; t != nil {
			out.add(*t)
		}
	}
	return out
}

// exampleReport lists the examples collected, for a failure message.
func (s *stats) exampleReport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, kind := range s.order {
		fmt.Fprintf(&b, "examples of %s:\n", kind)
		for _, ex := range s.examples[kind] {
			b.WriteString("  " + strings.ReplaceAll(ex, "\n", "\n  ") + "\n")
		}
	}
	return b.String()
}

// makeClients signs in n clients, each with its own WorkOS session and an
// already expired access token, so each one's first burst refreshes.
func (cl *cluster) makeClients(t *testing.T, n int) []*client {
	t.Helper()
	out := make([]*client, n)
	for i := range out {
		u := users[i%len(users)]
		c := &client{id: i, user: u.id, org: u.org, jar: browserjar.Jar{}, rng: mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
		if err := cl.signIn(c, true); err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// drive runs every client until ctx ends: idle for longer than the token
// lifetime, then a burst of parallel requests. The first idle is spread
// over one cycle so bursts do not come in waves.
func (cl *cluster) drive(ctx context.Context, clients []*client, s *stats) {
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cycle := cl.cfg.tokenTTL + 2*time.Second
			if !sleepCtx(ctx, time.Duration(c.rng.Int64N(int64(cycle)))) {
				return
			}
			for {
				cl.burst(c, s)
				idle := cl.cfg.tokenTTL + 500*time.Millisecond + time.Duration(c.rng.Int64N(int64(1500*time.Millisecond)))
				if !sleepCtx(ctx, idle) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// burst is a page load: 3 to 5 parallel requests, spread over the
// replicas, a document first and mostly API calls, all with the cookie
// the client holds when it starts. Answers are applied to the cookie
// store in the order they arrive, as a browser does: the last Set-Cookie
// wins, deletions included.
func (cl *cluster) burst(c *client, s *stats) {
	n := 3 + c.rng.IntN(3)
	cookies := c.jar.Header()
	sid := c.sid
	first := c.rng.IntN(len(cl.replicas))
	outs := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range outs {
		replica := first + i
		if cl.cfg.spread == "random" {
			replica = c.rng.IntN(len(cl.replicas))
		}
		replica %= len(cl.replicas)
		document := i == 0 || c.rng.IntN(5) == 0
		path := apiPath
		if document {
			path = protectedPath
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = cl.get(replica, path, document, cookies)
		}()
	}
	wg.Wait()
	// A burst counts under the phase it ends in: when a phase began while
	// it was in flight, that phase's action (Redis killed, say) is what
	// its answers met, and the phase before must not be held to them.
	phase := cl.currentPhase()
	sort.SliceStable(outs, func(i, j int) bool { return outs[i].end.Before(outs[j].end) })

	t := tally{Bursts: 1, Requests: n}
	var lines []string
	for _, o := range outs {
		lines = append(lines, "    "+o.summary())
	}
	describe := func() string {
		return fmt.Sprintf("client %d (%s, session %s), burst of %d, answers in arrival order:\n%s", c.id, c.user, sid, n, strings.Join(lines, "\n"))
	}
	kinds := map[string]bool{} // each burst is an example of a problem once
	var latencies []time.Duration
	for _, o := range outs {
		if o.err == nil {
			latencies = append(latencies, o.end.Sub(o.start))
		}
		if kind := cl.classify(c, sid, o, &t); kind != "" && !kinds[kind] {
			kinds[kind] = true
			s.example(kind, describe())
		}
		c.jar.Apply(o.setCookies, o.end)
	}
	if !c.jar.HasSession() {
		if !cl.fake.SessionRevoked(sid) {
			t.Lost++
			s.example("lost session", describe())
		}
		if err := cl.signIn(c, true); err != nil {
			t.HarnessErrors++
			s.example("harness error", "signing the client in again: "+err.Error())
		}
	}
	s.add(phase, t, latencies)
}

// classify counts one answer of a burst and names the problem it shows,
// if any.
func (cl *cluster) classify(c *client, sid string, o outcome, t *tally) string {
	if o.sessionWrite() {
		t.Written++
	}
	if o.sessionDelete() {
		t.Deleted++
	}
	switch {
	case o.err != nil:
		t.TransportErrors++
		return "transport error"
	case o.status >= 500:
		t.ServerErrors++
		return "5xx"
	case o.status >= 200 && o.status < 300:
		switch {
		case o.user == c.user && o.session == sid:
			t.OK++
			return ""
		case o.user != "" || o.session != "":
			t.Fatal++
			return "identity of another user or session"
		default:
			t.Unexpected++
			return "protected path served without identity"
		}
	case o.status == http.StatusUnauthorized || cl.isSignInRedirect(o):
		if cl.fake.SessionRevoked(sid) {
			t.FailedRevoked++
			return ""
		}
		t.FailedLive++
		if o.document {
			t.FailedDocuments++
		}
		return "failed request of a live session"
	default:
		t.Unexpected++
		return fmt.Sprintf("unexpected status %d", o.status)
	}
}
