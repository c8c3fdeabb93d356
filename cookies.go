package authkit

import (
	"errors"
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

// errSessionTooLarge refuses a session that would need more cookies than
// the plugin reads back (maxSessionChunks): writing it would sign the user
// out on the next request and start a sign-in loop.
var errSessionTooLarge = errors.New("session: too large for " + strconv.Itoa(maxSessionChunks) + " cookies")

// sessionCookies returns the Set-Cookie values that store a sealed session.
// A seal that fits goes in one cookie under the configured name, as
// authkit-nextjs writes it; a longer one is split into name.0, name.1, …
// Parts and forms the request carried but the new value does not use are
// deleted, so no stale part is ever reassembled.
func (c cookieSettings) sessionCookies(sealed string, secure bool, present sessionCookieNames) ([]string, error) {
	attrs := c.attributes(c.sameSite, c.maxAge, secure)
	if len(c.name)+1+len(sealed)+len(attrs) <= maxCookieLength {
		out := []string{c.name + "=" + sealed + attrs}
		for i := 0; i < present.chunks; i++ {
			out = append(out, c.deletion(c.chunkName(i), secure))
		}
		return out, nil
	}
	room := maxCookieLength - len(c.name) - len(".9=") - len(attrs)
	if (len(sealed)+room-1)/room > maxSessionChunks {
		return nil, errSessionTooLarge
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
	return out, nil
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

// requestCookies is what the plugin reads from the Cookie header.
type requestCookies struct {
	session      string // the sealed session, reassembled when split
	sessionNames sessionCookieNames
	eager        string
	pkceNames    []string // wos-auth-verifier and wos-auth-verifier-*
}

const (
	// maxCookieMatches is how many occurrences of each of the plugin's
	// cookie names one request may make the reader examine. A browser
	// sends at most a session in maxSessionChunks parts, a few verifier
	// cookies and the eager cookie, each perhaps twice (set for two paths);
	// anything past the bound is ignored, so a crafted header costs no
	// more than a normal one.
	maxCookieMatches = 32
	// maxCookieLines bounds the Cookie header lines examined: browsers send
	// one (HTTP/2 crumbs are joined by the server).
	maxCookieLines = 8
)

// cookieScan walks the cookies of a Cookie line whose names start with
// prefix, without visiting the others: strings.Index finds each
// occurrence in compiled code, and budget bounds the occurrences examined
// (those inside another cookie's value count too).
type cookieScan struct {
	line, prefix string
	pos          int // where the next search starts
	budget       int
	exhausted    bool // budget ran out while occurrences remained
}

// nextCookie advances s to the next cookie whose name starts with the
// prefix, and returns its name, its value and the offsets of its first
// byte and of its end (the ';' after it, or the end of the line). Names
// and values are trimmed of blanks as net/http trims them.
func nextCookie(s *cookieScan) (name, value string, start, end int, ok bool) {
	for {
		if s.budget == 0 {
			s.exhausted = strings.Contains(s.line[s.pos:], s.prefix)
			return "", "", 0, 0, false
		}
		i := strings.Index(s.line[s.pos:], s.prefix)
		if i < 0 {
			return "", "", 0, 0, false
		}
		s.budget--
		start = s.pos + i
		s.pos = start + len(s.prefix)
		// A cookie starts the line or follows a ';' and blanks; anything
		// else is the prefix inside another cookie's name or value.
		if before := strings.TrimRight(s.line[:start], " \t"); before != "" && before[len(before)-1] != ';' {
			continue
		}
		end = strings.IndexByte(s.line[start:], ';')
		if end < 0 {
			end = len(s.line)
		} else {
			end += start
		}
		cookie := s.line[start:end]
		eq := strings.IndexByte(cookie, '=')
		if eq < 0 {
			continue
		}
		s.pos = end
		return strings.TrimRight(cookie[:eq], " \t"), strings.TrimSpace(cookie[eq+1:]), start, end, true
	}
}

// Which of the plugin's cookies readCookies looks for: each kind costs a
// scan of the Cookie header.
const (
	readSession = 1 << iota
	readEager
	readPKCE
	readAll = readSession | readEager | readPKCE
)

// readCookies finds the plugin's cookies of the kinds asked for in the
// Cookie lines: the session (whole or in parts), the eager access token and
// the PKCE verifiers. When a name repeats (a cookie set for several paths
// or domains), the first one wins, which is the most specific one browsers
// send first. Each kind has its own function, so a cache miss, which asks
// for the session alone, allocates no frame slots for the others under the
// interpreter.
func readCookies(lines []string, sessionName string, kinds int) requestCookies {
	var rc requestCookies
	if len(lines) > maxCookieLines {
		lines = lines[:maxCookieLines]
	}
	if kinds&readSession != 0 {
		readSessionCookies(&rc, lines, sessionName)
	}
	if kinds&readPKCE != 0 {
		readPKCECookies(&rc, lines)
	}
	if kinds&readEager != 0 {
		rc.eager = findCookie(lines, eagerCookieName)
	}
	return rc
}

// readSessionCookies reads the session cookie, or its numbered parts
// joined in order.
func readSessionCookies(rc *requestCookies, lines []string, sessionName string) {
	var chunks [maxSessionChunks]string
	s := cookieScan{prefix: sessionName, budget: maxCookieMatches}
	for _, line := range lines {
		s.line, s.pos = line, 0
		for {
			name, value, _, _, ok := nextCookie(&s)
			if !ok {
				break
			}
			addSessionCookie(rc, &chunks, name, value, sessionName)
		}
	}
	for rc.sessionNames.chunks < maxSessionChunks && chunks[rc.sessionNames.chunks] != "" {
		rc.sessionNames.chunks++
	}
	if rc.sessionNames.chunks > 0 && !rc.sessionNames.single {
		rc.session = strings.Join(chunks[:rc.sessionNames.chunks], "")
	}
}

// readPKCECookies lists the verifier cookies' names.
func readPKCECookies(rc *requestCookies, lines []string) {
	s := cookieScan{prefix: pkceCookiePrefix, budget: maxCookieMatches}
	for _, line := range lines {
		s.line, s.pos = line, 0
		for {
			name, _, _, _, ok := nextCookie(&s)
			if !ok {
				break
			}
			if isPKCECookieName(name) && len(rc.pkceNames) < maxCookieMatches {
				rc.pkceNames = append(rc.pkceNames, name)
			}
		}
	}
}

// addSessionCookie records a cookie whose name starts with the session
// cookie's: the session itself, or one of its numbered parts.
func addSessionCookie(rc *requestCookies, chunks *[maxSessionChunks]string, name, value, sessionName string) {
	if name == sessionName {
		if !rc.sessionNames.single {
			rc.sessionNames.single, rc.session = true, value
		}
		return
	}
	if i := chunkIndex(name, sessionName); i >= 0 && chunks[i] == "" {
		chunks[i] = value
	}
}

// chunkIndex is the part number of a split session's cookie name
// ("<name>.<n>", n < maxSessionChunks), or -1.
func chunkIndex(name, sessionName string) int {
	if len(name) != len(sessionName)+2 || name[len(sessionName)] != '.' || !strings.HasPrefix(name, sessionName) {
		return -1
	}
	i := int(name[len(name)-1]) - '0'
	if i < 0 || i >= maxSessionChunks {
		return -1
	}
	return i
}

// isPKCECookieName reports whether name is a verifier cookie's:
// wos-auth-verifier, or wos-auth-verifier-<hash>.
func isPKCECookieName(name string) bool {
	return name == pkceCookiePrefix || (len(name) > len(pkceCookiePrefix) && name[len(pkceCookiePrefix)] == '-')
}

// findCookie returns the value of the first cookie called name.
func findCookie(lines []string, name string) string {
	if len(lines) > maxCookieLines {
		lines = lines[:maxCookieLines]
	}
	s := cookieScan{prefix: name, budget: maxCookieMatches}
	for _, line := range lines {
		s.line, s.pos = line, 0
		for {
			found, value, _, _, ok := nextCookie(&s)
			if !ok {
				break
			}
			if found == name {
				return value
			}
		}
	}
	return ""
}
