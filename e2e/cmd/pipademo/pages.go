package main

import "html/template"

// pages holds the demo's HTML: "home", "admin", "sessions" and "error", each filled
// with a pageData.
var pages = template.Must(template.New("pages").Parse(`
{{define "top"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:1.05rem;line-height:1.5;color:#1b1b1b;background:#f4f5f7;margin:0}
header{background:#17324d;color:#fff;padding:.75rem 1.25rem;display:flex;align-items:center;gap:1.25rem;flex-wrap:wrap}
header .brand{font-weight:700;font-size:1.15rem;color:#fff;text-decoration:none}
header nav{display:flex;gap:1rem;flex:1}
header nav a{color:#d6e4f5}
header .who{color:#d6e4f5;font-size:.95rem}
header form{margin:0}
main{max-width:40rem;margin:2rem auto;background:#fff;border:1px solid #c9ccd1;border-radius:8px;padding:1.5rem 1.75rem}
h1{font-size:1.45rem;margin:0 0 1rem}
a{color:#1f5fbf}
code{font-size:.92em;background:#eef0f3;padding:.05rem .3rem;border-radius:3px}
#user-id{word-break:break-all}
button,.button{margin-right:.75rem;font:inherit;font-size:.95rem;padding:.4rem 1.1rem;border-radius:6px;border:1px solid #4a4f57;background:#fff;color:#1b1b1b;cursor:pointer;text-decoration:none;display:inline-block}
.primary{background:#1f5fbf;border-color:#1f5fbf;color:#fff}
header button{border-color:#d6e4f5;background:transparent;color:#fff;margin:0}
header .button{margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0 0 1rem}
dt{color:#4a4f57}
dd{margin:0}
.muted{color:#4a4f57}
.notice{background:#fdf6e3;border:1px solid #e8d48a;border-radius:4px;padding:.5rem .75rem}
table{border-collapse:collapse;margin:0 0 1rem}
th,td{text-align:left;padding:.2rem .9rem .2rem 0;border-bottom:1px solid #e1e3e6}
td.n{text-align:right}
:focus-visible{outline:3px solid #e8a200;outline-offset:2px}
</style>
</head>
<body>
<header>
<a class="brand" href="/">pipademo</a>
<nav><a href="/">Home</a><a href="/me">Me</a><a href="/admin">Admin</a><a href="/sessions" id="nav-sessions">Signed in on</a><a href="/api/me">/api/me</a><a href="/metrics">/metrics</a></nav>
{{with .User}}<span class="who">{{.Name}}</span>
<form method="post" action="/logout"><button type="submit" id="logout">Log out</button></form>
{{else}}<a class="button primary" id="login-top" href="/login?return_to=/">Log in</a>{{end}}
</header>
<main>
{{end}}

{{define "bottom"}}{{with .Clock}}{{with .Ahead}}<p class="muted" id="clock-ahead">The demo's clock (this app's and the embedded PiPA's) is {{.}} ahead of this machine's: times shown are by that clock.</p>
{{end}}{{end}}</main>
</body>
</html>
{{end}}

{{define "userinfo"}}<dl>
<dt>Name</dt><dd id="user-name">{{if .FullName}}{{.FullName}}{{else}}(no name claim){{end}}</dd>
<dt>Groups</dt><dd id="user-groups">{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{else}}(none){{end}}</dd>
<dt>Email</dt><dd id="user-email">{{if .Email}}{{.Email}}{{if not .EmailVerified}} (not verified){{end}}{{else}}(email not shared){{end}}</dd>
<dt>User id</dt><dd><code id="user-id">{{.ID}}</code></dd>
<dt>Signed in at PiPA</dt><dd><time id="auth-time" datetime="{{.AuthTimeAttr}}">{{.SignedIn}}</time></dd>
</dl>{{end}}

{{define "home"}}{{template "top" .}}
<h1>pipademo</h1>
<p>This small app logs you in with PiPA through the <code>pipaauth</code> Go package.</p>
{{with .User}}
<p id="status">You are logged in.</p>
{{template "userinfo" .}}
<form method="post" action="/logout"><button type="submit" id="logout-main">Log out</button></form>
{{else}}
{{if eq .LoggedOut "pipa"}}<p class="notice" id="logged-out">You have logged out of pipademo and of PiPA.</p>
{{else if eq .LoggedOut "app"}}<p class="notice" id="logged-out">You have logged out of pipademo.</p>{{end}}
<p id="status">You are not logged in.</p>
<p><a class="button primary" id="login" href="/login?return_to=/">Log in</a></p>
{{end}}
<h2>Try it</h2>
<ul>
<li><a href="/me">/me</a>: your name and groups, as PiPA sent them (<code>Config.Claims</code>).</li>
<li><a href="/admin">/admin</a>: only for the admins group (<code>AllowClaim</code>: alice is in it, bob is not){{with .Admins}} and {{range $i, $a := .}}{{if $i}}, {{end}}{{$a}}{{end}} (verified email){{end}}, and only with a sign-in at PiPA within the last {{.AdminMaxAge}} (<code>RequireRecentLogin</code>).</li>
<li><a href="/sessions">Signed in on</a>: the devices you are signed in on, and a way to sign the others out.</li>
<li><a href="/api/me">/api/me</a>: who you are, as JSON. Without a session an API client gets <code>401</code> with a <code>login_url</code>.</li>
<li><a href="/metrics">/metrics</a>: the counts below, as Prometheus text.</li>
</ul>
{{with .Clock}}<h2>See step-up without waiting</h2>
<p>After {{$.AdminMaxAge}} (plus {{$.ClockSkew}} allowed for clock differences), opening /admin sends you back to PiPA to sign in again (<code>max_age</code>), and the app accepts only an ID token whose <code>auth_time</code> is that recent. Rather than wait, move the demo's clock ahead: it is shared by this app and the embedded PiPA, so both see the sign-in as {{.Step}} older. It only goes forward, for everyone using this demo, until it restarts.</p>
<form method="post" action="/demo/clock"><button type="submit" id="advance-clock">Move the clock {{.Step}} ahead</button></form>
{{end}}<h2>Events</h2>
{{with .Events}}<table id="events">
<thead><tr><th>Kind</th><th>Reason</th><th>Count</th></tr></thead>
<tbody>{{range .}}<tr><td>{{.Kind}}</td><td>{{if .Reason}}{{.Reason}}{{else}}<span class="muted">(success)</span>{{end}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</tbody>
</table>{{else}}<p id="events-none" class="muted">No logins, logouts or failures yet.</p>{{end}}
<p class="muted">Counted with <code>Config.OnEvent</code>; events never hold a code, token or secret.</p>
{{template "bottom" .}}{{end}}

{{define "admin"}}{{template "top" .}}
<h1>Admin</h1>
<p id="welcome">Welcome, {{.User.Name}}. Only admins see this page.</p>
{{template "userinfo" .User}}
<p class="notice" id="step-up-rule">This page needs a sign-in at PiPA within the last {{.AdminMaxAge}}. You signed in {{if .User.AuthTime.IsZero}}at an unknown time{{else}}{{.User.Ago}} ago{{end}}; once that is more than {{.AdminMaxAge}} (plus {{.ClockSkew}} allowed for clock differences), opening this page sends you to PiPA to sign in again.</p>
<p class="muted">Admins: the admins group{{with .Admins}}, and {{range $i, $a := .}}{{if $i}}, {{end}}{{$a}}{{end}}{{end}}.</p>
{{template "bottom" .}}{{end}}

{{define "me"}}{{template "top" .}}
<h1>Me</h1>
<p id="me-intro">What this app keeps about you: your PiPA identity, and the name and groups claims it asks for.</p>
{{template "userinfo" .User}}
{{template "bottom" .}}{{end}}

{{define "sessions"}}{{template "top" .}}
<h1>Signed in on</h1>
{{with .Ended}}<p class="notice" id="ended">Signed out {{.}}.</p>{{end}}
<p>You ({{.User.Name}}) are signed in to pipademo on these devices, most recent sign-in first. Signing a device out ends its session at once, everywhere.</p>
<table id="sessions">
<thead><tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr></thead>
<tbody>{{range .Sessions}}<tr class="session{{if .Current}} current{{end}}">
<td><span class="device">{{.Device}}</span>{{if .Current}} <strong id="this-device">(this device)</strong>{{end}}<br><span class="muted ua">{{.UserAgent}}</span></td>
<td>{{.LoginAt}}</td><td>{{.LastSeen}}</td>
<td>{{if not .Current}}<form method="post" action="/sessions/end"><input type="hidden" name="id" value="{{.ID}}"><button type="submit" class="end-session">Sign out</button></form>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{if gt (len .Sessions) 1}}<form method="post" action="/sessions/end-others"><button type="submit" id="end-others">Sign out all other devices</button></form>{{else}}<p class="muted" id="only-device">This is the only device signed in.</p>{{end}}
{{template "bottom" .}}{{end}}

{{define "error"}}{{template "top" .}}
<h1 id="error-heading">{{.Heading}}</h1>
<p id="error-message">{{.Message}}</p>
{{if .NotAllowedAs}}<p class="notice" id="logged-in-as">You are logged in as {{if .User.Email}}<strong>{{.User.Email}}</strong>{{else}}user <code>{{.User.ID}}</code>, without sharing your email address{{end}}. To see this page, log out and log in as a member of the admins group.</p>
<form method="post" action="/logout"><button type="submit" class="primary" id="switch-account">Log out and use another account</button></form>{{end}}
{{if .StepUpKept}}<p class="notice" id="session-kept">You are still logged in as {{.User.Name}}, as before: a refused sign-in changes nothing here.</p>{{end}}
<p>{{with .Retry}}<a class="button primary" id="try-again" href="{{.}}">Try again</a> {{end}}<a href="/">Back to the home page</a></p>
{{template "bottom" .}}{{end}}
`))
