package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/web/devidp"
)

// authEnv is a relying party (echo with Auth) and the development provider,
// both on 127.0.0.1:0, over a real store (SQLite or PostgreSQL).
type authEnv struct {
	t     *testing.T
	rp    string // http://127.0.0.1:PORT
	idp   *devidp.Provider
	auth  *Auth
	store *models.Store
	clock *modelstest.Clock
}

// Test users beyond the demo ones.
var testUsers = append(devidp.DemoUsers(),
	devidp.User{Username: "nobody", Name: "No Body", Email: "nobody@example.org", Groups: []string{"staff"}},
	devidp.User{Username: "orphan", Name: "Or Phan", Email: "orphan@example.org", Groups: []string{"certdesk-partners"}},
	devidp.User{Username: "member", Name: "Mem Ber", Email: "member@globex.example", Groups: []string{"certdesk-partners"}},
	devidp.User{Username: "boss", Name: "Both Roles", Email: "boss@example.org", Org: "acme", Groups: []string{"certdesk-partners", "certdesk-admins"}},
	devidp.User{Username: "invitee", Name: "In Vitee", Email: "Invitee@Globex.example", Groups: []string{"certdesk-partners"}},
	devidp.User{Username: "unverified", Name: "Un Verified", Email: "invitee@globex.example", EmailUnverified: true, Groups: []string{"certdesk-partners"}},
)

// eachAuthEnv runs fn as a subtest per database driver, each with its own
// authEnv: sessions, logins and their audit events live in the store.
func eachAuthEnv(t *testing.T, fn func(t *testing.T, env *authEnv)) {
	t.Helper()
	modelstest.Each(t, func(t *testing.T, store *models.Store) { fn(t, newAuthEnv(t, store)) })
}

func newAuthEnv(t *testing.T, store *models.Store) *authEnv {
	t.Helper()
	return newAuthEnvWith(t, store, nil, nil)
}

