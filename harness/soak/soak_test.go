package soak

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const (
	// durationEnv sets the soak's length; the default keeps CI fast.
	durationEnv     = "SOAK_DURATION"
	defaultDuration = 60 * time.Second

	cookiePassword = "soak-cookie-password-0123456789abcdefghijklmnop"

	// workers bounds the concurrency: each worker drives its own clients
	// one visit at a time (a burst adds two more requests for a moment).
	workers = 16
	// thinkTime is the mean pause between a worker's visits, so two cores
	// serve Traefik, the fake and the clients without starving any.
	thinkTime = 8 * time.Millisecond

	// accessTokenTTL is the fake's token lifetime. Tokens of 300 s or less
	// get a 30 s refresh buffer, so a 45 s token is refreshed after 15 s
	// and expired after 45 s: sessions keep refreshing through every fault.
	accessTokenTTL = 45 * time.Second
	// workosDelay outlasts the plugin's 10 s WorkOS timeout.
	workosDelay = 12 * time.Second
	// quietPhase follows the faults: long enough for a call stuck in the
	// delay fault to time out and for every session to refresh again.
	quietPhase = 12 * time.Second
	// requestTimeout is generous: a refresh may wait for the plugin's
	// 10 s timeout, on a loaded machine.
	requestTimeout = 45 * time.Second
	// sleepOdds: one visit in sleepOdds of a refreshing client finds its
	// access token expired, as after a laptop slept; with ~10 visits a
	// second per client that is several expired sessions per fault step.
	sleepOdds = 100
	// rssGrowthLimit is how much Traefik's resident memory may grow from
	// the end of the warm-up to the end of the run.
	rssGrowthLimit = 50.0 // MiB
)

// faultStep is one slot of the fault schedule: what the fake does to
// refresh calls (nil: nothing) and whether its JWKS is down.
type faultStep struct {
	name     string
	fault    *fakeworkos.Fault
	jwksDown bool
}

// faultSchedule rotates through every row of WORKOS-PROTOCOL.md C.4 that a
// proxy can meet. Open-ended faults (Count 0) hit every refresh while the
// step lasts; the terminal ones and the delay are limited, as they are rare
// in life and each burns (or stalls) a real session. The JWKS is down
// through the middle of the cycle: verified keys must stay cached.
var faultSchedule = []faultStep{
	{name: "none"},
	{name: "429 with Retry-After", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultRateLimit, RetryAfter: 1}},
	{name: "JSON 500", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 500}, jwksDown: true},
	{name: "none", jwksDown: true},
	{name: "JSON 502", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 502}, jwksDown: true},
	{name: "JSON 503", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 503}, jwksDown: true},
	{name: "JSON 504", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 504}, jwksDown: true},
	{name: "HTML 502 ×3 (transient)", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultHTMLError, Status: 502, Count: 3}},
	{name: "12 s delay ×2 (timeout)", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultDelay, Delay: workosDelay, Count: 2}},
	{name: "dropped connections", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultDrop}},
	{name: "none"},
	{name: "invalid_grant ×3 (terminal)", fault: &fakeworkos.Fault{Kind: fakeworkos.FaultInvalidGrant, Count: 3}},
}

// population is what each worker drives: the client classes in proportion.
var population = []struct {
	class clientClass
	count int
}{
	{classSignedIn, 2},
	{classExpiring, 1},
	{classLossy, 1},
	{classLarge, 1},
	{classSignedOut, 1},
	{classForged, 1},
}

// users rotates real sessions over users with and without organizations
// and with non-ASCII profiles; classLarge always uses Max, whose metadata
// needs the split cookie.
var users = []struct{ id, org string }{
	{fakeworkos.UserAlice, fakeworkos.OrgAcme},
	{fakeworkos.UserBob, fakeworkos.OrgAcme},
	{fakeworkos.UserZoe, fakeworkos.OrgGlobex},
	{fakeworkos.UserCarol, ""},
}

// run is the shared state of one soak.
type run struct {
	fake       *fakeworkos.Server
	recorder   *recorder
	keyring    *authkit.Keyring
	forger     *forger
	traefikURL string
	fakeURL    string
	httpClient *http.Client
	fault      atomic.Value // string: the fault step in force
	// spareFaults is set while a fault limited to a few calls is in force:
	// forged cookies then avoid refresh calls, which outside fault windows
	// outnumber real ones and would otherwise take every limited fault.
	spareFaults atomic.Bool
	stats       *stats
	violations  *violations
}

func (r *run) activeFault() string {
	s, _ := r.fault.Load().(string)
	return s
}

