// Package floor is a Traefik plugin that does only the header work SPEC.md
// asks of traefik-authkit on a signed-in request, and nothing else: it
// strips X-Workos-* headers, finds the session cookie, looks its value up
// in a map, and writes the identity headers, X-Url and the two cache
// headers. It authenticates nothing and trusts any cookie, so it is a
// benchmark reference only: the throughput benchmark runs it to show what
// that work alone costs under Traefik's interpreter, the lowest any
// implementation of the contract can reach.
package floor

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// Config names the cookie and the headers to send for every session.
type Config struct {
	CookieName string            `json:"cookieName,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

type field struct {
	name  string
	value []string
}

type floor struct {
	next      http.Handler
	cookieKey string
	identity  []field
	sessions  sync.Map // cookie value → []field
}

var (
	noStore = []string{"private, no-cache, no-store, must-revalidate, max-age=0"}
	vary    = []string{"Cookie"}
	// stripThirdByte is traefik-authkit's one-byte pre-test for X-Workos-*.
	stripThirdByte = [256]bool{'W': true, 'S': true}
)

// New prepares the headers once.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	f := &floor{next: next, cookieKey: "; " + config.CookieName + "="}
	for name, value := range config.Headers {
		f.identity = append(f.identity, field{http.CanonicalHeaderKey(name), []string{value}})
	}
	return f, nil
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	for name := range h {
		if len(name) > 2 && stripThirdByte[name[2]] && strings.HasPrefix(name, "X-Workos-") {
			delete(h, name)
		}
	}
	if lines := h["Cookie"]; len(lines) == 1 {
		_, value, _ := strings.Cut("; "+lines[0], f.cookieKey)
		value, _, _ = strings.Cut(value, ";")
		identity, found := f.sessions.Load(value)
		if !found {
			identity, _ = f.sessions.LoadOrStore(value, f.identity)
		}
		for _, hf := range identity.([]field) {
			h[hf.name] = hf.value
		}
		h["X-Url"] = []string{"http://" + r.Host + r.URL.RequestURI()}
		wh := w.Header()
		wh["Cache-Control"] = noStore
		wh["Vary"] = vary
	}
	f.next.ServeHTTP(w, r)
}
