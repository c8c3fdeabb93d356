package main

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

func TestHeaderChanges(t *testing.T) {
	before := http.Header{
		"Accept": {"text/html"}, "Cookie": {"a=1; wos-session=s"}, "X-Spoofed": {"1"}, "X-Kept": {"k"},
	}
	after := http.Header{
		"Accept": {"text/html"}, "Cookie": {"a=1"}, "X-Kept": {"k"},
		"X-Id": {"user_1"}, "X-List": {"a", "b"},
	}
	got, err := headerChanges(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Cookie": "a=1", "X-Spoofed": "", "X-Id": "user_1", "X-List": "a, b"}
	if !maps.Equal(got, want) {
		t.Errorf("headerChanges = %v, want %v", got, want)
	}
	for _, after := range []http.Header{{"X-Empty": {""}}, {"Set-Cookie": {"a=1", "b=2"}}} {
		if _, err := headerChanges(nil, after); err == nil {
			t.Errorf("headerChanges(nil, %v) gave no error: the headers middleware cannot do that", after)
		}
	}
}

// The contract of the compiled plugin with the benchmark's configuration:
// its identity and authkit-nextjs headers with their exact values, a
// deletion for a spoofed X-Workos-* header, and the two cache headers.
func TestCaptureContractOfThePlugin(t *testing.T) {
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: time.Hour})
	api, stop, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cookie, err := sessionCookie(fake)
	if err != nil {
		t.Fatal(err)
	}
	config, err := pluginConfig("default", api, fake)
	if err != nil {
		t.Fatal(err)
	}
	req := benchRequest("127.0.0.1:8080", "/signed/default/x", cookie)
	req.Header.Set("X-Workos-Spoofed", "1")
	c, err := captureContract(compiledPlugin(config), req)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"X-Url": "http://127.0.0.1:8080/signed/default/x", "X-Redirect-Uri": "http://127.0.0.1:8080/callback",
		"X-Workos-Middleware": "true", "X-Workos-User-Id": fakeworkos.UserAlice, "X-Workos-Spoofed": "",
	} {
		if got, ok := c.request[name]; !ok || got != want {
			t.Errorf("request %s = %q (set: %t), want %q", name, got, ok, want)
		}
	}
	if c.request["X-Workos-Session"] == "" {
		t.Error("no X-Workos-Session")
	}
	for _, name := range []string{"Cookie", "Accept", "X-Forwarded-Host"} {
		if _, ok := c.request[name]; ok {
			t.Errorf("request %s is in the contract; the plugin leaves it alone", name)
		}
	}
	if c.response["Cache-Control"] == "" || c.response["Vary"] != "Cookie" || len(c.response) != 2 {
		t.Errorf("response %v", c.response)
	}
	bc := &benchConfig{name: "default", plugin: config, contract: c}
	if h, err := userHeader(bc); err != nil || h != "X-Workos-User-Id" {
		t.Errorf("userHeader = %q, %v", h, err)
	}
}

// Through the real Traefik, the contract's headers middleware makes the
// changes captured from a handler: sets, replaces and deletes request
// headers and sets response headers.
func TestContractThroughTraefik(t *testing.T) {
	binary := traefiktest.RequireBinary(t)
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTraefik(false)
	if err != nil {
		t.Fatal(err)
	}
	build := func(next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("X-Spoofed")
			r.Header.Set("Cookie", "theme=dark")
			r.Header.Set("X-Id", "user_1")
			w.Header().Set("Cache-Control", "no-store")
			next.ServeHTTP(w, r)
		}), nil
	}
	req := benchRequest(tr.host(), "/contract/t/x", "theme=dark; wos-session=abc")
	req.Header.Set("X-Spoofed", "1")
	c, err := captureContract(build, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"X-Spoofed": "", "Cookie": "theme=dark", "X-Id": "user_1"}; !maps.Equal(c.request, want) {
		t.Fatalf("contract request %v, want %v", c.request, want)
	}

	var seen http.Header
	up, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	if err != nil {
		t.Fatal(err)
	}
	dynamic := dynamicConfig(up, nil)
	routes := dynamic["http"].(map[string]any)
	routes["routers"].(map[string]any)["contract"] = map[string]any{
		"rule": "PathPrefix(`/contract/`)", "service": "app", "middlewares": []string{"contract"},
	}
	routes["middlewares"].(map[string]any)["contract"] = map[string]any{"headers": map[string]any{
		"customRequestHeaders": c.request, "customResponseHeaders": c.response,
	}}
	if err := tr.start(binary, root, dynamic); err != nil {
		t.Fatal(err)
	}
	defer tr.stop()

	r, _ := http.NewRequest(http.MethodGet, tr.url+"/contract/t/x", nil)
	r.Header.Set("Cookie", "theme=dark; wos-session=abc")
	r.Header.Set("X-Spoofed", "1")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("response Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if _, ok := seen["X-Spoofed"]; ok || seen.Get("Cookie") != "theme=dark" || seen.Get("X-Id") != "user_1" {
		t.Errorf("the upstream received %v", seen)
	}
}

// Unknown configuration names are refused before anything starts.
func TestPluginConfigNames(t *testing.T) {
	fake := fakeworkos.New(fakeworkos.Options{})
	for _, name := range configNames {
		if _, err := pluginConfig(name, "http://127.0.0.1:1", fake); err != nil {
			t.Error(err)
		}
	}
	if _, err := pluginConfig("fast", "http://127.0.0.1:1", fake); err == nil {
		t.Error("an unknown configuration was accepted")
	}
}
