package devidp

import (
	"context"
	"html/template"
	"net/http"
	"sort"
	"strings"
)

// Paths of the provider's own pages (the OpenID endpoints are zitadel's).
const (
	pathLogin     = "/login"
	pathLoggedOut = "/logged-out"
)

// login is the development login page: pick or type a username, no password.
type login struct {
	store    *storage
	demo     bool
	callback func(ctx context.Context, authRequestID string) string
}

// serveHTTP shows the form (GET) or completes the sign-in (POST) and sends
// the browser back to the authorization endpoint's callback, which issues
// the code.
func (l *login) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		id := r.URL.Query().Get("authRequestID")
		if !l.store.authRequestExists(id) {
			l.render(w, http.StatusBadRequest, id, "This sign-in request is unknown or has expired; start again from the application.")
			return
		}
		l.render(w, http.StatusOK, id, "")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			l.render(w, http.StatusBadRequest, "", "The form could not be read.")
			return
		}
		id := r.PostForm.Get("id")
		username := strings.TrimSpace(r.PostForm.Get("username"))
		if err := l.store.completeLogin(id, username); err != nil {
			l.render(w, http.StatusUnauthorized, id, "Sign-in failed: "+err.Error()+".")
			return
		}
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// loginView is what the login template shows.
type loginView struct {
	ID    string
	Error string
	Demo  bool
	Users []userView
}

type userView struct {
	Username, Name, Org, Groups string
}

func (l *login) render(w http.ResponseWriter, status int, id, msg string) {
	v := loginView{ID: id, Error: msg, Demo: l.demo}
	if l.demo {
		for _, u := range l.store.userList() {
			v.Users = append(v.Users, userView{Username: u.Username, Name: u.Name, Org: u.Org, Groups: strings.Join(u.Groups, ", ")})
		}
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, v)
}

// setPageHeaders sets the security headers of the provider's HTML pages. No
// form-action directive: Chromium applies it to the redirect chain that ends
// at the relying party.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func sortUsers(us []User) {
	sort.Slice(us, func(i, j int) bool { return us[i].Username < us[j].Username })
}

const pageStyle = `<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1d2430}
.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6rem .8rem;border-radius:.3rem}
.err{background:#fde2e1;border:1px solid #c0392b;padding:.6rem .8rem;border-radius:.3rem}
form{margin:1rem 0}
button{font-size:1rem;padding:.5rem 1rem;cursor:pointer}
ul{list-style:none;padding:0} li{margin:.5rem 0}
.who{color:#555;font-size:.9rem;margin-left:.5rem}
</style>`

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — certdesk development identity provider</title>` + pageStyle + `</head>
<body><main>
<h1>Sign in</h1>
<p class="banner" role="note"><strong>Development identity provider.</strong> No passwords: anyone who can reach it can sign in as any user. Never use it in production.</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if .Demo}}
<h2>Demo users</h2>
<ul>
{{range .Users}}<li><form method="post" action="/login">
<input type="hidden" name="id" value="{{$.ID}}"><input type="hidden" name="username" value="{{.Username}}">
<button type="submit" id="login-{{.Username}}" data-username="{{.Username}}">Sign in as {{.Username}}</button>
<span class="who">{{.Name}}{{if .Org}} · organisation {{.Org}}{{end}}{{if .Groups}} · groups {{.Groups}}{{end}}</span>
</form></li>
{{end}}</ul>
<h2>Or another user</h2>
{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required>
<button type="submit" id="login-submit">Sign in</button>
</form>
</main></body></html>
`))

const loggedOutPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title>` + pageStyle +
	`</head><body><main><h1>Signed out</h1><p>You have been signed out of the development identity provider.</p></main></body></html>`
