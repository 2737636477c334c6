// Package jwks is pipaauth's copy of the provider's JWK set (RFC 7517): an
// oidc.KeySet for go-oidc's verifiers that skips the keys it cannot use
// instead of failing on the whole set, fetches the set again at most once
// per interval and per source however many signatures fail (tokens posted
// by anyone cannot spend the fetch that tokens from PiPA's endpoints
// need), shares one bounded fetch
// among every request that needs it, and tells its caller (Report) when the
// keys could not be had, so that an outage at PiPA reads as one.
package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms are the JWS algorithms a Set verifies: the asymmetric ones
// go-oidc and go-jose support. Never "none", never HMAC: a provider's
// public JWKS holds no secret, and a symmetric key in it would let anyone
// sign.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ErrThrottled is what a verification that needs a fetch gets while the
// last fetch its source (WithPriority) started began less than the interval
// ago, none is in flight, and the last one succeeded (else the error wraps
// that one's).
var ErrThrottled = errors.New("the key set was fetched less than UnknownKeyInterval ago and has no key for this signature; the next fetch may start later")

// MinRSABits is the shortest RSA key used (RFC 7518 section 3.3).
const MinRSABits = 2048

// Skipped describes a key of the set that is not used, from its public
// members only (never key material).
type Skipped struct {
	KeyID, KeyType, Curve, Algorithm string // kid, kty, crv, alg as the set has them (shortened)
	Reason                           string // why it is skipped
}

// Config configures a Set.
type Config struct {
	URL      string        // jwks_uri
	Client   *http.Client  // makes the fetches (capped and bounded by httpx)
	Timeout  time.Duration // bounds one fetch
	Interval time.Duration // at most one fetch starts per Interval when signatures fail
	// OnFetch, optional, is called after every fetch with what it skipped
	// and its error, on the fetch's goroutine, with the context of the
	// request that started it (without its cancellation).
	OnFetch func(ctx context.Context, skipped []Skipped, took time.Duration, err error)
}

// Set is the provider's key set. It is safe for concurrent use.
type Set struct {
	cfg      Config
	interval atomic.Int64 // Config.Interval; tests shorten it

	mu        sync.Mutex
	keys      []jose.JSONWebKey  // the usable keys of the last good fetch
	lastStart [sources]time.Time // when each source last started a fetch
	lastGood  time.Time          // when the last successful fetch started
	lastErr   error              // the last fetch's error, nil when it succeeded
	inflight  *call              // the fetch in flight, nil when none
}

type call struct {
	done chan struct{}
	err  error
}

// New returns a Set that fetches nothing until a signature needs it.
func New(cfg Config) *Set {
	s := &Set{cfg: cfg}
	s.interval.Store(int64(cfg.Interval))
	return s
}

// SetInterval changes the interval between fetches (for tests).
func (s *Set) SetInterval(d time.Duration) { s.interval.Store(int64(d)) }

// Report tells the caller of a verification what the Set did: put one in
// the context with WithReport before calling the verifier.
type Report struct {
	// Verified is set when the signature verified with one of the keys.
	Verified bool
	// Unavailable is set when the keys needed could not be had: the fetch
	// failed (network, 5xx, timeout: it wraps context.DeadlineExceeded,
	// a set without a usable key), or ErrThrottled. nil otherwise: a
	// failed verification with Unavailable nil is a bad signature.
	Unavailable error
	// RetryAfter is, with Unavailable, how long until a fetch may start.
	RetryAfter time.Duration
}

type reportKey struct{}
type waitKey struct{}
type priorityKey struct{}

// The sources of fetches, each throttled on its own: tokens anyone may
// send (back-channel logout tokens, the default) and tokens PiPA handed
// over its authenticated TLS endpoints (WithPriority).
const (
	anonymous = iota
	priority
	sources
)

// WithPriority returns ctx marking the token to verify as one PiPA handed
// over an authenticated TLS connection (an ID token from the token
// endpoint, a signed UserInfo answer). Such tokens have a fetch slot of
// their own: a fetch started for a token anyone may post (a back-channel
// logout token) does not hold theirs back after a key rotation, and each
// source still starts at most one fetch per interval.
func WithPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

// sourceOf is the source a verification under ctx fetches for.
func sourceOf(ctx context.Context) int {
	if _, ok := ctx.Value(priorityKey{}).(bool); ok {
		return priority
	}
	return anonymous
}

// WithReport returns ctx carrying a fresh Report, and the Report.
func WithReport(ctx context.Context) (context.Context, *Report) {
	r := &Report{}
	return context.WithValue(ctx, reportKey{}, r), r
}

