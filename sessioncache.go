package authkit

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

const (
	// maxCachedSessions and maxCachedBytes bound the verified-session
	// cache: 100 000 active sessions of an ordinary size (about 390 bytes
	// each, see TestSessionCacheCostIsHonest) fit well inside both.
	maxCachedSessions = 150000
	maxCachedBytes    = 128 << 20
	// maxCacheLifetime makes even a token without exp be verified again
	// now and then, so a key WorkOS retires stops being trusted.
	maxCacheLifetime = jwksMaxAge
	// cacheSweepSteps is how many slots each insert advances the clock
	// hand looking for expired entries, so memory follows the sessions in
	// use; cacheEvictSteps bounds the search for a victim when the cache is
	// full. Both keep an insert's maintenance constant, whatever the size.
	cacheSweepSteps = 2
	cacheEvictSteps = 64
	// cacheTailLength is how much of a credential's end an entry keeps to
	// tell a hash collision from the credential itself. A seal ends with its
	// HMAC and a JWT with its signature, which no one can produce without the
	// credential: the last 16 characters hold 84 bits of them or more (a
	// seal's last two are its version), beside the key's 64.
	cacheTailLength = 16
	// cacheEntryOverhead is what an entry holds beside its principal: the
	// entry, its tail, its share of the index and of the session index,
	// its ring slot (measured, see TestSessionCacheCostIsHonest).
	cacheEntryOverhead = 176
)

// cacheEntry is one verified credential: a session cookie, a bearer token
// or an API key. A nil principal caches a refusal of an authentic
// credential (an API key WorkOS does not know, a token of another issuer),
// so repeating it costs no verification.
type cacheEntry struct {
	key       uint64
	tail      string
	expires   time.Duration // since processStart
	principal *principal
	// young is set when the entry is inserted and cleared by the clock
	// hand: a new entry survives a whole turn of the hand before it can be
	// evicted. Lookups never write it (see sessionCache).
	young bool
	// spent marks a refused session cookie whose deletion is due.
	spent bool
	// slot is the entry's place in the ring; cost its bytes (see
	// principalCost). 32 bits each keep the entry in a smaller size class.
	slot int32
	cost int32
	// nextOfSession chains the entries of one WorkOS session, so a
	// sign-out drops every cookie of it at once.
	nextOfSession *cacheEntry
}

// sessionCache remembers verified credentials, so a signed-in request
// costs a hash and a map lookup instead of PBKDF2, AES and RSA (about
// 400 µs under the interpreter). It is shared by every middleware instance
// of the plugin, each in its own namespace, so instances with different
// passwords, WorkOS clients or decisions never see each other's entries.
//
// Lookups are read-only: a map index under a read lock, which writers
// hold only for one map assignment or deletion, never for maintenance.
// (Against sync.Map, whose trie nodes and boxed keys it does without, the
// map costs about 90 bytes less per entry, and under the interpreter a
// lookup allocates 8 values instead of 15 for a Load and its type
// assertion; see harness/cmd/yaegi-cost. The map keeps the size of its
// fullest moment, which maxCachedSessions bounds to a few MB.) Inserts
// take the cache's lock and do a bounded amount of maintenance: a clock
// hand over a ring of slots drops expired entries as it passes and, when
// the cache is full, evicts the first entry that has already been through
// one turn of the hand, so neither a full cache nor expired entries ever
// cost a scan.
// Lookups do not mark entries as used (under the interpreter that write
// would cost a tenth of a cached request): the order is the order of
// inserts, which is close to the order of expiry, since every entry lives
// until its session's refresh point. An entry evicted early under
// pressure is one whose refresh is near anyway.
type sessionCache struct {
	// index finds an entry by key. Lookups read it under indexMu's read
	// lock; only a holder of mu writes it, under indexMu's lock.
	index   map[uint64]*cacheEntry
	indexMu sync.RWMutex

	mu        sync.Mutex
	ring      []*cacheEntry
	free      []int32 // ring slots without an entry
	hand      int
	count     int
	bytes     int64
	bySession map[string]*cacheEntry
	inserts   int64 // since the last stats event
	evictions int64
	expired   int64

	maxEntries int
	maxBytes   int64
}

