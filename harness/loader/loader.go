// Package loader loads the plugin the way Traefik v3.6.12 loads a local
// plugin: the same manifest checks, the same GOPATH layout, one Yaegi
// interpreter per plugin, the same mapstructure options for the dynamic
// configuration and the same reflective calls to CreateConfig and New.
//
// Compiled `go test` and even `yaegi test` miss what only this path exercises
// (manifest, basePkg, config decoding of provider-shaped maps, New run by the
// interpreter), so other harness tests build their middleware through here.
package loader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik-authkit/authkit/harness/syncbuf"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// ModuleName is the plugin's Go module, which is also the path under
// plugins-local/src where Traefik expects its source.
const ModuleName = "github.com/traefik-authkit/authkit"

// Constructor wraps next in one middleware instance; it is the shape of
// Traefik's plugins.Constructor, called once per router that uses the
// middleware and again on every configuration reload.
type Constructor func(ctx context.Context, next http.Handler) (http.Handler, error)

// Plugin is a plugin whose package has been imported into its own
// interpreter. As in Traefik, every middleware built from one Plugin shares
// that interpreter and therefore the plugin's package-level variables.
type Plugin struct {
	// GoPath is the GOPATH the interpreter resolves the plugin import in.
	GoPath string
	// Manifest is the plugin's parsed .traefik.yml.
	Manifest *Manifest

	interp         *interp.Interpreter
	fnNew          reflect.Value
	fnCreateConfig reflect.Value
	out            *syncbuf.Buffer
}

// OpenGoPath reads, checks and imports the plugin found at
// <goPath>/src/<moduleName>, returning the error Traefik would log.
func OpenGoPath(goPath, moduleName string) (*Plugin, error) {
	m, err := ReadManifest(goPath, moduleName)
	if err != nil {
		return nil, err
	}
	if err := CheckManifest(m, moduleName); err != nil {
		return nil, err
	}
	if m.Type != "middleware" {
		return nil, fmt.Errorf("%s: this harness loads middleware plugins only, not %q", moduleName, m.Type)
	}
	if !m.isYaegi() {
		return nil, fmt.Errorf("%s: this harness loads yaegi plugins only, not %q", moduleName, m.Runtime)
	}

	p := &Plugin{GoPath: goPath, Manifest: m, out: &syncbuf.Buffer{}}
	if err := p.newInterpreter(); err != nil {
		return nil, fmt.Errorf("failed to create Yaegi interpreter: %w", err)
	}
	if err := p.lookupEntryPoints(); err != nil {
		return nil, err
	}
	return p, nil
}

// newInterpreter mirrors Traefik's newInterpreter with default plugin
// settings (useUnsafe off). Traefik also registers a symbol table for
// provider plugins; a middleware never imports it, so it is left out.
func (p *Plugin) newInterpreter() (err error) {
	// Yaegi reports most problems as errors but some as panics; a panic
	// here would kill the whole test binary instead of failing one test.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("interpreter panic: %v\n%s", r, debug.Stack())
		}
	}()

	i := interp.New(interp.Options{
		GoPath: p.GoPath,
		Env:    os.Environ(),
		// Traefik sends these to its logger at DEBUG and ERROR level.
		Stdout: prefixWriter{"DBG ", p.out},
		Stderr: prefixWriter{"ERR ", p.out},
	})
	if err := i.Use(stdlib.Symbols); err != nil {
		return fmt.Errorf("failed to load symbols: %w", err)
	}
	if p.Manifest.UseUnsafe {
		return errors.New("this plugin uses restricted imports. If you want to use it, you need to allow useUnsafe in the settings")
	}
	if _, err := i.Eval(fmt.Sprintf("import %q", p.Manifest.Import)); err != nil {
		return fmt.Errorf("failed to import plugin code %q: %w", p.Manifest.Import, err)
	}
	p.interp = i
	return nil
}

// lookupEntryPoints resolves <basePkg>.New and <basePkg>.CreateConfig; the
// default basePkg is the last import element with '-' turned into '_',
// which is why the package must be named after the repository.
func (p *Plugin) lookupEntryPoints() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("interpreter panic: %v", r)
		}
	}()

	basePkg := p.Manifest.BasePkg
	if basePkg == "" {
		basePkg = strings.ReplaceAll(path.Base(p.Manifest.Import), "-", "_")
	}
	if p.fnNew, err = p.interp.Eval(basePkg + ".New"); err != nil {
		return fmt.Errorf("failed to eval New: %w", err)
	}
	if p.fnCreateConfig, err = p.interp.Eval(basePkg + ".CreateConfig"); err != nil {
		return fmt.Errorf("failed to eval CreateConfig: %w", err)
	}
	return nil
}

// Output returns what the plugin printed so far (fmt.Print* as "DBG ",
// log.Print* as "ERR " lines), the text Traefik would put in its log.
func (p *Plugin) Output() string { return p.out.String() }

