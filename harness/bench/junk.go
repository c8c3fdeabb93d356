// Package bench measures the plugin as Traefik runs it: loaded into yaegi by
// the harness loader (the same way Traefik's plugin loader does), next to
// the same code compiled, in front of an upstream that does nothing.
//
//	go test -run '^$' -bench . -skip Plugin/junk-cookie -count 6 ./bench | tee new.txt
//	go test -run '^$' -bench Plugin/junk-cookie -benchtime 20x -count 6 ./bench | tee -a new.txt
//	benchstat new.txt
//
// This file holds what cmd/bench-traefik shares with the benchmarks: the
// hostile Cookie headers.
package bench

import (
	"strconv"
	"strings"
)

// The kinds of junk Cookie header JunkCookie builds.
const (
	// JunkPlain is many short cookies, none of them the plugin's.
	JunkPlain = "plain"
	// JunkWithSessionPrefix has one cookie named "wos-session.x" among
	// them, so the header holds the prefix of a split session's parts.
	JunkWithSessionPrefix = "with-session-prefix"
	// JunkAllSessionPrefix has every cookie named "wos-session.c<n>".
	JunkAllSessionPrefix = "all-session-prefix"
)

// JunkVariants are the kinds, in the order the benchmarks run them.
var JunkVariants = []string{JunkPlain, JunkWithSessionPrefix, JunkAllSessionPrefix}

// JunkCookie returns a Cookie header value of exactly size bytes (size of
// at least 64) made of many short cookies, "c0=v0; c1=v1; …", as a broken
// or hostile client might send; the last value is padded to the size.
// variant is one of JunkVariants.
func JunkCookie(size int, variant string) string {
	prefix := "c"
	if variant == JunkAllSessionPrefix {
		prefix = "wos-session.c"
	}
	oneSession := variant == JunkWithSessionPrefix
	var b strings.Builder
	b.Grow(size)
	for i := 0; ; i++ {
		cookie := prefix + strconv.Itoa(i) + "=v" + strconv.Itoa(i)
		if oneSession && b.Len() >= size/2 {
			cookie, oneSession = "wos-session.x=v", false
		}
		sep := "; "
		if b.Len() == 0 {
			sep = ""
		}
		if b.Len()+len(sep)+len(cookie) > size {
			break
		}
		b.WriteString(sep)
		b.WriteString(cookie)
	}
	for b.Len() < size {
		b.WriteByte('v')
	}
	return b.String()
}
