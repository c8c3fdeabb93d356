package fakeworkos

import (
	"html"
	"net/http"
	"strings"
)

// pathSignIn receives the sign-in page's forms. It lives under /__fake/
// because it is not part of the WorkOS API.
const pathSignIn = "/__fake/sign-in"

// renderSignIn shows one button per (user, organization) choice, the way
// AuthKit asks a multi-organization user which organization to enter.
// The buttons carry data-email, data-user-id and data-organization-id so
// browser tests can pick one without depending on the layout.
func (s *Server) renderSignIn(w http.ResponseWriter, req AuthorizeRequest, notice string) {
	s.mu.Lock()
	users := append([]User(nil), s.users...)
	s.mu.Unlock()

	var b strings.Builder
	if notice != "" {
		b.WriteString(`<p class="notice">` + html.EscapeString(notice) + "</p>\n")
	}
	if req.OrganizationID != "" {
		b.WriteString("<p>Signing in to organization <code>" + html.EscapeString(req.OrganizationID) + "</code>.</p>\n")
	}
	b.WriteString("<ul class=\"users\">\n")
	choices := 0
	for i := 0; i < len(users); i++ {
		u := users[i]
		if len(u.Memberships) == 0 && req.OrganizationID == "" {
			writeChoice(&b, req.RawQuery, u, Membership{})
			choices++
		}
		for j := 0; j < len(u.Memberships); j++ {
			m := u.Memberships[j]
			if req.OrganizationID == "" || m.OrganizationID == req.OrganizationID {
				writeChoice(&b, req.RawQuery, u, m)
				choices++
			}
		}
	}
	b.WriteString("</ul>\n")
	if choices == 0 {
		b.WriteString("<p>No test user belongs to this organization.</p>\n")
	}
	title := "Sign in"
	if req.ScreenHint == "sign-up" {
		title = "Sign up"
	}
	writePage(w, http.StatusOK, title, b.String())
}

func writeChoice(b *strings.Builder, authorizeQuery string, u User, m Membership) {
	role, org := m.Role, m.OrganizationName
	if org == "" {
		org = m.OrganizationID
	}
	if m.OrganizationID == "" {
		role, org = "no role", "no organization"
	}
	b.WriteString(`<li><form method="post" action="` + pathSignIn + `">`)
	writeHidden(b, "authorize_query", authorizeQuery)
	writeHidden(b, "user_id", u.ID)
	writeHidden(b, "organization_id", m.OrganizationID)
	b.WriteString(`<button type="submit" data-user-id="` + html.EscapeString(u.ID) +
		`" data-email="` + html.EscapeString(u.Email) +
		`" data-organization-id="` + html.EscapeString(m.OrganizationID) + `">`)
	b.WriteString(`<span class="name">` + html.EscapeString(u.displayName()) + `</span> `)
	b.WriteString(`<span class="email">` + html.EscapeString(u.Email) + `</span> `)
	b.WriteString(`<span class="role">` + html.EscapeString(role) + `</span> `)
	b.WriteString(`<span class="org">` + html.EscapeString(org) + `</span>`)
	b.WriteString("</button></form></li>\n")
}

func writeHidden(b *strings.Builder, name, value string) {
	b.WriteString(`<input type="hidden" name="` + name + `" value="` + html.EscapeString(value) + `">`)
}

// writeProblemPage answers a browser-facing request that cannot proceed,
// saying what is wrong so a developer can fix the caller.
func writeProblemPage(w http.ResponseWriter, status int, problem string) {
	writePage(w, status, http.StatusText(status), `<p class="problem">`+html.EscapeString(problem)+"</p>\n")
}

// writePage writes a complete HTML page; body must already be escaped.
func writePage(w http.ResponseWriter, status int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + html.EscapeString(title) + ` · Fake WorkOS AuthKit</title>
<style>
body { font-family: system-ui, sans-serif; background: #f4f4f8; margin: 0; }
main { max-width: 36rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px; }
ul.users { list-style: none; padding: 0; }
ul.users button { width: 100%; text-align: left; margin: .3rem 0; padding: .7rem 1rem; cursor: pointer;
  border: 1px solid #ccd; border-radius: 6px; background: #fafaff; font: inherit; }
ul.users button:hover { background: #eef; }
.name { font-weight: 600; } .email, .role, .org { color: #556; margin-left: .5rem; }
.notice { background: #fff6d8; padding: .5rem; } .problem { color: #a00; }
</style>
</head>
<body>
<main>
<h1>` + html.EscapeString(title) + `</h1>
` + body + `<p><small>Fake WorkOS AuthKit for tests: no passwords, pick a user.</small></p>
</main>
</body>
</html>
`))
}
