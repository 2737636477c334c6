// Package pipatest provides an in-process PiPA OpenID Connect provider for tests and demos.
package pipatest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The client that every Server knows from construction. It accepts any http
// or https redirect_uri and any post_logout_redirect_uri.
const (
	DefaultClientID     = "pipatest-client"
	DefaultClientSecret = "pipatest-secret"
)

const (
	codeLifetime               = 60 * time.Second
	pendingLifetime            = 15 * time.Minute
	idTokenLifetime            = time.Hour
	defaultAccessTokenLifetime = time.Hour
	rsaKeyBits                 = 2048
)

// A Server is a PiPA OpenID Connect provider listening on a system-chosen
// port on the local loopback interface, for use in end-to-end tests and demos.
//
// Like [httptest.Server], a Server is configured and then started. All its
// methods are safe for concurrent use, also while requests are served.
//
// The provider offers the authorization code flow (with PKCE S256), refresh
// tokens with rotation and reuse detection, pairwise subjects, RS256-signed ID
// tokens, RP-initiated logout, token revocation (RFC 7009), a userinfo
// endpoint, private_key_jwt client authentication for clients registered
// with a JWKS, pushed authorization requests (RFC 9126) and DPoP-bound
// tokens (RFC 9449; see Profile) at these paths below the issuer URL:
//
//	/.well-known/openid-configuration
//	/authorize
//	/token
//	/jwks
//	/end_session
//	/userinfo
//	/revoke
//	/par
//
// Like a real provider it keeps a session of its own per browser (a cookie
// named "pipatest_session" on the provider's host): a browser that signed in
// once is not asked again until its session ends at the end-session
// endpoint. ID tokens name that session in their sid claim and its sign-in
// time in auth_time.
type Server struct {
	// URL is the issuer URL of the provider, of the form
	// http://127.0.0.1:PORT or https://127.0.0.1:PORT, with no trailing
	// slash. It is set when the server is started.
	URL string

	ts          *httptest.Server
	handler     http.Handler
	pairwiseKey []byte // immutable after construction
	done        chan struct{}
	closeOnce   sync.Once

	mu            sync.Mutex
	issuer        string           // "" until started: then derived from each request
	now           func() time.Time // for tests of the package itself
	key           *signingKey      // current signing key
	pastKeys      []*signingKey    // keys replaced by RotateKeys (for id_token_hint only)
	badKey        *rsa.PrivateKey  // for Behavior.BadSignature, made on first use
	clients       map[string]Client
	users         []User
	current       User
	behavior      Behavior
	interactive   bool
	accessTTL     time.Duration
	codes         map[string]*authCode
	pending       map[string]*pendingAuth
	refreshTokens map[string]*refreshToken
	accessTokens  map[string]*accessToken
	sessions      map[string]*providerSession
	revocations   []Revocation
	tokenRequests int
	lastTokenReq  TokenRequest
	haveLastReq   bool
	profile       Profile
	pushed        map[string]*pushedRequest
	pushedCount   int
	assertionIDs  map[string]time.Time // client id and jti of accepted client assertions, until their exp
	proofIDs      map[string]time.Time // jti of accepted DPoP proofs, with their arrival
	dpopNonce     string
}

// A Client is an OAuth 2.0 client (relying party) registered at a Server.
type Client struct {
	// ID and Secret are the client credentials. A client with an empty
	// Secret cannot authenticate at the token endpoint.
	ID, Secret string
	// RedirectURLs is the exact-match allow list for the redirect_uri
	// parameter of authorization requests. When empty, any absolute http or
	// https URL without a fragment is allowed.
	RedirectURLs []string
	// PostLogoutRedirectURLs is the exact-match allow list for the
	// post_logout_redirect_uri parameter of the end session endpoint. When
	// empty, any absolute http or https URL is allowed.
	PostLogoutRedirectURLs []string
	// JWKS holds the client's public keys, for private_key_jwt client
	// authentication (RFC 7523 section 2.2) instead of a Secret: a client
	// registered with a public key and an empty Secret authenticates only
	// with assertions signed by one of them (ES256, PS256 or RS256; the
	// assertion's kid header picks the key when set).
	JWKS jose.JSONWebKeySet
}

