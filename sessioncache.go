package authkit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"sort"
	"sync"
	"time"
)

const (
	// maxCachedSessions bounds the verified-session cache. An entry holds
	// the cookie (≈3 KB for a typical session) and the decoded claims, so the
	// bound keeps the cache under about 50 MB however many sessions arrive.
	maxCachedSessions = 10000
	// maxCacheLifetime makes even a token without exp be verified again
	// now and then, so a key WorkOS retires stops being trusted.
	maxCacheLifetime = jwksMaxAge
)

// cachedSession is a session whose cookie was unsealed and whose token was
// verified and not yet expiring.
type cachedSession struct {
	namespace  string
	sealed     string
	session    *session // without fields: the cache never rewrites a cookie
	claims     *tokenClaims
	identity   []headerField
	validUntil time.Time
}

// sessionCache remembers verified sessions by cookie value, so a signed-in
// request costs a hash and a map lookup instead of PBKDF2, AES and RSA (about
// 120 µs under the interpreter). It is shared by every middleware instance
// of the plugin; the namespace keeps instances with different passwords or
// WorkOS clients apart. Entries stop at the token's refresh point, so the
// refresh path never sees a cached session.
type sessionCache struct {
	seed    maphash.Seed
	mu      sync.RWMutex
	entries map[uint64]*cachedSession
	max     int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{seed: maphash.MakeSeed(), entries: map[uint64]*cachedSession{}, max: max}
}

var sharedSessions = newSessionCache(maxCachedSessions)

// cacheNamespace identifies what a cached verification depends on: the
// WorkOS client (its JWKS) and the cookie passwords.
func cacheNamespace(s *settings) string {
	ids := make([]string, 0, len(s.keyring.passwords))
	for id := range s.keyring.passwords {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	h := sha256.New()
	h.Write([]byte(s.apiBaseURL + "\x00" + s.clientID))
	for _, id := range ids {
		h.Write([]byte("\x00" + id + "\x00"))
		h.Write(s.keyring.passwords[id])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// get returns the verified session for a cookie value, or nil. The keyed
// hash only finds the slot; the stored cookie must equal the presented one.
func (c *sessionCache) get(namespace, sealed string, now time.Time) *cachedSession {
	key := maphash.String(c.seed, sealed)
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	if e == nil || e.sealed != sealed || e.namespace != namespace || !now.Before(e.validUntil) {
		return nil
	}
	return e
}

// put caches a verified session until validUntil, capped by maxCacheLifetime.
func (c *sessionCache) put(namespace, sealed string, sess *session, claims *tokenClaims, identity []headerField, validUntil, now time.Time) {
	if limit := now.Add(maxCacheLifetime); validUntil.After(limit) {
		validUntil = limit
	}
	if !now.Before(validUntil) || c.max == 0 {
		return
	}
	stripped := *sess
	stripped.fields = nil
	e := &cachedSession{namespace: namespace, sealed: sealed, session: &stripped, claims: claims, identity: identity, validUntil: validUntil}
	key := maphash.String(c.seed, sealed)
	c.mu.Lock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = e
	c.mu.Unlock()
}

// remove forgets a cookie value (sign-out).
func (c *sessionCache) remove(sealed string) {
	key := maphash.String(c.seed, sealed)
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

// evictLocked drops expired entries, then arbitrary ones (map order is
// random) until a sixteenth of the capacity is free, so eviction runs
// rarely instead of on every insert of a full cache.
func (c *sessionCache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.validUntil) {
			delete(c.entries, k)
		}
	}
	target := c.max - c.max/16
	for k := range c.entries {
		if len(c.entries) <= target {
			return
		}
		delete(c.entries, k)
	}
}

func (c *sessionCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
