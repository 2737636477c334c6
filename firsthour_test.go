package pipaauth_test

// What `go doc` shows is the truth (issue 18, item 9): Config has no hidden
// fields, and RequireUser(nil) is a wiring mistake caught at wiring time.

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pipaauth/pipaauth"
)

func TestConfigHasNoUnexportedFields(t *testing.T) {
	typ := reflect.TypeFor[pipaauth.Config]()
	for f := range typ.Fields() {
		if !f.IsExported() {
			t.Errorf("Config has the unexported field %s: go doc hides it", f.Name)
		}
	}
}

func TestRequireUserNilPanicsAtWiring(t *testing.T) {
	h := newHarness(t, setup{})
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.HasPrefix(s, "pipaauth: RequireUser(nil)") {
			t.Errorf("RequireUser(nil) recovered %v, want a panic saying pipaauth: RequireUser(nil)", r)
		}
	}()
	h.app.auth.RequireUser(nil)
	t.Error("RequireUser(nil) returned")
}
