package pipaauth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/sessions"
	"golang.org/x/oauth2"

	"github.com/pipaauth/pipaauth/internal/clock"
	"github.com/pipaauth/pipaauth/internal/dpop"
	"github.com/pipaauth/pipaauth/internal/errs"
	"github.com/pipaauth/pipaauth/internal/httpx"
	"github.com/pipaauth/pipaauth/internal/returnto"
	"github.com/pipaauth/pipaauth/internal/userctx"
	"github.com/pipaauth/pipaauth/middleware"
	"github.com/pipaauth/pipaauth/session"
)

// Defaults of the optional Config fields: the value a zero field takes.
const (
	DefaultCookieName      = "pipaauth"       // Config.CookieName
	DefaultSessionLifetime = 12 * time.Hour   // Config.SessionLifetime
	DefaultLoginPath       = "/login"         // Config.LoginPath
	DefaultLogoutPath      = "/logout"        // Config.LogoutPath
	DefaultExchangeTimeout = 10 * time.Second // Config.ExchangeTimeout
)

// Fixed limits, not configurable.
const (
	// DefaultDiscoveryTimeout bounds the discovery request New makes. It is
	// not a Config field: New's ctx can shorten it.
	DefaultDiscoveryTimeout = 10 * time.Second
	// LoginAttemptTTL is how long a started login may take to come back.
	LoginAttemptTTL = 10 * time.Minute
	// MaxPendingLogins (a constant, not a Config field) is how many logins
	// a browser keeps in flight after starting them one after another
	// (parallel tabs): a start deletes the oldest attempt cookies beyond it. Logins started at the same instant
	// may leave more, each expiring after LoginAttemptTTL.
	MaxPendingLogins = 4
	// DefaultClockSkew is the default of Config.ClockSkew.
	DefaultClockSkew = time.Minute
	// DefaultClientTimeout is the timeout of the client behind Client when
	// Config.HTTPClient is nil.
	DefaultClientTimeout = 30 * time.Second
	// RevocationTimeout (a constant, not a Config field) bounds the token
	// revocation a logout makes.
	RevocationTimeout = 2 * time.Second
)

