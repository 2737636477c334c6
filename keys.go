package pipaauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/jwks"
)

// PiPA's keys: one key set per applied discovery document, read by the
// verifier of ID tokens (login and refresh) and of logout tokens alike.
// The set is filtered before go-jose sees a key (internal/jwks): a key of a
// type, curve or algorithm this package cannot use is skipped, not fatal.

// SkippedKey describes a key of PiPA's JWK set that pipaauth skipped because
// it cannot verify signatures with it (RFC 7517 section 5: keys an
// implementation does not understand are ignored), as reported by a
// warning log line and an EventKeysSkipped event once per fetch of the set.
// It holds the key's public members only, never key material.
type SkippedKey struct {
	KeyID     string // the kid member; "" when absent
	KeyType   string // the kty member, for example "EC" or "OKP"
	Curve     string // the crv member, for example "secp256k1", "X25519" or "Ed448"; "" when absent
	Algorithm string // the alg member, for example "ES256K"; "" when absent
	Reason    string // why it was skipped, for example "unsupported curve"
}

// supportedSigningAlgs are the JWS algorithms Config.SigningAlgs may name:
// the asymmetric ones go-oidc verifies.
var supportedSigningAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512, oidc.EdDSA,
}

// checkSigningAlgs checks Config.SigningAlgs on its own; New checks it
// against discovery later (signingAlgs).
func (c *Config) checkSigningAlgs() error {
	for _, alg := range c.SigningAlgs {
		switch {
		case strings.EqualFold(alg, "none"):
			return fmt.Errorf(`%w: SigningAlgs names "none": unsigned tokens are never accepted; name the algorithm PiPA signs this client's ID tokens with, such as "RS256"`, errs.ErrConfig)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return fmt.Errorf("%w: SigningAlgs names %q: symmetric algorithms are never accepted (they are keyed with the client secret, which is not PiPA's alone); name an asymmetric one such as \"RS256\"", errs.ErrConfig, alg)
		case !slices.Contains(supportedSigningAlgs, alg):
			return fmt.Errorf("%w: SigningAlgs names %q, which this package does not support: use one of %q (case matters)", errs.ErrConfig, alg, supportedSigningAlgs)
		}
	}
	return nil
}

// signingAlgs returns the algorithms ID tokens and logout tokens may be
// signed with, for discovery document d: Config.SigningAlgs, each of which
// d must list when it lists any (else ErrConfig); without them, the
// supported ones d lists, or RS256 when it lists none (OpenID Connect
// Discovery 1.0 section 3 makes RS256 the one every provider supports).
func (a *Auth) signingAlgs(d discovery) ([]string, error) {
	if len(a.cfg.SigningAlgs) > 0 {
		for _, alg := range a.cfg.SigningAlgs {
			if len(d.IDTokenAlgs) > 0 && !slices.Contains(d.IDTokenAlgs, alg) {
				return nil, fmt.Errorf("%w: SigningAlgs names %q, which PiPA's discovery document does not list in id_token_signing_alg_values_supported (%q): set SigningAlgs to the id_token_signed_response_alg registered for this client", errs.ErrConfig, alg, d.IDTokenAlgs)
			}
		}
		return slices.Clone(a.cfg.SigningAlgs), nil
	}
	var algs []string
	for _, alg := range d.IDTokenAlgs {
		if slices.Contains(supportedSigningAlgs, alg) && !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	return algs, nil
}

// tokenVerifier returns the verifier of ID tokens and logout tokens for
// discovery document d: go-oidc checks the signature (with PiPA's key set,
// filtered), the algorithm (signingAlgs), iss and aud. exp is left to the
// callers, which check it with ClockSkew (go-oidc has no leeway) or, for
// logout tokens, allow it to be absent.
func (a *Auth) tokenVerifier(d discovery) (*oidc.IDTokenVerifier, *jwks.Set, error) {
	algs, err := a.signingAlgs(d)
	if err != nil {
		return nil, nil, err
	}
	keys := jwks.New(jwks.Config{
		URL:      d.JWKSURI,
		Client:   a.client,
		Timeout:  a.cfg.ExchangeTimeout,
		Interval: UnknownKeyInterval,
		OnFetch:  a.keysFetched,
	})
	v := oidc.NewVerifier(a.cfg.Issuer, keys, &oidc.Config{
		ClientID:             a.cfg.ClientID,
		SupportedSigningAlgs: algs,
		SkipExpiryCheck:      true,
		Now:                  a.cfg.Now,
	})
	return v, keys, nil
}

// keysFetched logs, after each fetch of PiPA's JWKS, the keys it skipped
// (with one EventKeysSkipped) and a failure.
func (a *Auth) keysFetched(ctx context.Context, skipped []jwks.Skipped, took time.Duration, err error) {
	if len(skipped) > 0 {
		keys := make([]SkippedKey, len(skipped))
		desc := make([]string, len(skipped))
		for i, s := range skipped {
			keys[i] = SkippedKey{KeyID: s.KeyID, KeyType: s.KeyType, Curve: s.Curve, Algorithm: s.Algorithm, Reason: s.Reason}
			desc[i] = s.String()
		}
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: PiPA's JWKS holds keys this package cannot use; they are skipped and the others used (RFC 7517 section 5)",
			slog.Int("skipped", len(skipped)), slog.Any("keys", desc))
		if a.cfg.OnEvent != nil {
			a.event(ctx, Event{Kind: EventKeysSkipped, Duration: took, SkippedKeys: keys})
		}
	}
	if err != nil {
		_, brief := httpx.Brief(err)
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: PiPA's JWKS could not be fetched: tokens signed with keys not cached here cannot be checked until it can (logins answer 502, logout tokens 503, refreshes keep the session)",
			slog.String("error", brief.Error()), slog.Duration("took", took))
	}
}

// unavailableKeys is the refusal of a logout token that could not be
// checked for want of PiPA's keys: 503 with Retry-After, so that the
// provider sends it again once the keys can be fetched.
func unavailableKeys(rep *jwks.Report, err error) *badLogoutToken {
	reason := "The provider's signing keys could not be fetched; try again."
	if errors.Is(rep.Unavailable, jwks.ErrThrottled) {
		reason = "The logout token's signing key is not known yet; try again in a few seconds."
	}
	return &badLogoutToken{reason: reason, err: fmt.Errorf("%w (%w)", err, rep.Unavailable), retry: true, after: rep.RetryAfter}
}
