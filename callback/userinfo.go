package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/jwks"
)

// PiPA's UserInfo endpoint (OpenID Connect Core 5.3), asked through the
// flow's own client (bounded, no redirects, DPoP proofs), with a signed
// answer checked by the ID tokens' verifier: the same filtered and
// throttled key set, the same algorithms, and its iss and aud.

// errUserInfoOtherSub marks a UserInfo answer for another sub than the ID
// token's (OpenID Connect Core 5.3.2): at a refresh it ends the session.
var errUserInfoOtherSub = errors.New("the userinfo sub differs from the id_token's sub (OpenID Connect Core 5.3.2)")

// errUserInfoSignature marks a signed UserInfo answer that did not pass
// verification (signature, algorithm, iss or aud).
var errUserInfoSignature = errors.New("the signed userinfo answer did not pass verification")

// userInfoStatus is the error of a UserInfo answer that is not 200: the
// status only, never the body (which may echo the access token).
type userInfoStatus struct{ code int }

func (e *userInfoStatus) Error() string {
	return fmt.Sprintf("userinfo endpoint answered %d %s (response body not logged)", e.code, http.StatusText(e.code))
}

// UserInfoEndpoint returns the UserInfoFunc of PiPA's userinfo_endpoint
// url. It GETs url through client with the token source's access token
// (its type decides the scheme: "DPoP" tokens get a proof from client's
// transport when ctx carries the key), reads at most 1 MiB, and returns the
// claims object: a JSON answer as is, or, for an application/jwt answer
// (OpenID Connect Core 5.3.2), the payload of the JWS once v, the ID
// tokens' verifier, has checked its signature with PiPA's filtered key set,
// its algorithm (SigningAlgs), iss and aud. A JWS whose key cannot be had
// gives the keys-unavailable error of an ID token. Its errors never hold
// the token or the answer's body.
// For wiring only: applications use package pipaauth.
func UserInfoEndpoint(url string, client *http.Client, v *oidc.IDTokenVerifier) UserInfoFunc {
	return func(ctx context.Context, ts oauth2.TokenSource) (json.RawMessage, error) {
		tok, err := ts.Token()
		if err != nil {
			return nil, fmt.Errorf("userinfo: no access token: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("userinfo request: %w", err)
		}
		tok.SetAuthHeader(req)
		req.Header.Set("Accept", "application/json, application/jwt")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxBody+1))
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil, fmt.Errorf("reading the userinfo answer: %w", err)
		}
		if len(body) > httpx.MaxBody {
			return nil, httpx.ErrBodyTooLarge
		}
		if resp.StatusCode != http.StatusOK {
			return nil, &userInfoStatus{code: resp.StatusCode}
		}
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt == "application/jwt" {
			return verifyUserInfo(ctx, v, string(bytes.TrimSpace(body)))
		}
		if !isJSONObject(body) {
			return nil, errors.New("the userinfo answer is not a JSON object")
		}
		return body, nil
	}
}

// verifyUserInfo checks a signed UserInfo answer as an ID token's signature,
// algorithm, iss and aud are checked (exp, which UserInfo need not carry,
// is skipped by v), and returns its claims.
func verifyUserInfo(ctx context.Context, v *oidc.IDTokenVerifier, raw string) (json.RawMessage, error) {
	// Like an ID token, it comes from PiPA over TLS in answer to this
	// client's access token: it may wait for a fetch, on the priority slot.
	vctx, rep := jwks.WithReport(jwks.WithWait(jwks.WithPriority(ctx)))
	idt, err := v.Verify(vctx, raw)
	if err != nil {
		if rep.Unavailable != nil {
			return nil, &keysUnavailable{e: keysError(rep)}
		}
		_, brief := httpx.Brief(err)
		return nil, fmt.Errorf("%w: %w", errUserInfoSignature, brief)
	}
	var claims json.RawMessage
	if err := idt.Claims(&claims); err != nil || !isJSONObject(claims) {
		return nil, errors.New("the signed userinfo answer's payload is not a JSON object")
	}
	return claims, nil
}

// isJSONObject reports whether b is one JSON object.
func isJSONObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}