// Config configures an Auth. The zero value of every optional field is the
// safe default, given in the field's comment.
type Config struct {
	// Issuer is PiPA's issuer URL; discovery is fetched from
	// Issuer+"/.well-known/openid-configuration". Required, https.
	Issuer string
	// ClientID and ClientSecret come from the PiPA console. Required. Load
	// the secret from the environment or a secret store, not source code.
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute URL where CallbackHandler is mounted,
	// exactly as registered in the PiPA console. Required, https.
	RedirectURL string
	// Scopes asked for. Default {"openid", "email"}. Without "openid" there
	// is no ID token and the user id comes from the token response alone.
	// With "offline_access" the authorize request carries prompt=consent
	// (OpenID Connect Core 11: providers drop offline_access otherwise), so
	// PiPA shows its consent page at every login.
	Scopes []string
	// SigningAlgs are the JWS algorithms PiPA signs ID tokens and logout tokens
	// with for this client (its registered id_token_signed_response_alg, e.g.
	// []string{"RS256"}). Tokens signed with any other algorithm are refused.
	// Empty: every asymmetric algorithm that discovery lists and the package
	// supports. New fails with ErrConfig for an algorithm discovery does not list.
	//
	// In detail: the names are the JWS "alg" values RS256, RS384, RS512,
	// PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA, case-sensitive.
	// "none" and the symmetric HS256, HS384 and HS512 are refused whatever is
	// configured, and New fails with ErrConfig when SigningAlgs names them or
	// an unknown name. The check holds for ID tokens at login and at refresh
	// (OpenID Connect Core 3.1.3.7 step 7) and for back-channel logout tokens
	// (Back-Channel Logout 1.0 section 2.6 step 3). It is checked against
	// discovery's id_token_signing_alg_values_supported in New, and with
	// LazyDiscovery when the document arrives (a document that does not list
	// them is refused and fetched again later); a document without that list
	// is not checked against. Empty, with discovery listing no supported
	// algorithm: RS256. For an OpenID Foundation certification run (and for
	// PiPA's default registration) set []string{"RS256"}.
	SigningAlgs []string
	// SessionKeys are securecookie key pairs: hashKey, blockKey[, hashKey,
	// blockKey ...]. Hash keys are at least 32 bytes, block keys 16, 24 or 32
	// bytes. The first pair seals new cookies; every pair opens them, so a
	// new pair goes first and an old one stays last until its cookies expire.
	// Required.
	SessionKeys [][]byte
	// HTTPClient makes the discovery, JWKS and token requests, and is the
	// base of the client Client returns. Default: a client with a 10s
	// timeout for PiPA's endpoints, and one with DefaultClientTimeout (30s)
	// for Client. Whatever the client, responses from PiPA's endpoints are
	// capped at 1 MiB and their redirects are not followed.
	HTTPClient *http.Client

	// ResponseMode "form_post" asks PiPA to return the authorization response as
	// a POST to RedirectURL (OAuth 2.0 Form Post Response Mode) instead of in the
	// query string. Empty: the query string. New fails with ErrConfig when
	// discovery lists response_modes_supported without it.
	//
	// With form_post the code never appears in a URL (history, logs,
	// Referer). CallbackHandler then accepts only a top-level form POST whose
	// Origin is PiPA's (its issuer's or authorization endpoint's) or "null",
	// refuses a response in the query string (a provider that ignored
	// response_mode) with ErrInvalidCallback, and the login attempt cookies
	// are written SameSite=None and Secure so that the browser sends them on
	// that cross-site POST (the session cookie keeps SameSite=Lax): serve
	// the application over https, or http on localhost. Where discovery
	// omits response_modes_supported, form_post is tried, as PiPA's console
	// decides. The session cookie is not sent on that POST, so a login there
	// does not see the session it replaces: its tokens are not revoked at
	// that moment (they expire at PiPA), and a server-side record of it
	// expires on its own. Mount CallbackHandler for POST as well as GET
	// (mux.Handle("/callback", ...), without a method): PiPA's page posts
	// to it.
	ResponseMode string

	// CookieName names the session cookie; the login attempt cookies are
	// named after it (<name>-login-<tag>). Default "pipaauth-" and the
	// first 12 hex digits of SHA-256(ClientID), unique per client id so
	// that two applications on one host keep their sessions apart (two
	// Auths with one ClientID share them); sessions under the former
	// default "pipaauth" are still read and move to the new name on their
	// next write. The "__Host-" prefix is added whenever the cookie is
	// Secure.
	CookieName string
	// SessionLifetime is how long a login lasts, counted from the login and
	// checked against a timestamp inside the sealed session. Default 12h.
	SessionLifetime time.Duration
	// IdleTimeout logs a user out after this long without a request. To
	// slide it, a request through RequireLogin rewrites the session when its
	// last write is older than a minute or a tenth of IdleTimeout, whichever
	// is shorter (with IdleTimeout 5m: every 30s at most), so a user is
	// logged out between IdleTimeout minus that step and IdleTimeout after
	// the last request. Default 0: no idle timeout.
	IdleTimeout time.Duration
	// LoginPath is where LoginHandler is mounted; it is the login_url given
	// to API clients in 401 answers. Default "/login".
	LoginPath string
	// LogoutPath is where LogoutHandler is mounted. Without a SessionStore
	// the login's ID token (for id_token_hint) lives in a cookie whose Path
	// is LogoutPath, so that browsers send it to the logout handler and
	// with no other request; a logout handler mounted elsewhere gets no
	// ID token and logs out without id_token_hint. Default "/logout".
	LogoutPath string
	// PostLogoutRedirectURL is sent to PiPA's end-session endpoint as
	// post_logout_redirect_uri (register it in the console), together with
	// the login's ID token as id_token_hint. When the session holds no ID
	// token (no openid scope, or a cookie without room for it) it is not
	// sent, since strict providers refuse it without id_token_hint: PiPA
	// then ends its session and shows its own page. Default: none, and PiPA
	// shows its own page.
	PostLogoutRedirectURL string
	// ExchangeTimeout bounds the code exchange, ID token verification and
	// UserInfo request of a callback, and each refresh. Default 10s.
	ExchangeTimeout time.Duration
	// ClockSkew is how far this application's clock may be from PiPA's,
	// either way: an ID token is accepted up to ClockSkew after its exp,
	// and its iat, nbf and auth_time may be up to ClockSkew in the future.
	// Default DefaultClockSkew (1 minute); negative is an error.
	ClockSkew time.Duration
	// ErrorHandler renders failures. err is an *Error with a status and a
	// safe reason, wrapping a sentinel (errors.Is) or, for a refusal sent by
	// PiPA, a *ProviderError (errors.As). Default: a small HTML page (JSON
	// for API clients) with the status text and the safe reason.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives a line for every login and every failure, with its
	// reason and never a secret, code or token. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now; then the checks every
	// guarded request makes of its session's lifetime and idle timeout read
	// a copy of time.Now refreshed every 10 ms while requests come in (a
	// system clock read costs up to 55 ns on cloud VMs), so a session may
	// outlive SessionLifetime or IdleTimeout by about 10 ms (more while the
	// CPU is saturated, or just after the process was paused). Setting Now,
	// even to time.Now, makes those checks read it on every request.
	// Timestamps and token checks always read Now.
	Now func() time.Time
	// SessionStore, when set, keeps sessions server-side in any gorilla
	// sessions.Store (Redis, PostgreSQL, ...): the cookie then holds only the
	// store's session id, logout deletes the session everywhere, and tokens
	// do not weigh on the cookie. The cookie is written with this package's
	// attributes, never the store's defaults. Default nil: the whole session
	// is sealed in the cookie (stateless; a logout cannot revoke a copy).
	// A store that also implements RevocableStore (such as
	// github.com/pipaauth/pipaauth/redisstore) is used through it instead:
	// the cookie holds an id sealed with SessionKeys, calls carry the
	// request's context, write-backs are compare-and-set, and sessions can
	// be revoked by sid or sub.
	SessionStore sessions.Store
	// SessionStoreTimeout bounds every SessionStore call, as gorilla's Store
	// takes no context; with a RevocableStore it is the deadline of the
	// call's context. A request whose store call times out gets 503.
	// Default 3s.
	SessionStoreTimeout time.Duration
	// SessionStoreMaxWaiting caps the SessionStore calls outstanding at
	// once, so a frozen store cannot pile up goroutines; requests past the
	// cap get 503 at once. Default 64. Unused with a RevocableStore, whose
	// calls run on the request's goroutine.
	SessionStoreMaxWaiting int
	// KeepTokens keeps the access token, refresh token and expiry for
	// Token, TokenSource and Client. Without a SessionStore they live in
	// sealed cookies of their own (Path=/, bound to the session, at most
	// four of 4096 bytes), which only Token, TokenSource and Client read,
	// never RequireLogin; they cost about 1.8 times their length on every
	// request, and a login whose tokens do not fit (about 3 KB of tokens
	// together) fails with ErrCookieTooLarge: use a SessionStore then.
	// Logout revokes the kept refresh token when discovery lists a
	// revocation_endpoint (RFC 7009). Default false: tokens are dropped
	// after login.
	KeepTokens bool
	// InsecureAllowHTTP allows http:// issuer and redirect URLs and a session
	// cookie without the Secure attribute, for local development only.
	// Default false: both URLs must be https.
	InsecureAllowHTTP bool
	// LazyDiscovery lets an application start while PiPA is down: New
	// checks the Config without contacting PiPA and returns at once, and the
	// discovery document is fetched in the background, retried from
	// DiscoveryRetryMin to DiscoveryRetryMax apart with jitter, and by the
	// first request that needs it (a login start, a callback, a logout, a
	// refresh); concurrent needs share one fetch. The document gets every
	// check New makes; a bad one is logged and retried, never half-applied.
	// Until it is applied, a login start or callback answers 503 with
	// Retry-After (ErrDiscovery), a logout ends the local session and
	// redirects to "/", and requests with a session pass RequireLogin as
	// usual. The background retries stop when discovery succeeds or when
	// the ctx given to New is done: give New a context that lives as long as
	// the Auth. Default false: New fetches discovery and fails when it
	// cannot.
	LazyDiscovery bool

	// High-assurance (FAPI 2.0 Security Profile): see docs/high-assurance.md.

	// ClientAssertionKey, when set, authenticates the client with private_key_jwt
	// at PiPA's token, pushed authorization, revocation endpoints (and any other
	// the package calls with client authentication) instead of ClientSecret,
	// which may then be empty. RSA (RS256; PS256 when discovery lists it) or
	// ECDSA P-256 (ES256).
	//
	// Each request gets a fresh assertion (RFC 7523 section 2.2, OpenID
	// Connect Core section 9): iss and sub ClientID, aud the Issuer (FAPI
	// 2.0 Security Profile 5.3.2.1), a random jti, iat, exp 60 seconds
	// later. New fails with ErrConfig when discovery does not list
	// private_key_jwt in token_endpoint_auth_methods_supported, or lists
	// token_endpoint_auth_signing_alg_values_supported without the key's
	// algorithm; RSA keys need 2048 bits. ClientSecret is never sent while
	// a key is set. Default nil: the client secret authenticates.
	ClientAssertionKey crypto.Signer
	// ClientAssertionKeyID is the kid header of the assertions: the key's id in
	// the JWK set registered at PiPA. Optional when that set has one key.
	ClientAssertionKeyID string
	// PushedAuthorization sends every authorization request through PiPA's
	// pushed_authorization_request_endpoint (RFC 9126). It is done whenever
	// discovery says require_pushed_authorization_requests, whatever this says.
	//
	// The login start pushes every parameter (with client authentication)
	// and redirects the browser with client_id and request_uri only. A
	// push that fails is an error page (503 when PiPA cannot be reached in
	// ExchangeTimeout, 502 when it refuses or answers nonsense; JSON for API
	// clients), never a redirect. New fails with ErrConfig when it is set
	// and discovery lists no pushed_authorization_request_endpoint. Default
	// false.
	PushedAuthorization bool
	// DPoP binds the session's tokens to a key of its own (RFC 9449): every
	// login start makes a fresh P-256 key, kept in the login's attempt
	// cookie and then in the session beside the kept tokens (the sealed
	// cookie or the store record; it is never logged). The authorization
	// request carries its thumbprint (dpop_jkt), and the token, refresh and
	// revocation requests and every request of Client carry a proof signed
	// by it; a server's use_dpop_nonce challenge is answered once with its
	// DPoP-Nonce, for requests whose body can be sent again. A login whose
	// token response has a token_type other than DPoP fails (ErrInvalidToken).
	// Token then returns tokens with TokenType "DPoP", to be sent with a
	// proof, as Client does; a DPoP-bound session without its key (for
	// instance written by a version that did not keep it) has no usable
	// tokens: Token returns an error wrapping ErrNoTokens and the user stays
	// logged in. Needs KeepTokens for anything beyond the login itself. New
	// fails with ErrConfig when discovery lists dpop_signing_alg_values_supported
	// without ES256. Default false: Bearer tokens.
	DPoP bool

	// Claims names the claims, beyond sub, email, email_verified and auth_time,
	// that the session keeps for the application: e.g. "name",
	// "preferred_username", "groups", "roles". They come from the ID token or,
	// where the ID token lacks one, from PiPA's UserInfo endpoint (OpenID
	// Connect Core 5.4), and follow the newest ID token after a refresh.
	//
	// Read them with User.Claim, test them with AllowClaim. They need the
	// openid scope, and ask for the scopes that carry them (such as
	// "profile" for name). Claims not named are never kept; distributed and
	// aggregated claims (OpenID Connect Core 5.6.2) are not fetched
	// (EventClaimNotKept). In cookie mode they ride in the session cookie: a
	// login whose claims would push it past 4096 bytes is refused
	// (ErrClaimsTooLarge) and needs fewer claims or a SessionStore, which
	// keeps up to MaxClaimsBytes of them. A change takes effect at each
	// user's next login or refresh; sessions from before keep working. See
	// docs/claims.md. Default nil: no claims are kept, at no cost.
	Claims []string
	// OnEvent, when set, is called once per login, failed login, logout,
	// refresh, failed refresh and session store error (see Event and the
	// Reason constants), for metrics and traces. It is called synchronously
	// on the request's goroutine with the request's context, after the
	// response is decided and with no lock held: keep it fast, and hand
	// slow work to another goroutine. A panic in it is recovered and
	// logged. Default nil: no events, at no cost.
	OnEvent func(ctx context.Context, e Event)
}