// newAuthEnvWith is newAuthEnv with the provider's and the relying party's
// configuration changed by idpCfg and rpCfg (either may be nil).
func newAuthEnvWith(t *testing.T, store *models.Store, idpCfg func(*devidp.Config), rpCfg func(*AuthConfig)) *authEnv {
	t.Helper()
	ctx := t.Context()
	clock := modelstest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	store.Now = clock.Now

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := "http://" + ln.Addr().String()
	secret := "rp-secret-for-tests"
	icfg := devidp.Config{
		Users:   testUsers,
		Clients: []devidp.Client{{ID: "certdesk", Secret: secret, RedirectURIs: []string{rp + "/auth/callback"}, PostLogoutRedirectURIs: []string{rp + "/"}}},
	}
	if idpCfg != nil {
		idpCfg(&icfg)
	}
	idp, err := devidp.Start(ctx, icfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acfg := AuthConfig{
		OIDCConfig: OIDCConfig{Issuer: idp.Issuer, ClientID: "certdesk"}, ClientSecret: secret, RedirectURL: rp + "/auth/callback",
		SessionKey: []byte("0123456789abcdef0123456789abcdef"),
	}
	if rpCfg != nil {
		rpCfg(&acfg)
	}
	auth, err := NewAuth(ctx, acfg, store, log)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	auth.Now = clock.Now

	// The organisation and membership for the "member" user.
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	if err := store.CreateOrg(context.Background(), sys, &models.Organization{Slug: "globex", Name: "Globex", MaxValidityDays: 90}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetMembership(context.Background(), sys, "member", "globex"); err != nil {
		t.Fatal(err)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(log)
	e.Use(middleware.RequestID())
	auth.Register(e)
	api := e.Group("/api/v1", auth.Middleware(), auth.CSRF())
	anyRole := RequireRole(models.RolePartner, models.RoleAdmin, models.RoleAuditor)
	api.GET("/me", func(c echo.Context) error { return c.JSON(http.StatusOK, PrincipalFrom(c)) }, anyRole)
	api.POST("/thing", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, anyRole)
	api.DELETE("/thing", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, anyRole)
	api.GET("/admin", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, RequireRole(models.RoleAdmin))
	e.GET("/*", func(c echo.Context) error { return c.String(http.StatusOK, "app") })

	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &authEnv{t: t, rp: rp, idp: idp, auth: auth, store: store, clock: clock}
}

// browser returns a cookie-keeping client that does not follow redirects, so
// that each hop can be checked.
func (env *authEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (env *authEnv) do(c *http.Client, method, u string, body io.Reader, header http.Header) *http.Response {
	env.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		env.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		env.t.Fatalf("%s %s: %v", method, u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

func location(t *testing.T, resp *http.Response, want int) *url.URL {
	t.Helper()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, b)
	}
	// The raw header, not resolved against the request: "/x" must stay local.
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		t.Fatalf("%s: no usable Location: %v", resp.Request.URL, err)
	}
	return loc
}

// startLogin follows /auth/login to the provider's login page and returns
// the provider's auth request id.
func (env *authEnv) startLogin(c *http.Client, next string) string {
	env.t.Helper()
	u := env.rp + "/auth/login"
	if next != "" {
		u += "?next=" + url.QueryEscape(next)
	}
	authURL := location(env.t, env.do(c, http.MethodGet, u, nil, nil), http.StatusFound)
	if !strings.HasPrefix(authURL.String(), env.idp.Issuer) {
		env.t.Fatalf("/auth/login redirected to %s, want the provider %s", authURL, env.idp.Issuer)
	}
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		env.t.Fatalf("authorization request lacks PKCE S256, state or nonce: %s", authURL.RawQuery)
	}
	loginURL := location(env.t, env.do(c, http.MethodGet, authURL.String(), nil, nil), http.StatusFound)
	id := loginURL.Query().Get("authRequestID")
	if id == "" {
		env.t.Fatalf("provider redirected to %s, want its login page", loginURL)
	}
	return id
}

// idpLogin submits the provider's login form and returns the relying
// party's callback URL (with code and state) the provider redirects to.
func (env *authEnv) idpLogin(c *http.Client, id, username string) *url.URL {
	env.t.Helper()
	form := url.Values{"id": {id}, "username": {username}}
	next := location(env.t, env.do(c, http.MethodPost, env.idp.Issuer+"/login", strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}), http.StatusFound)
	cb := location(env.t, env.do(c, http.MethodGet, next.String(), nil, nil), http.StatusFound)
	if !strings.HasPrefix(cb.String(), env.rp+"/auth/callback") {
		env.t.Fatalf("provider redirected to %s, want the callback", cb)
	}
	return cb
}

// signIn runs the whole flow for username and returns the callback's answer.
func (env *authEnv) signIn(c *http.Client, username, next string) *http.Response {
	env.t.Helper()
	id := env.startLogin(c, next)
	cb := env.idpLogin(c, id, username)
	return env.do(c, http.MethodGet, cb.String(), nil, nil)
}

// me returns the status of GET /api/v1/me and the principal it reports.
func (env *authEnv) me(c *http.Client, header http.Header) (int, *Principal) {
	env.t.Helper()
	resp := env.do(c, http.MethodGet, env.rp+"/api/v1/me", nil, header)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var p Principal
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		env.t.Fatal(err)
	}
	return resp.StatusCode, &p
}

// cookie returns the named cookie of resp's Set-Cookie headers, or nil.
func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// jarCookie returns the value of a cookie the browser would send to u.
func jarCookie(c *http.Client, u, name string) string {
	pu, _ := url.Parse(u)
	for _, ck := range c.Jar.Cookies(pu) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// setJarCookie puts a cookie in the browser as a server would.
func setJarCookie(c *http.Client, u string, ck *http.Cookie) {
	pu, _ := url.Parse(u)
	c.Jar.SetCookies(pu, []*http.Cookie{ck})
}

// auditActions returns the actions of the audit events with action prefix
// "auth.", oldest first, with their detail.
func (env *authEnv) audit(action string) []models.AuditEvent {
	env.t.Helper()
	evs, _, err := env.store.ListAudit(context.Background(), models.AuditFilter{Action: action, Limit: 500})
	if err != nil {
		env.t.Fatal(err)
	}
	return evs
}

// sessionCount counts stored sessions.
func (env *authEnv) sessionCount() int64 {
	env.t.Helper()
	var n int64
	if err := env.store.DB().Model(&models.Session{}).Count(&n).Error; err != nil {
		env.t.Fatal(err)
	}
	return n
}

// isNotFound reports a store ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, models.ErrNotFound) }
