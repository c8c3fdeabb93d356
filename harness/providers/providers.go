// Package providers produces the plugin configuration map that Traefik
// v3.6.12 hands to the plugin, starting from what a user actually writes for
// each provider: a dynamic-configuration file, Docker labels, or Kubernetes
// manifests with a Middleware resource.
//
// Each provider gives the plugin differently typed values (file: strings;
// labels: strings, with lists as one comma-separated string; Kubernetes:
// float64, bool and []any) and only the plugin's mapstructure decoding makes
// them agree. Writing those maps by hand in tests would only test our belief
// about the providers, so wherever Traefik exposes its own code this package
// calls it: the file provider's template rendering and decoding, the label
// decoder the Docker provider uses, and the CRD provider's plugin-settings
// function with its secret resolution.
package providers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	_ "unsafe" // for go:linkname, see createPluginMiddleware

	"github.com/traefik/traefik/v3/pkg/config/dynamic"
	"github.com/traefik/traefik/v3/pkg/config/label"
	"github.com/traefik/traefik/v3/pkg/provider/file"
	"github.com/traefik/traefik/v3/pkg/provider/kubernetes/crd"
	traefikv1alpha1 "github.com/traefik/traefik/v3/pkg/provider/kubernetes/crd/traefikio/v1alpha1"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	apiextensionv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	k8syaml "sigs.k8s.io/yaml"
)

// FromFile loads a dynamic-configuration file exactly as Traefik's file
// provider does with `providers.file.filename`: the content is rendered as a
// Go template with Traefik's function map (sprig's TxtFuncMap plus normalize
// and split; `env` reads this process's environment, as it reads Traefik's)
// and then decoded by paerser according to the file extension.
func FromFile(path string) (*dynamic.Configuration, error) {
	p := &file.Provider{Filename: path}
	return p.CreateConfiguration(context.Background(), path, template.FuncMap{}, false)
}

// FromFileContent is FromFile for content that is not on disk yet; it is
// written to a temporary dynamic.yml, so it is read as YAML.
func FromFileContent(content string) (*dynamic.Configuration, error) {
	dir, err := os.MkdirTemp("", "authkit-file-provider-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "dynamic.yml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return nil, err
	}
	return FromFile(path)
}

// FromLabels decodes container labels with label.DecodeConfiguration, the
// call Traefik's Docker (and Swarm) provider makes for every container.
func FromLabels(labels map[string]string) (*dynamic.Configuration, error) {
	return label.DecodeConfiguration(labels)
}

// PluginConfig returns the settings of plugin in the HTTP middleware named
// middleware, as the map Traefik passes to the plugin's config decoding.
func PluginConfig(conf *dynamic.Configuration, middleware, plugin string) (map[string]any, error) {
	if conf == nil || conf.HTTP == nil {
		return nil, errors.New("no HTTP configuration")
	}
	m, ok := conf.HTTP.Middlewares[middleware]
	if !ok || m == nil {
		return nil, fmt.Errorf("no middleware %q", middleware)
	}
	return pluginOf(m.Plugin, middleware, plugin)
}

// pluginOf applies Traefik's rule that a plugin middleware holds exactly one
// plugin (findPluginConfig in pkg/server/middleware) and returns its map.
func pluginOf(plugins map[string]dynamic.PluginConf, middleware, plugin string) (map[string]any, error) {
	if len(plugins) != 1 {
		return nil, fmt.Errorf("middleware %q has %d plugin blocks; Traefik requires exactly one", middleware, len(plugins))
	}
	pc, ok := plugins[plugin]
	if !ok {
		return nil, fmt.Errorf("middleware %q has no plugin %q", middleware, plugin)
	}
	return map[string]any(pc), nil
}

