package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// forgedTokenPrefix marks the refresh tokens that forged cookies carry, so
// the recorder can tell their (expected, refused) refresh calls from those
// of real sessions.
const forgedTokenPrefix = "forged-"

// overlapTolerance: a refresh call that started this long ago may be the
// one the plugin just abandoned at its 10 s timeout, whose cancellation the
// fake has not noticed yet; only overlaps with younger calls count as two
// concurrent calls for one token.
const overlapTolerance = 9 * time.Second

// refreshOutcome is how the fake answered one refresh call, as the plugin
// must classify it (WORKOS-PROTOCOL.md C.4).
type refreshOutcome string

const (
	outcomeSuccess         refreshOutcome = "success"
	outcomeTransient       refreshOutcome = "transient (408/429/5xx)"
	outcomeDrop            refreshOutcome = "transient (connection dropped)"
	outcomeAbandoned       refreshOutcome = "transient (plugin gave up: timeout)"
	outcomeInjectedInvalid refreshOutcome = "terminal (injected invalid_grant)"
	outcomeHTML            refreshOutcome = "terminal (non-JSON answer)"
	outcomeNaturalInvalid  refreshOutcome = "terminal (fake refused the token)"
	outcomeLostRotation    refreshOutcome = "rotated, but the plugin had gone"
	outcomeOther           refreshOutcome = "other"
)

// recorder sits in front of the fake WorkOS and watches every refresh call.
// The fake counts calls but cannot say which session a call belonged to or
// what the plugin was told; the soak needs both, to excuse exactly the
// sessions that got a terminal answer and to catch a refresh token used
// twice. Classification happens before the answer's first byte leaves, so
// it is on record before the plugin can act on it.
type recorder struct {
	fake http.Handler
	// label names the fault step in force, for failure details.
	label func() string

	mu         sync.Mutex
	sidOf      map[string]string         // refresh token → session id, for real sessions
	spent      map[string]time.Time      // tokens the fake already rotated
	inFlight   map[string][]*pendingCall // token → calls being answered
	excused    map[string]string         // session id → the terminal answer it got
	needed     map[string]bool           // distinct real tokens presented
	outcomes   map[refreshOutcome]int    // real sessions' calls by outcome
	forged     map[refreshOutcome]int    // forged cookies' calls by outcome
	unknown    int                       // tokens neither registered nor forged
	reused     []string                  // details of calls with a spent token
	concurrent []string                  // details of overlapping calls for one token
}

// pendingCall is a refresh call the fake has not finished answering. A
// dropped call is over for the plugin as soon as its connection closes,
// before the fake's handler returns, so it no longer counts as pending.
type pendingCall struct {
	started time.Time
	done    <-chan struct{}
	dropped atomic.Bool
}

func newRecorder(fake http.Handler, label func() string) *recorder {
	return &recorder{
		fake:     fake,
		label:    label,
		sidOf:    map[string]string{},
		spent:    map[string]time.Time{},
		inFlight: map[string][]*pendingCall{},
		excused:  map[string]string{},
		needed:   map[string]bool{},
		outcomes: map[refreshOutcome]int{},
		forged:   map[refreshOutcome]int{},
	}
}

// register records that refreshToken belongs to session sid.
func (rec *recorder) register(refreshToken, sid string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.sidOf[refreshToken] = sid
}

// excuse reports why session sid may legitimately have been signed out, or
// "" when nothing excuses it.
func (rec *recorder) excuse(sid string) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.excused[sid]
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/user_management/authenticate" {
		rec.fake.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal(body, &req)
	if req.GrantType != "refresh_token" {
		rec.fake.ServeHTTP(w, r)
		return
	}

	token := req.RefreshToken
	call := &pendingCall{started: time.Now(), done: r.Context().Done()}
	sid, real := rec.begin(token, call)
	rw := &watchingWriter{ResponseWriter: w, onHijack: func() { call.dropped.Store(true) }}
	rw.onFirstWrite = func(status int, header http.Header, chunk []byte) {
		outcome := classify(status, header, chunk)
		if outcome == outcomeSuccess && r.Context().Err() != nil {
			outcome = outcomeLostRotation
		}
		rec.finish(token, sid, real, outcome, chunk)
	}
	rec.fake.ServeHTTP(rw, r)
	if !rw.wrote {
		outcome := outcomeAbandoned
		if rw.hijacked {
			outcome = outcomeDrop
		}
		rec.finish(token, sid, real, outcome, nil)
	}
	rec.end(token, call)
}