// A User is a test user of a Server.
type User struct {
	// Name is the stable key of the user, such as "alice". The subject
	// (sub claim and user_id) is derived from it per client; see
	// [Server.Subject].
	Name          string
	Email         string
	EmailVerified bool
	// ShareEmail reports whether the user shares their email address with
	// clients. When false, ID tokens carry no email even if the email scope
	// was requested.
	ShareEmail bool
	// Claims are more claims of the user, such as "name", "groups" or
	// "roles", put in ID tokens (at login and refresh) and userinfo
	// answers whatever the scopes, each value encoded as JSON:
	// a string, a []string, a number, an object. UserInfoClaims are given
	// at the userinfo endpoint only, never in ID tokens. Neither can
	// replace a claim the server sets itself (iss, sub, aud, azp, exp, iat,
	// nonce, at_hash, sid, auth_time, email, email_verified); edit those
	// with Behavior.ClaimsHook or Behavior.UserInfoHook.
	//
	// They are read when a token or userinfo answer is issued: AddUser or
	// SetUser with new claims (a user removed from a group, say) shows at
	// the client's next refresh or userinfo request.
	Claims, UserInfoClaims map[string]any
}

// Behavior makes a Server misbehave on purpose, to test how clients cope.
// The zero value is a correct provider.
type Behavior struct {
	// AuthorizeError, when not empty, makes the authorization endpoint
	// redirect back with error=<AuthorizeError> (e.g. "access_denied"),
	// error_description, state and iss, and no code. Requests that are too
	// broken to be redirected (unknown client, disallowed redirect_uri) are
	// still answered with an error page.
	AuthorizeError string

	// ID token claim switches.
	WrongNonce    bool // nonce differs from the one in the authorization request
	WrongIssuer   bool // iss is not the server URL
	WrongAudience bool // aud does not contain the client ID
	ExtraAudience bool // aud is an array with the client ID and another audience
	WrongAZP      bool // azp is another client's ID

	Expired        bool // iat 2 hours ago, exp 1 hour ago
	IssuedInFuture bool // iat 1 hour in the future (exp 1 hour after that)

	OmitSubject  bool // no sub claim in the ID token
	OmitIssuedAt bool // no iat claim in the ID token
	OmitNonce    bool // no nonce claim in the ID token
	OmitIDToken  bool // no id_token in the token response
	OmitUserID   bool // no user_id in the token response

	// BadSignature signs the ID token with a key that is not in the JWKS,
	// under the kid of the real key.
	BadSignature bool
	// BadAtHash puts an at_hash into the ID token that does not match the
	// access token.
	BadAtHash bool

	// UserID, when non-nil, is the user_id of token responses (e.g. a
	// float64, json.Number or int64) instead of the subject string.
	UserID any

	// TokenStatus, when non-zero, makes the token endpoint answer every
	// well-formed request with this HTTP status and {"error":"server_error"},
	// or {"error":"invalid_grant"} for 400, before looking at the grant:
	// the code or refresh token is not consumed.
	TokenStatus int
	// AccessTokenBytes and RefreshTokenBytes, when larger than the
	// tokens the Server makes (43 bytes), pad the access and refresh
	// tokens it issues from now on to that many bytes, as the JWT access
	// tokens and refresh tokens of Keycloak, Entra ID or Okta are (about
	// 1,400 and 900 bytes). The tokens work as any other.
	AccessTokenBytes  int
	RefreshTokenBytes int
	// TokenDelay makes the token endpoint wait this long before answering,
	// or until the request is canceled or the server closed.
	TokenDelay time.Duration

	// RequireIDTokenHint makes the end-session endpoint refuse a
	// post_logout_redirect_uri that comes without id_token_hint, as Ory
	// Hydra does ("post_logout_redirect_uri is set but id_token_hint is
	// missing"): it shows an error page and keeps the provider session.
	RequireIDTokenHint bool

	// RefreshError, when not empty, makes the token endpoint answer every
	// authenticated refresh_token grant with {"error": RefreshError} and
	// the status RefreshErrorStatus (0 means 200, as some providers send
	// errors), before looking at the refresh token: it is not consumed.
	RefreshError       string
	RefreshErrorStatus int
	// OfflineAccessOnly issues refresh tokens only to grants that include
	// the offline_access scope, as oidc-provider does. (offline_access is
	// granted only with prompt=consent, OpenID Connect Core 11, whatever
	// the Behavior.) By default every grant gets a refresh token.
	OfflineAccessOnly bool
	// TokenContentType, when not empty, is the Content-Type of successful
	// token responses instead of application/json (e.g. "text/plain"); the
	// body stays JSON, except for "application/x-www-form-urlencoded",
	// which gets a form-encoded body.
	TokenContentType string
	// ExpiresIn, when non-nil, is the expires_in of successful token
	// responses instead of the access token lifetime (e.g. 1.5, -60).
	ExpiresIn any

	// IgnoreMaxAge makes the authorization endpoint ignore max_age, as
	// some providers do: a browser signed in at the provider longer ago
	// than max_age is not asked to sign in again, and ID tokens carry the
	// old auth_time. (By default a sign-in older than max_age seconds is
	// done again, OpenID Connect Core 3.1.2.1.) To test a provider that
	// sends no auth_time at all, delete it in ClaimsHook.
	IgnoreMaxAge bool

	// EmailOnlyAtUserInfo leaves email and email_verified out of ID
	// tokens: clients find them at the userinfo endpoint only, as with
	// providers that follow OpenID Connect Core 5.4 for the code flow.
	EmailOnlyAtUserInfo bool
	// UserInfoWrongSubject makes the userinfo endpoint answer with a sub
	// that is not the user's (OpenID Connect Core 5.3.2 says to refuse it).
	UserInfoWrongSubject bool
	// UserInfoHook, when set, makes the last edit of userinfo responses.
	UserInfoHook func(info map[string]any)

	// RevocationStatus, when non-zero, makes the revocation endpoint
	// answer every request with this status and {"error":"server_error"}
	// without revoking anything. RevocationDelay makes it wait this long
	// first, or until the request is canceled or the server closed.
	RevocationStatus int
	RevocationDelay  time.Duration

	// ClaimsHook, when set, makes the last edit of the ID token claims
	// before signing.
	ClaimsHook func(claims map[string]any)
	// TokenHook, when set, makes the last edit of successful token
	// responses (of any grant).
	TokenHook func(resp map[string]any)
	// IgnoreResponseMode makes the authorization endpoint ignore
	// response_mode, as some providers do: the response goes back in the
	// query string even when form_post was asked for. (By default
	// response_mode=form_post gets an auto-submitting page that posts the
	// response to the redirect_uri, OAuth 2.0 Form Post Response Mode.)
	IgnoreResponseMode bool

	// DiscoveryHook, when set, edits the discovery document before it is
	// served, e.g. to delete code_challenge_methods_supported.
	DiscoveryHook func(doc map[string]any)

	// PushStatus, when non-zero, makes the pushed authorization request
	// endpoint answer every request with this status and an OAuth error
	// (invalid_request for 4xx, server_error otherwise).
	PushStatus int
	// IgnoreDPoP makes the token endpoint issue Bearer tokens, not bound to
	// any key, although the request carried a valid DPoP proof, as a
	// provider without DPoP support does.
	IgnoreDPoP bool
}

