package fakeworkos

import (
	"net/http"
	"testing"
	"time"
)

// write sends one POST to /user_management/authenticate (a refresh with
// an unknown token: 400 unless the limit answers) and returns its status
// and Retry-After.
func (f *fixture) write() (int, string) {
	f.t.Helper()
	res := f.authenticate(f.refreshCall("not-a-token", ""))
	return res.status, res.header.Get("Retry-After")
}

func TestWriteRateLimit(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		// steps run in order: advance the clock, then send a write
		// (or, with read set, a read) and expect status and Retry-After.
		steps []rateStep
	}{
		{
			name: "write beyond the limit is refused until the window has room", limit: 2,
			steps: []rateStep{
				{status: 400}, {status: 400}, {status: 429, retryAfter: "10"},
			},
		},
		{
			name: "Retry-After counts down to the oldest write's exit", limit: 1,
			steps: []rateStep{
				{status: 400}, {after: 2500 * time.Millisecond, status: 429, retryAfter: "8"},
				{after: 7400 * time.Millisecond, status: 429, retryAfter: "1"},
			},
		},
		{
			name: "window slides", limit: 2,
			steps: []rateStep{
				{status: 400}, {after: 5 * time.Second, status: 400}, {status: 429, retryAfter: "5"},
				{after: 5 * time.Second, status: 400}, {status: 429, retryAfter: "5"},
				{after: 5 * time.Second, status: 400},
			},
		},
		{
			name: "refused writes do not fill the window", limit: 1,
			steps: []rateStep{
				{status: 400}, {after: 9 * time.Second, status: 429}, {after: time.Second, status: 400},
			},
		},
		{
			name: "reads are not counted", limit: 1,
			steps: []rateStep{
				{read: true, status: 200}, {read: true, status: 200}, {read: true, status: 200},
				{status: 400}, {read: true, status: 200}, {status: 429, retryAfter: "10"},
			},
		},
		{
			name: "off by default", limit: 0,
			steps: []rateStep{{status: 400}, {status: 400}, {status: 400}, {status: 400}},
		},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.SetWriteRateLimit(tc.limit)
			refused := 0
			for i, step := range tc.steps {
				f.clock.Advance(step.after)
				status, retryAfter := 0, ""
				if step.read {
					status = f.authorize(nil).status
					if jwks := f.get(f.fake.JWKSPath()).status; jwks != 200 {
						t.Errorf("step %d: JWKS %d", i, jwks)
					}
					// Not under /user_management/, so never limited.
					f.validateValue("sk_x")
				} else {
					status, retryAfter = f.write()
				}
				if status == http.StatusTooManyRequests {
					refused++
				}
				if status != step.status || (step.retryAfter != "" && retryAfter != step.retryAfter) {
					t.Errorf("step %d: %d Retry-After %q, want %d %q", i, status, retryAfter, step.status, step.retryAfter)
				}
			}
			if n := f.fake.RateLimited(); n != refused {
				t.Errorf("RateLimited = %d, want %d", n, refused)
			}
		})
	}
}

type rateStep struct {
	after      time.Duration
	read       bool
	status     int
	retryAfter string
}

func TestRateLimitAnswer(t *testing.T) {
	f := newFixtureWith(t, func(o *Options) { o.WriteRateLimit = 1 })
	f.write()
	res := f.authenticate(f.refreshCall("not-a-token", ""))
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "10" ||
		str(res.body, "code") != "rate_limit_exceeded" || str(res.body, "message") == "" {
		t.Errorf("got %d Retry-After %q %s", res.status, res.header.Get("Retry-After"), res.raw)
	}
	// A limited refresh is still an attempt the client made.
	if n := f.fake.RefreshCalls(); n != 2 {
		t.Errorf("RefreshCalls = %d, want 2", n)
	}
}

func TestRateLimitControl(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		status int
		// limited is how many of three writes must get 429.
		limited int
	}{
		{name: "sets the limit", body: `{"writes_per_10s":1}`, status: 204, limited: 2},
		{name: "zero removes it", body: `{"writes_per_10s":0}`, status: 204, limited: 0},
		{name: "negative is refused", body: `{"writes_per_10s":-1}`, status: 400},
		{name: "missing is refused", body: `{}`, status: 400},
	}
	for _, tc := range cases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, func(o *Options) { o.WriteRateLimit = 100 })
			if err := expectStatus(f.control("POST", "/__fake/rate-limit", tc.body, true), tc.status); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				f.write()
			}
			res := f.control("GET", "/__fake/stats", "", true)
			if res.body["rate_limited"] != float64(tc.limited) {
				t.Errorf("stats %s, want rate_limited %d", res.raw, tc.limited)
			}
		})
	}
}
