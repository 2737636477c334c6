package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/jwks"
)

// What an ID token check says when PiPA's keys are not there, or when a
// refreshed ID token names another user.

// errIdentityChanged marks a refreshed ID token whose iss or sub is not the
// session's (OpenID Connect Core 12.2): the session ends.
var errIdentityChanged = errors.New("the refreshed id_token names another identity")

// keysUnavailable is the error of an ID token that could not be checked for
// want of PiPA's keys: a temporary failure, not a refusal.
type keysUnavailable struct{ e *errs.Error }

func (k *keysUnavailable) Error() string { return k.e.Error() }
func (k *keysUnavailable) Unwrap() error { return k.e }

// verify runs the verifier on raw with a Report, and explains a failure:
// keys unavailable (*keysUnavailable), a token from another issuer
// (errIdentityChanged: its signature verified), or a refusal.
func (f *Flow) verify(ctx context.Context, raw string) (*oidc.IDToken, error) {
	// An ID token comes from PiPA's token endpoint: during a key rotation
	// it may wait for the next JWKS fetch rather than be refused, and
	// fetches on a slot of its own, which anonymous logout tokens cannot
	// spend.
	vctx, rep := jwks.WithReport(jwks.WithWait(jwks.WithPriority(ctx)))
	idt, err := f.cfg.Verifier.Verify(vctx, raw)
	if err == nil {
		return idt, nil
	}
	if rep.Unavailable != nil {
		return nil, &keysUnavailable{e: keysError(rep)}
	}
	if rep.Verified {
		// Signed by PiPA, refused by go-oidc after the signature: tell a
		// token from another issuer apart.
		if iss, ok := issuerOf(raw); ok && iss != f.cfg.Issuer {
			return nil, fmt.Errorf("%w: id_token iss %q is not the issuer", errIdentityChanged, iss)
		}
	}
	_, brief := httpx.Brief(err) // a JWKS error holds PiPA's answer
	return nil, fmt.Errorf("id_token: %w", brief)
}

// keysError is the answer to a login whose ID token could not be checked:
// 504 when the JWKS fetch timed out, 503 when a fetch may not start yet
// (UnknownKeyInterval) and the last one did not fail, else 502; all
// offering a new login (ErrExchange).
func keysError(rep *jwks.Report) *errs.Error {
	err := rep.Unavailable
	var e *errs.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e = errs.New(http.StatusGatewayTimeout, errs.ErrExchange, "PiPA's signing keys could not be fetched in time. Please try again in a moment.", err)
	case errors.Is(err, jwks.ErrThrottled):
		e = errs.New(http.StatusServiceUnavailable, errs.ErrExchange, "PiPA's new signing keys are not known here yet. Please try again in a few seconds.", err)
	default:
		e = errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA's signing keys could not be fetched. Please try again in a moment.", err)
	}
	return e.WithCode(errs.CodeKeysUnavailable)
}

// idTokenError is the answer to a login whose ID token failed.
func idTokenError(err error) *errs.Error {
	var k *keysUnavailable
	if errors.As(err, &k) {
		return k.e
	}
	return refused(err)
}

// issuerOf reads the iss claim of a JWS whose signature has been verified.
func issuerOf(raw string) (string, bool) {
	jws, err := jose.ParseSignedCompact(raw, jwks.Algorithms)
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) != nil {
		return "", false
	}
	return c.Iss, true
}

// checkRefreshed checks the ID token of a refresh answer as a login's is
// checked (signature, algorithm, iss, aud, azp, at_hash, exp, iat, nbf and
// auth_time with ClockSkew), and that it names the session's subject and
// issuer (OpenID Connect Core 12.2). Its answers:
//   - tok, nil: no ID token, or it passed (tok carries it, Extra("id_token"));
//   - tok less its ID token, nil: PiPA's keys could not be had, so the ID
//     token went unchecked (logged); the tokens came from PiPA's token
//     endpoint and the previous refresh token may be spent, so they are
//     kept, and the session's identity stays as it was;
//   - an error wrapping ErrRefreshRefused (the session ends) when the ID
//     token names another sub or iss;
//   - else an error wrapping ErrInvalidToken (502): the refresh failed, its
//     tokens are not used, the session stays.
func (f *Flow) checkRefreshed(ctx context.Context, tok *oauth2.Token, subject string) (*oauth2.Token, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" || !f.openid {
		return tok, nil
	}
	idt, _, err := f.checkIDToken(ctx, raw, tok.AccessToken, true)
	if err == nil && idt.Subject != subject {
		err = fmt.Errorf("%w: the refreshed id_token names another sub (OpenID Connect Core 12.2)", errIdentityChanged)
	}
	var k *keysUnavailable
	switch {
	case err == nil:
		return tok, nil
	case errors.As(err, &k):
		f.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "pipaauth: the refreshed ID token went unchecked: PiPA's signing keys could not be fetched; the new tokens are kept and the session's identity stays as it was until a later refresh",
			slog.String("error", k.Error()))
		return &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, ExpiresIn: tok.ExpiresIn}, nil
	case errors.Is(err, errIdentityChanged):
		return nil, sessionOver(refused(err))
	}
	return nil, errs.New(http.StatusBadGateway, errs.ErrInvalidToken, "PiPA's refreshed tokens did not pass verification. Please try again later.", err)
}

// RefreshedIDToken returns the raw ID token of a Refresh result when it was
// verified (checkRefreshed), for the next id_token_hint; "" when the answer
// had none, it went unchecked (PiPA's keys could not be had), or the flow
// does not use OpenID Connect.
// For wiring only: applications use package pipaauth.
func (f *Flow) RefreshedIDToken(tok *oauth2.Token) string {
	if !f.openid || tok == nil {
		return ""
	}
	raw, _ := tok.Extra("id_token").(string)
	return raw
}
