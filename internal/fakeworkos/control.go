package fakeworkos

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// controlPrefix holds the fake's own HTTP endpoints, which let a test in
// another process (real Traefik, a browser run) drive it:
//
//	POST   /__fake/faults        {"endpoint","kind","count","status","retry_after","delay":"2s"}
//	DELETE /__fake/faults        clear every fault
//	GET    /__fake/stats         {"calls":{endpoint:n},"grants":{grant_type:n},"rotations":n,
//	                              "grace_replays":n,"rate_limited":n,"api_key_validations":n}
//	POST   /__fake/keys/rotate   {"kid"}; ?published=false keeps the key out of the JWKS
//	POST   /__fake/keys/publish  publish every key
//	POST   /__fake/org-policies  {"organization_id","error","status","redirect_url"}
//	POST   /__fake/refresh-grace {"seconds": 30} (fractions allowed; 0 is strict single use)
//	POST   /__fake/rate-limit    {"writes_per_10s": n} (0 removes the limit)
//	POST   /__fake/api-keys      {"name","organization_id","user_id","permissions":[],"expires_at":"RFC 3339"}
//	                             → 201 with the key's API object plus its "value"
//	DELETE /__fake/api-keys/<id> revoke a key
//
// Each needs "Authorization: Bearer <API key>", like the real API, so a
// demo instance cannot be reconfigured by a stranger.
const controlPrefix = "/__fake/"

// apiKeysControlPrefix is followed by a key id in DELETE requests.
const apiKeysControlPrefix = controlPrefix + "api-keys/"

type faultRequest struct {
	Endpoint   string `json:"endpoint"`
	Kind       string `json:"kind"`
	Count      int    `json:"count"`
	Status     int    `json:"status"`
	RetryAfter int    `json:"retry_after"`
	Delay      string `json:"delay"`
}

type orgPolicyRequest struct {
	OrganizationID string `json:"organization_id"`
	Error          string `json:"error"`
	Status         int    `json:"status"`
	RedirectURL    string `json:"redirect_url"`
}

type statsResponse struct {
	Calls             map[string]int `json:"calls"`
	Grants            map[string]int `json:"grants"`
	Rotations         int            `json:"rotations"`
	GraceReplays      int            `json:"grace_replays"`
	RateLimited       int            `json:"rate_limited"`
	APIKeyValidations int            `json:"api_key_validations"`
}

type refreshGraceRequest struct {
	Seconds *float64 `json:"seconds"`
}

type rateLimitRequest struct {
	WritesPer10s *int `json:"writes_per_10s"`
}

type apiKeyRequest struct {
	Name           string   `json:"name"`
	OrganizationID string   `json:"organization_id"`
	UserID         string   `json:"user_id"`
	Permissions    []string `json:"permissions"`
	ExpiresAt      string   `json:"expires_at"`
}

// createdAPIKey is the API object of a new key plus its value, flat
// because the interpreter does not flatten embedded structs in JSON.
type createdAPIKey struct {
	Object          string      `json:"object"`
	ID              string      `json:"id"`
	Value           string      `json:"value"`
	Name            string      `json:"name"`
	Owner           apiKeyOwner `json:"owner"`
	ObfuscatedValue string      `json:"obfuscated_value"`
	Permissions     []string    `json:"permissions"`
	LastUsedAt      *string     `json:"last_used_at"`
	ExpiresAt       *string     `json:"expires_at"`
	CreatedAt       string      `json:"created_at"`
	UpdatedAt       string      `json:"updated_at"`
}

type kidResponse struct {
	Kid string `json:"kid"`
}

