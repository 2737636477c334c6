package pipatest

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// High-assurance features (FAPI 2.0 Security Profile): private_key_jwt
// client authentication (RFC 7523 section 2.2), pushed authorization
// requests (RFC 9126) at /par, and DPoP-bound tokens (RFC 9449).

const (
	// clientAssertionType is the client_assertion_type of RFC 7523 2.2.
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// requestURIPrefix starts every request_uri (RFC 9126 section 2.2).
	requestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	// pushedLifetime is the expires_in of pushed requests.
	pushedLifetime = 60 * time.Second
	// maxAssertionLifetime is the longest exp - iat accepted for a client
	// assertion, and proofLeeway how far a DPoP proof's iat may be from now.
	maxAssertionLifetime = 5 * time.Minute
	proofLeeway          = time.Minute
)

// signingAlgs are the algorithms accepted for client assertions and DPoP
// proofs.
var signingAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256}

// A Profile is what a Server demands of clients beyond the defaults, as a
// FAPI 2.0 provider does. The zero Profile demands none of it (the features
// are offered all the same: private_key_jwt for clients with JWKS, the
// /par endpoint, DPoP-bound tokens for requests with a proof).
type Profile struct {
	// RequirePushedAuthorization refuses authorization requests that do
	// not come through the pushed authorization request endpoint, and says
	// require_pushed_authorization_requests in discovery.
	RequirePushedAuthorization bool
	// RequireDPoP refuses token requests without a DPoP proof
	// (invalid_dpop_proof): every token is DPoP-bound.
	RequireDPoP bool
	// DPoPNonce demands the server's nonce in DPoP proofs at the token
	// endpoint (400 use_dpop_nonce) and the userinfo endpoint (401 with
	// WWW-Authenticate: DPoP error="use_dpop_nonce"), both with the
	// DPoP-Nonce header (RFC 9449 sections 8 and 9).
	DPoPNonce bool
	// PrivateKeyJWTOnly lists only private_key_jwt in
	// token_endpoint_auth_methods_supported and refuses client secrets at
	// the token, pushed authorization and revocation endpoints.
	PrivateKeyJWTOnly bool
}

// SetProfile sets what the server demands of clients from now on.
func (s *Server) SetProfile(p Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profile = p
}

// DPoPNonce returns the nonce the server currently demands with
// Profile.DPoPNonce.
func (s *Server) DPoPNonce() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dpopNonce
}

// RotateDPoPNonce replaces the server's DPoP nonce: proofs with the old one
// get a use_dpop_nonce challenge again.
func (s *Server) RotateDPoPNonce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dpopNonce = randomToken()
}

// PushedRequests returns how many pushed authorization requests the server
// accepted so far.
func (s *Server) PushedRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushedCount
}

// pushedRequest is an accepted pushed authorization request.
type pushedRequest struct {
	clientID string
	params   url.Values
	expires  time.Time
}

// handlePAR is the pushed authorization request endpoint (RFC 9126).
func (s *Server) handlePAR(w http.ResponseWriter, r *http.Request) {
	form, ok := postForm(w, r, "pushed authorization request")
	if !ok {
		return
	}
	s.mu.Lock()
	b := s.behavior
	s.mu.Unlock()
	if st := b.PushStatus; st != 0 {
		if st < 200 || st > 599 {
			st = http.StatusInternalServerError
		}
		code := "server_error"
		if st >= 400 && st < 500 {
			code = "invalid_request"
		}
		writeOAuthError(w, &oauthError{st, code, "pipatest: Behavior.PushStatus"})
		return
	}
	auth, ok := s.authenticateForm(w, r, form, "/par")
	if !ok {
		return
	}
	params := url.Values{}
	for k, v := range form {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type":
		default:
			params[k] = v
		}
	}
	if params.Has("request_uri") {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "request_uri is not allowed in a pushed authorization request"})
		return
	}
	params.Set("client_id", auth.clientID)
	if _, bad, aerr := s.parseAuthorize(params); bad != "" || aerr != nil {
		desc := string(bad)
		code := "invalid_request"
		if aerr != nil {
			code, desc = aerr.code, aerr.desc
		}
		writeOAuthError(w, &oauthError{http.StatusBadRequest, code, desc})
		return
	}
	uri := requestURIPrefix + randomToken()
	s.mu.Lock()
	now := s.now()
	for k, p := range s.pushed {
		if now.After(p.expires) {
			delete(s.pushed, k)
		}
	}
	s.pushed[uri] = &pushedRequest{clientID: auth.clientID, params: params, expires: now.Add(pushedLifetime)}
	s.pushedCount++
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": int(pushedLifetime / time.Second)})
}