// TestSoak drives the load through four phases — warm-up without faults,
// the fault schedule, a quiet phase, a final check of every session — and
// then asserts:
//
//  1. no 5xx and no transport error, on any path, for any client;
//  2. no burned session: every real session is signed in at the end, unless
//     the fake gave a terminal answer (injected invalid_grant) to
//     its refresh; and no session cookie was ever deleted without one;
//  3. Traefik's resident memory at the end is within rssGrowthLimit of its
//     value after the warm-up;
//  4. refresh calls are about one per token: a token the fake rotated is
//     never presented again, two calls for one token never overlap, and
//     the calls stay under 3 × the tokens that needed refreshing plus the
//     calls that failed transiently;
//
// besides the per-request checks in check (answers of the right shape,
// identity only for the right client, long-lived sessions always signed in,
// a dropped refresh replayed on the next request). It prints its figures
// whether or not it passes.
func TestSoak(t *testing.T) {
	traefiktest.RequireBinary(t)
	total := defaultDuration
	if v := os.Getenv(durationEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration such as 5m", durationEnv, v)
		}
		total = d
	}
	p := newPlan(total)
	t.Logf("soak: %s warm-up, %s of faults in %s steps, %s quiet, then a final check",
		p.warmup, p.faults, p.step, quietPhase)

	r, tr := setUp(t)
	pid, err := traefikPID(tr.Dir)
	if err != nil {
		t.Fatal(err)
	}
	rss := map[string]float64{}
	measure := func(label string) {
		if v, err := traefiktest.RSSMiB(pid); err == nil {
			rss[label] = v
		} else {
			t.Errorf("reading Traefik's memory: %v", err)
		}
	}
	measure("boot")

	clients := makeClients(t, r)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func(mine []*client) {
			defer wg.Done()
			work(ctx, r, mine)
		}(clients[w])
	}

	r.fault.Store("none (warm-up)")
	time.Sleep(p.warmup)
	measure("after warm-up")
	jwksBefore := r.fake.Calls(fakeworkos.EndpointJWKS)

	faultsEnd := time.Now().Add(p.faults)
	middle := time.Now().Add(p.faults / 2)
	injected := map[string]int{}
	for i := 0; time.Now().Before(faultsEnd); i++ {
		step := faultSchedule[i%len(faultSchedule)]
		applyStep(r, step)
		injected[step.name]++
		until := time.Now().Add(p.step)
		if until.After(faultsEnd) {
			until = faultsEnd
		}
		if _, ok := rss["middle"]; !ok && until.After(middle) {
			time.Sleep(time.Until(middle))
			measure("middle")
		}
		time.Sleep(time.Until(until))
	}
	jwksDuring := r.fake.Calls(fakeworkos.EndpointJWKS) - jwksBefore

	r.fake.ClearFaults()
	r.spareFaults.Store(false)
	r.fault.Store("none (quiet)")
	time.Sleep(quietPhase)
	stopLoad()
	wg.Wait()

	r.fault.Store("none (final check)")
	signedIn, excused := finalCheck(r, clients)
	measure("end")

	fig := r.recorder.figures()
	printFigures(t, r, fig, rss, injected, jwksDuring, signedIn, excused)

	// Invariant 3: memory stays flat.
	if growth := rss["end"] - rss["after warm-up"]; growth > rssGrowthLimit {
		r.violations.add("memory growth", fmt.Sprintf("Traefik RSS grew %.1f MiB after the warm-up (%.1f → %.1f), limit %.0f",
			growth, rss["after warm-up"], rss["end"], rssGrowthLimit), "")
	}
	// Invariant 4: about one refresh call per token.
	for _, d := range fig.reused {
		r.violations.add("refresh token used after rotation", d, "")
	}
	for _, d := range fig.concurrent {
		r.violations.add("concurrent refresh calls for one token", d, "")
	}
	if bound := 3*fig.needed + fig.transientCalls(); fig.realCalls() > bound {
		r.violations.add("too many refresh calls", fmt.Sprintf("%d refresh calls for %d tokens with %d transient failures (bound %d)",
			fig.realCalls(), fig.needed, fig.transientCalls(), bound), "")
	}
	if fig.unknown > 0 {
		r.violations.add("unattributed refresh calls", fmt.Sprintf("%d refresh calls carried a token no session or forgery issued", fig.unknown), "")
	}
	// The soak must have exercised what it claims to.
	for _, c := range []struct {
		what string
		n    int64
	}{
		{"refreshed responses", r.stats.refreshed.Load()},
		{"split session cookies", r.stats.split.Load()},
		{"dropped refresh responses replayed", r.stats.replayed.Load()},
	} {
		if c.n == 0 {
			r.violations.add("coverage", "the run saw no "+c.what, "")
		}
	}

	if r.violations.total() > 0 {
		t.Errorf("%s", r.violations.report(tr.Log()))
	}
}

