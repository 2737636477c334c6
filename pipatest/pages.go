package pipatest

import (
	"bytes"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const pageStyle = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:1.05rem;line-height:1.5;color:#1b1b1b;background:#f4f5f7;margin:0;padding:2rem 1rem}
main{max-width:30rem;margin:0 auto;background:#fff;border:1px solid #c9ccd1;border-radius:8px;padding:1.5rem 1.75rem}
h1{font-size:1.4rem;margin:0 0 1rem}
fieldset{border:1px solid #c9ccd1;border-radius:6px;margin:0 0 1rem;padding:.5rem 1rem}
legend{padding:0 .25rem;font-weight:600}
label{display:block;margin:.35rem 0}
.addr{color:#4a4f57}
input[type=email]{display:block;width:100%;box-sizing:border-box;margin:.25rem 0 1rem;padding:.45rem .5rem;font:inherit;border:1px solid #8a8f98;border-radius:4px}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem}
button{font:inherit;padding:.5rem 1.4rem;border-radius:6px;border:1px solid #4a4f57;background:#fff;color:#1b1b1b;cursor:pointer}
#approve{background:#1f5fbf;border-color:#1f5fbf;color:#fff}
:focus-visible{outline:3px solid #e8a200;outline-offset:2px}
.error{color:#9b1c1c;background:#fdecec;border:1px solid #f3b4b4;border-radius:4px;padding:.5rem .75rem}
.scopes{color:#4a4f57;font-size:.95rem}
code{font-size:.95em}
`

var consentTmpl = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PiPA — sign in</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>Sign in with PiPA</h1>
<p><strong>{{.ClientID}}</strong> asks you to sign in.</p>
<p class="scopes">Requested scopes: {{range $i, $s := .Scopes}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}</p>
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<form method="post" action="authorize">
{{- range .Hidden}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset>
<legend>Sign in as a test user</legend>
{{- range .Users}}
<label for="user-{{.Name}}"><input type="radio" id="user-{{.Name}}" name="user" value="{{.Name}}"{{if .Checked}} checked{{end}}> {{.Name}}{{with .Email}} <span class="addr">&lt;{{.}}&gt;</span>{{end}}</label>
{{- end}}
</fieldset>
<label for="email">Or sign in with another email address (overrides the choice above):</label>
<input type="email" id="email" name="email" value="{{.Email}}" autocomplete="email" placeholder="someone@example.com">
<label for="share-email"><input type="checkbox" id="share-email" name="share_email" value="on"{{if .Share}} checked{{end}}> Share my email address with <strong>{{.ClientID}}</strong></label>
<div class="buttons">
<button type="submit" id="approve" name="action" value="approve">Approve</button>
<button type="submit" id="deny" name="action" value="deny">Deny</button>
</div>
</form>
</main>
</body>
</html>
`))

var messageTmpl = template.Must(template.New("message").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PiPA — {{.Title}}</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<h1>{{.Heading}}</h1>
<p>{{.Message}}</p>
</main>
</body>
</html>
`))

type hiddenField struct{ Name, Value string }

type userChoice struct {
	Name, Email string
	Checked     bool
}

// setPageHeaders sets the headers of all HTML pages.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers apply it to the redirect after the form post.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

func render(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "pipatest: rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// page renders a small message page.
func (s *Server) page(w http.ResponseWriter, status int, title, message string) {
	heading := title
	if heading != "" {
		heading = strings.ToUpper(heading[:1]) + heading[1:]
	}
	render(w, status, messageTmpl, struct{ Title, Heading, Message string }{title, heading, message})
}

// consentPage renders the interactive login and consent page.
func (s *Server) consentPage(w http.ResponseWriter, status int, req authRequest, csrf, selected, email string, share bool, errMsg string) {
	v := req.values()
	var hidden []hiddenField
	for _, k := range authParams {
		if v.Has(k) {
			hidden = append(hidden, hiddenField{k, v.Get(k)})
		}
	}
	s.mu.Lock()
	var users []userChoice
	for _, u := range s.users {
		users = append(users, userChoice{Name: u.Name, Email: u.Email, Checked: u.Name == selected})
	}
	s.mu.Unlock()
	render(w, status, consentTmpl, struct {
		ClientID string
		Scopes   []string
		Error    string
		Hidden   []hiddenField
		CSRF     string
		Users    []userChoice
		Email    string
		Share    bool
	}{req.clientID, strings.Fields(req.scope), errMsg, hidden, csrf, users, email, share})
}

var formPostTmpl = template.Must(template.New("formpost").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PiPA — signing in</title>
<style>` + pageStyle + `</style>
</head>
<body>
<main>
<form method="post" action="{{.Action}}" id="response">
{{- range .Fields}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<noscript><p>Press Continue to finish signing in.</p><button type="submit">Continue</button></noscript>
</form>
</main>
<script nonce="{{.Nonce}}">document.getElementById("response").submit()</script>
</body>
</html>
`))

// formPostPage renders the page of OAuth 2.0 Form Post Response Mode: a
// form of params posted to action as soon as it loads.
func formPostPage(w http.ResponseWriter, action string, params url.Values) {
	var fields []hiddenField
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fields = append(fields, hiddenField{k, params.Get(k)})
	}
	nonce := randomToken()
	var buf bytes.Buffer
	if err := formPostTmpl.Execute(&buf, struct {
		Action any
		Fields []hiddenField
		Nonce  string
	}{template.URL(action), fields, nonce}); err != nil {
		http.Error(w, "pipatest: rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+nonce+"'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
