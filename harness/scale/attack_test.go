package scale

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

// victim is a session whose cookie the attacker stole before the
// victim's browser refreshed it: the old cookie carries an expired access
// token and a refresh token that WorkOS has since rotated.
type victim struct {
	sid       string
	oldCookie string
}

// spendVictims makes the attacker's material: for each of n new
// sessions, a cookie with an expired access token
// (fake.MintSessionToken with a negative expiresIn) is sent once through
// Traefik, which refreshes it, so its refresh token is spent. The old
// cookie is kept for replays; the victim's browser keeps the new one.
func (r *run) spendVictims(n int) error {
	victims := make([]victim, n)
	var next atomic.Int64
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := r.spendOne(i, &victims[i]); err != nil {
					mu.Lock()
					errs = append(errs, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d victims could not be set up, e.g. %s", len(errs), n, errs[0])
	}
	r.victims = victims
	r.spentAt = time.Now()
	return nil
}

func (r *run) spendOne(i int, v *victim) error {
	user, org := comboFor(i + 1) // another spread than the users'
	issued, err := r.fake.IssueSession(fakeworkos.SessionParams{UserID: user, OrganizationID: org})
	if err != nil {
		return err
	}
	expired, err := r.fake.MintSessionToken(issued.SessionID, -time.Minute)
	if err != nil {
		return err
	}
	old, err := r.minter.seal(expired, issued.RefreshToken, issued.User)
	if err != nil {
		return err
	}
	r.rec.register(issued.RefreshToken, owner{ownerVictim, i})
	a := send(r.ctx, r.attackClient, r.traefik.url, kindAPI, sessionCookie+"="+old, user+"/"+issued.SessionID)
	if a.err != nil {
		return a.err
	}
	jar := map[string]string{sessionCookie: old}
	written, _ := applySetCookies(jar, a.setCookies, time.Now())
	if a.status != http.StatusOK || a.verdict != verdictOK || !written {
		return fmt.Errorf("victim %d: the refresh through Traefik answered %d, upstream verdict %q, new cookie %t", i, a.status, a.verdict, written)
	}
	r.tl.add(time.Now(), mSignedInAll, 1)
	*v = victim{sid: issued.SessionID, oldCookie: sessionCookie + "=" + old}
	return nil
}

// replay sends one victim's old cookie, round robin, ignoring the answer's
// cookies as an attacker replaying a stolen value does.
func (r *run) replay() {
	v := r.victims[int(r.replayNext.Add(1))%len(r.victims)]
	a := send(r.ctx, r.attackClient, r.traefik.url, kindAPI, v.oldCookie, expectReplay)
	now := time.Now()
	if a.err != nil {
		r.tl.add(now, mAttackErr, 1)
		return
	}
	r.tl.add(now, mReplaySent, 1)
	switch {
	case a.status >= 500:
		r.tl.add(now, mAttack5xx, 1)
		r.failures.add("attackers' 5xx", fmt.Sprintf("spent-cookie replay: status %d", a.status))
	case a.verdict == verdictSignedIn:
		r.tl.add(now, mReplaySignedIn, 1)
		r.tl.add(now, mSignedInAll, 1)
	}
}

// forge sends a random value shaped like an iron seal of the plugin's
// password id: it can never unseal, so it must cost no WorkOS call and no
// JWKS fetch.
func (r *run) forge() {
	a := send(r.ctx, r.attackClient, r.traefik.url, kindAPI, sessionCookie+"="+forgedSeal(), expectForged)
	now := time.Now()
	if a.err != nil {
		r.tl.add(now, mAttackErr, 1)
		return
	}
	r.tl.add(now, mForgedSent, 1)
	if a.status >= 500 {
		r.tl.add(now, mAttack5xx, 1)
		r.failures.add("attackers' 5xx", fmt.Sprintf("forged cookie: status %d", a.status))
	}
	if a.status != http.StatusUnauthorized {
		r.tl.add(now, mForgedNot401, 1)
	}
	if a.verdict == verdictMismatch {
		r.tl.add(now, mIdentity, 1)
		r.failures.add("forged cookie signed in", fmt.Sprintf("status %d", a.status))
	}
}

const (
	hexDigits = "0123456789abcdef"
	b64url    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// forgedSeal is Fe26.2*1*<64 hex>*<22 b64url>*<b64url>**<64 hex>*<43 b64url>~2
// with random fields: a ciphertext of a typical session's length.
func forgedSeal() string {
	var b strings.Builder
	b.Grow(1600)
	b.WriteString("Fe26.2*1*")
	randomChars(&b, hexDigits, 64)
	b.WriteByte('*')
	randomChars(&b, b64url, 22)
	b.WriteByte('*')
	randomChars(&b, b64url, 800+mrand.IntN(600))
	b.WriteString("**")
	randomChars(&b, hexDigits, 64)
	b.WriteByte('*')
	randomChars(&b, b64url, 43)
	b.WriteString("~2")
	return b.String()
}

func randomChars(b *strings.Builder, alphabet string, n int) {
	for i := 0; i < n; i++ {
		b.WriteByte(alphabet[mrand.IntN(len(alphabet))])
	}
}

// attackLoad runs the replays and the forged flood until stop ends.
func (r *run) attackLoad(stop context.Context) {
	shed := func() { r.tl.add(time.Now(), mShed, 1) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); openLoop(stop, r.p.replayRate, r.replay, shed) }()
	go func() { defer wg.Done(); openLoop(stop, r.p.forgedRate, r.forge, shed) }()
	wg.Wait()
}
