package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/pipaauth/pipaauth/internal/errs"
)

// Each login in flight lives in a cookie of its own, so that logins started
// at the same instant (tabs restored together) never race on one container,
// and nothing is written server-side before a login succeeds.
//
// The cookie is named <session cookie name>-login-<tag>, where tag is the
// first 96 bits of HMAC-SHA256(k, state), base64url: the callback finds the
// cookie from the state alone, while the name reveals nothing about the
// state and nobody without the keys can tell which name a state maps to. k
// is derived from each key pair's hash key, so rotation works as for the
// session: the first pair names and seals new cookies, every pair finds and
// opens them. The value is sealed by securecookie (HMAC-SHA256 over the
// name too, then AES-CTR) and holds the attempt in a small versioned binary
// form (attemptV1).

// Limits of the attempt cookies. For wiring only: applications use package
// pipaauth.
const (
	// MaxCookieHeader is the bound, in bytes, on the whole Cookie header
	// line ("Cookie: " and the cookies, without CRLF) that pipaauth's own
	// cookies make a browser send after sequential login starts: 8 KiB with
	// CRLF, the default header buffer of common reverse proxies. It holds
	// the session cookie at its largest (MaxCookieBytes) plus the login
	// attempt cookies, which a start trims to MaxCookieHeader less the session cookie.
	MaxCookieHeader = 8190

	// attemptBudget is what the attempt cookies may take of a Cookie
	// header: MaxCookieHeader less "Cookie: ", the session cookie at its
	// largest and one "; " separator. Each attempt costs its name=value
	// and a "; ".
	attemptBudget = MaxCookieHeader - len("Cookie: ") - MaxCookieBytes - len("; ")

	// maxCarried caps the attempt cookies of one request a start looks at
	// (a browser keeps a handful; a hostile request may carry thousands):
	// further ones are left alone, to expire on their own.
	maxCarried = 32

	attemptV1 = 1
	attemptV2 = 2 // attemptV1, then the step-up's max_age and expected subject
	attemptV3 = 3 // attemptV2, then the login's DPoP key

	attemptTagBytes = 12
	attemptInfix    = "-login-"
	// maxStepUpSeconds bounds a step-up's max_age (about 68 years).
	maxStepUpSeconds = 1<<31 - 1
	// MaxReturnToBytes is the longest return path an attempt cookie holds.
	MaxReturnToBytes = 1024
)

var errAttemptFormat = errors.New("session: malformed login attempt")

// attemptJar seals, names and finds attempt cookies.
type attemptJar struct {
	opt    Options
	prefix string
	legacy string                       // Options.LegacyName's prefix: attempts started before a rename are still found
	tagKey [][]byte                     // per key pair, for the cookie name
	codecs []*securecookie.SecureCookie // per key pair; the first seals
	max    int
}

func newAttemptJar(opt Options) *attemptJar {
	j := &attemptJar{opt: opt, prefix: opt.Name + attemptInfix, max: opt.MaxPending}
	if opt.LegacyName != "" && opt.LegacyName != opt.Name {
		j.legacy = opt.LegacyName + attemptInfix
	}
	if j.max <= 0 {
		j.max = DefaultMaxPending
	}
	for i := 0; i+1 < len(opt.KeyPairs); i += 2 {
		mac := hmac.New(sha256.New, opt.KeyPairs[i])
		mac.Write([]byte("pipaauth login attempt cookie name v1"))
		j.tagKey = append(j.tagKey, mac.Sum(nil))
		c := securecookie.New(opt.KeyPairs[i], opt.KeyPairs[i+1])
		c.SetSerializer(attemptSerializer{})
		c.MaxAge(int((opt.AttemptTTL + time.Minute) / time.Second))
		c.MaxLength(MaxCookieBytes)
		j.codecs = append(j.codecs, c)
	}
	return j
}

// name returns the cookie name for state under key pair i.
func (j *attemptJar) name(i int, state string) string {
	return j.prefix + j.tag(i, state)
}

func (j *attemptJar) tag(i int, state string) string {
	mac := hmac.New(sha256.New, j.tagKey[i])
	mac.Write([]byte(state))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:attemptTagBytes])
}

