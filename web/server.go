// Package web is certdesk's HTTP server: the routes table, middleware
// (authentication, CSRF, security headers, request ids), the single
// error-to-HTTP mapping, and serving of the embedded browser app.
package web

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/acme"
	"github.com/certdesk/certdesk/handlers/est"
	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
)

// Deps is everything the server routes to.
type Deps struct {
	Log          *slog.Logger
	Auth         *Auth
	Requests     *handlers.Requests
	Certificates *handlers.Certificates
	Orgs         *handlers.Orgs
	Users        *handlers.Users // users, membership removal, invitations; nil to leave them out
	Tokens       *handlers.Tokens
	Audit        *handlers.Audit
	CAFiles      *handlers.CAFiles
	Health       *handlers.Health
	Stats        *handlers.Stats
	Revocation   *handlers.Revocation // CRLs and OCSP
	// ACME and ACMEBindings serve /acme/* and /api/v1/acme/bindings; nil
	// leaves them out.
	ACME         *acme.Server
	ACMEBindings *handlers.ACMEBindings
	// EST serves /.well-known/est/* and Renew POST /api/v1/renew; both
	// read client certificates found by ClientCerts. nil leaves them out.
	EST         *est.Server
	Renew       *handlers.Renew
	ClientCerts *ClientCerts
	BlockedKeys *handlers.BlockedKeys
	Metrics     *Metrics // GET /metrics and request metrics; nil to leave them out
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken string
	// Frontend is the built browser app (frontend.Dist()).
	Frontend fs.FS
	// Demo marks a demo server; DemoKey a demo software CA key. Both are
	// shown by /me so that the UI can say so.
	Demo, DemoKey bool
	// ExtraMiddleware runs first on every request (metrics, tests).
	ExtraMiddleware []echo.MiddlewareFunc
}

