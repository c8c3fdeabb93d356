package scale

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// ownerKind says whose refresh token a WorkOS call carried.
type ownerKind int

const (
	ownerUser   ownerKind = iota + 1 // a real user's session
	ownerVictim                      // a spent-cookie victim's current session
	ownerSpent                       // a token the victim already rotated: only the attacker replays it
)

type owner struct {
	kind ownerKind
	idx  int
}

// recorder sits in front of the fake WorkOS, as a small reverse proxy
// would, and books every call on the timeline: refresh calls by whose
// token they carried and whether the token rotated (a 200), JWKS fetches
// and anything else. The fake counts calls too, but cannot say whose.
type recorder struct {
	fake *fakeworkos.Server
	tl   *timeline

	mu     sync.Mutex
	owners map[string]owner // refresh token → whose
	jwks   []time.Time      // every JWKS fetch
}

func newRecorder(fake *fakeworkos.Server, tl *timeline) *recorder {
	return &recorder{fake: fake, tl: tl, owners: map[string]owner{}}
}

// register books a refresh token as o's.
func (rec *recorder) register(token string, o owner) {
	rec.mu.Lock()
	rec.owners[token] = o
	rec.mu.Unlock()
}

func (rec *recorder) registerAll(tokens []string, kind ownerKind) {
	rec.mu.Lock()
	for i, t := range tokens {
		rec.owners[t] = owner{kind, i}
	}
	rec.mu.Unlock()
}

// jwksFetches returns the times of every JWKS fetch.
func (rec *recorder) jwksFetches() []time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]time.Time(nil), rec.jwks...)
}

// capture buffers the fake's answer so the recorder can read it before
// passing it on.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *capture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	switch {
	case strings.HasPrefix(r.URL.Path, "/sso/jwks/"):
		rec.mu.Lock()
		rec.jwks = append(rec.jwks, now)
		rec.mu.Unlock()
		rec.tl.add(now, mJWKS, 1)
		rec.fake.ServeHTTP(w, r)
		return
	case r.URL.Path != "/user_management/authenticate":
		rec.tl.add(now, mOtherCalls, 1)
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
	rec.mu.Lock()
	o, known := rec.owners[req.RefreshToken]
	rec.mu.Unlock()
	if req.GrantType != fakeworkos.GrantRefreshToken || !known {
		rec.tl.add(now, mUnknownCalls, 1)
		rec.fake.ServeHTTP(w, r)
		return
	}

	c := &capture{header: w.Header()}
	rec.fake.ServeHTTP(c, r)
	if c.status == 0 {
		c.status = http.StatusOK
	}
	rotated := false
	if c.status == http.StatusOK {
		var resp struct {
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal(c.body.Bytes(), &resp) == nil && resp.RefreshToken != "" {
			rotated = true
			next := o
			if o.kind == ownerSpent {
				next.kind = ownerVictim // a replay that rotated: it is the victim's now
			}
			rec.mu.Lock()
			rec.owners[resp.RefreshToken] = next
			if o.kind == ownerVictim {
				// The victim's old token is spent: only a replay carries it now.
				rec.owners[req.RefreshToken] = owner{ownerSpent, o.idx}
			}
			rec.mu.Unlock()
		}
	}
	// Booked before the answer leaves, so the plugin cannot act on it first.
	switch o.kind {
	case ownerUser:
		rec.tl.add(now, mRefreshCalls, 1)
		if rotated {
			rec.tl.add(now, mRotations, 1)
		}
	case ownerVictim:
		// The one refresh that spends a victim's token (setup).
	case ownerSpent:
		rec.tl.add(now, mReplayCalls, 1)
	}
	w.WriteHeader(c.status)
	_, _ = w.Write(c.body.Bytes())
}

// serveFake serves the recorder on a free loopback port.
func serveHandler(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