func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.apiKey {
		writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthorized", Message: "Control endpoints need the API key as a Bearer token."})
		return
	}
	route := r.Method + " " + r.URL.Path
	if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, apiKeysControlPrefix) {
		s.RevokeAPIKey(strings.TrimPrefix(r.URL.Path, apiKeysControlPrefix))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch route {
	case "POST /__fake/faults":
		s.controlInjectFault(w, r)
	case "DELETE /__fake/faults":
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "GET /__fake/stats":
		s.mu.Lock()
		stats := statsResponse{
			Calls:             copyCounts(s.calls),
			Grants:            copyCounts(s.grants),
			Rotations:         s.rotations,
			GraceReplays:      s.graceReplays,
			RateLimited:       s.rateLimited,
			APIKeyValidations: s.apiKeyChecks,
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, stats)
	case "POST /__fake/keys/rotate":
		kid := ""
		if r.URL.Query().Get("published") == "false" {
			kid = s.RotateKeyUnpublished()
		} else {
			kid = s.RotateKey()
		}
		writeJSON(w, http.StatusOK, kidResponse{Kid: kid})
	case "POST /__fake/keys/publish":
		s.PublishKeys()
		w.WriteHeader(http.StatusNoContent)
	case "POST /__fake/org-policies":
		s.controlOrgPolicy(w, r)
	case "POST /__fake/refresh-grace":
		s.controlRefreshGrace(w, r)
	case "POST /__fake/rate-limit":
		s.controlRateLimit(w, r)
	case "POST /__fake/api-keys":
		s.controlCreateAPIKey(w, r)
	default:
		writeJSON(w, http.StatusNotFound, apiError{Code: "not_found", Message: "Unknown control route " + route + "."})
	}
}

func (s *Server) controlInjectFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if !decodeControl(w, r, &req) {
		return
	}
	f := Fault{Kind: FaultKind(req.Kind), Count: req.Count, Status: req.Status, RetryAfter: req.RetryAfter}
	if req.Delay != "" {
		d, err := time.ParseDuration(req.Delay)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "delay: " + err.Error()})
			return
		}
		f.Delay = d
	}
	if err := validateFault(req.Endpoint, f); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: err.Error()})
		return
	}
	s.InjectFault(req.Endpoint, f)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) controlOrgPolicy(w http.ResponseWriter, r *http.Request) {
	var req orgPolicyRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.OrganizationID == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "organization_id is required."})
		return
	}
	s.SetOrgPolicy(req.OrganizationID, OrgPolicy{Error: req.Error, Status: req.Status, RedirectURL: req.RedirectURL})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) controlRefreshGrace(w http.ResponseWriter, r *http.Request) {
	var req refreshGraceRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Seconds == nil || *req.Seconds < 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "seconds must be a number >= 0."})
		return
	}
	s.SetRefreshGrace(time.Duration(*req.Seconds * float64(time.Second)))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) controlRateLimit(w http.ResponseWriter, r *http.Request) {
	var req rateLimitRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.WritesPer10s == nil || *req.WritesPer10s < 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "writes_per_10s must be a whole number >= 0."})
		return
	}
	s.SetWriteRateLimit(*req.WritesPer10s)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) controlCreateAPIKey(w http.ResponseWriter, r *http.Request) {
	var req apiKeyRequest
	if !decodeControl(w, r, &req) {
		return
	}
	p := APIKeyParams{Name: req.Name, OrganizationID: req.OrganizationID, UserID: req.UserID, Permissions: req.Permissions}
	if req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "expires_at: " + err.Error()})
			return
		}
		p.ExpiresAt = t
	}
	k, err := s.CreateAPIKey(p)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: err.Error()})
		return
	}
	obj := toAPIKeyObject(&k)
	writeJSON(w, http.StatusCreated, createdAPIKey{
		Object:          obj.Object,
		ID:              obj.ID,
		Value:           k.Value,
		Name:            obj.Name,
		Owner:           obj.Owner,
		ObfuscatedValue: obj.ObfuscatedValue,
		Permissions:     obj.Permissions,
		LastUsedAt:      obj.LastUsedAt,
		ExpiresAt:       obj.ExpiresAt,
		CreatedAt:       obj.CreatedAt,
		UpdatedAt:       obj.UpdatedAt,
	})
}

// decodeControl reads a JSON control body into v, answering 400 itself
// when it cannot.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(r)
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Code: "invalid_request", Message: "The body is not valid JSON: " + err.Error()})
		return false
	}
	return true
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
