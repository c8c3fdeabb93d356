// Command bench-traefik measures throughput through the real Traefik
// v3.6.12 with wrk, in one run and alternating rounds, for:
//
//	none               a router with no middleware
//	noop               a do-nothing plugin (what any interpreted plugin costs)
//	contract/<config>  Traefik's own compiled headers middleware, set to make
//	                   exactly the header changes traefik-authkit makes to the
//	                   benchmark's signed-in request under that configuration
//	                   (captured from the compiled plugin): the contract's
//	                   header work with no interpreter and no authentication
//	signed/<config>    traefik-authkit with a signed-in session cookie
//	public/<config>    traefik-authkit on a public path, no cookie
//
// for each plugin configuration of -configs: default (the configuration
// below) and lean (the same without authkit-nextjs's headers and with four
// X-Forwarded-* identity headers). It prints requests per second per round,
// the median and spread of each target, the ratios between medians, and
// Traefik's resident memory after the rounds beside a Traefik that only ran
// the do-nothing plugin. Then (-junk N, 0 skips) it sends N sequential
// requests with an 880 KiB Cookie header of 61 556 short cookies through
// none, noop and each configuration's public router and prints the median
// and the slowest latency. Everything listens on 127.0.0.1; the run stops
// by itself.
//
//	./scripts/bench.sh [-rounds 5] [-duration 10s] [-configs default,lean] [-junk 20]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mitchellh/mapstructure"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/bench"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const cookiePassword = "bench-cookie-password-0123456789abcdefghij"

// configNames are the plugin configurations pluginConfig knows.
var configNames = []string{"default", "lean"}

// junkCookieBytes is the junk Cookie header's size: 61 556 cookies, under
// the 1 MiB Traefik's entry points accept in request headers by default
// (entryPoints.<name>.http.maxHeaderBytes), with room for the rest.
const junkCookieBytes = 880 << 10

type options struct {
	rounds      int
	duration    time.Duration
	connections int
	configs     []string
	junk        int
	profileDir  string // CPU profiles of the first round, when set
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "alternating wrk rounds per target (0 skips the throughput rounds)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "wrk duration per round")
	flag.IntVar(&o.connections, "connections", 32, "wrk connections")
	configs := flag.String("configs", strings.Join(configNames, ","), "plugin configurations to run, comma-separated: "+strings.Join(configNames, ", "))
	flag.IntVar(&o.junk, "junk", 20, "sequential requests per router with an 880 KiB junk Cookie header, after the rounds (0 skips)")
	flag.StringVar(&o.profileDir, "profile", "", "write a CPU profile of Traefik per target of the first round into this directory")
	flag.Parse()
	for _, name := range strings.Split(*configs, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(o.configs, name) {
			o.configs = append(o.configs, name)
		}
	}
	if err := run(o); err != nil {
		log.Fatal("bench-traefik: ", err)
	}
}

// benchConfig is one plugin configuration and what the run derived from it.
type benchConfig struct {
	name     string
	plugin   map[string]any
	contract contract
	// userHeader names the signed-in user on the upstream; a signed-in
	// request that arrives without it is counted as missing identity.
	userHeader string
	missing    atomic.Int64
}

