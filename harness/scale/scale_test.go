package scale

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// run is the state of the one scale run both tests read.
type run struct {
	p      params
	ctx    context.Context
	cancel context.CancelFunc
	logf   func(format string, args ...any)

	tl       *timeline
	fake     *fakeworkos.Server
	rec      *recorder
	minter   *minter
	up       *upstream
	traefik  *traefikProc
	sessions []*userSession
	hot      int

	userClient, attackClient *http.Client
	failures                 *examples
	reissueSem               chan struct{}

	victims    []victim
	spentAt    time.Time
	replayNext atomic.Int64

	baselineMu  sync.Mutex
	baselineLat []time.Duration

	mintTime, warmTime                 time.Duration
	warmStart, warmEnd                 time.Time
	cleanStart, cleanEnd               time.Time
	attackStart, attackEnd             time.Time
	stretched                          time.Duration // added to the users-only phase for the replay window
	jwksBefore, jwksAfter              int           // fake.Calls(EndpointJWKS) at the attack's start and end
	selfCPU                            time.Duration // this process's CPU time over the measured phases
	bootRSS, baselineRSS, baselineBoot float64
	report                             string
	printed                            bool

	cleanupMu sync.Mutex
	cleanups  []func()
}

func (r *run) onCleanup(f func()) {
	r.cleanupMu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.cleanupMu.Unlock()
}

// close stops everything the run started, last first.
func (r *run) close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.cleanupMu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

var (
	shared     *run
	sharedErr  error
	sharedOnce sync.Once
)

// TestMain stops the shared run's processes and servers after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// sharedRun performs the scale run once, inside the first test that asks
// for it, and hands the same results to both tests.
func sharedRun(t *testing.T) *run {
	t.Helper()
	bin := traefiktest.RequireBinary(t)
	sharedOnce.Do(func() {
		p, err := loadParams()
		if err != nil {
			sharedErr = err
			return
		}
		budget := p.budget()
		if deadline, ok := t.Deadline(); ok && time.Until(deadline) < budget {
			sharedErr = fmt.Errorf("the run may take up to %s but the test binary stops in %s: pass -timeout %s",
				budget.Round(time.Minute), time.Until(deadline).Round(time.Second), (budget + 5*time.Minute).Round(time.Minute))
			return
		}
		shared = &run{p: p, logf: t.Logf}
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		shared.ctx, shared.cancel = ctx, cancel
		sharedErr = shared.execute(bin)
		shared.logf = func(string, ...any) {}
		if sharedErr == nil || !shared.warmStart.IsZero() {
			// A run that broke off after the warm-up began still shows
			// what it measured up to then.
			shared.report = shared.fullReport()
		}
		if sharedErr != nil && shared.traefik != nil {
			sharedErr = fmt.Errorf("%w\nTraefik's output: %s", sharedErr, shared.traefik.tailText())
		}
		// What was kept for the report is all the tests need.
		shared.close()
	})
	if sharedErr != nil {
		if shared != nil && shared.report != "" && !shared.printed {
			shared.printed = true
			t.Log("\nthe run broke off; what it measured:\n" + shared.report)
		}
		t.Fatal(sharedErr)
	}
	if !shared.printed {
		shared.printed = true // the first test to read the run prints its report
		t.Log("\n" + shared.report)
	}
	return shared
}

// budget bounds the whole run generously; the run is cancelled past it.
func (p params) budget() time.Duration {
	n := time.Duration(p.sessions)
	d := 2*time.Minute /* starts, stops */ + n*4*time.Millisecond /* minting */ + n*4*time.Millisecond /* warm-up */ +
		p.baseline + p.duration
	if p.attack {
		d += p.attackDuration + replayWindow + 30*time.Second
	}
	return d
}

// TestScale runs the plugin in real Traefik in front of SCALE_SESSIONS
// distinct valid sessions and checks the users' side: no 5xx, no lost
// session, no refused signed-in request, one WorkOS call per rotation,
// latency, the cache hit rate when the plugin reports it, memory.
func TestScale(t *testing.T) {
	r := sharedRun(t)
	users := span{r.tl.slot(r.warmStart), r.tl.slot(r.cleanEnd)}
	checks := r.userChecks(users, "warm-up and users-only phase")
	checks = append(checks, r.latencyChecks(r.cleanStart, r.cleanEnd)...)
	checks = append(checks, r.hitRateCheck(), r.memoryCheck())
	r.assert(t, "TestScale", checks)
}

