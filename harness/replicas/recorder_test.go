package replicas

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// refreshFigures is what the recorder saw of refresh-token grants in one
// phase of a run.
type refreshFigures struct {
	// Calls is every refresh-token grant that reached the recorder.
	Calls int `json:"calls"`
	// Rotations are 200 answers carrying a refresh token no earlier answer
	// carried: WorkOS issued a new pair.
	Rotations int `json:"rotations"`
	// GraceReplays are 200 answers carrying a refresh token an earlier
	// answer already carried: a replay inside the grace window, answered
	// with the pair the first exchange got.
	GraceReplays int `json:"grace_replays"`
	// InvalidGrant are 400 invalid_grant answers: the token was spent (or
	// its session revoked).
	InvalidGrant int `json:"invalid_grant"`
	// Other is every other answer, including the fake being unreachable.
	Other int `json:"other"`
}

func (f *refreshFigures) add(o refreshFigures) {
	f.Calls += o.Calls
	f.Rotations += o.Rotations
	f.GraceReplays += o.GraceReplays
	f.InvalidGrant += o.InvalidGrant
	f.Other += o.Other
}

// recorder is a reverse proxy between the Traefik replicas and the fake
// WorkOS. It counts rotations from the wire alone, without the fake's
// internals: every refresh-grant answer is classified by whether the
// refresh token it carries is new. Everything else (JWKS, logout) passes
// through untouched.
type recorder struct {
	proxy *httputil.ReverseProxy
	phase func() string

	mu      sync.Mutex
	issued  map[string]bool // refresh tokens some 200 answer carried
	byPhase map[string]*refreshFigures
}

type callKey struct{}

// refreshCall travels in the request context from ServeHTTP to the
// response hook.
type refreshCall struct{ phase string }

// startRecorder serves a recorder for the fake at target on 127.0.0.1 and
// returns its URL, which the plugin is configured with as WorkOS.
func startRecorder(t *testing.T, target string, phase func() string) (*recorder, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{phase: phase, issued: map[string]bool{}, byPhase: map[string]*refreshFigures{}}
	rec.proxy = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: rec.observe,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if c, ok := r.Context().Value(callKey{}).(*refreshCall); ok {
				rec.count(c.phase, refreshFigures{Other: 1})
			}
			http.Error(w, "recorder: "+err.Error(), http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return rec, "http://" + ln.Addr().String()
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/user_management/authenticate" {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		var grant struct {
			GrantType string `json:"grant_type"`
		}
		_ = json.Unmarshal(body, &grant)
		if grant.GrantType == "refresh_token" {
			c := &refreshCall{phase: rec.phase()}
			rec.count(c.phase, refreshFigures{Calls: 1})
			r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
		}
	}
	rec.proxy.ServeHTTP(w, r)
}

// observe classifies a refresh-grant answer before it goes back to the
// plugin.
func (rec *recorder) observe(resp *http.Response) error {
	c, ok := resp.Request.Context().Value(callKey{}).(*refreshCall)
	if !ok {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		rec.count(c.phase, refreshFigures{Other: 1})
		return nil
	}
	var answer struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	switch {
	case resp.StatusCode == http.StatusOK && answer.RefreshToken != "":
		rec.mu.Lock()
		seen := rec.issued[answer.RefreshToken]
		rec.issued[answer.RefreshToken] = true
		rec.mu.Unlock()
		if seen {
			rec.count(c.phase, refreshFigures{GraceReplays: 1})
		} else {
			rec.count(c.phase, refreshFigures{Rotations: 1})
		}
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(answer.Error, "invalid_grant"):
		rec.count(c.phase, refreshFigures{InvalidGrant: 1})
	default:
		rec.count(c.phase, refreshFigures{Other: 1})
	}
	return nil
}

func (rec *recorder) count(phase string, f refreshFigures) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	p := rec.byPhase[phase]
	if p == nil {
		p = &refreshFigures{}
		rec.byPhase[phase] = p
	}
	p.add(f)
}

// figures returns what the recorder saw in the given phases together.
func (rec *recorder) figures(phases ...string) refreshFigures {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out refreshFigures
	for _, p := range phases {
		if f := rec.byPhase[p]; f != nil {
			out.add(*f)
		}
	}
	return out
}
