// Command yaegi-cost measures what Go constructs cost under Traefik's
// interpreter (yaegi v0.16.1): it interprets a Go file of package main and
// calls each function named on the command line, of type
// func(http.Header) int, with a header map like the one a request through
// Traefik has (ten names), printing allocations and time per call. A
// function that returns at once costs the call itself; subtract it.
//
//	cd harness && go run ./cmd/yaegi-cost cmd/yaegi-cost/constructs.go.txt Empty HeaderLookup
//
// constructs.go.txt holds the measurements README (Performance) quotes
// (a .txt so the Go tools leave it alone).
package main

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: yaegi-cost FILE FUNCTION...")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	i := interp.New(interp.Options{})
	if err := i.Use(stdlib.Symbols); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := i.Eval(string(src)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := http.Header{}
	for _, name := range []string{"Accept", "Accept-Encoding", "Cookie", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Server", "X-Real-Ip"} {
		h.Set(name, "v")
	}
	for _, name := range os.Args[2:] {
		v, err := i.Eval("main." + name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f, ok := v.Interface().(func(http.Header) int)
		if !ok {
			fmt.Fprintf(os.Stderr, "%s is not a func(http.Header) int\n", name)
			os.Exit(1)
		}
		allocs := testing.AllocsPerRun(1000, func() { f(h) })
		r := testing.Benchmark(func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				f(h)
			}
		})
		fmt.Printf("%-22s %6.1f allocs %7d ns\n", name, allocs, r.NsPerOp())
	}
}