// TestScaleUnderAttack checks the attack phase: spent-cookie replays cost
// at most one WorkOS call per spent token per terminalMemory, forged
// cookies cost no WorkOS call and no JWKS fetch, and the real users beside
// them see no 5xx, no lost session and a p99 within the bound.
func TestScaleUnderAttack(t *testing.T) {
	r := sharedRun(t)
	if !r.p.attack {
		t.Skip("SCALE_ATTACK=0: the run had no attack phase")
	}
	sp := r.tl.spanOf(r.attackStart, r.attackEnd)
	checks := r.userChecks(sp, "attack phase")
	checks = append(checks, r.latencyChecks(r.attackStart, r.attackEnd)...)

	// The replays start with the attack: each spent token may cost one
	// call, then one more per terminalMemory the attack lasts.
	periods := int64(math.Ceil(r.attackEnd.Sub(r.attackStart).Seconds() / terminalMemory.Seconds()))
	checks = append(checks,
		countCheck("WorkOS refresh calls caused by spent-cookie replays", r.tl.sum(sp, mReplayCalls), int64(len(r.victims))*periods),
		countCheck("spent-cookie replays signed in (after the replay window)", r.tl.sum(sp, mReplaySignedIn), maxReplaysSignedIn),
		countCheck("WorkOS calls no user or victim explains (forged flood)", r.tl.sum(sp, mUnknownCalls)+r.tl.sum(sp, mOtherCalls), maxForgedWorkOSCalls),
		countCheck("JWKS fetches not explained by the key set's age", r.unexplainedJWKS(), maxForgedJWKSFetches),
		countCheck("attackers' 5xx", r.tl.sum(sp, mAttack5xx), maxServerErrors),
	)
	r.assert(t, "TestScaleUnderAttack", checks)
}

// userChecks are the users' invariants over a span.
func (r *run) userChecks(sp span, where string) []check {
	calls, rotations := r.tl.sum(sp, mRefreshCalls), r.tl.sum(sp, mRotations)
	perRotation := check{name: "WorkOS refresh calls per rotation (" + where + ")",
		got:   fmt.Sprintf("%s (%d calls, %d rotations)", callsPerRotation(calls, rotations), calls, rotations),
		bound: fmt.Sprintf("≤ %.1f", maxCallsPerRotation), ok: float64(calls) <= maxCallsPerRotation*float64(rotations)}
	return []check{
		countCheck("users' 5xx ("+where+")", r.tl.sum(sp, mUser5xx), maxServerErrors),
		countCheck("users' requests without an answer in time ("+where+")", r.tl.sum(sp, mUserErr), maxUserTimeouts),
		countCheck("lost sessions ("+where+")", r.tl.sum(sp, mLost), maxLostSessions),
		countCheck("refused signed-in requests of live sessions ("+where+")", r.tl.sum(sp, mFailed), maxFailedSignedIn),
		countCheck("wrong or missing identity at the upstream ("+where+")", r.tl.sum(sp, mIdentity), maxIdentityErrors),
		perRotation,
	}
}

// latencyChecks bound the users' p99 in every row of a phase.
func (r *run) latencyChecks(from, to time.Time) []check {
	var out []check
	for _, rw := range r.rows() {
		if rw.from.Before(from) || rw.to.After(to) {
			continue
		}
		lat := r.tl.latencies(rw.sp)
		p99 := quantile(lat, 0.99)
		out = append(out, check{name: "users' p99 latency, " + rw.label,
			got:   fmt.Sprintf("%s ms (max %s ms, %d over %s)", ms(p99), ms(quantile(lat, 1)), r.tl.sum(rw.sp, mSlow), stallThreshold),
			bound: "≤ " + maxUserP99.String(), ok: p99 <= maxUserP99})
	}
	return out
}

// steadyEvents are the session_cache events whose whole interval lies
// after the warm-up.
func (r *run) steadyEvents() []cacheEvent {
	var out []cacheEvent
	for _, ev := range r.tl.cacheEvents() {
		if !ev.since.Before(r.warmEnd) {
			out = append(out, ev)
		}
	}
	return out
}

