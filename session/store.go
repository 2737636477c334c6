package session

import (
	"errors"
	"net/http"
)

// storeBackend keeps the session in a gorilla sessions.Store.
type storeBackend struct{ opt Options }

func newStoreBackend(opt Options) *storeBackend { return &storeBackend{opt: opt} }

var errNotYet = errors.New("session: server-side stores are not implemented yet")

func (b *storeBackend) load(*http.Request) (*Data, error) { return nil, errNotYet }
func (b *storeBackend) save(http.ResponseWriter, *http.Request, *Data, *http.Cookie, bool) error {
	return errNotYet
}
func (b *storeBackend) clear(http.ResponseWriter, *http.Request) error { return errNotYet }
