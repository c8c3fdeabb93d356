package authkit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Iron "Fe26.2" seals, byte-compatible with iron-session 8 / iron-webcrypto
// (WORKOS-PROTOCOL.md section A). Errors are sentinel values compared with ==:
// errors.As does not work under Traefik's interpreter.
var (
	ErrSealMalformed       = errors.New("iron: malformed seal")
	ErrSealBadMAC          = errors.New("iron: bad hmac value")
	ErrSealExpired         = errors.New("iron: expired seal")
	ErrSealUnknownPassword = errors.New("iron: cannot find password")
)

const (
	ironPrefix        = "Fe26.2"
	ironVersionSuffix = "~2"
	ironSaltHexLen    = 64 // 256 random bits, hex-encoded
	ironIVLen         = 16
	ironKeyLen        = 32
	ironMACLen        = sha256.Size
	ironSkew          = 60 * time.Second
	// MinPasswordLength is iron's minimum, counted in UTF-16 code units as JS does.
	MinPasswordLength = 32
	// maxSealLength bounds the work one request can cause; a session split over
	// several cookies stays far below it.
	maxSealLength = 64 << 10
)

// Keyring holds the cookie passwords by id. It seals with the highest numeric
// id and unseals with whichever id the seal names, which is how iron-session
// rotates passwords.
type Keyring struct {
	passwords map[string][]byte
	sealID    string
}

// NewKeyring validates the passwords (ids are decimal integers, passwords at
// least MinPasswordLength UTF-16 code units) and picks the sealing id.
func NewKeyring(passwords map[string]string) (*Keyring, error) {
	if len(passwords) == 0 {
		return nil, errors.New("no cookie password")
	}
	ids := make([]string, 0, len(passwords))
	for id := range passwords {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	k := &Keyring{passwords: make(map[string][]byte, len(passwords))}
	highest := int64(-1)
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			return nil, errors.New("cookie password id " + strconv.Quote(id) + " is not a non-negative integer")
		}
		if utf16Length(passwords[id]) < MinPasswordLength {
			return nil, errors.New("cookie password " + id + " is shorter than 32 characters")
		}
		k.passwords[id] = []byte(passwords[id])
		if n > highest {
			highest, k.sealID = n, id
		}
	}
	return k, nil
}

// utf16Length counts a string as JavaScript's String.length does.
func utf16Length(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// Seal encrypts plaintext into an iron-session cookie value ("Fe26.2*…~2").
// A ttl of 0 leaves the expiration empty, as authkit-nextjs does for sessions.
func (k *Keyring) Seal(plaintext []byte, ttl time.Duration, now time.Time) (string, error) {
	password := k.passwords[k.sealID]
	encSalt, err := randomHex(ironSaltHexLen / 2)
	if err != nil {
		return "", err
	}
	macSalt, err := randomHex(ironSaltHexLen / 2)
	if err != nil {
		return "", err
	}
	iv := make([]byte, ironIVLen)
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	block, err := aes.NewCipher(ironKey(password, encSalt))
	if err != nil {
		return "", err
	}
	padding := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+padding)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(padding)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)

	expiration := ""
	if ttl > 0 {
		expiration = strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)
	}
	base := ironPrefix + "*" + k.sealID + "*" + encSalt + "*" +
		base64.RawURLEncoding.EncodeToString(iv) + "*" +
		base64.RawURLEncoding.EncodeToString(buf) + "*" + expiration
	mac := ironMAC(password, macSalt, base)
	return base + "*" + macSalt + "*" + base64.RawURLEncoding.EncodeToString(mac) + ironVersionSuffix, nil
}

// Unseal checks and decrypts a cookie value made by Seal or by iron-session.
// The checks run in iron-webcrypto's order, expiry before the MAC, and every
// length is checked before a cipher sees the data.
func (k *Keyring) Unseal(value string, now time.Time) ([]byte, error) {
	return unseal(k, value, now)
}