func (r *run) hitRateCheck() check {
	c := check{name: "session cache hit rate, steady state", bound: "≥ " + pct(minSteadyHitRate)}
	all := r.tl.cacheEvents()
	steady := r.steadyEvents()
	switch {
	case len(all) == 0:
		c.got, c.skip = "n/a", "the plugin emitted no session_cache event"
		return c
	case len(steady) == 0:
		c.got, c.skip = "n/a", fmt.Sprintf("none of the %d session_cache events covers an interval after the warm-up (run longer)", len(all))
		return c
	}
	rate, inserts, signedIn, ok := r.tl.hitRate(steady)
	if !ok {
		c.got, c.skip = "n/a", "no signed-in request in the events' intervals"
		return c
	}
	c.got = fmt.Sprintf("%s (%d inserts for %d signed-in requests over %d events)", pct(rate), inserts, signedIn, len(steady))
	c.ok = rate >= minSteadyHitRate
	return c
}

func (r *run) memoryCheck() check {
	all := r.tl.everything()
	peak := r.tl.maxRSS(all)
	over := peak - r.baselineRSS
	c := check{name: "Traefik's peak RSS over the do-nothing-plugin baseline",
		got:   fmt.Sprintf("%.1f MiB (peak %.1f − baseline %.1f)", over, peak, r.baselineRSS),
		bound: fmt.Sprintf("≤ %.0f MiB", maxRSSOverBaselineMiB), ok: over <= maxRSSOverBaselineMiB}
	if r.p.sessions < rssCheckSessions {
		c.skip = fmt.Sprintf("asserted only for runs of ≥ %d sessions", rssCheckSessions)
	}
	return c
}

// unexplainedJWKS counts the JWKS fetches during the attack phase that
// came sooner than jwksMaxAge after the previous fetch.
func (r *run) unexplainedJWKS() int64 {
	var n int64
	var prev time.Time
	for _, at := range r.rec.jwksFetches() {
		inAttack := !at.Before(r.attackStart) && at.Before(r.attackEnd)
		if inAttack && (prev.IsZero() || at.Sub(prev) < jwksMaxAge-5*time.Second) {
			n++
		}
		prev = at
	}
	return n
}

func (r *run) assert(t *testing.T, name string, checks []check) {
	t.Helper()
	t.Log("\n" + formatChecks(name+" against the specification:", checks))
	failed := 0
	for _, c := range checks {
		if c.skip == "" && !c.ok {
			failed++
			t.Errorf("%s: %s (bound %s)", c.name, c.got, c.bound)
		}
	}
	if failed > 0 {
		if f := r.failures.String(); f != "" {
			t.Log("failures seen:\n" + f)
		}
	}
}

