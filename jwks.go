package authkit

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// ErrJWKSUnavailable reports that no key set could be fetched yet.
var ErrJWKSUnavailable = errors.New("jwks: key set unavailable")

const (
	// jwksMaxAge is how long a fetched key set is used before it is fetched
	// again, as jose's createRemoteJWKSet does.
	jwksMaxAge = 10 * time.Minute
	// jwksRefetchInterval bounds refetches caused by unknown kids, so tokens
	// with made-up kids cannot turn into a flood of requests to WorkOS.
	jwksRefetchInterval = 30 * time.Second
	// jwksRetryInterval spaces retries while no key set has been fetched.
	jwksRetryInterval = time.Second
	jwksTimeout       = 5 * time.Second
	jwksMaxBody       = 256 << 10
	minRSABits        = 2048
)

// jwk is one usable verification key of a key set.
type jwk struct {
	kid string
	alg string // empty when the key does not pin one
	key *rsa.PublicKey
}

// jwkJSON is a key as the JWKS publishes it.
type jwkJSON struct {
	KeyType    string   `json:"kty"`
	KeyID      string   `json:"kid"`
	Use        string   `json:"use"`
	Algorithm  string   `json:"alg"`
	Operations []string `json:"key_ops"`
	Modulus    string   `json:"n"`
	Exponent   string   `json:"e"`
}

// parseJWKS keeps the RSA signature keys of a key set and skips the others,
// so one key WorkOS adds in an unknown form does not disable the rest.
func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []jwkJSON `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("jwks: not a JSON key set")
	}
	if set.Keys == nil {
		return nil, errors.New("jwks: no keys member")
	}
	keys := make([]jwk, 0, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyType != "RSA" || (k.Use != "" && k.Use != "sig") || !allowsVerify(k.Operations) {
			continue
		}
		if _, ok := tokenHash(k.Algorithm); k.Algorithm != "" && !ok {
			continue
		}
		pub, err := rsaPublicKey(k.Modulus, k.Exponent)
		if err != nil {
			continue
		}
		keys = append(keys, jwk{kid: k.KeyID, alg: k.Algorithm, key: pub})
	}
	return keys, nil
}

func allowsVerify(ops []string) bool {
	if ops == nil {
		return true
	}
	for _, op := range ops {
		if op == "verify" {
			return true
		}
	}
	return false
}

func rsaPublicKey(modulus, exponent string) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(modulus)
	if err != nil || len(n) == 0 || n[0] == 0 {
		return nil, errors.New("jwks: bad modulus")
	}
	e, err := base64.RawURLEncoding.DecodeString(exponent)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("jwks: bad exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
		return nil, errors.New("jwks: weak key")
	}
	return pub, nil
}

// jwksCache fetches a key set on demand and keeps it for jwksMaxAge. An
// unknown kid refetches at most once per jwksRefetchInterval; concurrent
// callers share one fetch. When a refetch fails the previous keys stay in
// use. A fetch runs detached from the request that started it: a client
// that goes away neither cancels it nor spends the refetch interval.
type jwksCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu          sync.RWMutex
	keys        []jwk
	fetched     bool
	fetchedAt   time.Time
	lastAttempt time.Time
	fetching    chan struct{} // closed when the running fetch ends; nil when none runs
	lastErr     error         // the last fetch's failure, nil after a success
}

func newJWKSCache(url string, client *http.Client, now func() time.Time) *jwksCache {
	return &jwksCache{url: url, client: client, now: now}
}

// keySets shares one JWKS cache per URL among all instances (and
// configuration reloads) of the plugin, which Traefik runs in one
// interpreter: keys are fetched once, not once per router.
var keySets = struct {
	sync.Mutex
	byURL map[string]*jwksCache
}{byURL: map[string]*jwksCache{}}

func sharedKeySet(url string, client *http.Client) *jwksCache {
	keySets.Lock()
	defer keySets.Unlock()
	c, ok := keySets.byURL[url]
	if !ok {
		c = newJWKSCache(url, client, time.Now)
		keySets.byURL[url] = c
	}
	return c
}

// jwksKey returns the one key matching the token's kid and alg, fetching the key
// set when it is missing, stale, or lacks the kid.
func jwksKey(c *jwksCache, kid, alg string) (*rsa.PublicKey, error) {
	c.mu.RLock()
	keys, fetched, fetchedAt := c.keys, c.fetched, c.fetchedAt
	c.mu.RUnlock()
	now := c.now()
	if fetched && now.Sub(fetchedAt) < jwksMaxAge {
		if k, err := matchKey(keys, kid, alg); err == nil {
			return k, nil
		}
	}
	if err := c.refresh(fetchedAt); err != nil && !fetched {
		return nil, err
	}
	c.mu.RLock()
	keys = c.keys
	c.mu.RUnlock()
	return matchKey(keys, kid, alg)
}

// refresh fetches the key set unless another caller fetched it after seen
// or the last attempt was too recent, and waits for the fetch (at most
// jwksTimeout; not for the request's context too: see refreshCall.wait on
// select under the interpreter).
func (c *jwksCache) refresh(seen time.Time) error {
	c.mu.Lock()
	if c.fetched && c.fetchedAt.After(seen) {
		c.mu.Unlock()
		return nil // a concurrent caller just fetched
	}
	done := c.fetching
	if done == nil {
		now := c.now()
		wait := jwksRefetchInterval
		if !c.fetched {
			wait = jwksRetryInterval
		}
		if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < wait {
			fetched := c.fetched
			c.mu.Unlock()
			if !fetched {
				return ErrJWKSUnavailable
			}
			return nil
		}
		c.lastAttempt = now
		done = make(chan struct{})
		c.fetching = done
		go c.runFetch(done, now)
	}
	c.mu.Unlock()
	<-done
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.fetched {
		return ErrJWKSUnavailable
	}
	return c.lastErr
}

// runFetch fetches the key set with its own timeout and publishes the
// result.
func (c *jwksCache) runFetch(done chan struct{}, started time.Time) {
	keys, err := c.fetch(context.Background())
	c.mu.Lock()
	if err == nil {
		c.keys, c.fetched, c.fetchedAt = keys, true, started
	}
	c.lastErr = err
	c.fetching = nil
	c.mu.Unlock()
	close(done)
}

func (c *jwksCache) fetch(ctx context.Context) ([]jwk, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, errors.New("jwks: fetch failed: " + err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("jwks: fetch answered " + resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, errors.New("jwks: reading the key set: " + err.Error())
	}
	if len(body) > jwksMaxBody {
		return nil, errors.New("jwks: key set too large")
	}
	return parseJWKS(body)
}

// matchKey selects keys as jose does: same kid when the token names one, and
// the key's alg, when it pins one, equal to the token's. Anything but exactly
// one candidate refuses the token.
func matchKey(keys []jwk, kid, alg string) (*rsa.PublicKey, error) {
	var found *rsa.PublicKey
	for i := range keys {
		k := &keys[i]
		if (kid != "" && k.kid != kid) || (k.alg != "" && k.alg != alg) {
			continue
		}
		if found != nil {
			return nil, ErrTokenUnknownKey
		}
		found = k.key
	}
	if found == nil {
		return nil, ErrTokenUnknownKey
	}
	return found, nil
}
