package pipaauth

import (
	"crypto/hmac"
	"crypto/sha256"
)

// stateKeys derives, from each SessionKeys pair's hash key, the key that
// signs the start host and return path carried in a login's state (see
// callback/hoststate.go): a login started on another host name than
// RedirectURL's is then recognised at the callback, where its attempt
// cookie is missing. The first pair signs; every pair verifies, so key
// rotation works as for the cookies.
func stateKeys(pairs [][]byte) [][]byte {
	var keys [][]byte
	for i := 0; i+1 < len(pairs); i += 2 {
		m := hmac.New(sha256.New, pairs[i])
		m.Write([]byte("pipaauth login state v1"))
		keys = append(keys, m.Sum(nil))
	}
	return keys
}
