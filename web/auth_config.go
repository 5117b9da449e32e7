package web

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/certdesk/certdesk/models"
)

// Default values of OIDCConfig and SessionConfig.
const (
	DefaultRoleClaim       = "groups"
	DefaultOrgClaim        = "org"
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
	// MinSessionKeyLen is the shortest accepted AuthConfig.SessionKey.
	MinSessionKeyLen = 32
)

// The environment variables that may hold the sign-in secrets instead of
// their files.
const (
	EnvOIDCClientSecret = "CERTDESK_OIDC_CLIENT_SECRET"
	EnvSessionKey       = "CERTDESK_SESSION_KEY"
)

// DefaultRoles maps certdesk's roles to the groups of the demo provider
// (devidp.DemoUsers); real deployments configure their own.
var DefaultRoles = map[string][]string{
	models.RolePartner: {"certdesk-partners"},
	models.RoleAdmin:   {"certdesk-admins"},
	models.RoleAuditor: {"certdesk-auditors"},
}

// rolePrecedence orders roles for a user whose claims grant several: the
// highest wins.
var rolePrecedence = []string{models.RoleAdmin, models.RoleAuditor, models.RolePartner}

// OIDCConfig is the identity provider: the configuration file's oidc
// section.
type OIDCConfig struct {
	// Issuer is the OpenID Provider's issuer URL (discovery is at
	// Issuer/.well-known/openid-configuration).
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret; without it the secret is
	// read from EnvOIDCClientSecret. Never in the configuration text.
	ClientSecretFile string `yaml:"client_secret_file"`
	// RoleClaim is the ID token claim holding group names (default "groups").
	RoleClaim string `yaml:"role_claim"`
	// Roles maps a role (partner, admin, auditor) to the claim values that
	// grant it. A user matching several gets the highest: admin > auditor >
	// partner. Default: DefaultRoles.
	Roles map[string][]string `yaml:"roles"`
	// OrgClaim is the claim holding a partner's organisation slug (default
	// "org"); without it an admin-assigned membership is used.
	OrgClaim string `yaml:"org_claim"`
	// Scopes are requested at sign-in (default openid, profile, email).
	// openid is always requested, added first when missing. A provider that
	// releases the role or organisation claim only for a scope of its own
	// (e.g. "groups") needs that scope listed here. Claims missing from the
	// ID token are read from the provider's userinfo endpoint.
	Scopes []string `yaml:"scopes"`
}

// DefaultScopes are the scopes requested when oidc.scopes is not set.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// WithDefaults returns c with the claims and roles defaulted.
func (c OIDCConfig) WithDefaults() OIDCConfig {
	if c.RoleClaim == "" {
		c.RoleClaim = DefaultRoleClaim
	}
	if c.OrgClaim == "" {
		c.OrgClaim = DefaultOrgClaim
	}
	if len(c.Roles) == 0 {
		c.Roles = DefaultRoles
	}
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	if !slicesContains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	return c
}

// Validate reports the first problem with what is set (defaults applied),
// naming the field. That the provider is given at all is checked by
// AuthConfig.Validate, when sign-in is built: commands that need no
// sign-in load a configuration without it.
func (c OIDCConfig) Validate() error {
	c = c.WithDefaults()
	if c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("oidc.issuer: must be an absolute http(s) URL, got %q", c.Issuer)
		}
	}
	for _, sc := range c.Scopes {
		if !validScope(sc) {
			return fmt.Errorf("oidc.scopes: %q is not a scope (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes)", sc)
		}
	}
	for role, values := range c.Roles {
		if !slicesContains(rolePrecedence, role) {
			return fmt.Errorf("oidc.roles: unknown role %q (use partner, admin or auditor)", role)
		}
		if len(values) == 0 {
			return fmt.Errorf("oidc.roles.%s: at least one claim value is required", role)
		}
	}
	return nil
}

// SessionConfig is the browser session: the configuration file's session
// section.
type SessionConfig struct {
	// KeyFile holds at least MinSessionKeyLen random bytes that encrypt the
	// pending-login cookie; without it the key is read from EnvSessionKey.
	KeyFile string `yaml:"key_file"`
	// Idle and Absolute end a session after inactivity and after sign-in
	// respectively (defaults 30m and 12h).
	Idle     time.Duration `yaml:"idle"`
	Absolute time.Duration `yaml:"absolute"`
}

