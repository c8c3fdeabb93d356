// Package traefiktest runs the real Traefik v3.6.12 binary with the plugin in
// local mode, in front of a test upstream, so end-to-end tests exercise the
// plugin exactly as users deploy it: Traefik's own static and dynamic
// configuration parsing, its Yaegi loading, its router and its logging.
//
// Everything listens on 127.0.0.1 and Traefik is configured not to phone
// home (no version check, no anonymous usage), so tests stay offline.
package traefiktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/syncbuf"
)

// Version is the Traefik release the harness builds and runs.
const Version = "v3.6.12"

// PluginAlias is the name under experimental.localPlugins, and so the key
// under a middleware's `plugin:` in the dynamic configuration.
const PluginAlias = "authkit"

// RouterName is the router the generated dynamic configuration defines.
const RouterName = "app"

// MiddlewareName is the middleware the generated dynamic configuration
// defines and attaches to its router.
const MiddlewareName = "authkit"

// RequireEnv, when set, turns a missing Traefik binary into a failure, so
// CI (harness/test.sh sets it) can never pass by skipping.
const RequireEnv = "AUTHKIT_REQUIRE_TRAEFIK"

// BinaryEnv overrides where the Traefik binary is looked for.
const BinaryEnv = "AUTHKIT_TRAEFIK_BIN"

// readyTimeout bounds how long Start waits for the router; loading the
// plugin in the interpreter takes a second or two, so this is generous.
const readyTimeout = 45 * time.Second

// Options describe one Traefik instance.
type Options struct {
	// PluginConfig is the middleware's configuration, as it would appear
	// under http.middlewares.authkit.plugin.authkit in a YAML file.
	PluginConfig map[string]any
	// Upstream is the URL of the service behind the router. Empty starts an
	// echo upstream (see NewEchoUpstream).
	Upstream string
	// Env is added to Traefik's environment (the plugin sees it through
	// the interpreter), e.g. WORKOS_API_KEY for the env fallbacks. WorkOS
	// variables of the test process itself are not passed on.
	Env []string
	// ReadyPath is requested through the entrypoint until Traefik routes
	// it; default "/".
	ReadyPath string
	// PluginDir is the plugin source to copy into plugins-local; default
	// the repository root.
	PluginDir string
	// Manifest, when set, replaces .traefik.yml in Traefik's copy of the
	// plugin, to test how Traefik treats a broken manifest.
	Manifest []byte
	// NoRouterWait makes Start return once Traefik answers /ping, without
	// waiting for the router: for configurations where it never comes up.
	NoRouterWait bool
	// DynamicFile, when set, is a dynamic configuration file (such as
	// examples/dynamic.yml) served verbatim instead of the one generated
	// from PluginConfig and Upstream, so a test runs exactly what users
	// copy. Traefik renders it as a Go template; pass what its template
	// reads through Env. Its router should be named RouterName for the
	// readiness check to report router errors.
	DynamicFile string
	// WebPort is the web entrypoint's port; default a free one. Set it
	// when the configuration must name Traefik's own address before it
	// starts, such as an absolute WORKOS_REDIRECT_URI.
	WebPort string
}

// Traefik is a running Traefik process.
type Traefik struct {
	// URL is the web entrypoint, http://127.0.0.1:<port>.
	URL string
	// APIURL is the internal entrypoint serving /ping and /api.
	APIURL string
	// Upstream is the URL of the service behind the router.
	Upstream string
	// Dir is Traefik's working directory (plugins-local, configs, log).
	Dir string

	cmd     *exec.Cmd
	logPath string
	stdout  *syncbuf.Buffer
	waitErr chan error
	// failureLogLines, when positive, is how much of the log a failed
	// test shows (SetFailureLogLines).
	failureLogLines int
}

// BinaryPath returns where the harness expects the Traefik binary:
// $AUTHKIT_TRAEFIK_BIN, else <repo>/.cache/bin/traefik-v3.6.12 as written by
// harness/build-traefik.sh.
func BinaryPath() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	root, err := loader.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "bin", "traefik-"+Version), nil
}

