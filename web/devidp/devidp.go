// Package devidp is a small but real OpenID Provider (github.com/zitadel/oidc/v3)
// run in-process on loopback. Tests sign in through it, and `certdesk demo`
// uses it with DemoUsers. It is a development provider: there are no
// passwords, anyone who can reach it can sign in as any configured user, so it
// must never be wired into `certdesk serve`.
//
// What it does implement for real: discovery, the authorization code flow
// with PKCE S256 enforced for every client, single-use codes, a fresh RSA
// signing key per start, ID tokens and userinfo carrying name, email,
// `groups` and `org` (or, configured so, userinfo alone, and groups only
// for a scope of their own), the keys endpoint and RP-initiated logout
// (end_session_endpoint).
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a person who can sign in at the development provider.
type User struct {
	Subject  string // the `sub` claim; defaults to Username
	Username string // what the login form takes
	Name     string // the `name` claim
	Email    string // the `email` claim
	// EmailUnverified sends email_verified false (by default an e-mail is
	// verified).
	EmailUnverified bool
	Org             string   // the `org` claim, omitted when empty
	Groups          []string // the `groups` claim
}

// Client is a relying party registered at the provider. An empty Secret makes
// it a public client; PKCE S256 is required either way.
type Client struct {
	ID                     string
	Secret                 string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// Config configures Start.
type Config struct {
	// Addr is the listen address; "127.0.0.1:0" (the default) picks a free
	// port. Use 127.0.0.1, not localhost: the issuer must match exactly.
	Addr    string
	Users   []User
	Clients []Client
	// Demo lists every user with its groups and organisation as a button on
	// the login page (for `certdesk demo`); otherwise the page only has a
	// username field.
	Demo bool
	// UserinfoOnly puts no user claims in the ID token (only sub and the
	// protocol claims): name, email, groups and org come from the userinfo
	// endpoint alone, as several providers do by default.
	UserinfoOnly bool
	// GroupsScope, when set, releases groups and org only to a client that
	// asked for this scope (a provider's custom scope that carries them);
	// by default they come with openid.
	GroupsScope string
	// Logger receives the HTTP server's errors; nil discards them. (The
	// zitadel library itself logs protocol errors to slog.Default.)
	Logger *slog.Logger
}

// Provider is a running development OpenID Provider.
type Provider struct {
	// Issuer is the issuer URL, e.g. "http://127.0.0.1:41234".
	Issuer string

	srv       *http.Server
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// DemoUsers returns the users of `certdesk demo`: a partner of organisation
// acme, an admin and an auditor, in the groups that the demo configuration
// maps to certdesk's roles.
func DemoUsers() []User {
	return []User{
		{Subject: "partner", Username: "partner", Name: "Pat Partner", Email: "partner@acme.example", Org: "acme", Groups: []string{"certdesk-partners"}},
		{Subject: "admin", Username: "admin", Name: "Ada Admin", Email: "admin@certdesk.example", Groups: []string{"certdesk-admins"}},
		{Subject: "auditor", Username: "auditor", Name: "Audrey Auditor", Email: "auditor@certdesk.example", Groups: []string{"certdesk-auditors"}},
	}
}

// Start listens on cfg.Addr and serves the provider until Close is called or
// ctx is cancelled.
func Start(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	st, err := newStorage(cfg.Users, cfg.Clients)
	if err != nil {
		return nil, err
	}
	st.userinfoOnly, st.groupsScope = cfg.UserinfoOnly, cfg.GroupsScope
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listening on %s: %w", cfg.Addr, err)
	}
	issuer := "http://" + ln.Addr().String()

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		ln.Close()
		return nil, fmt.Errorf("devidp: generating token encryption key: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opConfig := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: pathLoggedOut,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedUILocales:       []language.Tag{language.English},
	}
	provider, err := op.NewProvider(opConfig, st, op.StaticIssuer(issuer),
		op.WithAllowInsecure(), // plain http on loopback only
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devidp: creating provider: %w", err)
	}

	l := &login{store: st, demo: cfg.Demo, callback: op.AuthCallbackURL(provider)}
	intercept := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.Handle(pathLogin, intercept.HandlerFunc(l.serveHTTP))
	mux.HandleFunc(pathLoggedOut, func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		fmt.Fprint(w, loggedOutPage)
	})
	mux.Handle("/", provider)

	p := &Provider{
		Issuer: issuer,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("devidp: serving", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Close()
		case <-p.done:
		}
	}()
	return p, nil
}

// Close stops the provider. It is safe to call more than once.
func (p *Provider) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.closeErr = p.srv.Shutdown(ctx)
	})
	return p.closeErr
}

// newSigningKey generates the provider's RS256 key: a fresh one per start,
// never a key compiled into the binary.
func newSigningKey() (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devidp: generating signing key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &signingKey{id: fmt.Sprintf("%x", id), alg: jose.RS256, key: key}, nil
}

// validate checks users and clients before the provider starts.
func validate(users []User, clients []Client) error {
	seen := map[string]bool{}
	for i, u := range users {
		if strings.TrimSpace(u.Username) == "" {
			return fmt.Errorf("devidp: users[%d]: username is required", i)
		}
		if seen[u.Username] {
			return fmt.Errorf("devidp: users[%d]: duplicate username %q", i, u.Username)
		}
		seen[u.Username] = true
	}
	for i, c := range clients {
		if c.ID == "" {
			return fmt.Errorf("devidp: clients[%d]: id is required", i)
		}
		if len(c.RedirectURIs) == 0 {
			return fmt.Errorf("devidp: clients[%d] (%s): at least one redirect URI is required", i, c.ID)
		}
	}
	return nil
}
