package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/frontend"
	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/audit"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/handlers/notify"
	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

func init() {
	register("serve", serve)
	register("migrate", migrate)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseWithConfig(newFlags("serve", stderr), args)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	return runPortal(ctx, cfg, portalOptions{}, log, nil)
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return withStore(ctx, "migrate", args, stderr, func(store *models.Store) error {
		v, err := store.AppliedVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "database schema at version %d\n", v)
		return nil
	})
}

// withStore runs an operator command that takes only --config: it loads
// the configuration, opens and migrates the store, and runs fn with it.
func withStore(ctx context.Context, name string, args []string, stderr io.Writer, fn func(*models.Store) error) error {
	return withConfigStore(ctx, name, args, stderr, func(_ *Config, store *models.Store) error { return fn(store) })
}

// withConfigStore is withStore for commands that also read the config.
func withConfigStore(ctx context.Context, name string, args []string, stderr io.Writer, fn func(*Config, *models.Store) error) error {
	cfg, err := parseWithConfig(newFlags(name, stderr), args)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(cfg, store)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	return slog.New(web.LogHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// openStore opens the configured database and applies migrations.
func openStore(ctx context.Context, cfg *Config) (*models.Store, error) {
	store, err := models.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("opening the %s database: %w", cfg.Database.Driver, err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrating the database: %w", err)
	}
	return store, nil
}

// portalOptions are what the demo adds to a plain serve.
type portalOptions struct {
	AllowSoftwareKey bool
	Demo             bool
	// Listener, when set, is used instead of listening on cfg.Listen.
	Listener net.Listener
}

// portal is the wired portal: what runPortal serves and tests drive.
type portal struct {
	Echo       *echo.Echo
	Store      *models.Store
	CA         *signer.CA
	Workflow   *issuance.Workflow
	Revocation *revocation.Service
	Notifier   *notify.Service
	// Checkpointer signs the audit chain head with the issuing CA key.
	Checkpointer *audit.Checkpointer
	// Auth is sign-in and the limits of failed authentication.
	Auth *web.Auth
}

// buildPortal opens the store, loads the CA (checking the token key against
// the issuing certificate), finishes in-flight issuances, and builds the web
// server. The caller closes p.Store.
func buildPortal(ctx context.Context, cfg *Config, opts portalOptions, log *slog.Logger) (p *portal, err error) {
	store, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	ca, err := loadIssuingCA(cfg, opts, log)
	if err != nil {
		return nil, err
	}
	store.AuditSink = auditToLog(log)
	health := &handlers.Health{DBPing: store.Ping, HSMCheck: func(context.Context) error {
		return signer.CheckKeyMatches(ca.Issuer.Certificate(), ca.Issuer.Signer())
	}}
	metrics := web.NewMetrics(store, health.HSMHealthy, log)
	metricsToken, err := readMetricsToken(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	if metricsToken == "" {
		log.Info("GET /metrics needs no credentials; set metrics.bearer_token_file to require a token")
	}
	if cfg.Notifications.PortalURL == "" {
		cfg.Notifications.PortalURL = cfg.PublicURL
	}
	notifier, err := notify.New(cfg.Notifications, store, log)
	if err != nil {
		return nil, err
	}
	wf := &issuance.Workflow{Store: store, Issuer: ca.Issuer, Log: log, Observer: metrics, Notifier: notifier, RevocationObserver: metrics}
	recoverIssuances(ctx, wf, log, slog.LevelError)
	auth, err := newAuth(ctx, cfg, store, log)
	if err != nil {
		return nil, err
	}
	health.SignIn = auth.SignInReady
	auth.ObserveFailures(metrics.AuthFailure)
	rev, err := revocation.New(revocation.Config{
		Store: store, CA: ca, Keys: signer.Keys{AllowSoftware: opts.AllowSoftwareKey}, IssuingKey: cfg.CA.IssuingKey,
		CADir: cfg.CA.Dir, PKIURL: cfg.PKIURL, Log: log, Settings: cfg.Revocation, Observer: metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("revocation: %w", err)
	}
	wf.Publisher = rev
	deps := webDeps(store, ca, wf, rev, opts)
	deps.Log, deps.Auth, deps.Health, deps.Metrics, deps.MetricsToken = log, auth, health, metrics, metricsToken
	deps.Audit.Log = log
	if err := addAutomation(&deps, cfg, store, wf, ca); err != nil {
		return nil, err
	}
	checkpointer := &audit.Checkpointer{Store: store, Issuer: ca.Issuer, Log: log, Every: cfg.Audit.CheckpointInterval}
	return &portal{Echo: web.New(deps), Store: store, CA: ca, Workflow: wf, Revocation: rev, Notifier: notifier, Checkpointer: checkpointer, Auth: auth}, nil
}

// loadIssuingCA loads the CA hierarchy of cfg.CA, refusing a software key
// unless the demo allows it, and logs which key signs.
func loadIssuingCA(cfg *Config, opts portalOptions, log *slog.Logger) (*signer.CA, error) {
	ca, err := signer.LoadCA(cfg.CA, signer.Keys{AllowSoftware: opts.AllowSoftwareKey}, cfg.Profile, cfg.PKIURL, time.Now())
	if err != nil {
		return nil, fmt.Errorf("loading the CA: %w", err)
	}
	if ca.Software {
		log.Warn("the issuing CA key is a file-backed demo key — not for production")
	}
	cert := ca.Issuer.Certificate()
	log.Info("issuing CA loaded", "subject", cert.Subject.String(), "key", signer.KeyFingerprint(cert.PublicKey), "not_after", cert.NotAfter)
	return ca, nil
}

// auditToLog writes every committed audit event to the log, for a SIEM.
func auditToLog(log *slog.Logger) func(context.Context, *models.AuditEvent) {
	return func(ctx context.Context, e *models.AuditEvent) {
		log.InfoContext(ctx, "audit", "seq", e.Seq, "action", e.Action, "actor", e.Actor, "role", e.Role, "org", e.Org,
			"object_type", e.ObjectType, "object_id", e.ObjectID, "source", e.Source, "detail", e.Detail, "hash", e.Hash)
	}
}

// recoverIssuances finishes or fails the issuances that were in flight,
// logging a failure at failLevel.
func recoverIssuances(ctx context.Context, wf *issuance.Workflow, log *slog.Logger, failLevel slog.Level) {
	if fin, failed, err := wf.Recover(ctx); err != nil {
		log.Log(ctx, failLevel, "recovering in-flight issuances", "err", err)
	} else if fin+failed > 0 {
		log.Info("recovered in-flight issuances", "finished", fin, "failed", failed)
	}
}

// webDeps are the resource handlers of the web server; the caller adds
// logging, sign-in, health and metrics.
func webDeps(store *models.Store, ca *signer.CA, wf *issuance.Workflow, rev *revocation.Service, opts portalOptions) web.Deps {
	now := time.Now
	issuing := ca.Issuer.Certificate()
	return web.Deps{
		Requests:     &handlers.Requests{Store: store, Workflow: wf},
		Certificates: &handlers.Certificates{Store: store, IssuingPEM: signer.PEM(issuing.Raw), Now: now, Revoker: wf},
		Revocation:   &handlers.Revocation{Service: rev},
		Orgs:         &handlers.Orgs{Store: store},
		Users:        &handlers.Users{Store: store},
		Tokens:       &handlers.Tokens{Store: store, NewToken: web.NewAPIToken, Now: now},
		BlockedKeys:  &handlers.BlockedKeys{Store: store},
		Audit:        &handlers.Audit{Store: store, VerifyCheckpoint: audit.VerifyWith(issuing)},
		CAFiles:      &handlers.CAFiles{RootDER: ca.Root.Raw, IssuingDER: issuing.Raw},
		Stats:        &handlers.Stats{Store: store, Now: now},
		Frontend:     frontend.Dist(),
		Demo:         opts.Demo,
		DemoKey:      ca.Software,
	}
}

// runPortal builds the portal and serves it until ctx ends. ready, if not
// nil, is called with the server address once it accepts connections.
func runPortal(ctx context.Context, cfg *Config, opts portalOptions, log *slog.Logger, ready func(addr string)) error {
	p, err := buildPortal(ctx, cfg, opts, log)
	if err != nil {
		return err
	}
	defer p.Store.Close()
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
	}
	tlsCfg, err := serverTLS(cfg.TLS, p.CA, log)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:           p.Echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute, // audit exports stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go background(ctx, log, p.Workflow, p.Store)
	go p.Revocation.Run(ctx)
	go p.Notifier.Run(ctx)
	go p.Checkpointer.Run(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("certdesk is serving", "addr", ln.Addr().String(), "public_url", cfg.PublicURL)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("shutting down")
	err = srv.Shutdown(shutdown)
	// Counts of folded authentication failures reach the audit log before
	// the store closes.
	p.Auth.FlushFailures(shutdown)
	return err
}

// recoveryEvery is how often background recovers what was in flight. A
// crashed issuance is finished within its lease (models.IssuanceLease) plus
// this.
const recoveryEvery = 10 * time.Second

// background runs the periodic work: finishing issuances the HSM could not
// sign or a dead process left behind, and removing expired sessions.
func background(ctx context.Context, log *slog.Logger, wf *issuance.Workflow, store *models.Store) {
	t := time.NewTicker(recoveryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		recoverIssuances(ctx, wf, log, slog.LevelWarn)
		if _, err := store.DeleteExpiredSessions(ctx, time.Now()); err != nil {
			log.Warn("deleting expired sessions", "err", err)
		}
	}
}

// newAuth builds OIDC sign-in from the oidc and session sections, the
// public URL, and the secrets read from their files or the environment.
func newAuth(ctx context.Context, cfg *Config, store *models.Store, log *slog.Logger) (*web.Auth, error) {
	ac := web.AuthConfig{
		OIDCConfig: cfg.OIDC, SessionConfig: cfg.Session,
		RedirectURL:   cfg.PublicURL + "/auth/callback",
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://"),
	}
	if err := ac.ReadSecrets(); err != nil {
		return nil, err
	}
	return web.StartAuth(ctx, ac, store, log)
}

// readMetricsToken returns the bearer token that GET /metrics requires, or
// "" when neither metrics.bearer_token_file nor CERTDESK_METRICS_TOKEN sets
// one.
func readMetricsToken(c MetricsConfig) (string, error) {
	if c.BearerTokenFile == "" && os.Getenv("CERTDESK_METRICS_TOKEN") == "" {
		return "", nil
	}
	tok, err := web.ReadSecret(c.BearerTokenFile, "metrics.bearer_token_file", "CERTDESK_METRICS_TOKEN")
	if err != nil {
		return "", err
	}
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return "", errors.New("metrics.bearer_token_file must hold one token of at least 16 characters, without spaces (e.g. head -c 24 /dev/urandom | base64)")
	}
	return tok, nil
}