// DecodeConfig calls CreateConfig and decodes config over the defaults with
// Traefik's options: weakly typed input (file-provider strings become bools
// and numbers), comma-separated strings split into slices, and no decoding
// at all for an empty map. It returns the plugin's *Config as an interface;
// read fields with reflect.
func (p *Plugin) DecodeConfig(config map[string]any) (cfg any, err error) {
	v, err := p.createConfig(config)
	if err != nil {
		return nil, err
	}
	return v.Interface(), nil
}

func (p *Plugin) createConfig(config map[string]any) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in CreateConfig or decoding: %v", r)
		}
	}()

	results := p.fnCreateConfig.Call(nil)
	if len(results) != 1 {
		return reflect.Value{}, fmt.Errorf("invalid number of return for the CreateConfig function: %d", len(results))
	}
	v = results[0]
	if len(config) == 0 {
		return v, nil
	}

	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           v.Interface(),
	})
	if err != nil {
		return reflect.Value{}, fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := dec.Decode(config); err != nil {
		return reflect.Value{}, fmt.Errorf("failed to decode configuration: %w", err)
	}
	return v, nil
}

// Build decodes config once and returns a Constructor that calls New with
// (ctx, next, config, name), as Traefik does for one middleware definition:
// every router using it gets its own New call on the same config pointer.
func (p *Plugin) Build(config map[string]any, name string) (Constructor, error) {
	cfg, err := p.createConfig(config)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, next http.Handler) (http.Handler, error) {
		return p.callNew(ctx, next, cfg, name)
	}, nil
}

// callNew invokes the interpreted New and checks its results the way
// Traefik does. A panic becomes an error with the stack, so one broken
// configuration fails its test instead of the whole run.
func (p *Plugin) callNew(ctx context.Context, next http.Handler, cfg reflect.Value, name string) (h http.Handler, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in New: %v\n%s", r, debug.Stack())
		}
	}()

	results := p.fnNew.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), cfg, reflect.ValueOf(name)})
	if len(results) > 1 && results[1].Interface() != nil {
		e, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", results[0].Interface())
		}
		return nil, e
	}
	h, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}
	return h, nil
}

// New builds one middleware instance in front of next: Build plus one
// constructor call, with a background context.
func (p *Plugin) New(config map[string]any, name string, next http.Handler) (http.Handler, error) {
	c, err := p.Build(config, name)
	if err != nil {
		return nil, err
	}
	return c(context.Background(), next)
}

// Open copies repoDir into a fresh temporary GOPATH (see CopyPlugin) and
// loads it from there. As in Traefik, the interpreter gets the process
// environment as it is now: set env-fallback variables (t.Setenv) before
// Open, and use Open rather than the shared Cached for such tests. The caller removes the returned Plugin's GoPath when
// done, or uses Load, which caches.
func Open(repoDir string) (*Plugin, error) {
	goPath, err := os.MkdirTemp("", "authkit-gopath-")
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(goPath, "src", filepath.FromSlash(ModuleName))
	if err := CopyPlugin(repoDir, dst); err != nil {
		os.RemoveAll(goPath)
		return nil, err
	}
	p, err := OpenGoPath(goPath, ModuleName)
	if err != nil {
		os.RemoveAll(goPath)
		return nil, err
	}
	return p, nil
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Plugin{}
)

// Load returns a Constructor for one middleware definition with config
// (shaped as a provider delivers it: YAML/file strings, Docker label
// strings, CRD float64/bool/[]any). The plugin is imported once per repoDir
// and process, as Traefik imports it once per start, so package-level state
// is shared between the constructors Load returns, exactly as in Traefik.
func Load(repoDir string, config map[string]any) (Constructor, error) {
	p, err := Cached(repoDir)
	if err != nil {
		return nil, err
	}
	return p.Build(config, "authkit-test")
}

// Cached returns the process-wide Plugin for repoDir, importing it on first
// use. Importing costs the interpreter a noticeable time per load, so tests
// that only vary the configuration share one.
func Cached(repoDir string) (*Plugin, error) {
	abs, err := filepath.Abs(repoDir)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if p, ok := cache[abs]; ok {
		return p, nil
	}
	p, err := Open(abs)
	if err != nil {
		return nil, err
	}
	cache[abs] = p
	return p, nil
}

// CleanupCached forgets the cached plugins and removes their temporary
// GOPATH copies. Call it from TestMain after m.Run in packages that use Load
// or Cached, so test runs leave nothing behind in the temp directory.
func CleanupCached() {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	for dir, p := range cache {
		os.RemoveAll(p.GoPath)
		delete(cache, dir)
	}
}

// prefixWriter tags each write with the level Traefik would log it at.
type prefixWriter struct {
	prefix string
	w      *syncbuf.Buffer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
