package fakeworkos

import (
	"encoding/json"
	"net/http"
	"time"
)

// controlPrefix holds the fake's own HTTP endpoints, which let a test in
// another process (real Traefik, a browser run) drive it:
//
//	POST   /__fake/faults        {"endpoint","kind","count","status","retry_after","delay":"2s"}
//	DELETE /__fake/faults        clear every fault
//	GET    /__fake/stats         {"calls":{endpoint:n},"grants":{grant_type:n}}
//	POST   /__fake/keys/rotate   {"kid"}; ?published=false keeps the key out of the JWKS
//	POST   /__fake/keys/publish  publish every key
//	POST   /__fake/org-policies  {"organization_id","error","status","redirect_url"}
//
// Each needs "Authorization: Bearer <API key>", like the real API, so a
// demo instance cannot be reconfigured by a stranger.
const controlPrefix = "/__fake/"

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
	Calls  map[string]int `json:"calls"`
	Grants map[string]int `json:"grants"`
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
	switch route {
	case "POST /__fake/faults":
		s.controlInjectFault(w, r)
	case "DELETE /__fake/faults":
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case "GET /__fake/stats":
		s.mu.Lock()
		stats := statsResponse{Calls: copyCounts(s.calls), Grants: copyCounts(s.grants)}
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
