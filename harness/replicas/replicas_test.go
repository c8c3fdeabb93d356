package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The specification these tests hold the plugin to (SPEC "Several Traefik
// replicas", "Refresh and keys"). Every replica reads the same cookies, so
// a refresh that reaches WorkOS from several replicas at once must never
// sign a user out, with or without WorkOS's replay grace; with a shared
// Redis the replicas make one refresh call per rotation and a sign-out
// reaches every replica within a second. Redis down, slow or refusing the
// password never fails a request: the replicas work alone, as without it.
const (
	// Always, in every mode and phase.
	maxServerErrors    = 0 // 5xx answers
	maxTransportErrors = 0 // requests that got no answer
	maxUnexpected      = 0 // 404, 403, 2xx without identity, …
	maxFatal           = 0 // the upstream saw another user or session

	// Without Redis (and while Redis is unusable).
	maxLostSessions = 0
	// With WorkOS's replay grace, even without Redis, no request of a live
	// session is refused.
	maxFailedLiveWithGrace = 0

	// With Redis.
	maxFailedLiveShared       = 0
	maxCallsPerRotationShared = 1.00 // compared at two decimals, as printed
	maxSignOutShared          = time.Second

	// redisReplyDelay is the slow-Redis fault: every reply late by this.
	redisReplyDelay = 200 * time.Millisecond
	// settle follows a fault before a phase is held to the Redis
	// expectations again: bursts started during the fault finish and the
	// replicas reconnect.
	settle = 3 * time.Second
)

// expectation is which of the thresholds above a phase is held to.
type expectation int

const (
	// expectAlone: replicas work alone (no Redis, or Redis unusable).
	expectAlone expectation = iota
	// expectAloneWithGrace: alone, with WorkOS's replay grace.
	expectAloneWithGrace
	// expectShared: a working Redis shared by every replica.
	expectShared
)

func (e expectation) String() string {
	switch e {
	case expectAloneWithGrace:
		return "alone with grace: 0 lost, 0 failed requests of live sessions, 0 5xx"
	case expectShared:
		return fmt.Sprintf("shared Redis: 0 lost, 0 failed requests of live sessions, %.2f calls per rotation, 0 5xx", maxCallsPerRotationShared)
	}
	return "alone: 0 lost sessions, 0 5xx"
}

// TestReplicasStrict: N replicas without Redis, refresh tokens strictly
// single-use (no grace). Asserts 0 lost sessions and 0 5xx; reports the
// failed requests, the WorkOS calls per rotation and the sign-out window.
func TestReplicasStrict(t *testing.T) {
	cfg := loadConfig(t)
	cl := startCluster(t, cfg, 0, "")
	r := newRun(t, cl, "strict", "off", 0)
	r.load([]step{{phase: "load", dur: cfg.duration, expect: expectAlone}})
	r.signOut(false)
	r.finish()
}

// TestReplicasGrace: as TestReplicasStrict with the fake answering a replay
// of a just-rotated refresh token within REPLICAS_GRACE (default 30 s)
// with the same new pair, as WorkOS documents. Also asserts 0 failed
// requests of live sessions.
func TestReplicasGrace(t *testing.T) {
	cfg := loadConfig(t)
	cl := startCluster(t, cfg, cfg.grace, "")
	r := newRun(t, cl, "grace", "off", cfg.grace)
	r.load([]step{{phase: "load", dur: cfg.duration, expect: expectAloneWithGrace}})
	r.signOut(false)
	r.finish()
}

// TestReplicasRedis: N replicas sharing a redis-server the test starts
// (plugin key redisUrl), strict single-use tokens. Asserts 0 lost, 0
// failed requests of live sessions, 1.00 WorkOS calls per rotation, and
// that every replica refuses a signed-out cookie within 1 s.
func TestReplicasRedis(t *testing.T) {
	cfg := loadConfig(t)
	redis := startRedis(t, "")
	cl := startCluster(t, cfg, 0, "redis://"+redis.Addr())
	r := newRun(t, cl, "redis", "on", 0)
	r.load([]step{{phase: "load", dur: cfg.duration, expect: expectShared}})
	r.signOut(true)
	r.finish()
}

// TestReplicasRedisFaults: the replicas reach Redis through a TCP proxy;
// each subtest runs the load through a fault and back. While Redis is
// unusable the replicas must behave as without it (0 lost, 0 5xx); once
// it is back, after a short settle, as with it (0 failed, 1.00 calls per
// rotation).
//
//	kill:     redis-server killed (SIGKILL), restarted empty on the same port
//	slow:     every Redis reply held back 200 ms
//	password: the replicas' redisUrl (reloaded from the file provider)
//	          points at a server with requirepass, without a password,
//	          then with a wrong one, then with the right one
func TestReplicasRedisFaults(t *testing.T) {
	cfg := loadConfig(t)
	redis := startRedis(t, "")
	proxy := startTCPProxy(t, redis.Addr())
	cl := startCluster(t, cfg, 0, "redis://"+proxy.Addr())
	p := faultPhase(cfg)

	t.Run("kill", func(t *testing.T) {
		r := newRun(t, cl, "redis-kill", "killed and restarted", 0)
		r.load([]step{
			{phase: "baseline", dur: p, expect: expectShared},
			{phase: "redis killed", dur: p, expect: expectAlone, enter: redis.Kill},
			{phase: "redis restarted", dur: settle, expect: expectAlone, enter: redis.Restart},
			{phase: "recovered", dur: p, expect: expectShared},
		})
		r.finish()
	})
	t.Run("slow", func(t *testing.T) {
		r := newRun(t, cl, "redis-slow", fmt.Sprintf("replies +%s", redisReplyDelay), 0)
		r.load([]step{
			{phase: "redis slow", dur: p, expect: expectAlone, enter: func() { proxy.SetDelay(redisReplyDelay) }},
			{phase: "redis fast again", dur: settle, expect: expectAlone, enter: func() { proxy.SetDelay(0) }},
			{phase: "recovered", dur: p, expect: expectShared},
		})
		r.finish()
	})
	t.Run("password", func(t *testing.T) {
		const password = "replicas-redis-password"
		locked := startRedis(t, password)
		r := newRun(t, cl, "redis-password", "requirepass", 0)
		r.load([]step{
			{phase: "no password", dur: p, expect: expectAlone, enter: func() { cl.setRedisURL(t, "redis://"+locked.Addr()) }},
			{phase: "wrong password", dur: p, expect: expectAlone, enter: func() { cl.setRedisURL(t, "redis://:wrong-"+password+"@"+locked.Addr()) }},
			{phase: "right password", dur: settle, expect: expectAlone, enter: func() { cl.setRedisURL(t, "redis://:"+password+"@"+locked.Addr()) }},
			{phase: "recovered", dur: p, expect: expectShared},
		})
		r.finish()
	})
}

// faultPhase is the length of each fault-test phase: at least one idle
// cycle, so every client bursts in it, and longer in longer runs.
func faultPhase(cfg runConfig) time.Duration {
	return max(cfg.tokenTTL+2*time.Second, cfg.duration/4)
}

// step is one phase of a run: entered by its action, held for dur (the
// action's time included), judged by expect.
type step struct {
	phase  string
	dur    time.Duration
	expect expectation
	enter  func()
}

// run is one test's load and what it measured.
type run struct {
	t      *testing.T
	cl     *cluster
	mode   string
	redis  string
	grace  time.Duration
	stats  *stats
	rows   []summary
	checks map[string]expectation
}

func newRun(t *testing.T, cl *cluster, mode, redis string, grace time.Duration) *run {
	return &run{t: t, cl: cl, mode: mode, redis: redis, grace: grace, stats: newStats(), checks: map[string]expectation{}}
}

// load drives every client through the steps and records a row per step.
func (r *run) load(steps []step) {
	r.t.Helper()
	cl := r.cl
	clients := cl.makeClients(r.t, cl.cfg.clients)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	// Phase names are prefixed by the mode, so the recorder keeps the
	// subtests of one cluster apart.
	key := func(phase string) string { return r.mode + "/" + phase }
	cl.setPhase(key(steps[0].phase))
	callsBefore := cl.fake.RefreshCalls()
	go func() {
		defer close(done)
		cl.drive(ctx, clients, r.stats)
	}()
	for _, s := range steps {
		start := time.Now()
		cl.setPhase(key(s.phase))
		if s.enter != nil {
			s.enter()
		}
		time.Sleep(time.Until(start.Add(s.dur)))
		r.rows = append(r.rows, r.row(s.phase, key(s.phase), time.Since(start)))
		r.checks[s.phase] = s.expect
	}
	stop()
	select {
	case <-done:
	case <-time.After(2 * requestTimeout):
		r.t.Fatalf("clients still busy %s after the load ended", 2*requestTimeout)
	}
	// Bursts still in flight at a step's end were counted after its row
	// was taken: take the rows again now that every client is done.
	total := summary{Mode: r.mode, Phase: "all", Replicas: len(cl.replicas), Clients: cl.cfg.clients, Redis: r.redis, Grace: r.grace.String()}
	var keys []string
	for i := range r.rows {
		p := r.rows[i].Phase
		r.rows[i] = r.row(p, key(p), time.Duration(r.rows[i].Seconds*float64(time.Second)))
		total.merge(r.rows[i])
		keys = append(keys, key(p))
	}
	p50, p99 := r.stats.percentiles(keys...)
	total.P50ms, total.P99ms = ms(p50), ms(p99)
	total.finishRatio()
	if len(r.rows) > 1 {
		r.rows = append(r.rows, total)
	}
	if calls := cl.fake.RefreshCalls() - callsBefore; calls != total.RefreshCalls {
		r.t.Logf("note: the fake counted %d refresh calls during the load, the recorder %d", calls, total.RefreshCalls)
	}
}

// row summarizes one phase.
func (r *run) row(phase, key string, dur time.Duration) summary {
	tl := r.stats.tally(key)
	rf := r.cl.rec.figures(key)
	s := summary{
		Mode: r.mode, Phase: phase, Seconds: dur.Round(100 * time.Millisecond).Seconds(),
		Replicas: len(r.cl.replicas), Clients: r.cl.cfg.clients, Redis: r.redis, Grace: r.grace.String(),
		tally: tl, RefreshCalls: rf.Calls, Rotations: rf.Rotations, GraceReplays: rf.GraceReplays,
		InvalidGrant: rf.InvalidGrant, OtherAnswers: rf.Other,
	}
	p50, p99 := r.stats.percentiles(key)
	s.P50ms, s.P99ms = ms(p50), ms(p99)
	s.finishRatio()
	return s
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// signOut runs the sign-out window after the load, adds it to the last
// row, and with shared holds it to maxSignOutShared.
func (r *run) signOut(shared bool) {
	r.t.Helper()
	results, err := r.cl.signOutWindow(r.stats)
	if err != nil {
		r.t.Errorf("sign-out window: %v", err)
		return
	}
	last := &r.rows[len(r.rows)-1]
	last.SignOut = results
	rf := r.cl.rec.figures("sign-out")
	polls := 0
	for _, res := range results {
		polls += res.Polls
	}
	last.SignOutRefreshCalls = rf.Calls
	r.t.Logf("sign-out window: %d polls with the old cookie made %d WorkOS refresh calls (%d invalid_grant)", polls, rf.Calls, rf.InvalidGrant)
	if !shared {
		return
	}
	var slow []string
	for _, res := range results {
		if !res.Refused || res.AfterSeconds > maxSignOutShared.Seconds() || res.AcceptedAgain > 0 {
			slow = append(slow, fmt.Sprintf("replica %d: %s", res.Replica, res))
		}
	}
	if len(slow) > 0 {
		r.t.Errorf("after a sign-out through replica 1, every replica must refuse the old cookie within %s (SPEC \"Several Traefik replicas\"): %s",
			maxSignOutShared, strings.Join(slow, "; "))
	}
}

// finish prints the table and summary lines, writes the JSON, and checks
// every phase against its expectation.
func (r *run) finish() {
	r.t.Helper()
	r.t.Log("\n" + table(r.rows))
	for _, row := range r.rows {
		r.t.Log(row.line())
	}
	if dir := r.cl.cfg.reportDir; dir != "" {
		name := "replicas-" + strings.NewReplacer("/", "-", " ", "_").Replace(r.t.Name()) + ".json"
		data, _ := json.MarshalIndent(r.rows, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
			r.t.Errorf("writing the report: %v", err)
		} else {
			r.t.Logf("report written to %s", filepath.Join(dir, name))
		}
	}
	// The recorder counts from the wire; the fake counts what it did.
	if rf := r.cl.rec.figures(r.cl.recPhases()...); rf.Rotations != r.cl.fake.Rotations() || rf.GraceReplays != r.cl.fake.GraceReplays() {
		r.t.Logf("note: the fake counted %d rotations and %d grace replays so far, the recorder %d and %d",
			r.cl.fake.Rotations(), r.cl.fake.GraceReplays(), rf.Rotations, rf.GraceReplays)
	}

	failed := false
	for _, row := range r.rows {
		e, ok := r.checks[row.Phase]
		if !ok {
			continue
		}
		problems := row.violations(e)
		if row.Bursts > 0 && row.Rotations == 0 && row.Seconds >= r.cl.cfg.tokenTTL.Seconds() {
			problems = append(problems, "no rotation at all: the phase exercised no refresh")
		}
		if len(problems) > 0 {
			failed = true
			r.t.Errorf("%s, phase %q, held to %q:\n  %s", r.mode, row.Phase, e, strings.Join(problems, "\n  "))
		}
	}
	if failed || r.t.Failed() {
		if ex := r.stats.exampleReport(); ex != "" {
			r.t.Log("\n" + ex)
		}
	}
}

// recPhases lists every phase the recorder has figures for.
func (cl *cluster) recPhases() []string {
	cl.rec.mu.Lock()
	defer cl.rec.mu.Unlock()
	out := make([]string, 0, len(cl.rec.byPhase))
	for p := range cl.rec.byPhase {
		out = append(out, p)
	}
	return out
}

// summary is one row of the report: a phase of a mode.
type summary struct {
	Mode     string  `json:"mode"`
	Phase    string  `json:"phase"`
	Seconds  float64 `json:"seconds"`
	Replicas int     `json:"replicas"`
	Clients  int     `json:"clients"`
	Redis    string  `json:"redis"`
	Grace    string  `json:"grace"`
	tally
	// P50ms and P99ms are the latency of the answered requests.
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	RefreshCalls int     `json:"refresh_calls"`
	Rotations    int     `json:"rotations"`
	GraceReplays int     `json:"grace_replays"`
	InvalidGrant int     `json:"invalid_grant"`
	OtherAnswers int     `json:"other_refresh_answers"`
	// CallsPerRotation is RefreshCalls / Rotations; nil without rotations.
	CallsPerRotation *float64        `json:"calls_per_rotation"`
	SignOut          []signOutResult `json:"sign_out,omitempty"`
	// SignOutRefreshCalls is how many refresh calls the polls with the
	// signed-out cookie made.
	SignOutRefreshCalls int `json:"sign_out_refresh_calls,omitempty"`
}

func (s *summary) merge(o summary) {
	s.Seconds += o.Seconds
	s.tally.add(o.tally)
	s.RefreshCalls += o.RefreshCalls
	s.Rotations += o.Rotations
	s.GraceReplays += o.GraceReplays
	s.InvalidGrant += o.InvalidGrant
	s.OtherAnswers += o.OtherAnswers
}

func (s *summary) finishRatio() {
	s.CallsPerRotation = nil
	if s.Rotations > 0 {
		v := float64(s.RefreshCalls) / float64(s.Rotations)
		s.CallsPerRotation = &v
	}
}

func (s summary) ratio() string {
	if s.CallsPerRotation == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *s.CallsPerRotation)
}

func (s summary) signOutText(sep string) string {
	if len(s.SignOut) == 0 {
		return "-"
	}
	parts := make([]string, len(s.SignOut))
	for i, r := range s.SignOut {
		parts[i] = fmt.Sprintf("r%d:%s", r.Replica, strings.ReplaceAll(r.String(), " ", ""))
	}
	return strings.Join(parts, sep)
}

// line is the one-line form the lead can paste:
//
//	REPLICAS mode=strict phase=load duration=60s replicas=3 clients=40 redis=off grace=0s requests=… ok=… failed_live=… failed_documents=… lost=… 5xx=… errors=… unexpected=… fatal=… refresh_calls=… rotations=… grace_replays=… invalid_grant=… calls_per_rotation=2.40 p50_ms=… p99_ms=… signout=r1:5.01s,r2:4.96s,r3:never(>9s)
func (s summary) line() string {
	return fmt.Sprintf("REPLICAS mode=%s phase=%s duration=%.0fs replicas=%d clients=%d redis=%s grace=%s requests=%d ok=%d failed_live=%d failed_documents=%d lost=%d 5xx=%d errors=%d unexpected=%d fatal=%d refresh_calls=%d rotations=%d grace_replays=%d invalid_grant=%d calls_per_rotation=%s p50_ms=%.1f p99_ms=%.1f signout=%s",
		s.Mode, strings.ReplaceAll(s.Phase, " ", "_"), s.Seconds, s.Replicas, s.Clients, strings.ReplaceAll(s.Redis, " ", "_"), s.Grace,
		s.Requests, s.OK, s.FailedLive, s.FailedDocuments, s.Lost, s.ServerErrors, s.TransportErrors, s.Unexpected, s.Fatal,
		s.RefreshCalls, s.Rotations, s.GraceReplays, s.InvalidGrant, s.ratio(), s.P50ms, s.P99ms, s.signOutText(","))
}

// table renders rows as an aligned table.
func table(rows []summary) string {
	head := []string{"mode", "phase", "dur", "repl", "clients", "requests", "ok", "failed", "(docs)", "lost", "5xx", "err", "unexp", "fatal", "calls", "rotations", "replays", "calls/rot", "p50", "p99", "sign-out refused after"}
	cells := [][]string{head}
	for _, s := range rows {
		cells = append(cells, []string{
			s.Mode, s.Phase, fmt.Sprintf("%.0fs", s.Seconds), fmt.Sprint(s.Replicas), fmt.Sprint(s.Clients),
			fmt.Sprint(s.Requests), fmt.Sprint(s.OK), fmt.Sprint(s.FailedLive), fmt.Sprint(s.FailedDocuments), fmt.Sprint(s.Lost),
			fmt.Sprint(s.ServerErrors), fmt.Sprint(s.TransportErrors), fmt.Sprint(s.Unexpected), fmt.Sprint(s.Fatal),
			fmt.Sprint(s.RefreshCalls), fmt.Sprint(s.Rotations), fmt.Sprint(s.GraceReplays), s.ratio(),
			fmt.Sprintf("%.0fms", s.P50ms), fmt.Sprintf("%.0fms", s.P99ms), s.signOutText(" "),
		})
	}
	widths := make([]int, len(head))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		for i, c := range row {
			pad := widths[i] - len([]rune(c))
			if i >= 2 && i < len(row)-1 { // numbers right-aligned
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else {
				b.WriteString(c + strings.Repeat(" ", pad))
			}
			if i < len(row)-1 {
				b.WriteString("  ")
			}
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// violations lists how a row misses its expectation.
func (s summary) violations(e expectation) []string {
	var out []string
	over := func(name string, got, limit int) {
		if got > limit {
			out = append(out, fmt.Sprintf("%s: %d (limit %d)", name, got, limit))
		}
	}
	over("5xx answers", s.ServerErrors, maxServerErrors)
	over("requests without an answer", s.TransportErrors, maxTransportErrors)
	over("unexpected answers", s.Unexpected, maxUnexpected)
	over("answers with another user's or session's identity", s.Fatal, maxFatal)
	over("lost sessions", s.Lost, maxLostSessions)
	over("harness errors (figures not to be trusted)", s.HarnessErrors, 0)
	switch e {
	case expectAloneWithGrace:
		over("failed requests of live sessions", s.FailedLive, maxFailedLiveWithGrace)
	case expectShared:
		over("failed requests of live sessions", s.FailedLive, maxFailedLiveShared)
		if s.CallsPerRotation != nil && math.Round(*s.CallsPerRotation*100)/100 > maxCallsPerRotationShared {
			out = append(out, fmt.Sprintf("WorkOS refresh calls per rotation: %s (%d calls, %d rotations; limit %.2f)",
				s.ratio(), s.RefreshCalls, s.Rotations, maxCallsPerRotationShared))
		}
	}
	return out
}
