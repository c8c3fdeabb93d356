package hostile

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Routes the plugin answers itself" and "Bounded work": the
// organization switch refuses other sites and oversized or multipart
// bodies; the callback spends a code on GET only.

const switchPath = "/auth/switch-organization"

// switchQuery moves the session into Globex and back to /projects.
var switchQuery = "organizationId=" + fakeworkos.OrgGlobex + "&returnTo=/projects"

// TestSwitchOrganizationRefusesAnotherSite: an organization switch that
// comes from another site (Sec-Fetch-Site cross-site or same-site, a
// foreign Origin) is refused with 403 and no refresh; one with neither
// header, or from this origin, switches: a redirect to returnTo with a new
// session cookie in the new organization.
func TestSwitchOrganizationRefusesAnotherSite(t *testing.T) {
	s := startStack(t, nil)
	self := s.traefik.URL
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    int
	}{
		{"Sec-Fetch-Site: cross-site", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"Sec-Fetch-Site: same-site", http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"a foreign Origin", http.MethodGet, map[string]string{"Origin": "https://evil.test"}, http.StatusForbidden},
		{"a foreign Origin, POST", http.MethodPost, map[string]string{"Origin": "https://evil.test"}, http.StatusForbidden},
		{"cross-site POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"neither header", http.MethodGet, nil, http.StatusTemporaryRedirect},
		{"neither header, POST", http.MethodPost, nil, http.StatusSeeOther},
		{"this origin", http.MethodPost, map[string]string{"Origin": self, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s.on(t)
			cookie, _ := s.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
			var req *http.Request
			if tt.method == http.MethodPost {
				req = s.request(http.MethodPost, switchPath, "html", cookie, strings.NewReader(switchQuery))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				req = s.request(http.MethodGet, switchPath+"?"+switchQuery, "html", cookie, nil)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			refreshes := s.fake.RefreshCalls()
			resp, body := s.do(req)
			refreshed := s.fake.RefreshCalls() - refreshes
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (%d refreshes): %.200s", resp.StatusCode, tt.want, refreshed, body)
			}
			if tt.want == http.StatusForbidden {
				if refreshed != 0 {
					t.Errorf("refused, yet %d refreshes", refreshed)
				}
				if c := setCookie(resp, sessionCookie); c != "" {
					t.Errorf("refused, yet a session cookie: %.60q", c)
				}
				return
			}
			if loc := resp.Header.Get("Location"); loc != self+"/projects" {
				t.Errorf("Location %q, want %s/projects", loc, self)
			}
			switched := setCookie(resp, sessionCookie)
			if switched == "" || refreshed != 1 {
				t.Fatalf("no new session cookie (%d refreshes)", refreshed)
			}
			e := s.echo(s.do(s.request(http.MethodGet, protectedPath, "json", strings.SplitN(switched, ";", 2)[0], nil)))
			if got := e.Headers.Get("X-Workos-Organization-Id"); got != fakeworkos.OrgGlobex {
				t.Errorf("after the switch: organization %q, want %q", got, fakeworkos.OrgGlobex)
			}
		})
	}
}

