package bench

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/traefik-authkit/authkit/harness/loader"
)

// loadReference loads one of the benchmark's reference plugins (bench/noop,
// bench/floor) the way Traefik loads a local plugin.
func loadReference(t testing.TB, dir, module string, config map[string]any, next http.Handler) http.Handler {
	t.Helper()
	goPath := t.TempDir()
	if err := loader.CopyPlugin(dir, filepath.Join(goPath, "src", module)); err != nil {
		t.Fatal(err)
	}
	p, err := loader.OpenGoPath(goPath, module)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.New(config, dir, next)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The floor plugin must do the header work it stands for, or the
// benchmark's floor would be too low.
func TestFloorPluginDoesTheHeaderWork(t *testing.T) {
	var got http.Header
	h := loadReference(t, "floor", "github.com/traefik-authkit/floor", map[string]any{
		"cookieName": "wos-session",
		"headers":    map[string]any{"X-Workos-User-Id": "user_1", "X-Workos-Session": "sealed"},
	}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	r := httptest.NewRequest(http.MethodGet, "http://app.test/page?x=1", nil)
	r.Header.Set("Cookie", "theme=dark; wos-session=sealed; lang=en")
	r.Header.Set("X-Workos-Spoofed", "1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	want := map[string]string{
		"X-Workos-User-Id": "user_1", "X-Workos-Session": "sealed",
		"X-Url": "http://app.test/page?x=1", "X-Workos-Spoofed": "",
	}
	for name, value := range want {
		if got.Get(name) != value {
			t.Errorf("upstream %s = %q, want %q", name, got.Get(name), value)
		}
	}
	if w.Header().Get("Vary") != "Cookie" || w.Header().Get("Cache-Control") == "" {
		t.Errorf("response headers %v", w.Header())
	}
}

func TestDoNothingPluginCallsNext(t *testing.T) {
	called := false
	h := loadReference(t, "noop", "github.com/traefik-authkit/noop", map[string]any{},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://app.test/", nil))
	if !called {
		t.Error("the next handler was not called")
	}
}
