package authkit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Several Traefik replicas sharing a Redis (SPEC "Several Traefik
// replicas", redisUrl): one WorkOS refresh per rotation across all of
// them (a lock per refresh token, the result sealed for the grace
// window), terminal answers remembered by all, and sign-outs that every
// replica applies within a second. Keys hold digests, never tokens; values
// are sealed with the cookie password; everything expires. Redis down,
// slow or refusing never fails a request: each replica then works alone
// (the redis client fails fast while it backs off), logs it once, and
// comes back by itself. The cached fast path never talks to Redis.

const (
	// replicaLockTTL outlives a WorkOS call (workosAPITimeout) with room,
	// so a replica that dies while holding a lock holds it only that long.
	replicaLockTTL = workosAPITimeout + 5*time.Second
	// replicaPollInterval is how often a replica waiting on another's
	// refresh looks for its result.
	replicaPollInterval = 20 * time.Millisecond
	// signOutPollInterval is how often each replica reads the sign-outs of
	// the others: well inside SPEC's second.
	signOutPollInterval = 250 * time.Millisecond
	// signOutHistory is how far back a replica reads sign-outs when it
	// starts: as long as a token and a refresh result of a session can
	// live, so a replica started after a sign-out refuses it too.
	signOutHistory = maxCacheLifetime + refreshGrace
	// maxSignOuts bounds the stream of sign-outs (an approximate trim).
	maxSignOuts = 100000
	// While Redis is down, a replica tries it again after replicaBackoffMin,
	// doubling up to replicaBackoffMax.
	replicaBackoffMin = 500 * time.Millisecond
	replicaBackoffMax = 2 * time.Second
)

// replicaStore is one Redis namespace: a WorkOS client and a cookie
// password. One per namespace per process, shared by every middleware
// instance and configuration reload, so reloads start no goroutine and
// open no pool.
type replicaStore struct {
	client  *redisClient
	prefix  string // "authkit:<digest>:"
	keyring *Keyring
	owner   string // this process, in the locks it holds
	// sessions and revocations receive the other replicas' sign-outs.
	sessions    *sessionCache
	revocations *revocationSet
	stopped     atomic.Bool // ends the sign-out reader (tests)
}

var replicaStores = struct {
	sync.Mutex
	byKey   map[string]*replicaStore
	clients map[string]*redisClient
}{byKey: map[string]*replicaStore{}, clients: map[string]*redisClient{}}

// replicaPrefix namespaces an instance's keys by WorkOS client and cookie
// password (the one it seals with).
func replicaPrefix(s *settings) string {
	sum := sha256.Sum256([]byte(s.apiBaseURL + "\x00" + s.clientID + "\x00" + string(s.keyring.passwords[s.keyring.sealID])))
	return "authkit:" + hex.EncodeToString(sum[:8]) + ":"
}

// sharedReplicaStore returns the process's store for a Redis URL and
// namespace, starting, once, the reader of the others' sign-outs.
func sharedReplicaStore(url string, opts redisOptions, s *settings, log *eventLog) *replicaStore {
	prefix := replicaPrefix(s)
	replicaStores.Lock()
	defer replicaStores.Unlock()
	if store := replicaStores.byKey[url+" "+prefix]; store != nil {
		return store
	}
	client := replicaStores.clients[url]
	if client == nil {
		// Back within two seconds of Redis coming back: a probe while it
		// is down costs one failed command.
		opts.backoffMin, opts.backoffMax = replicaBackoffMin, replicaBackoffMax
		client = newRedisClient(opts)
		replicaStores.clients[url] = client
	}
	store := newReplicaStore(client, prefix, s.keyring, sharedSessions, sharedRevocations, log)
	replicaStores.byKey[url+" "+prefix] = store
	return store
}

// newReplicaStore starts a store and its sign-out reader. The client's
// state changes are logged once each, by the first store that uses it.
func newReplicaStore(client *redisClient, prefix string, keyring *Keyring, sessions *sessionCache, revocations *revocationSet, log *eventLog) *replicaStore {
	if client.onState == nil {
		client.onState = func(up bool, reason string) {
			if up {
				log.event("redis_available")
			} else {
				log.event("redis_unavailable", "reason", reason, "fallback", "each replica works alone")
			}
		}
	}
	owner := make([]byte, 8)
	rand.Read(owner)
	store := &replicaStore{client: client, prefix: prefix, keyring: keyring, owner: hex.EncodeToString(owner),
		sessions: sessions, revocations: revocations}
	go store.readSignOuts()
	return store
}

// redisCall bounds one exchange with Redis; the client's own timeout
// (tens of milliseconds) bounds each command in it.
func redisCall() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Second)
}