// TestSwitchOrganizationBodies: a form past 16 KiB is refused with 413, a
// multipart body with 415, before any refresh; never a 5xx. A small form
// switches.
func TestSwitchOrganizationBodies(t *testing.T) {
	s := startStack(t, nil)
	multipart := "--x\r\nContent-Disposition: form-data; name=\"organizationId\"\r\n\r\n" + fakeworkos.OrgGlobex + "\r\n--x--\r\n"
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"a 20 KiB form", "application/x-www-form-urlencoded", switchQuery + "&pad=" + strings.Repeat("x", 20<<10), http.StatusRequestEntityTooLarge},
		{"a 1 MiB form", "application/x-www-form-urlencoded", switchQuery + "&pad=" + strings.Repeat("x", 1<<20), http.StatusRequestEntityTooLarge},
		{"a multipart body", "multipart/form-data; boundary=x", multipart, http.StatusUnsupportedMediaType},
		{"a small form", "application/x-www-form-urlencoded", switchQuery, http.StatusSeeOther},
	}
	for _, tt := range tests {
		for _, signedIn := range []bool{true, false} {
			name := tt.name + ", signed out"
			if signedIn {
				name = tt.name + ", signed in"
			}
			t.Run(name, func(t *testing.T) {
				s := s.on(t)
				cookie := ""
				if signedIn {
					cookie, _ = s.session(fakeworkos.UserAlice, fakeworkos.OrgAcme, 0)
				}
				req := s.request(http.MethodPost, switchPath, "html", cookie, strings.NewReader(tt.body))
				req.Header.Set("Content-Type", tt.contentType)
				refreshes := s.fake.RefreshCalls()
				resp, body := s.do(req)
				refreshed := s.fake.RefreshCalls() - refreshes
				want := tt.want
				if want == http.StatusSeeOther && !signedIn {
					if !s.isSignInRedirect(resp) {
						t.Errorf("status %d, Location %q: want a sign-in into the organization", resp.StatusCode, resp.Header.Get("Location"))
					}
					return
				}
				if resp.StatusCode != want {
					t.Errorf("status %d, want %d: %.200s", resp.StatusCode, want, body)
				}
				if want != http.StatusSeeOther && refreshed != 0 {
					t.Errorf("refused, yet %d refreshes", refreshed)
				}
			})
		}
	}
}

// TestCallbackHeadDoesNotSpendTheCode drives a sign-in through the fake
// WorkOS up to the callback; a HEAD there (a link scanner's) gets 405
// without a code exchange, and the browser's GET that follows signs in.
// The scanner does not share the browser's cookies, so the GET carries
// the verifier cookie the sign-in set whatever the HEAD's answer says.
func TestCallbackHeadDoesNotSpendTheCode(t *testing.T) {
	s := startStack(t, nil)
	start, _ := s.do(s.request(http.MethodGet, "/auth/sign-in?returnTo=/page", "html", "", nil))
	if !s.isSignInRedirect(start) {
		t.Fatalf("sign-in: status %d, Location %q", start.StatusCode, start.Header.Get("Location"))
	}
	pkce := cookiePairs(start)
	authorize, _ := s.do(mustRequest(t, start.Header.Get("Location")+"&login_hint="+url.QueryEscape(fakeworkos.UserBob)))
	callback, err := url.Parse(authorize.Header.Get("Location"))
	if err != nil || callback.Path != "/callback" || callback.Query().Get("code") == "" {
		t.Fatalf("the fake answered %d, Location %q", authorize.StatusCode, authorize.Header.Get("Location"))
	}

	exchanges := s.fake.CodeExchangeCalls()
	head, _ := s.do(s.request(http.MethodHead, callback.RequestURI(), "html", pkce, nil))
	if head.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD: status %d, want 405", head.StatusCode)
	}
	if d := s.fake.CodeExchangeCalls() - exchanges; d != 0 {
		t.Errorf("HEAD: %d code exchanges, want 0", d)
	}
	if c := setCookie(head, sessionCookie); c != "" {
		t.Errorf("HEAD: a session cookie: %.60q", c)
	}
	t.Logf("HEAD's Set-Cookie (for the scanner's cookies, not the browser's): %q", head.Header.Values("Set-Cookie"))

	get, body := s.do(s.request(http.MethodGet, callback.RequestURI(), "html", pkce, nil))
	session := setCookie(get, sessionCookie)
	if get.StatusCode != http.StatusTemporaryRedirect || session == "" {
		t.Fatalf("GET after the HEAD: status %d, session cookie %t: %.200s", get.StatusCode, session != "", body)
	}
	if loc := get.Header.Get("Location"); loc != s.traefik.URL+"/page" {
		t.Errorf("GET after the HEAD: Location %q, want the return path /page", loc)
	}
	e := s.echo(s.do(s.request(http.MethodGet, protectedPath, "json", strings.SplitN(session, ";", 2)[0], nil)))
	if got := e.Headers.Get("X-Workos-User-Id"); got != fakeworkos.UserBob {
		t.Errorf("after the callback: user %q, want %q", got, fakeworkos.UserBob)
	}
}

func mustRequest(t *testing.T, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
