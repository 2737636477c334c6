package pipaauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/pipaauth/pipaauth/callback"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/events"
	"github.com/pipaauth/pipaauth/session"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of Event.
const (
	EventLogin         EventKind = "login"               // a callback logged a user in
	EventLoginFailed   EventKind = "login_failed"        // a login could not start, or its callback was refused
	EventLogout        EventKind = "logout"              // LogoutHandler ended a logged-in session, or BackChannelLogoutHandler ended the sessions of a logout token (User is its sub, "" for a logout by sid alone; also when no session matched)
	EventRefresh       EventKind = "refresh"             // Token refreshed the session's tokens
	EventRefreshFailed EventKind = "refresh_failed"      // Token needed a refresh and did not get one
	EventStoreError    EventKind = "session_store_error" // the session store failed outside a login or refresh
	// EventKeysSkipped reports a fetch of PiPA's JWKS that skipped keys
	// this package cannot use (Event.SkippedKeys says which): one per
	// fetch, not per request. It is reported on the fetch's goroutine, with
	// the context of the request that started the fetch.
	EventKeysSkipped EventKind = "keys_skipped"
)

// Event is one outcome, reported to Config.OnEvent. No field ever holds a
// code, token, state, nonce, cookie or secret.
type Event struct {
	Kind     EventKind
	Reason   string        // a stable, machine-readable reason for failures (for example "state_unknown", "nonce_mismatch", "provider_denied"); "" on success
	UserID   string        // "" when unknown
	Duration time.Duration // how long the operation took (login: the callback; refresh: the refresh call; keys_skipped: the JWKS fetch)
	// SkippedKeys are, for EventKeysSkipped, the keys of PiPA's JWKS that
	// were skipped (kid, kty, crv, alg and why; never key material).
	SkippedKeys []SkippedKey
	Claim       string // EventClaimNotKept: the claim's name; "" otherwise
}

// Reasons of failed Events: a closed set of stable strings, the same one for
// the same cause. New causes may add reasons; existing ones keep their
// meaning.
const (
	ReasonStateUnknown      = "state_unknown"       // callback: state missing, unknown, expired or already used (ErrInvalidState)
	ReasonCallbackMalformed = "callback_malformed"  // callback: repeated parameters, no code, wrong method (ErrInvalidCallback, ErrMethod)
	ReasonIssuerMismatch    = "issuer_mismatch"     // callback: iss is another issuer's, or missing although promised (RFC 9207)
	ReasonProviderDenied    = "provider_denied"     // PiPA answered error=access_denied: the user declined
	ReasonProviderError     = "provider_error"      // PiPA answered another error code (*ProviderError)
	ReasonExchangeRefused   = "exchange_refused"    // the token endpoint answered 4xx to the code exchange
	ReasonExchangeFailed    = "exchange_failed"     // the token endpoint failed (5xx) or could not be reached (ErrExchange), at login or refresh
	ReasonExchangeTimeout   = "exchange_timeout"    // the token endpoint did not answer within ExchangeTimeout, at login or refresh
	ReasonNonceMismatch     = "nonce_mismatch"      // the ID token's nonce is not the login attempt's
	ReasonIDTokenExpired    = "id_token_expired"    // the ID token has expired (check the clocks)
	ReasonUnreadable        = "response_unreadable" // PiPA answered the token or UserInfo request in a form this package cannot read (content type, JSON, expires_in, size), at login or refresh
	ReasonUserInfoInvalid   = "userinfo_invalid"    // the UserInfo request was refused, or its answer names another sub or a malformed email
	ReasonIDTokenInvalid    = "id_token_invalid"    // any other failed check of the token response or ID token (ErrInvalidToken)
	ReasonStepUpNotRecent   = "step_up_not_recent"  // RequireRecentLogin: the ID token has no auth_time, or one older than maxAge plus ClockSkew (ErrStepUp)
	ReasonStepUpOtherUser   = "step_up_other_user"  // RequireRecentLogin: PiPA logged in another user than the session's (ErrStepUp)
	ReasonSessionStore      = "session_store"       // the session store failed or timed out (ErrSessionStore)
	ReasonCookieTooLarge    = "cookie_too_large"    // the session would not fit a cookie (ErrCookieTooLarge)
	ReasonDiscoveryFailed   = "discovery_failed"    // LazyDiscovery: PiPA's discovery document is not there yet (ErrDiscovery)
	ReasonRefreshRefused    = "refresh_refused"     // PiPA refused the refresh token (revoked, expired, reused): the session ended
	ReasonNoRefreshToken    = "no_refresh_token"    // the access token expired and there is no refresh token: the session ended
	ReasonSessionEnded      = "session_ended"       // the session was ended (logout) while its tokens were being refreshed
	ReasonKeysUnavailable   = "keys_unavailable"    // PiPA's JWKS could not be fetched (5xx, timeout, unreachable): a temporary failure
	ReasonInternal          = "internal_error"      // anything else: see the log line of the same request
)

