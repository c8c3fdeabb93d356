package hostile

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/bench"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// SPEC "Bounded work": the Cookie header is searched for the plugin's
// cookies without visiting every cookie in interpreted code.

const (
	// hugeCookieBytes stays under Traefik's default maxHeaderBytes (1 MiB):
	// the whole header block must fit, or Traefik answers 431 itself.
	hugeCookieBytes = 900 << 10
	// hugeCookieRounds requests are timed per Cookie header, after one
	// that opens the connection.
	hugeCookieRounds = 9
	// hugeCookieBound is what one request may take. It is generous: this
	// machine is shared, and the plugin's own share is far below it.
	hugeCookieBound = 2 * time.Second
	// hugeCookieMargin is how much the plugin may add to the median of the
	// slower baseline. Its own share is about a millisecond (harness/bench
	// junk-cookie); loopback TCP alone puts some runs' medians 30 ms apart.
	// A plugin that visited every cookie in interpreted code adds hundreds.
	hugeCookieMargin = 150 * time.Millisecond
)

// hugeCookieTarget is one router and Cookie header the huge Cookie test
// times.
type hugeCookieTarget struct {
	name     string
	s        *stack
	path     string
	cookie   string
	baseline bool // Traefik without the plugin
}

// timeRequest sends one anonymous request for path with cookie, which
// must reach the upstream with the whole Cookie header (not a 431 from
// Traefik, not the plugin's answer); it returns how long the answer took.
func (s *stack) timeRequest(path, cookie string) time.Duration {
	s.t.Helper()
	req := s.request(http.MethodGet, path, "json", cookie, nil)
	start := time.Now()
	resp, body := s.do(req)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("%s: status %d: %.200s", path, resp.StatusCode, body)
	}
	e := s.echo(resp, body)
	if got, want := e.Headers.Get("Cookie"), fmt.Sprintf("<%d bytes>", len(cookie)); got != want {
		s.t.Fatalf("%s: upstream Cookie %.60q, want %s", path, got, want)
	}
	return elapsed
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }

// TestHugeCookieHeadersAreServed sends ~900 KiB Cookie headers of ~60 000
// short cookies to a public path, anonymously: plain, with one
// wos-session.x among them, and with every name starting wos-session.
// Each reaches the upstream (Traefik's 1 MiB header limit is not hit, so
// no 431) within hugeCookieBound, and the median adds at most
// hugeCookieMargin to Traefik's without a middleware and with a do-nothing
// plugin. Rounds go through every target in turn, so all the medians see
// the same machine. A real session after 5 000 junk cookies still signs
// in.
func TestHugeCookieHeadersAreServed(t *testing.T) {
	s := startStack(t, nil)
	noop := &stack{t: t, client: newClient()}
	noop.traefik = startTraefik(t, newUpstream(t).URL, map[string]any{}, doNothingPlugin(t))
	noop.host = strings.TrimPrefix(noop.traefik.URL, "http://")

	plain := bench.JunkCookie(hugeCookieBytes, bench.JunkPlain)
	t.Logf("Cookie headers of %d bytes, %d cookies", len(plain), strings.Count(plain, ";")+1)
	var targets []hugeCookieTarget
	for _, variant := range bench.JunkVariants {
		targets = append(targets, hugeCookieTarget{"plugin, " + variant, s, publicPath, bench.JunkCookie(hugeCookieBytes, variant), false})
	}
	targets = append(targets,
		hugeCookieTarget{"baseline: no middleware, " + bench.JunkPlain, s, bareRouter + "page", plain, true},
		hugeCookieTarget{"baseline: do-nothing plugin, " + bench.JunkPlain, noop, publicPath, plain, true},
	)
	took := make([][]time.Duration, len(targets))
	for round := 0; round <= hugeCookieRounds; round++ {
		for i, target := range targets {
			elapsed := target.s.timeRequest(target.path, target.cookie)
			if elapsed > hugeCookieBound {
				t.Errorf("%s, round %d: %s, bound %s", target.name, round, ms(elapsed), hugeCookieBound)
			}
			if round > 0 { // round 0 opens the connections
				took[i] = append(took[i], elapsed)
			}
		}
	}
	medians := make([]time.Duration, len(targets))
	var reference time.Duration
	for i, target := range targets {
		slices.Sort(took[i])
		medians[i] = took[i][len(took[i])/2]
		if target.baseline {
			reference = max(reference, medians[i])
		}
		t.Logf("%-40s median %8s  min %8s  max %8s", target.name, ms(medians[i]), ms(took[i][0]), ms(took[i][len(took[i])-1]))
	}
	for i, target := range targets {
		if !target.baseline && medians[i] > reference+hugeCookieMargin {
			t.Errorf("%s: median %s, more than %s above the baselines' %s", target.name, ms(medians[i]), hugeCookieMargin, ms(reference))
		}
	}

	t.Run("signed in after 5000 junk cookies", func(t *testing.T) {
		s := s.on(t)
		cookie, _ := s.session(fakeworkos.UserBob, "", 0)
		var junk strings.Builder
		for i := 0; i < 5000; i++ {
			junk.WriteString("c" + strconv.Itoa(i) + "=v; ")
		}
		e := s.echo(s.do(s.request(http.MethodGet, protectedPath, "json", junk.String()+cookie, nil)))
		if got := e.Headers.Get("X-Workos-User-Id"); got != fakeworkos.UserBob {
			t.Errorf("upstream X-Workos-User-Id %q, want %q", got, fakeworkos.UserBob)
		}
	})
}

// doNothingPlugin writes harness/bench/noop as a plugin Traefik loads
// under the module name the harness gives every plugin: Go module
// github.com/traefik-authkit/authkit, package authkit.
func doNothingPlugin(t *testing.T) string {
	t.Helper()
	root, err := loader.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "harness", "bench", "noop", "noop.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module " + loader.ModuleName + "\n\ngo 1.21\n",
		"noop.go": strings.Replace(string(src), "package noop", "package authkit", 1),
		loader.ManifestFile: "displayName: do nothing\ntype: middleware\nimport: " + loader.ModuleName +
			"\nsummary: Calls the next handler.\ntestData:\n  unused: true\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
