package pipaauth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth/internal/jwks"
)

// Limits of BackChannelLogoutHandler.
const (
	// LogoutTokenMaxAge (a constant, not a Config field) is how old a
	// logout token may be, counted from its
	// iat: older tokens are refused even without an exp, so that a captured
	// token cannot be replayed later (the OP is encouraged to use at most two
	// minutes, Back-Channel Logout 1.0 section 4). Seen jti values are
	// remembered for this long, plus ClockSkew.
	LogoutTokenMaxAge = 5 * time.Minute
	// MaxLogoutRequestBytes caps the body of a back-channel logout request.
	MaxLogoutRequestBytes = 64 << 10
)

// backChannelLogoutEvent is the member of the events claim that makes a JWT a
// logout token (Back-Channel Logout 1.0 section 2.4).
const backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// revoker ends sessions by the provider's sid or the user's sub on every
// instance, and remembers keys across instances: the session Manager when
// its store can (CanRevoke), else nothing works and the handler answers 501.
type revoker interface {
	CanRevoke() bool
	RevokeSID(ctx context.Context, sid string) (int, error)
	RevokeSubject(ctx context.Context, sub string) (int, error)
	Remember(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
	Forget(ctx context.Context, key string) error
}

// backChannel is what BackChannelLogoutHandler needs: the revoker, set up
// by New; the verifier comes from the applied discovery document
// (provider.logoutTokens) on each request.
type backChannel struct {
	verifier *oidc.IDTokenVerifier // the provider's keys, iss and aud; exp is checked here, as it may be absent
	revoker  revoker
	skew     time.Duration // Config.ClockSkew, for iat and exp
	notice   *sync.Once    // logs once that the handler cannot work (no store that revokes)
}

// setupBackChannel prepares BackChannelLogoutHandler with the session
// Manager. New logs nothing about it: a handler that cannot work (no store
// that revokes) is logged once, when it is first mounted.
func (a *Auth) setupBackChannel(context.Context) {
	a.bcLogout = backChannel{revoker: a.sessions, notice: new(sync.Once)}
}

// logBackChannelDiscovery reads what the discovery document announces about
// back-channel logout (Back-Channel Logout 1.0 section 2.1:
// backchannel_logout_supported, backchannel_logout_session_supported) and
// logs it. It only informs: the handler verifies what arrives either way.
// applyDiscovery calls it, for New's document and LazyDiscovery's alike.
func (a *Auth) logBackChannelDiscovery(ctx context.Context, d discovery) {
	msg := "pipaauth: the provider announces back-channel logout"
	if !d.BackChannelLogout {
		msg = "pipaauth: the provider does not announce back-channel logout (backchannel_logout_supported); BackChannelLogoutHandler still verifies any logout token it receives"
	}
	a.log.LogAttrs(ctx, slog.LevelDebug, msg,
		slog.Bool("backchannel_logout_supported", d.BackChannelLogout),
		slog.Bool("backchannel_logout_session_supported", d.BackChannelLogoutSession),
		slog.Bool("store_can_revoke", a.sessions.CanRevoke()))
}

// BackChannelLogoutHandler receives OpenID Connect Back-Channel Logout 1.0 logout
// tokens (POST, form field logout_token) and ends the sessions they name.
//
// Register its absolute URL at the provider as the client's
// backchannel_logout_uri. The request must be a POST of
// application/x-www-form-urlencoded with exactly one logout_token, and at
// most MaxLogoutRequestBytes. The token is verified as section 2.6 says:
//   - signature with the provider's keys (go-oidc, the algorithms allowed for
//     ID tokens: Config.SigningAlgs, never "none" or HS*), iss, and aud
//     holding this client and no other audience; azp, when present, is this
//     client;
//   - typ header, when present, is logout+jwt (or application/logout+jwt), or
//     JWT, which providers that do not type their tokens send; any other typ
//     is refused (section 4.1, cross-JWT confusion);
//   - iat present, at most ClockSkew in the future and at most
//     LogoutTokenMaxAge old; exp, when present, not passed (exp is REQUIRED
//     since errata set 1, but tokens of providers that follow the 2022 text
//     have none: iat then bounds their age);
//   - jti present and never seen before within its lifetime, across all
//     instances (the store remembers it);
//   - events a JSON object whose member
//     "http://schemas.openid.net/event/backchannel-logout" is a JSON object;
//   - sub or sid present (non-empty strings), and no nonce claim.
//
// Then it ends, on every instance, the sessions whose login carried that sid
// when the token has one (sub then only names their user; the sid is also
// remembered for the token's lifetime, and a login with it finishing
// meanwhile fails with 401 and ends its session), or else every session of
// sub, and answers 200 with Cache-Control: no-store; a token
// naming no live session succeeds too (logout is idempotent).
//
// Refusals carry a JSON body {"error":"...","error_description":"..."}
// (section 2.8) and revoke nothing: 400 invalid_request for a malformed
// request or a token that fails a check (including a replayed jti), 405 with
// Allow: POST for another method, 413 for a body over the cap, 501 when the
// session store cannot end sessions by sid or sub (cookie sessions, plain
// gorilla stores: the first call of BackChannelLogoutHandler logs this as a
// warning), and 503 temporarily_unavailable when
// the store failed: the jti of a token whose sessions could not be ended is
// forgotten again (RevocableStore.Forget, under a deadline of its own), so
// the provider's retry with the same token is accepted. Once the token is
// verified, the store work runs to its end even if the provider hangs up. A
// token that cannot be checked for want of PiPA's keys (the JWKS cannot be
// fetched, or a new kid arrived less than UnknownKeyInterval after the last
// fetch) gets 503 temporarily_unavailable with Retry-After too, and nothing
// is remembered: the retry succeeds once the keys can be had.
// Config.ErrorHandler is not called: the caller is the
// provider, not a browser. Logout tokens are never logged.
func (a *Auth) BackChannelLogoutHandler() http.Handler {
	if b := a.bcLogout; !b.revoker.CanRevoke() {
		b.notice.Do(func() {
			a.log.LogAttrs(context.Background(), slog.LevelWarn, "pipaauth: back-channel logout is not available: the session store cannot end sessions by sid or sub (cookie sessions, plain gorilla stores), so BackChannelLogoutHandler answers 501; use a RevocableStore such as redisstore")
		})
	}
	return http.HandlerFunc(a.serveBackChannelLogout)
}

func (a *Auth) serveBackChannelLogout(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.refuseLogout(w, r, http.StatusMethodNotAllowed, "invalid_request", "Send logout tokens with POST.", nil)
		return
	}
	b := a.bcLogout
	if !b.revoker.CanRevoke() {
		a.refuseLogout(w, r, http.StatusNotImplemented, "server_error", "Back-channel logout is not available: the session store cannot end sessions by sid or sub.", nil)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		a.refuseLogout(w, r, http.StatusBadRequest, "invalid_request", "The body must be application/x-www-form-urlencoded.", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxLogoutRequestBytes)
	if err := r.ParseForm(); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			a.refuseLogout(w, r, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.", nil)
			return
		}
		a.refuseLogout(w, r, http.StatusBadRequest, "invalid_request", "The form body is malformed.", err)
		return
	}
	// Only the body counts: a logout_token in the query string is ignored.
	raw := r.PostForm["logout_token"]
	if len(raw) != 1 || raw[0] == "" {
		a.refuseLogout(w, r, http.StatusBadRequest, "invalid_request", "The body must carry exactly one non-empty logout_token.", nil)
		return
	}
	p, err := a.provider(r.Context())
	if err != nil {
		// LazyDiscovery before PiPA's document arrived: no keys to verify
		// the token with yet. The provider retries.
		a.refuseLogout(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The provider's discovery document is not available yet; try again.", err)
		return
	}
	b.verifier, b.skew = p.logoutTokens, a.cfg.ClockSkew
	lt, bad := b.verify(r.Context(), raw[0], a.cfg.Issuer, a.cfg.ClientID, a.cfg.Now())
	if bad != nil && bad.retry {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((bad.after+time.Second-1)/time.Second))))
		a.refuseLogout(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", bad.reason, bad.err)
		return
	}
	if bad != nil {
		a.refuseLogout(w, r, http.StatusBadRequest, "invalid_request", bad.reason, bad.err)
		return
	}

	// From here on the work does not depend on the provider's connection:
	// a client that hangs up must not leave the jti claimed and the sessions
	// live (Back-Channel Logout 1.0 sections 2.7 and 2.8). Each store step
	// gets its own deadline.
	storeTimeout := cmp.Or(a.cfg.SessionStoreTimeout, 3*time.Second)
	bg := context.WithoutCancel(r.Context())
	ctx, cancel := context.WithTimeout(bg, 2*storeTimeout) // Remember, then the revocation
	defer cancel()
	// The jti is claimed before anything is revoked, atomically across
	// instances, so that a replay never ends a session opened since.
	ttl := lt.iat.Add(LogoutTokenMaxAge + a.cfg.ClockSkew).Sub(a.cfg.Now())
	first, err := b.revoker.Remember(ctx, jtiKey(lt.iss, lt.jti), max(ttl, time.Second))
	if err != nil {
		err = fmt.Errorf("%w: remembering the jti: %w", ErrSessionStore, err)
		a.refuseLogout(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The session store failed; try again.", err)
		a.emit(r, EventStoreError, lt.sub, 0, err)
		return
	}
	if !first {
		a.refuseLogout(w, r, http.StatusBadRequest, "invalid_request", "The logout token was already used (jti seen before).", nil)
		return
	}
	by, n := "sid", 0
	if lt.sid != "" {
		// Marked first, so that a login with this sid finishing meanwhile
		// ends its own session (see backchannel_sid.go).
		err = markRevoked(ctx, b.revoker, revokedSIDKey(lt.sid), max(ttl, time.Second))
		if err == nil {
			n, err = b.revoker.RevokeSID(ctx, lt.sid)
		}
	} else {
		by = "sub"
		// Marked first, so that a login of this user finishing meanwhile
		// ends its own session (see backchannel_sid.go).
		_, err = b.revoker.Remember(ctx, revokedSubKey(lt.sub, lt.iat), max(ttl, time.Second))
		if err == nil {
			n, err = b.revoker.RevokeSubject(ctx, lt.sub)
		}
	}
	if err != nil {
		// The provider retries a failed delivery with the same token:
		// let that retry through the replay check.
		// Forget gets a deadline of its own: the revocation may have
		// failed because ctx ran out.
		fctx, fcancel := context.WithTimeout(bg, storeTimeout)
		ferr := b.revoker.Forget(fctx, jtiKey(lt.iss, lt.jti))
		fcancel()
		if ferr != nil {
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: back-channel logout could not forget the jti of a failed revocation; the provider's retry with the same token will be refused as a replay", slog.String("error", ferr.Error()))
		}
		err = fmt.Errorf("%w: revoking by %s: %w", ErrSessionStore, by, err)
		a.refuseLogout(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "The session store failed; the sessions may not have ended.", err)
		a.emit(r, EventStoreError, lt.sub, 0, err)
		return
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: back-channel logout",
		slog.String("by", by), slog.String("user", lt.sub), slog.Int("sessions", n), slog.String("jti", lt.jti))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	a.emit(r, EventLogout, lt.sub, time.Since(start), nil) // lt.sub is "" for a logout by sid alone
}

