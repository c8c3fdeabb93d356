package scale

import (
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/traefik-authkit/authkit/harness/browserjar"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
)

// The pieces that read the plugin and the answers, checked without
// Traefik, so a change in them shows up in a second.

func TestCacheEventParsing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tl := newTimeline(t0)
	// 1000 signed-in answers in the first minute, 2000 in the second.
	for i := 0; i < 1000; i++ {
		tl.add(t0.Add(time.Duration(i)*50*time.Millisecond+time.Millisecond), mSignedInAll, 1)
	}
	for i := 0; i < 2000; i++ {
		tl.add(t0.Add(time.Minute+time.Duration(i)*25*time.Millisecond+time.Millisecond), mSignedInAll, 1)
	}
	line := func(at time.Time, inserts int) string {
		return fmt.Sprintf(`{"time":%q,"level":"DEBUG","msg":"session_cache","plugin":"traefik-authkit","middleware":"authkit@file","entries":900,"bytes":123456,"inserts":%d,"evictions":3,"expired":4}`,
			at.Format(time.RFC3339Nano), inserts)
	}
	tl.onTraefikLine(t0.Add(time.Minute), line(t0.Add(time.Minute), 100))
	tl.onTraefikLine(t0.Add(2*time.Minute), line(t0.Add(2*time.Minute), 10))
	tl.onTraefikLine(t0, `{"time":"2026-01-01T12:00:00Z","level":"DEBUG","msg":"session cookie unusable","plugin":"traefik-authkit","reason":"iron: malformed seal"}`)
	tl.onTraefikLine(t0, `2026-01-01T12:00:00Z ERR some Traefik error`)

	evs := tl.cacheEvents()
	if len(evs) != 2 || evs[0].Entries != 900 || evs[0].Inserts != 100 || evs[1].Evictions != 3 || evs[1].Expired != 4 || evs[1].Bytes != 123456 {
		t.Fatalf("events = %+v", evs)
	}
	if !evs[1].since.Equal(evs[0].Time) || !evs[0].since.Equal(t0) {
		t.Fatalf("intervals: %v %v", evs[0].since, evs[1].since)
	}
	rate, inserts, signedIn, ok := tl.hitRate(evs[1:])
	if !ok || inserts != 10 || signedIn != 2000 || rate != 1-10.0/2000 {
		t.Fatalf("hit rate of the second minute = %v (%d inserts, %d signed in, %t)", rate, inserts, signedIn, ok)
	}
	if rate, _, signedIn, _ := tl.hitRate(evs); signedIn != 3000 || rate != 1-110.0/3000 {
		t.Fatalf("hit rate of both = %v over %d", rate, signedIn)
	}
	if tl.plugins["session cookie unusable"] != 1 || tl.plugins["session_cache"] != 2 || tl.nOthers != 1 {
		t.Fatalf("lines by msg %v, others %d", tl.plugins, tl.nOthers)
	}
	if _, _, _, ok := tl.hitRate(nil); ok {
		t.Fatal("no events must give no hit rate")
	}
}

func TestForgedSealShape(t *testing.T) {
	shape := regexp.MustCompile(`^Fe26\.2\*1\*[0-9a-f]{64}\*[A-Za-z0-9_-]{22}\*[A-Za-z0-9_-]+\*\*[0-9a-f]{64}\*[A-Za-z0-9_-]{43}~2$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := forgedSeal()
		if !shape.MatchString(s) {
			t.Fatalf("not seal-shaped: %s", s)
		}
		if seen[s] {
			t.Fatal("forged seals repeat")
		}
		seen[s] = true
	}
}

func TestApplySetCookies(t *testing.T) {
	now := time.Now()
	jar := map[string]string{sessionCookie: "old"}
	// A refresh that splits the session: the whole cookie goes, the parts come.
	written, deleted := applySetCookies(jar, []string{
		"wos-session=; Path=/; Max-Age=0; HttpOnly",
		"wos-session.0=aaa; Path=/; HttpOnly", "wos-session.1=bbb; Path=/; HttpOnly", "theme=dark",
	}, now)
	if !written || deleted || len(jar) != 2 || browserjar.Jar(jar).Header() != "wos-session.0=aaa; wos-session.1=bbb" {
		t.Fatalf("split: written %t deleted %t jar %v", written, deleted, jar)
	}
	written, deleted = applySetCookies(jar, []string{
		"wos-session.0=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "wos-session.1=; Path=/; Max-Age=0",
	}, now)
	if written || !deleted || len(jar) != 0 {
		t.Fatalf("deletion: written %t deleted %t jar %v", written, deleted, jar)
	}
}

func TestAutoTTL(t *testing.T) {
	// 3000 sessions at 250 req/s: 225 signed-in req/s, 200 requests each per lifetime.
	if got := autoTTL(3000, 250); got != 60*time.Second+2667*time.Second {
		t.Fatalf("autoTTL(3000, 250) = %s", got)
	}
}

func TestProcReaders(t *testing.T) {
	busy := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(busy) {
	}
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Fatalf("cpuSeconds = %v, %v", cpu, err)
	}
	if rss, err := traefiktest.RSSMiB(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("RSSMiB = %v, %v", rss, err)
	}
	if loadAverage() < 0 {
		t.Fatal("negative load")
	}
}
