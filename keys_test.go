package pipaauth_test

// PiPA's key set (issues 18, 21 and 23): keys the package cannot read are
// skipped, the signing algorithm can be pinned, forged signatures do not
// make the application fetch the JWKS per request, and a JWKS outage is a
// temporary failure at login, refresh and back-channel logout.
//
// keyProvider is a test provider of our own in front of pipatest, as the
// application's transport: it serves PiPA's JWKS as pipatest does, or with
// extra keys, or failing (503, hanging, unreachable), counts the fetches,
// and can sign ID tokens again with an ES256 key.

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/pipatest"
)

// jwksMode is how keyProvider serves the JWKS.
type jwksMode int

const (
	jwksNormal      jwksMode = iota // pipatest's set, plus extra
	jwksOnlyExtra                   // the extra keys alone
	jwks503                         // 503
	jwksHang                        // no answer until the request is canceled
	jwksUnreachable                 // a transport error
)

type keyProvider struct {
	base    http.RoundTripper
	fetches atomic.Int64

	mu       sync.Mutex
	mode     jwksMode
	extra    []json.RawMessage // keys served beside (or instead of) pipatest's
	resignID bool              // sign ID tokens again with ecKey (ES256)
	ecKey    *ecdsa.PrivateKey
	issued   []string // ID tokens signed here, for the leak checks
}

const ecKID = "test-es256"

func newKeyProvider(t *testing.T) *keyProvider {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keyProvider{ecKey: k}
}

// wrap makes kp the transport of cfg's client (a copy), in front of its own.
func (kp *keyProvider) wrap(cfg *pipaauth.Config) {
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	kp.base = c.Transport
	if kp.base == nil {
		kp.base = http.DefaultTransport
	}
	c.Transport = kp
	cfg.HTTPClient = &c
}

func (kp *keyProvider) set(mode jwksMode, extra ...json.RawMessage) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	kp.mode, kp.extra = mode, extra
}

func (kp *keyProvider) resign(on bool) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	kp.resignID = on
}

// ecJWK is the public ES256 key as a JWK.
func (kp *keyProvider) ecJWK() json.RawMessage {
	b, err := jose.JSONWebKey{Key: &kp.ecKey.PublicKey, KeyID: ecKID, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	if err != nil {
		panic(err)
	}
	return b
}

func (kp *keyProvider) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/jwks"):
		return kp.jwks(r)
	case strings.HasSuffix(r.URL.Path, "/token"):
		return kp.token(r)
	}
	return kp.base.RoundTrip(r)
}

func (kp *keyProvider) jwks(r *http.Request) (*http.Response, error) {
	kp.fetches.Add(1)
	kp.mu.Lock()
	mode, extra := kp.mode, kp.extra
	kp.mu.Unlock()
	switch mode {
	case jwks503:
		return answer(r, http.StatusServiceUnavailable, []byte(`{"error":"temporarily_unavailable"}`)), nil
	case jwksHang:
		<-r.Context().Done()
		return nil, r.Context().Err()
	case jwksUnreachable:
		return nil, errors.New("dial tcp: connection refused (keyProvider)")
	}
	var keys []json.RawMessage
	if mode == jwksNormal {
		resp, err := kp.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			return nil, err
		}
		keys = set.Keys
	}
	// Unreadable keys first: they must not hide the good one behind them.
	body, _ := json.Marshal(map[string]any{"keys": append(append([]json.RawMessage{}, extra...), keys...)})
	return answer(r, http.StatusOK, body), nil
}

// token passes the token request on and, with resign, signs the ID token
// of the answer again with the ES256 key.
func (kp *keyProvider) token(r *http.Request) (*http.Response, error) {
	resp, err := kp.base.RoundTrip(r)
	kp.mu.Lock()
	on := kp.resignID
	kp.mu.Unlock()
	if err != nil || !on || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, err
	}
	if raw, ok := m["id_token"].(string); ok {
		parts := strings.Split(raw, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, err
		}
		m["id_token"] = kp.signES256(payload, "JWT")
	}
	body, _ := json.Marshal(m)
	return answer(r, http.StatusOK, body), nil
}

