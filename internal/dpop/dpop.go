// Package dpop makes DPoP proofs (RFC 9449) with go-jose and sends them:
// the per-login P-256 key, its RFC 7638 thumbprint, the proof JWTs, and a
// RoundTripper that signs one proof per request and answers a server's
// use_dpop_nonce challenge once.
//
// It is for wiring only: applications use package pipaauth.
package dpop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenType is the token_type of DPoP-bound tokens (RFC 9449 section 5).
const TokenType = "DPoP"

// Header is the request header carrying a proof, NonceHeader the response
// header carrying a server nonce (RFC 9449 sections 4.1 and 8).
const (
	Header      = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// NewKey returns a fresh P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Marshal encodes k as PKCS#8 DER, the form sessions and attempts keep.
func Marshal(k *ecdsa.PrivateKey) ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k)
}

// Parse decodes a PKCS#8 DER P-256 private key written by Marshal.
func Parse(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("pipaauth: the DPoP key cannot be read: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("pipaauth: the DPoP key is not a P-256 key")
	}
	return ek, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of k's public key,
// base64url: the dpop_jkt of an authorization request (RFC 9449 section 10)
// and the jkt of bound tokens.
func Thumbprint(k crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: k}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("pipaauth: DPoP key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// proofClaims are the claims of a proof (RFC 9449 section 4.2).
type proofClaims struct {
	ID       string           `json:"jti"`
	Method   string           `json:"htm"`
	URL      string           `json:"htu"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	ATHash   string           `json:"ath,omitempty"`
	Nonce    string           `json:"nonce,omitempty"`
}

// HTU is the htu of a request URL: without query and fragment.
func HTU(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	c.User = nil
	return c.String()
}

// Proof signs a proof for a request of method to u (its query and fragment
// left out), at now, with the access token's hash (ath) when accessToken is
// not empty and the server's nonce when not empty. The header carries typ
// dpop+jwt and the public key as jwk, set by go-jose.
func Proof(k *ecdsa.PrivateKey, method string, u *url.URL, accessToken, nonce string, now time.Time) (string, error) {
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
	if err != nil {
		return "", fmt.Errorf("pipaauth: DPoP proof signer: %w", err)
	}
	c := proofClaims{ID: rand.Text(), Method: method, URL: HTU(u), IssuedAt: jwt.NewNumericDate(now), Nonce: nonce}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		c.ATHash = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	s, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("pipaauth: signing a DPoP proof: %w", err)
	}
	return s, nil
}

type ctxKey struct{}

// WithKey returns ctx carrying k: requests made under it through a
// Transport carry proofs signed by k.
func WithKey(ctx context.Context, k *ecdsa.PrivateKey) context.Context {
	if k == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, k)
}

// KeyFrom returns the key of WithKey, nil when there is none.
func KeyFrom(ctx context.Context) *ecdsa.PrivateKey {
	k, _ := ctx.Value(ctxKey{}).(*ecdsa.PrivateKey)
	return k
}

// Nonces remembers the last DPoP-Nonce each server (scheme and host) sent.
// Safe for concurrent use; the zero value is ready.
type Nonces struct {
	mu sync.Mutex
	m  map[string]string
}

// maxNonces bounds the servers remembered.
const maxNonces = 256

func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

func (n *Nonces) get(u *url.URL) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[origin(u)]
}

func (n *Nonces) set(u *url.URL, v string) {
	if v == "" || len(v) > 1024 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxNonces {
		n.m = map[string]string{}
	}
	n.m[origin(u)] = v
}

// Transport adds a DPoP proof to every request whose context carries a key
// (WithKey), or, without one, to every request when Key returns one. A
// request with an "Authorization: DPoP <token>" header gets the token's
// hash (ath). A use_dpop_nonce answer (400 with that OAuth error, or 401
// whose WWW-Authenticate says DPoP error="use_dpop_nonce") that carries a
// DPoP-Nonce is retried once with a new proof holding it, when the request
// has no body or one that can be read again (GetBody).
type Transport struct {
	Base   http.RoundTripper        // required
	Nonces *Nonces                  // required
	Now    func() time.Time         // required
	Key    func() *ecdsa.PrivateKey // optional: the key when the context has none
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	k := KeyFrom(req.Context())
	if k == nil && t.Key != nil {
		k = t.Key()
	}
	if k == nil {
		return t.Base.RoundTrip(req)
	}
	resp, err := t.send(req, k, t.Nonces.get(req.URL))
	if err != nil {
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	nonce := resp.Header.Get(NonceHeader)
	if nonce == "" || !replayable || !wantsNonce(resp) {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	again := req.Clone(req.Context())
	if req.GetBody != nil {
		if again.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return t.send(again, k, nonce)
}

func (t *Transport) send(req *http.Request, k *ecdsa.PrivateKey, nonce string) (*http.Response, error) {
	at := ""
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, TokenType) {
		at = strings.TrimSpace(tok)
	}
	proof, err := Proof(k, req.Method, req.URL, at, nonce, t.Now())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Header.Set(Header, proof)
	resp, err := t.Base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if n := resp.Header.Get(NonceHeader); n != "" {
		t.Nonces.set(req.URL, n)
	}
	return resp, nil
}

// wantsNonce reports whether resp is a use_dpop_nonce challenge. A 400's
// body is read (at most 64 KiB) and put back for the caller.
func wantsNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			if scheme, params, _ := strings.Cut(strings.TrimSpace(v), " "); strings.EqualFold(scheme, TokenType) && strings.Contains(params, `error="use_dpop_nonce"`) {
				return true
			}
		}
		return false
	case http.StatusBadRequest:
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var rest io.Reader = resp.Body
		if err != nil {
			rest = errReader{err}
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), rest), resp.Body}
		var e struct {
			Error string `json:"error"`
		}
		return err == nil && json.Unmarshal(b, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

// errReader replays a read error after the bytes read before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
