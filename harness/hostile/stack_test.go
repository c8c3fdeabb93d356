package hostile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// PluginDirEnv names another plugin checkout to run instead of this
// repository (see the package documentation).
const PluginDirEnv = "HOSTILE_PLUGIN_DIR"

const (
	// cookiePassword seals the session cookies (≥ 32 characters).
	cookiePassword = "hostile-cookie-password-at-least-32-characters"
	// sessionCookie is the plugin's default session cookie name.
	sessionCookie = "wos-session"
	// bareRouter serves the upstream without the plugin: what Traefik
	// itself passes on.
	bareRouter = "/bare/"
	// publicPath is in unauthenticatedPaths; protectedPath is not.
	publicPath    = "/public/page"
	protectedPath = "/page"
)

// stack is one Traefik running the plugin in front of the upstream, with
// the fake WorkOS behind the plugin.
type stack struct {
	t       *testing.T
	fake    *fakeworkos.Server
	traefik *traefiktest.Traefik
	keyring *authkit.Keyring
	client  *http.Client
	// host is Traefik's web entrypoint, 127.0.0.1:<port>.
	host string
}

// startStack starts the fake WorkOS, the upstream and Traefik with the
// plugin configured for them (middlewareAuth on, /public/* public),
// changed by configure. The router "app" sends every path through the
// plugin; "bare" sends /bare/* to the upstream without it.
func startStack(t *testing.T, configure func(config map[string]any)) *stack {
	t.Helper()
	return startStackWith(t, fakeworkos.Options{}, configure)
}

// on is s for a subtest: its helpers fail t, not the test that started s.
func (s *stack) on(t *testing.T) *stack {
	c := *s
	c.t = t
	return &c
}

// startTraefik runs Traefik with plugin (the source at pluginDir, default
// this repository) configured with config on the router "app", and the
// router "bare" without it.
func startTraefik(t *testing.T, upstream string, config map[string]any, pluginDir string) *traefiktest.Traefik {
	t.Helper()
	dynamic := traefiktest.DynamicConfig(upstream, config)
	routers := dynamic["http"].(map[string]any)["routers"].(map[string]any)
	routers["bare"] = map[string]any{
		"rule":        "PathPrefix(`" + bareRouter + "`)",
		"entryPoints": []string{"web"},
		"service":     "app",
	}
	data, err := yaml.Marshal(dynamic)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dynamic.yml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tr := traefiktest.Start(t, traefiktest.Options{
		DynamicFile: file,
		Upstream:    upstream,
		PluginDir:   pluginDir,
		ReadyPath:   "/public/ready",
	})
	tr.SetFailureLogLines(60)
	return tr
}

// newClient does not follow redirects and keeps enough idle connections
// for the concurrent tests.
func newClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// upstreamMark is a response header the upstream sets, so a test can tell
// its answers from the plugin's and Traefik's.
const upstreamMark = "X-Echo-Upstream"

// newUpstream answers every request with what it received, as
// traefiktest.Echo JSON; a Cookie header longer than 4 KiB is echoed as
// its length, so the huge Cookie tests measure the proxy, not the echo.
func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		if n := len(strings.Join(h["Cookie"], "; ")); n > 4096 {
			h["Cookie"] = []string{fmt.Sprintf("<%d bytes>", n)}
		}
		body, _ := json.Marshal(traefiktest.Echo{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: h})
		w.Header().Set(upstreamMark, "1")
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// session signs userID in at the fake (into orgID, or none) and seals
// the session as the plugin would; accessTTL, when not zero, replaces the
// access token by one expiring then (negative: already expired).
func (s *stack) session(userID, orgID string, accessTTL time.Duration) (cookie string, issued fakeworkos.IssuedSession) {
	s.t.Helper()
	issued, err := s.fake.IssueSession(fakeworkos.SessionParams{UserID: userID, OrganizationID: orgID})
	if err != nil {
		s.t.Fatal(err)
	}
	if accessTTL != 0 {
		if issued.AccessToken, err = s.fake.MintSessionToken(issued.SessionID, accessTTL); err != nil {
			s.t.Fatal(err)
		}
	}
	var user map[string]any
	if err := json.Unmarshal(issued.User, &user); err != nil {
		s.t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{
		"accessToken": issued.AccessToken, "refreshToken": issued.RefreshToken,
		"user": map[string]any{"object": "user", "id": user["id"], "email": user["email"]},
	})
	sealed, err := s.keyring.Seal(payload, 0, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return sessionCookie + "=" + sealed, issued
}

// request builds a request to Traefik's web entrypoint. accept "html"
// makes it a browser's document request, anything else an API call.
func (s *stack) request(method, path, accept, cookie string, body io.Reader) *http.Request {
	s.t.Helper()
	req, err := http.NewRequest(method, s.traefik.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if accept == "html" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	return req
}

// do sends req and returns the response with its body read.
func (s *stack) do(req *http.Request) (*http.Response, []byte) {
	s.t.Helper()
	resp, body, err := send(s.client, req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

// send is do for goroutines: it returns the error instead of failing.
func send(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// echo decodes what the upstream received, failing the test when the
// answer is not the upstream's.
func (s *stack) echo(resp *http.Response, body []byte) traefiktest.Echo {
	s.t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(upstreamMark) != "1" {
		s.t.Fatalf("status %d, not the upstream's answer: %.300s", resp.StatusCode, body)
	}
	e, err := traefiktest.DecodeEcho(strings.NewReader(string(body)))
	if err != nil {
		s.t.Fatal(err)
	}
	return e
}

// header is one request header line, written as is.
type header struct{ name, value string }

// raw sends a request written byte for byte on a new connection, so each
// header name reaches Traefik exactly as spelled (no client canonicalises
// it), and returns Traefik's response.
func (s *stack) raw(method, path string, headers []header) (*http.Response, []byte) {
	s.t.Helper()
	conn, err := net.DialTimeout("tcp", s.host, 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + s.host + "\r\n")
	for _, h := range headers {
		b.WriteString(h.name + ": " + h.value + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.t.Fatalf("raw %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, body
}

// setCookie returns the Set-Cookie line for the cookie called name, or "".
func setCookie(resp *http.Response, name string) string {
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, name+"=") {
			return c
		}
	}
	return ""
}

// cookiePairs turns a response's Set-Cookie lines, deletions left out,
// into a Cookie header value.
func cookiePairs(resp *http.Response) string {
	var pairs []string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.Contains(c, "Max-Age=0") {
			continue
		}
		pairs = append(pairs, strings.SplitN(c, ";", 2)[0])
	}
	return strings.Join(pairs, "; ")
}

// isSignInRedirect reports whether resp sends the browser to AuthKit.
func (s *stack) isSignInRedirect(resp *http.Response) bool {
	return (resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusSeeOther) &&
		strings.Contains(resp.Header.Get("Location"), "/user_management/authorize")
}