func (kp *keyProvider) signES256(payload []byte, typ jose.ContentType) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: kp.ecKey, KeyID: ecKID}}, (&jose.SignerOptions{}).WithType(typ))
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, _ := jws.CompactSerialize()
	kp.mu.Lock()
	kp.issued = append(kp.issued, s)
	kp.mu.Unlock()
	return s
}

func answer(r *http.Request, status int, body []byte) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(string(body))),
		ContentLength: int64(len(body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
}

// unreadableKeys are keys of PiPA's JWKS the package cannot use: the kinds
// the OpenID Foundation's test provider publishes and worse.
func unreadableKeys(t *testing.T) []json.RawMessage {
	t.Helper()
	b64 := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{
		fmt.Sprintf(`{"kty":"EC","crv":"secp256k1","kid":"k1","x":%q,"y":%q}`, b64(32), b64(32)),
		fmt.Sprintf(`{"kty":"EC","crv":"secp256k1","kid":"k1-alg","alg":"ES256K","x":%q,"y":%q}`, b64(32), b64(32)),
		fmt.Sprintf(`{"kty":"OKP","crv":"X25519","kid":"x25519","x":%q}`, base64.RawURLEncoding.EncodeToString(x25519.PublicKey().Bytes())),
		fmt.Sprintf(`{"kty":"OKP","crv":"Ed448","kid":"ed448","x":%q}`, b64(57)),
		fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"bad-point","x":%q,"y":%q}`, b64(32), b64(32)),
		`{"kty":"RSA","kid":"no-modulus","e":"AQAB"}`,
		`{"kty":"oct","kid":"secret","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}`,
		`{"kty":"ML-DSA","alg":"ML-DSA-65","kid":"pq","pub":"AAAA"}`,
		`"not a key"`,
		`{"kid":7}`,
	}
	out := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		out[i] = json.RawMessage(k)
	}
	return out
}

// keyMaterial returns the key material members of keys, which no log line
// may hold.
func keyMaterial(keys []json.RawMessage) []string {
	var out []string
	for _, k := range keys {
		var m map[string]any
		if json.Unmarshal(k, &m) != nil {
			continue
		}
		for _, member := range []string{"x", "y", "n", "k", "pub"} {
			if s, ok := m[member].(string); ok && len(s) > 8 {
				out = append(out, s)
			}
		}
	}
	return out
}

