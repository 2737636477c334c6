package pipaauth

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// defaultCookieName is the session cookie's name when Config.CookieName is
// empty: DefaultCookieName, a dash and the first 12 hex digits of
// SHA-256(ClientID), so that two applications on one host (each with its
// own client id) keep their sessions and logins in flight apart, while two
// Auths with one ClientID (instances of one application) share them by
// design. The attempt cookies are named after it (<name>-login-<tag>).
func defaultCookieName(clientID string) string {
	sum := sha256.Sum256([]byte(clientID))
	return DefaultCookieName + "-" + hex.EncodeToString(sum[:6])
}

// cookieNames returns the session cookie's name and, with the default
// name, the one the main before it used (DefaultCookieName alone), which
// sessions are still read from and moved off on their next write. Secure
// cookies get the __Host- prefix.
func cookieNames(cfg *Config, defaulted, secure bool) (name, legacy string) {
	name = cfg.CookieName
	if defaulted {
		name, legacy = defaultCookieName(cfg.ClientID), DefaultCookieName
	}
	if secure {
		if !strings.HasPrefix(name, "__Host-") {
			name = "__Host-" + name
		}
		if legacy != "" {
			legacy = "__Host-" + legacy
		}
	}
	return name, legacy
}