// refresh runs call, the WorkOS refresh for key, at most once across the
// replicas: it adopts a result another replica stored, or waits for the
// one that holds the key's lock, or takes the lock and calls. Whenever
// Redis fails, it calls WorkOS itself, as a replica without Redis does.
func (s *replicaStore) refresh(key string, call func() (*workosAuthResponse, error)) (*workosAuthResponse, error) {
	id := hex.EncodeToString([]byte(key))
	result, answer, lock := s.prefix+"r:"+id, s.prefix+"a:"+id, s.prefix+"l:"+id
	deadline := time.Now().Add(replicaLockTTL)
	for {
		resp, err, known := s.known(result, answer)
		if known {
			return resp, err
		}
		ctx, cancel := redisCall()
		locked, lockErr := redisSet(ctx, s.client, lock, s.owner, replicaLockTTL, true)
		cancel()
		if lockErr != nil {
			return call()
		}
		if locked {
			// The holder before may have stored its answer and let go
			// between the look above and the lock: look again.
			if resp, err, known := s.known(result, answer); known {
				s.unlock(lock)
				return resp, err
			}
			resp, err := call()
			s.record(result, answer, lock, resp, err)
			return resp, err
		}
		if time.Now().After(deadline) {
			return call()
		}
		time.Sleep(replicaPollInterval)
	}
}

// known returns the answer another replica stored for a refresh, if any.
// A Redis failure counts as none.
func (s *replicaStore) known(result, answer string) (*workosAuthResponse, error, bool) {
	ctx, cancel := redisCall()
	values, err := redisMGet(ctx, s.client, result, answer)
	cancel()
	if err != nil || len(values) != 2 {
		return nil, nil, false
	}
	if values[0].kind == redisBulk {
		if resp, err := s.openResult(values[0].str); err == nil {
			return resp, nil, true
		}
	}
	if values[1].kind == redisBulk {
		return nil, answerError(values[1].str), true
	}
	return nil, nil, false
}

// record stores what WorkOS answered, for the other replicas: a result
// for the grace window, a terminal answer for terminalMemory, a transient
// one until its retry time; then it frees the lock.
func (s *replicaStore) record(result, answer, lock string, resp *workosAuthResponse, err error) {
	ctx, cancel := redisCall()
	defer cancel()
	if err == nil {
		if sealed, sealErr := s.sealResult(resp); sealErr == nil {
			redisSet(ctx, s.client, result, sealed, refreshGrace, false)
		}
	} else if we, ok := err.(*workosError); ok {
		ttl := terminalMemory
		if we.Transient {
			ttl = clampDuration(we.RetryAfter, refreshRetryMin, refreshRetryMax)
		}
		redisSet(ctx, s.client, answer, answerValue(we), ttl, false)
	}
	redisDel(ctx, s.client, lock)
}

// unlock frees a lock taken for nothing.
func (s *replicaStore) unlock(lock string) {
	ctx, cancel := redisCall()
	defer cancel()
	redisDel(ctx, s.client, lock)
}

// answerValue and answerError carry a failed refresh between replicas:
// whether it is transient, its status and code; never a description.
func answerValue(we *workosError) string {
	return strconv.FormatBool(we.Transient) + " " + strconv.Itoa(we.Status) + " " + we.Code
}

