package fakeworkos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// APIKeyParams describes an API key created by a test. UserID set gives a
// user-owned key (owner.organization_id is OrganizationID); otherwise the
// organization owns it.
type APIKeyParams struct {
	Name           string
	OrganizationID string
	// UserID is a user id or email; the user must belong to
	// OrganizationID.
	UserID      string
	Permissions []string
	// ExpiresAt is when the key stops being valid; zero means never.
	ExpiresAt time.Time
}

// APIKey is a key the fake validates. Value is the secret a client
// presents; the API only ever shows its obfuscated form.
type APIKey struct {
	ID             string
	Value          string
	Name           string
	OrganizationID string
	UserID         string
	Permissions    []string
	ExpiresAt      time.Time
	CreatedAt      time.Time
	LastUsedAt     time.Time
	Revoked        bool
}

// apiKeyOwner is the owner object of H.5.
type apiKeyOwner struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	OrganizationID string `json:"organization_id,omitempty"`
}

// apiKeyObject is the API form of a key (H.5). Optional times are
// pointers because the API sends null for them.
type apiKeyObject struct {
	Object          string      `json:"object"`
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Owner           apiKeyOwner `json:"owner"`
	ObfuscatedValue string      `json:"obfuscated_value"`
	Permissions     []string    `json:"permissions"`
	LastUsedAt      *string     `json:"last_used_at"`
	ExpiresAt       *string     `json:"expires_at"`
	CreatedAt       string      `json:"created_at"`
	UpdatedAt       string      `json:"updated_at"`
}

// apiKeyValidation is the body of POST /api_keys/validations: api_key is
// null for a value the fake does not know.
type apiKeyValidation struct {
	APIKey *apiKeyObject `json:"api_key"`
}

type apiKeyValidationBody struct {
	Value string `json:"value"`
}

// base62 is the alphabet of generated key values.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// CreateAPIKey creates a key the validation endpoint will accept. Its
// value is "sk_" plus 40 random base62 characters, never one already
// handed out.
func (s *Server) CreateAPIKey(p APIKeyParams) (APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.OrganizationID == "" {
		return APIKey{}, fmt.Errorf("fakeworkos: an API key needs an OrganizationID")
	}
	userID := ""
	if p.UserID != "" {
		user, found := s.userLocked(p.UserID)
		if !found {
			return APIKey{}, fmt.Errorf("fakeworkos: unknown user %q", p.UserID)
		}
		if _, member := user.membership(p.OrganizationID); !member {
			return APIKey{}, fmt.Errorf("fakeworkos: %s is not a member of %q", user.Email, p.OrganizationID)
		}
		userID = user.ID
	}
	value := newAPIKeyValue()
	for s.apiKeyValues[value] != "" || value == s.apiKey {
		value = newAPIKeyValue()
	}
	k := &APIKey{
		ID:             randomID("api_key_"),
		Value:          value,
		Name:           p.Name,
		OrganizationID: p.OrganizationID,
		UserID:         userID,
		Permissions:    append([]string{}, p.Permissions...),
		ExpiresAt:      p.ExpiresAt,
		CreatedAt:      s.now(),
	}
	s.apiKeys[k.ID] = k
	s.apiKeyValues[k.Value] = k.ID
	return copyAPIKey(k), nil
}

// RevokeAPIKey makes the key with id unknown to validation from now on.
// An unknown id is ignored.
func (s *Server) RevokeAPIKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.apiKeys[id]
	if k == nil {
		return
	}
	k.Revoked = true
	delete(s.apiKeyValues, k.Value)
}

// APIKeyValidations returns how many validation requests got past fault
// injection, whatever their answer.
func (s *Server) APIKeyValidations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKeyChecks
}

func copyAPIKey(k *APIKey) APIKey {
	out := *k
	out.Permissions = append([]string{}, k.Permissions...)
	return out
}

func newAPIKeyValue() string {
	b := randomBytes(40)
	for i := 0; i < len(b); i++ {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return "sk_" + string(b)
}

// validateAPIKey handles POST /api_keys/validations (H.5).
func (s *Server) validateAPIKey(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.apiKeyChecks++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Code: "method_not_allowed", Message: "Use POST."})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthorized", Message: `The Authorization header must be "Bearer <API key>".`})
		return
	}
	var b apiKeyValidationBody
	raw, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(raw, &b)
	}
	if err != nil || b.Value == "" {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Code: "invalid_request_parameters", Message: `The body must be JSON {"value": "<API key>"}.`})
		return
	}
	writeJSON(w, http.StatusOK, s.checkAPIKey(b.Value))
}

// checkAPIKey looks value up. An expired key is still returned, with its
// expires_at in the past: the caller (the plugin) is the one that must
// refuse it, so a test can show that it does. The answer shows the
// previous use; a use of a key that has not expired is then recorded.
func (s *Server) checkAPIKey(value string) apiKeyValidation {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.apiKeys[s.apiKeyValues[value]]
	if k == nil || k.Revoked {
		return apiKeyValidation{}
	}
	obj := toAPIKeyObject(k)
	now := s.now()
	if k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt) {
		k.LastUsedAt = now
	}
	return apiKeyValidation{APIKey: &obj}
}

func toAPIKeyObject(k *APIKey) apiKeyObject {
	owner := apiKeyOwner{Type: "organization", ID: k.OrganizationID}
	if k.UserID != "" {
		owner = apiKeyOwner{Type: "user", ID: k.UserID, OrganizationID: k.OrganizationID}
	}
	obj := apiKeyObject{
		Object:          "api_key",
		ID:              k.ID,
		Name:            k.Name,
		Owner:           owner,
		ObfuscatedValue: "sk_…" + k.Value[len(k.Value)-4:],
		Permissions:     append([]string{}, k.Permissions...),
		CreatedAt:       apiTime(k.CreatedAt),
		UpdatedAt:       apiTime(k.CreatedAt),
	}
	if !k.LastUsedAt.IsZero() {
		obj.LastUsedAt = nullable(apiTime(k.LastUsedAt))
	}
	if !k.ExpiresAt.IsZero() {
		obj.ExpiresAt = nullable(apiTime(k.ExpiresAt))
	}
	return obj
}
