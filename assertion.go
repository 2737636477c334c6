package pipaauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/internal/errs"
)

// private_key_jwt client authentication (RFC 7523 section 2.2, OpenID
// Connect Core section 9): a fresh JWT signed with Config.ClientAssertionKey
// replaces the client secret on every request the package makes with
// client authentication.

const (
	// clientAssertionType is the client_assertion_type of RFC 7523 2.2.
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionLifetime is how long an assertion is valid: FAPI 2.0 and
	// most providers accept at most 60 seconds.
	assertionLifetime = 60 * time.Second
	// minRSABits is the smallest RSA assertion key accepted (FAPI 2.0
	// Security Profile 5.4.1: 2048 bits).
	minRSABits = 2048
)

// checkAssertionKey checks Config.ClientAssertionKey and
// ClientAssertionKeyID: an RSA key of at least 2048 bits or an ECDSA P-256
// key.
func (c *Config) checkAssertionKey() error {
	if c.ClientAssertionKey == nil {
		if c.ClientAssertionKeyID != "" {
			return fmt.Errorf("%w: ClientAssertionKeyID is set without ClientAssertionKey: set the private key registered at PiPA, or leave both empty", errs.ErrConfig)
		}
		return nil
	}
	pub, err := signerPublic(c.ClientAssertionKey)
	if err != nil {
		return err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: ClientAssertionKey is a %d-bit RSA key: use at least %d bits (or ECDSA P-256)", errs.ErrConfig, k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ClientAssertionKey is an ECDSA key on %s: use P-256 (ES256) or RSA", errs.ErrConfig, k.Curve.Params().Name)
		}
	default:
		return fmt.Errorf("%w: ClientAssertionKey is a %T: use an RSA (RS256, PS256) or ECDSA P-256 (ES256) private key", errs.ErrConfig, c.ClientAssertionKey)
	}
	if strings.ContainsFunc(c.ClientAssertionKeyID, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: ClientAssertionKeyID holds control characters", errs.ErrConfig)
	}
	return nil
}

// signerPublic returns the public key of s, or an error when s is a nil
// pointer behind a non-nil interface (a key that failed to load), whose
// Public method panics or returns nil.
func signerPublic(s crypto.Signer) (pub crypto.PublicKey, err error) {
	defer func() {
		if recover() != nil || pub == nil {
			pub, err = nil, fmt.Errorf("%w: ClientAssertionKey is a nil %T: load the private key registered at PiPA, or leave ClientAssertionKey unset", errs.ErrConfig, s)
		}
	}()
	return s.Public(), nil
}

// assertionAlg picks the signing algorithm of the assertions for the key
// and the provider's token_endpoint_auth_signing_alg_values_supported
// (listed; empty when the document has none): ES256 for a P-256 key; for
// RSA, PS256 when listed (FAPI 2.0 asks for it), else RS256. An algorithm
// the provider does not list is a configuration error.
func assertionAlg(k crypto.Signer, listed []string) (jose.SignatureAlgorithm, error) {
	alg := jose.ES256
	if _, ok := k.Public().(*rsa.PublicKey); ok {
		alg = jose.RS256
		if slices.Contains(listed, string(jose.PS256)) {
			alg = jose.PS256
		}
	}
	if len(listed) > 0 && !slices.Contains(listed, string(alg)) {
		return "", fmt.Errorf("%w: ClientAssertionKey signs with %s, which PiPA does not list in token_endpoint_auth_signing_alg_values_supported %q: use a key for one of them (ES256 needs an ECDSA P-256 key, RS256 and PS256 an RSA key)", errs.ErrConfig, alg, listed)
	}
	return alg, nil
}

// clientAssertion signs the assertions of one provider.
type clientAssertion struct {
	signer   jose.Signer
	clientID string
	audience string // the issuer identifier (FAPI 2.0 Security Profile 5.3.2.1)
	now      func() time.Time
}

// newClientAssertion builds the signer of cfg's key with alg; the kid
// header is ClientAssertionKeyID when set.
func newClientAssertion(cfg *Config, alg jose.SignatureAlgorithm) (*clientAssertion, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if cfg.ClientAssertionKeyID != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), cfg.ClientAssertionKeyID)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(cfg.ClientAssertionKey)}, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: ClientAssertionKey cannot sign %s: %w", errs.ErrConfig, alg, err)
	}
	return &clientAssertion{signer: s, clientID: cfg.ClientID, audience: cfg.Issuer, now: cfg.Now}, nil
}