// execute performs the run: set-up, the baseline Traefik, the warm-up, the
// users-only phase and the attack phase.
func (r *run) execute(bin string) error {
	p := r.p
	r.tl = newTimeline(time.Now())
	r.failures = newExamples()
	r.reissueSem = make(chan struct{}, 4)
	r.userClient, r.attackClient = newClient(p.requestTimeout), newClient(p.requestTimeout)
	r.onCleanup(r.userClient.CloseIdleConnections)
	r.onCleanup(r.attackClient.CloseIdleConnections)
	r.logf("scale run: %d sessions, %.0f req/s of real users, token lifetime %s%s; users-only phase %s, attack %t (%s, %d spent cookies at %.0f/s, forged cookies at %.0f/s)",
		p.sessions, p.rate, p.tokenTTL, map[bool]string{true: " (auto)", false: ""}[p.ttlDerived], p.duration,
		p.attack, p.attackDuration, p.spent, p.replayRate, p.forgedRate)
	r.logf("time scaling: %s", p.scaling())

	r.fake = fakeworkos.New(fakeworkos.Options{AccessTokenTTL: p.tokenTTL})
	r.rec = newRecorder(r.fake, r.tl)
	fakeURL, stopFake, err := serveHandler(r.rec)
	if err != nil {
		return err
	}
	r.onCleanup(stopFake)
	r.up = &upstream{}
	upURL, stopUp, err := serveHandler(r.up)
	if err != nil {
		return err
	}
	r.onCleanup(stopUp)
	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		return err
	}
	r.minter = &minter{fake: r.fake, keyring: keyring, ttl: p.tokenTTL}

	root, err := loader.RepoRoot()
	if err != nil {
		return err
	}
	u, _ := url.Parse(fakeURL)
	config := map[string]any{
		"clientId": r.fake.ClientID(), "apiKey": r.fake.APIKey(), "cookiePassword": cookiePassword,
		"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
		"debug":          true,
		"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
	}
	pluginDir := root
	if p.pluginDir != "" {
		pluginDir = p.pluginDir
		r.logf("plugin source: %s", pluginDir)
	}
	r.traefik, err = startTraefik("authkit", bin, []pluginSpec{{traefiktest.PluginAlias, loader.ModuleName, pluginDir}},
		dynamicConfig(upURL, "authkit", map[string]any{traefiktest.PluginAlias: config}), kindPublic.path, r.tl.onTraefikLine)
	if err != nil {
		return err
	}
	r.onCleanup(r.traefik.stop)
	go r.sampleRSS()
	if r.bootRSS, err = r.traefik.rssMiB(); err != nil {
		return err
	}
	r.logf("Traefik with the plugin is up (pid %d, %.1f MiB)", r.traefik.pid(), r.bootRSS)

	if p.attack {
		if err := r.spendVictims(p.spent); err != nil {
			return err
		}
		r.logf("%d victims refreshed through Traefik: their old cookies carry spent refresh tokens", len(r.victims))
	}

	start := time.Now()
	r.sessions, err = mintSessions(r.ctx, r.minter, r.rec, p.sessions, p.tokenTTL, func(done int) {
		r.logf("  minted %d sessions (%s)", done, time.Since(start).Round(time.Second))
	})
	if err != nil {
		return fmt.Errorf("minting sessions: %w", err)
	}
	r.mintTime = time.Since(start)
	r.hot = max(1, int(float64(p.sessions)*hotSessions))
	r.logf("minted and sealed %d sessions in %s (%.0f/s)", p.sessions, r.mintTime.Round(100*time.Millisecond), float64(p.sessions)/r.mintTime.Seconds())

	if err := r.runBaseline(bin, root); err != nil {
		return err
	}

	r.warmStart = time.Now()
	r.warmUp(r.ctx)
	r.warmEnd = time.Now()
	r.warmTime = r.warmEnd.Sub(r.warmStart)
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	r.logf("warm-up: every session touched once in %s (%.0f req/s), Traefik at %.1f MiB",
		r.warmTime.Round(100*time.Millisecond), float64(p.sessions)/r.warmTime.Seconds(), r.rss())

	// The users' traffic runs on through both measured phases.
	usersStop, stopUsers := context.WithCancel(r.ctx)
	usersDone := make(chan struct{})
	r.cleanStart = time.Now()
	selfStart := selfCPU()
	go func() { defer close(usersDone); r.usersLoad(usersStop, r.traefik.url, true) }()
	cleanEnd := r.cleanStart.Add(p.duration)
	if p.attack {
		if ready := r.spentAt.Add(replayWindow + 5*time.Second); ready.After(cleanEnd) {
			r.stretched = ready.Sub(cleanEnd)
			cleanEnd = ready
		}
	}
	r.logf("users-only phase: %s%s", cleanEnd.Sub(r.cleanStart).Round(time.Second),
		map[bool]string{true: fmt.Sprintf(" (stretched by %s so that the spent cookies are past the %s replay window)", r.stretched.Round(time.Second), replayWindow), false: ""}[r.stretched > 0])
	r.sleepUntil(cleanEnd)
	r.cleanEnd = time.Now()
	if p.attack && r.ctx.Err() == nil {
		r.attackStart = r.cleanEnd
		r.jwksBefore = r.fake.Calls(fakeworkos.EndpointJWKS)
		attackStop, stopAttack := context.WithTimeout(r.ctx, p.attackDuration)
		r.logf("attack phase: %s of spent-cookie replays and forged cookies beside the users", p.attackDuration)
		r.attackLoad(attackStop)
		stopAttack()
		r.attackEnd = time.Now()
		r.jwksAfter = r.fake.Calls(fakeworkos.EndpointJWKS)
	} else {
		r.attackStart, r.attackEnd = r.cleanEnd, r.cleanEnd
	}
	stopUsers()
	<-usersDone
	r.selfCPU = selfCPU() - selfStart
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("the run did not finish within its budget of %s: %w", p.budget(), err)
	}
	if !r.traefik.alive() {
		return fmt.Errorf("Traefik exited during the run: %s", r.traefik.tailText())
	}
	return nil
}

