package hostile

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "What the upstream receives": a client can never supply identity,
// in any spelling a server behind Traefik may read as the same header.

// spoofMark starts every spoofed value, so the upstream's echo shows which
// ones got through whatever name they arrived under.
const spoofMark = "spoofed-"

// spoofedHeaders are written on the wire exactly as spelled. CGI, Rack,
// PHP and WSGI servers read X_Workos_User_Id, x_workos_user_id and
// X-Workos-User-Id as one variable; Go canonicalises only around '-'.
var spoofedHeaders = []header{
	{"X-Workos-User-Id", spoofMark + "X-Workos-User-Id"},
	{"X_Workos_User_Id", spoofMark + "X_Workos_User_Id"},
	{"x_workos_user_id", spoofMark + "x_workos_user_id"},
	{"X-WORKOS-USER-ID", spoofMark + "X-WORKOS-USER-ID"},
	{"X-Workos_Session-Id", spoofMark + "X-Workos_Session-Id"},
	{"x-workos-session", spoofMark + "x-workos-session"},
	{"x_url", "https://evil.test/" + spoofMark + "x_url"},
	{"X_Redirect_Uri", "https://evil.test/" + spoofMark + "X_Redirect_Uri"},
	{"x-sign-up-paths", "/" + spoofMark + "x-sign-up-paths"},
	{"Remote-User", spoofMark + "Remote-User"},
	{"remote_user", spoofMark + "remote_user"},
	{"REMOTE_USER", spoofMark + "REMOTE_USER"},
}

// spoofedArrivals returns, for each spoofed value the upstream received,
// the header name it arrived under.
func spoofedArrivals(h http.Header) map[string]string {
	got := map[string]string{}
	for name, values := range h {
		for _, v := range values {
			if i := strings.Index(v, spoofMark); i >= 0 {
				got[v[i+len(spoofMark):]] = name
			}
		}
	}
	return got
}

// TestSpoofedIdentityHeadersNeverReachTheUpstream writes identity and
// authkit-nextjs headers in many spellings on the wire; with
// identityHeaders {Remote-User: user.id}, anonymous on a public path and
// signed in (cache miss and hit), the upstream gets none of the client's
// values. The control through the router without the plugin shows that
// Traefik itself passes every spelling, underscores included.
func TestSpoofedIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	s := startStack(t, func(c map[string]any) {
		c["identityHeaders"] = map[string]any{"Remote-User": "user.id"}
	})
	cookie, _ := s.session(fakeworkos.UserBob, "", 0)

	t.Run("control: Traefik alone passes every spelling", func(t *testing.T) {
		s := s.on(t)
		got := spoofedArrivals(s.echo(s.raw(http.MethodGet, bareRouter+"x", spoofedHeaders)).Headers)
		var passed []string
		for _, h := range spoofedHeaders {
			name, ok := got[h.name]
			if !ok {
				t.Errorf("Traefik dropped %q: the plugin's stripping of it is not exercised", h.name)
				continue
			}
			passed = append(passed, h.name+" as "+name)
		}
		sort.Strings(passed)
		t.Logf("Traefik v3.6.12 passed to the upstream: %s", strings.Join(passed, ", "))
	})

	tests := []struct {
		name, path, cookie string
		wantUser           string // Remote-User the plugin sets
	}{
		{"anonymous on a public path", publicPath, "", ""},
		{"cookies but no session on a public path", publicPath, "theme=dark", ""},
		{"signed in (cache miss)", protectedPath, "theme=dark; " + cookie, fakeworkos.UserBob},
		{"signed in (cached)", protectedPath, cookie, fakeworkos.UserBob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.on(t)
			headers := append([]header{{"Accept", "application/json"}}, spoofedHeaders...)
			if tt.cookie != "" {
				headers = append(headers, header{"Cookie", tt.cookie})
			}
			e := s.echo(s.raw(http.MethodGet, tt.path, headers))
			for spelling, name := range spoofedArrivals(e.Headers) {
				t.Errorf("the client's %s reached the upstream as %s: %q", spelling, name, e.Headers.Get(name))
			}
			if got := e.Headers.Get("Remote-User"); got != tt.wantUser {
				t.Errorf("upstream Remote-User %q, want %q", got, tt.wantUser)
			}
		})
	}
}

// TestForwardAccessTokenDropsAnUnverifiedAuthorization: with
// forwardAccessToken, a client's own Authorization never reaches the
// upstream; a signed-in request carries the session's access token in
// its place (cache miss, then hit).
func TestForwardAccessTokenDropsAnUnverifiedAuthorization(t *testing.T) {
	s := startStack(t, func(c map[string]any) { c["forwardAccessToken"] = true })
	cookie, issued := s.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
	tests := []struct {
		name, path, cookie, want string
	}{
		{"signed out on a public path", publicPath, "", ""},
		{"cookies but no session on a public path", publicPath, "theme=dark", ""},
		{"signed in: the session's token replaces the client's", protectedPath, cookie, "Bearer " + issued.AccessToken},
	}
	for _, tt := range tests {
		for _, round := range []string{"first", "second"} {
			t.Run(tt.name+", "+round+" request", func(t *testing.T) {
				s := s.on(t)
				req := s.request(http.MethodGet, tt.path, "json", tt.cookie, nil)
				req.Header.Set("Authorization", "Bearer forged")
				e := s.echo(s.do(req))
				if got := e.Headers.Get("Authorization"); got != tt.want {
					t.Errorf("upstream Authorization %.40q, want %.40q", got, tt.want)
				}
			})
		}
	}
}