// User is a logged-in PiPA user, as RequireLogin puts it in the request
// context (UserFromContext) and Auth.User returns it.
type User struct {
	// ID is the user's PiPA id for this client: the ID token's sub claim
	// (OpenID Connect Core section 2). It is stable and never reassigned,
	// but differs between PiPA integrations: key your user records on it,
	// not on Email.
	ID string
	// Email is the user's email address (the email claim), or "" when the
	// user chose not to share it or the email scope was not asked for.
	Email string
	// EmailVerified reports whether PiPA verified that the user controls
	// Email (the email_verified claim).
	EmailVerified bool
	// AuthTime is when the user last authenticated at PiPA: the ID token's
	// auth_time, or the login time when it has none.
	AuthTime time.Time

	claims string // the kept claims (Config.Claims) as JSON object text; read with Claim
}

// RevocableStore is session.RevocableStore, whose documentation is the
// contract, method by method: a server-side session store that pipaauth
// drives with a context, compare-and-set write-backs and revocation by sid
// or sub (back-channel logout). A Config.SessionStore that also implements
// it is used through it; redisstore
// (github.com/pipaauth/pipaauth/redisstore) is one.
type RevocableStore = session.RevocableStore

// Auth logs users in with PiPA. It is safe for concurrent use.
type Auth struct {
	cfg        Config
	log        *slog.Logger
	client     *http.Client // discovery, JWKS and token requests
	sessions   *session.Manager
	prov       atomic.Pointer[provider] // the applied discovery document; nil until then (LazyDiscovery)
	lazy       *lazyDiscovery           // nil without LazyDiscovery
	guard      *middleware.Guard
	apiClient  *http.Client // base of Client: Config.HTTPClient, or one with a timeout
	logoutCSRF originGuard  // origin.go
	loginCSRF  originGuard
	bcLogout   backChannel // BackChannelLogoutHandler's verifier and revoker
	nonces     dpop.Nonces // DPoP-Nonce per server, for every DPoP proof
	logoutPath sync.Once   // checkLogoutPath's warning, given once
}