// A JWKS with secp256k1, X25519, Ed448, malformed and symmetric keys beside
// PiPA's RSA key: logins and back-channel logout work, one warning and one
// EventKeysSkipped per fetch name the skipped keys, no key material logged.
func TestKeySetSkipsUnreadableKeys(t *testing.T) {
	t.Parallel()
	kp := newKeyProvider(t)
	bad := unreadableKeys(t)
	kp.set(jwksNormal, bad...)
	events := &eventLog{}
	b := newBCL(t, true, setup{configure: func(cfg *pipaauth.Config) {
		kp.wrap(cfg)
		cfg.OnEvent = events.record
	}})
	br := b.h.app.newBrowser(t)
	br.login("/private")
	if u := br.mustUser(); u.ID != b.h.subject("alice") {
		t.Fatalf("user %+v, want alice", u)
	}
	if r := b.send(t, b.token(pipatest.LogoutTokenOptions{User: "alice"})); r.status != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s, want 200", r.status, r.body)
	}
	if _, subs := b.rev.revoked(); len(subs) != 1 || subs[0] != b.h.subject("alice") {
		t.Errorf("revoked subs %q, want alice's", subs)
	}
	b.h.app.newBrowser(t).login("/private") // a second login: the cached keys, no new fetch
	if n := kp.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1", n)
	}
	logs := b.h.logs.String()
	if n := strings.Count(logs, "PiPA's JWKS holds keys this package cannot use"); n != 1 {
		t.Errorf("%d warnings about skipped keys, want 1 (one per fetch):\n%s", n, logs)
	}
	for _, kid := range []string{"k1", "k1-alg", "x25519", "ed448", "bad-point", "no-modulus", "secret", "pq"} {
		if !strings.Contains(logs, fmt.Sprintf("kid \\\"%s\\\"", kid)) {
			t.Errorf("the warning does not name kid %q:\n%s", kid, logs)
		}
	}
	for _, m := range keyMaterial(bad) {
		if strings.Contains(logs, m) {
			t.Errorf("the log holds key material %q", m)
		}
	}
	var skipped []pipaauth.Event
	for _, e := range events.take() {
		if e.Kind == pipaauth.EventKeysSkipped {
			skipped = append(skipped, e)
		}
	}
	if len(skipped) != 1 || len(skipped[0].SkippedKeys) != len(bad) {
		t.Fatalf("keys_skipped events %+v, want one naming %d keys", skipped, len(bad))
	}
	got := map[string]pipaauth.SkippedKey{}
	for _, k := range skipped[0].SkippedKeys {
		got[k.KeyID] = k
	}
	for kid, w := range map[string]pipaauth.SkippedKey{
		"k1":        {KeyID: "k1", KeyType: "EC", Curve: "secp256k1", Reason: "unsupported curve"},
		"k1-alg":    {KeyID: "k1-alg", KeyType: "EC", Curve: "secp256k1", Algorithm: "ES256K", Reason: "unsupported curve"},
		"x25519":    {KeyID: "x25519", KeyType: "OKP", Curve: "X25519", Reason: "unsupported curve"},
		"ed448":     {KeyID: "ed448", KeyType: "OKP", Curve: "Ed448", Reason: "unsupported curve"},
		"bad-point": {KeyID: "bad-point", KeyType: "EC", Curve: "P-256", Reason: "malformed key (go-jose cannot read it)"},
		"secret":    {KeyID: "secret", KeyType: "oct", Reason: "symmetric key: never used to verify"},
		"pq":        {KeyID: "pq", KeyType: "ML-DSA", Algorithm: "ML-DSA-65", Reason: "unsupported key type"},
	} {
		if got[kid] != w {
			t.Errorf("key %q reported as %+v, want %+v", kid, got[kid], w)
		}
	}
}

// A JWKS of unreadable keys only: the login fails with a clear error (502,
// keys_unavailable) that names what was skipped, never a 400.
func TestKeySetWithoutUsableKey(t *testing.T) {
	t.Parallel()
	kp := newKeyProvider(t)
	kp.set(jwksOnlyExtra, unreadableKeys(t)...)
	events := &eventLog{}
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		kp.wrap(cfg)
		cfg.OnEvent = events.record
	}})
	b := h.app.newBrowser(t)
	r := b.finish(b.startLogin("/private"))
	expectFailure(t, h, r, http.StatusBadGateway, pipaauth.ErrExchange, -1)
	if !strings.Contains(r.body, `href="/login"`) {
		t.Errorf("the error page offers no new login:\n%s", r.body)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "has no key this package can verify signatures with") || !strings.Contains(logs, `kid \"ed448\"`) {
		t.Errorf("the log does not say the set has no usable key and which were skipped:\n%s", logs)
	}
	var reasons []string
	for _, e := range events.take() {
		if e.Kind == pipaauth.EventLoginFailed {
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) != 1 || reasons[0] != pipaauth.ReasonKeysUnavailable {
		t.Errorf("login_failed reasons %q, want [%q]", reasons, pipaauth.ReasonKeysUnavailable)
	}
}

func TestSigningAlgsConfig(t *testing.T) {
	t.Parallel()
	provider := pipatest.NewServer()
	t.Cleanup(provider.Close)
	// Discovery lists every name, so that only SigningAlgs' own check can
	// refuse them; ES256 alone is left out.
	provider.SetBehavior(pipatest.Behavior{DiscoveryHook: func(doc map[string]any) {
		doc["id_token_signing_alg_values_supported"] = []string{"RS256", "none", "HS256", "RS256", "hs512", "rs256", "ES256K"}
	}})
	tests := []struct {
		name string
		algs []string
		ok   bool
	}{
		{"RS256", []string{"RS256"}, true},
		{"nil", nil, true},
		{"none", []string{"none"}, false},
		{"HS256", []string{"RS256", "HS256"}, false},
		{"hs512", []string{"hs512"}, false},
		{"lower case", []string{"rs256"}, false},
		{"unknown", []string{"ES256K"}, false},
		{"not listed by discovery", []string{"ES256"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pipaauth.Config{Issuer: provider.URL, ClientID: clientID, ClientSecret: clientSecret,
				RedirectURL: "http://app.test/callback", SessionKeys: newKeys(), InsecureAllowHTTP: true, SigningAlgs: tt.algs}
			_, err := pipaauth.New(t.Context(), cfg)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, pipaauth.ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
			if !tt.ok && !strings.Contains(err.Error(), "SigningAlgs") {
				t.Errorf("the error %q does not name SigningAlgs", err)
			}
		})
	}
}

