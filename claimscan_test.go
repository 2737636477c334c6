package pipaauth

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFindClaim(t *testing.T) {
	obj := `{"name":"Alice","groups":["admins","st\"aff",{"x":["]"]}],"n":1,"o":{"a":"}"},"esc\u0061ped":true,"nul":null}`
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"name", `"Alice"`, true},
		{"groups", `["admins","st\"aff",{"x":["]"]}]`, true},
		{"n", `1`, true},
		{"o", `{"a":"}"}`, true},
		{"escaped", `true`, true},
		{"nul", `null`, true},
		{"missing", "", false},
		{"Name", "", false},
	} {
		got, ok := findClaim(obj, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("findClaim(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	for _, bad := range []string{"", "{", "[]", `{"a"}`, `{"a":}`, `{"a":"x"`, `{"a":["x"}`, `{"a":1 "b":2}`, `{a:1}`, `"a"`, `{"a":"\"}`} {
		if v, ok := findClaim(bad, "b"); ok {
			t.Errorf("findClaim(%q, b) = %q, true; want not found", bad, v)
		}
	}
}

func TestAnyString(t *testing.T) {
	is := func(want string) func(string) bool { return func(s string) bool { return s == want } }
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{`"admins"`, true},
		{`"adm\u0069ns"`, true},
		{`["x","admins"]`, true},
		{`[ "x" , "admins" ]`, true},
		{`["x"]`, false},
		{`[]`, false},
		{`[1,null,{"admins":1},["admins"]]`, false},
		{`null`, false},
		{`1`, false},
		{`{"admins":"admins"}`, false},
		{`["admins"`, false},
	} {
		if got := anyString(tt.v, is("admins")); got != tt.want {
			t.Errorf("anyString(%s) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// findClaim agrees with encoding/json on valid objects without repeated
// members, and never panics.
func FuzzFindClaim(f *testing.F) {
	f.Add(`{"name":"Alice","groups":["a","b"]}`, "groups")
	f.Add(`{"a":{"b":[1,"]",{"c":"}"}]},"b":"x"}`, "b")
	f.Add(`{"k\"ey":1}`, "k\"ey")
	f.Fuzz(func(t *testing.T, obj, name string) {
		got, ok := findClaim(obj, name)
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(obj), &m) != nil || !uniqueMembers(obj, len(m)) {
			return
		}
		want, wantOK := m[name]
		if ok != wantOK {
			t.Fatalf("findClaim(%q, %q) found=%v, encoding/json %v", obj, name, ok, wantOK)
		}
		if ok && !json.Valid([]byte(got)) {
			t.Fatalf("findClaim(%q, %q) = %q, not a JSON value (encoding/json: %s)", obj, name, got, want)
		}
	})
}

// uniqueMembers reports whether obj has n members at its top level.
func uniqueMembers(obj string, n int) bool {
	dec := json.NewDecoder(strings.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		return false
	}
	count := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return false
		}
		count++
	}
	return count == n
}

// BenchmarkAllowClaim is the rule alone, on a user with a name and ten
// groups, matching the last group (the whole array is read).
func BenchmarkAllowClaim(b *testing.B) {
	u := User{ID: "u", claims: `{"name":"Alice Liddell","groups":["group-00","group-01","group-02","group-03","group-04","group-05","group-06","group-07","group-08","group-09"]}`}
	rule := AllowClaim("groups", "group-09")
	b.ReportAllocs()
	for b.Loop() {
		if !rule(u) {
			b.Fatal("rule refused")
		}
	}
}
