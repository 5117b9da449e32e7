package web

import (
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/certdesk/certdesk/models"
)

// AuthStore is what authentication needs from the store; *models.Store
// satisfies it.
type AuthStore interface {
	CreateSession(ctx context.Context, sess *models.Session) error
	GetSession(ctx context.Context, id string) (*models.Session, error)
	TouchSession(ctx context.Context, id string, t time.Time) error
	DeleteSession(ctx context.Context, id string) error
	LookupToken(ctx context.Context, hash string) (*models.APIToken, error)
	GetMembership(ctx context.Context, subject string) (string, error)
	Record(ctx context.Context, a models.Actor, action, objectType, objectID string, detail any) error
}

// Auth signs users in with OpenID Connect (authorization code flow with
// PKCE S256, state and nonce checked), keeps server-side sessions, and
// authenticates API tokens.
type Auth struct {
	// Now is the clock for session timeouts and the pending-login cookie;
	// tests inject one. Defaults to time.Now.
	Now func() time.Time

	cfg        AuthConfig
	store      AuthStore
	log        *slog.Logger
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string // the provider's end_session_endpoint, "" if none
	loginAEAD  cipher.AEAD

	usedMu sync.Mutex
	used   map[string]time.Time // states already consumed, until their cookie would expire
}

// NewAuth discovers the provider at cfg.Issuer and returns a ready Auth.
// ctx bounds discovery only; the provider's keys are fetched later with a
// context that outlives it.
func NewAuth(ctx context.Context, cfg AuthConfig, store AuthStore, log *slog.Logger) (*Auth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	// go-oidc keeps this context for fetching the provider's keys later.
	provider, err := oidc.NewProvider(context.WithoutCancel(ctx), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc.issuer: OpenID Connect discovery at %s: %w", cfg.Issuer, err)
	}
	var disco struct {
		EndSession string   `json:"end_session_endpoint"`
		PKCE       []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&disco); err != nil {
		return nil, fmt.Errorf("oidc.issuer: reading discovery document: %w", err)
	}
	if len(disco.PKCE) > 0 && !slicesContains(disco.PKCE, "S256") {
		return nil, fmt.Errorf("oidc.issuer: the provider does not support PKCE S256 (supports %v)", disco.PKCE)
	}
	aead, err := newLoginAEAD(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	a := &Auth{
		Now:      time.Now,
		cfg:      cfg,
		store:    store,
		log:      log,
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
		},
		endSession: disco.EndSession,
		loginAEAD:  aead,
		used:       map[string]time.Time{},
	}
	return a, nil
}

func (a *Auth) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Roles returns the role mapping in effect (for the no-access page and /me).
func (a *Auth) Roles() map[string][]string {
	out := make(map[string][]string, len(a.cfg.Roles))
	for k, v := range a.cfg.Roles {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// roleFor maps the role claim's values to the highest role they grant, or "".
func (a *Auth) roleFor(values []string) string {
	for _, role := range rolePrecedence {
		for _, want := range a.cfg.Roles[role] {
			if slicesContains(values, want) {
				return role
			}
		}
	}
	return ""
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return x
	}
	return nil
}

// claimString reads a string claim.
func claimString(m map[string]any, name string) string {
	s, _ := m[name].(string)
	return s
}

// markStateUsed records state as consumed and reports whether it already
// was: a pending login is single use even if its cookie is replayed. (With
// several replicas the provider's single-use code is the backstop.)
func (a *Auth) markStateUsed(state string, until time.Time) (alreadyUsed bool) {
	a.usedMu.Lock()
	defer a.usedMu.Unlock()
	now := a.now()
	for s, t := range a.used {
		if now.After(t) {
			delete(a.used, s)
		}
	}
	if _, ok := a.used[state]; ok {
		return true
	}
	a.used[state] = until
	return false
}

// equalConstantTime compares two secrets without leaking where they differ.
func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// safeNext returns next if it is a local path ("/x"), else "/". It refuses
// protocol-relative ("//evil"), backslash ("/\evil", which browsers treat as
// "//"), schemes and control characters: redirects after sign-in go only to
// local paths.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' {
		return "/"
	}
	if strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") {
		return "/"
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return next
}

func slicesContains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// sortedRoles lists the configured roles by precedence with their values.
func (a *Auth) sortedRoles() []roleView {
	var out []roleView
	for _, r := range rolePrecedence {
		vals := append([]string(nil), a.cfg.Roles[r]...)
		sort.Strings(vals)
		out = append(out, roleView{Role: r, Values: strings.Join(vals, ", ")})
	}
	return out
}

type roleView struct{ Role, Values string }

// errNoPendingLogin means the callback came without a valid pending-login
// cookie (expired, tampered with, or from another browser).
var errNoPendingLogin = errors.New("no pending sign-in")
