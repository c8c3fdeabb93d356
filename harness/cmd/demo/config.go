package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

// exampleMiddlewareConfig renders examples/dynamic.yml as Traefik's file
// provider does (a Go template with sprig's functions) and returns the
// authkit middleware's plugin block.
func exampleMiddlewareConfig(root string) (map[string]any, error) {
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
	var doc struct {
		HTTP struct {
			Middlewares map[string]struct {
				Plugin map[string]map[string]any `yaml:"plugin"`
			} `yaml:"middlewares"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(rendered.Bytes(), &doc); err != nil {
		return nil, err
	}
	config := doc.HTTP.Middlewares["authkit"].Plugin["authkit"]
	if config == nil {
		return nil, errors.New("examples/dynamic.yml has no http.middlewares.authkit.plugin.authkit block")
	}
	return config, nil
}
