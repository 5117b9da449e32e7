package devidp

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testClientID     = "certdesk"
	testClientSecret = "s3cret-for-tests"
	testRedirect     = "http://127.0.0.1:1/auth/callback" // never dialled: the test stops at the redirect
	testPostLogout   = "http://127.0.0.1:1/"
)

func startTestProvider(t *testing.T, demo bool) *Provider {
	t.Helper()
	p, err := Start(t.Context(), Config{
		Addr:    "127.0.0.1:0",
		Users:   DemoUsers(),
		Clients: []Client{{ID: testClientID, Secret: testClientSecret, RedirectURIs: []string{testRedirect}, PostLogoutRedirectURIs: []string{testPostLogout}}},
		Demo:    demo,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// noFollow is an HTTP client that returns redirects instead of following them.
func noFollow() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn drives the authorization endpoint and the login form as a browser
// would and returns the relying party callback URL the provider redirects to.
func signIn(t *testing.T, issuer, authURL, username string) *url.URL {
	t.Helper()
	c := noFollow()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want 302 to the login page", resp.StatusCode)
	}
	loginURL, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize redirect: %v", err)
	}
	id := loginURL.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("authorize redirected to %s, want the login page", loginURL)
	}
	page := get(t, c, loginURL.String(), http.StatusOK)
	if !strings.Contains(page, `name="username"`) {
		t.Fatalf("login page has no username field:\n%s", page)
	}
	resp, err = c.PostForm(issuer+"/login", url.Values{"id": {id}, "username": {username}})
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login answered %d, want 302", resp.StatusCode)
	}
	next, _ := resp.Location()
	resp, err = c.Get(next.String())
	if err != nil {
		t.Fatalf("GET authorize callback: %v", err)
	}
	resp.Body.Close()
	cb, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize callback answered %d without a redirect", resp.StatusCode)
	}
	if !strings.HasPrefix(cb.String(), testRedirect) {
		t.Fatalf("redirected to %s, want %s", cb, testRedirect)
	}
	return cb
}

func get(t *testing.T, c *http.Client, u string, want int) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", u, resp.StatusCode, want, b)
	}
	return string(b)
}

type claims struct {
	Name   string   `json:"name"`
	Email  string   `json:"email"`
	Groups []string `json:"groups"`
	Org    string   `json:"org"`
	Nonce  string   `json:"nonce"`
}

func TestProvider_CodeFlowWithPKCE_IssuesVerifiableTokensWithGroupsAndOrg(t *testing.T) {
	p := startTestProvider(t, false)
	if !strings.HasPrefix(p.Issuer, "http://127.0.0.1:") {
		t.Fatalf("issuer %q, want http://127.0.0.1:PORT", p.Issuer)
	}
	ctx := t.Context()
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var disco struct {
		EndSession string   `json:"end_session_endpoint"`
		Challenge  []string `json:"code_challenge_methods_supported"`
	}
	if err := op.Claims(&disco); err != nil {
		t.Fatal(err)
	}
	if disco.EndSession == "" {
		t.Errorf("discovery has no end_session_endpoint")
	}
	conf := oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: op.Endpoint(), RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	verifier := oauth2.GenerateVerifier()

	tests := []struct {
		user       string
		wantOrg    string
		wantGroups string
	}{
		{"partner", "acme", "certdesk-partners"},
		{"admin", "", "certdesk-admins"},
		{"auditor", "", "certdesk-auditors"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			cb := signIn(t, p.Issuer, conf.AuthCodeURL("st-"+tt.user, oidc.Nonce("n-"+tt.user), oauth2.S256ChallengeOption(verifier)), tt.user)
			if got := cb.Query().Get("state"); got != "st-"+tt.user {
				t.Fatalf("state %q, want %q", got, "st-"+tt.user)
			}
			code := cb.Query().Get("code")
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := op.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, raw)
			if err != nil {
				t.Fatalf("verify ID token: %v", err)
			}
			var c claims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if idt.Subject != tt.user || c.Org != tt.wantOrg || strings.Join(c.Groups, ",") != tt.wantGroups || c.Nonce != "n-"+tt.user || c.Name == "" || c.Email == "" {
				t.Errorf("ID token sub=%q claims=%+v, want sub %q org %q groups %q nonce n-%s with name and email", idt.Subject, c, tt.user, tt.wantOrg, tt.wantGroups, tt.user)
			}
			ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var uc claims
			if err := ui.Claims(&uc); err != nil {
				t.Fatal(err)
			}
			if uc.Org != tt.wantOrg || strings.Join(uc.Groups, ",") != tt.wantGroups || uc.Email == "" {
				t.Errorf("userinfo claims %+v, want org %q groups %q", uc, tt.wantOrg, tt.wantGroups)
			}
			// RFC 6749 §4.1.2: the code is single use.
			if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
				t.Errorf("second exchange of the same code succeeded")
			}
		})
	}
}

