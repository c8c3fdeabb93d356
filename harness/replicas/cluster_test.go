package replicas

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// Environment variables that shape a run; every one has a CI default.
const (
	durationEnv = "REPLICAS_DURATION" // load phase of each mode (Go duration)
	countEnv    = "REPLICAS_COUNT"    // Traefik replicas
	clientsEnv  = "REPLICAS_CLIENTS"  // simulated browsers
	spreadEnv   = "REPLICAS_SPREAD"   // random (default) or roundrobin
	ttlEnv      = "REPLICAS_TOKEN_TTL"
	graceEnv    = "REPLICAS_GRACE"      // grace window of TestReplicasGrace (Go duration)
	reportEnv   = "REPLICAS_REPORT_DIR" // where to write replicas-<test>.json
	pluginEnv   = "REPLICAS_PLUGIN_DIR" // plugin source to run; default this repository
)

const (
	defaultDuration = 30 * time.Second
	defaultReplicas = 3
	defaultClients  = 40
	// defaultTokenTTL is the fake's access-token lifetime: short, so a
	// client that idles a little longer holds an expired token at every
	// burst and the load is mostly refreshes.
	defaultTokenTTL = 6 * time.Second
	// defaultGrace is WorkOS's replay window as reported (H.1).
	defaultGrace = 30 * time.Second

	cookiePassword = "replicas-cookie-password-0123456789abcdefghij"
	sessionCookie  = "wos-session"
	signOutPath    = "/auth/sign-out"
	protectedPath  = "/app/dashboard"
	apiPath        = "/api/items"

	// requestTimeout bounds one request: a refresh may wait for the
	// plugin's 10 s WorkOS timeout and a slow Redis on a loaded machine.
	requestTimeout = 30 * time.Second
	// failureLogLines is how much of each replica's log a failed test
	// shows: its last plugin events.
	failureLogLines = 25
)

// runConfig is what the environment asked for.
type runConfig struct {
	duration  time.Duration
	replicas  int
	clients   int
	spread    string
	tokenTTL  time.Duration
	grace     time.Duration
	reportDir string
	pluginDir string
}

func loadConfig(t *testing.T) runConfig {
	t.Helper()
	c := runConfig{
		duration: envDuration(t, durationEnv, defaultDuration),
		replicas: envInt(t, countEnv, defaultReplicas),
		clients:  envInt(t, clientsEnv, defaultClients),
		spread:   os.Getenv(spreadEnv),
		tokenTTL: envDuration(t, ttlEnv, defaultTokenTTL),
		grace:    envDuration(t, graceEnv, defaultGrace),
	}
	c.reportDir = os.Getenv(reportEnv)
	c.pluginDir = os.Getenv(pluginEnv)
	if c.spread == "" {
		c.spread = "random"
	}
	if c.spread != "random" && c.spread != "roundrobin" {
		t.Fatalf("%s=%q: want random or roundrobin", spreadEnv, c.spread)
	}
	if c.tokenTTL < 3*time.Second {
		t.Fatalf("%s=%s: want at least 3s (the refresh buffer is 1 s)", ttlEnv, c.tokenTTL)
	}
	return c
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a Go duration such as 5m", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// requireOrSkip skips the test for a missing prerequisite, or fails it
// when AUTHKIT_REQUIRE_TRAEFIK is set, so CI never passes by skipping.
func requireOrSkip(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv(traefiktest.RequireEnv) != "" {
		t.Fatalf("%s and %s is set", msg, traefiktest.RequireEnv)
	}
	t.Skip(msg)
}

// cluster is one fake WorkOS behind the recorder, an identity-echoing
// upstream and N Traefik replicas with one plugin configuration.
type cluster struct {
	t         *testing.T
	cfg       runConfig
	fake      *fakeworkos.Server
	workosURL string // the recorder's URL: WorkOS as the replicas see it
	rec       *recorder
	replicas  []*traefiktest.Traefik
	upstream  string
	keyring   *authkit.Keyring
	http      *http.Client
	phase     atomic.Value // string: the phase refresh calls and bursts count under

	pluginConfig map[string]any
}

// setPhase names the phase from now on.
func (cl *cluster) setPhase(p string) { cl.phase.Store(p) }

func (cl *cluster) currentPhase() string {
	p, _ := cl.phase.Load().(string)
	return p
}

// startCluster starts everything on 127.0.0.1. grace is the fake's replay
// window (0: strict single use); redisURL, when set, goes to every replica
// as the plugin key redisUrl.
func startCluster(t *testing.T, cfg runConfig, grace time.Duration, redisURL string) *cluster {
	t.Helper()
	traefiktest.RequireBinary(t)
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: cfg.tokenTTL, RefreshGrace: grace})
	fakeURL, stop, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	cl := &cluster{t: t, cfg: cfg, fake: fake}
	cl.setPhase("setup")
	cl.rec, cl.workosURL = startRecorder(t, fakeURL, cl.currentPhase)

	// The upstream answers 200 and names the identity it received, so
	// every answer can be checked against the client that asked.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-User-Id", r.Header.Get("X-Workos-User-Id"))
		w.Header().Set("X-Echo-Session-Id", r.Header.Get("X-Workos-Session-Id"))
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(up.Close)
	cl.upstream = up.URL

	cl.pluginConfig = cl.makePluginConfig(redisURL)
	start := time.Now()
	for i := 0; i < cfg.replicas; i++ {
		tr := traefiktest.Start(t, traefiktest.Options{
			PluginDir:    cfg.pluginDir,
			Upstream:     cl.upstream,
			ReadyPath:    "/public/ready",
			PluginConfig: cl.pluginConfig,
		})
		// A failure here is a count, not a crash: the report and its
		// examples say more than thousands of DEBUG lines.
		tr.SetFailureLogLines(failureLogLines)
		cl.replicas = append(cl.replicas, tr)
	}
	t.Logf("%d Traefik replicas ready in %s", cfg.replicas, time.Since(start).Round(100*time.Millisecond))

	cl.keyring, err = authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		t.Fatal(err)
	}
	cl.http = &http.Client{
		Timeout:       requestTimeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4 * cfg.clients, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(cl.http.CloseIdleConnections)
	return cl
}