// plan is how the soak's length is spent.
type plan struct {
	warmup, faults, step time.Duration
}

func newPlan(total time.Duration) plan {
	p := plan{warmup: clamp(total/6, 5*time.Second, 30*time.Second)}
	p.faults = total - p.warmup - quietPhase
	if p.faults < 24*time.Second {
		p.faults = 24 * time.Second
	}
	p.step = clamp(p.faults/time.Duration(len(faultSchedule)), 2*time.Second, 5*time.Second)
	return p
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

// setUp starts the fake WorkOS behind the recorder, the upstream and
// Traefik with the plugin, all on 127.0.0.1.
func setUp(t *testing.T) (*run, *traefiktest.Traefik) {
	t.Helper()
	r := &run{stats: newStats(), violations: newViolations()}
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: accessTokenTTL})
	rec := newRecorder(fake, r.activeFault)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = api.Serve(ln) }()
	t.Cleanup(func() { _ = api.Close() })
	fakeURL := "http://" + ln.Addr().String()

	// The upstream always answers 200 and reports the identity it was
	// given, so a client can tell signed-in answers from the others.
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream-User", r.Header.Get("X-Workos-User-Id"))
		w.Header().Set("X-Upstream-Session", r.Header.Get("X-Workos-Session-Id"))
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(upstream.Close)

	u, _ := url.Parse(fakeURL)
	tr := traefiktest.Start(t, traefiktest.Options{
		Upstream:  upstream.URL,
		ReadyPath: "/public/ready",
		PluginConfig: map[string]any{
			"clientId": fake.ClientID(), "apiKey": fake.APIKey(), "cookiePassword": cookiePassword,
			"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
			"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
		},
	})

	t.Cleanup(func() {
		if t.Failed() {
			trimTraefikLog(filepath.Join(tr.Dir, "traefik.log"))
		}
	})

	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := authkit.NewKeyring(map[string]string{"1": "another-password-that-the-plugin-never-saw"})
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r.fake, r.recorder, r.keyring = fake, rec, keyring
	r.traefikURL, r.fakeURL = tr.URL, fakeURL
	r.httpClient = &http.Client{
		Timeout:       requestTimeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4 * workers, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(r.httpClient.CloseIdleConnections)

	// A real session, signed in for a day, that the forger tampers with:
	// only an intact copy of it may ever sign in.
	decoy := &client{name: "decoy", class: classSignedIn, user: fakeworkos.UserBob, org: fakeworkos.OrgAcme,
		rng: mrand.New(mrand.NewPCG(0, 0)), jar: browserjar.Jar{}}
	if err := r.signIn(decoy); err != nil {
		t.Fatal(err)
	}
	r.forger = &forger{fake: fake, keyring: keyring, stranger: stranger, rogueKey: rogue, decoySeal: decoy.jar[sessionCookie]}
	return r, tr
}

// makeClients gives every worker its population of clients.
func makeClients(t *testing.T, r *run) [][]*client {
	t.Helper()
	out := make([][]*client, workers)
	n := 0
	for w := range workers {
		for _, p := range population {
			for range p.count {
				u := users[n%len(users)]
				if p.class == classLarge {
					u.id, u.org = fakeworkos.UserMax, fakeworkos.OrgAcme
				}
				c := &client{
					name:  fmt.Sprintf("w%02d-%s-%d", w, p.class, n),
					class: p.class, user: u.id, org: u.org,
					rng: mrand.New(mrand.NewPCG(uint64(n), 42)), jar: browserjar.Jar{},
				}
				if p.class.hasSession() {
					if err := r.signIn(c); err != nil {
						t.Fatal(err)
					}
				}
				out[w] = append(out[w], c)
				n++
			}
		}
	}
	return out
}

// work visits the worker's clients in turn until ctx ends.
func work(ctx context.Context, r *run, mine []*client) {
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for i := 0; ctx.Err() == nil; i++ {
		r.visit(mine[i%len(mine)])
		time.Sleep(time.Duration(rng.Int64N(int64(2 * thinkTime))))
	}
}

