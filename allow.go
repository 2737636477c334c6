package pipaauth

import "strings"

// AllowEmails returns an allow function for RequireUser that admits users
// whose verified email is one of emails, compared case-insensitively.
// Unverified addresses and addresses with more than one @ are refused.
func AllowEmails(emails ...string) func(User) bool {
	set := make(map[string]bool, len(emails))
	for _, e := range emails {
		set[asciiLower(strings.TrimSpace(e))] = true
	}
	return func(u User) bool {
		return u.EmailVerified && strings.Count(u.Email, "@") == 1 && set[asciiLower(u.Email)]
	}
}

// AllowEmailDomains returns an allow function for RequireUser that admits
// users whose verified email is in one of domains exactly (not a subdomain),
// compared case-insensitively. Unverified addresses and addresses with more
// than one @ are refused.
func AllowEmailDomains(domains ...string) func(User) bool {
	set := make(map[string]bool, len(domains))
	for _, d := range domains {
		if d = asciiLower(strings.TrimPrefix(strings.TrimSpace(d), "@")); d != "" {
			set[d] = true
		}
	}
	return func(u User) bool {
		local, domain, ok := strings.Cut(u.Email, "@")
		return ok && u.EmailVerified && local != "" && !strings.Contains(domain, "@") && set[asciiLower(domain)]
	}
}

// AllowUserIDs returns an allow function for RequireUser that admits the
// given PiPA user ids (User.ID, which is specific to this integration).
func AllowUserIDs(ids ...string) func(User) bool {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return func(u User) bool { return u.ID != "" && set[u.ID] }
}

// asciiLower lowercases ASCII letters only: full Unicode case mapping would
// let look-alikes such as U+212A KELVIN SIGN match a "k" in an allow list.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
