package devstack

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginPage is the OP's sign-in form. The library has no login UI: it
// redirects the browser here with the auth request id, and expects to be
// sent back to its callback once the user is authenticated.
const loginPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · dev identity provider</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);width:20rem}
h1{margin:0 0 .25rem;font-size:1.4rem}
.sub{margin:0 0 1.25rem;color:#666;font-size:.9rem}
label{display:block;margin:.75rem 0 .25rem;font-size:.9rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;font-size:1rem;background:#2457d6;color:#fff;border:0;border-radius:4px;cursor:pointer}
.error{background:#fdecea;color:#a4281c;padding:.6rem .75rem;border-radius:4px}
.hint{margin-top:1.25rem;color:#555;font-size:.85rem}
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
<p class="sub">Development identity provider</p>
{{if .Error}}<p class="error" role="alert" id="login-error">{{.Error}}</p>
{{end}}<form method="post" action="{{.Action}}" id="login-form">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{if .Users}}<p class="hint">Demo accounts: {{range $i, $u := .Users}}{{if $i}}, {{end}}<code>{{$u.Username}}</code> / <code>{{$u.Password}}</code>{{end}}</p>
{{end}}</main>
</body>
</html>
`

// loginForm serves the sign-in form of one OP.
type loginForm struct {
	op            *OP
	showPasswords bool // only for the built-in demo users, whose passwords are public
	users         []User
	tmpl          *template.Template
}

type loginData struct {
	Action, ID, Username, Error string
	Users                       []User
}

func (f *loginForm) render(w http.ResponseWriter, status int, d loginData) {
	if f.showPasswords {
		d.Users = f.users
	}
	d.Action = f.op.prefix + loginPath
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No form-action: browsers apply it to the redirects after the POST,
	// which end at the client's redirect_uri on another origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = f.tmpl.Execute(w, d)
}

func (f *loginForm) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, err := f.op.storage.AuthRequestByID(r.Context(), id); err != nil {
		f.render(w, http.StatusBadRequest, loginData{ID: id, Error: "This sign-in request is unknown or has expired. Start again from the application."})
		return
	}
	f.render(w, http.StatusOK, loginData{ID: id})
}

func (f *loginForm) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot parse form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("authRequestID")
	username := r.PostForm.Get("username")
	if _, err := f.op.storage.AuthRequestByID(r.Context(), id); err != nil {
		f.render(w, http.StatusBadRequest, loginData{ID: id, Username: username, Error: "This sign-in request is unknown or has expired. Start again from the application."})
		return
	}
	if err := f.op.storage.CheckUsernamePassword(username, r.PostForm.Get("password"), id); err != nil {
		f.render(w, http.StatusOK, loginData{ID: id, Username: username, Error: "Wrong username or password."})
		return
	}
	f.rememberBrowser(w, r, id)
	// Back to the library, which answers the client with the code.
	http.Redirect(w, r, op.AuthCallbackURL(f.op.provider)(r.Context(), id), http.StatusFound)
}

// LoginError is returned by Login when the OP did not let the user in: a
// wrong password, an invalid authorization request, an unexpected page.
type LoginError struct {
	StatusCode int    // status of the OP's last response
	Message    string // the error shown on the OP's page, or the start of its body
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("devstack: login failed (HTTP %d): %s", e.StatusCode, e.Message)
}

// Login signs a user in the way a browser would, for tests and scripted
// demos. authorizeURL is where the BFF's login redirected to. Login fetches
// it, follows the OP's redirects to the login form, submits the form with
// the credentials, and follows the OP's redirects until one points outside
// the OP. It returns that response (normally a 302 to the client's
// redirect_uri with code and state) without following it; the caller closes
// its body.
//
// The client's cookie jar is used; its redirect policy is not (Login follows
// redirects itself, on a copy of the client). When the OP refuses the login
// or shows an error page, Login returns a *LoginError.
func (o *OP) Login(ctx context.Context, c *http.Client, authorizeURL, username, password string) (*http.Response, error) {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	resp, err := o.get(ctx, &cc, authorizeURL)
	if err != nil {
		return nil, err
	}
	resp, left, err := o.followWithinOP(ctx, &cc, resp)
	if err != nil || left {
		return resp, err
	}
	body, err := readAndClose(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &LoginError{StatusCode: resp.StatusCode, Message: pageError(body)}
	}
	action, id, ok := parseLoginForm(body)
	if !ok {
		return nil, &LoginError{StatusCode: resp.StatusCode, Message: "no login form on page: " + pageError(body)}
	}
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("devstack: login form action %q: %w", action, err)
	}
	form := url.Values{"authRequestID": {id}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err = cc.Do(req)
	if err != nil {
		return nil, err
	}
	resp, left, err = o.followWithinOP(ctx, &cc, resp)
	if err != nil || left {
		return resp, err
	}
	body, err = readAndClose(resp)
	if err != nil {
		return nil, err
	}
	return nil, &LoginError{StatusCode: resp.StatusCode, Message: pageError(body)}
}

func (o *OP) get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	return c.Do(req)
}

// followWithinOP follows redirects while they stay at the OP. It returns the
// first response that is not a redirect (left=false), or the first redirect
// that leaves the OP (left=true).
func (o *OP) followWithinOP(ctx context.Context, c *http.Client, resp *http.Response) (*http.Response, bool, error) {
	for hops := 0; ; hops++ {
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
			http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return resp, false, nil
		}
		loc, err := resp.Location()
		if err != nil {
			_, _ = readAndClose(resp)
			return nil, false, fmt.Errorf("devstack: redirect without a usable Location: %w", err)
		}
		if !o.owns(loc) {
			return resp, true, nil
		}
		_, _ = readAndClose(resp)
		if hops >= 10 {
			return nil, false, fmt.Errorf("devstack: too many redirects at the OP (last to %s)", loc.Redacted())
		}
		if resp, err = o.get(ctx, c, loc.String()); err != nil {
			return nil, false, err
		}
	}
}

// owns reports whether u is served by this OP: same origin as the issuer,
// and under the issuer's path when it has one.
func (o *OP) owns(u *url.URL) bool {
	iss, err := url.Parse(o.issuer)
	if err != nil {
		return false
	}
	if !strings.EqualFold(u.Scheme, iss.Scheme) || !strings.EqualFold(u.Host, iss.Host) {
		return false
	}
	return o.prefix == "" || u.Path == o.prefix || strings.HasPrefix(u.Path, o.prefix+"/")
}

func readAndClose(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// parseLoginForm finds the form's action and the auth request id in the
// login page. The page is ours, so two patterns suffice.
func parseLoginForm(body []byte) (action, id string, ok bool) {
	a := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindSubmatch(body)
	i := regexp.MustCompile(`name="authRequestID" value="([^"]*)"`).FindSubmatch(body)
	if a == nil || i == nil {
		return "", "", false
	}
	return html.UnescapeString(string(a[1])), html.UnescapeString(string(i[1])), true
}

// pageError extracts the error message of an OP page: the login form's
// alert, or else the start of the body (the library's error pages are
// plain text or JSON).
func pageError(body []byte) string {
	if m := regexp.MustCompile(`id="login-error">([^<]*)<`).FindSubmatch(body); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