// New checks cfg, fetches PiPA's discovery document and returns an Auth.
// Errors wrap ErrConfig (the message names the field and the fix) or
// ErrDiscovery. ctx bounds the fetch (with DefaultDiscoveryTimeout).
//
// With cfg.LazyDiscovery, New checks cfg without contacting PiPA and
// returns at once; errors then wrap ErrConfig only. Discovery runs in the
// background until it succeeds or ctx is done, so give it a context that
// lives as long as the Auth (see Config.LazyDiscovery).
func New(ctx context.Context, cfg Config) (*Auth, error) {
	defaultName := cfg.CookieName == ""
	// The guard checks a session's lifetime on every request: without a
	// clock of the caller's, it reads one refreshed every 10 ms
	// (internal/clock), as lifetimes count in minutes. Timestamps and
	// token checks use Config.Now.
	var checkNow func() time.Time
	if cfg.Now == nil {
		checkNow = new(clock.Coarse).Now
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	a := &Auth{cfg: cfg, log: cfg.Logger, client: httpx.Client(cfg.HTTPClient), apiClient: cfg.HTTPClient}
	if a.apiClient == nil {
		a.apiClient = &http.Client{Timeout: DefaultClientTimeout}
	}
	a.logoutCSRF = a.originGuard("Log out from a page of this site.")
	a.loginCSRF = a.originGuard("Log in from a page of this site.")
	secure := !cfg.InsecureAllowHTTP || strings.HasPrefix(cfg.RedirectURL, "https://")
	name, legacy := cookieNames(&cfg, defaultName, secure) // cookienames.go
	var err error
	a.sessions, err = session.NewManager(session.Options{
		Name:             name,
		LegacyName:       legacy,
		Secure:           secure,
		KeyPairs:         cfg.SessionKeys,
		Lifetime:         cfg.SessionLifetime,
		IdleTimeout:      cfg.IdleTimeout,
		AttemptTTL:       LoginAttemptTTL,
		MaxPending:       MaxPendingLogins,
		Now:              cfg.Now,
		CheckNow:         checkNow,
		LogoutPath:       cfg.LogoutPath,
		AttemptCrossSite: cfg.ResponseMode == responseModeFormPost,
		Store:            cfg.SessionStore,
		StoreTimeout:     cfg.SessionStoreTimeout,
		StoreMaxInflight: cfg.SessionStoreMaxWaiting,
	})
	if err != nil {
		return nil, err
	}
	a.setupBackChannel(ctx)
	a.guard, err = middleware.New(middleware.Config{
		Sessions:    a.sessions,
		Start:       a.start,
		StartStepUp: a.startStepUp,
		Now:         cfg.Now,
		ClockSkew:   cfg.ClockSkew,
		LoginPath:   cfg.LoginPath,
		OnError:     a.renderError,
		Logger:      cfg.Logger,
		Events:      a.sink(),
	})
	if err != nil {
		return nil, err
	}
	if cfg.LazyDiscovery {
		retry := retryFrom(ctx)
		if retry.min <= 0 || retry.max < retry.min {
			retry = retryPolicy{DiscoveryRetryMin, DiscoveryRetryMax}
		}
		a.lazy = &lazyDiscovery{ctx: ctx, retry: retry, done: make(chan struct{})}
		go a.background()
		return a, nil
	}
	p, err := a.fetchProvider(ctx)
	if err != nil {
		return nil, err
	}
	a.prov.Store(p)
	return a, nil
}

// start begins a login for the guard and LoginHandler; with LazyDiscovery,
// before discovery succeeded, it answers 503.
func (a *Auth) start(w http.ResponseWriter, r *http.Request, returnTo string) {
	a.startStepUp(w, r, returnTo, 0, "")
}

// startStepUp begins a login, a RequireRecentLogin one when maxAge > 0
// (callback.Flow.StartStepUp).
func (a *Auth) startStepUp(w http.ResponseWriter, r *http.Request, returnTo string, maxAge time.Duration, subject string) {
	r = a.timed(r)
	p, err := a.provider(r.Context())
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	p.flow.StartStepUp(w, r, returnTo, maxAge, subject)
}

// unavailable answers a request that needs the discovery document before
// it could be fetched: 503 with Retry-After, a failed login.
func (a *Auth) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter()))
	e := &errs.Error{Status: http.StatusServiceUnavailable, Reason: "Logging in is unavailable right now: PiPA cannot be reached. Please try again in a moment.", Err: err}
	a.fail(w, r, e)
	a.emit(r, EventLoginFailed, "", sinceStart(r), e)
}

