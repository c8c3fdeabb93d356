package main

import (
	"html/template"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
)

// page shows what the upstream received: the identity the plugin forwarded
// (X-Workos-* by default, the headers a route names in identityHeaders on
// the lean route), the headers a Next.js app's withAuth() reads, and the
// names of the cookies that reached it.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<meta charset="utf-8">
<title>traefik-authkit demo</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.3rem .5rem;vertical-align:top}
td:first-child{white-space:nowrap;font-family:monospace}td:last-child{word-break:break-all;font-family:monospace}
nav a{margin-right:1rem}
</style>
<nav><a href="/">Home (public)</a><a href="/dashboard">Dashboard (protected)</a><a href="/admin">Admin (admins only)</a><a href="/lean">Lean (X-Forwarded-* identity, no session cookie)</a><a href="/public/about">About (public)</a><a href="/auth/sign-in?returnTo=/dashboard">Sign in</a><a href="/auth/sign-out">Sign out</a></nav>
{{if .UserID}}<h1 id="status">Signed in as <span id="email">{{.Email}}</span></h1>
<p>User id <code id="user-id">{{.UserID}}</code></p>
{{else}}<h1 id="status">Signed out</h1><p>This page is public. Open the dashboard to sign in.</p>{{end}}
<h2>Headers the upstream received at {{.Path}}</h2>
<table id="headers">{{range .Headers}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>{{end}}</table>
<p>Cookies it received (names only): <code id="cookies">{{.Cookies}}</code></p>
`))

type headerRow struct{ Name, Value string }

// upstreamPage renders the page; identity holds, by identity field, the
// headers the example's middlewares name in identityHeaders.
type upstreamPage struct{ identity map[string][]string }

func (u upstreamPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	shown := map[string]bool{}
	for _, names := range u.identity {
		for _, n := range names {
			shown[n] = true
		}
	}
	var rows []headerRow
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if !shown[name] && !strings.HasPrefix(lower, "x-workos-") && lower != "x-url" && lower != "x-redirect-uri" && lower != "x-sign-up-paths" {
			continue
		}
		value := strings.Join(values, ", ")
		if lower == "x-workos-session" && len(value) > 48 {
			value = value[:48] + "… (" + itoa(len(value)) + " bytes, the sealed session)"
		}
		rows = append(rows, headerRow{name, value})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	// Names only: cookie values are secrets, the session's above all.
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name)
	}
	cookieNames := strings.Join(cookies, ", ")
	if cookieNames == "" {
		cookieNames = "none"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, map[string]any{
		"UserID": u.first(r, "user.id", "X-Workos-User-Id"), "Email": u.first(r, "user.email", "X-Workos-User-Email"),
		"Path": r.URL.Path, "Headers": rows, "Cookies": cookieNames,
	})
}

// first returns the first value the request carries for an identity
// field: in the default header, else in a header identityHeaders names.
func (u upstreamPage) first(r *http.Request, field, defaultHeader string) string {
	if v := r.Header.Get(defaultHeader); v != "" {
		return v
	}
	for _, name := range u.identity[field] {
		if v := r.Header.Get(name); v != "" {
			return v
		}
	}
	return ""
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// serveUpstream starts the page on a free loopback port.
func serveUpstream(identity map[string][]string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, upstreamPage{identity: identity})
	return "http://" + ln.Addr().String(), nil
}

// newProxy forwards to the upstream, as Traefik's service would.
func newProxy(target string) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	return httputil.NewSingleHostReverseProxy(u), nil
}
