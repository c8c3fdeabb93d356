package authkit

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// configKeys lists the configuration keys Config accepts, from its json tags,
// with nested blocks as "block.key".
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, configKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	sort.Strings(keys)
	return keys
}

// readmeKeys lists the keys of the README's configuration reference table:
// its rows start with "| `key`".
func readmeKeys(t *testing.T) []string {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "## Configuration reference")
	if start < 0 {
		t.Fatal("README has no Configuration reference section")
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var keys []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `") {
			keys = append(keys, strings.SplitN(line[3:], "`", 2)[0])
		}
	}
	sort.Strings(keys)
	return keys
}

func TestREADMEDocumentsEveryConfigurationKey(t *testing.T) {
	inCode := configKeys(reflect.TypeOf(Config{}), "")
	inREADME := readmeKeys(t)
	if strings.Join(inCode, " ") != strings.Join(inREADME, " ") {
		t.Fatalf("configuration keys differ\n  Config: %v\n  README: %v", inCode, inREADME)
	}
}
