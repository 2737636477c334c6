package pipatest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scopes the provider knows, in canonical order.
var knownScopes = []string{"openid", "email", "offline_access"}

// SessionCookie names the cookie of the provider's own session (single
// sign-on), set on the provider's host with Path=/. Browsers do not tell
// ports apart for cookies: an application on the same host (127.0.0.1)
// receives it too.
const SessionCookie = "pipatest_session"

// providerSession is a browser signed in at the provider (single sign-on).
type providerSession struct {
	id       string
	user     User // with ShareEmail as consented
	authTime time.Time
	ended    bool
}

// authRequest is a validated authorization request.
type authRequest struct {
	clientID            string
	redirectURI         string
	responseType        string
	scope               string // as requested
	state               string
	nonce               string
	codeChallenge       string
	codeChallengeMethod string
	prompt              string
	maxAge              string // max_age as sent: "" or a non-negative integer of seconds
	dpopJKT             string // dpop_jkt (RFC 9449 section 10): the DPoP key the code is bound to
	responseMode        string // "", "query" or "form_post" (OAuth 2.0 Form Post Response Mode)
}

func (a authRequest) hasPrompt(p string) bool { return slices.Contains(strings.Fields(a.prompt), p) }

// authParams are the authorization request parameters the interactive page
// carries in hidden fields, in order.
var authParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "dpop_jkt", "response_mode"}

func (a authRequest) values() url.Values {
	v := url.Values{}
	for _, p := range []struct{ k, v string }{
		{"client_id", a.clientID}, {"redirect_uri", a.redirectURI}, {"response_type", a.responseType},
		{"scope", a.scope}, {"state", a.state}, {"nonce", a.nonce},
		{"code_challenge", a.codeChallenge}, {"code_challenge_method", a.codeChallengeMethod},
		{"prompt", a.prompt}, {"max_age", a.maxAge}, {"dpop_jkt", a.dpopJKT}, {"response_mode", a.responseMode},
	} {
		if p.v != "" {
			v.Set(p.k, p.v)
		}
	}
	return v
}

// grantedScopes returns the known scopes among the requested ones, in
// canonical order. offline_access counts only with prompt=consent (OpenID
// Connect Core 11).
func grantedScopes(scope string, consent bool) []string {
	req := strings.Fields(scope)
	var out []string
	for _, k := range knownScopes {
		if slices.Contains(req, k) && (k != "offline_access" || consent) {
			out = append(out, k)
		}
	}
	return out
}

// grant is what a user authorized a client to get.
type grant struct {
	clientID    string
	redirectURI string
	scopes      []string
	nonce       string
	challenge   string
	dpopJKT     string // the DPoP key thumbprint the code is bound to; "" when none
	user        User   // with ShareEmail as consented
	sid         string
	authTime    time.Time
}

func (g *grant) has(scope string) bool { return slices.Contains(g.scopes, scope) }

type authCode struct {
	grant   *grant
	expires time.Time
	used    bool
	family  *family // the tokens issued for the code, once redeemed
}

// pendingAuth is an authorization request waiting on the interactive page.
type pendingAuth struct {
	req     authRequest
	expires time.Time
}

// authzError is an error reported by redirecting to the client.
type authzError struct {
	code, desc string
}

// badRequestError is an error reported on a page, without redirecting.
type badRequestError string

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.authorizeGET(w, r)
	case http.MethodPost:
		s.authorizePOST(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.page(w, http.StatusMethodNotAllowed, "Method not allowed", "The authorization endpoint accepts GET requests.")
	}
}