// RequireBinary returns the Traefik binary's path. When it is missing the
// test is skipped with the reason, unless RequireEnv is set, in which case
// it fails: a skipped end-to-end test must never look like a pass in CI.
func RequireBinary(t testing.TB) string {
	t.Helper()
	bin, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("Traefik %s binary not found at %s (run harness/build-traefik.sh)", Version, bin)
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s and %s is set", msg, RequireEnv)
		}
		t.Skipf("%s; set %s=1 to make this a failure", msg, RequireEnv)
	}
	return bin
}

// Start copies the plugin into a fresh working directory, writes the static
// and dynamic configuration, starts Traefik and waits until the router
// answers; any failure fails the test. Traefik is stopped, and its log
// shown if the test failed, when the test ends.
func Start(t testing.TB, opts Options) *Traefik {
	t.Helper()
	tr, err := Launch(t, opts)
	if err != nil {
		t.Fatalf("traefik not ready: %v", err)
	}
	return tr
}

// Launch is Start for tests that expect Traefik not to become ready (the
// plugin's New rejecting a configuration): it returns the readiness error
// instead of failing. Setup problems still fail the test.
func Launch(t testing.TB, opts Options) (*Traefik, error) {
	t.Helper()
	bin := RequireBinary(t)
	if opts.PluginDir == "" {
		root, err := loader.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		opts.PluginDir = root
	}
	if opts.Upstream == "" {
		opts.Upstream = NewEchoUpstream(t).URL
	}
	if opts.ReadyPath == "" {
		opts.ReadyPath = "/"
	}

	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(loader.ModuleName))
	if err := loader.CopyPlugin(opts.PluginDir, pluginDir); err != nil {
		t.Fatalf("copy plugin: %v", err)
	}
	if opts.Manifest != nil {
		if err := os.WriteFile(filepath.Join(pluginDir, loader.ManifestFile), opts.Manifest, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if opts.DynamicFile != "" {
		data, err := os.ReadFile(opts.DynamicFile)
		if err != nil {
			t.Fatalf("dynamic configuration: %v", err)
		}
		writeFile(t, filepath.Join(dir, "conf", "dynamic.yml"), data)
	} else {
		writeYAML(t, filepath.Join(dir, "conf", "dynamic.yml"), DynamicConfig(opts.Upstream, opts.PluginConfig))
	}
	// Another process can take a port between freePort and Traefik's
	// bind; such a start is retried on other ports.
	for attempt := 1; ; attempt++ {
		webPort, apiPort := opts.WebPort, pickPort(t)
		if webPort == "" {
			webPort = pickPort(t)
		}
		tr, err := launchOnce(t, bin, dir, opts, webPort, apiPort)
		if err == nil || attempt == 3 || !strings.Contains(tr.Log(), "address already in use") {
			return tr, err
		}
		t.Logf("Traefik lost a port to another process (%v); starting it again", err)
	}
}

// launchOnce starts Traefik on the given ports and waits until it is ready.
func launchOnce(t testing.TB, bin, dir string, opts Options, webPort, apiPort string) (*Traefik, error) {
	t.Helper()
	tr := &Traefik{
		URL:      "http://127.0.0.1:" + webPort,
		APIURL:   "http://127.0.0.1:" + apiPort,
		Upstream: opts.Upstream,
		Dir:      dir,
		logPath:  filepath.Join(dir, "traefik.log"),
		stdout:   &syncbuf.Buffer{},
		waitErr:  make(chan error, 1),
	}
	os.Remove(tr.logPath) // a retry reads only its own log
	writeYAML(t, filepath.Join(dir, "traefik.yml"), staticConfig(webPort, apiPort))

	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir // plugins-local is resolved against the working directory
	cmd.Env = append(hermeticEnv(), opts.Env...)
	cmd.Stdout = tr.stdout
	cmd.Stderr = tr.stdout
	// Own process group, so cleanup can kill Traefik and anything it
	// spawned; and die with the test binary if that is killed first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start traefik: %v", err)
	}
	tr.cmd = cmd
	go func() { tr.waitErr <- cmd.Wait() }()

	t.Cleanup(func() {
		tr.stop()
		if t.Failed() {
			t.Logf("Traefik log (%s):\n%s", tr.logPath, tr.failureLog())
		}
	})

	return tr, tr.waitReady(opts.ReadyPath, !opts.NoRouterWait)
}

