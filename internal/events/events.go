// Package events carries outcome reports from pipaauth's sub-packages to the
// root package, which turns them into Config.OnEvent calls. Sub-packages
// never import the root, so they report through a Sink.
package events

import "net/http"

// Kind is what happened; the root re-exports the same strings as EventKind.
type Kind string

// The kinds of outcome.
const (
	Login         Kind = "login"
	LoginFailed   Kind = "login_failed"
	Logout        Kind = "logout"
	Refresh       Kind = "refresh"
	RefreshFailed Kind = "refresh_failed"
	StoreError    Kind = "session_store_error"
	ClaimNotKept  Kind = "claim_not_kept" // its error is an *errs.ClaimNotKept naming the claim
)

// Sink receives one outcome of a request: its kind, the user when known,
// and for a failure the error, from which the root derives the reason. It
// is called after the response is decided and with no lock held.
//
// Its kind is a plain string so that the wiring packages' Config.Events
// fields, whose type is Sink's underlying func type, name no internal type:
// the root assigns a Sink to them, and they convert back for free.
type Sink func(r *http.Request, kind string, userID string, err error)

// Emit calls s; a nil Sink (no Config.OnEvent) reports nothing and costs a
// nil check.
func (s Sink) Emit(r *http.Request, kind Kind, userID string, err error) {
	if s != nil {
		s(r, string(kind), userID, err)
	}
}