// authStyle picks the token endpoint's client authentication: PiPA documents
// client_secret_post; client_secret_basic only when it is all the provider
// lists. Never auto-detection, which sends the code a second time when the
// first attempt fails.
func authStyle(methods []string) (oauth2.AuthStyle, error) {
	switch {
	case len(methods) == 0 || slices.Contains(methods, "client_secret_post"):
		return oauth2.AuthStyleInParams, nil
	case slices.Contains(methods, "client_secret_basic"):
		return oauth2.AuthStyleInHeader, nil
	}
	return 0, fmt.Errorf("%w: the token endpoint supports neither client_secret_post nor client_secret_basic (it lists %q)", errs.ErrDiscovery, methods)
}

func (c *Config) setDefaults() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errs.ErrConfig}, a...)...)
	}
	switch {
	case c.Issuer == "":
		return bad("Issuer is empty: set it to PiPA's issuer URL")
	case c.ClientID == "":
		return bad("ClientID is empty: copy the client id from the PiPA console")
	case c.ClientSecret == "" && c.ClientAssertionKey == nil:
		return bad("ClientSecret is empty: load the client secret from the PiPA console through the environment or a secret store")
	}
	if err := c.checkAssertionKey(); err != nil {
		return err
	}
	if err := c.checkURL(c.Issuer); err != nil {
		return bad("Issuer: %w", err)
	}
	if err := c.checkURL(c.RedirectURL); err != nil {
		return bad("RedirectURL: %w; set it to the absolute URL of CallbackHandler, as registered in the PiPA console", err)
	}
	if c.PostLogoutRedirectURL != "" {
		if err := c.checkURL(c.PostLogoutRedirectURL); err != nil {
			return bad("PostLogoutRedirectURL: %w", err)
		}
	}
	if err := session.CheckKeys(c.SessionKeys); err != nil {
		return err
	}
	if err := c.checkSigningAlgs(); err != nil {
		return err
	}
	switch {
	case c.Scopes == nil:
		c.Scopes = []string{oidc.ScopeOpenID, "email"}
	case len(c.Scopes) == 0:
		return bad("Scopes is empty: leave it nil for the default {\"openid\", \"email\"}, or list the scopes to ask for")
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			return bad("Scopes: %q is not a valid scope token", s)
		}
	}
	switch c.ResponseMode {
	case "", responseModeFormPost:
	default:
		return bad("ResponseMode %q: use \"form_post\", or leave it empty for the query string", c.ResponseMode)
	}
	if c.CookieName == "" {
		c.CookieName = DefaultCookieName
	}
	if strings.ContainsFunc(c.CookieName, func(r rune) bool { return !isTokenChar(r) }) {
		return bad("CookieName %q: use letters, digits, '-' and '_' only", c.CookieName)
	}
	if c.LoginPath == "" {
		c.LoginPath = DefaultLoginPath
	}
	if !returnto.Valid(c.LoginPath) || strings.ContainsAny(c.LoginPath, `?"`) {
		return bad("LoginPath %q: use a plain absolute path such as /login", c.LoginPath)
	}
	if c.LogoutPath == "" {
		c.LogoutPath = DefaultLogoutPath
	}
	if !returnto.Valid(c.LogoutPath) || strings.ContainsAny(c.LogoutPath, `?";`) {
		return bad("LogoutPath %q: use a plain absolute path such as /logout", c.LogoutPath)
	}
	for _, f := range []struct {
		name     string
		negative bool
		value    any
	}{
		{"SessionLifetime", c.SessionLifetime < 0, c.SessionLifetime},
		{"IdleTimeout", c.IdleTimeout < 0, c.IdleTimeout},
		{"ExchangeTimeout", c.ExchangeTimeout < 0, c.ExchangeTimeout},
		{"SessionStoreTimeout", c.SessionStoreTimeout < 0, c.SessionStoreTimeout},
		{"SessionStoreMaxWaiting", c.SessionStoreMaxWaiting < 0, c.SessionStoreMaxWaiting},
		{"ClockSkew", c.ClockSkew < 0, c.ClockSkew},
	} {
		if f.negative {
			return bad("%s is %v: it must not be negative; leave it 0 for the default", f.name, f.value)
		}
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultSessionLifetime
	}
	if c.ExchangeTimeout == 0 {
		c.ExchangeTimeout = DefaultExchangeTimeout
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.ErrorHandler == nil {
		c.ErrorHandler = DefaultErrorHandler(c.LoginPath)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	claims, err := c.checkClaims()
	if err != nil {
		return err
	}
	c.Claims = claims // a copy: later changes to the caller's slice do not reach it
	return nil
}

// checkURL accepts an absolute https URL with a host, no user info and no
// fragment; http too with InsecureAllowHTTP.
func (c *Config) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme == "http" && !c.InsecureAllowHTTP:
		return fmt.Errorf("%q is plain http: use https (or InsecureAllowHTTP for local development)", raw)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return fmt.Errorf("%q is not an absolute https URL", raw)
	case u.User != nil, u.Fragment != "", u.RawFragment != "", strings.Contains(raw, "#"):
		return fmt.Errorf("%q must not carry user info or a fragment", raw)
	}
	return nil
}