// A TokenRequest describes a request to the token endpoint of a Server.
type TokenRequest struct {
	// ClientAuth is "client_secret_post", "client_secret_basic" or
	// "private_key_jwt"; it is "" if the request carried no client
	// credentials and "multiple" if it used several methods at once.
	ClientAuth string
	// GrantType is the grant_type parameter.
	GrantType string
	// HasVerifier reports whether a code_verifier parameter was sent.
	HasVerifier bool
	// DPoP reports whether the request carried a DPoP header (RFC 9449).
	DPoP bool
	// RedirectURI is the redirect_uri parameter.
	RedirectURI string
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey() *signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		panic(fmt.Sprintf("pipatest: generating RSA key: %v", err))
	}
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(fmt.Sprintf("pipatest: key thumbprint: %v", err))
	}
	return &signingKey{kid: base64.RawURLEncoding.EncodeToString(tp)[:16], priv: priv}
}

// NewServer starts and returns a new Server serving plain HTTP on
// 127.0.0.1. The caller should call Close when finished, to shut it down.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewTLSServer starts and returns a new Server serving HTTPS on 127.0.0.1,
// with the self-signed certificate of [httptest.Server.StartTLS]. Use
// [Server.Client] to talk to it. The caller should call Close when finished.
func NewTLSServer() *Server {
	s := NewUnstartedServer()
	s.StartTLS()
	return s
}

