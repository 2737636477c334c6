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
	if u := Get(ctx); u != nil {
		return *u, true
	}
	return session.User{}, false
}

// Get returns the user in ctx, or nil when there is none. The User is
// shared: read it, never change it.
func Get(ctx context.Context) *session.User {
	u, _ := ctx.Value(Key{}).(*session.User)
	return u
}

// With returns a copy of ctx carrying u.
func With(ctx context.Context, u session.User) context.Context {
	return context.WithValue(ctx, Key{}, &u)
}
