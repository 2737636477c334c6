package callback

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string // substring of the error; "" for success
		state   string
		code    string
		errCode string
		errDesc string
	}{
		{name: "code", raw: "state=s&code=c", state: "s", code: "c"},
		{name: "with iss", raw: "state=s&code=c&iss=https%3A%2F%2Fpipa.example", state: "s", code: "c"},
		{name: "repeated state", raw: "state=s&state=t&code=c", wantErr: `"state" given 2 times`},
		{name: "repeated code", raw: "state=s&code=c&code=d", wantErr: `"code" given 2 times`},
		{name: "repeated unknown parameter", raw: "state=s&code=c&x=1&x=2", wantErr: `"x" given 2 times`},
		{name: "bad escape", raw: "state=%zz&code=c", wantErr: "query string"},
		{name: "semicolon", raw: "state=s;code=c", wantErr: "query string"},
		{name: "too long", raw: "state=s&code=" + strings.Repeat("c", maxQuery), wantErr: "bytes"},
		{name: "provider error", raw: "state=s&error=access_denied&error_description=User+said+no", state: "s", errCode: "access_denied", errDesc: "User said no"},
		{name: "error and code", raw: "state=s&error=access_denied&code=c", wantErr: "both code and error"},
		{name: "empty error", raw: "state=s&error=", wantErr: "error parameter"},
		{name: "error with markup quote", raw: `state=s&error=%22%3E%3Cscript%3E`, wantErr: "error parameter"},
		{name: "error with newline", raw: "state=s&error=a%0Ab", wantErr: "error parameter"},
		{name: "error too long", raw: "state=s&error=" + strings.Repeat("e", 65), wantErr: "error parameter"},
		{name: "hostile description dropped", raw: "state=s&error=server_error&error_description=%0Aevil", state: "s", errCode: "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := parseQuery(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseQuery(%q) error = %v, want one containing %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseQuery(%q): %v", tt.raw, err)
			}
			if q.state != tt.state || q.code != tt.code {
				t.Errorf("state, code = %q, %q; want %q, %q", q.state, q.code, tt.state, tt.code)
			}
			gotCode, gotDesc := "", ""
			if q.err != nil {
				gotCode, gotDesc = q.err.Code, q.err.Description
			}
			if gotCode != tt.errCode || gotDesc != tt.errDesc {
				t.Errorf("provider error = %q, %q; want %q, %q", gotCode, gotDesc, tt.errCode, tt.errDesc)
			}
		})
	}
}

// FuzzParseQuery checks that parseQuery never panics and that whatever it
// accepts is unambiguous: no parameter appears twice, and a provider error
// code is printable RFC 6749 text.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"state=s&code=c", "state=s&state=t", "error=access_denied&state=s", "code=%zz", "a=1;b=2",
		"error=x&code=y", "state=&code=", "iss=https%3A%2F%2Fx&state=s&code=c", "error=%00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			return
		}
		v, perr := url.ParseQuery(raw)
		if perr != nil {
			t.Fatalf("accepted %q, which url.ParseQuery refuses: %v", raw, perr)
		}
		for k, vs := range v {
			if len(vs) > 1 {
				t.Fatalf("accepted %q with %q repeated", raw, k)
			}
		}
		if q.err != nil {
			if q.code != "" || q.err.Code == "" || !errorChars(q.err.Code) || !errorChars(q.err.Description) {
				t.Fatalf("accepted provider error %+v from %q", q.err, raw)
			}
		}
	})
}
