package httpx

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/exact":
			io.WriteString(w, strings.Repeat("x", MaxBody))
		case "/big":
			io.WriteString(w, strings.Repeat("x", MaxBody+1))
		case "/redirect":
			http.Redirect(w, r, "/exact", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	c := Client(nil)
	if c.Timeout != DefaultTimeout {
		t.Errorf("Timeout = %v, want %v", c.Timeout, DefaultTimeout)
	}
	read := func(path string) (int, error) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	if n, err := read("/exact"); err != nil || n != MaxBody {
		t.Errorf("a body of exactly MaxBody: %d bytes, %v", n, err)
	}
	if _, err := read("/big"); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("a body over MaxBody: %v, want ErrBodyTooLarge", err)
	}
	if _, err := read("/redirect"); err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("a redirect was followed: %v", err)
	}
}

func TestClientKeepsCallerSettings(t *testing.T) {
	jar := http.Client{Timeout: time.Second}
	c := Client(&jar)
	if c.Timeout != time.Second {
		t.Errorf("Timeout = %v, want the caller's 1s", c.Timeout)
	}
	if _, ok := c.Transport.(capped); !ok {
		t.Errorf("Transport %T is not capped", c.Transport)
	}
	if jar.Transport != nil || jar.CheckRedirect != nil {
		t.Error("Client changed the caller's client")
	}
}