func answerError(v string) error {
	f := strings.Fields(v)
	we := &workosError{op: "refresh_token grant", reason: "answered to another replica"}
	if len(f) > 0 {
		we.Transient = f[0] == "true"
	}
	if len(f) > 1 {
		we.Status, _ = strconv.Atoi(f[1])
	}
	if len(f) > 2 && workosIsPlainCode(f[2]) {
		we.Code = f[2]
		we.reason += ": " + f[2]
	}
	return we
}

// storedResult is a refresh result as replicas share it, sealed.
type storedResult struct {
	User                 json.RawMessage     `json:"user"`
	OrganizationID       string              `json:"organization_id,omitempty"`
	AccessToken          string              `json:"access_token"`
	RefreshToken         string              `json:"refresh_token"`
	Impersonator         *workosImpersonator `json:"impersonator,omitempty"`
	AuthenticationMethod string              `json:"authentication_method,omitempty"`
}

func (s *replicaStore) sealResult(resp *workosAuthResponse) (string, error) {
	plain, err := json.Marshal(storedResult{
		User: resp.UserJSON, OrganizationID: resp.OrganizationID, AccessToken: resp.AccessToken,
		RefreshToken: resp.RefreshToken, Impersonator: resp.Impersonator, AuthenticationMethod: resp.AuthenticationMethod,
	})
	if err != nil {
		return "", err
	}
	return s.keyring.Seal(plain, refreshGrace, time.Now())
}

func (s *replicaStore) openResult(sealed string) (*workosAuthResponse, error) {
	plain, err := unseal(s.keyring, sealed, time.Now())
	if err != nil {
		return nil, err
	}
	var r storedResult
	if err := json.Unmarshal(plain, &r); err != nil {
		return nil, err
	}
	resp := &workosAuthResponse{UserJSON: r.User, OrganizationID: r.OrganizationID, AccessToken: r.AccessToken,
		RefreshToken: r.RefreshToken, Impersonator: r.Impersonator, AuthenticationMethod: r.AuthenticationMethod}
	if err := json.Unmarshal(r.User, &resp.User); err != nil {
		return nil, err
	}
	return resp, nil
}

// signOut tells the other replicas that a session ended. (A session id is
// not a secret: it travels in the logout URL.)
func (s *replicaStore) signOut(sessionID string, until time.Time) {
	ctx, cancel := redisCall()
	defer cancel()
	redisXAdd(ctx, s.client, s.prefix+"signouts", maxSignOuts, "sid", sessionID, "until", strconv.FormatInt(until.UnixMilli(), 10))
}

// readSignOuts applies the sign-outs every replica publishes, for the
// life of the process: from signOutHistory back at the start, then as
// they come. While Redis is down it keeps its place and catches up.
func (s *replicaStore) readSignOuts() {
	after := strconv.FormatInt(time.Now().Add(-signOutHistory).UnixMilli(), 10) + "-0"
	for !s.stopped.Load() {
		ctx, cancel := redisCall()
		entries, err := redisXRead(ctx, s.client, s.prefix+"signouts", after, 500)
		cancel()
		now := time.Now()
		for _, e := range entries {
			after = e.id
			sid, until := signOutOf(e.fieldValues)
			if sid != "" && now.Before(until) {
				s.revocations.add(sid, until, now)
				s.sessions.removeSession(sid)
			}
		}
		if err != nil || len(entries) < 500 {
			time.Sleep(signOutPollInterval)
		}
	}
}

// signOutOf reads a sign-out entry's fields.
func signOutOf(fieldValues []string) (string, time.Time) {
	sid, until := "", time.Time{}
	for i := 0; i+1 < len(fieldValues); i += 2 {
		switch fieldValues[i] {
		case "sid":
			sid = fieldValues[i+1]
		case "until":
			if ms, err := strconv.ParseInt(fieldValues[i+1], 10, 64); err == nil {
				until = time.UnixMilli(ms)
			}
		}
	}
	return sid, until
}