func run(o options) error {
	if len(o.configs) == 0 {
		return fmt.Errorf("-configs names no configuration")
	}
	binary, err := traefiktest.BinaryPath()
	if err == nil {
		_, err = os.Stat(binary)
	}
	if err != nil {
		return fmt.Errorf("Traefik is not built; run harness/build-traefik.sh (%v)", err)
	}
	if _, err := exec.LookPath("wrk"); err != nil && o.rounds > 0 {
		return fmt.Errorf("wrk is not installed (apt-get install wrk)")
	}
	root, err := loader.RepoRoot()
	if err != nil {
		return err
	}
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: 24 * time.Hour})
	api, stopFake, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stopFake()
	cookie, err := sessionCookie(fake)
	if err != nil {
		return err
	}
	full, err := newTraefik(o.profileDir != "")
	if err != nil {
		return err
	}

	var configs []*benchConfig
	for _, name := range o.configs {
		plugin, err := pluginConfig(name, api, fake)
		if err != nil {
			return err
		}
		c := &benchConfig{name: name, plugin: plugin}
		req := benchRequest(full.host(), "/signed/"+name+"/x", cookie)
		if c.contract, err = captureContract(compiledPlugin(plugin), req); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		if c.userHeader, err = userHeader(c); err != nil {
			return err
		}
		fmt.Printf("contract/%s: %s\n", name, c.contract)
		configs = append(configs, c)
	}

	up := &upstream{configs: configs}
	upstreamURL, err := serve(up)
	if err != nil {
		return err
	}
	if err := full.start(binary, root, dynamicConfig(upstreamURL, configs)); err != nil {
		return err
	}
	defer full.stop()
	targets := []string{"none", "noop"}
	for _, c := range configs {
		targets = append(targets, "contract/"+c.name, "signed/"+c.name, "public/"+c.name)
	}
	for _, t := range targets {
		if _, err := fetch(full.url+"/"+t+"/x", cookieFor(t, cookie)); err != nil {
			return fmt.Errorf("%s: %v", t, err)
		}
	}
	for _, c := range configs {
		if err := up.verifyContract(full.url, c.name, cookie); err != nil {
			return err
		}
	}

	var fullRSS, baselineRSS float64
	results := map[string][]float64{}
	if o.rounds > 0 {
		if err := rounds(o, full, targets, cookie, results); err != nil {
			return err
		}
		fullRSS, _ = traefiktest.RSSMiB(full.cmd.Process.Pid)
	}
	var junk []junkResult
	if o.junk > 0 {
		var publics []string
		for _, c := range configs {
			publics = append(publics, "public/"+c.name)
		}
		if junk, err = junkRequests(full.url, append([]string{"none", "noop"}, publics...), o.junk); err != nil {
			return err
		}
	}
	full.stop()

	if o.rounds > 0 {
		// A Traefik with only the do-nothing plugin, after the same load on
		// the routers it has, for the memory line.
		baseline, err := newTraefik(false)
		if err != nil {
			return err
		}
		if err := baseline.start(binary, root, dynamicConfig(upstreamURL, nil)); err != nil {
			return err
		}
		defer baseline.stop()
		for r := 0; r < o.rounds; r++ {
			for _, t := range []string{"none", "noop"} {
				if _, err := wrk(baseline.url+"/"+t+"/x", cookie, o.duration, o.connections); err != nil {
					return err
				}
			}
		}
		baselineRSS, _ = traefiktest.RSSMiB(baseline.cmd.Process.Pid)
		baseline.stop()
		printThroughput(o, configs, targets, results)
		fmt.Printf("\nTraefik resident memory after the rounds: %.1f MiB with traefik-authkit (%s), %.1f MiB with only the do-nothing plugin (difference %.1f MiB)\n",
			fullRSS, strings.Join(o.configs, ", "), baselineRSS, fullRSS-baselineRSS)
	}
	if o.junk > 0 {
		printJunk(o.junk, junk)
	}
	for _, c := range configs {
		if n := c.missing.Load(); n > 0 {
			return fmt.Errorf("%s: %d signed-in requests reached the upstream without %s", c.name, n, c.userHeader)
		}
	}
	return nil
}

// rounds runs wrk on every target per round, alternating the order so
// drift hits every target alike.
func rounds(o options, t *traefik, targets []string, cookie string, results map[string][]float64) error {
	for r := 0; r < o.rounds; r++ {
		order := slices.Clone(targets)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, target := range order {
			var profiled chan error
			if o.profileDir != "" && r == 0 {
				profiled = make(chan error, 1)
				file := filepath.Join(o.profileDir, strings.ReplaceAll(target, "/", "-")+".pprof")
				go func() { profiled <- saveProfile(t.apiURL, file, o.duration) }()
			}
			rps, err := wrk(t.url+"/"+target+"/x", cookieFor(target, cookie), o.duration, o.connections)
			if err != nil {
				return err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return err
				}
			}
			results[target] = append(results[target], rps)
			fmt.Printf("round %d %-18s %9.0f req/s\n", r+1, target, rps)
		}
	}
	return nil
}

