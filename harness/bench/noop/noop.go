// Package noop is a Traefik plugin that does nothing but call the next
// handler. The throughput benchmark runs it beside traefik-authkit to show
// what any plugin costs in Traefik's interpreter.
package noop

import (
	"context"
	"net/http"
)

// Config is empty: the plugin has nothing to configure.
type Config struct{}

// CreateConfig returns the empty configuration.
func CreateConfig() *Config { return &Config{} }

// New returns next unchanged in behaviour, wrapped so Traefik runs plugin code.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return &noop{next: next}, nil
}

type noop struct{ next http.Handler }

func (n *noop) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.next.ServeHTTP(w, r) }