// New builds the echo server with every route of certdesk.
func New(d Deps) *echo.Echo {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(d.Log)
	e.IPExtractor = echo.ExtractIPDirect() // behind a proxy: configure ExtractIPFromXFFHeader with trusted ranges
	first := []echo.MiddlewareFunc{middleware.RequestID(), requestIDContext}
	if d.Metrics != nil {
		first = append(first, d.Metrics.Middleware())
	}
	all := slices.Concat(first, d.ExtraMiddleware,
		[]echo.MiddlewareFunc{requestLog(d.Log), middleware.Recover(), securityHeaders, middleware.BodyLimit("1M")})
	e.Use(exceptOCSP(d.ExtraMiddleware, all))

	// Public: health, CA certificates, CRLs, OCSP, the API description.
	e.GET("/healthz", d.Health.Healthz)
	e.GET("/readyz", d.Health.Readyz)
	e.GET("/ca/root.pem", d.CAFiles.RootPEM)
	e.GET("/ca/issuing.pem", d.CAFiles.IssuingPEM)
	e.GET("/ca/bundle.pem", d.CAFiles.BundlePEM)
	e.GET("/ca/root.der", d.CAFiles.RootDERFile)
	e.GET("/ca/issuing.der", d.CAFiles.IssuingDERFile)
	e.GET("/api/v1/openapi.json", handlers.OpenAPI)
	if d.Revocation != nil {
		RevocationRoutes(e, d.Revocation)
	}
	if d.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(d.Metrics.Handler()), requireBearer(d.MetricsToken, "certdesk-metrics"))
	}

	d.Auth.Register(e)
	api := e.Group("/api/v1", apiNoStore, d.Auth.Middleware(), actorContext, d.Auth.CSRF())
	any := RequireRole(models.RolePartner, models.RoleAdmin, models.RoleAuditor)
	submitter := RequireRole(models.RolePartner, models.RoleAdmin)
	admin := RequireRole(models.RoleAdmin)
	auditor := RequireRole(models.RoleAuditor, models.RoleAdmin)

	api.GET("/me", me(d), any)

	api.POST("/requests", d.Requests.Create, submitter)
	api.POST("/requests/preview", d.Requests.Preview, submitter)
	api.GET("/requests", d.Requests.List, any)
	api.GET("/requests/:id", d.Requests.Get, any)
	api.GET("/requests/:id/events", d.Requests.Events, any)
	api.POST("/requests/:id/approve", d.Requests.Approve, admin)
	api.POST("/requests/:id/reject", d.Requests.Reject, admin)
	api.POST("/requests/:id/retry", d.Requests.Retry, admin)
	api.POST("/requests/:id/cancel", d.Requests.Cancel, submitter)

	api.GET("/certificates", d.Certificates.List, any)
	api.GET("/certificates/:id", d.Certificates.Get, any)
	api.GET("/certificates/:id/pem", d.Certificates.PEM, any)
	api.GET("/certificates/:id/chain", d.Certificates.Chain, any)
	api.POST("/certificates/:id/revoke", d.Certificates.Revoke, submitter)
	api.GET("/revocation/reasons", handlers.RevocationReasons, any)

	api.GET("/orgs", d.Orgs.List, any)
	api.POST("/orgs", d.Orgs.Create, admin)
	api.GET("/orgs/:slug", d.Orgs.Get, any)
	api.PUT("/orgs/:slug", d.Orgs.Update, admin)
	api.GET("/orgs/:slug/members", d.Orgs.Members, admin)
	api.POST("/orgs/:slug/members", d.Orgs.AddMember, admin)
	if d.Users != nil {
		api.GET("/users", d.Users.List, admin)
		api.DELETE("/orgs/:slug/members/:subject", d.Users.RemoveMember, admin)
		api.GET("/orgs/:slug/invitations", d.Users.Invitations, admin)
		api.POST("/orgs/:slug/invitations", d.Users.Invite, admin)
		api.DELETE("/orgs/:slug/invitations/:id", d.Users.RevokeInvitation, admin)
	}

	api.GET("/tokens", d.Tokens.List, any)
	api.POST("/tokens", d.Tokens.Create, any)
	api.DELETE("/tokens/:id", d.Tokens.Delete, any)

	if d.BlockedKeys != nil {
		api.GET("/blocked-keys", d.BlockedKeys.List, admin)
		api.POST("/blocked-keys", d.BlockedKeys.Create, admin)
	}

	api.GET("/audit/events", d.Audit.Events, auditor)
	api.GET("/audit/export", d.Audit.Export, auditor)
	api.GET("/audit/verify", d.Audit.Verify, auditor)

	if d.Stats != nil {
		api.GET("/stats", d.Stats.Get, any)
	}
	automationRoutes(e, api, d, any, submitter, admin)
	if d.Revocation != nil {
		api.GET("/revocation", d.Revocation.Status, any)
	}
	// Anything else under /api is a 404 problem, never the SPA.
	api.Any("/*", func(c echo.Context) error { return echo.NewHTTPError(http.StatusNotFound, "no such API endpoint") })

	serveFrontend(e, d.Frontend)
	return e
}

