// Package userctx holds the context key of the logged-in user, shared by
// package middleware, which puts the user in a request's context, and the
// root package, which reads it back (pipaauth.UserFromContext) and puts one
// there for tests (pipaauth.ContextWithUser).
package userctx

import (
	"context"

	"github.com/pipaauth/pipaauth/session"
)

// Key is the context key; its value is a *session.User. A context type of
// its own may answer it (see middleware's userContext).
type Key struct{}

// From returns the user in ctx, and false when there is none.
func From(ctx context.Context) (session.User, bool) {
	u, ok := ctx.Value(Key{}).(*session.User)
	if !ok || u == nil {
		return session.User{}, false
	}
	return *u, true
}

// With returns a copy of ctx carrying u.
func With(ctx context.Context, u session.User) context.Context {
	return context.WithValue(ctx, Key{}, &u)
}
