package web

import (
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	SeeUser(ctx context.Context, u models.User) error
	AcceptInvitation(ctx context.Context, a models.Actor, subject, email string, verified bool) (string, error)
	Record(ctx context.Context, a models.Actor, objectType, objectID string, ev models.Event) error
}

// Auth signs users in with OpenID Connect (authorization code flow with
// PKCE S256, state and nonce checked), keeps server-side sessions, and
// authenticates API tokens.
type Auth struct {
	// Now is the clock for session timeouts and the pending-login cookie;
	// tests inject one. Defaults to time.Now.
	Now func() time.Time

	cfg       AuthConfig
	store     AuthStore
	log       *slog.Logger
	loginAEAD cipher.AEAD

	// op is the discovered provider; nil until discovery succeeded.
	op       atomic.Pointer[provider]
	discoMu  sync.Mutex
	discoErr error // why the last discovery failed

	usedMu sync.Mutex
	used   map[string]time.Time // states already consumed, until their cookie would expire

	// failures limits and folds failed authentication per source.
	failures *failureGuard
}

// provider is what discovery found: the OpenID provider, its ID token
// verifier, the OAuth 2.0 client and the end-session endpoint.
type provider struct {
	op         *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string // the provider's end_session_endpoint, "" if none
	userinfo   bool   // the provider has a userinfo_endpoint
}

// NewAuth discovers the provider at cfg.Issuer and returns a ready Auth.
// ctx bounds discovery only; the provider's keys are fetched later with a
// context that outlives it.
func NewAuth(ctx context.Context, cfg AuthConfig, store AuthStore, log *slog.Logger) (*Auth, error) {
	a, err := newAuth(cfg, store, log)
	if err != nil {
		return nil, err
	}
	if err := a.Discover(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// StartAuth is NewAuth for a server that must start while the provider is
// unreachable: API tokens and existing sessions work at once, and until
// discovery succeeds sign-in answers 503 with Retry-After and SignInReady
// says why. Discovery is retried with backoff (1 s doubling to 1 min) until
// it succeeds or ctx ends, and folded failures are recorded
// (RunFailureFolding) until ctx ends. Only a configuration mistake is an
// error.
func StartAuth(ctx context.Context, cfg AuthConfig, store AuthStore, log *slog.Logger) (*Auth, error) {
	a, err := newAuth(cfg, store, log)
	if err != nil {
		return nil, err
	}
	if err := a.Discover(ctx); err != nil {
		a.log.Warn("OpenID provider unreachable; serving without sign-in and retrying discovery", "issuer", cfg.Issuer, "err", err)
		go a.keepDiscovering(ctx)
	}
	go a.RunFailureFolding(ctx)
	return a, nil
}

func newAuth(cfg AuthConfig, store AuthStore, log *slog.Logger) (*Auth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	aead, err := newLoginAEAD(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	a := &Auth{Now: time.Now, cfg: cfg, store: store, log: log, loginAEAD: aead, used: map[string]time.Time{}}
	a.discoErr = errors.New("OpenID Connect discovery has not run yet")
	a.SetFailureLimits(DefaultFailureLimits)
	return a, nil
}

// SetFailureLimits replaces the limits of failed authentication (and
// forgets what was counted so far); call it before serving.
func (a *Auth) SetFailureLimits(l FailureLimits) {
	var observe func(string)
	if a.failures != nil {
		observe = a.failures.observe
	}
	g := newFailureGuard(l, a.now)
	g.record = recordFolded(a.store)
	g.observe = observe
	g.onError = func(ctx context.Context, err error) {
		a.log.ErrorContext(ctx, "auditing failed authentication", "err", err)
	}
	a.failures = g
}

// ObserveFailures makes fn count every failed authentication by kind
// (FailureBearer, FailureCookie, FailureCallback), e.g. Metrics.AuthFailure;
// call it before serving.
func (a *Auth) ObserveFailures(fn func(kind string)) { a.failures.observe = fn }

// RunFailureFolding records the counts of ended folding windows until ctx
// ends, a few times per window; StartAuth runs it. At shutdown, call
// FlushFailures once the server stopped.
func (a *Auth) RunFailureFolding(ctx context.Context) {
	t := time.NewTicker(max(a.failures.limits.Window/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.failures.flush(ctx, false)
		}
	}
}

// FlushFailures records every pending count of folded failures, ended
// window or not (at shutdown, so that a clean stop loses no count).
func (a *Auth) FlushFailures(ctx context.Context) { a.failures.flush(ctx, true) }

// Discover runs OpenID Connect discovery at the issuer once and, if it
// succeeds, makes sign-in available.
func (a *Auth) Discover(ctx context.Context) error {
	op, err := discover(ctx, a.cfg)
	a.discoMu.Lock()
	a.discoErr = err
	a.discoMu.Unlock()
	if err != nil {
		return err
	}
	a.op.Store(op)
	return nil
}

func discover(ctx context.Context, cfg AuthConfig) (*provider, error) {
	// go-oidc keeps this context for fetching the provider's keys later.
	p, err := oidc.NewProvider(context.WithoutCancel(ctx), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc.issuer: OpenID Connect discovery at %s: %w", cfg.Issuer, err)
	}
	var disco struct {
		EndSession string   `json:"end_session_endpoint"`
		UserInfo   string   `json:"userinfo_endpoint"`
		PKCE       []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&disco); err != nil {
		return nil, fmt.Errorf("oidc.issuer: reading discovery document: %w", err)
	}
	if len(disco.PKCE) > 0 && !slicesContains(disco.PKCE, "S256") {
		return nil, fmt.Errorf("oidc.issuer: the provider does not support PKCE S256 (supports %v)", disco.PKCE)
	}
	return &provider{
		op:       p,
		userinfo: disco.UserInfo != "",
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: cfg.Scopes,
		},
		endSession: disco.EndSession,
	}, nil
}

// keepDiscovering retries discovery with backoff until it succeeds or ctx
// ends.
func (a *Auth) keepDiscovering(ctx context.Context) {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.Discover(dctx)
		cancel()
		if err == nil {
			a.log.Info("OpenID provider discovered; sign-in is available", "issuer", a.cfg.Issuer)
			return
		}
		a.log.Warn("OpenID provider still unreachable", "issuer", a.cfg.Issuer, "retry_in", (2 * wait).String(), "err", err)
		wait = min(2*wait, time.Minute)
	}
}

// SignInReady is nil once discovery succeeded, and otherwise says why
// sign-in is not available.
func (a *Auth) SignInReady() error {
	if a.op.Load() != nil {
		return nil
	}
	a.discoMu.Lock()
	defer a.discoMu.Unlock()
	return a.discoErr
}

// signInUnavailable is the answer to a sign-in attempt before discovery
// succeeded.
func signInUnavailable() error {
	return &Problem{Type: ProblemTypeDefault, Title: http.StatusText(http.StatusServiceUnavailable), Status: http.StatusServiceUnavailable,
		Detail: "Sign-in is not available yet: the OpenID provider could not be reached. Try again shortly.", RetryAfter: RetryAfterSeconds}
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

// claimTrue reads a boolean claim such as email_verified. Some providers
// send it as the string "true"; anything else is false.
func claimTrue(m map[string]any, name string) bool {
	switch v := m[name].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
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
