package loader

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestMain removes the cached plugin's temporary GOPATH after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	CleanupCached()
	os.Exit(code)
}

// repoRoot locates the plugin repository or stops the test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestLoadTestDataServes loads the repository exactly as Traefik loads a
// local plugin, builds a middleware from the manifest's testData (which must
// work offline, as the Plugin Catalog requires) and serves one request.
func TestLoadTestDataServes(t *testing.T) {
	p, err := Cached(repoRoot(t))
	if err != nil {
		t.Fatalf("load plugin: %v", err)
	}

	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "upstream body")
	})
	h, err := p.New(p.Manifest.TestData, "authkit-testdata", upstream)
	if err != nil {
		t.Fatalf("New with testData: %v\nplugin output:\n%s", err, p.Output())
	}

	// A public, non-document request: with testData (middlewareAuth off,
	// no requirements) it must reach the upstream now and after auth lands.
	req := httptest.NewRequest(http.MethodGet, "http://localhost/public", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusOK || rec.Header().Get("X-Upstream") != "yes" || rec.Body.String() != "upstream body" {
		t.Fatalf("request did not reach the upstream: status %d, headers %v, body %q\nplugin output:\n%s",
			rec.Code, rec.Header(), rec.Body.String(), p.Output())
	}
}

// TestLoadFactory checks the Load entry point other packages use: two
// constructors from one repoDir share one interpreter (as in Traefik) and
// each yields a working handler.
func TestLoadFactory(t *testing.T) {
	root := repoRoot(t)
	p, err := Cached(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"first", "second"} {
		c, err := Load(root, p.Manifest.TestData)
		if err != nil {
			t.Fatalf("%s: Load: %v", name, err)
		}
		h, err := c(t.Context(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}))
		if err != nil {
			t.Fatalf("%s: constructor: %v", name, err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://localhost/", nil))
		if rec.Code != http.StatusTeapot {
			t.Fatalf("%s: status %d, want the upstream's %d", name, rec.Code, http.StatusTeapot)
		}
	}
	if again, _ := Cached(root); again != p {
		t.Fatal("Cached imported the plugin twice for one repoDir")
	}
}

// TestConfigDecoding feeds maps shaped like each Traefik provider delivers
// them and checks what the plugin's Config receives, so decoding surprises
// (strings for bools, comma lists, CRD float64s) show up here and not in
// production.
func TestConfigDecoding(t *testing.T) {
	p, err := Cached(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		config map[string]any
		want   map[string]any // dotted key path → expected value
	}{
		{
			name:   "empty map keeps the defaults",
			config: map[string]any{},
			want:   map[string]any{"signInPath": "/auth/sign-in", "signOutPath": "/auth/sign-out"},
		},
		{
			name: "file provider strings",
			config: map[string]any{
				"clientId": "client_1", "debug": "true",
				"middlewareAuth": map[string]any{"enabled": "true"},
			},
			want: map[string]any{"clientId": "client_1", "debug": true, "middlewareAuth.enabled": true, "signInPath": "/auth/sign-in"},
		},
		{
			name:   "docker label comma list",
			config: map[string]any{"signUpPaths": "/join,/register"},
			want:   map[string]any{"signUpPaths": []string{"/join", "/register"}},
		},
		{
			name: "kubernetes CRD native types",
			config: map[string]any{
				"debug":          true,
				"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []any{"/", "/about"}},
			},
			want: map[string]any{"debug": true, "middlewareAuth.enabled": true, "middlewareAuth.unauthenticatedPaths": []string{"/", "/about"}},
		},
		{
			name:   "keys match case-insensitively and unknown keys are ignored",
			config: map[string]any{"CLIENTID": "client_2", "noSuchKey": "x"},
			want:   map[string]any{"clientId": "client_2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := p.DecodeConfig(tt.config)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for key, want := range tt.want {
				got, ok := fieldByKey(reflect.ValueOf(cfg), key)
				if !ok {
					t.Fatalf("Config has no field for key %q", key)
				}
				if !reflect.DeepEqual(got.Interface(), want) {
					t.Errorf("%s = %#v, want %#v", key, got.Interface(), want)
				}
			}
		})
	}
}

