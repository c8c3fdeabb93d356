package authkit

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxCachedSessions and maxCachedBytes bound the verified-session
	// cache, by count and by the bytes of the cookies and headers it holds
	// (a session with large user metadata is a 9 KB cookie).
	maxCachedSessions = 10000
	maxCachedBytes    = 32 << 20
	// maxCacheLifetime makes even a token without exp be verified again
	// now and then, so a key WorkOS retires stops being trusted.
	maxCacheLifetime = jwksMaxAge
	// cachePruneEvery is how many inserts pass, at least, between sweeps
	// of expired entries, so memory follows the sessions in use, not the
	// bounds. A sweep visits every entry with an interpreted callback (a
	// few µs each), so a larger cache sweeps after a quarter of its size:
	// the sweep's cost per insert stays a few entries.
	cachePruneEvery = 256
	// cacheEntryOverhead approximates what an entry holds beside its
	// cookie and header values: claims, session, map slot.
	cacheEntryOverhead = 1024
)

// cachedSession is a session whose cookie was unsealed and whose token was
// verified and not yet expiring.
type cachedSession struct {
	namespace  string
	sealed     string
	validUntil time.Time
	cost       int64 // approximate bytes held
	// result is what a request with this cookie learns, shared read-only
	// by every such request; its session keeps no payload, as the cache never
	// rewrites a cookie.
	result *authResult
}

// sessionCache remembers verified sessions by cookie value, so a signed-in
// request costs a map lookup instead of PBKDF2, AES and RSA (about
// 120 µs under the interpreter). It is shared by every middleware instance
// of the plugin; the namespace keeps instances with different passwords or
// WorkOS clients apart. Entries stop at the token's refresh point, so the
// refresh path never sees a cached session.
type sessionCache struct {
	entries  sync.Map // sealed cookie → *cachedSession; one call per lookup
	size     atomic.Int64
	bytes    atomic.Int64
	inserts  atomic.Int64 // since the last sweep
	max      int64
	maxBytes int64
	evictMu  sync.Mutex
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: int64(max), maxBytes: maxCachedBytes}
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

// lookupSession returns the verified session cached for a cookie value (or
// bearer token), or nil. The whole value is the key: sync.Map hashes and
// compares it in compiled code. It is a plain function because the
// signed-in fast path calls it, where a method call costs several times as
// much under the interpreter.
func lookupSession(c *sessionCache, namespace, sealed string, now time.Time) *cachedSession {
	v, _ := c.entries.Load(sealed)
	e, _ := v.(*cachedSession)
	if e == nil || e.namespace != namespace || !now.Before(e.validUntil) {
		return nil
	}
	return e
}

// putSession caches a verified session until validUntil, capped by maxCacheLifetime.
func putSession(c *sessionCache, namespace, sealed string, sess *session, claims *tokenClaims, identity []headerField, validUntil, now time.Time) {
	if limit := now.Add(maxCacheLifetime); validUntil.After(limit) {
		validUntil = limit
	}
	if !now.Before(validUntil) || c.max == 0 {
		return
	}
	// A nil session caches a bearer token's verification: sealed is then
	// the token, and namespace keeps it apart from cookies.
	result := &authResult{signedIn: true, bearer: sess == nil, claims: claims, identity: identity}
	if sess != nil {
		stripped := *sess
		stripped.payload = nil // two statements: yaegi cannot lay out
		stripped.fields = nil  // the frame of "a, b = nil, nil"
		result.session, result.sealed = &stripped, sealed
	}
	cost := int64(len(sealed) + cacheEntryOverhead)
	for _, f := range identity {
		cost += int64(len(f.name) + len(f.value[0]))
	}
	e := &cachedSession{namespace: namespace, sealed: sealed, validUntil: validUntil, cost: cost, result: result}
	old, replaced := c.entries.Swap(sealed, e)
	c.bytes.Add(cost)
	if replaced {
		c.bytes.Add(-old.(*cachedSession).cost)
	} else {
		c.size.Add(1)
	}
	sweepAfter := c.size.Load() / 4
	if sweepAfter < cachePruneEvery {
		sweepAfter = cachePruneEvery
	}
	if c.size.Load() > c.max || c.bytes.Load() > c.maxBytes || c.inserts.Add(1) >= sweepAfter {
		c.evict(now, sealed)
	}
}

// remove forgets a cookie value (sign-out).
func (c *sessionCache) remove(sealed string) {
	c.drop(sealed)
}

// evict drops expired entries; then, while over a bound, arbitrary ones but
// keep (map order is random) until a sixteenth of the room is free, so
// eviction does not run again on the next insert.
func (c *sessionCache) evict(now time.Time, keep string) {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	c.inserts.Store(0)
	c.entries.Range(func(key, value any) bool {
		if !now.Before(value.(*cachedSession).validUntil) {
			c.drop(key)
		}
		return true
	})
	targetSize, targetBytes := c.max-c.max/16, c.maxBytes-c.maxBytes/16
	c.entries.Range(func(key, value any) bool {
		if c.size.Load() <= targetSize && c.bytes.Load() <= targetBytes {
			return false
		}
		if key.(string) != keep {
			c.drop(key)
		}
		return true
	})
}

func (c *sessionCache) drop(key any) {
	if old, ok := c.entries.LoadAndDelete(key); ok {
		c.size.Add(-1)
		c.bytes.Add(-old.(*cachedSession).cost)
	}
}

func (c *sessionCache) len() int { return int(c.size.Load()) }