// hermeticEnv is the test process's environment without the variables the
// plugin falls back to, so a developer's own WORKOS_* settings can never
// change what a test sees.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WORKOS_") || strings.HasPrefix(kv, "NEXT_PUBLIC_WORKOS_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// staticConfig is Traefik's static configuration: the local plugin, two
// loopback entrypoints, the file provider watching conf/dynamic.yml, DEBUG logs
// to a file (plugin fmt.Print output appears there) and ping/API for
// readiness and diagnosis.
func staticConfig(webPort, apiPort string) map[string]any {
	return map[string]any{
		"global": map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
		"log":    map[string]any{"level": "DEBUG", "filePath": "traefik.log", "noColor": true},
		"entryPoints": map[string]any{
			"web":     map[string]any{"address": "127.0.0.1:" + webPort},
			"traefik": map[string]any{"address": "127.0.0.1:" + apiPort},
		},
		"ping": map[string]any{"entryPoint": "traefik"},
		"api":  map[string]any{"insecure": true, "dashboard": false},
		"providers": map[string]any{
			"file": map[string]any{"filename": filepath.Join("conf", "dynamic.yml"), "watch": true},
		},
		"experimental": map[string]any{
			"localPlugins": map[string]any{
				PluginAlias: map[string]any{"moduleName": loader.ModuleName},
			},
		},
	}
}

// DynamicConfig is the dynamic configuration Start writes: one router for
// every path on the web entrypoint, through the plugin middleware configured
// with pluginConfig, to upstream.
func DynamicConfig(upstream string, pluginConfig map[string]any) map[string]any {
	if pluginConfig == nil {
		pluginConfig = map[string]any{}
	}
	return map[string]any{
		"http": map[string]any{
			"routers": map[string]any{
				RouterName: map[string]any{
					"rule":        "PathPrefix(`/`)",
					"entryPoints": []string{"web"},
					"middlewares": []string{MiddlewareName},
					"service":     "app",
				},
			},
			"middlewares": map[string]any{
				MiddlewareName: map[string]any{"plugin": map[string]any{PluginAlias: pluginConfig}},
			},
			"services": map[string]any{
				"app": map[string]any{
					"loadBalancer": map[string]any{
						"servers": []any{map[string]any{"url": upstream}},
					},
				},
			},
		},
	}
}

// WriteDynamic replaces the dynamic configuration file. Traefik watches it,
// so a running instance reloads (and calls the plugin's New again).
func (tr *Traefik) WriteDynamic(t testing.TB, cfg map[string]any) {
	t.Helper()
	writeYAML(t, filepath.Join(tr.Dir, "conf", "dynamic.yml"), cfg)
}

// Log returns Traefik's log so far (its log file, then anything it wrote to
// stdout/stderr before the log file was opened).
func (tr *Traefik) Log() string {
	data, _ := os.ReadFile(tr.logPath)
	out := string(data)
	if tr.stdout.Len() > 0 {
		out += "\n--- stdout/stderr ---\n" + tr.stdout.String()
	}
	return out
}

// SetFailureLogLines makes a failed test show only the last n lines of
// this instance's log (the plugin's output comes last) instead of all of
// it: for tests that drive a long load through several instances, whose
// DEBUG logs would bury their own report.
func (tr *Traefik) SetFailureLogLines(n int) { tr.failureLogLines = n }

