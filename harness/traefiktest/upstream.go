package traefiktest

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Echo is what the echo upstream saw: tests decode it from the response to
// learn exactly which headers made it through Traefik and the plugin.
type Echo struct {
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Headers http.Header `json:"headers"`
}

// UpstreamText is the text the echo upstream renders into every HTML page,
// in the element with id "upstream", so a browser test can tell that a page
// came from the upstream and not from Traefik or the plugin.
const UpstreamText = "Rendered by the echo upstream"

// NewEchoUpstream starts an HTTP server on 127.0.0.1 that answers every
// request with what it received. Clients asking for text/html (browsers) get
// a page with UpstreamText, the path in <p id="path">, a link (id "link") to
// /clicked and the JSON in <pre id="echo">; everyone else
// gets the JSON alone. It is closed when the test ends.
func NewEchoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(serveEcho))
	t.Cleanup(srv.Close)
	return srv
}

func serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(Echo{
		Method:  r.Method,
		Path:    r.URL.Path,
		Query:   r.URL.RawQuery,
		Host:    r.Host,
		Headers: r.Header,
	}, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Echo-Upstream", "1")
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html><head><title>echo</title></head><body>` +
			`<h1 id="upstream">` + UpstreamText + `</h1>` +
			`<p id="path">` + html.EscapeString(r.URL.Path) + `</p>` +
			`<p><a id="link" href="/clicked">next page</a></p>` +
			`<pre id="echo">` + html.EscapeString(string(body)) + `</pre>` +
			`</body></html>`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