func (s *Server) authorizeGET(w http.ResponseWriter, r *http.Request) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.page(w, http.StatusBadRequest, "Bad request", "The authorization request has a malformed query string.")
		return
	}
	pushed := v.Has("request_uri")
	if pushed {
		var msg string
		if v, msg = s.takePushed(v); msg != "" {
			s.page(w, http.StatusBadRequest, "Bad request", msg)
			return
		}
	}
	req, bad, aerr := s.parseAuthorize(v)
	if bad != "" {
		s.page(w, http.StatusBadRequest, "Bad request", string(bad))
		return
	}
	iss := s.issuerFor(r)
	s.mu.Lock()
	requirePAR := s.profile.RequirePushedAuthorization
	s.mu.Unlock()
	if aerr == nil && requirePAR && !pushed {
		aerr = &authzError{"invalid_request", "this provider requires pushed authorization requests (RFC 9126): send request_uri"}
	}
	if aerr != nil {
		redirectError(w, r, req, iss, aerr)
		return
	}

	s.mu.Lock()
	b := s.behavior.AuthorizeError
	interactive := s.interactive
	user := s.current
	s.mu.Unlock()

	if b != "" {
		redirectError(w, r, req, iss, &authzError{b, "pipatest: Behavior.AuthorizeError"})
		return
	}
	ps := s.liveSession(r)
	if req.hasPrompt("login") || s.tooOld(ps, req) {
		ps = nil // sign in again
	}
	switch {
	case ps != nil && !req.hasPrompt("consent") && (interactive || ps.user.Name == user.Name):
		// Single sign-on: the browser's provider session answers (in
		// automatic mode for the user set now, who may have changed).
		u := ps.user
		if !interactive {
			u = user
		}
		s.redirectCode(w, r, req, iss, u, ps)
		return
	case req.hasPrompt("none"):
		redirectError(w, r, req, iss, &authzError{"login_required", "the browser has no session at the provider"})
		return
	case !interactive:
		if ps != nil && ps.user.Name != user.Name {
			ps = nil
		}
		s.redirectCode(w, r, req, iss, user, ps)
		return
	}

	csrf := randomToken()
	s.mu.Lock()
	now := s.now()
	for k, p := range s.pending {
		if now.After(p.expires) {
			delete(s.pending, k)
		}
	}
	s.pending[csrf] = &pendingAuth{req: req, expires: now.Add(pendingLifetime)}
	s.mu.Unlock()
	s.consentPage(w, http.StatusOK, req, csrf, user.Name, "", true, "")
}

func (s *Server) authorizePOST(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	form := r.PostForm
	for k, vs := range form {
		if len(vs) > 1 {
			s.page(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The form field %q is repeated.", k))
			return
		}
	}
	csrf := form.Get("csrf")

	s.mu.Lock()
	p, ok := s.pending[csrf]
	if ok && s.now().After(p.expires) {
		delete(s.pending, csrf)
		ok = false
	}
	user := s.current
	s.mu.Unlock()
	if csrf == "" || !ok {
		s.page(w, http.StatusForbidden, "Form expired",
			"This sign-in form is not valid or has expired. Go back to the application and sign in again.")
		return
	}

	// The hidden fields must be the pending request exactly...
	hidden := url.Values{}
	for _, k := range authParams {
		if form.Has(k) {
			hidden[k] = form[k]
		}
	}
	if !equalValues(hidden, p.req.values()) {
		s.page(w, http.StatusBadRequest, "Bad request", "The form does not match the pending sign-in request.")
		return
	}
	// ...which must still be valid (the client may have changed since).
	req, bad, aerr := s.parseAuthorize(hidden)
	if bad != "" {
		s.consumePending(csrf)
		s.page(w, http.StatusBadRequest, "Bad request", string(bad))
		return
	}
	iss := s.issuerFor(r)
	if aerr != nil {
		s.consumePending(csrf)
		redirectError(w, r, req, iss, aerr)
		return
	}

	share := form.Get("share_email") == "on"
	switch form.Get("action") {
	case "deny":
		if !s.consumePending(csrf) {
			s.page(w, http.StatusForbidden, "Form expired", "This sign-in form has already been used.")
			return
		}
		redirectError(w, r, req, iss, &authzError{"access_denied", "the user denied the request"})
	case "approve":
		var u User
		if email := strings.TrimSpace(form.Get("email")); email != "" {
			a, err := mail.ParseAddress(email)
			if err != nil || a.Name != "" || a.Address != email {
				s.consentPage(w, http.StatusBadRequest, req, csrf, form.Get("user"), email, share,
					"That is not a valid email address.")
				return
			}
			u = User{Name: email, Email: email, EmailVerified: true}
		} else {
			s.mu.Lock()
			found, ok := s.userLocked(form.Get("user"))
			s.mu.Unlock()
			if !ok {
				s.consentPage(w, http.StatusBadRequest, req, csrf, user.Name, "", share,
					"Choose one of the users or type an email address.")
				return
			}
			u = found
		}
		u.ShareEmail = share
		if !s.consumePending(csrf) {
			s.page(w, http.StatusForbidden, "Form expired", "This sign-in form has already been used.")
			return
		}
		ps := s.liveSession(r)
		if ps != nil && (ps.user.Name != u.Name || req.hasPrompt("login") || s.tooOld(ps, req)) {
			ps = nil
		}
		s.redirectCode(w, r, req, iss, u, ps)
	default:
		s.consentPage(w, http.StatusBadRequest, req, csrf, form.Get("user"), form.Get("email"), share,
			"Choose Approve or Deny.")
	}
}

// consumePending removes a pending request and reports whether it was there.
func (s *Server) consumePending(csrf string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[csrf]
	delete(s.pending, csrf)
	return ok
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if subtle.ConstantTimeCompare([]byte(av[i]), []byte(bv[i])) != 1 {
				return false
			}
		}
	}
	return true
}

