package redisstore_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/rueidis"

	"github.com/pipaauth/pipaauth"
	"github.com/pipaauth/pipaauth/redisstore"
)

// Sessions in Redis for a fleet of instances: pipaauth detects the store's
// RevocableStore methods and serves guarded requests from rueidis's
// client-side cache.
func Example() {
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      []string{os.Getenv("REDIS_ADDR")},
		ConnWriteTimeout: time.Second,           // replace a silent connection within about a second
		RetryDelay:       redisstore.QuickRetry, // a refused connection is a 503 at once, not after SessionStoreTimeout
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{KeyPrefix: "myapp:"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.CheckServer(context.Background()); err != nil {
		log.Fatal(err) // for example maxmemory-policy is not noeviction
	}
	auth, err := pipaauth.New(context.Background(), pipaauth.Config{
		Issuer:       "https://pipa.example",
		ClientID:     os.Getenv("PIPA_CLIENT_ID"),
		ClientSecret: os.Getenv("PIPA_CLIENT_SECRET"),
		RedirectURL:  "https://app.example/callback",
		SessionKeys:  sessionKeys(), // seal the session id in the cookie
		SessionStore: store,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/callback", auth.CallbackHandler())
	mux.Handle("/logout", auth.LogoutHandler())
	mux.Handle("/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := pipaauth.UserFromContext(r.Context())
		w.Write([]byte("hello " + u.Email))
	})))
	log.Fatal(http.ListenAndServe(":8080", mux))
}

// Plain gorilla code can keep its sessions in the same Redis.
func ExampleStore_Get() {
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{os.Getenv("REDIS_ADDR")}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := redisstore.New(client, redisstore.Options{KeyPrefix: "cart:", KeyPairs: sessionKeys()})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, "cart")
		if err != nil {
			http.Error(w, "sessions are unavailable", http.StatusServiceUnavailable)
			return
		}
		n, _ := s.Values["items"].(int)
		s.Values["items"] = n + 1
		if err := s.Save(r, w); err != nil {
			http.Error(w, "sessions are unavailable", http.StatusServiceUnavailable)
		}
	})
}

// sessionKeys stands for keys loaded from a secret store: a 32- or 64-byte
// hash key and a 32-byte block key per pair.
func sessionKeys() [][]byte {
	return [][]byte{[]byte(os.Getenv("SESSION_HASH_KEY")), []byte(os.Getenv("SESSION_BLOCK_KEY"))}
}
