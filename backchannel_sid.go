package pipaauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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