func isTokenChar(r rune) bool {
	return r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
}

// RequireLogin calls next with the User in the request context (read it with
// UserFromContext) when the request carries a live session. Otherwise a
// browser navigation (GET or HEAD, not fetch or XHR, not asking for JSON
// only) is redirected to PiPA, and any other request gets 401 with a JSON
// body {"error":"login_required","login_url":"..."}, so that a POST is never
// silently turned into a GET.
//
// Every response through it carries "Vary: Cookie" (RFC 9110 section
// 12.5.5), so that shared caches never serve one user's page to another:
// add your own Vary values with w.Header().Add, as Set would drop it.
func (a *Auth) RequireLogin(next http.Handler) http.Handler {
	return a.guard.RequireLogin(next)
}

// RequireRecentLogin is RequireLogin for pages that need a recent login: a session
// whose user authenticated at PiPA more than maxAge ago gets a new login with
// max_age (a navigation: 302 to PiPA; any other request: 401 JSON as today), and
// the ID token of that login must carry an auth_time within maxAge (plus the clock
// skew), else the login is refused. It composes with RequireUser in either order.
//
// In detail (OpenID Connect Core 3.1.2.1): a session counts as recent while
// its User.AuthTime came from its ID token's auth_time claim and is at most
// maxAge plus Config.ClockSkew ago. A session whose ID token had no
// auth_time (AuthTime is then the login time, and single sign-on at PiPA may
// have asked nobody for anything) is never recent. An auth_time up to
// ClockSkew in the future is recorded as the login time, so the window is
// maxAge plus one ClockSkew. A stale session, or none, on a navigation starts a login whose authorization
// request carries max_age (maxAge in whole seconds, rounded down); the
// attempt cookie remembers maxAge and, for a stale session, its user. The
// callback of that login refuses (ErrStepUp; the session is left as it
// was, neither upgraded nor ended) an ID token without auth_time, with an
// auth_time older than maxAge plus ClockSkew (providers may ignore
// max_age), or, for a stale session, naming another user (a step-up never
// switches accounts). A successful step-up replaces the session with the
// new login's, updating User.AuthTime. Other requests get 401: with a
// stale session the JSON error is "insufficient_user_authentication" with
// max_age (seconds), as RFC 9470 names them, and the WWW-Authenticate
// header carries both.
//
// maxAge below one second panics: it is a wiring mistake, like a nil
// handler. RequireRecentLogin also panics when Scopes lacks openid, since
// only an ID token's auth_time can prove a recent sign-in.
func (a *Auth) RequireRecentLogin(maxAge time.Duration) func(http.Handler) http.Handler {
	if !slices.Contains(a.cfg.Scopes, oidc.ScopeOpenID) {
		panic("pipaauth: RequireRecentLogin needs the openid scope in Config.Scopes: only an ID token's auth_time proves a recent sign-in")
	}
	return a.guard.RequireRecentLogin(maxAge)
}

