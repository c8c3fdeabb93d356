package soak

import (
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const sessionCookie = "wos-session"

// clientClass is a kind of browser the soak simulates.
type clientClass string

const (
	// classSignedIn holds a token valid for a day: it must be signed in on
	// every protected request, faults or not (nothing needs WorkOS, and the
	// JWKS is cached).
	classSignedIn clientClass = "signed-in"
	// classExpiring starts with an expired token and keeps refreshing (the
	// fake's tokens live 45 s and enter the refresh buffer after 15 s).
	classExpiring clientClass = "expiring"
	// classLossy is classExpiring that drops refreshed responses: the first
	// one, then one in three. Its next request, with the old cookie, must be
	// signed in from the plugin's replay of the refresh.
	classLossy clientClass = "expiring-lossy"
	// classLarge is classExpiring for a user whose metadata makes the
	// refreshed session too big for one cookie: it lives split over
	// wos-session.0, .1, ….
	classLarge clientClass = "expiring-large"
	// classSignedOut sends no session cookie.
	classSignedOut clientClass = "signed-out"
	// classForged sends a different bad session cookie each time.
	classForged clientClass = "forged"
)

// refreshes reports whether the class's sessions go through refreshes.
func (c clientClass) refreshes() bool {
	return c == classExpiring || c == classLossy || c == classLarge
}

// hasSession reports whether the class holds a real session.
func (c clientClass) hasSession() bool {
	return c != classSignedOut && c != classForged
}

// reqKind is a request shape: a page load, an API call or a public page.
type reqKind struct {
	name     string
	path     string
	accept   string
	public   bool
	document bool
}

var (
	kindDocument = reqKind{name: "document", path: "/app/dashboard", accept: "text/html,application/xhtml+xml,*/*;q=0.8", document: true}
	kindJSON     = reqKind{name: "json", path: "/api/items", accept: "application/json"}
	kindPublic   = reqKind{name: "public", path: "/public/info", accept: "text/html", public: true, document: true}
	allKinds     = []reqKind{kindDocument, kindJSON, kindPublic}
)

// client is one simulated browser: its cookie jar, its WorkOS session and
// what happened to it, for failure reports.
type client struct {
	name  string
	class clientClass
	user  string
	org   string
	rng   *mrand.Rand
	jar   browserjar.Jar
	sid   string

	lossPending bool // dropped a refreshed response; the next request checks the replay
	losses      int
	history     []string // the last few requests, newest last
	deletions   []deletion
}

// deletion is a response that removed the client's session cookie.
type deletion struct {
	sid     string
	at      time.Time
	summary string
}

func (c *client) note(line string) {
	const keep = 12
	c.history = append(c.history, line)
	if len(c.history) > keep {
		c.history = c.history[len(c.history)-keep:]
	}
}

func (c *client) report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %s (%s, user %s, session %s); last requests:\n", c.name, c.class, c.user, c.sid)
	for _, h := range c.history {
		b.WriteString("    " + h + "\n")
	}
	return b.String()
}

// outcome is one request and its answer.
type outcome struct {
	kind        reqKind
	start       time.Time
	dur         time.Duration
	fault       string
	sentSession bool
	sidBefore   string
	status      int
	err         error
	user        string // X-Workos-User-Id as the upstream saw it
	sessionID   string // X-Workos-Session-Id as the upstream saw it
	location    string
	contentType string
	setCookies  []string
}

func (o outcome) signedIn() bool { return o.status == http.StatusOK && o.user != "" }