// applyStep puts one step of the schedule in force. ClearFaults also drops
// what is left of the previous step's limited faults.
func applyStep(r *run, step faultStep) {
	r.fake.ClearFaults()
	name := step.name
	r.spareFaults.Store(step.fault != nil && step.fault.Count > 0)
	if step.fault != nil {
		r.fake.InjectFault(fakeworkos.EndpointAuthenticate, *step.fault)
	}
	if step.jwksDown {
		r.fake.InjectFault(fakeworkos.EndpointJWKS, fakeworkos.Fault{Kind: fakeworkos.FaultServerError, Status: 503})
		name += " + JWKS 503"
	}
	r.fault.Store(name)
}

// finalCheck asks every real session for a protected resource, with no
// fault in force. A session must be signed in unless the fake gave its
// refresh a terminal answer; and every deletion of a session cookie during
// the run must be explained by such an answer (invariant 2).
func finalCheck(r *run, clients [][]*client) (signedIn, excused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, mine := range clients {
		wg.Add(1)
		go func(mine []*client) {
			defer wg.Done()
			for _, c := range mine {
				if !c.class.hasSession() {
					continue
				}
				ok := false
				for attempt := 0; attempt < 3 && !ok; attempt++ {
					if attempt > 0 {
						time.Sleep(time.Second)
					}
					o := r.send(c, kindJSON)
					r.settle(c, o)
					ok = o.signedIn()
				}
				mu.Lock()
				switch {
				case ok:
					signedIn++
				case r.recorder.excuse(c.sid) != "":
					excused++
				default:
					r.violations.add("burned session", "signed out at the end although no terminal answer was given to its refresh\n  "+c.report(), c.sid)
				}
				mu.Unlock()
				for _, d := range c.deletions {
					if r.recorder.excuse(d.sid) == "" {
						r.violations.add("session cookie deleted without a terminal answer",
							fmt.Sprintf("session %s deleted by: %s\n  %s", d.sid, d.summary, c.report()), d.sid)
					}
				}
			}
		}(mine)
	}
	wg.Wait()
	return signedIn, excused
}

// stats counts answers by client class and status, and latencies.
type stats struct {
	mu        sync.Mutex
	byClass   map[clientClass]map[int]int
	latencies map[clientClass][]time.Duration

	refreshed, split, lost, replayed, deleted, slept atomic.Int64
}

func newStats() *stats {
	return &stats{byClass: map[clientClass]map[int]int{}, latencies: map[clientClass][]time.Duration{}}
}

func (s *stats) record(class clientClass, o outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byClass[class] == nil {
		s.byClass[class] = map[int]int{}
	}
	s.byClass[class][o.status]++ // 0: transport error
	if o.err == nil {
		s.latencies[class] = append(s.latencies[class], o.dur)
	}
}

// violations collects failures by kind, keeping a few examples of each.
type violations struct {
	mu       sync.Mutex
	order    []string
	count    map[string]int
	examples map[string][]string
	sids     map[string]bool
}

const examplesPerKind = 5

func newViolations() *violations {
	return &violations{count: map[string]int{}, examples: map[string][]string{}, sids: map[string]bool{}}
}

func (v *violations) add(kind, detail, sid string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.count[kind] == 0 {
		v.order = append(v.order, kind)
	}
	v.count[kind]++
	if len(v.examples[kind]) < examplesPerKind {
		v.examples[kind] = append(v.examples[kind], detail)
		if sid != "" {
			v.sids[sid] = true
		}
	}
}

func (v *violations) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.count {
		n += c
	}
	return n
}