// ours reports whether name is one of this jar's attempt cookie names: the
// prefix and a tag of exactly the right form. Another application's
// cookies (whose name merely starts with the prefix, such as those of a
// session cookie named <Name>-login-x) are never looked at, nor deleted.
func (j *attemptJar) ours(name string) bool {
	tag, ok := strings.CutPrefix(name, j.prefix)
	if !ok || len(tag) != base64.RawURLEncoding.EncodedLen(attemptTagBytes) {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (j *attemptJar) cookie(name, value string, maxAge int) *http.Cookie {
	o := &sessions.Options{
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   j.opt.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if j.opt.AttemptCrossSite {
		// The form_post callback is a cross-site POST, on which browsers
		// send only SameSite=None cookies, which they accept only when
		// Secure (http://localhost counts as secure in browsers).
		o.SameSite, o.Secure = http.SameSiteNoneMode, true
	}
	return sessions.NewCookie(name, value, o)
}

func (j *attemptJar) open(name, value string) (Attempt, bool) {
	var a Attempt
	for _, c := range j.codecs {
		if c.Decode(name, value, &a) == nil {
			return a, true
		}
	}
	return Attempt{}, false
}

func (j *attemptJar) fresh(a Attempt, now time.Time) bool {
	age := now.Sub(a.Started)
	return age < j.opt.AttemptTTL && age > -time.Minute
}

// carried is an attempt cookie a request brought.
type carried struct {
	name, value string
	started     time.Time // zero when unreadable or expired
	order       int       // position in the request
}

// carriedAttempts lists r's attempt cookies, each name once, at most
// maxCarried of them.
func (j *attemptJar) carriedAttempts(r *http.Request) []carried {
	var out []carried
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 && len(out) < maxCarried {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || !j.ours(k) || slices.ContainsFunc(out, func(c carried) bool { return c.name == k }) {
				continue
			}
			out = append(out, carried{name: k, value: v})
		}
	}
	return out
}

// StartAttempt writes the cookie of the login attempt a to w, and deletes in
// the same response the oldest attempt cookies r carried beyond
// MaxPending-1, together with any it cannot read or that expired, and
// more where needed to keep every attempt cookie together within the
// Cookie-header budget (see MaxCookieHeader). The session is not touched.
// It fails with an error wrapping pipaauth.ErrCookieTooLarge when a alone would
// not fit a cookie, and writes nothing then.
// For wiring only: applications use package pipaauth.
func (m *Manager) StartAttempt(w http.ResponseWriter, r *http.Request, a Attempt) error {
	j := m.attempts
	if len(a.ReturnTo) > MaxReturnToBytes {
		return fmt.Errorf("%w: a return path of %d bytes, more than %d", errs.ErrCookieTooLarge, len(a.ReturnTo), MaxReturnToBytes)
	}
	name := j.name(0, a.State)
	value, err := j.codecs[0].Encode(name, &a)
	if err != nil {
		return fmt.Errorf("session: sealing the login attempt: %w", err)
	}
	header := j.cookie(name, value, int(m.opt.AttemptTTL/time.Second)).String()
	budget := attemptBudget - m.tokenCookieBytes(r) - (len(name) + 1 + len(value) + len("; "))
	if len(header) > MaxCookieBytes || budget < 0 {
		return fmt.Errorf("%w: a login attempt cookie of %d bytes", errs.ErrCookieTooLarge, len(header))
	}
	now := m.now()
	cs := j.carriedAttempts(r)
	for i := range cs {
		if old, ok := j.open(cs[i].name, cs[i].value); ok && j.fresh(old, now) {
			cs[i].started = old.Started
		}
	}
	// Newest first, unreadable ones (zero time) last. Start times are in
	// seconds: between equals, the later in the header is the newer, as
	// browsers list cookies by creation time (RFC 6265, section 5.4).
	for i := range cs {
		cs[i].order = i
	}
	slices.SortFunc(cs, func(x, y carried) int {
		if c := y.started.Compare(x.started); c != 0 {
			return c
		}
		return y.order - x.order
	})
	kept := 0
	for _, c := range cs {
		size := len(c.name) + 1 + len(c.value) + len("; ")
		if c.name != name && !c.started.IsZero() && kept < j.max-1 && size <= budget {
			kept++
			budget -= size
			continue
		}
		if c.name != name {
			w.Header().Add("Set-Cookie", j.cookie(c.name, "", -1).String())
		}
	}
	w.Header().Add("Set-Cookie", header)
	return nil
}

// TakeAttempt returns the login attempt for state and deletes its cookie in
// w, whatever the cookie holds: an attempt is used at most once by a
// browser. It reports false when r carries no cookie for state, or one that
// is unreadable (tampered, sealed with unknown keys), holds another state or
// expired. The comparison of states runs in constant time.
// For wiring only: applications use package pipaauth.
func (m *Manager) TakeAttempt(w http.ResponseWriter, r *http.Request, state string) (Attempt, bool) {
	j := m.attempts
	if state == "" || len(state) > maxField {
		return Attempt{}, false
	}
	var found Attempt
	ok := false
	var seen []string
	names := make([]string, 0, 2*len(j.tagKey))
	for i := range j.tagKey {
		names = append(names, j.name(i, state))
		if j.legacy != "" {
			names = append(names, j.legacy+j.tag(i, state)) // started before the rename
		}
	}
	for _, name := range names {
		value, present := cookieValue(r.Header, name)
		if !present || slices.Contains(seen, name) { // two pairs may share a hash key
			continue
		}
		seen = append(seen, name)
		w.Header().Add("Set-Cookie", j.cookie(name, "", -1).String())
		if a, opened := j.open(name, value); opened && !ok && equal(a.State, state) && j.fresh(a, m.now()) {
			found, ok = a, true
		}
	}
	return found, ok
}

// attemptSerializer implements securecookie.Serializer for *Attempt.
//
// Format attemptV1: the version byte, then state, nonce, verifier and return
// path (each a uvarint length and the bytes) and the start time (a varint
// of Unix seconds). Format attemptV2 appends a step-up's max_age (a uvarint
// of whole seconds) and expected subject; it is written only for step-ups,
// and version 1 is still read (attempt cookies live 10 minutes, so that is
// for the attempts in flight during an upgrade). Format attemptV3 appends
// the login's DPoP key (PKCS#8 DER) to attemptV2; it is written only for
// logins with DPoP.
type attemptSerializer struct{}

func (attemptSerializer) Serialize(src any) ([]byte, error) {
	a, ok := src.(*Attempt)
	if !ok {
		return nil, fmt.Errorf("session: cannot serialize %T", src)
	}
	for _, f := range []string{a.State, a.Nonce, a.Verifier, a.Subject} {
		if len(f) > maxField {
			return nil, fmt.Errorf("session: an attempt field of %d bytes, more than %d", len(f), maxField)
		}
	}
	if len(a.ReturnTo) > MaxReturnToBytes {
		return nil, fmt.Errorf("session: a return path of %d bytes, more than %d", len(a.ReturnTo), MaxReturnToBytes)
	}
	b := make([]byte, 0, 16+len(a.State)+len(a.Nonce)+len(a.Verifier)+len(a.ReturnTo))
	if a.MaxAge < 0 || a.MaxAge%time.Second != 0 {
		return nil, fmt.Errorf("session: a step-up max_age of %v, not a whole, non-negative number of seconds", a.MaxAge)
	}
	if len(a.DPoPKey) > maxDPoPKey {
		return nil, fmt.Errorf("session: a DPoP key of %d bytes, more than %d", len(a.DPoPKey), maxDPoPKey)
	}
	version := byte(attemptV1)
	switch {
	case len(a.DPoPKey) > 0:
		version = attemptV3
	case a.MaxAge > 0 || a.Subject != "":
		version = attemptV2
	}
	b = append(b, version)
	b = appendString(b, a.State)
	b = appendString(b, a.Nonce)
	b = appendString(b, a.Verifier)
	b = appendString(b, a.ReturnTo)
	b = appendTime(b, a.Started)
	if version >= attemptV2 {
		b = binary.AppendUvarint(b, uint64(a.MaxAge/time.Second))
		b = appendString(b, a.Subject)
	}
	if version == attemptV3 {
		b = appendString(b, string(a.DPoPKey))
	}
	return b, nil
}

func (attemptSerializer) Deserialize(src []byte, dst any) error {
	a, ok := dst.(*Attempt)
	if !ok {
		return fmt.Errorf("session: cannot deserialize into %T", dst)
	}
	r := reader{b: src}
	version := r.byte()
	if version < attemptV1 || version > attemptV3 {
		return errAttemptFormat
	}
	*a = Attempt{
		State:    r.string(),
		Nonce:    r.string(),
		Verifier: r.string(),
		ReturnTo: r.stringMax(MaxReturnToBytes),
		Started:  r.time(),
	}
	if version >= attemptV2 {
		if secs := r.uvarint(); secs <= maxStepUpSeconds {
			a.MaxAge = time.Duration(secs) * time.Second
		} else {
			r.err = true
		}
		a.Subject = r.string()
	}
	if version == attemptV3 {
		if key := r.stringMax(maxDPoPKey); key != "" {
			a.DPoPKey = []byte(key)
		} else {
			r.err = true
		}
	}
	if r.err || len(r.b) != 0 || a.State == "" {
		*a = Attempt{}
		return errAttemptFormat
	}
	return nil
}
