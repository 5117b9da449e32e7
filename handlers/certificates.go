package handlers

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/crlreason"
	"github.com/certdesk/certdesk/signer/serial"
)

// CertificateStore is what the certificate handlers need.
type CertificateStore interface {
	GetCertificate(ctx context.Context, id string) (*models.Certificate, error)
	ListCertificates(ctx context.Context, f models.CertFilter) ([]models.Certificate, string, error)
}

// Revoker revokes a certificate: record, then publish.
type Revoker interface {
	Revoke(ctx context.Context, a models.Actor, id string, reason int) (*models.Certificate, error)
}

// Certificates serves /api/v1/certificates.
type Certificates struct {
	Store CertificateStore
	// IssuingPEM is the issuing CA certificate, appended for /chain.
	IssuingPEM []byte
	// Revoker records a revocation and publishes it (issuance.Workflow).
	Revoker Revoker
	Now     func() time.Time
}

// CertificateView is a certificate as the API shows it.
type CertificateView struct {
	ID               string     `json:"id"`
	Serial           string     `json:"serial"`
	Org              string     `json:"org"`
	Identities       []string   `json:"identities"`
	KeyType          string     `json:"key_type"`
	NotBefore        time.Time  `json:"not_before"`
	NotAfter         time.Time  `json:"not_after"`
	State            string     `json:"state"`
	RequestID        string     `json:"request_id"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason string     `json:"revocation_reason,omitempty"`
	RevokedBy        string     `json:"revoked_by,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
}

func (h *Certificates) view(c *models.Certificate) CertificateView {
	v := CertificateView{
		ID: c.ID, Serial: c.Serial, Org: c.Org, Identities: c.Identities, KeyType: c.KeyType,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, State: models.CertState(c, h.Now()),
		RequestID: c.RequestID, RevokedAt: c.RevokedAt, RevokedBy: c.RevokedBy, CreatedAt: c.CreatedAt,
	}
	if c.RevocationReason != nil {
		v.RevocationReason = crlreason.Name(*c.RevocationReason)
	}
	if v.Identities == nil {
		v.Identities = []string{}
	}
	return v
}

// List is GET /certificates with filters state (valid, revoked, expired),
// org, expiring_within_days and serial (any case, colons and leading zeros
// allowed, as openssl and gateways print it).
func (h *Certificates) List(c echo.Context) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	a := actor(c)
	f := models.CertFilter{Org: scopeOrg(a, c.QueryParam("org")), State: c.QueryParam("state"), Cursor: cursor, Limit: limit}
	switch f.State {
	case "", "valid", "revoked", "expired":
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "state must be valid, revoked or expired")
	}
	if d := c.QueryParam("expiring_within_days"); d != "" {
		var n int
		if _, err := fmt.Sscan(d, &n); err != nil || n < 0 || n > 3650 {
			return echo.NewHTTPError(http.StatusBadRequest, "expiring_within_days must be a number of days")
		}
		t := h.Now().Add(time.Duration(n) * 24 * time.Hour)
		f.ExpiringBefore = &t
	}
	if v := c.QueryParam("serial"); v != "" {
		sn, err := serial.Parse(v)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		f.Serial = sn.String()
	}
	items, next, err := h.Store.ListCertificates(c.Request().Context(), f)
	if err != nil {
		return err
	}
	views := make([]CertificateView, 0, len(items))
	for i := range items {
		views = append(views, h.view(&items[i]))
	}
	return c.JSON(http.StatusOK, listOf(views, next))
}

// load fetches an issued certificate the caller may see, else 404.
func (h *Certificates) load(c echo.Context) (*models.Certificate, error) {
	cert, err := h.Store.GetCertificate(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, err
	}
	if !canSee(actor(c), cert.Org) || (cert.State != models.CertIssued && cert.State != models.CertRevoked) {
		return nil, models.ErrNotFound
	}
	return cert, nil
}

// Get is GET /certificates/{id}.
func (h *Certificates) Get(c echo.Context) error {
	cert, err := h.load(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.view(cert))
}

// PEM is GET /certificates/{id}/pem.
func (h *Certificates) PEM(c echo.Context) error {
	cert, err := h.load(c)
	if err != nil {
		return err
	}
	return pemDownload(c, cert.Serial+".pem", signer.PEM(cert.DER))
}

// Chain is GET /certificates/{id}/chain: the leaf and the issuing CA.
func (h *Certificates) Chain(c echo.Context) error {
	cert, err := h.load(c)
	if err != nil {
		return err
	}
	return pemDownload(c, cert.Serial+"-chain.pem", bytes.Join([][]byte{signer.PEM(cert.DER), h.IssuingPEM}, nil))
}

func pemDownload(c echo.Context, name string, b []byte) error {
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", name))
	return c.Blob(http.StatusOK, "application/x-pem-file", b)
}

type revokeBody struct {
	Reason string `json:"reason"`
}

// Revoke is POST /certificates/{id}/revoke with an RFC 5280 reason name.
// Who may give which reason is crlreason's table (GET /revocation/reasons):
// partners a few, for their organisation's certificates; admins any
// supported reason. Revoking twice answers 409 and changes nothing.
func (h *Certificates) Revoke(c echo.Context) error {
	var b revokeBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Reason == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "reason is required (GET /api/v1/revocation/reasons lists the reasons you may give)")
	}
	code, err := signer.ReasonCode(b.Reason)
	if err != nil {
		return err
	}
	reason, _ := crlreason.ByCode(code)
	cert, err := h.load(c)
	if err != nil {
		return err
	}
	a := actor(c)
	if !canActFor(a, cert.Org) {
		return models.ErrNotFound
	}
	if !mayRevokeWith(a, cert.Org, reason) {
		return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("a %s may not revoke with %s; allowed: %s", a.Role, reason.Name, strings.Join(crlreason.NamesFor(a.Role), ", ")))
	}
	revoked, err := h.Revoker.Revoke(c.Request().Context(), a, cert.ID, code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.view(revoked))
}
