#!/usr/bin/env bash
# Prints, for every function of the plugin, how many frame slots yaegi
# v0.16.1 allocates each time it is called: one per parameter, variable and
# intermediate value of the function body, whether that code runs or not.
# Under the interpreter this count, not the number of statements that run,
# is most of what a call costs (README, Performance). It builds a copy of
# yaegi with one print added where a function's frame is laid out, under
# .cache/, and only compiles the plugin: nothing runs.
#
#   ./scripts/slots.sh            # every function, most slots first
#   ./scripts/slots.sh ServeHTTP  # functions whose name matches
set -euo pipefail
. "$(dirname "$0")/tools.sh"
work="$repo_root/.cache/yaegi-slots"
if [ ! -x "$work/slots" ]; then
  src=$(cd "$repo_root/harness" && go list -m -f '{{.Dir}}' "github.com/traefik/yaegi@$yaegi_version" 2>/dev/null || true)
  if [ -z "$src" ]; then
    GOFLAGS= go mod download "github.com/traefik/yaegi@$yaegi_version"
    src=$(GOFLAGS= go mod download -json "github.com/traefik/yaegi@$yaegi_version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  fi
  rm -rf "$work" && mkdir -p "$work" && cp -r "$src" "$work/yaegi" && chmod -R u+w "$work/yaegi"
  cfg="$work/yaegi/interp/cfg.go"
  # After a function declaration's frame is laid out, print its size.
  awk '
    /^\t\tcase funcDecl:$/ { infunc = 1 }
    { print }
    infunc && /n\.types, n\.scope = sc\.types, sc/ {
      print "\t\t\tfmt.Fprintf(os.Stderr, \"%5d %s\\n\", len(sc.types), n.child[1].ident)"
      infunc = 0
    }
  ' "$cfg" > "$cfg.new" && mv "$cfg.new" "$cfg"
  grep -q '"os"' "$cfg" || sed -i '0,/^import (/s//import (\n\t"os"/' "$cfg"
  cat > "$work/go.mod" <<MOD
module slots

go 1.21

require github.com/traefik/yaegi $yaegi_version

replace github.com/traefik/yaegi => ./yaegi
MOD
  cat > "$work/main.go" <<'GO'
// Command slots imports a package from a GOPATH into the patched yaegi,
// which prints each function's frame size as it compiles it.
package main

import (
	"fmt"
	"os"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

func main() {
	i := interp.New(interp.Options{GoPath: os.Args[1]})
	i.Use(stdlib.Symbols)
	if _, err := i.Eval(`import "` + os.Args[2] + `"`); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
GO
  (cd "$work" && GOFLAGS= go mod tidy >/dev/null 2>&1 && GOFLAGS= go build -o slots .)
fi
gopath=$(gopath_copy)
"$work/slots" "$gopath" github.com/traefik-authkit/authkit 2>&1 >/dev/null | sort -rn | grep -E "${1:-.}"
