package fakeworkos

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// FaultKind selects how a faulted request is answered. The kinds cover
// each row of the SDK's error classification (WORKOS-PROTOCOL.md C.4):
// terminal OAuth errors, transient 429/5xx, terminal non-JSON bodies,
// timeouts and network failures.
type FaultKind string

const (
	// FaultInvalidGrant answers 400 {"error":"invalid_grant",...}.
	FaultInvalidGrant FaultKind = "invalid_grant"
	// FaultRateLimit answers 429 JSON with a Retry-After header.
	FaultRateLimit FaultKind = "rate_limit"
	// FaultServerError answers a JSON 5xx (Status, default 500).
	FaultServerError FaultKind = "server_error"
	// FaultHTMLError answers a text/html error page (Status, default 502),
	// as a proxy in front of WorkOS would.
	FaultHTMLError FaultKind = "html_error"
	// FaultDelay waits Delay, then answers normally; a client that gives
	// up first sees a timeout and the request is abandoned.
	FaultDelay FaultKind = "delay"
	// FaultDrop closes the connection without any response.
	FaultDrop FaultKind = "drop"
)

// Fault describes how the next requests to one endpoint misbehave.
type Fault struct {
	Kind FaultKind
	// Count is how many upcoming requests the fault affects; 0 means every
	// request until ClearFaults.
	Count int
	// Status is the HTTP status of FaultServerError and FaultHTMLError.
	Status int
	// RetryAfter is FaultRateLimit's Retry-After in seconds: 0 sends 1, a
	// negative value omits the header.
	RetryAfter int
	// Delay is how long FaultDelay waits.
	Delay time.Duration
}

// InjectFault queues f for endpoint (EndpointAuthorize, …). Queued faults
// apply in order, each for its Count requests. An invalid endpoint or
// fault is a bug in the test, so InjectFault panics on it.
func (s *Server) InjectFault(endpoint string, f Fault) {
	if err := validateFault(endpoint, f); err != nil {
		panic(err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = append(s.faults[endpoint], f)
}

// ClearFaults removes every queued fault on every endpoint.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]Fault{}
}

func validateFault(endpoint string, f Fault) error {
	switch endpoint {
	case EndpointAuthorize, EndpointAuthenticate, EndpointJWKS, EndpointLogout, EndpointAPIKeys:
	default:
		return fmt.Errorf("fakeworkos: unknown endpoint %q", endpoint)
	}
	if f.Count < 0 {
		return fmt.Errorf("fakeworkos: negative fault count %d", f.Count)
	}
	switch f.Kind {
	case FaultInvalidGrant, FaultRateLimit, FaultDrop:
		return nil
	case FaultServerError:
		if f.Status != 0 && (f.Status < 500 || f.Status > 599) {
			return fmt.Errorf("fakeworkos: server_error status %d is not 5xx", f.Status)
		}
		return nil
	case FaultHTMLError:
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			return fmt.Errorf("fakeworkos: html_error status %d is not 4xx or 5xx", f.Status)
		}
		return nil
	case FaultDelay:
		if f.Delay <= 0 {
			return fmt.Errorf("fakeworkos: delay fault needs a positive Delay")
		}
		return nil
	}
	return fmt.Errorf("fakeworkos: unknown fault kind %q", f.Kind)
}

// takeFault pops the fault that applies to the next request on endpoint.
func (s *Server) takeFault(endpoint string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	queue := s.faults[endpoint]
	if len(queue) == 0 {
		return Fault{}, false
	}
	f := queue[0]
	if f.Count > 0 {
		queue[0].Count--
		if queue[0].Count == 0 {
			s.faults[endpoint] = queue[1:]
		}
	}
	return f, true
}

// applyFault answers r according to the pending fault, if any, and
// reports whether the request is finished.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, endpoint string) bool {
	f, ok := s.takeFault(endpoint)
	if !ok {
		return false
	}
	switch f.Kind {
	case FaultDelay:
		return !wait(r.Context(), f.Delay)
	case FaultDrop:
		dropConnection(w)
	case FaultInvalidGrant:
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", ErrorDescription: "Injected fault: the grant is invalid."})
	case FaultRateLimit:
		if f.RetryAfter >= 0 {
			w.Header().Set("Retry-After", strconv.Itoa(orDefault(f.RetryAfter, 1)))
		}
		writeJSON(w, http.StatusTooManyRequests, apiError{Code: "rate_limit_exceeded", Message: "Too many requests; retry later."})
	case FaultServerError:
		status := orDefault(f.Status, http.StatusInternalServerError)
		writeJSON(w, status, apiError{Code: "server_error", Message: "Injected fault: " + http.StatusText(status) + "."})
	case FaultHTMLError:
		writeProxyErrorPage(w, orDefault(f.Status, http.StatusBadGateway))
	}
	return true
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// wait sleeps for d and reports false if ctx ended first. It polls rather
// than selects: the fake also runs inside tests interpreted by yaegi
// v0.16.1, whose select statements share one case table among the
// goroutines running them.
func wait(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ctx.Err() == nil
}

// dropConnection closes the client connection without writing anything,
// which the client sees as a network error.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// writeProxyErrorPage imitates the HTML error page of a load balancer,
// the non-JSON body that the SDK cannot parse.
func writeProxyErrorPage(w http.ResponseWriter, status int) {
	line := strconv.Itoa(status) + " " + http.StatusText(status)
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" +
		line + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
}