// NewUnstartedServer returns a new Server but doesn't start it. After
// changing its configuration, the caller should call Start or StartTLS, and
// Close when finished.
//
// It generates the RSA signing key, which takes a moment.
func NewUnstartedServer() *Server {
	s := &Server{
		pairwiseKey:   []byte(rand.Text() + rand.Text()),
		done:          make(chan struct{}),
		now:           time.Now,
		key:           newSigningKey(),
		clients:       map[string]Client{DefaultClientID: {ID: DefaultClientID, Secret: DefaultClientSecret}},
		accessTTL:     defaultAccessTokenLifetime,
		codes:         map[string]*authCode{},
		pending:       map[string]*pendingAuth{},
		refreshTokens: map[string]*refreshToken{},
		accessTokens:  map[string]*accessToken{},
		sessions:      map[string]*providerSession{},
		pushed:        map[string]*pushedRequest{},
		assertionIDs:  map[string]time.Time{},
		proofIDs:      map[string]time.Time{},
		dpopNonce:     randomToken(),
	}
	alice := User{Name: "alice", Email: "alice@example.com", EmailVerified: true, ShareEmail: true}
	bob := User{Name: "bob", Email: "bob@example.org", EmailVerified: true, ShareEmail: false}
	s.users = []User{alice, bob}
	s.current = alice
	s.handler = s.routes()
	s.ts = httptest.NewUnstartedServer(s.handler)
	return s
}

// Start starts a server from NewUnstartedServer, serving plain HTTP.
// It panics if the server was already started.
func (s *Server) Start() {
	s.setIssuer("http://" + s.ts.Listener.Addr().String())
	s.ts.Start()
}

// StartTLS starts a server from NewUnstartedServer, serving HTTPS.
// It panics if the server was already started.
func (s *Server) StartTLS() {
	s.setIssuer("https://" + s.ts.Listener.Addr().String())
	s.ts.StartTLS()
}

func (s *Server) setIssuer(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issuer != "" {
		panic("pipatest: Server already started")
	}
	s.issuer = u
	s.URL = u
}

// Close shuts down the server and blocks until all outstanding requests on
// it have completed. Requests waiting for Behavior.TokenDelay are cut short.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.ts.Close()
}

// Client returns an HTTP client configured for making requests to the
// server: it trusts the server's TLS certificate. Before the server is
// started it returns a new, default client.
func (s *Server) Client() *http.Client {
	if c := s.ts.Client(); c != nil {
		return c
	}
	return &http.Client{}
}

// Handler returns the provider's routes, to mount them elsewhere. The
// handler expects to be served at the root of the issuer URL. If the Server
// itself is not started, the issuer is derived from each request's scheme
// and Host.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// RegisterClient registers c, replacing any client with the same ID.
// The default client {DefaultClientID, DefaultClientSecret} exists from
// construction and can be replaced too.
func (s *Server) RegisterClient(c Client) {
	c.RedirectURLs = slices.Clone(c.RedirectURLs)
	c.PostLogoutRedirectURLs = slices.Clone(c.PostLogoutRedirectURLs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

// SetUser sets the user who signs in and approves automatically when the
// server is not interactive, and who is preselected on the interactive
// page. It also adds u to Users (replacing a user of the same Name). The
// default is alice (alice@example.com, verified, shares her email).
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = u
	s.addUserLocked(u)
}

// Users returns the test users offered on the interactive page. By default
// they are alice (alice@example.com, verified, shares her email) and bob
// (bob@example.org, verified, does not share his email).
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.users)
}

// AddUser adds u to Users, replacing a user of the same Name.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addUserLocked(u)
}

func (s *Server) addUserLocked(u User) {
	for i := range s.users {
		if s.users[i].Name == u.Name {
			s.users[i] = u
			return
		}
	}
	s.users = append(s.users, u)
}

func (s *Server) userLocked(name string) (User, bool) {
	for _, u := range s.users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// Subject returns the pairwise subject identifier (the ID token's sub and
// the token response's user_id) that the server issues for the named user
// to the client. It is stable for the life of the server and differs per
// client and per server.
func (s *Server) Subject(clientID, userName string) string {
	mac := hmac.New(sha256.New, s.pairwiseKey)
	mac.Write([]byte(clientID + "\x00" + userName))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))[:22]
}

