package loader

import (
	"reflect"
	"testing"

	"github.com/mitchellh/mapstructure"

	"github.com/traefik-authkit/authkit"
)

// TestCompiledAndInterpretedConfigAgree decodes the same provider-shaped
// maps into the compiled Config and into the interpreter's Config and
// compares every exported field: compiled unit tests only say something
// about production if both builds see the same configuration.
func TestCompiledAndInterpretedConfigAgree(t *testing.T) {
	p, err := Cached(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		config map[string]any
	}{
		{name: "defaults", config: map[string]any{}},
		{name: "manifest testData", config: p.Manifest.TestData},
		{name: "file provider strings", config: map[string]any{
			"debug": "true", "signUpPaths": "/join,/register",
			"middlewareAuth": map[string]any{"enabled": "true", "unauthenticatedPaths": "/,/about"},
		}},
		{name: "kubernetes CRD types", config: map[string]any{
			"eagerAuth": true, "requiredRoles": []any{"admin", "owner"},
			"cookiePasswords": map[string]any{"2": "a-rotated-password-that-is-long-enough"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compiled := authkit.CreateConfig()
			if len(tt.config) > 0 {
				dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
					DecodeHook:       mapstructure.StringToSliceHookFunc(","),
					WeaklyTypedInput: true,
					Result:           compiled,
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := dec.Decode(tt.config); err != nil {
					t.Fatalf("compiled decode: %v", err)
				}
			}
			interpreted, err := p.DecodeConfig(tt.config)
			if err != nil {
				t.Fatalf("interpreted decode: %v", err)
			}
			compareExported(t, "Config", reflect.ValueOf(compiled), reflect.ValueOf(interpreted))
		})
	}
}

// compareExported walks the compiled value and reports every exported field
// whose interpreted counterpart is missing or different. Struct types differ
// between the two worlds (the interpreter makes its own), so structs are
// compared field by field and everything else by value.
func compareExported(t *testing.T, path string, compiled, interpreted reflect.Value) {
	t.Helper()
	for compiled.Kind() == reflect.Pointer || compiled.Kind() == reflect.Interface {
		compiled = compiled.Elem()
	}
	for interpreted.Kind() == reflect.Pointer || interpreted.Kind() == reflect.Interface {
		interpreted = interpreted.Elem()
	}
	if !compiled.IsValid() { // a nil pointer or interface
		if interpreted.IsValid() {
			t.Errorf("%s: compiled nil, interpreted %#v", path, interpreted.Interface())
		}
		return
	}
	if compiled.Kind() != reflect.Struct {
		if !interpreted.IsValid() || !reflect.DeepEqual(compiled.Interface(), interpreted.Interface()) {
			t.Errorf("%s: compiled %#v, interpreted %#v", path, compiled.Interface(), valueOrNil(interpreted))
		}
		return
	}
	if interpreted.Kind() != reflect.Struct {
		t.Errorf("%s: interpreted value is %s, not a struct", path, interpreted.Kind())
		return
	}
	for i := 0; i < compiled.NumField(); i++ {
		f := compiled.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		other := interpreted.FieldByName(f.Name)
		if !other.IsValid() {
			t.Errorf("%s.%s: missing in the interpreted Config", path, f.Name)
			continue
		}
		compareExported(t, path+"."+f.Name, compiled.Field(i), other)
	}
}

func valueOrNil(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}
