package traefiktest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestTraefikDependenciesUnchanged checks that every module linked into the
// Traefik binary has the version Traefik v3.6.12's own go.mod requires.
// Traefik is a tool of this module, so a harness dependency (chromedp, say)
// that needs a newer version of a shared module would silently change what
// Traefik is built from; this test says so instead.
func TestTraefikDependenciesUnchanged(t *testing.T) {
	goMod, err := exec.Command("go", "list", "-m", "-f", "{{.GoMod}}", "github.com/traefik/traefik/v3").Output()
	if err != nil {
		t.Fatalf("locate Traefik's go.mod: %v", err)
	}
	data, err := os.ReadFile(strings.TrimSpace(string(goMod)))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range mf.Require {
		want[r.Mod.Path] = r.Mod.Version
	}
	replaced := map[string]bool{}
	for _, r := range mf.Replace {
		replaced[r.Old.Path] = true
	}

	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}",
		"github.com/traefik/traefik/v3/cmd/traefik").Output()
	if err != nil {
		t.Fatalf("go list Traefik's dependencies: %v", err)
	}
	checked := 0
	s := bufio.NewScanner(bytes.NewReader(out))
	seen := map[string]bool{}
	for s.Scan() {
		path, version, ok := strings.Cut(s.Text(), " ")
		if !ok || seen[path] || replaced[path] {
			continue
		}
		seen[path] = true
		if w, required := want[path]; required {
			checked++
			if version != w {
				t.Errorf("%s is %s in the Traefik build, Traefik v3.6.12 requires %s", path, version, w)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("only %d linked modules compared: the listing looks wrong", checked)
	}
}
