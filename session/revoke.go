package session

// PLACEHOLDER (branch ibcl): the issue 10 work (branch i10) implements these
// four methods on top of its Redis store. This file only gives them their
// signatures so that back-channel logout builds and is tested against a fake;
// replace it with i10's version at merge.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrRevokeUnsupported is wrapped by RevokeSID, RevokeSubject and Remember
// when the Manager's store cannot end sessions by sid or sub nor remember
// keys: cookie sessions and plain gorilla stores.
var ErrRevokeUnsupported = errors.New("session: the session store cannot revoke sessions by sid or sub")

// CanRevoke reports whether RevokeSID, RevokeSubject and Remember work with
// the Manager's store.
func (m *Manager) CanRevoke() bool { return false }

// RevokeSID ends every session whose login carried the provider session id
// sid (the ID token's sid claim), on every instance, and returns how many.
func (m *Manager) RevokeSID(ctx context.Context, sid string) (int, error) {
	return 0, fmt.Errorf("%w (RevokeSID)", ErrRevokeUnsupported)
}

// RevokeSubject ends every session of the user sub (the ID token's sub
// claim), on every instance, and returns how many.
func (m *Manager) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return 0, fmt.Errorf("%w (RevokeSubject)", ErrRevokeUnsupported)
}

// Remember records key for ttl and reports whether it was new: first is true
// for exactly one caller across all instances until ttl has passed.
func (m *Manager) Remember(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	return false, fmt.Errorf("%w (Remember)", ErrRevokeUnsupported)
}