// parseAuthorize validates an authorization request. A non-empty bad means
// the request cannot be redirected back (unknown client or redirect_uri); a
// non-nil aerr is to be reported by redirecting to req.redirectURI with
// req.state.
func (s *Server) parseAuthorize(v url.Values) (req authRequest, bad badRequestError, aerr *authzError) {
	switch ids := v["client_id"]; {
	case len(ids) == 0 || ids[0] == "":
		return req, "The client_id parameter is missing.", nil
	case len(ids) > 1:
		return req, "The client_id parameter is repeated.", nil
	}
	req.clientID = v.Get("client_id")
	s.mu.Lock()
	c, ok := s.clients[req.clientID]
	s.mu.Unlock()
	if !ok {
		return req, badRequestError(fmt.Sprintf("The client %q is not registered.", req.clientID)), nil
	}
	switch uris := v["redirect_uri"]; {
	case len(uris) == 0 || uris[0] == "":
		return req, "The redirect_uri parameter is missing.", nil
	case len(uris) > 1:
		return req, "The redirect_uri parameter is repeated.", nil
	}
	req.redirectURI = v.Get("redirect_uri")
	if !allowedURL(req.redirectURI, c.RedirectURLs, true) {
		return req, badRequestError(fmt.Sprintf("The redirect_uri %q is not registered for the client %q.", req.redirectURI, c.ID)), nil
	}

	// From here on, errors go back to the client.
	if len(v["state"]) > 1 {
		return req, "", &authzError{"invalid_request", "the state parameter is repeated"}
	}
	req.state = v.Get("state")
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(v[k]) > 1 {
			return req, "", &authzError{"invalid_request", fmt.Sprintf("the %s parameter is repeated", k)}
		}
	}
	req.responseType = v.Get("response_type")
	req.scope = v.Get("scope")
	req.nonce = v.Get("nonce")
	req.codeChallenge = v.Get("code_challenge")
	req.codeChallengeMethod = v.Get("code_challenge_method")
	req.prompt = v.Get("prompt")
	req.maxAge = v.Get("max_age")
	req.dpopJKT = v.Get("dpop_jkt")
	req.responseMode = v.Get("response_mode")
	s.mu.Lock()
	ignoreMode := s.behavior.IgnoreResponseMode
	s.mu.Unlock()
	switch {
	case ignoreMode:
		req.responseMode = "" // as some providers do: the answer goes in the query string
	case req.responseMode != "" && req.responseMode != "query" && req.responseMode != "form_post":
		req.responseMode = ""
		return req, "", &authzError{"invalid_request", fmt.Sprintf("unsupported response_mode %q", v.Get("response_mode"))}
	}

	switch {
	case v.Has("request"):
		return req, "", &authzError{"request_not_supported", "request objects are not supported"}
	case v.Has("request_uri"):
		return req, "", &authzError{"request_uri_not_supported", "request_uri is not supported"}
	case req.responseType == "":
		return req, "", &authzError{"invalid_request", "the response_type parameter is missing"}
	case req.responseType != "code":
		return req, "", &authzError{"unsupported_response_type", "only response_type=code is supported"}
	}
	for _, p := range strings.Fields(req.prompt) {
		if p != "none" && p != "login" && p != "consent" && p != "select_account" {
			return req, "", &authzError{"invalid_request", fmt.Sprintf("unknown prompt value %q", p)}
		}
	}
	if v.Has("max_age") {
		if n, err := strconv.ParseUint(req.maxAge, 10, 31); err != nil || strconv.FormatUint(n, 10) != req.maxAge {
			return req, "", &authzError{"invalid_request", "max_age must be a non-negative integer number of seconds"}
		}
	}
	if req.hasPrompt("none") && len(strings.Fields(req.prompt)) > 1 {
		return req, "", &authzError{"invalid_request", "prompt=none cannot be combined with other values"}
	}
	scopes := grantedScopes(req.scope, req.hasPrompt("consent"))
	if len(scopes) == 0 {
		return req, "", &authzError{"invalid_scope", "the scope must include openid or email"}
	}
	if slices.Contains(scopes, "openid") && req.nonce == "" {
		return req, "", &authzError{"invalid_request", "the nonce parameter is required with the openid scope"}
	}
	switch {
	case req.codeChallenge == "" && req.codeChallengeMethod != "":
		return req, "", &authzError{"invalid_request", "code_challenge_method without code_challenge"}
	case req.codeChallenge == "":
	case req.codeChallengeMethod != "S256":
		return req, "", &authzError{"invalid_request", "code_challenge_method must be S256"}
	case len(req.codeChallenge) != 43 || !isPKCEChars(req.codeChallenge):
		return req, "", &authzError{"invalid_request", "code_challenge is not a base64url SHA-256 hash"}
	}
	return req, "", nil
}