// With LazyDiscovery, a document that does not list SigningAlgs is refused
// when it arrives: logins answer 503 and it is never applied.
func TestSigningAlgsLazyDiscovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, setup{plainHTTP: true, configure: func(cfg *pipaauth.Config) {
		cfg.LazyDiscovery = true
		cfg.SigningAlgs = []string{"ES256"}
	}})
	b := h.app.newBrowser(t)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r := b.get("/login"); r.status != http.StatusServiceUnavailable {
			t.Fatalf("login start: %d, want 503", r.status)
		}
		if strings.Contains(h.logs.String(), "SigningAlgs names") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say why the document was refused:\n%s", h.logs)
		}
	}
	h.app.takeErrors()
}

// An ID token signed with an algorithm SigningAlgs does not name is refused
// at login and at refresh; the same token passes when SigningAlgs names it.
func TestSigningAlgsIDTokens(t *testing.T) {
	t.Parallel()
	both := func(doc map[string]any) { doc["id_token_signing_alg_values_supported"] = []string{"RS256", "ES256"} }
	for _, tt := range []struct {
		name string
		algs []string
		ok   bool
	}{
		{"pinned to RS256", []string{"RS256"}, false},
		{"ES256 named", []string{"ES256"}, true},
		{"all that discovery lists", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			kp.resign(true)
			h := newHarness(t, setup{discovery: both, configure: func(cfg *pipaauth.Config) {
				kp.wrap(cfg)
				cfg.SigningAlgs = tt.algs
			}})
			kp.set(jwksNormal, kp.ecJWK())
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			if tt.ok {
				if r.status != http.StatusSeeOther {
					t.Fatalf("login with an ES256 ID token: %d, want 303; errors %v", r.status, h.app.takeErrors())
				}
				return
			}
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
			if logs := h.logs.String(); !strings.Contains(logs, "ES256") {
				t.Errorf("the log does not name the refused algorithm:\n%s", logs)
			}
		})
	}
	t.Run("refresh", func(t *testing.T) {
		t.Parallel()
		kp := newKeyProvider(t)
		events := &eventLog{}
		ta := newTokenApp(t, true, func(c *pipaauth.Config) {
			kp.wrap(c)
			c.SigningAlgs = []string{"RS256"}
			c.OnEvent = events.record
		}, nil)
		kp.set(jwksNormal, kp.ecJWK())
		kp.resign(true)
		ta.advance(2 * time.Hour)
		if code, body := ta.token(t); code != http.StatusBadGateway {
			t.Fatalf("/token with an ES256 refreshed ID token: %d %q, want 502 (refresh failed)", code, body)
		}
		var got []pipaauth.Event
		for _, e := range events.take() {
			if e.Kind == pipaauth.EventRefreshFailed {
				got = append(got, e)
			}
		}
		if len(got) != 1 || got[0].Reason != pipaauth.ReasonIDTokenInvalid {
			t.Errorf("refresh_failed events %+v, want one with %q", got, pipaauth.ReasonIDTokenInvalid)
		}
	})
}