// makePluginConfig is the one configuration every replica runs.
func (cl *cluster) makePluginConfig(redisURL string) map[string]any {
	u, _ := url.Parse(cl.workosURL)
	cfg := map[string]any{
		"clientId": cl.fake.ClientID(), "apiKey": cl.fake.APIKey(), "cookiePassword": cookiePassword,
		"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
		// Tokens live a few seconds: a 1 s buffer keeps them from being
		// refreshed on every request.
		"refreshBufferSeconds": "1",
		"middlewareAuth":       map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
	}
	if redisURL != "" {
		cfg["redisUrl"] = redisURL
	}
	return cfg
}

// setRedisURL rewrites every replica's dynamic configuration with another
// redisUrl and waits until each has loaded it (Traefik watches the file
// and builds the middleware again). It reports replicas that did not pick
// it up within the bound.
func (cl *cluster) setRedisURL(t *testing.T, redisURL string) {
	t.Helper()
	cl.pluginConfig = cl.makePluginConfig(redisURL)
	for _, tr := range cl.replicas {
		tr.WriteDynamic(t, traefiktest.DynamicConfig(cl.upstream, cl.pluginConfig))
	}
	for i, tr := range cl.replicas {
		if err := waitMiddlewareConfig(tr, redisURL, 15*time.Second); err != nil {
			t.Errorf("replica %d did not load redisUrl %s: %v", i+1, redactURL(redisURL), err)
		}
	}
}

// waitMiddlewareConfig polls Traefik's API until the plugin middleware's
// configuration carries redisUrl = want.
func waitMiddlewareConfig(tr *traefiktest.Traefik, want string, bound time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(bound)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := client.Get(tr.APIURL + "/api/http/middlewares/" + traefiktest.MiddlewareName + "@file")
		if err == nil {
			var mw struct {
				Plugin map[string]map[string]any `json:"plugin"`
				Status string                    `json:"status"`
			}
			err = json.NewDecoder(resp.Body).Decode(&mw)
			resp.Body.Close()
			if err == nil {
				got, _ := mw.Plugin[traefiktest.PluginAlias]["redisUrl"].(string)
				if got == want {
					return nil
				}
				last = fmt.Sprintf("redisUrl is %q (status %s)", redactURL(got), mw.Status)
			} else {
				last = err.Error()
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %s", bound, last)
}

// redactURL hides a URL's password in messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// signIn gives c a new WorkOS session and the cookie a sign-in would
// have set, sealed as authkit-nextjs seals it. expired makes its access
// token already expired, so the first request refreshes.
func (cl *cluster) signIn(c *client, expired bool) error {
	issued, err := cl.fake.IssueSession(fakeworkos.SessionParams{UserID: c.user, OrganizationID: c.org})
	if err != nil {
		return err
	}
	token := issued.AccessToken
	if expired {
		if token, err = cl.fake.MintSessionToken(issued.SessionID, -time.Second); err != nil {
			return err
		}
	}
	var user struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(issued.User, &user); err != nil {
		return err
	}
	payload, err := json.Marshal(map[string]any{
		"accessToken":  token,
		"refreshToken": issued.RefreshToken,
		"user":         map[string]any{"object": "user", "id": user.ID, "email": user.Email},
	})
	if err != nil {
		return err
	}
	sealed, err := cl.keyring.Seal(payload, 0, time.Now())
	if err != nil {
		return err
	}
	c.jar.ClearSession()
	c.jar[sessionCookie] = sealed
	c.sid = issued.SessionID
	return nil
}

// get sends one GET to a replica with the given cookies and reads the
// answer into an outcome.
func (cl *cluster) get(replica int, path string, document bool, cookies string) outcome {
	o := outcome{replica: replica, document: document, start: time.Now()}
	req, err := http.NewRequest(http.MethodGet, cl.replicas[replica].URL+path, nil)
	if err != nil {
		o.err = err
		return o
	}
	if document {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
	} else {
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Sec-Fetch-Mode", "cors")
	}
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		o.err, o.end = err, time.Now()
		return o
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	o.end = time.Now()
	o.status = resp.StatusCode
	o.user = resp.Header.Get("X-Echo-User-Id")
	o.session = resp.Header.Get("X-Echo-Session-Id")
	o.location = resp.Header.Get("Location")
	o.setCookies = resp.Header.Values("Set-Cookie")
	return o
}

// isSignInRedirect reports a redirect to the WorkOS authorize URL.
func (cl *cluster) isSignInRedirect(o outcome) bool {
	return o.status >= 300 && o.status < 400 && strings.HasPrefix(o.location, cl.workosURL+"/user_management/authorize")
}
