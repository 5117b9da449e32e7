// Package acme is certdesk's ACME server (RFC 8555) for client
// certificates: accounts need external account binding (§7.3.4) to a
// binding that one person asked for and another approved; orders for DNS
// names inside the binding are pre-authorised (authorizations valid from the
// start, no challenge) and issued through the issuance workflow (profile,
// lint-before-sign, record-before-sign, audit). It also serves renewal
// information (ARI, RFC 9773), key rollover, account deactivation and
// revocation by account key or certificate key.
package acme

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// Store is what the ACME server needs of the store.
type Store interface {
	StoreACMENonce(ctx context.Context, value string, expires time.Time) error
	UseACMENonce(ctx context.Context, value string) (bool, error)
	GetACMEBinding(ctx context.Context, id string) (*models.ACMEBinding, error)
	CreateACMEAccount(ctx context.Context, a models.Actor, acct *models.ACMEAccount) error
	GetACMEAccount(ctx context.Context, id string) (*models.ACMEAccount, error)
	GetACMEAccountByThumbprint(ctx context.Context, thumbprint string) (*models.ACMEAccount, error)
	ChangeACMEAccountKey(ctx context.Context, a models.Actor, id, oldThumbprint, newThumbprint, jwk string) (*models.ACMEAccount, error)
	DeactivateACMEAccount(ctx context.Context, a models.Actor, id string) (*models.ACMEAccount, error)
	CreateACMEOrder(ctx context.Context, a models.Actor, o *models.ACMEOrder) error
	GetACMEOrder(ctx context.Context, id string) (*models.ACMEOrder, error)
	ListACMEOrders(ctx context.Context, accountID string) ([]models.ACMEOrder, error)
	MoveACMEOrder(ctx context.Context, a models.Actor, id, from, to string, u models.ACMEOrderUpdate) (*models.ACMEOrder, error)
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
	GetCertificate(ctx context.Context, id string) (*models.Certificate, error)
	GetCertificateBySerial(ctx context.Context, serialHex string) (*models.Certificate, error)
}

// Workflow is what the ACME server needs of the issuance workflow.
type Workflow interface {
	IssuePreauthorized(ctx context.Context, a models.Actor, p issuance.Preauthorized) (*models.Request, error)
	Revoke(ctx context.Context, a models.Actor, id string, reason int) (*models.Certificate, error)
}

// Server serves /acme/*.
type Server struct {
	Store    Store
	Workflow Workflow
	// Keys opens the sealed HMAC keys of bindings.
	Keys *Sealer
	// BaseURL is the portal's public URL (https://certdesk.example); every
	// ACME URL is under BaseURL/acme and a JWS url must match it exactly.
	BaseURL string
	// Issuing is the issuing CA certificate: the chain served after the
	// leaf, and the authority key id of ARI certificate ids.
	Issuing *x509.Certificate
	Log     *slog.Logger
	Now     func() time.Time
}

// Lifetimes of nonces and orders.
const (
	nonceLifetime = 30 * time.Minute
	orderLifetime = 7 * 24 * time.Hour
	// ariRetryAfter is how often clients should ask for renewal information
	// again (RFC 9773 §4.3).
	ariRetryAfter = 6 * time.Hour
)

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Server) url(path string) string { return strings.TrimRight(s.BaseURL, "/") + path }

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Handler wraps an ACME endpoint: every answer carries a fresh nonce and the
// directory link (RFC 8555 §6.5, §7.1), and errors are ACME problem
// documents (§6.7); internal errors are logged, never sent.
func (s *Server) Handler(fn func(c echo.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Add("Link", fmt.Sprintf("<%s>;rel=\"index\"", s.url("/acme/directory")))
		if nonce, err := s.newNonce(c.Request().Context()); err == nil {
			h.Set("Replay-Nonce", nonce)
		} else {
			s.log().ErrorContext(c.Request().Context(), "making an ACME nonce", "err", err)
		}
		err := fn(c)
		if err == nil {
			return nil
		}
		p := problemOf(err)
		if p.Status >= 500 {
			s.log().ErrorContext(c.Request().Context(), "ACME request failed", "path", c.Request().URL.Path, "err", err)
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(p.Status)
		return json.NewEncoder(c.Response()).Encode(p)
	}
}

func (s *Server) newNonce(ctx context.Context) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	n := base64.RawURLEncoding.EncodeToString(b)
	return n, s.Store.StoreACMENonce(ctx, n, s.now().Add(nonceLifetime))
}