// A logout token signed with an algorithm SigningAlgs does not name is
// refused (rp-backchannel-rpinitlogout-lt-wrong-alg), and accepted when it
// is allowed.
func TestSigningAlgsLogoutTokens(t *testing.T) {
	t.Parallel()
	both := func(doc map[string]any) { doc["id_token_signing_alg_values_supported"] = []string{"RS256", "ES256"} }
	for _, tt := range []struct {
		name   string
		algs   []string
		status int
	}{
		{"pinned to RS256", []string{"RS256"}, http.StatusBadRequest},
		{"discovery's", nil, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			b := newBCL(t, true, setup{discovery: both, configure: func(cfg *pipaauth.Config) {
				kp.wrap(cfg)
				cfg.SigningAlgs = tt.algs
			}})
			kp.set(jwksNormal, kp.ecJWK())
			payload, _ := json.Marshal(map[string]any{"iss": b.h.provider.URL, "aud": clientID, "iat": time.Now().Unix(),
				"jti": rand.Text(), "sub": b.h.subject("alice"), "events": map[string]any{pipatest.BackChannelLogoutEvent: map[string]any{}}})
			tok := kp.signES256(payload, "logout+jwt")
			b.h.secrets.addToken(tok)
			r := b.send(t, tok)
			if r.status != tt.status {
				t.Fatalf("ES256 logout token: %d %s, want %d", r.status, r.body, tt.status)
			}
			if sids, subs := b.rev.revoked(); (len(subs) == 1) != (tt.status == http.StatusOK) {
				t.Errorf("revoked sids %q subs %q", sids, subs)
			}
		})
	}
}

// Forged tokens with PiPA's kid and a bad signature never make the
// application fetch the JWKS more than once per UnknownKeyInterval, on
// logout tokens and ID tokens alike (issue 18, finding 1).
func TestForgedSignaturesDoNotFetchKeys(t *testing.T) {
	t.Parallel()
	t.Run("logout tokens", func(t *testing.T) {
		t.Parallel()
		kp := newKeyProvider(t)
		b := newBCL(t, true, setup{configure: kp.wrap})
		if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
			t.Fatalf("valid token: %d %s", r.status, r.body)
		}
		warm, start := kp.fetches.Load(), time.Now()
		const n = 40
		for range n {
			// pipatest's WrongKey: PiPA's kid, another key's signature.
			r := b.send(t, b.token(pipatest.LogoutTokenOptions{WrongKey: true}))
			if r.status != http.StatusBadRequest {
				t.Fatalf("forged token: %d %s, want 400", r.status, r.body)
			}
		}
		if got, most := kp.fetches.Load()-warm, allowedFetches(start); got > most {
			t.Errorf("%d forged logout tokens with PiPA's kid made %d JWKS fetches, want at most %d", n, got, most)
		}
		if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
			t.Errorf("a valid token after the forged ones: %d %s", r.status, r.body)
		}
	})
	t.Run("ID tokens", func(t *testing.T) {
		t.Parallel()
		kp := newKeyProvider(t)
		h := newHarness(t, setup{configure: kp.wrap})
		h.app.newBrowser(t).login("/private")
		warm, start := kp.fetches.Load(), time.Now()
		h.setBehavior(pipatest.Behavior{BadSignature: true})
		const n = 10
		for range n {
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			expectFailure(t, h, r, http.StatusBadRequest, pipaauth.ErrInvalidToken, -1)
		}
		if got, most := kp.fetches.Load()-warm, allowedFetches(start); got > most {
			t.Errorf("%d ID tokens with PiPA's kid and a bad signature made %d JWKS fetches, want at most %d", n, got, most)
		}
	})
	t.Run("rotation after the interval", func(t *testing.T) {
		t.Parallel()
		kp := newKeyProvider(t)
		b := newBCL(t, true, setup{configure: kp.wrap})
		pipaauth.SetKeyInterval(b.h.app.auth, 200*time.Millisecond)
		if r := b.send(t, b.token(pipatest.LogoutTokenOptions{})); r.status != http.StatusOK {
			t.Fatalf("valid token: %d %s", r.status, r.body)
		}
		for range 5 {
			b.send(t, b.token(pipatest.LogoutTokenOptions{WrongKey: true}))
		}
		b.h.provider.RotateKeys()
		tok := b.token(pipatest.LogoutTokenOptions{})
		r := b.send(t, tok)
		if r.status == http.StatusServiceUnavailable {
			// The interval had not passed: the provider retries later.
			if ra := r.header.Get("Retry-After"); ra == "" {
				t.Errorf("503 without Retry-After")
			}
			time.Sleep(250 * time.Millisecond)
			r = b.send(t, tok)
		}
		if r.status != http.StatusOK {
			t.Fatalf("a token signed with the rotated key: %d %s, want 200", r.status, r.body)
		}
	})
}