func TestProvider_Refuses(t *testing.T) {
	p := startTestProvider(t, false)
	ctx := t.Context()
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: op.Endpoint(), RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()

	t.Run("an authorization request without PKCE", func(t *testing.T) {
		resp, err := noFollow().Get(conf.AuthCodeURL("s"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
			t.Fatalf("status %d location %v, want a redirect with error=invalid_request and no code", resp.StatusCode, loc)
		}
	})
	t.Run("a plain PKCE challenge", func(t *testing.T) {
		resp, err := noFollow().Get(conf.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		if loc == nil || loc.Query().Get("error") == "" {
			t.Fatalf("status %d location %v, want an error redirect", resp.StatusCode, loc)
		}
	})
	t.Run("a code exchange with the wrong verifier", func(t *testing.T) {
		cb := signIn(t, p.Issuer, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "partner")
		if _, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
			t.Fatal("exchange with a wrong code_verifier succeeded")
		}
	})
	t.Run("a code exchange with the wrong client secret", func(t *testing.T) {
		cb := signIn(t, p.Issuer, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "partner")
		bad := conf
		bad.ClientSecret = "wrong"
		if _, err := bad.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("exchange with a wrong client secret succeeded")
		}
	})
	t.Run("an unknown user", func(t *testing.T) {
		resp, err := noFollow().Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		resp, err = noFollow().PostForm(p.Issuer+"/login", url.Values{"id": {loc.Query().Get("authRequestID")}, "username": {"mallory"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

func TestProvider_LoginPage_ListsUsersOnlyInDemoMode(t *testing.T) {
	tests := []struct {
		demo      bool
		wantNames bool
	}{{true, true}, {false, false}}
	for _, tt := range tests {
		p := startTestProvider(t, tt.demo)
		op, err := oidc.NewProvider(t.Context(), p.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: op.Endpoint(), RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID}}
		resp, err := noFollow().Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := resp.Location()
		page := get(t, noFollow(), loc.String(), http.StatusOK)
		for _, u := range []string{"partner", "admin", "auditor"} {
			has := strings.Contains(page, `id="login-`+u+`"`)
			if has != tt.wantNames {
				t.Errorf("demo=%v: button for %s present=%v, want %v", tt.demo, u, has, tt.wantNames)
			}
		}
		if tt.demo && !strings.Contains(page, "organisation acme") {
			t.Errorf("demo page does not show the partner's organisation")
		}
		if !strings.Contains(page, "Development identity provider") {
			t.Errorf("login page is not marked as the development provider")
		}
	}
}

func TestProvider_EndSession_RedirectsToRegisteredPostLogoutURI(t *testing.T) {
	p := startTestProvider(t, false)
	ctx := t.Context()
	op, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	var disco struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = op.Claims(&disco)
	conf := oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret, Endpoint: op.Endpoint(), RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID}}
	v := oauth2.GenerateVerifier()
	cb := signIn(t, p.Issuer, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "admin")
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := tok.Extra("id_token").(string)

	tests := []struct {
		name     string
		redirect string
		want     string // prefix of the Location, "" for an error answer
	}{
		{"registered", testPostLogout, testPostLogout},
		{"unregistered", "http://127.0.0.1:1/evil", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {tt.redirect}}
			resp, err := noFollow().Get(disco.EndSession + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := resp.Location()
			switch {
			case tt.want != "" && (loc == nil || !strings.HasPrefix(loc.String(), tt.want)):
				t.Fatalf("status %d location %v, want a redirect to %s", resp.StatusCode, loc, tt.want)
			case tt.want == "" && loc != nil && strings.HasPrefix(loc.String(), tt.redirect):
				t.Fatalf("end_session redirected to the unregistered %s", loc)
			}
		})
	}
}

func TestProvider_StopsWhenContextIsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Start(ctx, Config{Users: DemoUsers()})
	if err != nil {
		t.Fatal(err)
	}
	get(t, http.DefaultClient, p.Issuer+"/.well-known/openid-configuration", http.StatusOK)
	cancel()
	_ = p.Close() // waits for the shutdown; a second Close is harmless
	if _, err := http.Get(p.Issuer + "/.well-known/openid-configuration"); err == nil {
		t.Fatal("provider still answers after its context was cancelled")
	}
}

func TestStart_RejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty username", Config{Users: []User{{Name: "x"}}}, "username is required"},
		{"duplicate username", Config{Users: []User{{Username: "a"}, {Username: "a"}}}, "duplicate username"},
		{"client without id", Config{Clients: []Client{{RedirectURIs: []string{testRedirect}}}}, "id is required"},
		{"client without redirect", Config{Clients: []Client{{ID: "x"}}}, "redirect URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(t.Context(), tt.cfg)
			if err == nil {
				p.Close()
				t.Fatal("Start accepted an invalid config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}