// isPKCEChars reports whether s holds only the unreserved characters of
// RFC 7636.
func isPKCEChars(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// allowedURL reports whether u is in the exact-match allow list, or, when
// the list is empty, whether it is an absolute http(s) URL (without
// fragment, if noFragment).
func allowedURL(u string, allow []string, noFragment bool) bool {
	if len(allow) > 0 {
		return slices.Contains(allow, u)
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Opaque != "" {
		return false
	}
	return !noFragment || (p.Fragment == "" && !strings.Contains(u, "#"))
}

// appendQuery returns u with params added to its query, keeping the query u
// already has.
func appendQuery(u string, params url.Values) string {
	p, err := url.Parse(u)
	if err != nil { // an odd allow-listed URL: append textually
		if strings.Contains(u, "?") {
			return u + "&" + params.Encode()
		}
		return u + "?" + params.Encode()
	}
	if p.RawQuery != "" {
		p.RawQuery += "&" + params.Encode()
	} else {
		p.RawQuery = params.Encode()
	}
	return p.String()
}

func redirectError(w http.ResponseWriter, r *http.Request, req authRequest, iss string, e *authzError) {
	params := url.Values{"error": {e.code}, "iss": {iss}}
	if e.desc != "" {
		params.Set("error_description", e.desc)
	}
	if req.state != "" {
		params.Set("state", req.state)
	}
	respond(w, r, req, params)
}

// respond sends the authorization response params back to the client: a
// redirect with them in the query string, or, for response_mode=form_post,
// a page that posts them to the redirect_uri (OAuth 2.0 Form Post Response
// Mode, section 2).
func respond(w http.ResponseWriter, r *http.Request, req authRequest, params url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if req.responseMode != "form_post" {
		http.Redirect(w, r, appendQuery(req.redirectURI, params), http.StatusFound)
		return
	}
	formPostPage(w, req.redirectURI, params)
}

// tooOld reports whether the provider session ps signed in longer ago than
// the request's max_age allows (OpenID Connect Core 3.1.2.1: the user must
// then sign in again), unless Behavior.IgnoreMaxAge.
func (s *Server) tooOld(ps *providerSession, req authRequest) bool {
	if ps == nil || req.maxAge == "" {
		return false
	}
	s.mu.Lock()
	ignore, now := s.behavior.IgnoreMaxAge, s.now()
	s.mu.Unlock()
	n, _ := strconv.Atoi(req.maxAge) // checked by parseAuthorize
	return !ignore && now.Sub(ps.authTime) > time.Duration(n)*time.Second
}

// liveSession returns the provider session named by r's cookie, or nil.
func (s *Server) liveSession(r *http.Request) *providerSession {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.sessions[c.Value]
	if !ok || ps.ended {
		return nil
	}
	return ps
}

// sessionCookieFor returns the provider session cookie; maxAge -1 deletes it.
func sessionCookieFor(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

// redirectCode issues a code for the request and user and redirects to the
// client with it. ps is the provider session that signed the user in, nil
// to start a new one (a new sign-in).
func (s *Server) redirectCode(w http.ResponseWriter, r *http.Request, req authRequest, iss string, u User, ps *providerSession) {
	code := randomToken()
	s.mu.Lock()
	now := s.now()
	if ps == nil {
		// A sign-in replaces the browser's provider session: the same user
		// signing in again (a step-up, prompt=login) keeps the session and
		// its sid with the new auth_time; another user ends it.
		if c, err := r.Cookie(SessionCookie); err == nil {
			if old, ok := s.sessions[c.Value]; ok && !old.ended {
				if old.user.Name == u.Name {
					old.user, old.authTime, ps = u, now, old
				} else {
					old.ended = true
				}
			}
		}
	}
	if ps == nil {
		ps = &providerSession{id: randomToken(), user: u, authTime: now}
		s.sessions[ps.id] = ps
		http.SetCookie(w, sessionCookieFor(r, ps.id, 0))
	}
	for k, c := range s.codes {
		if now.After(c.expires) && c.family == nil {
			delete(s.codes, k)
		}
	}
	s.codes[code] = &authCode{
		grant: &grant{
			clientID:    req.clientID,
			redirectURI: req.redirectURI,
			scopes:      grantedScopes(req.scope, req.hasPrompt("consent")),
			nonce:       req.nonce,
			challenge:   req.codeChallenge,
			dpopJKT:     req.dpopJKT,
			user:        u,
			sid:         ps.id,
			authTime:    ps.authTime,
		},
		expires: now.Add(codeLifetime),
	}
	s.mu.Unlock()
	params := url.Values{"code": {code}, "iss": {iss}}
	if req.state != "" {
		params.Set("state", req.state)
	}
	respond(w, r, req, params)
}

func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	var v url.Values
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		var err error
		if v, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			s.page(w, http.StatusBadRequest, "Bad request", "The logout request has a malformed query string.")
			return
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			s.page(w, http.StatusBadRequest, "Bad request", "The logout form could not be read.")
			return
		}
		v = r.PostForm
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.page(w, http.StatusMethodNotAllowed, "Method not allowed", "The end session endpoint accepts GET and POST requests.")
		return
	}
	for k, vs := range v {
		if len(vs) > 1 {
			s.page(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The %s parameter is repeated.", k))
			return
		}
	}
	clientID := v.Get("client_id")
	hintSID := ""
	if hint := v.Get("id_token_hint"); hint != "" {
		aud, sid, ok := s.hintClaims(hint)
		hintSID = sid
		switch {
		case !ok:
			s.page(w, http.StatusBadRequest, "Bad request", "The id_token_hint is not an ID token issued by this provider.")
			return
		case clientID == "":
			clientID = aud
		case clientID != aud:
			s.page(w, http.StatusBadRequest, "Bad request", "The id_token_hint was not issued to the client_id.")
			return
		}
	}
	var c Client
	if clientID != "" {
		s.mu.Lock()
		var ok bool
		c, ok = s.clients[clientID]
		s.mu.Unlock()
		if !ok {
			s.page(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The client %q is not registered.", clientID))
			return
		}
	}
	target := v.Get("post_logout_redirect_uri")
	if target == "" {
		s.endSessions(w, r, hintSID)
		s.page(w, http.StatusOK, "signed out", "You are signed out of PiPA.")
		return
	}
	s.mu.Lock()
	strict := s.behavior.RequireIDTokenHint
	s.mu.Unlock()
	switch {
	case strict && v.Get("id_token_hint") == "":
		s.page(w, http.StatusBadRequest, "Bad request", "The post_logout_redirect_uri is set but id_token_hint is missing.")
		return
	case clientID == "":
		s.page(w, http.StatusBadRequest, "Bad request", "A post_logout_redirect_uri needs a client_id or an id_token_hint.")
		return
	case !allowedURL(target, c.PostLogoutRedirectURLs, false):
		s.page(w, http.StatusBadRequest, "Bad request",
			fmt.Sprintf("The post_logout_redirect_uri %q is not registered for the client %q.", target, clientID))
		return
	}
	s.endSessions(w, r, hintSID)
	params := url.Values{}
	if st := v.Get("state"); st != "" {
		params.Set("state", st)
	}
	if len(params) > 0 {
		target = appendQuery(target, params)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// endSessions ends the provider session of r's cookie and the one named by
// an id_token_hint's sid, and deletes the cookie.
func (s *Server) endSessions(w http.ResponseWriter, r *http.Request, hintSID string) {
	s.mu.Lock()
	if c, err := r.Cookie(SessionCookie); err == nil {
		if ps, ok := s.sessions[c.Value]; ok {
			ps.ended = true
		}
	}
	if ps, ok := s.sessions[hintSID]; ok && hintSID != "" {
		ps.ended = true
	}
	s.mu.Unlock()
	http.SetCookie(w, sessionCookieFor(r, "", -1))
}
