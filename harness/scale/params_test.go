package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The specification the run is checked against. Each bound reads as the
// requirement it stands for; the report prints the measured value beside
// every one, pass or fail.
const (
	// maxServerErrors: no request, of anyone, is answered with a 5xx.
	maxServerErrors = 0
	// maxUserTimeouts: every real user's request is answered before its
	// timeout (SCALE_REQUEST_TIMEOUT).
	maxUserTimeouts = 0
	// maxLostSessions: the plugin never deletes the cookie of a session
	// that WorkOS still holds valid.
	maxLostSessions = 0
	// maxFailedSignedIn: a signed-in user whose session is alive is never
	// answered 401 or redirected to sign in.
	maxFailedSignedIn = 0
	// maxIdentityErrors: the upstream never sees another session's user
	// or session id, nor a protected request without identity.
	maxIdentityErrors = 0
	// maxCallsPerRotation: each rotated refresh token costs one WorkOS
	// call, however many requests carried it at once.
	maxCallsPerRotation = 1.0
	// maxUserP99 bounds the real users' 99th percentile latency, each
	// minute. It is generous: the machine's two cores serve the load
	// generator, the fake WorkOS and Traefik at once, and other work.
	// A maintenance stall shows in the max and stall columns, which are
	// reported, not asserted: on a shared machine a single slow request
	// cannot be told from a descheduled process.
	maxUserP99 = 250 * time.Millisecond
	// stallThreshold: requests slower than this are counted per minute.
	stallThreshold = 50 * time.Millisecond
	// minSteadyHitRate is the share of signed-in requests the session
	// cache must answer once it is warm, when the plugin reports it.
	minSteadyHitRate = 0.99
	// maxRSSOverBaselineMiB bounds Traefik's resident memory above a
	// Traefik running only the do-nothing plugin, checked for runs of at
	// least rssCheckSessions sessions (a short run logs it).
	maxRSSOverBaselineMiB = 150.0
	rssCheckSessions      = 100000
	// terminalMemory is SPEC "Bounded work": a refresh token that got a
	// terminal answer costs at most one WorkOS call per this period.
	terminalMemory = 10 * time.Minute
	// maxReplaysSignedIn: a spent cookie replayed after the replay window
	// never signs anyone in.
	maxReplaysSignedIn = 0
	// maxForgedWorkOSCalls and maxForgedJWKSFetches: cookies that do not
	// unseal cost nothing outside the plugin.
	maxForgedWorkOSCalls = 0
	maxForgedJWKSFetches = 0
)

// Plugin time constants the harness must respect (today's values in the
// plugin's source; the harness does not read them from the plugin).
const (
	// replayWindow is how long the plugin hands a refresh's result to
	// requests still carrying the old cookie (refresh.go refreshGrace).
	// Spent cookies are replayed only after it has passed, so the replays
	// test the terminal memory, not the lost-response replay.
	replayWindow = 2 * time.Minute
	// jwksMaxAge is how long the plugin uses a fetched key set
	// (jwks.go): a JWKS fetch this long after the previous one is the
	// key set's age, not something an attacker caused.
	jwksMaxAge = 10 * time.Minute
	// autoRefreshBuffer is the plugin's refresh buffer for tokens living
	// over 300 s (SPEC refreshBufferSeconds "auto").
	autoRefreshBuffer = 60 * time.Second
)

// requestsPerTokenLifetime is the time scaling: the default token
// lifetime gives each session this many requests, on average, per token
// lifetime after the refresh buffer. A cache that keeps every session for
// its whole lifetime then misses once per 200 requests (one refresh): a
// 99.5 % ceiling. See the package documentation.
const requestsPerTokenLifetime = 200

// Traffic shape: shares of the real users' requests.
const (
	// anonymousShare of the users' requests are public pages without a cookie.
	anonymousShare = 0.10
	// documentShare of the signed-in requests are page loads, the rest API calls.
	documentShare = 0.40
	// hotSessions is the share of sessions that form the hot subset, and
	// hotShare the share of signed-in requests that go to it; the rest
	// are spread uniformly over all sessions.
	hotSessions = 0.05
	hotShare    = 0.50
	// maxInFlight bounds the requests of one generator in flight; beyond
	// it a request is not sent and counted as shed (the machine cannot
	// keep up with the rate).
	maxInFlight = 2048
	// warmupWorkers touch every session once, as fast as Traefik answers.
	warmupWorkers = 12
)

// params is one run's configuration, from the environment.
type params struct {
	sessions       int
	rate           float64 // the real users' requests per second
	tokenTTL       time.Duration
	ttlDerived     bool
	duration       time.Duration // the measured phase without the attacker
	attack         bool
	attackDuration time.Duration
	spent          int     // spent-cookie victims
	replayRate     float64 // spent-cookie replays per second
	forgedRate     float64 // forged cookies per second
	baseline       time.Duration
	requestTimeout time.Duration
	row            time.Duration // report interval
	pluginDir      string        // "" for the repository root
}

