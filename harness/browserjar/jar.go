// Package browserjar is the cookie store of the harness's simulated
// browsers for one host. The plugin sets every cookie with Path=/ and no
// Domain, so a name → value map is the whole state. It is kept by hand
// (not net/http/cookiejar) so a client can choose to lose a response and
// applies Set-Cookie in the order answers arrive, as a browser does.
package browserjar

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// SessionCookie is the plugin's session cookie name; a split session is
// stored as SessionCookie.0, SessionCookie.1, …
const SessionCookie = "wos-session"

// Jar maps cookie names to values.
type Jar map[string]string

// Header is the Cookie header a browser sends, the names in order.
func (j Jar) Header() string {
	names := make([]string, 0, len(j))
	for n := range j {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+"="+j[n])
	}
	return strings.Join(parts, "; ")
}

// Apply stores or deletes cookies as a browser does: Max-Age=0 or an
// Expires in the past removes the cookie.
func (j Jar) Apply(setCookies []string, now time.Time) {
	for _, line := range setCookies {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue
		}
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(now)) {
			delete(j, c.Name)
			continue
		}
		j[c.Name] = c.Value
	}
}

// HasSession reports whether the jar holds a session, whole or in parts.
func (j Jar) HasSession() bool {
	for n := range j {
		if IsSessionCookie(n) {
			return true
		}
	}
	return false
}

// Session returns the sealed session, reassembled from its parts when it
// is split.
func (j Jar) Session() string {
	if v, ok := j[SessionCookie]; ok {
		return v
	}
	var b strings.Builder
	for i := 0; ; i++ {
		v, ok := j[fmt.Sprintf("%s.%d", SessionCookie, i)]
		if !ok {
			return b.String()
		}
		b.WriteString(v)
	}
}

// SetSession stores a sealed session, split into parts when it is too big
// for one cookie (the plugin reads both forms).
func (j Jar) SetSession(sealed string) {
	const part = 3500
	j.ClearSession()
	if len(sealed) <= part {
		j[SessionCookie] = sealed
		return
	}
	for i := 0; len(sealed) > 0; i++ {
		n := min(part, len(sealed))
		j[fmt.Sprintf("%s.%d", SessionCookie, i)] = sealed[:n]
		sealed = sealed[n:]
	}
}

// ClearSession removes the session and its parts.
func (j Jar) ClearSession() {
	for n := range j {
		if IsSessionCookie(n) {
			delete(j, n)
		}
	}
}

// IsSessionCookie reports whether name is the session cookie or a part.
func IsSessionCookie(name string) bool {
	return name == SessionCookie || strings.HasPrefix(name, SessionCookie+".")
}