func printThroughput(o options, configs []*benchConfig, targets []string, results map[string][]float64) {
	med := map[string]float64{}
	fmt.Printf("\nmedian of %d rounds of %s, %d connections, 2 wrk threads; min–max of the rounds:\n", o.rounds, o.duration, o.connections)
	for _, t := range targets {
		med[t] = median(results[t])
		lo, hi := slices.Min(results[t]), slices.Max(results[t])
		fmt.Printf("  %-18s %9.0f req/s  %6.0f–%-6.0f (±%.0f %%)\n", t, med[t], lo, hi, (hi-lo)/2/med[t]*100)
	}
	fmt.Printf("\nratios of the medians (same run):\n  %-18s", "")
	for _, c := range configs {
		fmt.Printf(" %9s", c.name)
	}
	fmt.Println()
	for _, ratio := range [][2]string{
		{"signed", "contract"}, {"signed", "none"}, {"public", "none"}, {"public", "noop"}, {"contract", "none"},
	} {
		fmt.Printf("  %-18s", ratio[0]+" / "+ratio[1])
		for _, c := range configs {
			target := func(kind string) string {
				if kind == "none" || kind == "noop" {
					return kind
				}
				return kind + "/" + c.name
			}
			fmt.Printf(" %9.3f", med[target(ratio[0])]/med[target(ratio[1])])
		}
		fmt.Println()
	}
	fmt.Printf("  %-18s %9.3f  (no plugin configuration)\n", "noop / none", med["noop"]/med["none"])
}

// sessionCookie signs Alice in at the fake and seals her session the way
// the plugin does.
func sessionCookie(fake *fakeworkos.Server) (string, error) {
	issued, err := fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	if err != nil {
		return "", err
	}
	var user map[string]any
	if err := json.Unmarshal(issued.User, &user); err != nil {
		return "", err
	}
	payload, _ := json.Marshal(map[string]any{
		"accessToken": issued.AccessToken, "refreshToken": issued.RefreshToken,
		"user": map[string]any{"object": "user", "id": user["id"], "email": user["email"]},
	})
	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		return "", err
	}
	sealed, err := keyring.Seal(payload, 0, time.Now())
	return "wos-session=" + sealed, err
}

// pluginConfig is traefik-authkit's configuration named name: default, or
// lean, which adds nextjsHeaders: false and identityHeaders (a plugin that
// does not know those keys yet runs lean as default).
func pluginConfig(name, api string, fake *fakeworkos.Server) (map[string]any, error) {
	u, _ := url.Parse(api)
	config := map[string]any{
		"clientId": fake.ClientID(), "apiKey": fake.APIKey(), "cookiePassword": cookiePassword,
		"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
		"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
	}
	switch name {
	case "default":
	case "lean":
		config["nextjsHeaders"] = false
		config["identityHeaders"] = map[string]any{
			"X-Forwarded-User": "user.id", "X-Forwarded-Email": "user.email",
			"X-Forwarded-Groups": "roles", "X-Forwarded-Org": "organizationId",
		}
	default:
		return nil, fmt.Errorf("unknown configuration %q (known: %s)", name, strings.Join(configNames, ", "))
	}
	return config, nil
}

// compiledPlugin builds the compiled plugin from config, decoded with the
// options Traefik's plugin builder uses (as harness/loader does for the
// interpreted one), in front of next.
func compiledPlugin(config map[string]any) func(next http.Handler) (http.Handler, error) {
	return func(next http.Handler) (http.Handler, error) {
		cfg := authkit.CreateConfig()
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook:       mapstructure.StringToSliceHookFunc(","),
			WeaklyTypedInput: true,
			Result:           cfg,
		})
		if err != nil {
			return nil, err
		}
		if err := dec.Decode(config); err != nil {
			return nil, err
		}
		return authkit.New(context.Background(), next, cfg, "contract")
	}
}

// benchRequest is the request wrk sends to path, as a middleware on
// Traefik's entry point at host sees it: with the headers Traefik's
// forwarded-headers handler adds before any middleware runs
// (X-Forwarded-For comes later, from the proxy).
func benchRequest(host, path, cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	_, port, _ := net.SplitHostPort(host)
	hostname, _ := os.Hostname()
	for name, value := range map[string]string{
		"Accept": "text/html", "Cookie": cookie,
		"X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Port": port,
		"X-Forwarded-Host": host, "X-Forwarded-Server": hostname,
	} {
		if value != "" {
			r.Header.Set(name, value)
		}
	}
	return r
}

// contract is a headers middleware configuration: the headers it sets on
// the request (a header set to "" is deleted) and on the response.
type contract struct {
	request, response map[string]string
}

