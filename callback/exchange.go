package callback

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/session"
)

const (
	maxSubject = 255 // OpenID Connect Core 1.0, section 2: sub is at most 255 ASCII characters
	maxEmail   = 254 // RFC 5321's path limit, less the angle brackets
)

// exchange trades the code for tokens and returns who logged in, and the ID
// token's sid ("" when none). Its errors never hold the code or a token.
func (f *Flow) exchange(ctx context.Context, code string, a session.Attempt) (session.User, *session.Tokens, string, *errs.Error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.Client)
	ctx = oidc.ClientContext(ctx, f.cfg.Client)

	var opts []oauth2.AuthCodeOption
	if a.Verifier != "" {
		opts = append(opts, oauth2.VerifierOption(a.Verifier))
	}
	tok, err := f.cfg.OAuth2.Exchange(ctx, code, opts...)
	if err != nil {
		return session.User{}, nil, "", exchangeError(err)
	}
	if t := tok.TokenType; t != "" && !strings.EqualFold(t, "bearer") {
		return refused(fmt.Errorf("token_type %q is not Bearer", t))
	}
	userID, err := tokenUserID(tok)
	if err != nil {
		return refused(err)
	}
	user, sid := session.User{ID: userID}, ""
	if f.openid {
		user, sid, err = f.verifyIDToken(ctx, tok, a.Nonce, userID)
		if err != nil {
			return refused(err)
		}
	} else if userID == "" {
		return refused(errors.New("the token response has no user_id and no ID token was asked for"))
	}
	if len(user.ID) > maxSubject {
		return refused(fmt.Errorf("user id is %d bytes, more than %d", len(user.ID), maxSubject))
	}
	tokens := &session.Tokens{
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		TokenType:    tok.TokenType,
		Expiry:       Expiry(tok, f.cfg.Now()),
	}
	return user, tokens, sid, nil
}

// Expiry returns when tok's access token expires, counted from now by the
// configured clock (x/oauth2 counts from the wall clock): zero when the
// provider gave no expires_in.
// For wiring only: applications use package pipaauth.
func Expiry(tok *oauth2.Token, now time.Time) time.Time {
	switch {
	case tok.ExpiresIn > 0:
		return now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero(): // form-encoded responses set only Expiry
		return tok.Expiry
	}
	return time.Time{}
}

func refused(err error) (session.User, *session.Tokens, string, *errs.Error) {
	return session.User{}, nil, "", errs.New(http.StatusBadRequest, errs.ErrInvalidToken, "PiPA's answer did not pass verification. Please log in again.", err)
}

// exchangeError describes a failed token request without the response body,
// which is the provider's to fill.
func exchangeError(err error) *errs.Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		detail := fmt.Errorf("token endpoint answered %d %q", status, re.ErrorCode)
		if status >= 400 && status < 500 {
			return errs.New(http.StatusBadRequest, errs.ErrExchange, "PiPA refused the login code. Please log in again.", detail)
		}
		return errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA's token endpoint failed. Please try again later.", detail)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.New(http.StatusGatewayTimeout, errs.ErrExchange, "PiPA did not answer in time. Please try again later.", context.DeadlineExceeded)
	}
	return errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA's token endpoint could not be reached. Please try again later.", err)
}

// tokenUserID returns the token response's user_id as a string: a JSON string
// as is, a JSON number as its integer digits. x/oauth2 decodes numbers to
// float64, so one beyond 2^53-1 may already be rounded: it is refused rather
// than guessed. An absent user_id gives "".
func tokenUserID(tok *oauth2.Token) (string, error) {
	// A form-encoded response gives "" for any absent key, a JSON one nil:
	// ask for a key no response has to tell them apart. RFC 6749 (5.1)
	// requires JSON, and x/oauth2 reads form values through number parsing
	// ("007" and "7.0" both become 7), so a form response is refused.
	if tok.Extra("\x00") != nil {
		return "", errors.New("the token response is form-encoded, not JSON")
	}
	switch v := tok.Extra("user_id").(type) {
	case nil:
		return "", nil
	case string:
		if v == "" {
			return "", errors.New("user_id is an empty string")
		}
		return v, nil
	case float64:
		if v != math.Trunc(v) || v < 0 || v > 1<<53-1 {
			return "", errors.New("user_id is a number that is not an integer in 0..2^53-1 and cannot be read exactly")
		}
		return strconv.FormatInt(int64(v), 10), nil
	default:
		return "", fmt.Errorf("user_id is a JSON %T, want a string or an integer", v)
	}
}

// idClaims are the claims read beyond what go-oidc checks.
type idClaims struct {
	AZP           *string         `json:"azp"`
	Email         *string         `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	SID           *string         `json:"sid"`
}

// maxSID bounds the sid claim as the session bounds its fields.
const maxSID = 2048

// verifyIDToken checks the ID token: go-oidc for signature, iss, aud and exp;
// this package for nonce, sub, iat, aud, azp, at_hash and user_id agreement.
// It returns the user and the token's sid claim ("" when none: OpenID
// Connect Back-Channel Logout 1.0 section 2.4), which the session records so
// that a logout token naming that sid ends it.
func (f *Flow) verifyIDToken(ctx context.Context, tok *oauth2.Token, nonce, userID string) (session.User, string, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return session.User{}, "", errors.New("the token response has no id_token although the openid scope was asked for")
	}
	idt, err := f.cfg.Verifier.Verify(ctx, raw)
	if err != nil {
		return session.User{}, "", fmt.Errorf("id_token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return session.User{}, "", errors.New("id_token nonce does not match the login attempt")
	}
	if idt.Subject == "" {
		return session.User{}, "", errors.New("id_token has no sub")
	}
	now := f.cfg.Now()
	switch {
	case idt.IssuedAt.IsZero():
		return session.User{}, "", errors.New("id_token has no iat")
	case idt.IssuedAt.After(now.Add(f.cfg.ClockSkew)):
		return session.User{}, "", fmt.Errorf("id_token iat %s is in the future", idt.IssuedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return session.User{}, "", fmt.Errorf("id_token claims: %w", err)
	}
	clientID := f.cfg.OAuth2.ClientID
	for _, aud := range idt.Audience {
		if aud != clientID {
			// OpenID Connect Core 3.1.3.7: reject audiences the client does not trust.
			return session.User{}, "", fmt.Errorf("id_token audience %q is not this client", aud)
		}
	}
	if c.AZP != nil && *c.AZP != clientID {
		return session.User{}, "", fmt.Errorf("id_token azp %q is not this client", *c.AZP)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return session.User{}, "", fmt.Errorf("id_token at_hash: %w", err)
		}
	}
	if userID != "" && userID != idt.Subject {
		return session.User{}, "", errors.New("the token response's user_id differs from the id_token's sub")
	}
	if c.SID != nil && len(*c.SID) > maxSID {
		return session.User{}, "", fmt.Errorf("id_token sid is %d bytes, more than %d", len(*c.SID), maxSID)
	}
	u := session.User{ID: idt.Subject}
	if c.Email != nil && *c.Email != "" {
		if !validEmail(*c.Email) {
			return session.User{}, "", errors.New("id_token email is malformed")
		}
		u.Email = *c.Email
		// Only a JSON true verifies; a string "true" or anything else does not.
		u.EmailVerified = string(c.EmailVerified) == "true"
	}
	sid := ""
	if c.SID != nil {
		sid = *c.SID
	}
	return u, sid, nil
}

// validEmail accepts what could be an address: at most 254 bytes, one or
// more characters either side of an @, no spaces or control characters.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if len(s) > maxEmail || at < 1 || at == len(s)-1 {
		return false
	}
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}
