package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func TestNewAPIToken_IsPrefixedRandomAndHashed(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash := NewAPIToken()
		if !strings.HasPrefix(tok, "cd_") {
			t.Fatalf("token %q lacks the cd_ prefix", tok)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "cd_"))
		if err != nil || len(raw) != 32 {
			t.Fatalf("token body is not 32 bytes of base64url: %v (%d bytes)", err, len(raw))
		}
		sum := sha256.Sum256([]byte(tok))
		if hash != hex.EncodeToString(sum[:]) || HashAPIToken(tok) != hash {
			t.Fatalf("hash %q is not the hex SHA-256 of the token", hash)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
	}
}

func testAuth(t *testing.T) *Auth {
	t.Helper()
	aead, err := newLoginAEAD([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &Auth{Now: func() time.Time { return now }, loginAEAD: aead, used: map[string]time.Time{}}
}

func TestPendingLoginCookie_RoundTripsAndRejectsTampering(t *testing.T) {
	a := testAuth(t)
	in := pendingLogin{State: "s", Nonce: "n", Verifier: "v", Next: "/x", Expires: a.now().Add(time.Minute)}
	sealed, err := a.sealPendingLogin(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "/x") {
		t.Error("the sealed cookie shows its contents")
	}
	out, err := a.openPendingLogin(sealed)
	if err != nil || *out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}

	other := testAuth(t)
	other.loginAEAD, _ = newLoginAEAD([]byte("another-key-another-key-another-k"))
	expired := testAuth(t)
	expired.Now = func() time.Time { return a.now().Add(2 * time.Minute) }
	raw, _ := base64.RawURLEncoding.DecodeString(sealed)
	raw[len(raw)-1] ^= 1
	tests := []struct {
		name  string
		auth  *Auth
		value string
	}{
		{"flipped bit", a, base64.RawURLEncoding.EncodeToString(raw)},
		{"another key", other, sealed},
		{"expired", expired, sealed},
		{"garbage", a, "not base64 !"},
		{"empty", a, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.auth.openPendingLogin(tt.value); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAuthConfig_Validate(t *testing.T) {
	good := AuthConfig{OIDCConfig: OIDCConfig{Issuer: "http://127.0.0.1:9000", ClientID: "certdesk"}, RedirectURL: "http://127.0.0.1:8080/auth/callback",
		SessionKey: []byte(strings.Repeat("k", 32))}
	tests := []struct {
		name   string
		mutate func(*AuthConfig)
		want   string // "" = valid
	}{
		{"defaults", func(*AuthConfig) {}, ""},
		{"no issuer", func(c *AuthConfig) { c.Issuer = "" }, "oidc.issuer"},
		{"relative issuer", func(c *AuthConfig) { c.Issuer = "/idp" }, "oidc.issuer"},
		{"no client id", func(c *AuthConfig) { c.ClientID = "" }, "oidc.client_id"},
		{"wrong callback path", func(c *AuthConfig) { c.RedirectURL = "http://127.0.0.1:8080/cb" }, "auth.redirect_url"},
		{"short session key", func(c *AuthConfig) { c.SessionKey = []byte("short") }, "session.key_file"},
		{"unknown role", func(c *AuthConfig) { c.Roles = map[string][]string{"root": {"x"}} }, "unknown role"},
		{"role without values", func(c *AuthConfig) { c.Roles = map[string][]string{"admin": nil} }, "oidc.roles.admin"},
		{"scopes without openid (openid is added)", func(c *AuthConfig) { c.Scopes = []string{"email", "groups"} }, ""},
		{"scope with a space", func(c *AuthConfig) { c.Scopes = []string{"openid", "groups org"} }, "oidc.scopes"},
		{"empty scope", func(c *AuthConfig) { c.Scopes = []string{"openid", ""} }, "oidc.scopes"},
		{"idle longer than absolute", func(c *AuthConfig) { c.Idle, c.Absolute = 2*time.Hour, time.Hour }, "session.idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.SessionKey = []byte("secret-session-key-secret-session-key")
			tt.mutate(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one naming %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "secret-session-key"):
				t.Fatalf("the error leaks the session key: %v", err)
			}
		})
	}
}

func TestNewAuth_UnreachableIssuer_NamesTheField(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := NewAuth(ctx, AuthConfig{OIDCConfig: OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "c"}, RedirectURL: "http://127.0.0.1:8080/auth/callback",
		SessionKey: []byte(strings.Repeat("k", 32))}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "oidc.issuer") {
		t.Fatalf("error %v, want one naming oidc.issuer", err)
	}
}

func TestRoleFor_HighestRoleWins(t *testing.T) {
	a := &Auth{cfg: AuthConfig{}.withDefaults()}
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{"certdesk-partners"}, "partner"},
		{[]string{"certdesk-partners", "certdesk-auditors"}, "auditor"},
		{[]string{"certdesk-auditors", "certdesk-admins", "certdesk-partners"}, "admin"},
		{[]string{"staff"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := a.roleFor(tt.values); got != tt.want {
			t.Errorf("roleFor(%v) = %q, want %q", tt.values, got, tt.want)
		}
	}
	if got := claimStrings("certdesk-admins"); len(got) != 1 {
		t.Errorf("a single-string claim gives %v", got)
	}
	if got := claimStrings([]any{"a", 3, "b"}); len(got) != 2 {
		t.Errorf("a mixed list gives %v", got)
	}
}

func TestCookies_SecureFlagFollowsConfig(t *testing.T) {
	for _, secure := range []bool{false, true} {
		a := testAuth(t)
		a.cfg = AuthConfig{SecureCookies: secure}.withDefaults()
		e := echo.New()
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
		a.setSessionCookie(c, "v")
		a.setLoginCookie(c, "v")
		for _, ck := range rec.Result().Cookies() {
			if ck.Secure != secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("SecureCookies=%v: cookie %s Secure=%v HttpOnly=%v SameSite=%v", secure, ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
			}
		}
		if n := len(rec.Result().Cookies()); n != 2 {
			t.Fatalf("%d cookies set, want 2", n)
		}
	}
}