// ComposeLabels returns the labels of service in a docker-compose file, in
// either of Compose's spellings (a list of "key=value" or a mapping), as the
// map Docker reports for the container.
func ComposeLabels(content []byte, service string) (map[string]string, error) {
	var compose struct {
		Services map[string]struct {
			Labels yaml.Node `yaml:"labels"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(content, &compose); err != nil {
		return nil, err
	}
	svc, ok := compose.Services[service]
	if !ok {
		return nil, fmt.Errorf("no service %q", service)
	}
	labels := map[string]string{}
	switch svc.Labels.Kind {
	case yaml.SequenceNode:
		var list []string
		if err := svc.Labels.Decode(&list); err != nil {
			return nil, err
		}
		for _, l := range list {
			k, v, _ := strings.Cut(l, "=")
			labels[k] = v
		}
	case yaml.MappingNode:
		if err := svc.Labels.Decode(&labels); err != nil {
			return nil, err
		}
	case 0: // no labels key
	default:
		return nil, fmt.Errorf("service %q: labels must be a list or a mapping", service)
	}
	return labels, nil
}

// Manifests are the Kubernetes objects of a multi-document YAML file that
// matter to a plugin middleware, as the API server would store them.
type Manifests struct {
	// Middlewares by "namespace/name".
	Middlewares map[string]*traefikv1alpha1.Middleware
	// Secrets by "namespace/name", with stringData merged into data.
	Secrets map[string]*corev1.Secret
}

// ParseManifests reads manifests the way `kubectl apply -f` sends them:
// documents split by apimachinery's YAML reader and converted to JSON by
// sigs.k8s.io/yaml (YAML 1.1 scalars, map keys as strings), then typed.
// Objects of other kinds are skipped; a missing namespace is "default".
func ParseManifests(content []byte) (*Manifests, error) {
	out := &Manifests{Middlewares: map[string]*traefikv1alpha1.Middleware{}, Secrets: map[string]*corev1.Secret{}}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := k8syaml.Unmarshal(doc, &meta); err != nil {
			return nil, err
		}
		switch meta.Kind {
		case "Middleware":
			m := &traefikv1alpha1.Middleware{}
			if err := k8syaml.Unmarshal(doc, m); err != nil {
				return nil, fmt.Errorf("middleware: %w", err)
			}
			if m.Namespace == "" {
				m.Namespace = "default"
			}
			out.Middlewares[m.Namespace+"/"+m.Name] = m
		case "Secret":
			s := &corev1.Secret{}
			if err := k8syaml.Unmarshal(doc, s); err != nil {
				return nil, fmt.Errorf("secret: %w", err)
			}
			if s.Namespace == "" {
				s.Namespace = "default"
			}
			// The API server folds stringData into data on write; Traefik
			// only ever reads data.
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			for k, v := range s.StringData {
				s.Data[k] = []byte(v)
			}
			s.StringData = nil
			out.Secrets[s.Namespace+"/"+s.Name] = s
		}
	}
}

// PluginConfig returns the plugin settings of the Middleware named
// "namespace/name" as Traefik's CRD provider builds them: its own
// createPluginMiddleware turns spec.plugin's apiextensions JSON into
// dynamic.PluginConf (numbers float64, lists []any) and replaces every
// `urn:k8s:secret:<name>:<key>` string with that key of the Secret in the
// Middleware's namespace, here served from the parsed Secrets.
func (m *Manifests) PluginConfig(middleware, plugin string) (map[string]any, error) {
	mw, ok := m.Middlewares[middleware]
	if !ok {
		return nil, fmt.Errorf("no Middleware %q", middleware)
	}
	plugins, err := createPluginMiddleware(secretClient{secrets: m.Secrets}, mw.Namespace, mw.Spec.Plugin)
	if err != nil {
		return nil, err
	}
	return pluginOf(plugins, middleware, plugin)
}

// KubernetesPluginConfig wraps one plugin block, written as it would appear
// under a Middleware's spec.plugin.<plugin>, in a Middleware manifest
// default/<middleware> and returns what the CRD provider makes of it.
// pluginYAML is indented to its place, so callers write it flush left.
func KubernetesPluginConfig(middleware, plugin, pluginYAML string, extraManifests ...string) (map[string]any, error) {
	doc := "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: " + middleware +
		"\n  namespace: default\nspec:\n  plugin:\n    " + plugin + ":\n" + Indent(pluginYAML, 6)
	all := strings.Join(append([]string{doc}, extraManifests...), "\n---\n")
	ms, err := ParseManifests([]byte(all))
	if err != nil {
		return nil, err
	}
	return ms.PluginConfig("default/"+middleware, plugin)
}

// FilePluginConfig wraps one plugin block in a file-provider dynamic
// configuration (http.middlewares.<middleware>.plugin.<plugin>) and returns
// what the file provider makes of it. pluginYAML is written flush left.
func FilePluginConfig(middleware, plugin, pluginYAML string) (map[string]any, error) {
	conf, err := FromFileContent("http:\n  middlewares:\n    " + middleware + ":\n      plugin:\n        " +
		plugin + ":\n" + Indent(pluginYAML, 10))
	if err != nil {
		return nil, err
	}
	return PluginConfig(conf, middleware, plugin)
}

// LabelPluginConfig turns "key=value" settings into the Docker labels
// traefik.http.middlewares.<middleware>.plugin.<plugin>.<key>=<value> and
// returns what the Docker provider's label decoding makes of them.
func LabelPluginConfig(middleware, plugin string, settings ...string) (map[string]any, error) {
	prefix := "traefik.http.middlewares." + middleware + ".plugin." + plugin + "."
	labels := map[string]string{}
	for _, s := range settings {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("setting %q is not key=value", s)
		}
		labels[prefix+k] = v
	}
	conf, err := FromLabels(labels)
	if err != nil {
		return nil, err
	}
	return PluginConfig(conf, middleware, plugin)
}

// Indent prefixes every non-empty line of s with n spaces.
func Indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// createPluginMiddleware is Traefik v3.6.12's own function (unexported in
// pkg/provider/kubernetes/crd) that builds a Middleware's plugin settings and
// resolves secret URNs. Calling it rather than a copy means the Kubernetes
// tests cannot drift from Traefik; the only alternative that reaches it is a
// fake API server for the whole CRD provider. If a Traefik upgrade renames
// it, the harness fails to link and this is the line to revisit.
//
//go:linkname createPluginMiddleware github.com/traefik/traefik/v3/pkg/provider/kubernetes/crd.createPluginMiddleware
func createPluginMiddleware(k8sClient crd.Client, ns string, plugins map[string]apiextensionv1.JSON) (map[string]dynamic.PluginConf, error)

// secretClient answers the CRD provider's GetSecret from parsed manifests.
// Every other method of crd.Client is the nil embedded interface: a call to
// one panics, which would reveal that Traefik started needing more.
type secretClient struct {
	crd.Client
	secrets map[string]*corev1.Secret
}

// GetSecret mirrors the informer-backed client: (secret, found, error).
func (c secretClient) GetSecret(namespace, name string) (*corev1.Secret, bool, error) {
	s, ok := c.secrets[namespace+"/"+name]
	return s, ok, nil
}