// SetClock replaces the server's clock (time.Now by default): the times in
// its ID tokens, the lifetimes of its codes and tokens, and the age of its
// sign-ins that max_age is compared with. A test that moves the
// application's clock (for example to make a session stale for
// RequireRecentLogin) gives the provider the same clock. A nil now
// restores time.Now.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetBehavior sets how the server misbehaves from now on; the zero
// Behavior makes it a correct provider again.
func (s *Server) SetBehavior(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = b
}

// RotateKeys replaces the signing key by a new RSA key with a new kid. From
// then on the JWKS serves only the new key and ID tokens are signed by it.
func (s *Server) RotateKeys() {
	k := newSigningKey() // slow: not under the lock
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pastKeys = append(s.pastKeys, s.key)
	s.key = k
}

// TokenRequests returns the number of requests made to the token endpoint
// so far, of any grant type and including refused ones.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// LastTokenRequest describes the last well-formed (form-encoded POST)
// request to the token endpoint. It reports false if there was none.
func (s *Server) LastTokenRequest() (TokenRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastTokenReq, s.haveLastReq
}

// SetInteractive switches the authorization endpoint between automatic
// mode (the default: the user set by SetUser approves at once) and
// interactive mode, where it shows a login and consent page. On that page,
// one picks one of Users or types an email address (making a verified user
// named after it), chooses whether to share the email address, and approves
// or denies.
//
// In both modes a sign-in starts a provider session (the SessionCookie): a
// browser that has one is not asked again (single sign-on) unless the
// request says prompt=login or prompt=consent, and prompt=none without one
// gets error=login_required. The session ends at the end-session endpoint.
func (s *Server) SetInteractive(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interactive = on
}

// RevokeRefreshTokens revokes all refresh tokens issued to the named user:
// they stop working, and so do the access tokens issued with them at the
// userinfo endpoint.
func (s *Server) RevokeRefreshTokens(userName string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		if rt.grant.user.Name == userName {
			rt.family.revoked = true
		}
	}
}

// A Revocation is a request the revocation endpoint accepted.
type Revocation struct {
	Token         string // the token parameter
	TokenTypeHint string // the token_type_hint parameter, "" when absent
	// Kind is what the token was: "refresh_token" or "access_token", or
	// "" when the server did not know it (RFC 7009 answers 200 anyway).
	Kind string
	// ClientAuth is "client_secret_post", "client_secret_basic" or
	// "private_key_jwt".
	ClientAuth string
	// DPoP reports whether the request carried a valid DPoP proof.
	DPoP bool
}

// Revocations returns the revocation requests accepted so far, oldest
// first. A revoked refresh token stops working, and so do the access and
// refresh tokens of its grant; a revoked access token stops working at the
// userinfo endpoint.
func (s *Server) Revocations() []Revocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.revocations)
}

// ActiveSessions returns how many provider sessions (signed-in browsers)
// the named user has: sessions end at the end-session endpoint, or when
// another user signs in on the same browser. Signing in again as the same
// user (a step-up, prompt=login) keeps the browser's session and its sid,
// with the new auth_time.
func (s *Server) ActiveSessions(userName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ps := range s.sessions {
		if !ps.ended && ps.user.Name == userName {
			n++
		}
	}
	return n
}

// SetAccessTokenLifetime sets the lifetime of access tokens issued from now
// on, reported as expires_in in token responses (rounded up to whole
// seconds). The default is 1 hour; d <= 0 restores it.
func (s *Server) SetAccessTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = defaultAccessTokenLifetime
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessTTL = d
}

// routes returns the provider's handler.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("/authorize", s.handleAuthorize)
	mux.HandleFunc("/token", s.handleToken)
	mux.HandleFunc("/jwks", s.handleJWKS)
	mux.HandleFunc("/end_session", s.handleEndSession)
	mux.HandleFunc("/userinfo", s.handleUserinfo)
	mux.HandleFunc("/revoke", s.handleRevoke)
	mux.HandleFunc("/par", s.handlePAR)
	return mux
}

// issuerFor returns the issuer URL for a request.
func (s *Server) issuerFor(r *http.Request) string {
	s.mu.Lock()
	iss := s.issuer
	s.mu.Unlock()
	if iss != "" {
		return iss
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// randomToken returns a fresh random token of 130 bits.
func randomToken() string {
	return rand.Text()
}
