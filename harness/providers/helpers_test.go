package providers

import (
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/mitchellh/mapstructure"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/loader"
)

// TestMain removes the temporary GOPATH copies of the cached interpreter.
func TestMain(m *testing.M) {
	code := m.Run()
	loader.CleanupCached()
	os.Exit(code)
}

// The middleware and plugin names every test uses; they match the examples.
const (
	middlewareName = "authkit"
	pluginName     = "authkit"
)

// repoRoot is the plugin checkout that the loader copies into its GOPATH.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// cachedPlugin is the interpreter shared by tests that only decode or that
// pass every required setting in the configuration, so the environment
// captured at its import does not matter to them.
func cachedPlugin(t *testing.T) *loader.Plugin {
	t.Helper()
	p, err := loader.Cached(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pluginWithEnv imports the plugin into a fresh interpreter after setting
// env. Traefik gives the interpreter its environment once, at import
// (interp.Options.Env), and the loader does the same with os.Environ() in
// Open; the env-fallback keys can only be tested with an interpreter
// created after the variables are set.
func pluginWithEnv(t *testing.T, env map[string]string) *loader.Plugin {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	p, err := loader.Open(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(p.GoPath) })
	return p
}

// decodeCompiled decodes config over the compiled plugin's defaults with the
// options Traefik's yaegi middleware builder uses (pkg/plugins/
// middlewareyaegi.go), so compiled unit tests can be trusted to see the
// same Config production sees.
func decodeCompiled(config map[string]any) (*authkit.Config, error) {
	cfg := authkit.CreateConfig()
	if len(config) == 0 {
		return cfg, nil
	}
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
	return cfg, nil
}

// decodeInterpreted decodes config into the interpreter's Config and copies
// it into a compiled authkit.Config, so that results from both builds and
// all providers can be compared with one equality and one diff.
func decodeInterpreted(p *loader.Plugin, config map[string]any) (*authkit.Config, error) {
	v, err := p.DecodeConfig(config)
	if err != nil {
		return nil, err
	}
	out := &authkit.Config{}
	if err := copyByName(reflect.ValueOf(out).Elem(), reflect.ValueOf(v), "Config"); err != nil {
		return nil, err
	}
	return out, nil
}

// copyByName copies src (an interpreter value, whose struct types Yaegi
// builds at run time and are therefore not the compiled types) into dst
// field by field. A field present on one side only is an error: the two
// builds of Config must have the same shape.
func copyByName(dst, src reflect.Value, path string) error {
	for src.Kind() == reflect.Pointer || src.Kind() == reflect.Interface {
		if src.IsNil() {
			return nil
		}
		src = src.Elem()
	}
	if dst.Kind() != reflect.Struct {
		if !src.Type().ConvertibleTo(dst.Type()) {
			return fmt.Errorf("%s: interpreted %s does not fit compiled %s", path, src.Type(), dst.Type())
		}
		dst.Set(src.Convert(dst.Type()))
		return nil
	}
	if src.Kind() != reflect.Struct {
		return fmt.Errorf("%s: interpreted %s is not a struct", path, src.Kind())
	}
	for i := 0; i < src.NumField(); i++ {
		if f := src.Type().Field(i); f.IsExported() {
			if _, ok := dst.Type().FieldByName(f.Name); !ok {
				return fmt.Errorf("%s.%s: only in the interpreted Config", path, f.Name)
			}
		}
	}
	for i := 0; i < dst.NumField(); i++ {
		f := dst.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		other := src.FieldByName(f.Name)
		if !other.IsValid() {
			return fmt.Errorf("%s.%s: missing in the interpreted Config", path, f.Name)
		}
		if err := copyByName(dst.Field(i), other, path+"."+f.Name); err != nil {
			return err
		}
	}
	return nil
}

// withDefaults returns CreateConfig's defaults changed by set, the Config a
// test expects after decoding.
func withDefaults(set func(*authkit.Config)) *authkit.Config {
	c := authkit.CreateConfig()
	if set != nil {
		set(c)
	}
	return c
}
