package scale

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// row is one line of the report: a phase, or a minute of one.
type row struct {
	label    string
	from, to time.Time
	sp       span
}

// rows cuts the warm-up and the measured phases into report rows of p.row.
func (r *run) rows() []row {
	var out []row
	cut := func(name string, from, to time.Time) {
		for i := 1; from.Before(to); i++ {
			end := from.Add(r.p.row)
			if end.After(to) || to.Sub(end) < r.p.row/4 {
				end = to // a short tail joins the last row
			}
			out = append(out, row{label: fmt.Sprintf("%s %d", name, i), from: from, to: end})
			from = end
		}
	}
	cut("warm-up", r.warmStart, r.warmEnd)
	cut("users", r.cleanStart, r.cleanEnd)
	if r.p.attack {
		cut("attack", r.attackStart, r.attackEnd)
	}
	for i := range out {
		out[i].sp = r.tl.spanOf(out[i].from, out[i].to)
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

// eventsIn returns the session_cache events that arrived in [from, to).
func (r *run) eventsIn(from, to time.Time) []cacheEvent {
	var out []cacheEvent
	for _, ev := range r.tl.cacheEvents() {
		if !ev.arrived.Before(from) && ev.arrived.Before(to) {
			out = append(out, ev)
		}
	}
	return out
}

// callsPerRotation formats refresh calls ÷ rotations.
func callsPerRotation(calls, rotations int64) string {
	switch {
	case rotations > 0:
		return fmt.Sprintf("%.2f", float64(calls)/float64(rotations))
	case calls > 0:
		return "∞"
	}
	return "-"
}

// usersTable is the per-row table of the real users' side.
func (r *run) usersTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %5s %7s %6s %6s %7s %5s %4s %4s %5s %5s %5s %5s %7s %6s %5s %7s %4s %4s %8s %8s %8s\n",
		"row", "secs", "req", "p50ms", "p99ms", "maxms", ">50ms", "5xx", "err", "fail", "lost", "ident", "shed",
		"refresh", "rotate", "c/rot", "rssMiB", "cpu", "load", "entries", "hit", "ceiling")
	for _, rw := range r.rows() {
		lat := r.tl.latencies(rw.sp)
		sum := func(m metric) int64 { return r.tl.sum(rw.sp, m) }
		hit, entries := "n/a", "n/a"
		if evs := r.eventsIn(rw.from, rw.to); len(evs) > 0 {
			entries = fmt.Sprint(evs[len(evs)-1].Entries)
			if rate, _, _, ok := r.tl.hitRate(evs); ok {
				hit = pct(rate)
			}
		}
		// The best any cache could do: every signed-in request hits but
		// those that carried a token to refresh (the rotation's new cookie
		// has to be verified once).
		ceiling := "n/a"
		if n := sum(mSignedInAll); n > 0 {
			ceiling = pct(1 - float64(sum(mRotations))/float64(n))
		}
		fmt.Fprintf(&b, "%-9s %5.0f %7d %6s %6s %7s %5d %4d %4d %5d %5d %5d %5d %7d %6d %5s %7.1f %4.2f %4.1f %8s %8s %8s\n",
			rw.label, rw.to.Sub(rw.from).Seconds(), sum(mUserReq),
			ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99)), ms(quantile(lat, 1)), sum(mSlow),
			sum(mUser5xx), sum(mUserErr), sum(mFailed), sum(mLost), sum(mIdentity), sum(mShed),
			sum(mRefreshCalls), sum(mRotations), callsPerRotation(sum(mRefreshCalls), sum(mRotations)),
			r.tl.lastRSS(rw.sp), r.tl.cores(rw.sp), r.tl.lastLoad(rw.sp), entries, hit, ceiling)
	}
	return b.String()
}

// attackTable is the per-row table of the attacker's side.
func (r *run) attackTable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %7s %9s %9s %7s %9s %9s %6s %5s %4s\n",
		"row", "replays", "signedIn", "wosCalls", "forged", "not401", "wosOther", "jwks", "5xx", "err")
	for _, rw := range r.rows() {
		if !strings.HasPrefix(rw.label, "attack") {
			continue
		}
		sum := func(m metric) int64 { return r.tl.sum(rw.sp, m) }
		fmt.Fprintf(&b, "%-9s %7d %9d %9d %7d %9d %9d %6d %5d %4d\n", rw.label,
			sum(mReplaySent), sum(mReplaySignedIn), sum(mReplayCalls), sum(mForgedSent), sum(mForgedNot401),
			sum(mUnknownCalls)+sum(mOtherCalls), sum(mJWKS), sum(mAttack5xx), sum(mAttackErr))
	}
	return b.String()
}

// legend explains the columns.
const legend = `columns: req = real users' requests answered (signed-in and anonymous); p50/p99/max = their latency;
  >50ms = those slower than 50 ms; 5xx, err (transport error or timeout); fail = signed-in requests of a live
  session answered 401 or redirected; lost = session cookies deleted while WorkOS held the session valid;
  ident = wrong or missing identity at the upstream; shed = requests not sent (too many in flight: the
  machine did not keep up); refresh = WorkOS refresh calls with users' tokens, rotate = those that
  succeeded, c/rot = calls per rotation; rssMiB = Traefik's VmRSS at the row's end; cpu = the cores
  Traefik used; load = the machine's 1-minute load average at the row's end (two cores, shared with
  the harness, its fake WorkOS and other work: a load over 2 explains stalls); entries and hit =
  the plugin's session_cache events that arrived in the row (hit = 1 − inserts ÷ signed-in requests
  over the events' intervals; n/a when the plugin sent none); ceiling = 1 − rotations ÷ signed-in
  requests, the best hit rate any cache could reach in the row.
attack: replays = spent-cookie requests answered, signedIn = of which the upstream saw signed in,
  wosCalls = WorkOS refresh calls carrying a spent token; forged = forged-cookie requests answered,
  not401 = of which not answered 401; wosOther = WorkOS calls no user or victim explains, jwks = JWKS
  fetches in the row; 5xx and err of the attacker's requests.`

// pluginLines summarises the plugin's log lines by msg.
func (r *run) pluginLines() string {
	r.tl.mu.Lock()
	defer r.tl.mu.Unlock()
	names := make([]string, 0, len(r.tl.plugins))
	for n := range r.tl.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%q ×%d", n, r.tl.plugins[n]))
	}
	s := "plugin log lines: " + strings.Join(parts, ", ")
	if r.tl.nOthers > 0 {
		s += fmt.Sprintf("\nTraefik's own lines: %d, the first:\n  %s", r.tl.nOthers, strings.Join(r.tl.others, "\n  "))
	}
	return s
}

// check is one assertion of the specification, with what was measured.
type check struct {
	name, got, bound string
	ok               bool
	skip             string // why it was not asserted, if it was not
}

func (c check) String() string {
	status := "PASS"
	switch {
	case c.skip != "":
		status = "----"
	case !c.ok:
		status = "FAIL"
	}
	s := fmt.Sprintf("  %s  %-58s %s (bound %s)", status, c.name, c.got, c.bound)
	if c.skip != "" {
		s += ": not asserted, " + c.skip
	}
	return s
}

func countCheck(name string, got, bound int64) check {
	return check{name: name, got: fmt.Sprint(got), bound: fmt.Sprintf("≤ %d", bound), ok: got <= bound}
}

func formatChecks(title string, checks []check) string {
	var b strings.Builder
	b.WriteString(title + "\n")
	for _, c := range checks {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}
