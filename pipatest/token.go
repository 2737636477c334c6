package pipatest

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// family is the tokens descending from one authorization code.
type family struct {
	revoked bool
}

type refreshToken struct {
	grant  *grant
	family *family
	used   bool
	jkt    string // the DPoP key thumbprint it is bound to; "" when none
}

type accessToken struct {
	grant   *grant
	family  *family
	expires time.Time
	jkt     string // the DPoP key thumbprint it is bound to; "" when none
}

// oauthError is an RFC 6749 error response of the token endpoint.
type oauthError struct {
	status     int
	code, desc string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"server_error","error_description":"pipatest: cannot encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="pipatest"`)
	}
	body := map[string]string{"error": e.code}
	if e.desc != "" {
		body["error_description"] = e.desc
	}
	writeJSON(w, e.status, body)
}

// postForm reads the form body of a POST to the named endpoint (RFC 6749
// 3.2, RFC 7009 2.1: application/x-www-form-urlencoded, at most 64 KiB),
// or answers an OAuth error and reports false.
func postForm(w http.ResponseWriter, r *http.Request, endpoint string) (url.Values, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "the " + endpoint + " endpoint accepts POST only"})
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded"})
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "malformed form body"})
		return nil, false
	}
	return r.PostForm, true
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	s.mu.Unlock()

	form, ok := postForm(w, r, "token")
	if !ok {
		return
	}

	_, _, hasBasic := r.BasicAuth()
	tr := TokenRequest{
		GrantType:   form.Get("grant_type"),
		HasVerifier: form.Has("code_verifier"),
		RedirectURI: form.Get("redirect_uri"),
	}
	hasPost := form.Has("client_secret")
	hasJWT := form.Has("client_assertion") || form.Has("client_assertion_type")
	tr.DPoP = len(r.Header.Values("DPoP")) > 0
	switch {
	case hasBasic && hasPost, hasJWT && (hasBasic || hasPost):
		tr.ClientAuth = "multiple"
	case hasBasic:
		tr.ClientAuth = "client_secret_basic"
	case hasPost:
		tr.ClientAuth = "client_secret_post"
	case hasJWT:
		tr.ClientAuth = "private_key_jwt"
	}

	s.mu.Lock()
	s.lastTokenReq, s.haveLastReq = tr, true
	b := s.behavior
	s.mu.Unlock()

	if b.TokenDelay > 0 {
		t := time.NewTimer(b.TokenDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // nobody is listening
		case <-s.done:
			t.Stop()
			writeOAuthError(w, &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "the server is shutting down"})
			return
		}
	}
	if st := b.TokenStatus; st != 0 {
		if st < 200 || st > 599 {
			st = http.StatusInternalServerError
		}
		e := &oauthError{st, "server_error", "pipatest: Behavior.TokenStatus"}
		if st == http.StatusBadRequest {
			e.code = "invalid_grant"
		}
		writeOAuthError(w, e)
		return
	}

	for k, vs := range form {
		if len(vs) > 1 {
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", fmt.Sprintf("the %s parameter is repeated", k)})
			return
		}
	}

	auth, oerr := s.authenticate(r, form, hasBasic, "/token")
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	clientID := auth.clientID
	jkt, perr := s.checkProof(r, "")
	if perr != nil {
		s.writeProofError(w, perr)
		return
	}
	s.mu.Lock()
	requireDPoP := s.profile.RequireDPoP
	s.mu.Unlock()
	if jkt == "" && requireDPoP {
		s.writeProofError(w, &proofError{"invalid_dpop_proof", "this provider requires a DPoP proof"})
		return
	}
	if b.IgnoreDPoP {
		jkt = ""
	}
	if tr.GrantType == "refresh_token" && b.RefreshError != "" {
		st := b.RefreshErrorStatus
		if st == 0 {
			st = http.StatusOK
		}
		writeOAuthError(w, &oauthError{st, b.RefreshError, "pipatest: Behavior.RefreshError"})
		return
	}

	var (
		g  *grant
		at string
		rt string
	)
	switch tr.GrantType {
	case "authorization_code":
		g, at, rt, oerr = s.redeemCode(form, clientID, jkt, b.IgnoreDPoP)
	case "refresh_token":
		g, at, rt, oerr = s.redeemRefresh(form, clientID, jkt)
	case "":
		oerr = &oauthError{http.StatusBadRequest, "invalid_request", "the grant_type parameter is missing"}
	default:
		oerr = &oauthError{http.StatusBadRequest, "unsupported_grant_type", "supported grant types: authorization_code, refresh_token"}
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}

	s.mu.Lock()
	ttl := s.accessTTL
	if b.OfflineAccessOnly && !g.has("offline_access") {
		delete(s.refreshTokens, rt)
		rt = ""
	}
	s.mu.Unlock()
	resp := map[string]any{
		"access_token": at,
		"token_type":   tokenType(jkt),
		"expires_in":   int64((ttl + time.Second - 1) / time.Second),
		"scope":        strings.Join(g.scopes, " "),
	}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	if b.ExpiresIn != nil {
		resp["expires_in"] = b.ExpiresIn
	}
	switch {
	case b.OmitUserID:
	case b.UserID != nil:
		resp["user_id"] = b.UserID
	default:
		resp["user_id"] = s.Subject(g.clientID, g.user.Name)
	}
	if g.has("openid") && !b.OmitIDToken {
		idt, err := s.idToken(s.issuerFor(r), g, at, b)
		if err != nil {
			writeOAuthError(w, &oauthError{http.StatusInternalServerError, "server_error", "pipatest: " + err.Error()})
			return
		}
		resp["id_token"] = idt
	}
	if b.TokenHook != nil {
		b.TokenHook(resp)
	}
	if b.TokenContentType != "" {
		w.Header().Set("Content-Type", b.TokenContentType)
		body, _ := json.Marshal(resp)
		if mt, _, _ := mime.ParseMediaType(b.TokenContentType); mt == "application/x-www-form-urlencoded" {
			form := url.Values{}
			for k, v := range resp {
				form.Set(k, fmt.Sprint(v))
			}
			body = []byte(form.Encode())
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient checks the client credentials of a token or
// revocation request (RFC 6749 section 2.3.1) and returns the client id.
func (s *Server) authenticateClient(r *http.Request, form url.Values, hasBasic, hasPost bool) (string, *oauthError) {
	var clientID, secret string
	switch {
	case hasBasic && hasPost:
		return "", &oauthError{http.StatusBadRequest, "invalid_request", "use one client authentication method, not several"}
	case hasBasic:
		basicID, basicSecret, _ := r.BasicAuth()
		var err1, err2 error
		clientID, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return "", &oauthError{http.StatusUnauthorized, "invalid_client", "malformed HTTP Basic client credentials"}
		}
		if id := form.Get("client_id"); id != "" && id != clientID {
			return "", &oauthError{http.StatusBadRequest, "invalid_request", "client_id differs from the HTTP Basic user"}
		}
	case hasPost:
		clientID, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication is required (client_secret_basic or client_secret_post)"}
	}
	s.mu.Lock()
	c, ok := s.clients[clientID]
	s.mu.Unlock()
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return "", &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
	}
	return clientID, nil
}

