package authkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// API keys (SPEC "API keys"): an Authorization bearer value that is not a
// JWT is a WorkOS API key, which WorkOS validates. Results are cached, a
// key is validated once at a time, and new validations are rationed, so
// neither one client nor a flood of made-up keys can spend the WorkOS
// environment's rate limit, which every user's sign-in and refresh share.

const (
	apiKeyValidFor   = 5 * time.Minute
	apiKeyInvalidFor = time.Minute
	// apiKeyCallsPerSecond and apiKeyBurst ration validations of keys not
	// in the cache. Past them a request gets 503 with Retry-After, as when
	// WorkOS is unreachable: the key may be good, the plugin cannot tell yet.
	apiKeyCallsPerSecond = 20
	apiKeyBurst          = 40
	// maxAPIKeyLength bounds what is sent to WorkOS at all.
	maxAPIKeyLength = 256
	// apiKeyRetryAfter is the Retry-After of a rationed or failed validation.
	apiKeyRetryAfter = time.Second
)

// apiKeyCall is one WorkOS validation, shared by the requests that carry
// the same key while it runs.
type apiKeyCall struct {
	done      chan struct{}
	principal *principal // nil with a nil err: WorkOS refused the key
	err       error
}

// apiKeyValidations runs the validations of every instance of the plugin.
type apiKeyValidations struct {
	mu     sync.Mutex
	calls  map[string]*apiKeyCall
	tokens float64
	filled time.Time
	// left, a test hook, runs when a validation has left calls.
	left func()
}

var sharedAPIKeyValidations = &apiKeyValidations{calls: map[string]*apiKeyCall{}, tokens: apiKeyBurst}

// do runs validate once for key, however many requests ask meanwhile. It
// reports false, without calling, when the ration is spent. validate
// stores its answer in the cache before the call leaves calls, so a
// request arriving in between finds one or the other, never neither.
func (v *apiKeyValidations) do(key string, now time.Time, validate func() (*principal, error)) (*principal, error, bool) {
	v.mu.Lock()
	if call := v.calls[key]; call != nil {
		v.mu.Unlock()
		<-call.done // not a select: see refreshCall.wait
		return call.principal, call.err, true
	}
	v.tokens += now.Sub(v.filled).Seconds() * apiKeyCallsPerSecond
	if v.tokens > apiKeyBurst {
		v.tokens = apiKeyBurst
	}
	v.filled = now
	if v.tokens < 1 {
		v.mu.Unlock()
		return nil, nil, false
	}
	v.tokens--
	call := &apiKeyCall{done: make(chan struct{})}
	v.calls[key] = call
	v.mu.Unlock()

	call.principal, call.err = validate()
	v.mu.Lock()
	delete(v.calls, key)
	v.mu.Unlock()
	close(call.done)
	if v.left != nil {
		v.left()
	}
	return call.principal, call.err, true
}

// authenticateAPIKey signs an API client in with a WorkOS API key, or
// records why not: badBearer for a key WorkOS does not know or that
// expired (401), unavailable when it cannot be validated now (503).
func authenticateAPIKey(a *authKit, value string, res *authResult) {
	if len(value) > maxAPIKeyLength || strings.ContainsAny(value, " ,;\"\\"+controlCharacters) {
		res.badBearer = true
		return
	}
	// The cache and the group see a digest: the key itself is not kept.
	sum := sha256.Sum256([]byte(a.s.apiBaseURL + "\x00" + value))
	digest := hex.EncodeToString(sum[:])
	now := a.now()
	if e := lookupCached(a.sessions, a.apiKeyNS, digest, sinceEpoch(a, now)); e != nil {
		res.principal = e.principal
		res.badBearer = e.principal == nil
		return
	}
	p, err, ran := sharedAPIKeyValidations.do(digest, now, func() (*principal, error) {
		return checkAPIKey(a, value, digest, now)
	})
	switch {
	case !ran:
		a.log.debug("API key validations rationed", "per_second", apiKeyCallsPerSecond)
		res.unavailable, res.retryAfter = true, apiKeyRetryAfter
	case err != nil:
		a.log.event("api_key_validation_failed", "reason", err.Error())
		res.unavailable, res.retryAfter = true, apiKeyRetryAfter
		if we, ok := err.(*workosError); ok && we.RetryAfter > 0 {
			res.retryAfter = clampDuration(we.RetryAfter, refreshRetryMin, refreshRetryMax)
		}
	case p == nil:
		a.log.debug("API key refused")
		res.badBearer = true
	default:
		res.principal = p
	}
}

// checkAPIKey asks WorkOS about a key and caches the answer under its
// digest: the key's principal until it expires (five minutes at most), a
// refusal for a minute. A failed call is not cached.
func checkAPIKey(a *authKit, value, digest string, now time.Time) (*principal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), workosAPITimeout)
	defer cancel()
	key, err := a.workos.validateAPIKey(ctx, value)
	if err != nil {
		return nil, err
	}
	expires := now.Add(apiKeyValidFor)
	if key != nil && key.ExpiresAt != nil {
		if t, err := time.Parse(time.RFC3339, *key.ExpiresAt); err == nil && t.Before(expires) {
			expires = t
		}
	}
	if key == nil || !now.Before(expires) {
		storeCached(a.sessions, a.apiKeyNS, digest, nil, now.Add(apiKeyInvalidFor), now)
		return nil, nil
	}
	p := apiKeyPrincipal(key)
	storeCached(a.sessions, a.apiKeyNS, digest, p, expires, now)
	return p, nil
}

// apiKeyPrincipal is the identity of a valid API key: the key, the
// organization that owns it (or the user's organization) and, for a key a
// user owns, the user. It has no email, name or roles.
func apiKeyPrincipal(key *workosAPIKey) *principal {
	p := &principal{kind: signedInByAPIKey}
	var v identityValues
	v[fieldAPIKeyID] = key.ID
	v[fieldPermissions] = joinClaim(key.Permissions)
	if key.Owner.Type == "user" {
		v[fieldUserID] = key.Owner.ID
		v[fieldOrganizationID] = key.Owner.OrganizationID
	} else {
		v[fieldOrganizationID] = key.Owner.ID
	}
	setValues(p, &v, "")
	return p
}

// isJWT reports whether a bearer value has a compact JWS's shape.
func isJWT(value string) bool {
	return strings.Count(value, ".") == 2
}
