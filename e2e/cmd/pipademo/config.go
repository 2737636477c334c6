package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// The environment variables that point the demo at a real PiPA. All five
// are needed; with none of them the demo runs its own embedded PiPA.
const (
	envIssuer       = "PIPA_ISSUER"
	envClientID     = "PIPA_CLIENT_ID"
	envClientSecret = "PIPA_CLIENT_SECRET"
	envRedirectURL  = "PIPA_REDIRECT_URL"
	envSessionKeys  = "PIPA_SESSION_KEYS"
	// envPostLogout is optional: the post-logout redirect URL registered in
	// the PiPA console. Without it PiPA shows its own page after logout.
	envPostLogout = "PIPA_POST_LOGOUT_REDIRECT_URL"
	// envAdmins lists admins by email, beside the admins group, when the
	// -admins flag is not given.
	envAdmins = "PIPADEMO_ADMINS"
)

// requiredEnv lists the variables a real PiPA needs, in the order they are
// reported.
var requiredEnv = []string{envIssuer, envClientID, envClientSecret, envRedirectURL, envSessionKeys}

// adminGroup is the group (the groups claim, Config.Claims) whose members
// may see /admin: the embedded PiPA's alice is in it, bob is not.
const adminGroup = "admins"

// pipaConfig is the configuration of a real PiPA, read from the environment.
type pipaConfig struct {
	Issuer                string
	ClientID              string
	ClientSecret          string
	RedirectURL           string
	PostLogoutRedirectURL string
	SessionKeys           [][]byte
	// InsecureAllowHTTP is set when RedirectURL is plain http on a loopback
	// host: local development against the real PiPA.
	InsecureAllowHTTP bool
}

// configError is a configuration mistake the user has to fix; main exits 2.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func badConfig(format string, a ...any) error {
	return &configError{fmt.Sprintf(format, a...)}
}

// pipaConfigFromEnv reads the PIPA_* variables. It returns nil and no error
// when none of the required ones is set: the demo then runs the embedded
// PiPA. Setting some but not all of them, or a malformed value, is an error
// naming the variable.
func pipaConfigFromEnv(getenv func(string) string) (*pipaConfig, error) {
	var set, missing []string
	for _, name := range requiredEnv {
		if strings.TrimSpace(getenv(name)) != "" {
			set = append(set, name)
		} else {
			missing = append(missing, name)
		}
	}
	if len(set) == 0 {
		if getenv(envPostLogout) != "" {
			return nil, badConfig("%s is set but %s is not: set all of %s to use a real PiPA, or none of them to run the embedded one",
				envPostLogout, missing[0], strings.Join(requiredEnv, ", "))
		}
		return nil, nil
	}
	if len(missing) > 0 {
		verb, verb2 := "is", "are"
		if len(missing) > 1 {
			verb = "are"
		}
		if len(set) == 1 {
			verb2 = "is"
		}
		return nil, badConfig("%s %s not set, but %s %s: set all of %s to use a real PiPA, or none of them to run the embedded one",
			strings.Join(missing, ", "), verb, strings.Join(set, ", "), verb2, strings.Join(requiredEnv, ", "))
	}

	c := &pipaConfig{
		Issuer:                strings.TrimSpace(getenv(envIssuer)),
		ClientID:              strings.TrimSpace(getenv(envClientID)),
		ClientSecret:          strings.TrimSpace(getenv(envClientSecret)),
		RedirectURL:           strings.TrimSpace(getenv(envRedirectURL)),
		PostLogoutRedirectURL: strings.TrimSpace(getenv(envPostLogout)),
	}
	if u, err := url.Parse(c.Issuer); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, badConfig("%s=%q is not an https URL: set it to PiPA's issuer URL, such as https://pipa.example", envIssuer, c.Issuer)
	}
	redirect, err := url.Parse(c.RedirectURL)
	if err != nil || redirect.Host == "" || redirect.User != nil || redirect.Fragment != "" || (redirect.Scheme != "https" && redirect.Scheme != "http") {
		return nil, badConfig("%s=%q is not an absolute URL: set it to this app's /callback URL as registered in the PiPA console, such as https://app.example/callback", envRedirectURL, c.RedirectURL)
	}
	if redirect.Scheme == "http" {
		if !isLoopback(redirect.Hostname()) {
			return nil, badConfig("%s=%q is plain http: use https (plain http is only allowed on localhost)", envRedirectURL, c.RedirectURL)
		}
		c.InsecureAllowHTTP = true
	}
	if redirect.Path != "/callback" {
		return nil, badConfig("%s=%q must end in /callback, where this app serves the login callback", envRedirectURL, c.RedirectURL)
	}
	if c.PostLogoutRedirectURL != "" {
		u, err := url.Parse(c.PostLogoutRedirectURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return nil, badConfig("%s=%q is not an absolute https URL", envPostLogout, c.PostLogoutRedirectURL)
		}
	}
	if c.SessionKeys, err = parseSessionKeys(getenv(envSessionKeys)); err != nil {
		return nil, badConfig("%s: %v", envSessionKeys, err)
	}
	return c, nil
}

// parseSessionKeys reads comma-separated base64 keys (standard or URL
// alphabet, padded or not) in pairs hash,block[,hash,block...].
func parseSessionKeys(s string) ([][]byte, error) {
	const how = "give comma-separated base64 keys in pairs hash,block (hash keys of 32 or more bytes, block keys of 16, 24 or 32 bytes; make one with `openssl rand -base64 32`)"
	parts := strings.Split(s, ",")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("has %d key(s), not pairs: %s", len(parts), how)
	}
	keys := make([][]byte, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("key %d is empty: %s", i+1, how)
		}
		k, err := decodeBase64(p)
		if err != nil {
			return nil, fmt.Errorf("key %d is not base64: %s", i+1, how)
		}
		if i%2 == 0 && len(k) < 32 {
			return nil, fmt.Errorf("key %d (a hash key) is %d bytes, fewer than 32: %s", i+1, len(k), how)
		}
		if i%2 == 1 && len(k) != 16 && len(k) != 24 && len(k) != 32 {
			return nil, fmt.Errorf("key %d (a block key) is %d bytes, not 16, 24 or 32: %s", i+1, len(k), how)
		}
		keys[i] = k
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// parseAdmins splits a comma-separated list of email addresses.
func parseAdmins(s string) ([]string, error) {
	var admins []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if strings.Count(a, "@") != 1 || strings.HasPrefix(a, "@") || strings.HasSuffix(a, "@") || strings.ContainsAny(a, " <>\"") {
			return nil, fmt.Errorf("%q is not an email address", a)
		}
		admins = append(admins, a)
	}
	if len(admins) == 0 {
		return nil, fmt.Errorf("the list is empty: name at least one admin email address")
	}
	return admins, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
