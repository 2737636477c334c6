package userctx

import (
	"context"
	"testing"

	"github.com/pipaauth/pipaauth/session"
)

func TestFromWith(t *testing.T) {
	if u, ok := From(context.Background()); ok || u != (session.User{}) {
		t.Errorf("got %+v, %v; want zero, false", u, ok)
	}
	ctx := With(context.Background(), session.User{ID: "x"})
	if u, ok := From(ctx); !ok || u.ID != "x" {
		t.Errorf("got %+v, %v", u, ok)
	}
}