// refuseLogout logs a refused back-channel logout request (never the token)
// and answers with the JSON error body of section 2.8.
func (a *Auth) refuseLogout(w http.ResponseWriter, r *http.Request, status int, code, description string, cause error) {
	attrs := []slog.Attr{slog.Int("status", status), slog.String("reason", description)}
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: back-channel logout refused", attrs...)
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// jtiKey is the key under which a seen jti is remembered: a digest, so that
// the key's length and bytes do not depend on the provider's choice of jti.
func jtiKey(iss, jti string) string {
	sum := sha256.Sum256([]byte(iss + "\x00" + jti))
	return "backchannel-jti:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// logoutToken is a verified logout token: what the handler acts on.
type logoutToken struct {
	iss, sub, sid, jti string
	iat                time.Time
}

// badLogoutToken is why a logout token failed a check: reason is safe to
// send back to the provider, err (optional) is for the log.
type badLogoutToken struct {
	reason string
	err    error
	retry  bool          // 503 temporarily_unavailable: the provider should send it again
	after  time.Duration // with retry: the Retry-After
}

// logoutClaims are the claims read beyond what go-oidc checks. Raw messages
// let the mere presence of a claim (nonce, even null) be detected.
type logoutClaims struct {
	AZP    *string         `json:"azp"`
	JTI    json.RawMessage `json:"jti"`
	SID    json.RawMessage `json:"sid"`
	Events json.RawMessage `json:"events"`
	Nonce  json.RawMessage `json:"nonce"`
}

// verify checks raw as Back-Channel Logout 1.0 section 2.6 says, except the
// jti replay check, which needs the store. Its unverified iss, aud and
// events are checked first (precheckLogoutToken): a token that names
// another issuer or client, or is no logout token, never reaches the key
// set.
func (b *backChannel) verify(ctx context.Context, raw, issuer, clientID string, now time.Time) (*logoutToken, *badLogoutToken) {
	bad := func(reason string, err error) (*logoutToken, *badLogoutToken) {
		return nil, &badLogoutToken{reason: reason, err: err}
	}
	jws, err := jose.ParseSignedCompact(raw, signatureAlgorithms)
	if err != nil {
		// A JWT is a JWS in compact form (RFC 7519 section 7.2); go-oidc
		// would also take the JSON serialization.
		return bad("The logout token's signature is not valid: it must be a JWS in compact form with an accepted algorithm.", err)
	}
	if pre := precheckLogoutToken(jws, issuer, clientID); pre != nil {
		return nil, pre
	}
	vctx, rep := jwks.WithReport(ctx)
	idt, err := b.verifier.Verify(vctx, raw)
	if err != nil && rep.Unavailable != nil {
		return nil, unavailableKeys(rep, err)
	}
	if err != nil {
		return bad("The logout token's signature, issuer or audience is not valid.", err)
	}
	if typ, ok := tokenType(raw); !ok || !logoutType(typ) {
		return bad("The logout token's typ header is not logout+jwt.", fmt.Errorf("typ %q", typ))
	}
	for _, aud := range idt.Audience {
		if aud != clientID {
			// As for ID tokens (OpenID Connect Core 3.1.3.7): no audience
			// the client does not trust.
			return bad("The logout token names another audience than this client.", fmt.Errorf("aud %q", aud))
		}
	}
	var c logoutClaims
	if err := idt.Claims(&c); err != nil {
		return bad("The logout token's claims are malformed.", err)
	}
	if c.AZP != nil && *c.AZP != clientID {
		return bad("The logout token's azp is not this client.", fmt.Errorf("azp %q", *c.AZP))
	}
	switch {
	case idt.IssuedAt.IsZero():
		return bad("The logout token has no iat.", nil)
	case idt.IssuedAt.After(now.Add(b.skew)):
		return bad("The logout token's iat is in the future.", fmt.Errorf("iat %s", idt.IssuedAt.UTC().Format(time.RFC3339)))
	case now.Sub(idt.IssuedAt) > LogoutTokenMaxAge:
		return bad("The logout token is too old (iat).", fmt.Errorf("iat %s, more than %s ago", idt.IssuedAt.UTC().Format(time.RFC3339), LogoutTokenMaxAge))
	case !idt.Expiry.IsZero() && idt.Expiry.Add(b.skew).Before(now):
		return bad("The logout token has expired (exp).", fmt.Errorf("exp %s", idt.Expiry.UTC().Format(time.RFC3339)))
	}
	if !isLogoutEvent(c.Events) {
		return bad(`The logout token's events claim lacks the member "`+backChannelLogoutEvent+`" with a JSON object value.`, nil)
	}
	if len(c.Nonce) != 0 {
		return bad("The logout token carries a nonce claim.", nil)
	}
	jti, ok := jsonString(c.JTI)
	if !ok || jti == "" {
		return bad("The logout token has no jti.", nil)
	}
	sid, ok := jsonString(c.SID)
	if !ok && len(c.SID) != 0 {
		return bad("The logout token's sid is not a string.", nil)
	}
	if idt.Subject == "" && sid == "" {
		return bad("The logout token has neither sub nor sid.", nil)
	}
	return &logoutToken{iss: idt.Issuer, sub: idt.Subject, sid: sid, jti: jti, iat: idt.IssuedAt}, nil
}

// isLogoutEvent reports whether events is a JSON object whose back-channel
// logout member is a JSON object.
func isLogoutEvent(events json.RawMessage) bool {
	// A map, not a struct field, so that the member name must match
	// exactly (encoding/json matches field names case-insensitively). Any
	// value but an object (absent, null, string, array) leaves members nil:
	// the lookup then fails, so the error says nothing more.
	var members, event map[string]json.RawMessage
	_ = json.Unmarshal(events, &members)
	v, ok := members[backChannelLogoutEvent]
	return ok && json.Unmarshal(v, &event) == nil && event != nil
}

// jsonString reads a JSON string; false when raw is absent or another type.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// signatureAlgorithms are every JWS algorithm go-jose knows: tokenType only
// reads the header of a token go-oidc has verified with the provider's
// algorithms.
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.EdDSA, jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512,
}

// tokenType returns the typ header of a JWS verified by go-oidc: "" when
// absent; false when it is not a string (or the JWS does not parse, which
// go-oidc has ruled out).
func tokenType(raw string) (string, bool) {
	jws, err := jose.ParseSignedCompact(raw, signatureAlgorithms) // a JWT is compact (RFC 7519 section 7.2)
	if err != nil || len(jws.Signatures) != 1 {
		return "", false
	}
	v, ok := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]
	if !ok {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

// logoutType reports whether a logout token may carry the typ header typ:
// none, logout+jwt with or without "application/" (media types compare
// case-insensitively, RFC 7515 section 4.1.9), or JWT from providers that do
// not type logout tokens (explicit typing is only RECOMMENDED, section 2.4).
func logoutType(typ string) bool {
	switch strings.ToLower(typ) {
	case "", "logout+jwt", "application/logout+jwt", "jwt":
		return true
	}
	return false
}
