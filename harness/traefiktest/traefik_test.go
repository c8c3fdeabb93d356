package traefiktest

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/traefik-authkit/authkit/harness/loader"
)

// testData returns the manifest's testData, the configuration the Plugin
// Catalog itself uses, so the smoke test runs what users first run.
func testData(t *testing.T) map[string]any {
	t.Helper()
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m, err := loader.RepoManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	return m.TestData
}

// TestTraefikServesThroughPlugin starts the real Traefik with the plugin on
// its router, configured with the manifest's testData, and checks that
// requests pass through it to the upstream.
func TestTraefikServesThroughPlugin(t *testing.T) {
	tr := Start(t, Options{PluginConfig: testData(t)})

	if log := tr.Log(); !strings.Contains(log, "Plugins loaded.") || strings.Contains(log, "Plugins are disabled") {
		t.Fatalf("Traefik did not load the plugin cleanly")
	}

	tests := []struct {
		name   string
		method string
		path   string
		accept string
	}{
		{name: "GET api request", method: http.MethodGet, path: "/api/items?x=1", accept: "application/json"},
		{name: "POST api request", method: http.MethodPost, path: "/api/items", accept: "application/json"},
		{name: "HEAD request", method: http.MethodHead, path: "/", accept: "*/*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tr.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", tt.accept)
			resp, err := tr.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()

			// With testData (middlewareAuth off, no requirements) every
			// request reaches the upstream, before and after auth lands.
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Echo-Upstream") != "1" {
				t.Fatalf("status %d, X-Echo-Upstream %q: the request did not reach the upstream",
					resp.StatusCode, resp.Header.Get("X-Echo-Upstream"))
			}
			if tt.method == http.MethodHead {
				return
			}
			echo, err := DecodeEcho(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := url.Parse(tt.path)
			if echo.Method != tt.method || echo.Path != want.Path || echo.Query != want.RawQuery {
				t.Errorf("upstream saw %s %s?%s, want %s %s", echo.Method, echo.Path, echo.Query, tt.method, tt.path)
			}

			// AUTH ASSERTIONS GO HERE once the plugin does auth: the upstream
			// must see x-workos-middleware: true, x-url, x-redirect-uri and
			// no client-supplied x-workos-* headers (SPEC.md, "What the
			// upstream receives").
		})
	}
}

// TestTraefikRejectsBadManifest gives the real Traefik broken manifests and
// checks that it disables plugins with exactly the error the loader package
// produces, which keeps the loader's mirror of Traefik's checks honest.
func TestTraefikRejectsBadManifest(t *testing.T) {
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(m map[string]any)
	}{
		{name: "wrong type", mutate: func(m map[string]any) { m["type"] = "plugin" }},
		{name: "import outside the module", mutate: func(m map[string]any) { m["import"] = "github.com/other/authkit" }},
		{name: "missing testData", mutate: func(m map[string]any) { delete(m, "testData") }},
		{name: "several problems at once", mutate: func(m map[string]any) {
			delete(m, "displayName")
			m["summary"] = ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			manifest, err := loader.EditedManifest(root, tt.mutate)
			if err != nil {
				t.Fatal(err)
			}
			var parsed loader.Manifest
			if err := yaml.Unmarshal(manifest, &parsed); err != nil {
				t.Fatal(err)
			}
			want := loader.CheckManifest(&parsed, loader.ModuleName)
			if want == nil {
				t.Fatal("the loader accepts this manifest")
			}

			tr := Start(t, Options{PluginConfig: testData(t), Manifest: manifest, NoRouterWait: true})
			if !tr.WaitLog("Plugins are disabled because an error has occurred.", 10*time.Second) {
				t.Fatal("Traefik did not disable plugins")
			}
			// The console log escapes quotes and newlines (joined errors)
			// inside the error field.
			escaped := strings.NewReplacer(`"`, `\"`, "\n", `\n`).Replace(want.Error())
			if log := tr.Log(); !strings.Contains(log, want.Error()) && !strings.Contains(log, escaped) {
				t.Errorf("Traefik's log lacks the loader's error %q", want)
			}
		})
	}
}

// TestLaunchReportsNewError runs a minimal plugin whose New always fails
// and checks that Launch returns Traefik's router error quickly instead of
// timing out: a test that feeds the real plugin an invalid configuration
// relies on this to see the message New gave.
func TestLaunchReportsNewError(t *testing.T) {
	start := time.Now()
	// The plugin whose New always fails, shared with the loader's tests.
	_, err := Launch(t, Options{PluginDir: "../testdata/failing-plugin", PluginConfig: map[string]any{"clientId": "x"}})
	if err == nil || !strings.Contains(err.Error(), "clientId: x rejected") {
		t.Fatalf("Launch error %v, want the router error from New", err)
	}
	if d := time.Since(start); d > readyTimeout/2 {
		t.Errorf("took %s: the router error was not reported early", d)
	}
}

// TestLaunchRetriesALostPort gives Traefik a web port another process
// holds, as when a port freePort chose is taken before Traefik binds it:
// Launch starts Traefik again on other ports.
func TestLaunchRetriesALostPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	picks := 0
	pickPort = func(t testing.TB) string {
		picks++
		if picks == 2 { // the first start's web port
			return port
		}
		return freePort(t)
	}
	t.Cleanup(func() { pickPort = freePort })

	tr := Start(t, Options{PluginConfig: testData(t)})
	if strings.HasSuffix(tr.URL, ":"+port) || picks != 4 {
		t.Fatalf("Traefik at %s after %d port picks; want a second start on other ports", tr.URL, picks)
	}
}