// unseal is Unseal for the plugin's own per-request use, a plain function
// because a method call costs about three times as much under the
// interpreter.
func unseal(k *Keyring, value string, now time.Time) ([]byte, error) {
	seal, err := ironStripVersion(value)
	if err != nil {
		return nil, err
	}
	if strings.Count(seal, "*") != 7 {
		return nil, ErrSealMalformed
	}
	parts := strings.Split(seal, "*")
	prefix, id, encSalt, ivText, cipherText, expiration, macSalt, macText :=
		parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7]
	if prefix != ironPrefix {
		return nil, ErrSealMalformed
	}
	if expiration != "" {
		ms, err := strconv.ParseUint(expiration, 10, 63)
		if err != nil {
			return nil, ErrSealMalformed
		}
		if int64(ms) <= now.Add(-ironSkew).UnixMilli() {
			return nil, ErrSealExpired
		}
	}
	if id == "" {
		id = "default"
	}
	password, ok := k.passwords[id]
	if !ok {
		return nil, ErrSealUnknownPassword
	}
	// Strict: iron-webcrypto compares the digest's text, so another
	// spelling of the same bytes is refused as it is there. Even strict
	// decoding skips CR and LF, so those are refused first.
	mac, err := base64.RawURLEncoding.Strict().DecodeString(macText)
	if err != nil || len(mac) != ironMACLen || strings.ContainsAny(macText, "\r\n") {
		return nil, ErrSealBadMAC
	}
	base := seal[:len(seal)-len(macSalt)-len(macText)-2]
	if !hmac.Equal(mac, ironMAC(password, macSalt, base)) {
		return nil, ErrSealBadMAC
	}
	// Authentic from here on: what remains can only fail for a seal made
	// with a bug, not by tampering.
	iv, err := base64.RawURLEncoding.DecodeString(ivText)
	if err != nil || len(iv) != ironIVLen {
		return nil, ErrSealMalformed
	}
	buf, err := base64.RawURLEncoding.DecodeString(cipherText)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, ErrSealMalformed
	}
	block, err := aes.NewCipher(ironKey(password, encSalt))
	if err != nil {
		return nil, ErrSealMalformed
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
	padding := int(buf[len(buf)-1])
	if padding == 0 || padding > aes.BlockSize {
		return nil, ErrSealMalformed
	}
	for i := len(buf) - padding; i < len(buf); i++ {
		if int(buf[i]) != padding {
			return nil, ErrSealMalformed
		}
	}
	return buf[:len(buf)-padding], nil
}

// ironStripVersion removes iron-session's "~2" marker. iron-session reads any
// other version as a legacy seal whose payload AuthKit cannot use.
func ironStripVersion(value string) (string, error) {
	if len(value) > maxSealLength {
		return "", ErrSealMalformed
	}
	i := strings.IndexByte(value, '~')
	if i < 0 {
		return "", ErrSealMalformed
	}
	version := value[i+1:]
	if j := strings.IndexByte(version, '~'); j >= 0 {
		version = version[:j]
	}
	if version != "2" {
		return "", ErrSealMalformed
	}
	return value[:i], nil
}

// ironKey derives a 32-byte key with PBKDF2-HMAC-SHA1 and one iteration (A.2):
// with one iteration each 20-byte PBKDF2 block is a single HMAC over the salt
// and the block counter. The salt is the hex string's own bytes, not the bytes
// it encodes. (crypto/pbkdf2 is newer than the interpreter's library.)
func ironKey(password []byte, salt string) []byte {
	prf := hmac.New(sha1.New, password)
	key := make([]byte, 0, 2*sha1.Size)
	for _, counter := range [2]byte{1, 2} {
		prf.Reset()
		prf.Write([]byte(salt))
		prf.Write([]byte{0, 0, 0, counter})
		key = prf.Sum(key)
	}
	return key[:ironKeyLen]
}

func ironMAC(password []byte, salt, message string) []byte {
	h := hmac.New(sha256.New, ironKey(password, salt))
	h.Write([]byte(message))
	return h.Sum(nil)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
