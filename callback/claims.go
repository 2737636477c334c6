package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/events"
	"github.com/pipaauth/pipaauth/session"
)

// rawClaims is a claims object (an ID token's payload, a UserInfo answer)
// with its values undecoded.
type rawClaims map[string]json.RawMessage

// keptClaims collects the claims named in Config.Claims for one session.
type keptClaims struct {
	values  map[string]json.RawMessage // found, compacted
	refs    []string                   // named claims seen only as distributed or aggregated references
	missing []string                   // named claims not found (yet)
}

// takeClaims takes the claims named in names from c. A name whose value is
// absent or JSON null stays missing; one listed in _claim_names (OpenID
// Connect Core 5.6.2) without a value of its own is remembered as a
// reference, never fetched.
func takeClaims(c rawClaims, names []string, k *keptClaims) {
	if k.values == nil {
		k.values = make(map[string]json.RawMessage, len(names))
	}
	var refNames map[string]json.RawMessage
	if raw, ok := c["_claim_names"]; ok {
		json.Unmarshal(raw, &refNames) // a malformed _claim_names names nothing
	}
	var missing []string
	for _, name := range names {
		if _, done := k.values[name]; done {
			continue
		}
		v, ok := c[name]
		if ok && !isNull(v) {
			var buf bytes.Buffer
			if json.Compact(&buf, v) == nil {
				k.values[name] = buf.Bytes()
				continue
			}
		}
		if _, ok := refNames[name]; ok && !slices.Contains(k.refs, name) {
			k.refs = append(k.refs, name)
		}
		missing = append(missing, name)
	}
	k.missing = missing
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// encode returns the kept claims as one JSON object, in the order of names;
// "" when none was found. The references still missing are returned as not
// kept.
func (k *keptClaims) encode(names []string) (string, []string) {
	var notKept []string
	for _, name := range k.refs {
		if _, ok := k.values[name]; !ok {
			notKept = append(notKept, name)
		}
	}
	if len(k.values) == 0 {
		return "", notKept
	}
	b := []byte{'{'}
	for _, name := range names {
		v, ok := k.values[name]
		if !ok {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		q, _ := json.Marshal(name) // a string always marshals
		b = append(b, q...)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(append(b, '}')), notKept
}

// loginClaims completes a login from UserInfo where the ID token lacks the
// email (with the email scope) or a claim named in Config.Claims: one
// request, whose sub must be the ID token's (OpenID Connect Core 5.3.2).
// Then it keeps the named claims in login.User.Claims, refusing them when
// they are over the session's bound (ErrClaimsTooLarge).
func (f *Flow) loginClaims(ctx context.Context, tok *oauth2.Token, idt *idToken, login *loginResult) *errs.Error {
	names := f.cfg.Claims
	var k keptClaims
	if len(names) > 0 {
		takeClaims(idt.claims, names, &k)
	}
	wantEmail := f.wantsEmail() && login.User.Email == ""
	if (wantEmail || len(k.missing) > 0) && f.cfg.UserInfo != nil {
		info, e := f.userInfo(ctx, tok, &login.User, wantEmail)
		if e != nil {
			return e
		}
		if len(k.missing) > 0 {
			takeClaims(info, k.missing, &k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	login.User.Claims, login.ClaimsNotKept = k.encode(names)
	return checkClaimsSize(login.User.Claims, f.cfg.Sessions.ServerSide())
}

// claimsCookieTooLarge explains a session cookie that is too large: when
// it would fit without its claims, the claims are refused
// (ErrClaimsTooLarge); otherwise nil (something else is too large).
func (f *Flow) claimsCookieTooLarge(d *session.Data) *errs.Error {
	with, err := f.cfg.Sessions.CookieBytes(d)
	if err != nil || with <= session.MaxCookieBytes {
		return nil // the session cookie fits: something else (the token cookies) did not
	}
	bare := d.Clone()
	bare.User.Claims = ""
	without, err := f.cfg.Sessions.CookieBytes(bare)
	if err != nil || without > session.MaxCookieBytes {
		return nil
	}
	return errs.ClaimsTooLarge(d.User.Claims, with, session.MaxCookieBytes, true)
}

// reportNotKept logs and reports (EventClaimNotKept) each named claim that
// came only as a distributed or aggregated reference.
func (f *Flow) reportNotKept(r *http.Request, userID string, names []string) {
	for _, name := range names {
		f.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: a claim named in Config.Claims came only as a distributed or aggregated reference (OpenID Connect Core 5.6.2): it is not fetched and not kept",
			slog.String("claim", name), slog.String("user", userID))
		f.events.Emit(r, events.ClaimNotKept, userID, &errs.ClaimNotKept{Name: name})
	}
}

// idTokenClaims decodes the payload of a verified ID token.
func idTokenClaims(idt *oidc.IDToken) (rawClaims, error) {
	var c rawClaims
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("id_token claims: %w", err)
	}
	return c, nil
}

// checkClaimsSize refuses kept claims over the store's bound (which the
// session codec enforces in both modes).
func checkClaimsSize(claims string, serverSide bool) *errs.Error {
	if len(claims) > errs.MaxClaimsBytes {
		return errs.ClaimsTooLarge(claims, len(claims), errs.MaxClaimsBytes, !serverSide)
	}
	return nil
}

// RefreshClaims returns the kept claims of a session after a refresh that
// returned tok: with an ID token, the named claims it carries, those it
// lacks fetched from UserInfo (one request, whose sub must be subject), and
// the named claims found nowhere cleared; without one, prev with only the
// claims still named in Config.Claims. It also returns the named claims that
// came only as distributed or aggregated references.
//
// Its errors wrap ErrRefreshRefused: the refreshed ID token or the UserInfo
// answer names another user, or the claims no longer fit the session
// (ErrClaimsTooLarge). A UserInfo request that fails otherwise clears the
// claims it was asked for, and is logged.
// For wiring only: applications use package pipaauth.
func (f *Flow) RefreshClaims(ctx context.Context, tok *oauth2.Token, subject, prev string) (string, []string, error) {
	names := f.cfg.Claims
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" || !f.openid {
		return filterClaims(prev, names), nil, nil
	}
	if len(names) == 0 {
		return "", nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, f.cfg.Client)
	ctx = oidc.ClientContext(ctx, f.cfg.Client)
	idt, _, err := f.checkIDToken(ctx, raw, tok.AccessToken, false)
	if err == nil && idt.Subject != subject {
		err = errors.New("the refreshed id_token names another sub (OpenID Connect Core 12.2)")
	}
	var c rawClaims
	if err == nil {
		c, err = idTokenClaims(idt)
	}
	if err != nil {
		return "", nil, sessionOver(refused(err))
	}
	var k keptClaims
	takeClaims(c, names, &k)
	if len(k.missing) > 0 && f.cfg.UserInfo != nil {
		u := session.User{ID: subject}
		info, e := f.userInfo(ctx, tok, &u, false)
		switch {
		case e != nil && errors.Is(e, errUserInfoOtherSub):
			return "", nil, sessionOver(e) // another sub
		case e != nil:
			f.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "pipaauth: UserInfo failed at a refresh: the claims the ID token lacks are cleared until the next refresh",
				slog.Any("claims", k.missing), slog.String("error", e.Error()))
		default:
			takeClaims(info, k.missing, &k)
		}
	}
	claims, notKept := k.encode(names)
	if e := checkClaimsSize(claims, f.cfg.Sessions.ServerSide()); e != nil {
		return "", nil, sessionOver(e)
	}
	return claims, notKept, nil
}

// filterClaims returns claims with only the members named in names, in
// their order; "" when none is left.
func filterClaims(claims string, names []string) string {
	if claims == "" {
		return ""
	}
	var c rawClaims
	if json.Unmarshal([]byte(claims), &c) != nil {
		return ""
	}
	if len(c) <= len(names) && !slices.ContainsFunc(slices.Collect(maps.Keys(c)), func(n string) bool { return !slices.Contains(names, n) }) {
		return claims // nothing to drop
	}
	k := keptClaims{values: make(map[string]json.RawMessage, len(c))}
	for _, name := range names {
		if v, ok := c[name]; ok {
			k.values[name] = v
		}
	}
	out, _ := k.encode(names)
	return out
}