// PiPA's JWKS unavailable at login: 502 (504 on timeout) with
// keys_unavailable and a new login offered, never 400; logins work again
// once it recovers.
func TestKeysUnavailableAtLogin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		mode   jwksMode
		status int
	}{
		{"503", jwks503, http.StatusBadGateway},
		{"unreachable", jwksUnreachable, http.StatusBadGateway},
		{"hanging past ExchangeTimeout", jwksHang, http.StatusGatewayTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			kp.set(tt.mode)
			events := &eventLog{}
			h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
				kp.wrap(cfg)
				cfg.OnEvent = events.record
				cfg.ExchangeTimeout = outageTimeout
			}})
			pipaauth.SetKeyInterval(h.app.auth, 100*time.Millisecond)
			b := h.app.newBrowser(t)
			r := b.finish(b.startLogin("/private"))
			expectFailure(t, h, r, tt.status, pipaauth.ErrExchange, -1)
			if !strings.Contains(r.body, `href="/login"`) {
				t.Errorf("the error page offers no new login:\n%s", r.body)
			}
			var reasons []string
			for _, e := range events.take() {
				if e.Kind == pipaauth.EventLoginFailed {
					reasons = append(reasons, e.Reason)
				}
			}
			if len(reasons) != 1 || reasons[0] != pipaauth.ReasonKeysUnavailable {
				t.Errorf("login_failed reasons %q, want [%q]", reasons, pipaauth.ReasonKeysUnavailable)
			}
			b.mustBeLoggedOut()
			kp.set(jwksNormal)
			// The next fetch may start (and a hanging one has timed out).
			time.Sleep(150*time.Millisecond + map[bool]time.Duration{true: outageTimeout}[tt.mode == jwksHang])
			b.login("/private")
			b.mustUser()
		})
	}
}

// Concurrent logins during a slow JWKS share one fetch.
func TestKeysFetchIsShared(t *testing.T) {
	t.Parallel()
	kp := newKeyProvider(t)
	kp.set(jwksHang)
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		kp.wrap(cfg)
		cfg.ExchangeTimeout = outageTimeout
	}})
	const n = 6
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		b := h.app.newBrowser(t)
		cb := b.authorize(b.startLogin("/private"))
		wg.Go(func() { statuses[i] = b.get(cb).status })
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusGatewayTimeout {
			t.Errorf("login %d: %d, want 504", i, s)
		}
	}
	if got := kp.fetches.Load(); got != 1 {
		t.Errorf("%d concurrent logins made %d JWKS fetches, want 1", n, got)
	}
	h.app.takeErrors()
}

// PiPA rotates its key and its JWKS fails: a refresh keeps the session with
// the new tokens (the old refresh token is spent), its identity as it was,
// and a warning; once the JWKS is back the session refreshes again.
func TestKeysUnavailableAtRefresh(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mode jwksMode
	}{
		{"503", jwks503},
		{"hanging past ExchangeTimeout", jwksHang},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			logs := &syncBuffer{}
			events := &eventLog{}
			ta := newTokenApp(t, true, func(c *pipaauth.Config) {
				kp.wrap(c)
				c.ExchangeTimeout = outageTimeout
				c.Logger = slogTo(logs)
				c.OnEvent = events.record
			}, nil)
			pipaauth.SetKeyInterval(ta.auth, 100*time.Millisecond)
			_, first := ta.token(t)
			ta.provider.RotateKeys()
			kp.set(tt.mode)
			ta.advance(2 * time.Hour)
			before := ta.provider.TokenRequests()
			code, second := ta.token(t)
			if code != http.StatusOK || second == first {
				t.Fatalf("/token during the outage: %d %q, want 200 and a new token", code, second)
			}
			if n := ta.provider.TokenRequests() - before; n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
			if !strings.Contains(logs.String(), "the refreshed ID token went unchecked") {
				t.Errorf("no warning that the ID token went unchecked:\n%s", logs)
			}
			if code, again := ta.token(t); code != http.StatusOK || again != second {
				t.Errorf("the new tokens were not kept: %d %q, want %q", code, again, second)
			}
			kp.set(jwksNormal)
			time.Sleep(150*time.Millisecond + map[bool]time.Duration{true: outageTimeout}[tt.mode == jwksHang])
			ta.advance(2 * time.Hour)
			if code, third := ta.token(t); code != http.StatusOK || third == second {
				t.Errorf("/token after the outage: %d %q, want 200 and a new token (the rotated refresh token works)", code, third)
			}
			if n := strings.Count(logs.String(), "the refreshed ID token went unchecked"); n != 1 {
				t.Errorf("%d warnings that the ID token went unchecked, want 1 (the refresh after the outage checks it)", n)
			}
			for _, e := range events.take() {
				if e.Kind == pipaauth.EventRefreshFailed {
					t.Errorf("event %+v, want refreshes only", e)
				}
			}
		})
	}
}