// takePushed resolves the request_uri of an authorization request (used
// once) to the pushed parameters, or returns why it cannot.
func (s *Server) takePushed(v url.Values) (url.Values, string) {
	if len(v["request_uri"]) != 1 || len(v["client_id"]) != 1 {
		return nil, "An authorization request with request_uri needs one request_uri and one client_id."
	}
	uri := v.Get("request_uri")
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pushed[uri]
	delete(s.pushed, uri)
	switch {
	case !ok:
		return nil, "The request_uri is unknown or was already used."
	case s.now().After(p.expires):
		return nil, "The request_uri has expired."
	case p.clientID != v.Get("client_id"):
		return nil, "The request_uri was pushed by another client."
	}
	return p.params, ""
}

// clientAuth is an authenticated client and how it authenticated.
type clientAuth struct {
	clientID string
	method   string // client_secret_basic, client_secret_post or private_key_jwt
}

// authenticate checks the client authentication of a request to the
// endpoint at path: a client secret (Basic or in the form) or a
// private_key_jwt assertion.
// authenticateForm refuses a form with a repeated parameter, then
// authenticates the client of a request to path; on failure it writes the
// OAuth error and reports false.
func (s *Server) authenticateForm(w http.ResponseWriter, r *http.Request, form url.Values, path string) (clientAuth, bool) {
	for k, vs := range form {
		if len(vs) > 1 {
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("the %s parameter is repeated", k)})
			return clientAuth{}, false
		}
	}
	_, _, hasBasic := r.BasicAuth()
	auth, oerr := s.authenticate(r, form, hasBasic, path)
	if oerr != nil {
		writeOAuthError(w, oerr)
		return clientAuth{}, false
	}
	return auth, true
}

func (s *Server) authenticate(r *http.Request, form url.Values, hasBasic bool, path string) (clientAuth, *oauthError) {
	hasPost := form.Has("client_secret")
	hasJWT := form.Has("client_assertion") || form.Has("client_assertion_type")
	n := 0
	for _, b := range []bool{hasBasic, hasPost, hasJWT} {
		if b {
			n++
		}
	}
	if n > 1 {
		return clientAuth{}, &oauthError{http.StatusBadRequest, "invalid_request", "use one client authentication method, not several"}
	}
	s.mu.Lock()
	keyOnly := s.profile.PrivateKeyJWTOnly
	s.mu.Unlock()
	if !hasJWT {
		if keyOnly && (hasBasic || hasPost) {
			return clientAuth{}, &oauthError{http.StatusUnauthorized, "invalid_client", "this provider accepts private_key_jwt only"}
		}
		id, oerr := s.authenticateClient(r, form, hasBasic, hasPost)
		method := "client_secret_post"
		if hasBasic {
			method = "client_secret_basic"
		}
		return clientAuth{id, method}, oerr
	}
	id, oerr := s.checkAssertion(r, form, path)
	return clientAuth{id, "private_key_jwt"}, oerr
}

// checkAssertion verifies a private_key_jwt client assertion (RFC 7523
// sections 2.2 and 3, OpenID Connect Core 9) with the client's JWKS: iss
// and sub the client id, aud the issuer or the endpoint's URL, exp in the
// future and at most 5 minutes after iat, and a jti never seen before.
func (s *Server) checkAssertion(r *http.Request, form url.Values, path string) (string, *oauthError) {
	fail := func(desc string) (string, *oauthError) {
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", desc}
	}
	if form.Get("client_assertion_type") != clientAssertionType {
		return fail("client_assertion_type must be " + clientAssertionType)
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), signingAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return fail("the client assertion is not a signed JWT with an accepted algorithm (ES256, PS256, RS256)")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return fail("the client assertion's claims cannot be read")
	}
	clientID := unverified.Issuer
	if id := form.Get("client_id"); id != "" && id != clientID {
		return fail("client_id differs from the client assertion's iss")
	}
	s.mu.Lock()
	c, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok || len(c.JWKS.Keys) == 0 {
		return fail("the client is unknown or has no registered keys")
	}
	keys := c.JWKS.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = c.JWKS.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Public(), &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fail("the client assertion's signature does not verify with the client's registered keys")
	}
	iss := s.issuerFor(r)
	now := s.nowTime()
	switch {
	case claims.Issuer != clientID || claims.Subject != clientID:
		return fail("the client assertion's iss and sub must both be the client id")
	case !claims.Audience.Contains(iss) && !claims.Audience.Contains(iss+path):
		return fail("the client assertion's aud is neither the issuer nor this endpoint")
	case claims.Expiry == nil:
		return fail("the client assertion has no exp")
	case !now.Before(claims.Expiry.Time()):
		return fail("the client assertion has expired")
	case claims.IssuedAt != nil && claims.Expiry.Time().Sub(claims.IssuedAt.Time()) > maxAssertionLifetime:
		return fail("the client assertion lives longer than 5 minutes")
	case claims.ID == "":
		return fail("the client assertion has no jti")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.assertionIDs {
		if now.After(exp) {
			delete(s.assertionIDs, k)
		}
	}
	key := clientID + "\x00" + claims.ID
	if _, seen := s.assertionIDs[key]; seen {
		return fail("the client assertion's jti was already used")
	}
	s.assertionIDs[key] = claims.Expiry.Time()
	return clientID, nil
}

