package authkit

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

const testCookiePassword = "this-is-a-test-cookie-password-0123456789abcdef"

func mustKeyring(t testing.TB, passwords map[string]string) *Keyring {
	t.Helper()
	k, err := NewKeyring(passwords)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hexOf(b []byte) string  { return hex.EncodeToString(b) }
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