// WithWait returns ctx asking the Set, when a fetch is needed but the last
// one started less than the interval ago, to wait for the next one as long
// as ctx's deadline allows, rather than report ErrThrottled at once. For ID
// tokens, which come from PiPA's token endpoint: a login during a key
// rotation is then slower, not refused.
func WithWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitKey{}, true)
}

// VerifySignature implements oidc.KeySet. The algorithm has been checked by
// go-oidc's verifier; the key must carry the token's kid when it has one,
// and, when the key names an alg, the token's.
func (s *Set) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	rep, _ := ctx.Value(reportKey{}).(*Report)
	if rep == nil {
		rep = &Report{}
	}
	jws, err := jose.ParseSignedCompact(jwt, Algorithms)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the JWS must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	s.mu.Lock()
	keys, known, fresh := s.keys, s.knows(kid), s.fresh(time.Now())
	s.mu.Unlock()
	if payload, ok := verify(jws, keys, kid); ok {
		rep.Verified = true
		return payload, nil
	}
	if known && fresh {
		// The kid is in a set fetched less than the interval ago: the
		// signature is wrong, and fetching again would only let forged
		// tokens make this application hammer PiPA.
		return nil, fmt.Errorf("the signature does not verify with PiPA's key %q", short(kid))
	}
	_, wait := ctx.Value(waitKey{}).(bool)
	src := sourceOf(ctx)
	if err := s.refresh(ctx, wait, src); err != nil {
		rep.Unavailable = err
		rep.RetryAfter = s.retryAfter(time.Now(), src)
		return nil, err
	}
	s.mu.Lock()
	keys = s.keys
	s.mu.Unlock()
	if payload, ok := verify(jws, keys, kid); ok {
		rep.Verified = true
		return payload, nil
	}
	if kid != "" {
		return nil, fmt.Errorf("no key of PiPA's JWKS with kid %q verifies the signature", short(kid))
	}
	return nil, errors.New("no key of PiPA's JWKS verifies the signature")
}

