// Package authkit is a test plugin whose New always fails, so the harness
// can check that New's message reaches the caller, as Traefik reports it.
package authkit

import (
	"context"
	"errors"
	"net/http"
)

type Config struct{ ClientID string }

func CreateConfig() *Config { return &Config{} }

func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return nil, errors.New("clientId: " + config.ClientID + " rejected")
}
