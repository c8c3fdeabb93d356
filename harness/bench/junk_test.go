package bench

import (
	"strings"
	"testing"
)

// Each junk header has the size asked for, is a list of name=value cookies,
// and holds "wos-session." as its variant says.
func TestJunkCookie(t *testing.T) {
	for _, variant := range JunkVariants {
		for _, size := range []int{64, 1 << 10, 150 << 10} {
			c := JunkCookie(size, variant)
			if len(c) != size {
				t.Errorf("%s %d: %d bytes", variant, size, len(c))
			}
			// net/http parses at most 3000 cookies (GODEBUG httpcookiemaxnum),
			// so each one is checked against the name=value form here.
			cookies := strings.Split(c, "; ")
			for _, cookie := range cookies {
				name, value, ok := strings.Cut(cookie, "=")
				if !ok || name == "" || value == "" || strings.ContainsAny(cookie, " ;,\"") {
					t.Fatalf("%s %d: cookie %q", variant, size, cookie)
				}
			}
			if len(cookies) < 2 {
				t.Errorf("%s %d: %d cookies", variant, size, len(cookies))
			}
			want := map[string]int{JunkPlain: 0, JunkWithSessionPrefix: 1, JunkAllSessionPrefix: len(cookies)}[variant]
			if got := strings.Count(c, "wos-session."); got != want {
				t.Errorf("%s %d: %d cookies named wos-session.*, want %d", variant, size, got, want)
			}
		}
	}
}