// RequireUser is RequireLogin followed by allow: a logged-in user for whom
// allow returns false gets 403. See AllowEmails, AllowEmailDomains and
// AllowUserIDs. A nil allow panics: it is a wiring mistake, like
// RequireRecentLogin's.
func (a *Auth) RequireUser(allow func(User) bool) func(http.Handler) http.Handler {
	if allow == nil {
		panic("pipaauth: RequireUser(nil): give it a rule such as AllowEmails(\"admin@example.com\"), or use RequireLogin to let every logged-in user in")
	}
	return a.guard.RequireUser(func(u session.User) bool { return allow(userOf(u)) })
}

// LoginHandler starts a login and redirects to PiPA. The optional query
// parameter return_to names the same-origin path to land on afterwards; any
// other value is replaced by "/". GET and HEAD (links) and POST from a page
// of this application (its Origin is RedirectURL's origin, or, without
// Origin, Sec-Fetch-Site is same-origin; a POST from another origin gets
// 403 wrapping ErrCrossOrigin) start a login.
// A start writes only the attempt's own cookie: the session, if any, is left
// as it is until the login succeeds. Mount it at Config.LoginPath.
//
// The optional max_age parameter (whole seconds, at least 1) starts a
// step-up, as RequireRecentLogin does: its 401 answers to API clients give
// such a login_url. The ID token must then carry an auth_time within
// max_age plus ClockSkew, and, when the request has a session, name its
// user. A malformed max_age gets 400 wrapping ErrStepUp.
func (a *Auth) LoginHandler() http.Handler {
	return a.loginCSRF.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			a.fail(w, r, errs.New(http.StatusMethodNotAllowed, errs.ErrMethod, "Log in with GET or POST.", nil))
			return
		}
		returnTo := "/"
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err == nil && len(q["return_to"]) == 1 {
			returnTo = q.Get("return_to")
		}
		if !q.Has("max_age") {
			a.start(w, r, returnTo)
			return
		}
		maxAge, ok := parseMaxAge(q["max_age"])
		if !ok {
			a.fail(w, r, errs.New(http.StatusBadRequest, errs.ErrStepUp, "The login link is malformed: max_age must be a whole number of seconds, at least 1.", nil))
			return
		}
		// A step-up (the login_url of RequireRecentLogin's 401): the
		// session's user, when there is one, must be the one to sign in.
		subject := ""
		if d, _ := a.sessions.Load(r); d.LoggedIn() {
			subject = d.User.ID
		}
		a.startStepUp(w, r, returnTo, maxAge, subject)
	}))
}

// parseMaxAge reads LoginHandler's max_age: one whole number of seconds,
// from 1 to about 68 years, in plain decimal digits.
func parseMaxAge(v []string) (time.Duration, bool) {
	if len(v) != 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[0], 10, 31)
	if err != nil || n < 1 || strconv.FormatUint(n, 10) != v[0] {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// CallbackHandler finishes a login: mount it at the path of
// Config.RedirectURL. It checks the state, exchanges the code, verifies the
// ID token, replaces the session and redirects to the page the login started
// from. Failures go to Config.ErrorHandler. With LazyDiscovery, before
// discovery succeeded, it answers 503 with Retry-After. It takes GET (the
// query string); with Config.ResponseMode "form_post", POST only: mount it
// without a method (mux.Handle("/callback", ...)) or for both.
func (a *Auth) CallbackHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = a.timed(r)
		// Set before anything can answer: the URL holds a code and state.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		p, err := a.provider(r.Context())
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		p.flow.ServeHTTP(w, r)
	})
}

// LogoutHandler ends the session: POST only, from a page of this
// application (an Origin header must be RedirectURL's origin, whatever
// r.Host a proxy set; without Origin, Sec-Fetch-Site must be same-origin;
// else 403 wrapping ErrCrossOrigin). It also ends the browser's logins in
// flight (their attempt cookies), so that a callback still pending cannot
// log the user back in.
// It revokes the session's refresh token at PiPA (RFC 7009) when tokens are
// kept and discovery lists a revocation_endpoint, bounded by
// RevocationTimeout; a failed or slow revocation is logged and never stops
// the logout. It then clears the session and redirects to PiPA's
// end-session endpoint when the provider has one (OpenID Connect
// RP-Initiated Logout 1.0: client_id, the login's ID token as
// id_token_hint, and PostLogoutRedirectURL when there is an ID token to
// send with it), to "/" otherwise (also, with LazyDiscovery, while the
// discovery document is not there yet: the local session ends either way).
func (a *Auth) LogoutHandler() http.Handler {
	logout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			a.fail(w, r, errs.New(http.StatusMethodNotAllowed, errs.ErrMethod, "Log out with a POST request.", nil))
			return
		}
		start := time.Now()
		user := ""
		d, lerr := a.sessions.Load(r)
		// One look at the discovery document serves the revocation and the
		// redirect (with LazyDiscovery it may arrive during the logout).
		p, perr := a.provider(r.Context())
		if perr != nil {
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: logout ends the local session only: PiPA's discovery document is not there yet, so no token is revoked and PiPA's session stays", slog.String("error", perr.Error()))
		}
		idToken := ""
		if d.LoggedIn() {
			user = d.User.ID
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "pipaauth: logout", slog.String("user", user))
			a.revoke(r.Context(), p, a.keptTokens(r, d))
			idToken = a.keptIDToken(r, d)
			if idToken == "" {
				a.checkLogoutPath(r)
			}
		} else if errors.Is(lerr, session.ErrInvalid) {
			idToken = a.expiredIDToken(r, p) // logout_expired.go
		}
		if err := a.sessions.Clear(w, r); err != nil {
			e := errs.StoreUnavailable(err)
			a.fail(w, r, e)
			a.emit(r, EventStoreError, user, 0, e)
			return
		}
		a.sessions.EndAttempts(w, r) // logins in flight end with the session; a failed logout changes no cookie
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer") // the URL carries the ID token
		http.Redirect(w, r, a.logoutURL(p, idToken), http.StatusSeeOther)
		if user != "" {
			a.emit(r, EventLogout, user, time.Since(start), nil)
		}
	})
	return a.logoutCSRF.Handler(logout)
}

