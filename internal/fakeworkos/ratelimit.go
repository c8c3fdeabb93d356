package fakeworkos

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// rateWindow is the sliding window of WorkOS's AuthKit write limit (H.2).
const rateWindow = 10 * time.Second

// SetWriteRateLimit allows n POSTs to /user_management/* in any 10 s
// window; n <= 0 removes the limit. Either way the window starts empty.
func (s *Server) SetWriteRateLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		n = 0
	}
	s.writeLimit = n
	s.writeTimes = nil
}

// RateLimited returns how many requests the write limit answered with 429.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}

// limitWrite answers 429 for a write beyond the limit and reports whether
// it did. Only accepted writes fill the window, so a client that keeps
// retrying early is refused but does not push its own wait further out.
// The window runs on the fake's clock, so tests can slide it.
func (s *Server) limitWrite(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/user_management/") {
		return false
	}
	s.mu.Lock()
	if s.writeLimit <= 0 {
		s.mu.Unlock()
		return false
	}
	now := s.now()
	expired := 0
	for expired < len(s.writeTimes) && now.Sub(s.writeTimes[expired]) >= rateWindow {
		expired++
	}
	s.writeTimes = s.writeTimes[expired:]
	if len(s.writeTimes) < s.writeLimit {
		s.writeTimes = append(s.writeTimes, now)
		s.mu.Unlock()
		return false
	}
	s.rateLimited++
	wait := s.writeTimes[0].Add(rateWindow).Sub(now)
	s.mu.Unlock()
	retry := int((wait + time.Second - 1) / time.Second)
	if retry < 1 {
		retry = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	writeJSON(w, http.StatusTooManyRequests, apiError{Code: "rate_limit_exceeded", Message: "Too many write requests to /user_management; retry after " + strconv.Itoa(retry) + " s."})
	return true
}
