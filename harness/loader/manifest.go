package loader

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// ManifestFile is the name Traefik looks for at the root of a plugin's source.
const ManifestFile = ".traefik.yml"

// Manifest is the subset of Traefik's plugin manifest (.traefik.yml) that
// decides whether and how a local middleware plugin is loaded. Field names and
// YAML keys are Traefik v3.6's, decoded with the same library (yaml.v3) so
// that testData arrives with the same Go types Traefik sees.
type Manifest struct {
	DisplayName   string         `yaml:"displayName"`
	Type          string         `yaml:"type"`
	Runtime       string         `yaml:"runtime"`
	WasmPath      string         `yaml:"wasmPath"`
	Import        string         `yaml:"import"`
	BasePkg       string         `yaml:"basePkg"`
	Compatibility string         `yaml:"compatibility"`
	Summary       string         `yaml:"summary"`
	UseUnsafe     bool           `yaml:"useUnsafe"`
	TestData      map[string]any `yaml:"testData"`

	// IconPath is read by the Plugin Catalog only, not by Traefik: a path
	// in the repository to the plugin's icon (CheckIcon).
	IconPath string `yaml:"iconPath"`
}

// isYaegi reports whether the plugin runs in the interpreter; Traefik treats
// an absent runtime as yaegi for backwards compatibility.
func (m *Manifest) isYaegi() bool {
	return m.Runtime == "yaegi" || m.Runtime == ""
}

// ReadManifest reads <goPath>/src/<moduleName>/.traefik.yml the way Traefik
// does, including its error wording, so a test can compare messages.
func ReadManifest(goPath, moduleName string) (*Manifest, error) {
	return readManifestFile(filepath.Join(goPath, "src", filepath.FromSlash(moduleName), ManifestFile))
}

// RepoManifest reads the manifest at the root of a plugin checkout.
func RepoManifest(repoDir string) (*Manifest, error) {
	return readManifestFile(filepath.Join(repoDir, ManifestFile))
}

func readManifestFile(p string) (*Manifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("failed to open the plugin manifest %s: %w", p, err)
	}
	defer f.Close()

	m := &Manifest{}
	if err := yaml.NewDecoder(f).Decode(m); err != nil {
		return nil, fmt.Errorf("failed to decode the plugin manifest %s: %w", p, err)
	}
	return m, nil
}

// CheckManifest applies the checks Traefik v3.6 runs on a local plugin's
// manifest at startup (before any code is interpreted). All failures are
// reported together, joined, because Traefik reports them that way: a test
// can assert each message without fixing one problem at a time.
func CheckManifest(m *Manifest, moduleName string) error {
	var errs []error

	switch m.Type {
	case "middleware":
		if m.Runtime != "yaegi" && m.Runtime != "wasm" && m.Runtime != "" {
			errs = append(errs, fmt.Errorf("%s: unsupported runtime '%q'", moduleName, m.Runtime))
		}
	case "provider":
		if m.Runtime != "yaegi" && m.Runtime != "" {
			errs = append(errs, fmt.Errorf("%s: unsupported runtime '%q'", moduleName, m.Runtime))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: unsupported type %q", moduleName, m.Type))
	}

	if m.isYaegi() {
		if m.Import == "" {
			errs = append(errs, fmt.Errorf("%s: missing import", moduleName))
		}
		if !strings.HasPrefix(m.Import, moduleName) {
			errs = append(errs, fmt.Errorf("the import %q must be related to the module name %q", m.Import, moduleName))
		}
	}

	if m.DisplayName == "" {
		errs = append(errs, fmt.Errorf("%s: missing DisplayName", moduleName))
	}
	if m.Summary == "" {
		errs = append(errs, fmt.Errorf("%s: missing Summary", moduleName))
	}
	if m.TestData == nil {
		errs = append(errs, fmt.Errorf("%s: missing TestData", moduleName))
	}

	return errors.Join(errs...)
}

// pngMagic starts every PNG file.
var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// CheckIcon checks the manifest's iconPath against the plugin source at
// repoDir the way the Plugin Catalog uses it: a slash-separated path inside
// the repository (the catalog shows the file from there) to a square PNG.
// Traefik itself ignores iconPath, so this is not part of CheckManifest,
// which mirrors what Traefik refuses; a wrong path only leaves the catalog
// page without an icon, which is why a test has to catch it.
func CheckIcon(m *Manifest, repoDir string) error {
	p := m.IconPath
	if p == "" {
		return errors.New("iconPath: missing")
	}
	if path.IsAbs(p) || strings.Contains(p, "\\") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("iconPath %q: not a clean relative path inside the repository", p)
	}
	data, err := os.ReadFile(filepath.Join(repoDir, filepath.FromSlash(p)))
	if err != nil {
		return fmt.Errorf("iconPath %q: %w", p, err)
	}
	if !bytes.HasPrefix(data, pngMagic) {
		return fmt.Errorf("iconPath %q: not a PNG file (no PNG signature)", p)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("iconPath %q: %w", p, err)
	}
	if cfg.Width != cfg.Height || cfg.Width < 64 {
		return fmt.Errorf("iconPath %q: %dx%d, want a square of at least 64x64", p, cfg.Width, cfg.Height)
	}
	return nil
}

// EditedManifest returns repoDir's manifest after edit has changed its YAML
// keys: the broken manifests the loader's and Traefik's tests feed in.
func EditedManifest(repoDir string, edit func(map[string]any)) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(repoDir, ManifestFile))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	edit(m)
	return yaml.Marshal(m)
}