// selfCPU is the CPU time this process (load generator, fake WorkOS,
// upstream) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *run) sleepUntil(t time.Time) {
	select {
	case <-r.ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

func (r *run) rss() float64 {
	v, _ := r.traefik.rssMiB()
	return v
}

// sampleRSS records the plugin Traefik's memory and CPU time, and the
// machine's load, every second.
func (r *run) sampleRSS() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case now := <-tick.C:
			if v, err := r.traefik.rssMiB(); err == nil {
				cpu, _ := cpuSeconds(r.traefik.pid())
				r.tl.sample(now, v, cpu, loadAverage())
			}
		}
	}
}

// runBaseline runs a Traefik with only the do-nothing plugin under the
// same request pattern for p.baseline and keeps its memory.
func (r *run) runBaseline(bin, root string) error {
	// Its own upstream: without the plugin no request carries an identity.
	upURL, stopUp, err := serveHandler(&upstream{})
	if err != nil {
		return err
	}
	defer stopUp()
	noop := pluginSpec{"noop", noopModule, filepath.Join(root, "harness", "bench", "noop")}
	base, err := startTraefik("noop", bin, []pluginSpec{noop}, dynamicConfig(upURL, "noop", map[string]any{"noop": map[string]any{}}), kindPublic.path, nil)
	if err != nil {
		return fmt.Errorf("baseline Traefik: %w", err)
	}
	defer base.stop()
	r.baselineBoot, _ = base.rssMiB()
	stop, cancel := context.WithTimeout(r.ctx, r.p.baseline)
	r.usersLoad(stop, base.url, false)
	cancel()
	if r.baselineRSS, err = base.rssMiB(); err != nil {
		return err
	}
	r.logf("baseline: Traefik with only the do-nothing plugin, %s at %.0f req/s: %.1f MiB (%.1f at boot)",
		r.p.baseline, r.p.rate, r.baselineRSS, r.baselineBoot)
	return r.ctx.Err()
}

// dynamicConfig routes every path through one plugin middleware to the
// upstream.
func dynamicConfig(upstream, middleware string, plugin map[string]any) map[string]any {
	return map[string]any{"http": map[string]any{
		"routers": map[string]any{"app": map[string]any{
			"rule": "PathPrefix(`/`)", "entryPoints": []string{"web"}, "service": "app", "middlewares": []string{middleware},
		}},
		"middlewares": map[string]any{middleware: map[string]any{"plugin": plugin}},
		"services": map[string]any{"app": map[string]any{
			"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": upstream}}},
		}},
	}}
}

