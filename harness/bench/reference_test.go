package bench

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/traefik-authkit/authkit/harness/loader"
)

// loadReference loads the benchmark's reference plugin (bench/noop) the way
// Traefik loads a local plugin.
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

func TestDoNothingPluginCallsNext(t *testing.T) {
	called := false
	h := loadReference(t, "noop", "github.com/traefik-authkit/noop", map[string]any{},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://app.test/", nil))
	if !called {
		t.Error("the next handler was not called")
	}
}
