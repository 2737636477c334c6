package pipaauth

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/session"
)

// DPoP (RFC 9449): the key of a session's tokens lives in the session
// (session.Tokens.DPoPKey), and every request with those tokens carries a
// proof signed by it.

// dpopBound reports whether t are DPoP-bound tokens.
func dpopBound(t *session.Tokens) bool {
	return t != nil && (len(t.DPoPKey) > 0 || strings.EqualFold(t.TokenType, dpop.TokenType))
}

// sessionDPoPKey returns the key of t's tokens: nil for Bearer tokens, an
// error wrapping ErrNoTokens for DPoP-bound tokens whose key is missing or
// unreadable (they cannot be used; the session stays).
func sessionDPoPKey(t *session.Tokens) (*ecdsa.PrivateKey, error) {
	if !dpopBound(t) {
		return nil, nil
	}
	if len(t.DPoPKey) == 0 {
		return nil, fmt.Errorf("%w: its tokens are DPoP-bound but it holds no DPoP key, so they cannot be used; the user stays logged in, and a new login gets usable tokens", ErrNoTokens)
	}
	k, err := dpop.Parse(t.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf("%w: its DPoP key cannot be read (%v), so its tokens cannot be used; the user stays logged in, and a new login gets usable tokens", ErrNoTokens, err)
	}
	return k, nil
}

// withDPoPKey returns ctx carrying the key of t's tokens, when they have
// one that can be read.
func (a *Auth) withDPoPKey(ctx context.Context, t *session.Tokens) context.Context {
	k, err := sessionDPoPKey(t)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: the session's tokens are DPoP-bound but their key is unusable", slog.String("error", err.Error()))
		return ctx
	}
	return dpop.WithKey(ctx, k)
}

// keyHolder passes the key of the token a Client's source returned to the
// Client's DPoP transport.
type keyHolder struct {
	mu  sync.Mutex
	key *ecdsa.PrivateKey
}

func (h *keyHolder) set(k *ecdsa.PrivateKey) {
	h.mu.Lock()
	h.key = k
	h.mu.Unlock()
}

func (h *keyHolder) get() *ecdsa.PrivateKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.key
}
