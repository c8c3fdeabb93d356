package fakeworkos

import (
	"net/http"
	"time"
)

// maxSpentTokens bounds the rotations remembered for the replay grace,
// whatever the grace: far more than WorkOS's own write budget (500 per
// 10 s, H.2) lets a client rotate within a 30 s grace.
const maxSpentTokens = 20000

// spentToken is one rotation, kept so that a replay of the refresh token
// it spent can be answered with the very pair it produced (H.1).
type spentToken struct {
	sessionID string
	rotatedAt time.Time
	// requestedOrg is the organization_id the rotation named ("" when it
	// named none); switched tells whether that moved the session.
	requestedOrg string
	switched     bool
	resp         authResponse
}

// orgMatches reports whether a replay naming orgID asks for what the
// rotation did. After a switch the replay must name the same
// organization; otherwise it may name none or the session's.
func (sp *spentToken) orgMatches(orgID string) bool {
	if sp.switched {
		return orgID == sp.requestedOrg
	}
	return orgID == "" || orgID == sp.resp.OrganizationID
}

// SetRefreshGrace sets the replay grace: a refresh token rotated less than
// d ago answers the same new pair again instead of invalid_grant. Zero
// (the default) is strict single use and forgets earlier rotations.
func (s *Server) SetRefreshGrace(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d < 0 {
		d = 0
	}
	s.grace = d
	if d == 0 {
		s.spent = map[string]*spentToken{}
		s.spentOrder = nil
	}
}

// Rotations returns how many refresh grants issued a new refresh token.
// Replays answered from the grace do not count.
func (s *Server) Rotations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotations
}

// GraceReplays returns how many refreshes were answered from the grace.
func (s *Server) GraceReplays() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graceReplays
}

// recordSpentLocked remembers a rotation while a grace is set, dropping
// the records the grace no longer covers (and the oldest beyond
// maxSpentTokens) so memory stays bounded.
func (s *Server) recordSpentLocked(token, sessionID, requestedOrg string, switched bool, resp authResponse) {
	if s.grace <= 0 {
		return
	}
	now := s.now()
	for len(s.spentOrder) > 0 {
		oldest := s.spentOrder[0]
		sp := s.spent[oldest]
		if sp != nil && now.Sub(sp.rotatedAt) < s.grace && len(s.spentOrder) < maxSpentTokens {
			break
		}
		delete(s.spent, oldest)
		s.spentOrder = s.spentOrder[1:]
	}
	s.spent[token] = &spentToken{
		sessionID:    sessionID,
		rotatedAt:    now,
		requestedOrg: requestedOrg,
		switched:     switched,
		resp:         resp,
	}
	s.spentOrder = append(s.spentOrder, token)
}

// replayLocked answers a refresh token that no session holds: from the
// grace when it was rotated less than the grace ago, for a session still
// alive, asking for the same organization; otherwise invalid_grant.
func (s *Server) replayLocked(b authenticateBody) (int, any) {
	sp := s.spent[b.RefreshToken]
	if sp == nil || s.grace <= 0 || s.now().Sub(sp.rotatedAt) >= s.grace {
		return invalid(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid, revoked or already used.")
	}
	sess := s.sessions[sp.sessionID]
	if sess == nil || sess.revoked {
		return invalid(http.StatusBadRequest, "invalid_grant", "The session has ended.")
	}
	if !sp.orgMatches(b.OrganizationID) {
		return invalid(http.StatusBadRequest, "invalid_grant", "The refresh token was already used for another organization.")
	}
	s.graceReplays++
	return http.StatusOK, sp.resp
}
