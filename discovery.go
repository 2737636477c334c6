package pipaauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/callback"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/jwks"
	"github.com/pipaauth/pipaauth/session"
)

// Retries of LazyDiscovery: the first after DiscoveryRetryMin, each later
// one twice as late, at most DiscoveryRetryMax apart, with jitter (each wait
// is drawn between half and all of its step). A request that needs PiPA
// starts a fetch of its own when none ran for DiscoveryRetryMin.
const (
	DiscoveryRetryMin = time.Second
	DiscoveryRetryMax = time.Minute
)

// discovery is what PiPA's discovery document says, beyond what go-oidc
// reads for us: the one place to add a field (and its check in
// applyDiscovery).
type discovery struct {
	ResponseTypes    []string `json:"response_types_supported"`
	CodeChallenge    []string `json:"code_challenge_methods_supported"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	EndSession       string   `json:"end_session_endpoint"`
	Revocation       string   `json:"revocation_endpoint"`
	UserInfo         string   `json:"userinfo_endpoint"`
	IssParameter     bool     `json:"authorization_response_iss_parameter_supported"`
	JWKSURI          string   `json:"jwks_uri"`
	IDTokenAlgs      []string `json:"id_token_signing_alg_values_supported"`
	ResponseModes    []string `json:"response_modes_supported"`
	// Back-Channel Logout 1.0 section 2.1, read to be logged.
	BackChannelLogout        bool `json:"backchannel_logout_supported"`
	BackChannelLogoutSession bool `json:"backchannel_logout_session_supported"`
	// High-assurance (checked by Auth.highAssurance).
	TokenAuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	PAREndpoint          string   `json:"pushed_authorization_request_endpoint"`
	RequirePAR           bool     `json:"require_pushed_authorization_requests"`
	DPoPAlgs             []string `json:"dpop_signing_alg_values_supported"`
}

// provider is everything that depends on the discovery document. It is
// built whole by applyDiscovery and then published at once (Auth.prov), so
// no request ever sees a half-applied document; it never changes after.
type provider struct {
	doc        discovery
	flow       *callback.Flow   // login start, callback, refresh
	endSession string           // end_session_endpoint, "" when none
	revocation string           // revocation_endpoint (RFC 7009), "" when none
	authStyle  oauth2.AuthStyle // how the client authenticates at the token and revocation endpoints
	ha         *highAssurance   // client authentication and DPoP client; pushed authorization
	// logoutTokens verifies back-channel logout tokens with the provider's
	// keys, iss and aud; exp is checked by BackChannelLogoutHandler, as it
	// may be absent.
	logoutTokens *oidc.IDTokenVerifier
	keys         *jwks.Set // PiPA's JWKS, read by both verifiers
}

// retryPolicy is the backoff of LazyDiscovery's retries; tests shorten it.
type retryPolicy struct{ min, max time.Duration }

// fetchProvider fetches the discovery document under ctx (bounded by
// DefaultDiscoveryTimeout) and applies it. Its errors wrap ErrDiscovery or,
// for a document this Config cannot work with, ErrConfig.
func (a *Auth) fetchProvider(ctx context.Context) (*provider, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultDiscoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), a.cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%w: the discovery document names issuer %q, not Issuer %q: set Issuer to the provider's exact issuer URL", errs.ErrDiscovery, mismatch.Discovered, mismatch.Provided)
		}
		_, brief := httpx.Brief(err) // go-oidc's error holds PiPA's whole answer
		return nil, fmt.Errorf("%w: fetching %s/.well-known/openid-configuration: %w (check Issuer and that PiPA is reachable)", errs.ErrDiscovery, strings.TrimSuffix(a.cfg.Issuer, "/"), brief)
	}
	return a.applyDiscovery(p)
}

// applyDiscovery checks a fetched document and builds everything that
// depends on it, changing nothing in a: the caller publishes the result.
func (a *Auth) applyDiscovery(op *oidc.Provider) (*provider, error) {
	cfg := &a.cfg
	var d discovery
	if err := op.Claims(&d); err != nil {
		return nil, fmt.Errorf("%w: reading the discovery document: %w", errs.ErrDiscovery, err)
	}
	ep := op.Endpoint()
	for _, u := range []struct{ name, value string }{
		{"authorization_endpoint", ep.AuthURL},
		{"token_endpoint", ep.TokenURL},
		{"jwks_uri", d.JWKSURI},
	} {
		if err := cfg.checkURL(u.value); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errs.ErrDiscovery, u.name, err)
		}
	}
	if len(d.ResponseTypes) > 0 && !slices.Contains(d.ResponseTypes, "code") {
		return nil, fmt.Errorf("%w: the provider does not support response_type=code", errs.ErrDiscovery)
	}
	pkce := slices.Contains(d.CodeChallenge, "S256")
	if !pkce && !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		// Neither a nonce nor PKCE would bind the code to the browser that
		// asked for it: a stolen code could be injected.
		return nil, fmt.Errorf("%w: the provider does not advertise PKCE (S256) and Scopes lacks openid, so nothing would bind a code to its login: add the openid scope", errs.ErrConfig)
	}
	ha, err := a.highAssurance(d, ep.TokenURL)
	if err != nil {
		return nil, err
	}
	formPost, formPostOrigins, err := a.checkResponseMode(d, ep.AuthURL) // formpost.go
	if err != nil {
		return nil, err
	}
	secret := cfg.ClientSecret
	if ha.assertion != nil {
		// private_key_jwt: x/oauth2 sends client_id only, and the
		// assertion transport adds the assertion.
		ep.AuthStyle, secret = oauth2.AuthStyleInParams, ""
	} else if ep.AuthStyle, err = authStyle(d.TokenAuthMethods); err != nil {
		return nil, err
	}
	ha.style = ep.AuthStyle
	for _, u := range []struct{ name, value string }{
		{"end_session_endpoint", d.EndSession},
		{"revocation_endpoint", d.Revocation},
		{"userinfo_endpoint", d.UserInfo},
	} {
		if u.value == "" {
			continue // optional
		}
		if err := cfg.checkURL(u.value); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", errs.ErrDiscovery, u.name, err)
		}
	}
	verifier, keys, err := a.tokenVerifier(d)
	if err != nil {
		return nil, err
	}
	var userInfo callback.UserInfoFunc
	if d.UserInfo != "" {
		// Not go-oidc's: its signed answers would be checked with a key
		// set of its own, unfiltered and unthrottled, without iss, aud or
		// SigningAlgs.
		userInfo = callback.UserInfoEndpoint(d.UserInfo, ha.client, verifier)
	}
	flow, err := callback.New(callback.Config{
		OAuth2: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: secret,
			Endpoint:     ep,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
		},
		// go-oidc has no leeway on exp: the callback checks exp (and nbf)
		// with ClockSkew itself. Every other check stays go-oidc's.
		Verifier:   verifier,
		UserInfo:   userInfo,
		Claims:     cfg.Claims,
		Revoke:     func(ctx context.Context, t *session.Tokens) { a.revoke(ctx, a.prov.Load(), t) },
		Issuer:     cfg.Issuer,
		Sessions:   a.sessions,
		Client:     ha.client,
		OnError:    a.renderError,
		DPoP:       cfg.DPoP,
		Push:       a.pusher(ha),
		PKCE:       pkce,
		RequireIss: d.IssParameter,
		KeepTokens: cfg.KeepTokens,
		AttemptTTL: LoginAttemptTTL,
		Timeout:    cfg.ExchangeTimeout,
		ClockSkew:  cfg.ClockSkew,
		Now:        cfg.Now,
		Logger:     cfg.Logger,
		Events:     a.sink(),

		EndRevokedSID:   a.endRevokedSID(),  // a back-channel logout racing this login (backchannel_sid.go)
		RevokedSubject:  a.revokedSubject(), // the same, by sub
		FormPost:        formPost,
		FormPostOrigins: formPostOrigins,
		StateKeys:       stateKeys(cfg.SessionKeys), // hostnames.go
		LoginPath:       cfg.LoginPath,
	})
	if err != nil {
		return nil, err
	}
	a.logBackChannelDiscovery(context.Background(), d)
	return &provider{doc: d, flow: flow, endSession: d.EndSession, revocation: d.Revocation, authStyle: ep.AuthStyle, ha: ha,
		logoutTokens: verifier, keys: keys}, nil
}

// lazyDiscovery runs discovery for LazyDiscovery: one fetch at a time,
// shared by every request that needs it and by the background retries.
type lazyDiscovery struct {
	ctx   context.Context // New's ctx: ends the background retries
	retry retryPolicy
	done  chan struct{} // closed when the background retries have stopped

	mu      sync.Mutex
	call    *discoveryCall // the fetch in flight, nil when none
	lastEnd time.Time      // when the last fetch ended
	lastErr error          // and why it failed
	next    time.Time      // when the background retries try next; zero when they stopped
}

type discoveryCall struct {
	done chan struct{}
	p    *provider
	err  error
}

// provider returns the applied discovery document. Without LazyDiscovery it
// is there from New on; with it, a request that finds none joins the fetch
// in flight or starts one (unless one ended less than the retry minimum
// ago), and waits for it as long as ctx allows.
func (a *Auth) provider(ctx context.Context) (*provider, error) {
	if p := a.prov.Load(); p != nil {
		return p, nil
	}
	return a.discover(ctx, true)
}

// discover joins or starts a fetch. A need (a request) does not start one
// within retry.min of the last, so a crowd of requests during an outage
// costs PiPA at most one fetch per retry.min.
func (a *Auth) discover(ctx context.Context, need bool) (*provider, error) {
	l := a.lazy
	l.mu.Lock()
	if p := a.prov.Load(); p != nil {
		l.mu.Unlock()
		return p, nil
	}
	c := l.call
	if c == nil {
		if need && !l.lastEnd.IsZero() && time.Since(l.lastEnd) < l.retry.min {
			err := l.lastErr
			l.mu.Unlock()
			return nil, err
		}
		c = &discoveryCall{done: make(chan struct{})}
		l.call = c
		// The fetch outlives any one request: others may be waiting for
		// it. Only the background retries' end (New's ctx) cuts it short,
		// and only when the background started it.
		fctx := context.WithoutCancel(l.ctx)
		if !need {
			fctx = l.ctx
		}
		go a.runDiscovery(fctx, c)
	}
	l.mu.Unlock()
	select {
	case <-c.done:
		return c.p, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the discovery document: %w", errs.ErrDiscovery, ctx.Err())
	}
}

func (a *Auth) runDiscovery(ctx context.Context, c *discoveryCall) {
	p, err := a.fetchProvider(ctx)
	if err == nil {
		a.prov.Store(p) // published whole, before anyone is told
		a.log.LogAttrs(ctx, slog.LevelInfo, "pipaauth: discovery document applied", slog.String("issuer", a.cfg.Issuer))
	} else {
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: discovery failed; logins answer 503 until it succeeds, sessions keep working", slog.String("error", err.Error()))
	}
	l := a.lazy
	l.mu.Lock()
	l.call, l.lastEnd, l.lastErr = nil, time.Now(), err
	l.mu.Unlock()
	c.p, c.err = p, err
	close(c.done)
}

// background retries discovery with capped exponential backoff and jitter
// until it succeeds or New's ctx is done.
func (a *Auth) background() {
	l := a.lazy
	defer close(l.done)
	defer func() {
		l.mu.Lock()
		l.next = time.Time{}
		l.mu.Unlock()
	}()
	step := l.retry.min
	for {
		_, err := a.discover(l.ctx, false)
		if err == nil {
			return
		}
		if l.ctx.Err() != nil {
			a.stoppedEarly()
			return
		}
		wait := step/2 + rand.N(step/2+1)
		l.mu.Lock()
		l.next = time.Now().Add(wait)
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-l.ctx.Done():
			t.Stop()
			a.stoppedEarly()
			return
		case <-t.C:
		}
		step = min(2*step, l.retry.max)
	}
}

// stoppedEarly logs that the background retries ended with New's ctx.
func (a *Auth) stoppedEarly() {
	a.log.LogAttrs(context.Background(), slog.LevelWarn, "pipaauth: background discovery stopped before it succeeded, as the ctx given to New is done; requests that need PiPA will fetch it")
}

// retryAfter is the Retry-After of a 503 for lack of discovery, in whole
// seconds: until the next background retry, at least one.
func (a *Auth) retryAfter() int {
	l := a.lazy
	l.mu.Lock()
	next := l.next
	l.mu.Unlock()
	if next.IsZero() {
		return max(1, int(l.retry.min/time.Second))
	}
	return max(1, int((time.Until(next)+time.Second-1)/time.Second))
}