func (c contract) String() string {
	describe := func(headers map[string]string) string {
		names := slices.Sorted(maps.Keys(headers))
		size := 0
		for i, name := range names {
			size += len(name) + len(headers[name])
			if headers[name] == "" {
				names[i] += " (deleted)"
			}
		}
		return fmt.Sprintf("%d headers, %d bytes: %s", len(names), size, strings.Join(names, ", "))
	}
	return "request " + describe(c.request) + "; response " + describe(c.response)
}

// captureContract builds a handler in front of an upstream that records
// what it receives, sends it copies of req twice (the second answered from
// the session cache, like every measured request) and returns the headers
// middleware configuration that makes the second answer's changes: every
// request header the upstream received that req did not carry or carried
// with another value, "" for each req carried that the upstream did not
// receive, Host when the request's host changed, and every response header
// the handler set.
func captureContract(build func(next http.Handler) (http.Handler, error), req *http.Request) (contract, error) {
	var seen *http.Request
	h, err := build(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Clone(context.Background()) }))
	if err != nil {
		return contract{}, err
	}
	var w *httptest.ResponseRecorder
	for i := 0; i < 2; i++ {
		seen, w = nil, httptest.NewRecorder()
		h.ServeHTTP(w, req.Clone(context.Background()))
	}
	if seen == nil {
		return contract{}, fmt.Errorf("the plugin answered the benchmark request itself (status %d) instead of passing it on", w.Code)
	}
	request, err := headerChanges(req.Header, seen.Header)
	if err != nil {
		return contract{}, fmt.Errorf("request: %v", err)
	}
	if seen.Host != req.Host {
		request["Host"] = seen.Host
	}
	response, err := headerChanges(nil, w.Header())
	if err != nil {
		return contract{}, fmt.Errorf("response: %v", err)
	}
	return contract{request: request, response: response}, nil
}

// headerChanges returns, as the headers middleware's one value per name,
// every header of after that before lacks or holds with other values, and
// "" for every header of before that after lacks.
func headerChanges(before, after http.Header) (map[string]string, error) {
	out := map[string]string{}
	for name, values := range after {
		if slices.Equal(values, before[name]) {
			continue
		}
		switch {
		case len(values) == 0:
			out[name] = ""
		case len(values) == 1 && values[0] == "":
			return nil, fmt.Errorf("%s is set empty, which the headers middleware cannot do (it deletes a header set to \"\")", name)
		case len(values) == 1:
			out[name] = values[0]
		case name == "Cookie":
			out[name] = strings.Join(values, "; ")
		case name == "Set-Cookie":
			return nil, fmt.Errorf("%d Set-Cookie headers, which the headers middleware cannot set", len(values))
		default:
			out[name] = strings.Join(values, ", ")
		}
	}
	for name := range before {
		if _, kept := after[name]; !kept {
			out[name] = ""
		}
	}
	return out, nil
}

// userHeader is the header that names the signed-in user on c's signed
// router: identityHeaders' header for user.id when the plugin sends it,
// else X-Workos-User-Id (the default table, which a plugin that does not
// know identityHeaders yet sends instead).
func userHeader(c *benchConfig) (string, error) {
	if identity, ok := c.plugin["identityHeaders"].(map[string]any); ok {
		for name, field := range identity {
			if field != "user.id" {
				continue
			}
			name = http.CanonicalHeaderKey(name)
			if c.contract.request[name] != "" {
				return name, nil
			}
			fmt.Printf("%s: the plugin does not send %s (identityHeaders user.id); the upstream checks X-Workos-User-Id\n", c.name, name)
		}
	}
	if c.contract.request["X-Workos-User-Id"] != "" {
		return "X-Workos-User-Id", nil
	}
	return "", fmt.Errorf("%s: the plugin sent no user id for the benchmark session (%s)", c.name, c.contract)
}

// upstream answers every router. It counts signed-in requests without the
// user's header and, while probing, keeps the headers of the last request
// per path.
type upstream struct {
	configs []*benchConfig
	probing atomic.Bool
	mu      sync.Mutex
	seen    map[string]http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, c := range u.configs {
		if strings.HasPrefix(r.URL.Path, "/signed/"+c.name+"/") && r.Header.Get(c.userHeader) == "" {
			c.missing.Add(1)
		}
	}
	if u.probing.Load() {
		u.mu.Lock()
		u.seen[r.URL.Path] = r.Header.Clone()
		u.mu.Unlock()
	}
	w.Write([]byte("ok\n"))
}