// failureLog is the log as a failed test shows it.
func (tr *Traefik) failureLog() string {
	log := tr.Log()
	if tr.failureLogLines <= 0 {
		return log
	}
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) <= tr.failureLogLines {
		return log
	}
	kept := lines[len(lines)-tr.failureLogLines:]
	return fmt.Sprintf("… %d earlier lines left out …\n%s", len(lines)-len(kept), strings.Join(kept, "\n"))
}

// WaitLog waits until Traefik's log contains substr, for up to timeout, and
// reports whether it did.
func (tr *Traefik) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(tr.Log(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client returns an HTTP client that does not follow redirects, so tests
// see the plugin's own 3xx answers.
func (tr *Traefik) Client() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// waitReady polls until Traefik is up (ping) and, if router is set, the
// router serves path. A 404 with Traefik's own body means the router (or its
// middleware) is not there yet, or never will be if the plugin failed.
func (tr *Traefik) waitReady(path string, router bool) error {
	client := tr.Client()
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(readyTimeout)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		select {
		case err := <-tr.waitErr:
			tr.waitErr <- err
			return fmt.Errorf("traefik exited early: %v", err)
		default:
		}
		var ready bool
		ready, last = tr.probe(client, path, router)
		if ready {
			return nil
		}
		if strings.HasPrefix(last, "router ") {
			return errors.New(last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %s; routers: %s", readyTimeout, last, tr.apiDump("/api/http/routers"))
}

// probe makes one readiness check and says what it saw.
func (tr *Traefik) probe(client *http.Client, path string, router bool) (bool, string) {
	resp, err := client.Get(tr.APIURL + "/ping")
	if err != nil {
		return false, "ping: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, "ping: " + resp.Status
	}
	if !router {
		return true, ""
	}
	resp, err = client.Get(tr.URL + path)
	if err != nil {
		return false, "entrypoint: " + err.Error()
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && string(body) == "404 page not found\n" {
		// A router whose middleware failed to build (New returned an
		// error) never comes up: report its error at once.
		if errs, err := tr.RouterErrors(RouterName); err == nil && len(errs) > 0 {
			return false, "router " + RouterName + ": " + strings.Join(errs, "; ")
		}
		return false, "entrypoint: Traefik's 404 (router not ready)"
	}
	return true, ""
}

// RouterErrors returns the errors Traefik's API reports for a router of the
// file provider, such as the plugin's New rejecting its configuration.
func (tr *Traefik) RouterErrors(router string) ([]string, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(tr.APIURL + "/api/http/routers/" + router + "@file")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("router %s: %s", router, resp.Status)
	}
	var info struct {
		Error []string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	return info.Error, nil
}

// apiDump fetches an API endpoint for failure messages; the router status
// there names the middleware error when the plugin failed to build.
func (tr *Traefik) apiDump(path string) string {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(tr.APIURL + path)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8192))
	return string(body)
}

// stop sends SIGTERM to Traefik's process group, then SIGKILL if it has
// not exited within five seconds.
func (tr *Traefik) stop() {
	if tr.cmd == nil || tr.cmd.Process == nil {
		return
	}
	pgid := -tr.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case err := <-tr.waitErr:
		tr.waitErr <- err
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		err := <-tr.waitErr
		tr.waitErr <- err
	}
}

// pickPort chooses Traefik's ports; a test replaces it to lose the race
// below on purpose.
var pickPort = freePort

// FreePort asks the kernel for a free loopback port. Another process could
// take it before it is bound; Launch then starts Traefik again.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func freePort(t testing.TB) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func writeYAML(t testing.TB, path string, v any) {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, data)
}

// writeFile writes data to path, creating its directory.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	// Write then rename, so Traefik's file watcher never reads half a file.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// DecodeEcho reads an echo upstream's JSON answer.
func DecodeEcho(r io.Reader) (Echo, error) {
	var e Echo
	data, err := io.ReadAll(r)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(data, &e); err != nil {
		if len(data) > 300 {
			data = append(data[:300], "…"...)
		}
		return e, fmt.Errorf("not an echo answer (%w): %s", err, data)
	}
	return e, nil
}