// automationRoutes adds the automation protocols: ACME (RFC 8555) with its
// bindings API, EST (RFC 7030) and renewal with the current certificate.
// Client certificates are read only on the routes that authenticate by
// them.
func automationRoutes(e *echo.Echo, api *echo.Group, d Deps, any, submitter, admin echo.MiddlewareFunc) {
	if d.ACME != nil {
		s := d.ACME
		e.GET("/acme/directory", s.Handler(s.Directory))
		e.HEAD("/acme/new-nonce", s.Handler(s.NewNonce))
		e.GET("/acme/new-nonce", s.Handler(s.NewNonce))
		e.POST("/acme/new-account", s.Handler(s.NewAccount))
		e.POST("/acme/account/:id", s.Handler(s.Account))
		e.POST("/acme/account/:id/orders", s.Handler(s.Orders))
		e.POST("/acme/key-change", s.Handler(s.KeyChange))
		e.POST("/acme/new-order", s.Handler(s.NewOrder))
		e.POST("/acme/order/:id", s.Handler(s.Order))
		e.POST("/acme/order/:id/finalize", s.Handler(s.Finalize))
		e.POST("/acme/authz/:order/:index", s.Handler(s.Authorization))
		e.POST("/acme/cert/:id", s.Handler(s.Certificate))
		e.POST("/acme/revoke-cert", s.Handler(s.RevokeCert))
		e.GET("/acme/renewal-info/:id", s.Handler(s.RenewalInfo))
	}
	if h := d.ACMEBindings; h != nil {
		api.GET("/acme/bindings", h.List, any)
		api.POST("/acme/bindings", h.Create, submitter)
		api.GET("/acme/bindings/:id", h.Get, any)
		api.POST("/acme/bindings/:id/approve", h.Approve, admin)
		api.POST("/acme/bindings/:id/credentials", h.Credentials, submitter)
		api.POST("/acme/bindings/:id/revoke", h.Revoke, submitter)
		api.DELETE("/acme/bindings/:id", h.Revoke, submitter)
		if h.Codes != nil {
			api.POST("/acme/bindings/:id/est-codes", h.ESTCode, submitter)
		}
	}
	cc := d.ClientCerts
	if cc == nil {
		cc = &ClientCerts{} // the TLS connection's certificate only
	}
	peer := cc.Middleware()
	if s := d.EST; s != nil {
		e.GET("/.well-known/est/cacerts", s.CACerts)
		e.GET("/.well-known/est/csrattrs", s.CSRAttrs)
		e.POST("/.well-known/est/simpleenroll", s.SimpleEnroll)
		e.POST("/.well-known/est/simplereenroll", s.SimpleReenroll, peer)
	}
	if d.Renew != nil {
		// Authenticated by the certificate alone, outside the API group's
		// session and token authentication.
		e.POST("/api/v1/renew", d.Renew.Create, peer)
	}
}

// apiNoStore marks every API answer not to be stored by any cache: they
// carry one caller's view of certificates, requests, tokens and audit
// events (RFC 9111 §5.2.2.5).
func apiNoStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return next(c)
	}
}

// exceptOCSP runs all, in order, on every request but OCSP's (POST
// /ocsp, GET /ocsp/…), which get only ocsp (the extra middleware of tests)
// and a recovery from a panic. An OCSP answer is public, signed and
// cacheable, asked for by gateways on every handshake: a request id, a log
// line, a metrics observation per route and browser security headers would
// cost more than serving the pre-signed answer. OCSP answers are counted
// by status (revocation.Observer, certdesk_ocsp_responses_total) and the
// handler bounds the body itself. echo applies its middleware anew on
// every request, one closure each: this one middleware is the only
// closure an OCSP answer costs, and the chains are built only for the
// requests that run them.
func exceptOCSP(ocsp, all []echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p := c.Request().URL.Path; p == "/ocsp" || strings.HasPrefix(p, "/ocsp/") {
				return serveRecovering(chain(next, ocsp), c)
			}
			return chain(next, all)(c)
		}
	}
}

// chain is h under mws, the first outermost; h itself when mws is empty.
func chain(h echo.HandlerFunc, mws []echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// serveRecovering runs h, turning a panic into an error for the error
// handler (a 500 that says nothing of it), as echo's Recover middleware
// does for the other routes; http.ErrAbortHandler is let through, as
// net/http expects.
func serveRecovering(h echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			err = fmt.Errorf("panic serving %s: %v", c.Request().URL.Path, r)
		}
	}()
	return h(c)
}