// env names the run's variables, with their defaults (the CI run).
var env = []struct{ name, def, doc string }{
	{"SCALE_SESSIONS", "3000", "distinct valid sessions"},
	{"SCALE_RATE", "250", "real users' requests per second (open loop)"},
	{"SCALE_TOKEN_TTL", "auto", "access token lifetime; auto = 60s + 200 × SESSIONS / RATE seconds"},
	{"SCALE_DURATION", "60s", "measured phase without the attacker (stretched until spent cookies are past the replay window)"},
	{"SCALE_ATTACK", "1", "1: an attack phase follows; 0: none"},
	{"SCALE_ATTACK_DURATION", "45s", "attack phase, users' traffic continuing"},
	{"SCALE_SPENT", "100", "sessions whose old cookie the attacker replays"},
	{"SCALE_REPLAY_RATE", "200", "spent-cookie replays per second"},
	{"SCALE_FORGED_RATE", "300", "forged-cookie requests per second"},
	{"SCALE_BASELINE", "15s", "load on the do-nothing-plugin Traefik, for the memory baseline"},
	{"SCALE_REQUEST_TIMEOUT", "10s", "timeout of every request"},
	{"SCALE_ROW", "1m", "report interval"},
	{"SCALE_PLUGIN_DIR", "", "plugin source to run (default: this repository), e.g. another worktree"},
}

func loadParams() (params, error) {
	get := func(name string) string {
		for _, e := range env {
			if e.name == name {
				if v := strings.TrimSpace(os.Getenv(name)); v != "" {
					return v
				}
				return e.def
			}
		}
		panic("unknown variable " + name)
	}
	var p params
	var errs []string
	intVar := func(name string, min int) int {
		n, err := strconv.Atoi(get(name))
		if err != nil || n < min {
			errs = append(errs, fmt.Sprintf("%s=%q: want an integer ≥ %d", name, get(name), min))
		}
		return n
	}
	floatVar := func(name string, min float64) float64 {
		f, err := strconv.ParseFloat(get(name), 64)
		if err != nil || f < min {
			errs = append(errs, fmt.Sprintf("%s=%q: want a number ≥ %g", name, get(name), min))
		}
		return f
	}
	durVar := func(name string, min time.Duration) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < min {
			errs = append(errs, fmt.Sprintf("%s=%q: want a Go duration ≥ %s", name, get(name), min))
		}
		return d
	}
	p.sessions = intVar("SCALE_SESSIONS", 10)
	p.rate = floatVar("SCALE_RATE", 1)
	p.duration = durVar("SCALE_DURATION", 10*time.Second)
	p.attack = get("SCALE_ATTACK") != "0"
	p.attackDuration = durVar("SCALE_ATTACK_DURATION", 10*time.Second)
	p.spent = intVar("SCALE_SPENT", 1)
	p.replayRate = floatVar("SCALE_REPLAY_RATE", 0)
	p.forgedRate = floatVar("SCALE_FORGED_RATE", 0)
	p.baseline = durVar("SCALE_BASELINE", 5*time.Second)
	p.requestTimeout = durVar("SCALE_REQUEST_TIMEOUT", time.Second)
	p.row = durVar("SCALE_ROW", 10*time.Second)
	if v := get("SCALE_PLUGIN_DIR"); v != "" {
		if _, err := os.Stat(filepath.Join(v, ".traefik.yml")); err != nil {
			errs = append(errs, fmt.Sprintf("SCALE_PLUGIN_DIR=%q: no plugin there (%v)", v, err))
		}
		p.pluginDir = v
	}
	if v := get("SCALE_TOKEN_TTL"); v == "auto" {
		p.ttlDerived = true
		if len(errs) == 0 {
			p.tokenTTL = autoTTL(p.sessions, p.rate)
		}
	} else {
		p.tokenTTL = durVar("SCALE_TOKEN_TTL", 2*time.Minute)
	}
	if len(errs) > 0 {
		return p, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return p, nil
}

// autoTTL is the default token lifetime: the refresh buffer plus the time
// in which the signed-in traffic makes requestsPerTokenLifetime requests
// per session.
func autoTTL(sessions int, rate float64) time.Duration {
	signedInRate := rate * (1 - anonymousShare)
	secs := requestsPerTokenLifetime * float64(sessions) / signedInRate
	return autoRefreshBuffer + time.Duration(secs*float64(time.Second)).Round(time.Second)
}

// scaling describes the time scaling of a run in words.
func (p params) scaling() string {
	signedIn := p.rate * (1 - anonymousShare)
	life := p.tokenTTL - refreshBufferFor(p.tokenTTL)
	perLife := signedIn * life.Seconds() / float64(p.sessions)
	refreshes := float64(p.sessions) / life.Seconds()
	// The same ratio with WorkOS's 5-minute tokens (30 s buffer).
	real := 270.0
	return fmt.Sprintf("tokens live %s (WorkOS: 5m); each of the %d sessions makes %.1f requests per token lifetime after the %s refresh buffer "+
		"(%.0f signed-in req/s), so ~%.2f refreshes/s and a ceiling of %.2f %% cache hits. With 5-minute tokens the same ratio needs %.0f signed-in req/s "+
		"(one request per session every %.2f s): time runs %.0f× slower for tokens, not for the plugin's own clocks",
		p.tokenTTL, p.sessions, perLife, refreshBufferFor(p.tokenTTL), signedIn, refreshes, 100*(1-1/perLife),
		perLife*float64(p.sessions)/real, real/perLife, life.Seconds()/real)
}

// refreshBufferFor is the plugin's automatic refresh buffer for a token
// lifetime (SPEC refreshBufferSeconds).
func refreshBufferFor(ttl time.Duration) time.Duration {
	if ttl <= 300*time.Second {
		return 30 * time.Second
	}
	return autoRefreshBuffer
}
