// Command ironcli seals and unseals with the plugin's Fe26.2 code so that
// interop tests written against the real iron-session (Node.js) can drive it.
//
//	IRON_PASSWORDS='{"1":"…"}' ironcli seal TTL_SECONDS < plaintext
//	IRON_PASSWORDS='{"1":"…"}' ironcli unseal < sealed
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/traefik-authkit/authkit"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ironcli:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var passwords map[string]string
	if err := json.Unmarshal([]byte(os.Getenv("IRON_PASSWORDS")), &passwords); err != nil {
		return fmt.Errorf("IRON_PASSWORDS: %v", err)
	}
	keyring, err := authkit.NewKeyring(passwords)
	if err != nil {
		return err
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	switch {
	case len(args) == 2 && args[0] == "seal":
		ttl, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("ttl: %v", err)
		}
		sealed, err := keyring.Seal(input, time.Duration(ttl)*time.Second, time.Now())
		if err != nil {
			return err
		}
		fmt.Print(sealed)
	case len(args) == 1 && args[0] == "unseal":
		plain, err := keyring.Unseal(strings.TrimSpace(string(input)), time.Now())
		if err != nil {
			return err
		}
		os.Stdout.Write(plain)
	default:
		return fmt.Errorf("usage: ironcli seal TTL_SECONDS | ironcli unseal")
	}
	return nil
}