// verifyContract sends the signed-in request through the plugin's router
// and the contract's: the upstream must receive the same headers from both,
// and the client the same response headers but Date, or the contract does
// not stand for the plugin's header work.
func (u *upstream) verifyContract(base, config, cookie string) error {
	u.mu.Lock()
	u.seen = map[string]http.Header{}
	u.mu.Unlock()
	u.probing.Store(true)
	defer u.probing.Store(false)
	var responses, requests [2]http.Header
	for i, kind := range []string{"signed", "contract"} {
		path := "/" + kind + "/" + config + "/x"
		resp, err := fetch(base+path, cookie)
		if err != nil {
			return fmt.Errorf("%s/%s: %v", kind, config, err)
		}
		resp.Del("Date")
		u.mu.Lock()
		responses[i], requests[i] = resp, u.seen[path]
		u.mu.Unlock()
	}
	if diff := headerDiff(requests[0], requests[1]); diff != "" {
		return fmt.Errorf("contract/%s: the upstream received other request headers than from signed/%s:\n%s", config, config, diff)
	}
	if diff := headerDiff(responses[0], responses[1]); diff != "" {
		return fmt.Errorf("contract/%s: other response headers than signed/%s:\n%s", config, config, diff)
	}
	return nil
}

// headerDiff lists the headers whose values differ, one line each.
func headerDiff(want, got http.Header) string {
	var lines []string
	for name := range want {
		if !slices.Equal(want[name], got[name]) {
			lines = append(lines, fmt.Sprintf("  %s: %q, want %q", name, got[name], want[name]))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: %q, want none", name, got[name]))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// dynamicConfig routes /none and /noop and, for each configuration,
// /contract/<name>, /signed/<name> and /public/<name> to the upstream.
func dynamicConfig(upstream string, configs []*benchConfig) map[string]any {
	routers := map[string]any{}
	route := func(target, middleware string) {
		router := map[string]any{"rule": "PathPrefix(`/" + target + "/`)", "service": "app"}
		if middleware != "" {
			router["middlewares"] = []string{middleware}
		}
		routers[strings.ReplaceAll(target, "/", "-")] = router
	}
	route("none", "")
	route("noop", "noop")
	middlewares := map[string]any{"noop": map[string]any{"plugin": map[string]any{"noop": map[string]any{}}}}
	for _, c := range configs {
		route("contract/"+c.name, "contract-"+c.name)
		route("signed/"+c.name, "authkit-"+c.name)
		route("public/"+c.name, "authkit-"+c.name)
		middlewares["authkit-"+c.name] = map[string]any{"plugin": map[string]any{"authkit": c.plugin}}
		middlewares["contract-"+c.name] = map[string]any{"headers": map[string]any{
			"customRequestHeaders": c.contract.request, "customResponseHeaders": c.contract.response,
		}}
	}
	return map[string]any{"http": map[string]any{
		"routers":     routers,
		"middlewares": middlewares,
		"services":    map[string]any{"app": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": upstream}}}}},
	}}
}

type traefik struct {
	cmd    *exec.Cmd
	port   string
	url    string
	apiURL string // Traefik's own entry point, with pprof when debug
	debug  bool
	stop   func()
}

// newTraefik reserves the ports of a Traefik that start runs.
func newTraefik(debug bool) (*traefik, error) {
	port, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	return &traefik{port: port, url: "http://127.0.0.1:" + port, apiURL: "http://127.0.0.1:" + apiPort, debug: debug, stop: func() {}}, nil
}

// host is the Host header of requests to the web entry point.
func (t *traefik) host() string { return "127.0.0.1:" + t.port }

// start runs Traefik with the plugin and bench/noop as local plugins and
// the dynamic configuration, and waits until it routes /noop.
func (t *traefik) start(binary, root string, dynamic map[string]any) error {
	dir, err := os.MkdirTemp("", "authkit-bench-")
	if err != nil {
		return err
	}
	for module, src := range map[string]string{
		loader.ModuleName:                 root,
		"github.com/traefik-authkit/noop": filepath.Join(root, "harness", "bench", "noop"),
	} {
		if err := loader.CopyPlugin(src, filepath.Join(dir, "plugins-local", "src", module)); err != nil {
			return err
		}
	}
	dyn, _ := json.Marshal(dynamic)
	if err := os.WriteFile(filepath.Join(dir, "dynamic.json"), dyn, 0o600); err != nil {
		return err
	}
	apiPort := strings.TrimPrefix(t.apiURL, "http://127.0.0.1:")
	static := fmt.Sprintf(`entryPoints:
  web:
    address: "127.0.0.1:%s"
  traefik:
    address: "127.0.0.1:%s"
api:
  insecure: true
  debug: %t
experimental:
  localPlugins:
    authkit:
      moduleName: %s
    noop:
      moduleName: github.com/traefik-authkit/noop
providers:
  file:
    filename: %s
log:
  level: ERROR
`, t.port, apiPort, t.debug, loader.ModuleName, filepath.Join(dir, "dynamic.json"))
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(binary, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	t.cmd = cmd
	var once sync.Once
	t.stop = func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			cmd.Wait()
			os.RemoveAll(dir)
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(t.url + "/noop/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.stop()
	return fmt.Errorf("Traefik did not route within a minute")
}

// cookieFor is the Cookie header of a target's requests: the signed-in
// session everywhere but on the public paths, which anonymous visitors use.
func cookieFor(target, cookie string) string {
	if strings.HasPrefix(target, "public/") {
		return ""
	}
	return cookie
}

// fetch sends a request as wrk does and returns the response headers; it
// makes sure a target answers 200 before it is measured, so a
// misconfiguration is not benchmarked as a fast error page.
func fetch(target, cookie string) (http.Header, error) {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "text/html")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header, nil
}

// junkResult is the latencies of one router for one junk Cookie header.
type junkResult struct {
	target, variant string
	latencies       []time.Duration
}

// junkVariants are the junk Cookie headers sent through Traefik: plain, and
// with a wos-session.x cookie, the prefix of a split session's parts.
var junkVariants = []string{bench.JunkPlain, bench.JunkWithSessionPrefix}

// junkRequests sends n sequential requests with each junk Cookie header
// to each target; every answer must be 200 (not refused for its size).
func junkRequests(base string, targets []string, n int) ([]junkResult, error) {
	var out []junkResult
	for _, variant := range junkVariants {
		cookie := bench.JunkCookie(junkCookieBytes, variant)
		for _, target := range targets {
			res := junkResult{target: target, variant: variant}
			for i := 0; i < n; i++ {
				start := time.Now()
				if _, err := fetch(base+"/"+target+"/x", cookie); err != nil {
					return nil, fmt.Errorf("junk cookie %s, %s: %v", variant, target, err)
				}
				res.latencies = append(res.latencies, time.Since(start))
			}
			out = append(out, res)
		}
	}
	return out, nil
}

func printJunk(n int, results []junkResult) {
	fmt.Printf("\njunk Cookie header of %d KiB (%d cookies), %d sequential requests per router; latency median / max:\n  %-18s",
		junkCookieBytes>>10, strings.Count(bench.JunkCookie(junkCookieBytes, bench.JunkPlain), ";")+1, n, "")
	for _, v := range junkVariants {
		fmt.Printf(" %-23s", v)
	}
	fmt.Println()
	var targets []string
	byKey := map[[2]string][]time.Duration{}
	for _, r := range results {
		if !slices.Contains(targets, r.target) {
			targets = append(targets, r.target)
		}
		byKey[[2]string{r.target, r.variant}] = r.latencies
	}
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }
	for _, t := range targets {
		fmt.Printf("  %-18s", t)
		for _, v := range junkVariants {
			l := byKey[[2]string{t, v}]
			fmt.Printf(" %-23s", ms(median(l))+" / "+ms(slices.Max(l)))
		}
		fmt.Println()
	}
}

// saveProfile records Traefik's CPU for most of one wrk round.
func saveProfile(apiURL, file string, duration time.Duration) error {
	seconds := int(duration.Seconds()) - 1
	if seconds < 1 {
		seconds = 1
	}
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", apiURL, seconds))
	if err != nil {
		return fmt.Errorf("profile: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: status %d", resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

var requestsPerSecond = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func wrk(target, cookie string, duration time.Duration, connections int) (float64, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(connections), "-d" + duration.String(), "-H", "Accept: text/html"}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	out, err := exec.Command("wrk", append(args, target)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return 0, fmt.Errorf("wrk saw non-2xx answers from %s:\n%s", target, out)
	}
	m := requestsPerSecond.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// median is the middle value, the upper one of an even count.
func median[T float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}