// report describes every kind of failure with its examples and the
// plugin's log lines about the sessions involved.
func (v *violations) report(traefikLog string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	b.WriteString("soak invariants violated:\n")
	for _, kind := range v.order {
		fmt.Fprintf(&b, "\n== %s: %d time(s)\n", kind, v.count[kind])
		for _, ex := range v.examples[kind] {
			b.WriteString("  - " + ex + "\n")
		}
	}
	var lines []string
	for _, line := range strings.Split(traefikLog, "\n") {
		for sid := range v.sids {
			if strings.Contains(line, sid) {
				lines = append(lines, line)
				break
			}
		}
	}
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	if len(lines) > 0 {
		b.WriteString("\nTraefik log lines naming the sessions above:\n" + strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

// printFigures logs what the run did, pass or fail.
func printFigures(t *testing.T, r *run, fig recorderFigures, rss map[string]float64, injected map[string]int, jwksDuring, signedIn, excused int) {
	t.Helper()
	var b strings.Builder
	s := r.stats
	s.mu.Lock()
	classes := make([]string, 0, len(s.byClass))
	for c := range s.byClass {
		classes = append(classes, string(c))
	}
	sort.Strings(classes)
	var all []time.Duration
	total := 0
	b.WriteString("requests by client class and status (0 = transport error):\n")
	for _, name := range classes {
		c := clientClass(name)
		statuses := make([]int, 0, len(s.byClass[c]))
		n := 0
		for st, k := range s.byClass[c] {
			statuses = append(statuses, st)
			n += k
		}
		sort.Ints(statuses)
		var parts []string
		for _, st := range statuses {
			parts = append(parts, fmt.Sprintf("%d×%d", st, s.byClass[c][st]))
		}
		p50, p99 := percentiles(s.latencies[c])
		fmt.Fprintf(&b, "  %-15s %6d  %-40s p50 %-8s p99 %s\n", name, n, strings.Join(parts, " "), p50, p99)
		all = append(all, s.latencies[c]...)
		total += n
	}
	p50, p99 := percentiles(all)
	fmt.Fprintf(&b, "  %-15s %6d  %-40s p50 %-8s p99 %s\n", "all", total, "", p50, p99)
	s.mu.Unlock()

	fmt.Fprintf(&b, "sessions: %d refreshed responses, %d with split cookies, %d refreshed responses dropped by clients and %d of them replayed, %d tokens expired by sleeping clients, %d session cookies deleted\n",
		s.refreshed.Load(), s.split.Load(), s.lost.Load(), s.replayed.Load(), s.slept.Load(), s.deleted.Load())
	fmt.Fprintf(&b, "final check: %d sessions signed in, %d signed out with a terminal answer as excuse\n", signedIn, excused)
	fmt.Fprintf(&b, "refresh calls seen by the fake: %d (real sessions %d for %d distinct tokens, forged cookies %d); sessions with a terminal answer: %d\n",
		r.fake.RefreshCalls(), fig.realCalls(), fig.needed, sumOutcomes(fig.forged), fig.excused)
	fmt.Fprintf(&b, "  real sessions' calls by outcome:%s\n", formatOutcomes(fig.outcomes))
	fmt.Fprintf(&b, "  forged cookies' calls by outcome:%s\n", formatOutcomes(fig.forged))
	fmt.Fprintf(&b, "  bound: %d calls ≤ 3 × %d tokens + %d transient failures = %d; tokens reused after rotation: %d; overlapping calls: %d\n",
		fig.realCalls(), fig.needed, fig.transientCalls(), 3*fig.needed+fig.transientCalls(), len(fig.reused), len(fig.concurrent))
	fmt.Fprintf(&b, "JWKS: %d fetch attempts during the fault phase (some during the outage), %d in all\n", jwksDuring, r.fake.Calls(fakeworkos.EndpointJWKS))
	steps := make([]string, 0, len(injected))
	for name, n := range injected {
		steps = append(steps, fmt.Sprintf("%s ×%d", name, n))
	}
	sort.Strings(steps)
	fmt.Fprintf(&b, "fault steps run: %s\n", strings.Join(steps, ", "))
	fmt.Fprintf(&b, "Traefik RSS: boot %.1f MiB, after warm-up %.1f MiB, middle %.1f MiB, end %.1f MiB (growth after warm-up %+.1f MiB, limit %.0f)\n",
		rss["boot"], rss["after warm-up"], rss["middle"], rss["end"], rss["end"]-rss["after warm-up"], rssGrowthLimit)
	t.Log("soak figures:\n" + b.String())
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration {
		return s[min(len(s)-1, int(q*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return at(0.50), at(0.99)
}

func sumOutcomes(m map[refreshOutcome]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func formatOutcomes(m map[refreshOutcome]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %d;", k, m[refreshOutcome(k)])
	}
	return b.String()
}

// trimTraefikLog shortens Traefik's log before traefiktest prints it for a
// failed test (cleanups run last-registered first, so this one runs before
// traefiktest's). At DEBUG Traefik writes a line per request, and the
// plugin one per failed refresh: hundreds of thousands of lines in a soak,
// which would bury the report. The lines about the sessions involved are
// already in the report; this keeps the start-up and the last lines.
func trimTraefikLog(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	const head, tail = 60, 300
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "Service selected by WRR") {
			kept = append(kept, line)
		}
	}
	if len(kept) > head+tail {
		elided := fmt.Sprintf("… %d lines left out by the soak test (the full log was %d bytes) …", len(kept)-head-tail, len(data))
		kept = append(append(kept[:head:head], elided), kept[len(kept)-tail:]...)
	}
	// Write then rename: Traefik still holds the old file open.
	tmp := path + ".trimmed"
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")), 0o644); err == nil {
		_ = os.Rename(tmp, path)
	}
}