// sign returns a fresh assertion: iss and sub the client id, aud the
// issuer, a random jti, iat now and exp 60 seconds later.
func (c *clientAssertion) sign() (string, error) {
	now := c.now()
	claims := jwt.Claims{
		Issuer:   c.clientID,
		Subject:  c.clientID,
		Audience: jwt.Audience{c.audience},
		ID:       rand.Text(),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	s, err := jwt.Signed(c.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("pipaauth: signing the client assertion with ClientAssertionKey: %w", err)
	}
	return s, nil
}

// assertionTransport authenticates the form POSTs to the endpoints that
// need client authentication (token, pushed authorization, revocation)
// with a fresh assertion, whoever built the request (x/oauth2 for the
// token endpoint, this package for the others): every retry signs anew,
// and no client_secret or Basic credentials ever leave.
type assertionTransport struct {
	base      http.RoundTripper
	assertion *clientAssertion
	endpoints []string // absolute URLs without query
}

func (t *assertionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || !slices.Contains(t.endpoints, dpop.HTU(req.URL)) {
		return t.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("pipaauth: the request to %s has a malformed form body: %w", req.URL.Host, err)
	}
	a, err := t.assertion.sign()
	if err != nil {
		return nil, err
	}
	form.Del("client_secret")
	form.Set("client_id", t.assertion.clientID)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", a)
	b := []byte(form.Encode())
	out := req.Clone(req.Context())
	if _, _, ok := out.BasicAuth(); ok {
		out.Header.Del("Authorization")
	}
	out.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	out.ContentLength = int64(len(b))
	return t.base.RoundTrip(out)
}

// highAssurance is what the high-assurance Config fields make of a
// discovery document: the client for requests with client authentication
// (and DPoP proofs), and the pushed authorization endpoint when logins use
// it.
type highAssurance struct {
	client    *http.Client // token, pushed authorization, revocation and UserInfo requests
	assertion *clientAssertion
	par       string           // pushed_authorization_request_endpoint when logins push, else ""
	style     oauth2.AuthStyle // the client secret's style when there is no assertion
}

// highAssurance checks the document against ClientAssertionKey,
// PushedAuthorization and DPoP, and builds the client that authenticates
// and proves. Its errors wrap ErrConfig (the fix is in the Config) or
// ErrDiscovery.
func (a *Auth) highAssurance(d discovery, tokenURL string) (*highAssurance, error) {
	cfg := &a.cfg
	h := &highAssurance{}
	if d.RequirePAR || cfg.PushedAuthorization {
		switch {
		case d.PAREndpoint != "":
			if err := cfg.checkURL(d.PAREndpoint); err != nil {
				return nil, fmt.Errorf("%w: pushed_authorization_request_endpoint: %w", errs.ErrDiscovery, err)
			}
			h.par = d.PAREndpoint
		case d.RequirePAR:
			return nil, fmt.Errorf("%w: the discovery document says require_pushed_authorization_requests but lists no pushed_authorization_request_endpoint", errs.ErrDiscovery)
		default:
			return nil, fmt.Errorf("%w: PushedAuthorization is set but PiPA's discovery document lists no pushed_authorization_request_endpoint: unset PushedAuthorization, or check Issuer", errs.ErrConfig)
		}
	}
	if cfg.DPoP && len(d.DPoPAlgs) > 0 && !slices.Contains(d.DPoPAlgs, string(jose.ES256)) {
		return nil, fmt.Errorf("%w: DPoP is set but PiPA's dpop_signing_alg_values_supported %q lacks ES256, the only algorithm this package proves with: unset DPoP", errs.ErrConfig, d.DPoPAlgs)
	}
	var rt http.RoundTripper = a.client.Transport
	if cfg.ClientAssertionKey != nil {
		if !slices.Contains(d.TokenAuthMethods, "private_key_jwt") {
			return nil, fmt.Errorf("%w: ClientAssertionKey is set but PiPA's token_endpoint_auth_methods_supported %q does not list private_key_jwt: unset ClientAssertionKey and set ClientSecret, or register the client for private_key_jwt at PiPA", errs.ErrConfig, d.TokenAuthMethods)
		}
		alg, err := assertionAlg(cfg.ClientAssertionKey, d.TokenAuthSigningAlgs)
		if err != nil {
			return nil, err
		}
		if h.assertion, err = newClientAssertion(cfg, alg); err != nil {
			return nil, err
		}
		endpoints := []string{tokenURL}
		for _, e := range []string{h.par, d.Revocation} {
			if e != "" {
				u, err := url.Parse(e)
				if err != nil {
					return nil, fmt.Errorf("%w: %q is not a URL", errs.ErrDiscovery, e)
				}
				endpoints = append(endpoints, dpop.HTU(u))
			}
		}
		if u, err := url.Parse(tokenURL); err == nil {
			endpoints[0] = dpop.HTU(u)
		}
		rt = &assertionTransport{base: rt, assertion: h.assertion, endpoints: endpoints}
	} else if slices.Contains(d.TokenAuthMethods, "private_key_jwt") &&
		!slices.Contains(d.TokenAuthMethods, "client_secret_post") && !slices.Contains(d.TokenAuthMethods, "client_secret_basic") {
		// Both a discovery fact and a Config fix: wraps both sentinels.
		return nil, fmt.Errorf("%w (%w): PiPA authenticates clients with private_key_jwt only (token_endpoint_auth_methods_supported %q): set ClientAssertionKey to the private key whose public key is registered at PiPA", errs.ErrConfig, errs.ErrDiscovery, d.TokenAuthMethods)
	}
	c := *a.client
	c.Transport = &dpop.Transport{Base: rt, Nonces: &a.nonces, Now: cfg.Now}
	h.client = &c
	return h, nil
}