// redeemCode checks an authorization code grant and issues tokens for it.
// The code must be redeemed with a proof of the key of the authorization
// request's dpop_jkt, if it had one (RFC 9449 section 10), unless
// ignoreJKT.
func (s *Server) redeemCode(form url.Values, clientID, jkt string, ignoreJKT bool) (g *grant, at, rt string, _ *oauthError) {
	invalid := func(desc string) (*grant, string, string, *oauthError) {
		return nil, "", "", &oauthError{http.StatusBadRequest, "invalid_grant", desc}
	}
	code := form.Get("code")
	if code == "" {
		return nil, "", "", &oauthError{http.StatusBadRequest, "invalid_request", "the code parameter is missing"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ac, ok := s.codes[code]
	switch {
	case !ok:
		return invalid("unknown authorization code")
	case ac.used:
		if ac.family != nil {
			ac.family.revoked = true // RFC 6749 section 4.1.2
		}
		return invalid("the authorization code was already used")
	case ac.grant.clientID != clientID:
		return invalid("the authorization code was issued to another client")
	}
	ac.used = true // any attempt by its client uses the code up
	g = ac.grant
	switch {
	case s.now().After(ac.expires):
		return invalid("the authorization code has expired")
	case form.Get("redirect_uri") != g.redirectURI:
		return invalid("redirect_uri differs from the one of the authorization request")
	case g.dpopJKT != "" && !ignoreJKT && g.dpopJKT != jkt:
		return invalid("the DPoP proof's key is not the one of the authorization request's dpop_jkt")
	case g.challenge == "" && form.Has("code_verifier"):
		return invalid("code_verifier without a code_challenge in the authorization request")
	case g.challenge != "":
		v := form.Get("code_verifier")
		if v == "" {
			return invalid("the code_verifier parameter is missing")
		}
		sum := sha256.Sum256([]byte(v))
		if len(v) < 43 || len(v) > 128 || !isPKCEChars(v) ||
			subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
			return invalid("code_verifier does not match the code_challenge")
		}
	}
	ac.family = &family{}
	at, rt = s.issueTokensLocked(g, g, ac.family, jkt)
	return g, at, rt, nil
}

// redeemRefresh checks a refresh token grant and issues tokens for it,
// rotating the refresh token.
// A refresh token bound to a DPoP key needs a proof of that key.
func (s *Server) redeemRefresh(form url.Values, clientID, jkt string) (g *grant, at, rt string, _ *oauthError) {
	invalid := func(desc string) (*grant, string, string, *oauthError) {
		return nil, "", "", &oauthError{http.StatusBadRequest, "invalid_grant", desc}
	}
	tok := form.Get("refresh_token")
	if tok == "" {
		return nil, "", "", &oauthError{http.StatusBadRequest, "invalid_request", "the refresh_token parameter is missing"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.refreshTokens[tok]
	switch {
	case !ok:
		return invalid("unknown refresh token")
	case old.grant.clientID != clientID:
		return invalid("the refresh token was issued to another client")
	case old.family.revoked:
		return invalid("the refresh token was revoked")
	case old.jkt != "" && old.jkt != jkt:
		return invalid("the refresh token is bound to another DPoP key, or the request has no DPoP proof")
	case old.used:
		old.family.revoked = true
		return invalid("the refresh token was already used; its token family is revoked")
	}
	g = old.grant
	if sc := form.Get("scope"); sc != "" {
		req := strings.Fields(sc)
		for _, x := range req {
			if !g.has(x) {
				return nil, "", "", &oauthError{http.StatusBadRequest, "invalid_scope", fmt.Sprintf("scope %q was not granted", x)}
			}
		}
		narrowed := *g
		narrowed.scopes = slices.DeleteFunc(slices.Clone(g.scopes), func(x string) bool { return !slices.Contains(req, x) })
		g = &narrowed
	}
	old.used = true
	at, rt = s.issueTokensLocked(old.grant, g, old.family, jkt)
	return g, at, rt, nil
}

// issueTokensLocked makes an access token for the grant g and a refresh
// token for the (possibly wider) grant rg.
// Both are bound to the DPoP key of thumbprint jkt when it is not "".
func (s *Server) issueTokensLocked(rg, g *grant, f *family, jkt string) (at, rt string) {
	at, rt = padToken(randomToken(), s.behavior.AccessTokenBytes), padToken(randomToken(), s.behavior.RefreshTokenBytes)
	s.accessTokens[at] = &accessToken{grant: g, family: f, expires: s.now().Add(s.accessTTL), jkt: jkt}
	s.refreshTokens[rt] = &refreshToken{grant: rg, family: f, jkt: jkt}
	return at, rt
}

// tokenType is the token_type of tokens bound to jkt.
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

// idToken makes the signed ID token for a grant and access token.
func (s *Server) idToken(issuer string, g *grant, accessToken string, b Behavior) (string, error) {
	s.mu.Lock()
	key := s.key
	now := s.now()
	s.mu.Unlock()

	iat, exp := now, now.Add(idTokenLifetime)
	switch {
	case b.Expired:
		iat, exp = now.Add(-2*time.Hour), now.Add(-time.Hour)
	case b.IssuedInFuture:
		iat, exp = now.Add(time.Hour), now.Add(time.Hour+idTokenLifetime)
	}
	atHash := accessToken
	if b.BadAtHash {
		atHash = "not-the-access-token:" + accessToken
	}
	sum := sha256.Sum256([]byte(atHash))
	claims := map[string]any{
		"iss":     issuer,
		"sub":     s.Subject(g.clientID, g.user.Name),
		"aud":     g.clientID,
		"azp":     g.clientID,
		"exp":     exp.Unix(),
		"iat":     iat.Unix(),
		"nonce":   g.nonce,
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]),
	}
	if g.sid != "" {
		claims["sid"] = g.sid
		claims["auth_time"] = g.authTime.Unix()
	}
	if g.has("email") && g.user.ShareEmail && g.user.Email != "" && !b.EmailOnlyAtUserInfo {
		claims["email"] = g.user.Email
		claims["email_verified"] = g.user.EmailVerified
	}
	s.mu.Lock()
	extra := s.currentLocked(g.user).Claims
	s.mu.Unlock()
	addClaims(claims, extra)
	if b.WrongNonce {
		claims["nonce"] = "wrong-" + g.nonce
	}
	if b.WrongIssuer {
		claims["iss"] = "https://not-pipa.example"
	}
	aud := g.clientID
	if b.WrongAudience {
		aud = "pipatest-other-client"
	}
	if b.ExtraAudience {
		claims["aud"] = []string{aud, "pipatest-extra-audience"}
	} else {
		claims["aud"] = aud
	}
	if b.WrongAZP {
		claims["azp"] = "pipatest-other-client"
	}
	if b.OmitSubject {
		delete(claims, "sub")
	}
	if b.OmitIssuedAt {
		delete(claims, "iat")
	}
	if b.OmitNonce {
		delete(claims, "nonce")
	}
	if b.ClaimsHook != nil {
		b.ClaimsHook(claims)
	}

	priv := key.priv
	if b.BadSignature {
		priv = s.wrongKey()
	}
	return sign(priv, key.kid, claims)
}

// wrongKey returns the key for Behavior.BadSignature, making it on first use.
func (s *Server) wrongKey() *rsa.PrivateKey {
	s.mu.Lock()
	k := s.badKey
	s.mu.Unlock()
	if k != nil {
		return k
	}
	k = newSigningKey().priv
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.badKey == nil {
		s.badKey = k
	}
	return s.badKey
}

// sign returns the claims as a compact JWS signed with RS256, typ JWT.
func sign(priv *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	return signTyped(priv, kid, "JWT", claims)
}

// hintClaims returns the client an id_token_hint was issued to and its sid,
// if it carries a valid signature of one of the server's keys, past or
// present. Expired hints are fine.
func (s *Server) hintClaims(hint string) (aud, sid string, ok bool) {
	jws, err := jose.ParseSigned(hint, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", false
	}
	s.mu.Lock()
	keys := append(slices.Clone(s.pastKeys), s.key)
	s.mu.Unlock()
	for _, k := range keys {
		payload, err := jws.Verify(&k.priv.PublicKey)
		if err != nil {
			continue
		}
		var c struct {
			AZP string          `json:"azp"`
			Aud json.RawMessage `json:"aud"`
			SID string          `json:"sid"`
		}
		if json.Unmarshal(payload, &c) != nil {
			return "", "", false
		}
		if c.AZP != "" {
			return c.AZP, c.SID, true
		}
		var one string
		if json.Unmarshal(c.Aud, &one) == nil && one != "" {
			return one, c.SID, true
		}
		var many []string
		if json.Unmarshal(c.Aud, &many) == nil && len(many) == 1 {
			return many[0], c.SID, true
		}
		return "", "", false
	}
	return "", "", false
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "use GET"})
		return
	}
	iss := s.issuerFor(r)
	doc := map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"token_endpoint":                                 iss + "/token",
		"jwks_uri":                                       iss + "/jwks",
		"end_session_endpoint":                           iss + "/end_session",
		"userinfo_endpoint":                              iss + "/userinfo",
		"revocation_endpoint":                            iss + "/revoke",
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query", "form_post"},
		"subject_types_supported":                        []string{"pairwise"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"scopes_supported":                               []string{"openid", "email", "offline_access"},
		"claims_supported":                               []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "sid", "nonce", "at_hash", "email", "email_verified"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_post", "client_secret_basic"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_post", "client_secret_basic"},
		"code_challenge_methods_supported":               []string{"S256"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	}
	s.discoveryHighAssurance(doc, iss)
	s.mu.Lock()
	hook := s.behavior.DiscoveryHook
	s.mu.Unlock()
	if hook != nil {
		hook(doc)
	}
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "use GET"})
		return
	}
	s.mu.Lock()
	k := s.key
	s.mu.Unlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key:       &k.priv.PublicKey,
		KeyID:     k.kid,
		Algorithm: string(jose.RS256),
		Use:       "sig",
	}}}
	writeJSON(w, http.StatusOK, set)
}

