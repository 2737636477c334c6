package pipaauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// A back-channel logout that names a sid may arrive while a login with that
// sid is being finished: its code exchanged, its session not yet created.
// The revocation then ends nothing and the login would create a session for
// a provider session that is over. So the handler marks the sid as revoked
// (RevocableStore.Remember, for the logout token's lifetime) before ending
// its sessions, and every login checks the mark once its session exists:
// either the mark came first and the login ends its own session, or the
// session came first and the revocation ends it.
//
// A store that implements session.RememberedChecker (redisstore, memstore)
// is asked whether the mark is there. Otherwise Remember, a set-if-absent,
// is the only primitive, so the login's check is itself a Remember with
// probeTTL: first=true means no mark (and leaves one for a millisecond); the
// handler replaces such a short mark with its own (markRevoked).

// probeTTL is how long a login's check leaves its own mark.
const probeTTL = time.Millisecond

// revokedSIDKey is the key under which a sid revoked by a back-channel
// logout is remembered: a digest, as jtiKey.
func revokedSIDKey(sid string) string {
	sum := sha256.Sum256([]byte("sid\x00" + sid))
	return "backchannel-sid:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// markRevoked remembers key for ttl, replacing a mark already there (a
// login's probe, or an earlier logout's) so that this ttl counts.
func markRevoked(ctx context.Context, rv revoker, key string, ttl time.Duration) error {
	for range 3 {
		first, err := rv.Remember(ctx, key, ttl)
		if err != nil || first {
			return err
		}
		if err := rv.Forget(ctx, key); err != nil {
			return err
		}
	}
	return nil // marked by someone all three times: the key is there
}

// endRevokedSID returns callback.Config.EndRevokedSID: nil when the
// session store cannot revoke (back-channel logout answers 501 then, so
// nothing is ever marked).
func (a *Auth) endRevokedSID() func(ctx context.Context, sid string) (bool, error) {
	if !a.sessions.CanRevoke() {
		return nil
	}
	return func(ctx context.Context, sid string) (bool, error) {
		ctx = context.WithoutCancel(ctx) // a session left behind must still be ended
		revoked, err := a.sidRevoked(ctx, revokedSIDKey(sid))
		if err != nil || !revoked {
			return false, err
		}
		_, err = a.sessions.RevokeSID(ctx, sid)
		return true, err
	}
}

// sidRevoked reports whether a back-channel logout marked key. With a store
// that can look a key up (session.RememberedChecker) it only looks. Without
// one the look is a Remember with probeTTL, and a mark found may be another
// login's probe of the same sid (tabs finishing together): only a mark
// still there after probeTTL, three times over, is a logout's (a logout's
// lasts the logout token's lifetime, minutes).
func (a *Auth) sidRevoked(ctx context.Context, key string) (bool, error) {
	found, supported, err := a.sessions.Remembered(ctx, key)
	if supported || err != nil {
		return found, err
	}
	for try := range 3 {
		if try > 0 {
			time.Sleep(2 * probeTTL)
		}
		first, err := a.sessions.Remember(ctx, key, probeTTL)
		if err != nil || first {
			return false, err
		}
	}
	return true, nil
}

// A back-channel logout by sub alone ends every session of the user, but a
// login finishing meanwhile (its code exchanged before the logout) would
// create one after it. The handler therefore marks the sub for the logout
// token's lifetime, keyed by the 10-second bucket of the token's iat, and
// a login checks the buckets from the user's sign-in at PiPA on (its ID
// token's auth_time, else iat): a mark there means PiPA logged the user
// out after that sign-in. Only a login from before the logout is refused
// (a sign-in after it passes, but within the same 10 seconds, where it
// may be refused once and should simply be tried again). Only with a store that can look a key up
// (session.RememberedChecker: redisstore, memstore): a probe by Remember
// would leave marks of its own.

// subBucket is the width of revokedSubKey's time buckets.
const subBucket = 10 * time.Second

// revokedSubKey is the key of a logout of sub whose token was issued in
// the bucket of iat.
func revokedSubKey(sub string, iat time.Time) string {
	sum := sha256.Sum256([]byte("sub\x00" + sub))
	return "backchannel-sub:" + base64.RawURLEncoding.EncodeToString(sum[:]) + ":" + strconv.FormatInt(iat.Unix()/int64(subBucket/time.Second), 10)
}

// revokedSubject returns callback.Config.RevokedSubject, nil when the
// store cannot revoke or cannot look keys up.
func (a *Auth) revokedSubject() func(ctx context.Context, sub string, iat time.Time) (bool, error) {
	if !a.sessions.CanRevoke() || !a.sessions.CanLookUp() {
		return nil
	}
	return func(ctx context.Context, sub string, iat time.Time) (bool, error) {
		ctx = context.WithoutCancel(ctx)
		now := a.cfg.Now().Add(a.cfg.ClockSkew)
		// Marks live the logout token's lifetime: older buckets are gone.
		if oldest := now.Add(-(LogoutTokenMaxAge + 2*a.cfg.ClockSkew)); iat.Before(oldest) {
			iat = oldest
		}
		for t := iat; !t.After(now.Add(subBucket)); t = t.Add(subBucket) {
			found, _, err := a.sessions.Remembered(ctx, revokedSubKey(sub, t))
			if err != nil || found {
				return found, err
			}
		}
		return false, nil
	}
}
