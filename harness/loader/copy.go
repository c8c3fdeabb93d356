package loader

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// skipAnywhere are directory names never copied: version control and
// JavaScript dependencies are not plugin source and can be large.
var skipAnywhere = map[string]bool{".git": true, "node_modules": true}

// skipAtRoot are top-level directories of this repository that are not part
// of the plugin: build caches and this harness module (whose dependencies
// the interpreter must never try to resolve).
var skipAtRoot = map[string]bool{".cache": true, "harness": true}

// CopyPlugin copies the plugin source at repoDir into dst (created), the way
// a user drops a checkout into plugins-local/src/<module>. Symlinks are
// skipped: Traefik reads a plain directory tree.
func CopyPlugin(repoDir, dst string) error {
	repoDir = filepath.Clean(repoDir)
	return filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoDir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel != "." && (skipAnywhere[d.Name()] || (!strings.Contains(rel, string(filepath.Separator)) && skipAtRoot[rel])) {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// RepoRoot finds the plugin repository by walking up from the working
// directory to the go.mod that declares ModuleName, so tests work from any
// package of the harness module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if mod, err := modulePath(filepath.Join(dir, "go.mod")); err == nil && mod == ModuleName {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for %s above the working directory", ModuleName)
		}
		dir = parent
	}
}

// modulePath returns the module path declared in a go.mod file.
func modulePath(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if rest, ok := strings.CutPrefix(line, "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", errors.New("no module line")
}