func newSessionCache(maxEntries int, maxBytes int64) *sessionCache {
	return &sessionCache{maxEntries: maxEntries, maxBytes: maxBytes,
		index: map[uint64]*cacheEntry{}, bySession: map[string]*cacheEntry{}}
}

var sharedSessions = newSessionCache(maxCachedSessions, maxCachedBytes)

// cacheNamespace is what an instance's entries are keyed with: a hash seed
// of its own.
type cacheNamespace struct {
	seed maphash.Seed
}

// cacheNamespaces gives every distinct configuration (by what a cached
// decision depends on) one namespace for the life of the process, so a
// configuration reload keeps its entries.
var cacheNamespaces = struct {
	sync.Mutex
	byName map[string]*cacheNamespace
}{byName: map[string]*cacheNamespace{}}

func namespaceFor(name string) *cacheNamespace {
	cacheNamespaces.Lock()
	defer cacheNamespaces.Unlock()
	ns := cacheNamespaces.byName[name]
	if ns == nil {
		ns = &cacheNamespace{seed: maphash.MakeSeed()}
		cacheNamespaces.byName[name] = ns
	}
	return ns
}

// processStart is the origin of the cache's clock: entries expire at a
// duration since it, which the fast path reads with one call
// (time.Since), monotonic whatever the wall clock does.
var processStart = time.Now()

// sinceEpoch converts an instance's time to the cache's clock.
func sinceEpoch(a *authKit, t time.Time) time.Duration {
	return t.Sub(a.epoch)
}

// lookupCached returns the live entry for a credential, or nil; now is on
// the cache's clock. It runs on every signed-in request, so it is a plain
// function (a method costs several times as much under the interpreter)
// and hashes the credential in compiled code. Each namespace hashes with
// its own seed, so entries of two namespaces share a key only by a 64-bit
// coincidence, and then the credential's end, which no one can produce
// without the credential, still tells them apart. Lookups only read: the
// cache's order is the order of inserts (see sessionCache).
func lookupCached(c *sessionCache, ns *cacheNamespace, credential string, now time.Duration) *cacheEntry {
	key := maphash.String(ns.seed, credential)
	c.indexMu.RLock()
	e := c.index[key]
	c.indexMu.RUnlock()
	if e == nil || now >= e.expires || !strings.HasSuffix(credential, e.tail) {
		return nil
	}
	return e
}

// storeCached caches a credential's principal (nil: a refusal) until
// expires, capped by maxCacheLifetime. A plain function: every cache miss
// runs it.
func storeCached(c *sessionCache, ns *cacheNamespace, credential string, p *principal, expires, now time.Time) {
	storeEntry(c, ns, credential, p, false, expires, now)
}

// storeSpent caches a session cookie whose refresh token WorkOS refused
// for good: until then, the cookie is refused and deleted without being
// unsealed, verified or refreshed again.
func storeSpent(c *sessionCache, ns *cacheNamespace, credential string, expires, now time.Time) {
	storeEntry(c, ns, credential, nil, true, expires, now)
}

func storeEntry(c *sessionCache, ns *cacheNamespace, credential string, p *principal, spent bool, expires, now time.Time) {
	if limit := now.Add(maxCacheLifetime); expires.After(limit) {
		expires = limit
	}
	if !now.Before(expires) || c.maxEntries == 0 {
		return
	}
	tail := credential
	if len(tail) > cacheTailLength {
		tail = tail[len(tail)-cacheTailLength:]
	}
	e := &cacheEntry{
		key: maphash.String(ns.seed, credential),
		// A copy: the credential is a slice of the request's Cookie or
		// Authorization header, which must not stay in memory with it.
		tail:    strings.Clone(tail),
		expires: expires.Sub(processStart),
		young:   true,
		spent:   spent,
		cost:    cacheEntryOverhead,
	}
	if p != nil {
		e.principal = p
		e.cost += int32(principalCost(p))
	}
	c.mu.Lock()
	insertLocked(c, e, now.Sub(processStart))
	c.mu.Unlock()
}