func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "use GET or POST"})
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	isDPoP := strings.EqualFold(scheme, "DPoP")
	if !strings.EqualFold(scheme, "Bearer") && !isDPoP || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pipatest"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a Bearer or DPoP access token is required"})
		return
	}
	s.mu.Lock()
	a, ok := s.accessTokens[tok]
	valid := ok && !a.family.revoked && s.now().Before(a.expires)
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", scheme+` realm="pipatest", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the access token is unknown, expired or revoked"})
		return
	}
	switch {
	case a.jkt != "" && !isDPoP:
		// RFC 9449 section 7.2: a bound token sent as Bearer is refused.
		s.writeResourceProofError(w, "invalid_token", "the access token is DPoP-bound: send it with the DPoP scheme and a proof")
		return
	case a.jkt == "" && isDPoP:
		s.writeResourceProofError(w, "invalid_token", "the access token is not DPoP-bound")
		return
	case isDPoP:
		jkt, perr := s.checkProof(r, tok)
		if perr == nil && jkt == "" {
			perr = &proofError{"invalid_dpop_proof", "a DPoP proof is required"}
		}
		if perr == nil && jkt != a.jkt {
			perr = &proofError{"invalid_dpop_proof", "the DPoP proof's key is not the one the access token is bound to"}
		}
		if perr != nil {
			s.writeResourceProofError(w, perr.code, perr.desc)
			return
		}
	}
	g := a.grant
	info := map[string]any{"sub": s.Subject(g.clientID, g.user.Name)}
	if g.has("email") && g.user.ShareEmail && g.user.Email != "" {
		info["email"] = g.user.Email
		info["email_verified"] = g.user.EmailVerified
	}
	s.mu.Lock()
	b := s.behavior
	cur := s.currentLocked(g.user)
	s.mu.Unlock()
	addClaims(info, cur.Claims)
	addClaims(info, cur.UserInfoClaims)
	if b.UserInfoWrongSubject {
		info["sub"] = s.Subject(g.clientID, g.user.Name+"\x00other")
	}
	if b.UserInfoHook != nil {
		b.UserInfoHook(info)
	}
	writeJSON(w, http.StatusOK, info)
}

