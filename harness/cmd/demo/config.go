package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

// exampleConfig is the part of examples/dynamic.yml the demo reads.
type exampleConfig struct {
	HTTP struct {
		Routers map[string]struct {
			Rule        string   `yaml:"rule"`
			Middlewares []string `yaml:"middlewares"`
		} `yaml:"routers"`
		Middlewares map[string]struct {
			Plugin map[string]map[string]any `yaml:"plugin"`
		} `yaml:"middlewares"`
	} `yaml:"http"`
}

// readExample renders examples/dynamic.yml as Traefik's file provider does
// (a Go template with sprig's functions) and decodes it.
func readExample(root string) (*exampleConfig, error) {
	raw, err := os.ReadFile(filepath.Join(root, "examples", "dynamic.yml"))
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("dynamic").Funcs(sprig.TxtFuncMap()).Parse(string(raw))
	if err != nil {
		return nil, err
	}
	var rendered bytes.Buffer
	if err := tmpl.Execute(&rendered, nil); err != nil {
		return nil, err
	}
	doc := &exampleConfig{}
	if err := yaml.Unmarshal(rendered.Bytes(), doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// route is one router of the example: requests whose path starts with
// prefix go through the authkit middleware configured by config.
type route struct {
	name, prefix, middleware string
	config                   map[string]any
}

var pathPrefixRule = regexp.MustCompile("^PathPrefix\\(`([^`]+)`\\)$")

// exampleRoutes returns the example's routers, longest prefix first, which
// is the order Traefik's default priority (the rule's length) gives them.
func exampleRoutes(doc *exampleConfig) ([]route, error) {
	var routes []route
	for name, r := range doc.HTTP.Routers {
		m := pathPrefixRule.FindStringSubmatch(r.Rule)
		if m == nil || len(r.Middlewares) != 1 {
			return nil, fmt.Errorf("examples/dynamic.yml: router %s: the demo serves PathPrefix rules with one middleware", name)
		}
		config := doc.HTTP.Middlewares[r.Middlewares[0]].Plugin["authkit"]
		if config == nil {
			return nil, fmt.Errorf("examples/dynamic.yml has no http.middlewares.%s.plugin.authkit block", r.Middlewares[0])
		}
		routes = append(routes, route{name: name, prefix: m[1], middleware: r.Middlewares[0], config: config})
	}
	if len(routes) == 0 {
		return nil, errors.New("examples/dynamic.yml has no routers")
	}
	sort.Slice(routes, func(i, j int) bool { return len(routes[i].prefix) > len(routes[j].prefix) })
	return routes, nil
}

// identityHeaderNames returns, by identity field, the canonical names of
// the headers the example's middlewares send it in (their
// identityHeaders), so the demo page can show them.
func identityHeaderNames(doc *exampleConfig) map[string][]string {
	out := map[string][]string{}
	for _, m := range doc.HTTP.Middlewares {
		headers, _ := m.Plugin["authkit"]["identityHeaders"].(map[string]any)
		for name, field := range headers {
			f, _ := field.(string)
			out[strings.TrimSpace(f)] = append(out[strings.TrimSpace(f)], textproto.CanonicalMIMEHeaderKey(name))
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}