// RevocationRoutes adds the public CRL and OCSP routes.
func RevocationRoutes(e *echo.Echo, h *handlers.Revocation) {
	e.GET("/crl/issuing.crl", h.CRL(revocation.CRLIssuing, false))
	e.GET("/crl/root.crl", h.CRL(revocation.CRLRoot, false))
	e.GET("/crl/issuing.pem", h.CRL(revocation.CRLIssuing, true))
	e.GET("/crl/root.pem", h.CRL(revocation.CRLRoot, true))
	e.GET("/crl/bundle.pem", h.Bundle)
	e.GET("/crl/issuing-delta.crl", h.CRL(revocation.CRLDelta, false))
	e.GET("/crl/issuing-delta.pem", h.CRL(revocation.CRLDelta, true))
	e.GET("/crl/issuing/:file", h.Partition)
	// Each issuing CA with a URL segment: the paths its certificates name.
	e.GET("/crl/:ca/:file", h.SegmentCRL)
	e.GET("/crl/:ca/issuing/:file", h.SegmentPartition)
	e.POST("/ocsp", h.OCSPPost)
	e.POST("/ocsp/", h.OCSPPost)
	e.POST("/ocsp/:ca", h.OCSPPost)
	e.GET("/ocsp/*", h.OCSPGet)
}

// actorContext puts the authenticated principal into the request context as
// the models.Actor that handlers and the audit log use.
func actorContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := PrincipalFrom(c); p != nil {
			a := models.Actor{Subject: p.Subject, Role: p.Role, Org: p.Org, Source: c.RealIP(), Email: p.Email, TokenID: p.TokenID}
			c.SetRequest(c.Request().WithContext(models.WithActor(c.Request().Context(), a)))
		}
		return next(c)
	}
}

type meAnswer struct {
	Subject   string `json:"subject"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	Org       string `json:"org"`
	Via       string `json:"via"`
	CSRFToken string `json:"csrf_token,omitempty"`
	Demo      bool   `json:"demo"`
	DemoKey   bool   `json:"demo_key"`
}

func me(d Deps) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := PrincipalFrom(c)
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, meAnswer{
			Subject: p.Subject, Name: p.Name, Email: p.Email, Role: p.Role, Org: p.Org, Via: p.Via,
			CSRFToken: p.CSRFToken, Demo: d.Demo, DemoKey: d.DemoKey,
		})
	}
}

// contentSecurityPolicy allows only the app's own scripts and styles: no
// inline script, no third-party origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if c.Scheme() == "https" {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// requestLog writes one structured line per request with its request id.
func requestLog(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogRequestID: true, LogRemoteIP: true,
		LogError: true, HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			// The path only: query strings can carry OAuth codes and state.
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(context.Background(), level, "http request",
				slog.String("request_id", v.RequestID), slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency), slog.String("remote_ip", v.RemoteIP))
			return nil
		},
	})
}

// serveFrontend serves the embedded app: hashed assets cached immutably,
// index.html never cached, and index.html for any other GET path that is
// not an API, auth, CA, CRL or OCSP path (SPA fallback).
func serveFrontend(e *echo.Echo, dist fs.FS) {
	index, err := fs.ReadFile(dist, "index.html")
	if err != nil {
		index, _ = fs.ReadFile(dist, "placeholder.html")
	}
	assets := http.FileServer(http.FS(dist))
	e.GET("/assets/*", func(c echo.Context) error {
		// Files only: a directory is never listed.
		if f, err := fs.Stat(dist, strings.TrimPrefix(c.Request().URL.Path, "/")); err != nil || f.IsDir() {
			return echo.NewHTTPError(http.StatusNotFound)
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		assets.ServeHTTP(c.Response(), c.Request())
		return nil
	})
	spa := func(c echo.Context) error {
		p := c.Request().URL.Path
		for _, prefix := range []string{"/api/", "/auth/", "/ca/", "/crl/", "/ocsp", "/acme/", "/.well-known/"} {
			if strings.HasPrefix(p, prefix) {
				return echo.NewHTTPError(http.StatusNotFound)
			}
		}
		if f, err := fs.Stat(dist, strings.TrimPrefix(p, "/")); err == nil && !f.IsDir() && p != "/index.html" {
			c.Response().Header().Set("Cache-Control", "public, max-age=3600")
			assets.ServeHTTP(c.Response(), c.Request())
			return nil
		}
		c.Response().Header().Set("Cache-Control", "no-cache")
		return c.HTMLBlob(http.StatusOK, index)
	}
	e.GET("/", spa)
	e.GET("/*", spa)
}