// refreshedCookie reports a Set-Cookie that writes a session value.
func (o outcome) refreshedCookie() bool {
	for _, sc := range o.setCookies {
		if c, err := http.ParseSetCookie(sc); err == nil && browserjar.IsSessionCookie(c.Name) && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

// splitCookie reports a Set-Cookie that writes a numbered session part.
func (o outcome) splitCookie() bool {
	for _, sc := range o.setCookies {
		c, err := http.ParseSetCookie(sc)
		if err == nil && strings.HasPrefix(c.Name, sessionCookie+".") && c.Value != "" && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}

func (o outcome) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s (fault: %s, cookie sent: %t) → ", o.start.Format("15:04:05.000"), o.kind.name, o.kind.path, o.fault, o.sentSession)
	if o.err != nil {
		fmt.Fprintf(&b, "error %v", o.err)
	} else {
		fmt.Fprintf(&b, "%d in %s", o.status, o.dur.Round(time.Millisecond))
	}
	if o.user != "" {
		fmt.Fprintf(&b, ", upstream saw %s/%s", o.user, o.sessionID)
	}
	for _, sc := range o.setCookies {
		name, rest, _ := strings.Cut(sc, "=")
		value, attrs, _ := strings.Cut(rest, ";")
		fmt.Fprintf(&b, ", Set-Cookie %s=<%d bytes>;%s", name, len(value), attrs)
	}
	return b.String()
}

// do sends one request with the given Cookie header. extra headers come
// from forged clients (spoofed identity headers).
func (r *run) do(kind reqKind, cookies string, extra map[string]string) outcome {
	o := outcome{kind: kind, start: time.Now(), fault: r.activeFault(), sentSession: strings.Contains(cookies, sessionCookie)}
	req, err := http.NewRequest(http.MethodGet, r.traefikURL+kind.path, nil)
	if err != nil {
		o.err = err
		return o
	}
	req.Header.Set("Accept", kind.accept)
	if cookies != "" {
		req.Header.Set("Cookie", cookies)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := r.httpClient.Do(req)
	o.dur = time.Since(o.start)
	if err != nil {
		o.err = err
		return o
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	o.dur = time.Since(o.start)
	o.status = resp.StatusCode
	o.user = resp.Header.Get("X-Upstream-User")
	o.sessionID = resp.Header.Get("X-Upstream-Session")
	o.location = resp.Header.Get("Location")
	o.contentType = resp.Header.Get("Content-Type")
	o.setCookies = resp.Header.Values("Set-Cookie")
	return o
}

// visit makes one client act once, as its class does.
func (r *run) visit(c *client) {
	if c.class.refreshes() && !c.lossPending && c.rng.IntN(sleepOdds) == 0 {
		if err := r.sleep(c); err != nil {
			r.violations.add("setup", err.Error(), c.sid)
		}
	}
	switch c.class {
	case classExpiring, classLarge:
		if c.rng.IntN(4) == 0 {
			r.burst(c, 3) // a page and its assets, all with the same cookie
			return
		}
	case classForged:
		if c.rng.IntN(3) != 0 {
			return // forgeries are a minority; each may cost a refresh call
		}
		f := forgeries[c.rng.IntN(len(forgeries))]
		for f.refreshes && r.spareFaults.Load() {
			f = forgeries[c.rng.IntN(len(forgeries))]
		}
		jar := browserjar.Jar{}
		for _, ck := range f.make(r.forger, c.rng) {
			jar[ck.Name] = ck.Value
		}
		spoof := map[string]string{"X-Workos-User-Id": fakeworkos.UserAlice, "X-Workos-Session-Id": "session_spoofed"}
		o := r.do(allKinds[c.rng.IntN(len(allKinds))], jar.Header(), spoof)
		o.fault += "; forgery: " + f.name
		r.settle(c, o)
		return
	}
	kind := allKinds[c.rng.IntN(len(allKinds))]
	if c.lossPending {
		kind = kindJSON
	}
	r.settle(c, r.send(c, kind))
}

func (r *run) send(c *client, kind reqKind) outcome {
	o := r.do(kind, c.jar.Header(), nil)
	o.sidBefore = c.sid
	return o
}

// burst sends n requests at once with the same cookies and handles the
// answers in the order they arrive, as a browser loading a page does.
func (r *run) burst(c *client, n int) {
	outs := make([]outcome, n)
	cookies := c.jar.Header()
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			kind := kindJSON
			if i == 0 {
				kind = kindDocument
			}
			outs[i] = r.do(kind, cookies, nil)
			outs[i].sidBefore = c.sid
		}(i)
	}
	wg.Wait()
	sort.Slice(outs, func(i, j int) bool { return outs[i].start.Add(outs[i].dur).Before(outs[j].start.Add(outs[j].dur)) })
	for _, o := range outs {
		r.settle(c, o)
	}
}

// settle records, checks and absorbs one answer.
func (r *run) settle(c *client, o outcome) {
	r.stats.record(c.class, o)
	c.note(o.summary())
	r.check(c, o)
	r.absorb(c, o)
}

// check applies the per-request invariants.
func (r *run) check(c *client, o outcome) {
	fail := func(kind, why string) {
		r.violations.add(kind, fmt.Sprintf("%s\n  %s", why, c.report()), c.sid)
	}
	if o.err != nil {
		fail("request failed", "transport error: "+o.err.Error())
		return
	}
	if o.status >= 500 {
		fail("5xx answer", fmt.Sprintf("status %d on %s", o.status, o.kind.path))
	}
	for _, sc := range o.setCookies {
		if len(sc) > 4096 {
			fail("Set-Cookie over 4096 bytes", fmt.Sprintf("Set-Cookie of %d bytes: %.60s…", len(sc), sc))
		}
	}
	switch {
	case o.status >= 500:
	case o.kind.public:
		if o.status != http.StatusOK {
			fail("public path not served", fmt.Sprintf("status %d on public %s", o.status, o.kind.path))
		}
	case o.signedIn():
	case o.status == http.StatusOK:
		fail("protected path served without identity", fmt.Sprintf("200 on %s but the upstream saw no user", o.kind.path))
	case o.kind.document:
		if o.status != http.StatusTemporaryRedirect || !strings.HasPrefix(o.location, r.fakeURL+"/user_management/authorize?") {
			fail("bad signed-out answer", fmt.Sprintf("document request got %d Location %q, want 307 to the authorize URL", o.status, o.location))
		}
	default:
		if o.status != http.StatusUnauthorized || !strings.Contains(o.contentType, "json") {
			fail("bad signed-out answer", fmt.Sprintf("API request got %d (%s), want 401 JSON", o.status, o.contentType))
		}
	}

	if !c.class.hasSession() {
		if o.user != "" {
			fail("signed in without a valid session", fmt.Sprintf("the upstream saw user %q session %q", o.user, o.sessionID))
		}
		return
	}
	if o.user != "" && (o.user != c.user || o.sessionID != o.sidBefore) {
		fail("identity mix-up", fmt.Sprintf("the upstream saw %s/%s, the client is %s/%s", o.user, o.sessionID, c.user, o.sidBefore))
	}
	if c.class == classSignedIn && !o.kind.public && !o.signedIn() {
		fail("long-lived session signed out", fmt.Sprintf("status %d for a session whose token is valid for a day", o.status))
	}
	if c.lossPending && !o.signedIn() {
		fail("lost refresh not replayed", fmt.Sprintf("after dropping a refreshed response, the old cookie got %d", o.status))
	}
}

// absorb updates the jar from the answer, unless the client chooses to lose
// it, and replaces a session the plugin deleted by signing in again.
func (r *run) absorb(c *client, o outcome) {
	if o.err != nil || c.class == classForged {
		return
	}
	if o.sidBefore != c.sid {
		return // an answer for a session this client has already replaced
	}
	refreshed := o.refreshedCookie()
	if c.lossPending {
		c.lossPending = false
		if o.signedIn() {
			r.stats.replayed.Add(1)
		}
	} else if c.class == classLossy && refreshed && (c.losses == 0 || c.rng.IntN(3) == 0) {
		c.losses++
		c.lossPending = true
		r.stats.lost.Add(1)
		c.note("    (dropped that response: the next request keeps the old cookie)")
		return
	}
	had := c.jar.HasSession()
	c.jar.Apply(o.setCookies, time.Now())
	if refreshed {
		r.stats.refreshed.Add(1)
		if o.splitCookie() {
			r.stats.split.Add(1)
		}
	}
	if c.class.hasSession() && had && !c.jar.HasSession() {
		c.deletions = append(c.deletions, deletion{sid: c.sid, at: o.start, summary: o.summary()})
		r.stats.deleted.Add(1)
		if err := r.signIn(c); err != nil {
			r.violations.add("setup", err.Error(), "")
		}
	}
}

// signIn gives c a new WorkOS session and the cookie a sign-in would have
// set. Signed-in clients get a token valid for a day; the others an
// already expired one, so their first request must refresh.
func (r *run) signIn(c *client) error {
	issued, err := r.fake.IssueSession(fakeworkos.SessionParams{UserID: c.user, OrganizationID: c.org})
	if err != nil {
		return err
	}
	expiresIn := 24 * time.Hour
	if c.class != classSignedIn {
		expiresIn = -time.Duration(1+c.rng.IntN(600)) * time.Second
	}
	token, err := r.fake.MintSessionToken(issued.SessionID, expiresIn)
	if err != nil {
		return err
	}
	var user struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal(issued.User, &user); err != nil {
		return err
	}
	// The user object as authkit-nextjs seals it (camelCase SDK form);
	// its id is the token's sub, which the plugin checks.
	payload, err := json.Marshal(map[string]any{
		"accessToken":  token,
		"refreshToken": issued.RefreshToken,
		"user":         map[string]any{"object": "user", "id": user.ID, "email": user.Email},
	})
	if err != nil {
		return err
	}
	sealed, err := r.keyring.Seal(payload, 0, time.Now())
	if err != nil {
		return err
	}
	r.recorder.register(issued.RefreshToken, issued.SessionID)
	c.jar.SetSession(sealed)
	c.sid = issued.SessionID
	c.lossPending = false
	return nil
}

// sleep is a browser that stayed away until its access token expired: the
// cookie keeps its session and refresh token, but its token is replaced by
// an expired one, so the next request must refresh — maybe in a fault.
func (r *run) sleep(c *client) error {
	plain, err := r.keyring.Unseal(c.jar.Session(), time.Now())
	if err != nil {
		return fmt.Errorf("client %s: unsealing its own cookie: %w", c.name, err)
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(plain, &payload); err != nil {
		return err
	}
	token, err := r.fake.MintSessionToken(c.sid, -time.Duration(1+c.rng.IntN(300))*time.Second)
	if err != nil {
		return err
	}
	payload["accessToken"], _ = json.Marshal(token)
	plain, _ = json.Marshal(payload)
	sealed, err := r.keyring.Seal(plain, 0, time.Now())
	if err != nil {
		return err
	}
	c.jar.SetSession(sealed)
	r.stats.slept.Add(1)
	c.note("    (slept: the cookie now carries an expired access token)")
	return nil
}
