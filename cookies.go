package authkit

import (
	"net/http"
	"strconv"
	"strings"
)

// Cookies as authkit-nextjs writes them (WORKOS-PROTOCOL.md E.3–E.5).

const (
	eagerCookieName = "workos-access-token"
	// maxPKCECookies is how many verifier cookies may pile up (abandoned
	// sign-ins) before a new flow clears the others (E.4).
	maxPKCECookies = 5
	// maxCookieLength is the browsers' limit for one Set-Cookie, name and
	// attributes included; longer sessions are split (SPEC "Large sessions").
	maxCookieLength = 4096
	// maxSessionChunks bounds how many parts a split session may have.
	maxSessionChunks = 10
	expiredDate      = "Expires=Thu, 01 Jan 1970 00:00:00 GMT"
)

type cookieSettings struct {
	name     string
	domain   string
	maxAge   int
	sameSite string // Lax, Strict or None
}

// attributes renders the attributes after the value, in authkit-nextjs's
// order: Path, HttpOnly, SameSite, Max-Age, Domain, Secure.
func (c cookieSettings) attributes(sameSite string, maxAge int, secure bool) string {
	var b strings.Builder
	b.WriteString("; Path=/; HttpOnly; SameSite=")
	b.WriteString(sameSite)
	b.WriteString("; Max-Age=")
	b.WriteString(strconv.Itoa(maxAge))
	if c.domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(c.domain)
	}
	if secure || sameSite == "None" {
		b.WriteString("; Secure")
	}
	return b.String()
}

// sessionCookies returns the Set-Cookie values that store a sealed session.
// A seal that fits goes in one cookie under the configured name, as
// authkit-nextjs writes it; a longer one is split into name.0, name.1, …
// Parts and forms the request carried but the new value does not use are
// deleted, so no stale part is ever reassembled.
func (c cookieSettings) sessionCookies(sealed string, secure bool, present sessionCookieNames) []string {
	attrs := c.attributes(c.sameSite, c.maxAge, secure)
	room := maxCookieLength - len(c.name) - len(".9=") - len(attrs)
	if len(c.name)+1+len(sealed)+len(attrs) <= maxCookieLength {
		out := []string{c.name + "=" + sealed + attrs}
		for i := 0; i < present.chunks; i++ {
			out = append(out, c.deletion(c.chunkName(i), secure))
		}
		return out
	}
	var out []string
	n := 0
	for ; len(sealed) > 0; n++ {
		part := sealed
		if len(part) > room {
			part = part[:room]
		}
		sealed = sealed[len(part):]
		out = append(out, c.chunkName(n)+"="+part+attrs)
	}
	for i := n; i < present.chunks; i++ {
		out = append(out, c.deletion(c.chunkName(i), secure))
	}
	if present.single {
		out = append(out, c.deletion(c.name, secure))
	}
	return out
}

func (c cookieSettings) chunkName(i int) string { return c.name + "." + strconv.Itoa(i) }

// sessionDeletions clears every form of the session cookie the request had.
func (c cookieSettings) sessionDeletions(secure bool, present sessionCookieNames) []string {
	out := []string{c.deletion(c.name, secure)}
	for i := 0; i < present.chunks; i++ {
		out = append(out, c.deletion(c.chunkName(i), secure))
	}
	return out
}

// deletion is the middleware's delete form: same Path, Domain and SameSite,
// empty value, expired.
func (c cookieSettings) deletion(name string, secure bool) string {
	return name + "=; " + expiredDate + c.attributes(c.sameSite, 0, secure)
}

// pkceSameSite downgrades Strict to Lax: the callback arrives as a
// cross-site navigation from AuthKit, which a Strict cookie would miss.
func (c cookieSettings) pkceSameSite() string {
	if c.sameSite == "Strict" {
		return "Lax"
	}
	return c.sameSite
}

func (c cookieSettings) pkceCookie(name, sealedState string, secure bool) string {
	return name + "=" + sealedState + c.attributes(c.pkceSameSite(), int(authStateTTL.Seconds()), secure)
}

func (c cookieSettings) pkceDeletion(name string, secure bool) string {
	return name + "=" + c.attributes(c.pkceSameSite(), 0, secure)
}

// eagerCookie is readable by page scripts on purpose (E.5): no HttpOnly, no
// Path, 30 seconds.
func eagerCookie(accessToken string, secure bool) string {
	v := eagerCookieName + "=" + accessToken + "; SameSite=Lax; Max-Age=30"
	if secure {
		v += "; Secure"
	}
	return v
}

func eagerDeletion(secure bool) string {
	v := eagerCookieName + "=; SameSite=Lax; Max-Age=0"
	if secure {
		v += "; Secure"
	}
	return v + "; " + expiredDate
}

// sessionCookieNames records which forms of the session cookie a request
// carried, so a rewrite or a deletion can clear them all.
type sessionCookieNames struct {
	single bool
	chunks int // parts name.0 … name.(chunks-1) present in sequence
}

// requestCookies is what the middleware reads from the Cookie header, parsed
// once per request.
type requestCookies struct {
	session      string // the sealed session, reassembled when split
	sessionNames sessionCookieNames
	eager        string
	pkceNames    []string // wos-auth-verifier and wos-auth-verifier-*
}

// readCookies parses the request's cookies. It runs on every request, so
// it slices the Cookie header with package strings instead of calling
// Request.Cookies, which allocates and validates every byte of every cookie.
// When a name repeats (a cookie set for several paths or domains), the first
// one wins, which is the most specific one browsers send first.
func readCookies(r *http.Request, sessionName string) requestCookies {
	var rc requestCookies
	var chunks [maxSessionChunks]string
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			eq := strings.IndexByte(part, '=')
			if eq < 0 {
				continue
			}
			name, value := strings.TrimSpace(part[:eq]), strings.TrimSpace(part[eq+1:])
			// A first-byte test spares the cookies the plugin never
			// reads addCookie's frame.
			if name != "" && (name[0] == sessionName[0] || name[0] == pkceCookiePrefix[0] || name[0] == eagerCookieName[0]) {
				addCookie(&rc, name, value, sessionName, &chunks)
			}
		}
	}
	for rc.sessionNames.chunks < maxSessionChunks && chunks[rc.sessionNames.chunks] != "" {
		rc.sessionNames.chunks++
	}
	if rc.sessionNames.chunks > 0 && !rc.sessionNames.single {
		rc.session = strings.Join(chunks[:rc.sessionNames.chunks], "")
	}
	return rc
}

// addCookie records one cookie of the request in rc.
func addCookie(rc *requestCookies, name, value, sessionName string, chunks *[maxSessionChunks]string) {
	switch {
	case name == sessionName:
		if !rc.sessionNames.single {
			rc.sessionNames.single, rc.session = true, value
		}
	case len(name) == len(sessionName)+2 && name[len(sessionName)] == '.' && strings.HasPrefix(name, sessionName):
		i := int(name[len(name)-1] - '0')
		if i >= 0 && i < maxSessionChunks && chunks[i] == "" {
			chunks[i] = value
		}
	case name == eagerCookieName:
		if rc.eager == "" {
			rc.eager = value
		}
	case strings.HasPrefix(name, pkceCookiePrefix) && (len(name) == len(pkceCookiePrefix) || name[len(pkceCookiePrefix)] == '-'):
		rc.pkceNames = append(rc.pkceNames, name)
	}
}

// pkceCookieValue returns the value of the named cookie in the request.
func pkceCookieValue(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}
