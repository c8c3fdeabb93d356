// Package browser drives Debian's headless Chromium from Go tests, so the
// plugin's redirects, cookies and pages are checked by a real browser (its
// cookie rules, SameSite handling and redirect following), not by a Go HTTP
// client's idea of them.
//
// Each helper fails the test on error and returns plain values, so a test
// reads as the steps a person takes.
package browser

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/traefik-authkit/authkit/harness/syncbuf"
)

// DefaultExecPath is where Debian's chromium package puts the browser.
const DefaultExecPath = "/usr/bin/chromium"

// ExecPathEnv overrides the browser binary.
const ExecPathEnv = "AUTHKIT_CHROMIUM"

// RequireEnv, when set, turns a missing browser into a failure instead of a
// skip; harness/test.sh sets it (the same variable that requires Traefik).
const RequireEnv = "AUTHKIT_REQUIRE_TRAEFIK"

// TestDomain is a name that Chromium resolves, with all its subdomains, to
// 127.0.0.1 and reaches without the dead proxy: for tests of several sites
// (app.example.test, auth.example.test, acme.tenants.example.test) that
// share cookies through a Domain attribute, which an IP address or
// localhost cannot have. The .test top-level domain is reserved (RFC 6761),
// so no real site is ever reached this way.
const TestDomain = "example.test"

// actionTimeout bounds every helper, so a selector that never appears fails
// the test with a message instead of hanging the run.
const actionTimeout = 20 * time.Second

// Browser is one headless Chromium with its own empty profile (so no cookie
// survives from another test) and one tab.
type Browser struct {
	t      testing.TB
	ctx    context.Context
	output *syncbuf.Buffer
}

// New starts Chromium for the test and closes it at cleanup; Chromium's own
// output is logged when the test failed. A missing binary skips the test
// unless RequireEnv is set.
func New(t testing.TB) *Browser {
	t.Helper()
	execPath := os.Getenv(ExecPathEnv)
	if execPath == "" {
		execPath = DefaultExecPath
	}
	if _, err := os.Stat(execPath); err != nil {
		msg := "Chromium not found at " + execPath + " (apt-get install -y chromium)"
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s and %s is set", msg, RequireEnv)
		}
		t.Skipf("%s; set %s=1 to make this a failure", msg, RequireEnv)
	}

	out := &syncbuf.Buffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // running as root in a container
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tests may reach only this machine: every non-loopback request
		// goes to a proxy that does not exist and fails at once, while
		// localhost, *.localhost and 127.0.0.0/8 bypass proxies implicitly.
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
		// TestDomain and its subdomains are this machine too, and are
		// not proxied. The port of the URL is kept.
		chromedp.Flag("host-resolver-rules", "MAP "+TestDomain+" 127.0.0.1, MAP *."+TestDomain+" 127.0.0.1"),
		chromedp.Flag("proxy-bypass-list", TestDomain+";*."+TestDomain),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		t.Logf("chromedp: "+format, args...)
	}))
	b := &Browser{t: t, ctx: ctx, output: out}

	// The first Run starts the browser; it must use the long-lived
	// context, as a timeout on it would end the whole browser.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start Chromium: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		if t.Failed() {
			t.Logf("Chromium output:\n%s", out.String())
		}
	})
	return b
}

// run runs one action with the per-action timeout and fails the test with
// what was being done.
func run[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// Navigate loads url in the tab and waits for the load event, following
// redirects as a browser does.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	run(b, "navigate to "+url, chromedp.Navigate(url))
}

// Click clicks the first element matching the CSS selector, waiting for it
// to be visible first.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	run(b, "click "+selector, chromedp.Click(chromedp.CSS(selector)))
}

// Text returns the visible text of the first element matching the CSS
// selector, waiting for it to exist.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return run(b, "text of "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// WaitVisible waits until an element matching the CSS selector is shown,
// for pages reached by a click or a script rather than by Navigate.
func (b *Browser) WaitVisible(selector string) {
	b.t.Helper()
	run(b, "wait for "+selector, chromedp.WaitVisible(chromedp.CSS(selector)))
}

// WaitPath waits until the tab's URL has the given path, for navigations
// started by a click or a script (a redirect chain included), and returns
// the full URL. It fails the test after the action timeout.
func (b *Browser) WaitPath(path string) string {
	b.t.Helper()
	deadline := time.Now().Add(actionTimeout)
	for {
		loc := b.Location()
		if u, err := url.Parse(loc); err == nil && u.Path == path {
			return loc
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: still at %s after %s, want path %s", loc, actionTimeout, path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Location returns the tab's current URL (after any redirects).
func (b *Browser) Location() string {
	b.t.Helper()
	return run(b, "read location", chromedp.Location())
}

// Cookies returns the cookies the browser would send to the current page,
// HttpOnly ones included: what the plugin set, as the browser stored it.
func (b *Browser) Cookies() []*network.Cookie {
	b.t.Helper()
	return b.CookiesFor()
}

// CookiesFor returns the cookies the browser would send to any of urls,
// HttpOnly ones included, wherever the tab is: for cookies of a site the
// tab is not on (a sign-in page on another origin). Without urls, those of
// the current page.
func (b *Browser) CookiesFor(urls ...string) []*network.Cookie {
	b.t.Helper()
	return run(b, "read cookies", func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: urls})
		if err != nil {
			return nil, err
		}
		return res.Cookies, nil
	})
}

// Cookie returns the named cookie for the current page, or nil.
func (b *Browser) Cookie(name string) *network.Cookie {
	b.t.Helper()
	for _, c := range b.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Output returns what Chromium printed so far.
func (b *Browser) Output() string { return b.output.String() }