func (s *Server) nowTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// proofClaims are the claims of a DPoP proof.
type proofClaims struct {
	ID       string           `json:"jti"`
	Method   string           `json:"htm"`
	URL      string           `json:"htu"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	ATHash   string           `json:"ath"`
	Nonce    string           `json:"nonce"`
}

// proofError is a refused DPoP proof: its OAuth error code
// (invalid_dpop_proof or use_dpop_nonce) and description.
type proofError struct{ code, desc string }

// checkProof verifies the DPoP proof of r (RFC 9449 section 4.3) and
// returns the thumbprint of its key. accessToken, when not empty, must be
// what ath hashes. It returns "", nil when r has no proof.
func (s *Server) checkProof(r *http.Request, accessToken string) (string, *proofError) {
	values := r.Header.Values("DPoP")
	if len(values) == 0 {
		return "", nil
	}
	bad := func(desc string) (string, *proofError) { return "", &proofError{"invalid_dpop_proof", desc} }
	if len(values) > 1 {
		return bad("more than one DPoP header")
	}
	jws, err := jose.ParseSigned(values[0], signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("the DPoP proof is not a JWS with an accepted algorithm (ES256, PS256, RS256)")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return bad("the DPoP proof's typ is not dpop+jwt")
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return bad("the DPoP proof has no public jwk")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return bad("the DPoP proof's signature does not verify with its jwk")
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("the DPoP proof's claims cannot be read")
	}
	htu := s.issuerFor(r) + r.URL.Path
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch {
	case c.ID == "":
		return bad("the DPoP proof has no jti")
	case c.Method != r.Method:
		return bad("the DPoP proof's htm is not this request's method")
	case c.URL != htu:
		return bad("the DPoP proof's htu is not this endpoint")
	case c.IssuedAt == nil || c.IssuedAt.Time().Before(now.Add(-proofLeeway)) || c.IssuedAt.Time().After(now.Add(proofLeeway)):
		return bad("the DPoP proof's iat is missing or too far from now")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		if c.ATHash == "" {
			return bad("the DPoP proof has no ath")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATHash), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return bad("the DPoP proof's ath does not match the access token")
		}
	}
	for k, t := range s.proofIDs {
		if now.Sub(t) > 2*proofLeeway {
			delete(s.proofIDs, k)
		}
	}
	if _, seen := s.proofIDs[c.ID]; seen {
		return bad("the DPoP proof's jti was already used")
	}
	if s.profile.DPoPNonce && subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(s.dpopNonce)) != 1 {
		return "", &proofError{"use_dpop_nonce", "a DPoP nonce is required"}
	}
	s.proofIDs[c.ID] = now
	tp, err := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return bad("the DPoP proof's jwk has no thumbprint")
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// writeProofError answers a refused proof at the token or revocation
// endpoint: 400 with the error, and DPoP-Nonce for use_dpop_nonce.
func (s *Server) writeProofError(w http.ResponseWriter, e *proofError) {
	if e.code == "use_dpop_nonce" {
		w.Header().Set("DPoP-Nonce", s.DPoPNonce())
	}
	writeOAuthError(w, &oauthError{http.StatusBadRequest, e.code, e.desc})
}

// writeResourceProofError answers a refused proof or DPoP token at the
// userinfo endpoint: 401 with WWW-Authenticate: DPoP (RFC 9449 sections 7.1
// and 9).
func (s *Server) writeResourceProofError(w http.ResponseWriter, code, desc string) {
	if code == "use_dpop_nonce" {
		w.Header().Set("DPoP-Nonce", s.DPoPNonce())
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP algs="%s", error="%s", error_description="%s"`, strings.Join(algNames(), " "), code, desc))
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
}

func algNames() []string {
	var out []string
	for _, a := range signingAlgs {
		out = append(out, string(a))
	}
	return out
}

// discoveryHighAssurance adds the high-assurance metadata to a discovery
// document.
func (s *Server) discoveryHighAssurance(doc map[string]any, iss string) {
	s.mu.Lock()
	p := s.profile
	s.mu.Unlock()
	methods := []string{"client_secret_post", "client_secret_basic", "private_key_jwt"}
	if p.PrivateKeyJWTOnly {
		methods = []string{"private_key_jwt"}
	}
	doc["token_endpoint_auth_methods_supported"] = methods
	doc["revocation_endpoint_auth_methods_supported"] = slices.Clone(methods)
	doc["token_endpoint_auth_signing_alg_values_supported"] = algNames()
	doc["pushed_authorization_request_endpoint"] = iss + "/par"
	doc["require_pushed_authorization_requests"] = p.RequirePushedAuthorization
	doc["dpop_signing_alg_values_supported"] = algNames()
}
