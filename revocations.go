package authkit

import (
	"sync"
	"time"
)

// maxRevocations bounds the signed-out sessions remembered; past it the
// oldest goes first (its tokens are the nearest to expiry).
const maxRevocations = 100000

// revocationSet remembers the WorkOS sessions signed out through this
// process, so a copy of a cookie taken before the sign-out is refused at
// once: WorkOS revokes the refresh token, but an access token stays valid
// until it expires, and a refresh result kept for the grace window would
// otherwise bring the session back. An entry lasts as long as a token of
// the session can live.
type revocationSet struct {
	mu    sync.Mutex
	until map[string]time.Time
	order []string // session ids in insertion order, for expiry and the bound
	head  int
}

var sharedRevocations = newRevocationSet()

func newRevocationSet() *revocationSet {
	return &revocationSet{until: map[string]time.Time{}}
}

// add revokes sessionID until the given time.
func (s *revocationSet) add(sessionID string, until, now time.Time) {
	if sessionID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	if old, ok := s.until[sessionID]; ok && !old.Before(until) {
		return
	}
	if _, ok := s.until[sessionID]; !ok {
		s.order = append(s.order, sessionID)
	}
	s.until[sessionID] = until
	for len(s.until) > maxRevocations && s.head < len(s.order) {
		delete(s.until, s.order[s.head])
		s.head++
	}
}

// isRevoked reports whether sessionID was signed out and may still have
// live tokens. A plain function: every cache miss runs it.
func isRevoked(s *revocationSet, sessionID string, now time.Time) bool {
	if sessionID == "" {
		return false
	}
	s.mu.Lock()
	until, ok := s.until[sessionID]
	s.mu.Unlock()
	return ok && now.Before(until)
}

// expireLocked drops, in insertion order, a few entries whose time is
// over. Entries are added with similar lifetimes, so the order is close to
// the order of expiry; one that lives longer only waits its turn.
func (s *revocationSet) expireLocked(now time.Time) {
	for n := 0; n < 8 && s.head < len(s.order); n++ {
		id := s.order[s.head]
		if until, ok := s.until[id]; ok && now.Before(until) {
			break
		}
		delete(s.until, id)
		s.head++
	}
	if s.head > 0 && s.head >= len(s.order)/2 {
		s.order = append([]string(nil), s.order[s.head:]...)
		s.head = 0
	}
}
