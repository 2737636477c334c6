package callback

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/internal/errs"
)

// newDPoPKey makes a login's DPoP key: its PKCS#8 DER for the attempt and
// its thumbprint for dpop_jkt (RFC 9449 section 10).
func newDPoPKey() (der []byte, jkt string, err error) {
	k, err := dpop.NewKey()
	if err != nil {
		return nil, "", fmt.Errorf("pipaauth: making the login's DPoP key: %w", err)
	}
	if der, err = dpop.Marshal(k); err != nil {
		return nil, "", fmt.Errorf("pipaauth: encoding the login's DPoP key: %w", err)
	}
	if jkt, err = dpop.Thumbprint(&k.PublicKey); err != nil {
		return nil, "", err
	}
	return der, jkt, nil
}

// push sends the parameters of authURL (all of them: they were built for
// the front channel) to the pushed authorization request endpoint and
// returns the authorization URL the browser gets instead: the endpoint
// with client_id and request_uri only (RFC 9126 section 4).
func (f *Flow) push(ctx context.Context, authURL string) (string, *errs.Error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	u, err := url.Parse(authURL)
	if err != nil {
		return "", errs.New(http.StatusInternalServerError, errs.ErrConfig, "The login could not be started.", err)
	}
	params := u.Query()
	base, _ := url.Parse(f.cfg.OAuth2.Endpoint.AuthURL)
	own := url.Values{}
	if base != nil {
		own = base.Query()
	}
	for k := range own {
		params.Del(k) // the endpoint's own query stays in its URL
	}
	requestURI, err := f.cfg.Push(ctx, params)
	if err != nil {
		if e, ok := err.(*errs.Error); ok {
			return "", e
		}
		return "", errs.New(http.StatusBadGateway, errs.ErrExchange, "PiPA refused the login request. Please try again later.", fmt.Errorf("pushed authorization request: %w", err))
	}
	own.Set("client_id", f.cfg.OAuth2.ClientID)
	own.Set("request_uri", requestURI)
	out := f.cfg.OAuth2.Endpoint.AuthURL
	if i := strings.IndexByte(out, '?'); i >= 0 {
		out = out[:i]
	}
	return out + "?" + own.Encode(), nil
}

// checkTokenType checks a token response's token_type: DPoP for a login
// with a DPoP key (RFC 9449 section 5: the provider bound the tokens),
// Bearer (or none) otherwise.
func checkTokenType(tok *oauth2.Token, dpopBound bool) error {
	t := tok.TokenType
	if dpopBound {
		if !strings.EqualFold(t, dpop.TokenType) {
			return fmt.Errorf("token_type %q is not DPoP although the request proved a DPoP key: PiPA did not bind the tokens to it (check that the client is registered for DPoP)", t)
		}
		return nil
	}
	if t != "" && !strings.EqualFold(t, "bearer") {
		return fmt.Errorf("token_type %q is not Bearer", t)
	}
	return nil
}
