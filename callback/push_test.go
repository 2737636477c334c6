package callback

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// TestPushErrors checks how push hands on what Config.Push returns: the
// root's *errs.Error as it is, any other error as a 502 wrapping
// ErrExchange, and a request_uri as the browser's authorization URL.
func TestPushErrors(t *testing.T) {
	own := errs.New(http.StatusServiceUnavailable, errs.ErrExchange, "unreachable", errors.New("dial"))
	plain := errors.New("some push failure")
	tests := []struct {
		name       string
		push       PushFunc
		wantStatus int
		wantIs     error
		wantURL    string
	}{
		{"pipaauth error kept", func(context.Context, url.Values) (string, error) { return "", own }, http.StatusServiceUnavailable, own, ""},
		{"other error is a 502", func(context.Context, url.Values) (string, error) { return "", plain }, http.StatusBadGateway, plain, ""},
		{"request_uri", func(_ context.Context, p url.Values) (string, error) {
			if p.Get("state") != "s" {
				t.Errorf("pushed parameters %v lack the state", p)
			}
			return "urn:example:r", nil
		}, 0, nil, "https://pipa.example/authorize?client_id=c&request_uri=urn%3Aexample%3Ar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Flow{cfg: Config{
				OAuth2:  &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "https://pipa.example/authorize"}},
				Timeout: time.Second,
				Push:    tt.push,
			}}
			got, e := f.push(context.Background(), "https://pipa.example/authorize?client_id=c&state=s")
			if tt.wantIs == nil {
				if e != nil || got != tt.wantURL {
					t.Fatalf("push = %q, %v; want %q, nil", got, e, tt.wantURL)
				}
				return
			}
			if e == nil {
				t.Fatalf("push = %q, nil; want an error", got)
			}
			if e.Status != tt.wantStatus || !errors.Is(e, tt.wantIs) || !errors.Is(e, errs.ErrExchange) || e.Reason == "" {
				t.Errorf("push error = %d %q %v; want %d wrapping %v and ErrExchange", e.Status, e.Reason, e, tt.wantStatus, tt.wantIs)
			}
		})
	}
}