// fieldByKey follows a dotted configuration key through the Config struct,
// matching field names case-insensitively as mapstructure does.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	for _, part := range strings.Split(key, ".") {
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f := v.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, part) })
		if !f.IsValid() {
			return reflect.Value{}, false
		}
		v = f
	}
	return v, true
}

// TestManifestErrors breaks the real manifest one way at a time and checks
// that loading fails with the message Traefik v3.6 gives for it, so a
// manifest mistake is caught before a release instead of at a user's start.
func TestManifestErrors(t *testing.T) {
	root := repoRoot(t)

	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   []string
	}{
		{
			name:   "wrong type",
			mutate: func(m map[string]any) { m["type"] = "plugin" },
			want:   []string{ModuleName + `: unsupported type "plugin"`},
		},
		{
			name:   "unsupported runtime",
			mutate: func(m map[string]any) { m["runtime"] = "lua" },
			want:   []string{ModuleName + `: unsupported runtime '"lua"'`},
		},
		{
			name:   "import not prefixed by the module name",
			mutate: func(m map[string]any) { m["import"] = "github.com/someone-else/authkit" },
			want:   []string{`the import "github.com/someone-else/authkit" must be related to the module name "` + ModuleName + `"`},
		},
		{
			name:   "missing import",
			mutate: func(m map[string]any) { delete(m, "import") },
			want:   []string{ModuleName + ": missing import", `the import "" must be related`},
		},
		{
			name:   "missing displayName",
			mutate: func(m map[string]any) { delete(m, "displayName") },
			want:   []string{ModuleName + ": missing DisplayName"},
		},
		{
			name:   "missing summary",
			mutate: func(m map[string]any) { m["summary"] = "" },
			want:   []string{ModuleName + ": missing Summary"},
		},
		{
			name:   "missing testData",
			mutate: func(m map[string]any) { delete(m, "testData") },
			want:   []string{ModuleName + ": missing TestData"},
		},
		{
			name:   "useUnsafe without the static setting",
			mutate: func(m map[string]any) { m["useUnsafe"] = true },
			want:   []string{"failed to create Yaegi interpreter", "restricted imports"},
		},
		{
			name:   "import of a package that does not exist",
			mutate: func(m map[string]any) { m["import"] = ModuleName + "/nosuchpkg" },
			want:   []string{"failed to create Yaegi interpreter", `failed to import plugin code "` + ModuleName + `/nosuchpkg"`},
		},
		{
			name:   "basePkg that is not the package name",
			mutate: func(m map[string]any) { m["basePkg"] = "wrongname" },
			want:   []string{"failed to eval New"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := EditedManifest(root, tt.mutate)
			if err != nil {
				t.Fatal(err)
			}

			goPath := t.TempDir()
			dst := filepath.Join(goPath, "src", filepath.FromSlash(ModuleName))
			if err := CopyPlugin(root, dst); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, ManifestFile), data, 0o644); err != nil {
				t.Fatal(err)
			}

			_, err = OpenGoPath(goPath, ModuleName)
			if err == nil {
				t.Fatalf("loaded despite the broken manifest:\n%s", data)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestManifestIcon checks the icon the Plugin Catalog shows: the
// repository's iconPath names a square PNG in the repository, and
// CheckIcon refuses each way the path can go wrong. Traefik ignores
// iconPath, so only this test notices a broken one.
func TestManifestIcon(t *testing.T) {
	root := repoRoot(t)
	m, err := RepoManifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckIcon(m, root); err != nil {
		t.Fatalf("the repository's icon: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(m.IconPath))); err != nil {
		t.Fatal(err)
	}
	copied := t.TempDir()
	if err := CopyPlugin(root, copied); err != nil {
		t.Fatal(err)
	}
	if err := CheckIcon(m, copied); err != nil {
		t.Errorf("the icon is not in the plugin's copy: %v", err)
	}

	// A repository with a PNG that is not square, and one under a name
	// that is not a PNG.
	other := t.TempDir()
	var wide bytes.Buffer
	if err := png.Encode(&wide, image.NewGray(image.Rect(0, 0, 128, 64))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "wide.png"), wide.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "fake.png"), []byte("GIF89a not a png"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		dir    string // the repository CheckIcon reads; default the real one
		mutate func(m map[string]any)
		want   string
	}{
		{name: "missing iconPath", mutate: func(m map[string]any) { delete(m, "iconPath") }, want: "iconPath: missing"},
		{name: "no such file", mutate: func(m map[string]any) { m["iconPath"] = ".assets/icon-missing.png" },
			want: "no such file"},
		{name: "wrong directory", mutate: func(m map[string]any) { m["iconPath"] = "assets/icon.png" }, want: "no such file"},
		{name: "a file that is not a PNG", mutate: func(m map[string]any) { m["iconPath"] = "go.mod" },
			want: "not a PNG file"},
		{name: "a .png that is not a PNG", dir: other, mutate: func(m map[string]any) { m["iconPath"] = "fake.png" },
			want: "not a PNG file"},
		{name: "not square", dir: other, mutate: func(m map[string]any) { m["iconPath"] = "wide.png" },
			want: "128x64"},
		{name: "absolute path", mutate: func(m map[string]any) { m["iconPath"] = filepath.Join(root, ".assets", "icon.png") },
			want: "not a clean relative path"},
		{name: "outside the repository", mutate: func(m map[string]any) { m["iconPath"] = "../icon.png" },
			want: "not a clean relative path"},
		{name: "not clean", mutate: func(m map[string]any) { m["iconPath"] = "./.assets/icon.png" },
			want: "not a clean relative path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := EditedManifest(root, tt.mutate)
			if err != nil {
				t.Fatal(err)
			}
			var edited Manifest
			if err := yaml.Unmarshal(data, &edited); err != nil {
				t.Fatal(err)
			}
			dir := tt.dir
			if dir == "" {
				dir = root
			}
			err = CheckIcon(&edited, dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckIcon(%q) = %v, want an error containing %q", edited.IconPath, err, tt.want)
			}
			// Traefik loads the plugin all the same.
			if err := CheckManifest(&edited, ModuleName); err != nil {
				t.Errorf("CheckManifest refuses the manifest: %v", err)
			}
		})
	}
}

// TestCopyPluginSkips checks that the GOPATH copy leaves out what is not
// plugin source, above all this harness module, which the interpreter must
// never see.
func TestCopyPluginSkips(t *testing.T) {
	dst := t.TempDir()
	if err := CopyPlugin(repoRoot(t), dst); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".git", ".cache", "harness", "node_modules"} {
		if _, err := os.Stat(filepath.Join(dst, name)); !os.IsNotExist(err) {
			t.Errorf("%s was copied", name)
		}
	}
	for _, name := range []string{ManifestFile, "go.mod"} {
		if _, err := os.Stat(filepath.Join(dst, name)); err != nil {
			t.Errorf("%s missing from the copy: %v", name, err)
		}
	}
}

// failingPlugin is a plugin whose New always fails, shared with traefiktest.
const failingPlugin = "../testdata/failing-plugin"

// TestNewErrorIsReturned checks that an error from the plugin's New comes
// back from the constructor unchanged, as Traefik reports it on the router:
// configuration validation tests depend on seeing that message.
func TestNewErrorIsReturned(t *testing.T) {
	goPath := t.TempDir()
	if err := CopyPlugin(failingPlugin, filepath.Join(goPath, "src", filepath.FromSlash(ModuleName))); err != nil {
		t.Fatal(err)
	}

	p, err := OpenGoPath(goPath, ModuleName)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.New(map[string]any{"clientId": "abc"}, "broken", http.NotFoundHandler())
	if err == nil || err.Error() != "clientId: abc rejected" {
		t.Fatalf("New error %v, want %q", err, "clientId: abc rejected")
	}
}