// fullReport is the tables and the summary.
func (r *run) fullReport() string {
	var b strings.Builder
	p := r.p
	fmt.Fprintf(&b, "scale run: %d sessions, %.0f req/s of real users (%.0f%% anonymous; of the signed-in %.0f%% documents, %.0f%% to a hot %.0f%% of sessions)\n",
		p.sessions, p.rate, 100*anonymousShare, 100*documentShare, 100*hotShare, 100*hotSessions)
	fmt.Fprintf(&b, "time scaling: %s\n", p.scaling())
	fmt.Fprintf(&b, "minting: %d sessions signed in and sealed in %s (%.0f/s); warm-up: %s (%.0f req/s)\n",
		p.sessions, r.mintTime.Round(100*time.Millisecond), float64(p.sessions)/r.mintTime.Seconds(),
		r.warmTime.Round(100*time.Millisecond), float64(p.sessions)/r.warmTime.Seconds())
	b.WriteString("\n" + r.usersTable())
	if p.attack {
		b.WriteString("\n" + r.attackTable())
	}
	b.WriteString("\n" + legend + "\n\n")

	all := r.tl.everything()
	peak, end := r.tl.maxRSS(all), r.tl.lastRSS(all)
	warm := r.tl.lastRSS(span{0, r.tl.slot(r.warmEnd) + 1})
	fmt.Fprintf(&b, "memory: Traefik with the plugin %.1f MiB at boot, %.1f after the warm-up, peak %.1f, end %.1f; "+
		"do-nothing-plugin Traefik %.1f MiB after %s of the same traffic (%.1f at boot); peak over baseline %.1f MiB\n",
		r.bootRSS, warm, peak, end, r.baselineRSS, p.baseline, r.baselineBoot, peak-r.baselineRSS)
	bl := append([]time.Duration(nil), r.baselineLat...)
	sortDurations(bl)
	clean := r.tl.latencies(r.tl.spanOf(r.cleanStart, r.cleanEnd))
	fmt.Fprintf(&b, "latency of real users: users-only phase p50 %s ms, p99 %s ms, max %s ms", ms(quantile(clean, 0.5)), ms(quantile(clean, 0.99)), ms(quantile(clean, 1)))
	if p.attack {
		att := r.tl.latencies(r.tl.spanOf(r.attackStart, r.attackEnd))
		fmt.Fprintf(&b, "; under attack p50 %s ms, p99 %s ms, max %s ms", ms(quantile(att, 0.5)), ms(quantile(att, 0.99)), ms(quantile(att, 1)))
	}
	fmt.Fprintf(&b, "; do-nothing-plugin Traefik p50 %s ms, p99 %s ms\n", ms(quantile(bl, 0.5)), ms(quantile(bl, 0.99)))
	measured := r.tl.spanOf(r.cleanStart, r.attackEnd)
	fmt.Fprintf(&b, "CPU over the measured phases: Traefik %.2f cores, the harness process (load generator, fake WorkOS, upstream) %.2f cores, of 2\n",
		r.tl.cores(measured), r.selfCPU.Seconds()/r.attackEnd.Sub(r.cleanStart).Seconds())
	if steady := r.steadyEvents(); len(steady) > 0 {
		rate, ins, n, _ := r.tl.hitRate(steady)
		fmt.Fprintf(&b, "session cache (plugin events): steady-state hit rate %s, %d inserts for %d signed-in requests over %d events\n", pct(rate), ins, n, len(steady))
	} else {
		fmt.Fprintf(&b, "session cache: n/a (%d session_cache events from the plugin, none after the warm-up)\n", len(r.tl.cacheEvents()))
	}
	whole := r.tl.everything()
	fmt.Fprintf(&b, "WorkOS: %d refresh calls with users' tokens for %d rotations (%s per rotation), %d answers gave users a new session cookie; %d JWKS fetches in all; the fake's own count of refresh calls (users, victims, replays) %d\n",
		r.tl.sum(whole, mRefreshCalls), r.tl.sum(whole, mRotations), callsPerRotation(r.tl.sum(whole, mRefreshCalls), r.tl.sum(whole, mRotations)),
		r.tl.sum(whole, mRefreshed), r.tl.sum(whole, mJWKS), r.fake.RefreshCalls())
	if p.attack {
		sp := r.tl.spanOf(r.attackStart, r.attackEnd)
		fmt.Fprintf(&b, "attack: %d spent tokens (spent %s before the attack), %d replays → %d WorkOS calls (%.2f per spent token), %d signed in; "+
			"%d forged cookies → %d unexplained WorkOS calls, %d unexplained JWKS fetches (fake.Calls(jwks) %d before the attack, %d after)\n",
			len(r.victims), r.attackStart.Sub(r.spentAt).Round(time.Second), r.tl.sum(sp, mReplaySent), r.tl.sum(sp, mReplayCalls),
			float64(r.tl.sum(sp, mReplayCalls))/float64(max(1, len(r.victims))), r.tl.sum(sp, mReplaySignedIn),
			r.tl.sum(sp, mForgedSent), r.tl.sum(sp, mUnknownCalls)+r.tl.sum(sp, mOtherCalls), r.unexplainedJWKS(), r.jwksBefore, r.jwksAfter)
	}
	if n := r.up.wrong.Load(); n > 0 {
		fmt.Fprintf(&b, "upstream: %d requests with a wrong or missing identity\n", n)
	}
	b.WriteString(r.pluginLines() + "\n")
	if f := r.failures.String(); f != "" {
		b.WriteString("failures seen:\n" + f)
	}
	return b.String()
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
