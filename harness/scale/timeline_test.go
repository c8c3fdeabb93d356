package scale

import (
	"sort"
	"sync"
	"time"
)

// metric is one counter the run keeps per second.
type metric int

const (
	mUserReq        metric = iota // real users' requests answered (signed-in and anonymous)
	mSignedIn                     // users' requests answered signed in as themselves
	mSignedInAll                  // every signed-in answer through the plugin (warm-up, victims, replays too)
	mUser5xx                      // users' 5xx answers
	mUserErr                      // users' transport errors and timeouts
	mFailed                       // signed-in requests of a live session answered 401 or a redirect
	mIdentity                     // answers whose identity was wrong or missing
	mLost                         // session cookies deleted while WorkOS held the session valid
	mRefreshed                    // users' answers that set a new session cookie
	mSlow                         // users' requests slower than stallThreshold
	mShed                         // requests not sent: too many in flight
	mRefreshCalls                 // WorkOS refresh calls with a user's refresh token
	mRotations                    // of which succeeded (the token rotated)
	mReplaySent                   // spent-cookie replays answered
	mReplaySignedIn               // of which the upstream saw signed in
	mReplayCalls                  // WorkOS refresh calls with a spent refresh token
	mForgedSent                   // forged-cookie requests answered
	mForgedNot401                 // of which not answered 401
	mUnknownCalls                 // WorkOS authenticate calls no user or victim explains
	mOtherCalls                   // WorkOS calls to other endpoints (authorize, logout, …)
	mJWKS                         // JWKS fetches
	mAttack5xx                    // attackers' 5xx answers
	mAttackErr                    // attackers' transport errors
	nMetrics
)

// slotLength is the timeline's resolution.
const slotLength = 100 * time.Millisecond

// timeline keeps the run's counters and the users' latencies per slot of
// slotLength since t0, so any phase or report row is a sum over its slots.
type timeline struct {
	t0 time.Time

	mu      sync.Mutex
	counts  [][nMetrics]int64
	lat     [][]time.Duration // users' latencies
	rss     []float64         // Traefik's VmRSS (MiB) where sampled, else 0
	cpu     []float64         // Traefik's CPU seconds so far where sampled, else 0
	load    []float64         // the machine's 1-minute load average where sampled, else 0
	events  []cacheEvent
	plugins map[string]int // plugin log lines by msg
	others  []string       // Traefik lines that are not the plugin's (a few)
	nOthers int
}

func newTimeline(t0 time.Time) *timeline {
	return &timeline{t0: t0, plugins: map[string]int{}}
}

// slot is the index of the slot holding at.
func (tl *timeline) slot(at time.Time) int {
	s := int(at.Sub(tl.t0) / slotLength)
	if s < 0 {
		return 0
	}
	return s
}

// growLocked makes room for second s.
func (tl *timeline) growLocked(s int) {
	for len(tl.counts) <= s {
		tl.counts = append(tl.counts, [nMetrics]int64{})
		tl.lat = append(tl.lat, nil)
		tl.rss = append(tl.rss, 0)
		tl.cpu = append(tl.cpu, 0)
		tl.load = append(tl.load, 0)
	}
}

func (tl *timeline) add(at time.Time, m metric, n int64) {
	s := tl.slot(at)
	tl.mu.Lock()
	tl.growLocked(s)
	tl.counts[s][m] += n
	tl.mu.Unlock()
}

func (tl *timeline) latency(at time.Time, d time.Duration) {
	s := tl.slot(at)
	tl.mu.Lock()
	tl.growLocked(s)
	tl.lat[s] = append(tl.lat[s], d)
	tl.mu.Unlock()
}

// sample records Traefik's memory, its CPU time so far and the load
// average; a zero value is not recorded.
func (tl *timeline) sample(at time.Time, rssMiB, cpuSeconds, load float64) {
	s := tl.slot(at)
	tl.mu.Lock()
	tl.growLocked(s)
	tl.rss[s], tl.cpu[s], tl.load[s] = rssMiB, cpuSeconds, load
	tl.mu.Unlock()
}

// span is a range of slots [from, to).
type span struct{ from, to int }

// everything is the span of all slots so far.
func (tl *timeline) everything() span {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return span{0, len(tl.counts)}
}

func (tl *timeline) spanOf(from, to time.Time) span {
	return span{tl.slot(from), tl.slot(to)}
}

// sum adds a metric over a span.
func (tl *timeline) sum(sp span, m metric) int64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var n int64
	for s := sp.from; s < sp.to && s < len(tl.counts); s++ {
		n += tl.counts[s][m]
	}
	return n
}

// sumBetween adds a metric over the interval from → to at the timeline's
// resolution: consecutive intervals share no slot.
func (tl *timeline) sumBetween(from, to time.Time, m metric) int64 {
	return tl.sum(tl.spanOf(from, to), m)
}

// latencies returns the users' latencies in a span, sorted.
func (tl *timeline) latencies(sp span) []time.Duration {
	tl.mu.Lock()
	var out []time.Duration
	for s := sp.from; s < sp.to && s < len(tl.lat); s++ {
		out = append(out, tl.lat[s]...)
	}
	tl.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// lastRSS is the last sample in a span, and maxRSS the largest.
func (tl *timeline) lastRSS(sp span) float64 { return tl.last(sp, func() []float64 { return tl.rss }) }

func (tl *timeline) lastLoad(sp span) float64 {
	return tl.last(sp, func() []float64 { return tl.load })
}

// last is the last non-zero sample of a series in a span.
func (tl *timeline) last(sp span, series func() []float64) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	v := series()
	for s := min(sp.to, len(v)) - 1; s >= sp.from; s-- {
		if v[s] > 0 {
			return v[s]
		}
	}
	return 0
}

// cores is Traefik's CPU use over a span, in cores: the CPU seconds
// between its first and last samples over the time between them.
func (tl *timeline) cores(sp span) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	first, last := -1, -1
	for s := sp.from; s < sp.to && s < len(tl.cpu); s++ {
		if tl.cpu[s] > 0 {
			if first < 0 {
				first = s
			}
			last = s
		}
	}
	if first < 0 || last == first {
		return 0
	}
	return (tl.cpu[last] - tl.cpu[first]) / (float64(last-first) * slotLength.Seconds())
}

func (tl *timeline) maxRSS(sp span) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var m float64
	for s := sp.from; s < sp.to && s < len(tl.rss); s++ {
		m = max(m, tl.rss[s])
	}
	return m
}

// quantile reads a sorted sample.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