// handleRevoke is the revocation endpoint (RFC 7009).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := postForm(w, r, "revocation")
	if !ok {
		return
	}
	s.mu.Lock()
	b := s.behavior
	s.mu.Unlock()
	if b.RevocationDelay > 0 {
		t := time.NewTimer(b.RevocationDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			writeOAuthError(w, &oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "the server is shutting down"})
			return
		}
	}
	if b.RevocationStatus != 0 {
		st := b.RevocationStatus
		if st < 200 || st > 599 {
			st = http.StatusInternalServerError
		}
		writeOAuthError(w, &oauthError{st, "server_error", "pipatest: Behavior.RevocationStatus"})
		return
	}
	auth, ok := s.authenticateForm(w, r, form, "/revoke")
	if !ok {
		return
	}
	clientID := auth.clientID
	jkt, perr := s.checkProof(r, "")
	if perr != nil {
		s.writeProofError(w, perr)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, &oauthError{http.StatusBadRequest, "invalid_request", "the token parameter is missing"})
		return
	}
	rev := Revocation{Token: tok, TokenTypeHint: form.Get("token_type_hint"), ClientAuth: auth.method, DPoP: jkt != ""}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt, ok := s.refreshTokens[tok]; ok {
		if rt.grant.clientID != clientID {
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "unauthorized_client", "the token was issued to another client"})
			return
		}
		rt.family.revoked = true // the whole grant, as RFC 7009 section 2.1 suggests
		rev.Kind = "refresh_token"
	} else if at, ok := s.accessTokens[tok]; ok {
		if at.grant.clientID != clientID {
			writeOAuthError(w, &oauthError{http.StatusBadRequest, "unauthorized_client", "the token was issued to another client"})
			return
		}
		delete(s.accessTokens, tok)
		rev.Kind = "access_token"
	}
	s.revocations = append(s.revocations, rev)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// padToken lengthens a random token to n bytes (when longer than it) with
// a base64url tail, as large JWT access tokens and refresh tokens are.
func padToken(tok string, n int) string {
	if n <= len(tok) {
		return tok
	}
	return tok + strings.Repeat("x", n-len(tok))
}

// serverClaims are the claims a Server sets itself, which User.Claims
// cannot replace.
var serverClaims = []string{"iss", "sub", "aud", "azp", "exp", "iat", "nonce", "at_hash", "sid", "auth_time", "email", "email_verified"}

// addClaims adds extra to claims, but for the claims the server sets.
func addClaims(claims, extra map[string]any) {
	for k, v := range extra {
		if _, set := claims[k]; !set && !slices.Contains(serverClaims, k) {
			claims[k] = v
		}
	}
}

// currentLocked returns the user's current record (Users, which AddUser
// and SetUser update), or u itself when the user is not listed (an address
// typed on the interactive page).
func (s *Server) currentLocked(u User) User {
	if cur, ok := s.userLocked(u.Name); ok {
		return cur
	}
	return u
}