// Directory is GET /acme/directory (RFC 8555 §7.1.1, RFC 9773 §4).
func (s *Server) Directory(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{
		"newNonce":    s.url("/acme/new-nonce"),
		"newAccount":  s.url("/acme/new-account"),
		"newOrder":    s.url("/acme/new-order"),
		"revokeCert":  s.url("/acme/revoke-cert"),
		"keyChange":   s.url("/acme/key-change"),
		"renewalInfo": s.url("/acme/renewal-info"),
		"meta": map[string]any{
			"externalAccountRequired": true,
			"website":                 strings.TrimRight(s.BaseURL, "/") + "/",
		},
	})
}

// NewNonce is HEAD and GET /acme/new-nonce (RFC 8555 §7.2).
func (s *Server) NewNonce(c echo.Context) error {
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	return c.NoContent(http.StatusNoContent)
}

// readJWS reads a POST body of type application/jose+json (RFC 8555 §6.2).
func readJWS(c echo.Context) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt != "application/jose+json" {
		return nil, &Problem{Type: errMalformed, Status: http.StatusUnsupportedMediaType, Detail: "the body must be application/jose+json"}
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 256<<10))
	if err != nil {
		return nil, malformed("reading the body: " + err.Error())
	}
	return body, nil
}

// post authenticates a POST to the URL of this request.
func (s *Server) post(c echo.Context, jwkAllowed, kidAllowed bool) (*request, error) {
	body, err := readJWS(c)
	if err != nil {
		return nil, err
	}
	return s.authenticate(c.Request().Context(), body, s.url(c.Request().URL.Path), jwkAllowed, kidAllowed)
}

// decode reads a JSON payload strictly enough to catch a wrong shape.
func decode(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return malformed("the payload is not the expected JSON object: " + err.Error())
	}
	return nil
}

// actorOf is the audit actor of an account's request.
func actorOf(c echo.Context, acct *models.ACMEAccount) models.Actor {
	return models.Actor{Subject: "acme-account:" + acct.ID, Role: models.RolePartner, Org: acct.Org, Source: c.RealIP()}
}

// problemOf turns an error into the ACME problem to send.
func problemOf(err error) *Problem {
	var (
		p  *Problem
		pe *signer.PolicyError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &pe):
		return &Problem{Type: errBadCSR, Status: 400, Detail: fmt.Sprintf("refused by policy (%s): %s", pe.Rule, pe.Reason)}
	case errors.Is(err, signer.ErrPolicy):
		return &Problem{Type: errBadCSR, Status: 400, Detail: err.Error()}
	case errors.Is(err, models.ErrNotFound):
		return &Problem{Type: errMalformed, Status: 404, Detail: "no such resource"}
	case errors.Is(err, models.ErrConflict):
		return &Problem{Type: errMalformed, Status: 409, Detail: err.Error()}
	case errors.Is(err, models.ErrForbidden):
		return &Problem{Type: errUnauthorized, Status: 403, Detail: err.Error()}
	case errors.Is(err, issuance.ErrHSMPending):
		return &Problem{Type: errServerInternal, Status: 503, Detail: "the signing key is unavailable; the certificate will be issued when it is back"}
	}
	return &Problem{Type: errServerInternal, Status: 500, Detail: "an internal error occurred"}
}