// insertLocked places e in the map and the ring, replacing any entry under
// the same key, then keeps the bounds. It and the functions it calls run
// on every cache miss, so they are plain functions, not methods.
func insertLocked(c *sessionCache, e *cacheEntry, now time.Duration) {
	c.inserts++
	if old := c.index[e.key]; old != nil { // mu is held: no write races this read
		removeLocked(c, old)
	}
	sweepLocked(c, now)
	for c.count >= c.maxEntries || c.bytes+int64(e.cost) > c.maxBytes {
		if !evictLocked(c) {
			break
		}
	}
	if len(c.free) > 0 {
		e.slot = c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
		c.ring[e.slot] = e
	} else {
		e.slot = int32(len(c.ring))
		c.ring = append(c.ring, e)
	}
	c.count++
	c.bytes += int64(e.cost)
	c.indexMu.Lock()
	c.index[e.key] = e
	c.indexMu.Unlock()
	if e.principal != nil && e.principal.kind == signedInBySession {
		if sid := fieldValue(e.principal, fieldSessionID); sid != "" {
			e.nextOfSession = c.bySession[sid]
			c.bySession[sid] = e
		}
	}
}

// sweepLocked advances the hand a few slots, dropping expired entries.
func sweepLocked(c *sessionCache, now time.Duration) {
	for i := 0; i < cacheSweepSteps && len(c.ring) > 0; i++ {
		c.hand = (c.hand + 1) % len(c.ring)
		if e := c.ring[c.hand]; e != nil && now >= e.expires {
			removeLocked(c, e)
			c.expired++
		}
	}
}

// evictLocked frees one slot: the first entry the hand finds that has
// been through a turn already, clearing the young ones it passes, within
// cacheEvictSteps; else the entry under the hand. It reports false when
// the cache is empty.
func evictLocked(c *sessionCache) bool {
	if c.count == 0 {
		return false
	}
	for i := 0; i < cacheEvictSteps; i++ {
		c.hand = (c.hand + 1) % len(c.ring)
		e := c.ring[c.hand]
		if e == nil {
			continue
		}
		if !e.young {
			removeLocked(c, e)
			c.evictions++
			return true
		}
		e.young = false
	}
	for c.ring[c.hand] == nil {
		c.hand = (c.hand + 1) % len(c.ring)
	}
	removeLocked(c, c.ring[c.hand])
	c.evictions++
	return true
}

// removeLocked takes e out of the map, the ring and the session chain.
func removeLocked(c *sessionCache, e *cacheEntry) {
	if c.ring[e.slot] != e {
		return // already removed
	}
	if c.index[e.key] == e {
		c.indexMu.Lock()
		delete(c.index, e.key)
		c.indexMu.Unlock()
	}
	c.ring[e.slot] = nil
	c.free = append(c.free, e.slot)
	c.count--
	c.bytes -= int64(e.cost)
	if e.principal == nil {
		return
	}
	sid := fieldValue(e.principal, fieldSessionID)
	first := c.bySession[sid]
	if first == e {
		if e.nextOfSession == nil {
			delete(c.bySession, sid)
		} else {
			c.bySession[sid] = e.nextOfSession
		}
		return
	}
	for x := first; x != nil; x = x.nextOfSession {
		if x.nextOfSession == e {
			x.nextOfSession = e.nextOfSession
			return
		}
	}
}

// removeSession drops every cached cookie of a WorkOS session (sign-out).
func (c *sessionCache) removeSession(sessionID string) {
	if sessionID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.bySession[sessionID]; e != nil; e = c.bySession[sessionID] {
		removeLocked(c, e)
	}
}

// cacheStats is a snapshot of the cache for the session_cache event.
type cacheStats struct {
	entries, inserts, evictions, expired int64
	bytes                                int64
}

// takeStats returns the counters and restarts the ones that count events.
func (c *sessionCache) takeStats() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := cacheStats{entries: int64(c.count), bytes: c.bytes, inserts: c.inserts, evictions: c.evictions, expired: c.expired}
	c.inserts, c.evictions, c.expired = 0, 0, 0
	return s
}

func (c *sessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}