// WithDefaults returns c with the timeouts defaulted.
func (c SessionConfig) WithDefaults() SessionConfig {
	if c.Idle == 0 {
		c.Idle = DefaultSessionIdle
	}
	if c.Absolute == 0 {
		c.Absolute = DefaultSessionAbsolute
	}
	return c
}

// Validate reports a problem with the timeouts (defaults applied), naming
// the field.
func (c SessionConfig) Validate() error {
	c = c.WithDefaults()
	if c.Idle < time.Minute || c.Absolute < c.Idle {
		return fmt.Errorf("session.idle/session.absolute: need 1m <= idle (%s) <= absolute (%s)", c.Idle, c.Absolute)
	}
	return nil
}

// AuthConfig configures OpenID Connect sign-in, roles and sessions: the
// oidc and session sections, what the portal derives from its public URL,
// and the secrets, which come from files or the environment (ReadSecrets),
// never from the configuration text.
type AuthConfig struct {
	OIDCConfig
	SessionConfig
	// ClientSecret is the OIDC client secret.
	ClientSecret string
	// RedirectURL is certdesk's callback, e.g.
	// "http://127.0.0.1:8080/auth/callback"; register it at the provider.
	RedirectURL string
	// PostLogoutRedirectURL is where the provider sends the browser after
	// logout; defaults to the root of RedirectURL. Register it at the provider.
	PostLogoutRedirectURL string
	// SecureCookies sets the Secure flag on cookies (true behind TLS).
	SecureCookies bool
	// SessionKey (at least MinSessionKeyLen random bytes) encrypts and
	// authenticates the short-lived pending-login cookie.
	SessionKey []byte
}

// ReadSecrets fills ClientSecret and SessionKey from ClientSecretFile and
// KeyFile, or, where no file is set, from EnvOIDCClientSecret and
// EnvSessionKey.
func (cfg *AuthConfig) ReadSecrets() error {
	secret, err := ReadSecret(cfg.ClientSecretFile, "oidc.client_secret_file", EnvOIDCClientSecret)
	if err != nil {
		return err
	}
	key, err := ReadSecret(cfg.KeyFile, "session.key_file", EnvSessionKey)
	if err != nil {
		return err
	}
	cfg.ClientSecret, cfg.SessionKey = secret, []byte(key)
	return nil
}

// withDefaults returns cfg with defaults filled in.
func (cfg AuthConfig) withDefaults() AuthConfig {
	cfg.OIDCConfig = cfg.OIDCConfig.WithDefaults()
	cfg.SessionConfig = cfg.SessionConfig.WithDefaults()
	if cfg.PostLogoutRedirectURL == "" {
		if u, err := url.Parse(cfg.RedirectURL); err == nil && u.Host != "" {
			cfg.PostLogoutRedirectURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}).String()
		}
	}
	return cfg
}

// Validate reports the first problem with the configuration (defaults
// applied), naming the field. It never echoes a secret.
func (cfg AuthConfig) Validate() error {
	cfg = cfg.withDefaults()
	for _, f := range []struct{ name, value string }{
		{"oidc.issuer", cfg.Issuer}, {"oidc.client_id", cfg.ClientID}, {"auth.redirect_url", cfg.RedirectURL},
	} {
		if strings.TrimSpace(f.value) == "" {
			return fmt.Errorf("%s: required", f.name)
		}
	}
	if err := cfg.OIDCConfig.Validate(); err != nil {
		return err
	}
	if err := cfg.SessionConfig.Validate(); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"auth.redirect_url", cfg.RedirectURL}, {"auth.post_logout_redirect_url", cfg.PostLogoutRedirectURL},
	} {
		u, err := url.Parse(f.value)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%s: must be an absolute http(s) URL, got %q", f.name, f.value)
		}
	}
	if u, _ := url.Parse(cfg.RedirectURL); u.Path != callbackPath {
		return fmt.Errorf("auth.redirect_url: path must be %s, got %q", callbackPath, u.Path)
	}
	if len(cfg.SessionKey) < MinSessionKeyLen {
		return fmt.Errorf("session.key_file: must hold at least %d bytes, got %d (e.g. head -c 32 /dev/urandom | base64)", MinSessionKeyLen, len(cfg.SessionKey))
	}
	return nil
}

// validScope reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScope(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// ReadSecret reads a secret from its file, trimming a trailing newline, or,
// when no file is configured, from the environment variable env. Errors
// name field and never show the secret. Secrets are never part of the
// configuration text.
func ReadSecret(path, field, env string) (string, error) {
	if path == "" {
		if v, ok := os.LookupEnv(env); ok && v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s (or the environment variable %s) is required", field, env)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