// begin notes a call for token and reports its session, checking the two
// things a correct plugin never does: present a token the fake already
// rotated, or run two calls for one token at once.
func (rec *recorder) begin(token string, call *pendingCall) (sid string, real bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	sid, real = rec.sidOf[token]
	if !real {
		if !strings.HasPrefix(token, forgedTokenPrefix) {
			rec.unknown++
		}
		return "", false
	}
	rec.needed[token] = true
	if at, ok := rec.spent[token]; ok {
		rec.reused = append(rec.reused, fmt.Sprintf("session %s: refresh token %s… presented again %s after the fake rotated it (fault: %s)",
			sid, short(token), time.Since(at).Round(time.Millisecond), rec.label()))
	}
	for _, other := range rec.inFlight[token] {
		if other.dropped.Load() {
			continue
		}
		select {
		case <-other.done:
			continue // the plugin already gave up on that one
		default:
		}
		if call.started.Sub(other.started) < overlapTolerance {
			rec.concurrent = append(rec.concurrent, fmt.Sprintf("session %s: second refresh call for token %s… while one started %s earlier was unanswered (fault: %s)",
				sid, short(token), call.started.Sub(other.started).Round(time.Microsecond), rec.label()))
		}
	}
	rec.inFlight[token] = append(rec.inFlight[token], call)
	return sid, true
}

func (rec *recorder) end(token string, call *pendingCall) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	calls := rec.inFlight[token]
	for i := range calls {
		if calls[i] == call {
			calls = append(calls[:i], calls[i+1:]...)
			break
		}
	}
	if len(calls) == 0 {
		delete(rec.inFlight, token)
	} else {
		rec.inFlight[token] = calls
	}
}

// finish records the outcome of one call. A success registers the new
// refresh token under the same session, so the chain stays attributable.
func (rec *recorder) finish(token, sid string, real bool, outcome refreshOutcome, body []byte) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !real {
		rec.forged[outcome]++
		return
	}
	rec.outcomes[outcome]++
	switch outcome {
	case outcomeSuccess, outcomeLostRotation:
		rec.spent[token] = time.Now()
		var resp struct {
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(body, &resp) == nil && resp.RefreshToken != "" {
			rec.sidOf[resp.RefreshToken] = sid
		}
		if outcome == outcomeLostRotation {
			rec.excuseLocked(sid, string(outcome))
		}
	case outcomeInjectedInvalid, outcomeHTML:
		rec.excuseLocked(sid, string(outcome))
	}
}

func (rec *recorder) excuseLocked(sid, why string) {
	if _, ok := rec.excused[sid]; !ok {
		rec.excused[sid] = why
	}
}

// classify reads the fake's answer the way SPEC "Refresh and keys" does:
// 408, 429, 500, 502, 503 and 504 are transient whatever the body (an HTML
// 502 from a proxy too); any other non-JSON answer, and the other errors,
// are terminal.
func classify(status int, header http.Header, body []byte) refreshOutcome {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return outcomeTransient
	}
	if !strings.Contains(header.Get("Content-Type"), "json") {
		return outcomeHTML
	}
	switch status {
	case http.StatusOK:
		return outcomeSuccess
	case http.StatusBadRequest:
		if bytes.Contains(body, []byte("Injected fault")) {
			return outcomeInjectedInvalid
		}
		return outcomeNaturalInvalid
	}
	return outcomeOther
}

// recorderFigures is a snapshot of what the recorder saw.
type recorderFigures struct {
	outcomes   map[refreshOutcome]int
	forged     map[refreshOutcome]int
	needed     int
	excused    int
	unknown    int
	reused     []string
	concurrent []string
}

func (rec *recorder) figures() recorderFigures {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	f := recorderFigures{
		outcomes:   map[refreshOutcome]int{},
		forged:     map[refreshOutcome]int{},
		needed:     len(rec.needed),
		excused:    len(rec.excused),
		unknown:    rec.unknown,
		reused:     append([]string(nil), rec.reused...),
		concurrent: append([]string(nil), rec.concurrent...),
	}
	for k, v := range rec.outcomes {
		f.outcomes[k] = v
	}
	for k, v := range rec.forged {
		f.forged[k] = v
	}
	return f
}

func (f recorderFigures) realCalls() int {
	n := 0
	for _, v := range f.outcomes {
		n += v
	}
	return n
}

func (f recorderFigures) transientCalls() int {
	return f.outcomes[outcomeTransient] + f.outcomes[outcomeDrop] + f.outcomes[outcomeAbandoned]
}

// watchingWriter calls onFirstWrite with the status, headers and first body
// chunk before anything reaches the client, and passes Hijack through so the
// fake can still drop connections.
type watchingWriter struct {
	http.ResponseWriter
	status       int
	wrote        bool
	hijacked     bool
	onFirstWrite func(status int, header http.Header, chunk []byte)
	onHijack     func()
}

func (w *watchingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *watchingWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		w.onFirstWrite(status, w.Header(), p)
	}
	return w.ResponseWriter.Write(p)
}

func (w *watchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("soak: response writer cannot hijack")
	}
	w.hijacked = true
	w.onHijack()
	return hj.Hijack()
}

// short shows the start of a secret-like value in failure messages, enough
// to correlate, not enough to use.
func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
