package handlers

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/certauth"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
)

// RenewWorkflow is what renewal needs of the issuance workflow.
type RenewWorkflow interface {
	Submit(ctx context.Context, a models.Actor, s issuance.Submission) (*models.Request, error)
}

// Renew serves POST /api/v1/renew: a partner's host renews its current
// certificate, presented over mTLS (or forwarded by a trusted gateway),
// with a new CSR. The new certificate keeps the identities; it is asked for
// only in the last third of the current one's life, and approved by the
// organisation's renewal rule (automatically where the organisation allows
// it, else by an admin).
type Renew struct {
	Verifier *certauth.Verifier
	Workflow RenewWorkflow
	Store    interface {
		GetCertificate(ctx context.Context, id string) (*models.Certificate, error)
	}
	IssuingPEM []byte
	Now        func() time.Time
}

// Create is POST /api/v1/renew with a PEM CSR as the body.
func (h *Renew) Create(c echo.Context) error {
	ctx := c.Request().Context()
	cur, err := h.Verifier.Current(ctx)
	switch {
	case errors.Is(err, certauth.ErrNoCertificate):
		return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
	case errors.Is(err, certauth.ErrNotCurrent):
		return echo.NewHTTPError(http.StatusForbidden, err.Error())
	case err != nil:
		return err
	}
	if ok, opens := certauth.InRenewalWindow(cur, h.Now()); !ok {
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("certificate %s may be renewed from %s (the last third of its life)", cur.Serial, opens.UTC().Format(time.RFC3339)))
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxJSONBody))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	if b, _ := pem.Decode(body); b == nil || b.Type != "CERTIFICATE REQUEST" {
		return echo.NewHTTPError(http.StatusBadRequest, "the body must be a PEM CSR (-----BEGIN CERTIFICATE REQUEST-----)")
	}
	a := models.Actor{Subject: "certificate:" + cur.Serial, Role: models.RolePartner, Org: cur.Org, Source: c.RealIP()}
	r, err := h.Workflow.Submit(ctx, a, issuance.Submission{Org: cur.Org, CSRPEM: string(body), Identities: cur.Identities,
		RenewalOf: cur.ID, Note: "renewed over mTLS with the current certificate " + cur.Serial})
	if err != nil {
		return err
	}
	if r.State != models.StateIssued || r.CertificateID == nil {
		c.Response().Header().Set("Retry-After", "3600")
		return c.JSON(http.StatusAccepted, r)
	}
	cert, err := h.Store.GetCertificate(ctx, *r.CertificateID)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/certificates/"+cert.ID)
	out := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.DER}), h.IssuingPEM...)
	return c.Blob(http.StatusCreated, "application/pem-certificate-chain", out)
}