func verify(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	alg := jws.Signatures[0].Header.Algorithm
	for i := range keys {
		k := &keys[i]
		if (kid != "" && k.KeyID != kid) || (k.Algorithm != "" && k.Algorithm != alg) {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// knows reports whether a key with kid is cached. s.mu is held.
func (s *Set) knows(kid string) bool {
	if kid == "" {
		return false
	}
	for _, k := range s.keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// fresh reports whether the last successful fetch started less than the
// interval ago. s.mu is held.
func (s *Set) fresh(now time.Time) bool {
	return !s.lastGood.IsZero() && now.Sub(s.lastGood) < time.Duration(s.interval.Load())
}

// retryAfter is how long until src may start a fetch.
func (s *Set) retryAfter(now time.Time, src int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastStart[src].IsZero() {
		return 0
	}
	return max(0, s.lastStart[src].Add(time.Duration(s.interval.Load())).Sub(now))
}

// refresh joins the fetch in flight, whoever started it, or starts one when
// src's interval allows; otherwise it waits for src's next slot (wait, and
// ctx's deadline allows it) or reports ErrThrottled, with the last fetch's
// error when it failed.
func (s *Set) refresh(ctx context.Context, wait bool, src int) error {
	for {
		s.mu.Lock()
		c := s.inflight
		now := time.Now()
		last := s.lastStart[src]
		next := last.Add(time.Duration(s.interval.Load()))
		if c == nil && (last.IsZero() || !now.Before(next)) {
			c = &call{done: make(chan struct{})}
			s.inflight = c
			s.lastStart[src] = now
			// The fetch outlives the request that started it: others may
			// be waiting for it. Its own Timeout bounds it.
			go s.run(context.WithoutCancel(ctx), c)
		}
		lastErr := s.lastErr
		s.mu.Unlock()
		if c != nil {
			select {
			case <-c.done:
				return c.err
			case <-ctx.Done():
				return fmt.Errorf("waiting for PiPA's JWKS: %w", ctx.Err())
			}
		}
		d := next.Sub(now)
		if dl, ok := ctx.Deadline(); !wait || (ok && dl.Sub(now) <= d) {
			if lastErr != nil {
				// Not ErrThrottled: the keys are unavailable as that
				// fetch found them.
				return fmt.Errorf("%w (not fetched again yet: at most one fetch per interval)", lastErr)
			}
			return ErrThrottled
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for PiPA's JWKS: %w", ctx.Err())
		}
	}
}

func (s *Set) run(ctx context.Context, c *call) {
	start := time.Now()
	keys, skipped, err := s.fetch(ctx)
	s.mu.Lock()
	s.lastErr = err
	if err == nil {
		s.keys, s.lastGood = keys, start
	}
	s.inflight = nil
	s.mu.Unlock()
	// Reported before the waiters go on: the request that needed the keys
	// is logged after what the fetch found.
	if s.cfg.OnFetch != nil {
		s.cfg.OnFetch(ctx, skipped, time.Since(start), err)
	}
	c.err = err
	close(c.done)
}

func (s *Set) fetch(ctx context.Context) ([]jose.JSONWebKey, []Skipped, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching PiPA's JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// A client's own timeout reads as a url.Error: say timeout.
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, nil, fmt.Errorf("fetching PiPA's JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, nil, fmt.Errorf("reading PiPA's JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("PiPA's JWKS endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return Parse(body)
}

// Parse reads a JWK set and returns its usable signature keys (public
// parts only), and the keys it skipped: a key of another type, curve or
// algorithm than Algorithms cover, a symmetric key, an RSA key shorter than
// MinRSABits, or one that does not parse (RFC 7517 section 5: keys an
// implementation does not understand SHOULD be ignored). Keys whose use is
// not "sig" are left out without being reported. A set that is not JSON,
// has no keys member, or has no usable key is an error; the last names what
// was skipped.
func Parse(body []byte) ([]jose.JSONWebKey, []Skipped, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("PiPA's JWKS is not a JSON JWK set: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`PiPA's JWKS has no "keys" array`)
	}
	var keys []jose.JSONWebKey
	var skipped []Skipped
	encryption := 0
	for _, raw := range set.Keys {
		var m struct {
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			Use string `json:"use"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			skipped = append(skipped, Skipped{Reason: "not a JSON object with string kty, crv, alg, kid and use"})
			continue
		}
		sk := Skipped{KeyID: short(m.Kid), KeyType: short(m.Kty), Curve: short(m.Crv), Algorithm: short(m.Alg)}
		if m.Use != "" && m.Use != "sig" {
			encryption++ // an encryption key: understood, not for signatures
			continue
		}
		if sk.Reason = unsupported(m.Kty, m.Crv, m.Alg); sk.Reason != "" {
			skipped = append(skipped, sk)
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			// go-jose's message may quote the key's members: not logged.
			sk.Reason = "malformed key (go-jose cannot read it)"
			skipped = append(skipped, sk)
			continue
		}
		k = k.Public() // a published private key still verifies as its public half
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < MinRSABits {
				sk.Reason = fmt.Sprintf("RSA key of %d bits, shorter than %d", pub.N.BitLen(), MinRSABits)
				skipped = append(skipped, sk)
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			sk.Reason = "not a public signature key"
			skipped = append(skipped, sk)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, NoUsableKey{Skipped: skipped, Encryption: encryption}
	}
	return keys, skipped, nil
}

// NoUsableKey is Parse's error for a set without a usable signature key.
type NoUsableKey struct {
	Skipped    []Skipped
	Encryption int // keys left out because their use is not "sig"
}

func (e NoUsableKey) Error() string {
	var b strings.Builder
	b.WriteString("PiPA's JWKS has no key this package can verify signatures with")
	if len(e.Skipped) > 0 {
		b.WriteString("; skipped: ")
		for i, s := range e.Skipped {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.String())
		}
	}
	if e.Encryption > 0 {
		fmt.Fprintf(&b, "; %d key(s) whose use is not sig", e.Encryption)
	}
	return b.String()
}

// String describes s for logs and errors: its kid, kty, crv, alg and why.
func (s Skipped) String() string {
	return fmt.Sprintf("kid %q (kty %q, crv %q, alg %q): %s", s.KeyID, s.KeyType, s.Curve, s.Algorithm, s.Reason)
}

// unsupported says why a key of kty, crv and alg cannot verify any of
// Algorithms, or "" when it may.
func unsupported(kty, crv, alg string) string {
	algOK := func(allowed ...string) string {
		if alg == "" {
			return ""
		}
		for _, a := range allowed {
			if a == alg {
				return ""
			}
		}
		return "unsupported algorithm for this key type"
	}
	switch kty {
	case "RSA":
		if crv != "" {
			return "RSA key with a crv member"
		}
		return algOK("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	case "EC":
		switch crv {
		case "P-256":
			return algOK("ES256")
		case "P-384":
			return algOK("ES384")
		case "P-521":
			return algOK("ES512")
		}
		return "unsupported curve"
	case "OKP":
		if crv != "Ed25519" {
			return "unsupported curve"
		}
		return algOK("EdDSA")
	case "oct":
		return "symmetric key: never used to verify"
	case "":
		return "no key type (kty)"
	}
	return "unsupported key type"
}

// short makes a member of the provider's set fit a log line: at most 64
// bytes, control characters replaced.
func short(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