// reasonOf derives an Event's reason from the error reported: a code set
// where the error was created, else its sentinel. It never returns text
// taken from the error itself (a provider's error code is anyone's input).
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, callback.ErrRefreshRefused) { // wraps the token endpoint's 4xx, which is not the point
		switch errs.CodeOf(err) {
		case errs.CodeUnreadable:
			return ReasonUnreadable
		case errs.CodeClaimsTooLarge:
			return ReasonClaimsTooLarge
		case errs.CodeUserInfoInvalid: // the refreshed claims' UserInfo named another sub
			return ReasonUserInfoInvalid
		}
		if errors.Is(err, errs.ErrInvalidToken) { // a refreshed ID token for another sub or iss
			return ReasonIDTokenInvalid
		}
		return ReasonRefreshRefused
	}
	if c := errs.CodeOf(err); c != "" {
		return c
	}
	var pe *errs.ProviderError
	switch {
	case errors.As(err, &pe):
		if pe.Code == "access_denied" {
			return ReasonProviderDenied
		}
		return ReasonProviderError
	case errors.Is(err, errs.ErrSessionStore):
		return ReasonSessionStore
	case errors.Is(err, errs.ErrCookieTooLarge):
		return ReasonCookieTooLarge
	case errors.Is(err, errs.ErrInvalidState):
		return ReasonStateUnknown
	case errors.Is(err, errs.ErrInvalidCallback), errors.Is(err, errs.ErrMethod):
		return ReasonCallbackMalformed
	case errors.Is(err, errs.ErrExchange):
		if errors.Is(err, context.DeadlineExceeded) {
			return ReasonExchangeTimeout
		}
		return ReasonExchangeFailed
	case errors.Is(err, errs.ErrInvalidToken):
		return ReasonIDTokenInvalid
	case errors.Is(err, errs.ErrDiscovery):
		return ReasonDiscoveryFailed
	case errors.Is(err, session.ErrInvalid):
		return ReasonSessionEnded
	}
	return ReasonInternal
}

// startKey holds, with OnEvent set, when the login start or callback that r
// belongs to began.
type startKey struct{}

// timed returns r carrying its start time, when there are events to time.
func (a *Auth) timed(r *http.Request) *http.Request {
	if a.cfg.OnEvent == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), startKey{}, time.Now()))
}

// sink is what the sub-packages report through: nil without OnEvent, so
// that they skip even building the report.
func (a *Auth) sink() events.Sink {
	if a.cfg.OnEvent == nil {
		return nil
	}
	return func(r *http.Request, kind string, userID string, err error) {
		if n, ok := err.(*errs.ClaimNotKept); ok {
			a.event(r.Context(), Event{Kind: EventClaimNotKept, UserID: userID, Claim: n.Name})
			return
		}
		a.event(r.Context(), Event{Kind: EventKind(kind), Reason: reasonOf(err), UserID: userID, Duration: sinceStart(r)})
	}
}

// sinceStart is how long ago the request timed by timed began; 0 when it
// was not.
func sinceStart(r *http.Request) time.Duration {
	if start, ok := r.Context().Value(startKey{}).(time.Time); ok {
		return time.Since(start)
	}
	return 0
}

// emit reports an outcome decided in this package.
func (a *Auth) emit(r *http.Request, kind EventKind, userID string, d time.Duration, err error) {
	if a.cfg.OnEvent == nil {
		return
	}
	a.event(r.Context(), Event{Kind: kind, Reason: reasonOf(err), UserID: userID, Duration: d})
}

// event calls OnEvent, recovering and logging a panic: a broken metrics
// hook must not break logins.
func (a *Auth) event(ctx context.Context, e Event) {
	defer func() {
		if p := recover(); p != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "pipaauth: Config.OnEvent panicked", slog.String("kind", string(e.Kind)), slog.Any("panic", p))
		}
	}()
	a.cfg.OnEvent(ctx, e)
}