// revoke asks PiPA to revoke the refresh token of t (the access token when
// there is none), RFC 7009, authenticated as the token request is. It
// waits at most RevocationTimeout and only logs a failure: the logout goes
// on whatever PiPA answers. p is the applied discovery document, nil when
// there is none yet (LazyDiscovery): nothing is known to revoke at.
func (a *Auth) revoke(ctx context.Context, p *provider, t *session.Tokens) {
	if p == nil || p.revocation == "" || t == nil {
		return
	}
	token, hint := t.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = t.AccessToken, "access_token"
	}
	if token == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RevocationTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	ctx = a.withDPoPKey(ctx, t) // a proof too, when the tokens are DPoP-bound
	// With private_key_jwt the client's transport adds the assertion.
	if p.ha.assertion == nil && p.authStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", a.cfg.ClientID)
		form.Set("client_secret", a.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: token revocation at logout failed", slog.String("error", err.Error()))
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.ha.assertion == nil && p.authStyle == oauth2.AuthStyleInHeader {
		// RFC 6749 2.3.1: form-encode the credentials before Basic, as
		// x/oauth2 does for the token request.
		req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(a.cfg.ClientSecret))
	}
	resp, err := p.ha.client.Do(req)
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: token revocation at logout failed; the token stays valid at PiPA until it expires",
			slog.String("token_type_hint", hint), slog.String("error", err.Error()))
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		a.log.LogAttrs(ctx, slog.LevelWarn, "pipaauth: token revocation at logout refused; the token stays valid at PiPA until it expires",
			slog.String("token_type_hint", hint), slog.Int("status", resp.StatusCode))
	}
}

// fail logs err with its reason and hands it to the error handler.
func (a *Auth) fail(w http.ResponseWriter, r *http.Request, e *errs.Error) {
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "pipaauth: request refused",
		slog.Int("status", e.Status), slog.String("reason", e.Reason), slog.String("error", e.Error()), slog.String("path", r.URL.Path))
	a.cfg.ErrorHandler(w, r, publicError(e))
}

// renderError is the error handler the sub-packages call: it hands
// Config.ErrorHandler this package's error types.
func (a *Auth) renderError(w http.ResponseWriter, r *http.Request, err error) {
	a.cfg.ErrorHandler(w, r, publicError(err))
}

// logoutURL is the end-session redirect. Without an ID token it carries
// client_id only: a post_logout_redirect_uri without id_token_hint makes
// strict providers (Ory Hydra) refuse the whole logout and keep their
// session, and lets others ignore it (RP-Initiated Logout 1.0, section 2),
// whereas client_id alone still ends PiPA's session, on PiPA's own page.
// No state is sent: the page PiPA returns to acts on nothing.
func (a *Auth) logoutURL(p *provider, idToken string) string {
	if p == nil || p.endSession == "" {
		return "/"
	}
	u, err := url.Parse(p.endSession)
	if err != nil { // checked in New
		return "/"
	}
	q := u.Query()
	q.Set("client_id", a.cfg.ClientID)
	if idToken != "" {
		q.Set("id_token_hint", idToken)
		if a.cfg.PostLogoutRedirectURL != "" {
			q.Set("post_logout_redirect_uri", a.cfg.PostLogoutRedirectURL)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// User returns the user logged in on r's session, without requiring one:
// for public pages that greet a logged-in user. It never redirects or
// writes, and reports false when there is no live session or the session
// store failed.
func (a *Auth) User(r *http.Request) (User, bool) {
	if u, ok := UserFromContext(r.Context()); ok {
		return u, true
	}
	d, err := a.sessions.Load(r)
	if errors.Is(err, errs.ErrSessionStore) {
		a.emit(r, EventStoreError, "", 0, err)
	}
	if err != nil || !d.LoggedIn() {
		return User{}, false
	}
	return userOf(d.User), true
}

// UserFromContext returns the user that RequireLogin or RequireUser put in
// ctx, and false when there is none.
func UserFromContext(ctx context.Context) (User, bool) {
	if u := userctx.Get(ctx); u != nil {
		return userOf(*u), true
	}
	return User{}, false
}

// ContextWithUser returns a copy of ctx carrying u as RequireLogin would: for
// testing handlers that sit behind the guard without a login.
func ContextWithUser(ctx context.Context, u User) context.Context {
	return userctx.With(ctx, sessionUser(u))
}