// A logout token that cannot be checked for want of keys gets 503 with
// Retry-After; the provider's retry of the same token succeeds once the
// keys are back.
func TestKeysUnavailableAtBackChannelLogout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mode jwksMode
	}{
		{"503", jwks503},
		{"hanging past ExchangeTimeout", jwksHang},
		{"unreachable", jwksUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kp := newKeyProvider(t)
			kp.set(tt.mode)
			b := newBCL(t, true, setup{configure: func(cfg *pipaauth.Config) {
				kp.wrap(cfg)
				cfg.ExchangeTimeout = outageTimeout
			}})
			pipaauth.SetKeyInterval(b.h.app.auth, 100*time.Millisecond)
			tok := b.token(pipatest.LogoutTokenOptions{User: "alice"})
			r := b.send(t, tok)
			wantRefusal(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			if r.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After")
			}
			b.wantNothingRevoked(t)
			kp.set(jwksNormal)
			time.Sleep(150 * time.Millisecond)
			if r := b.send(t, tok); r.status != http.StatusOK {
				t.Fatalf("the provider's retry once the keys are back: %d %s, want 200", r.status, r.body)
			}
		})
	}
}

// slogTo returns a logger writing text lines to w, Debug and above.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// allowedFetches is how many JWKS fetches UnknownKeyInterval allows since
// start: one, and one more per interval passed (on a slow machine).
func allowedFetches(start time.Time) int64 {
	return 1 + int64(time.Since(start)/pipaauth.UnknownKeyInterval)
}

// outageTimeout is the ExchangeTimeout of the outage tests: a hanging JWKS
// fails after it; long enough for a code exchange on a loaded machine.
const outageTimeout = 3 * time.Second

// A login signed with a rotated key less than UnknownKeyInterval after the
// last fetch, whose ExchangeTimeout cannot wait for the next one, answers
// 503 with keys_unavailable at once (and a new login is offered), without
// fetching; once the interval has passed, the login goes through.
func TestRotatedKeyWithinTheInterval(t *testing.T) {
	t.Parallel()
	kp := newKeyProvider(t)
	events := &eventLog{}
	h := newHarness(t, setup{configure: func(cfg *pipaauth.Config) {
		kp.wrap(cfg)
		cfg.OnEvent = events.record
		cfg.ExchangeTimeout = 2 * time.Second
	}})
	pipaauth.SetKeyInterval(h.app.auth, 5*time.Second)
	h.app.newBrowser(t).login("/private")
	h.provider.RotateKeys()
	events.take()
	b := h.app.newBrowser(t)
	start := time.Now()
	r := b.finish(b.startLogin("/private"))
	expectFailure(t, h, r, http.StatusServiceUnavailable, pipaauth.ErrExchange, -1)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the refusal took %v: it must not wait for a fetch it cannot have", took)
	}
	if !strings.Contains(r.body, `href="/login"`) {
		t.Errorf("the error page offers no new login:\n%s", r.body)
	}
	if n := kp.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1 (the first login's)", n)
	}
	var reasons []string
	for _, e := range events.take() {
		if e.Kind == pipaauth.EventLoginFailed {
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) != 1 || reasons[0] != pipaauth.ReasonKeysUnavailable {
		t.Errorf("login_failed reasons %q, want [%q]", reasons, pipaauth.ReasonKeysUnavailable)
	}
	pipaauth.SetKeyInterval(h.app.auth, 100*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	b.login("/private")
}
