package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/revocation"
)

// RevocationService is what the CRL, OCSP and revocation-status handlers
// need of the revocation service.
type RevocationService interface {
	CRL(issuer string, asPEM bool) (*revocation.File, error)
	CRLAt(segment, issuer string, asPEM bool) (*revocation.File, error)
	Bundle() (*revocation.File, error)
	Answer(ctx context.Context, der []byte) revocation.Response
	Status() revocation.Status
}

// Revocation serves /crl/…, /ocsp and GET /api/v1/revocation.
type Revocation struct {
	Service RevocationService
}

// CRL serves one CRL: issuer is revocation.CRLIssuing or CRLRoot, as DER
// (application/pkix-crl, RFC 5280 §4.2.1.13) or PEM.
func (h *Revocation) CRL(issuer string, asPEM bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		f, err := h.Service.CRL(issuer, asPEM)
		return writeCRL(c, f, err)
	}
}

// Partition is GET /crl/issuing/<n>.crl (or .pem): one partition of the
// issuing CA's CRL, the URL named in its certificates' CRL distribution
// points and in the partition's issuing distribution point.
func (h *Revocation) Partition(c echo.Context) error {
	name, asPEM, ok := revocation.ParseCRLName(c.Param("file"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such CRL: a partition is /crl/issuing/<n>.crl or .pem")
	}
	f, err := h.Service.CRL(name, asPEM)
	if errors.Is(err, revocation.ErrNoSuchCRL) {
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	}
	return writeCRL(c, f, err)
}

// segmentCRLs maps the files under /crl/<segment>/ to their CRL.
var segmentCRLs = map[string]struct {
	name  string
	asPEM bool
}{
	"issuing.crl":       {revocation.CRLIssuing, false},
	"issuing.pem":       {revocation.CRLIssuing, true},
	"issuing-delta.crl": {revocation.CRLDelta, false},
	"issuing-delta.pem": {revocation.CRLDelta, true},
}

// SegmentCRL is GET /crl/<segment>/issuing.crl (and .pem, and the delta
// issuing-delta.crl/.pem): a CRL of the issuing CA whose URL segment it is,
// as its certificates name it.
func (h *Revocation) SegmentCRL(c echo.Context) error {
	f, ok := segmentCRLs[c.Param("file")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such CRL: /crl/<ca>/ holds issuing.crl, issuing.pem, issuing-delta.crl, issuing-delta.pem and issuing/<n>.crl")
	}
	return h.segmentCRL(c, c.Param("ca"), f.name, f.asPEM)
}

// SegmentPartition is GET /crl/<segment>/issuing/<n>.crl (or .pem): a
// partition of the CRL of the issuing CA whose URL segment it is.
func (h *Revocation) SegmentPartition(c echo.Context) error {
	name, asPEM, ok := revocation.ParseCRLName(c.Param("file"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such CRL: a partition is /crl/<ca>/issuing/<n>.crl or .pem")
	}
	return h.segmentCRL(c, c.Param("ca"), name, asPEM)
}

// segmentCRL serves CRL name of the CA with URL segment seg.
func (h *Revocation) segmentCRL(c echo.Context, seg, name string, asPEM bool) error {
	f, err := h.Service.CRLAt(seg, name, asPEM)
	if errors.Is(err, revocation.ErrNoSuchCRL) {
		return echo.NewHTTPError(http.StatusNotFound, err.Error())
	}
	return writeCRL(c, f, err)
}

// Bundle is GET /crl/bundle.pem: the CRLs nginx's ssl_crl needs (every
// issuing CA's with unexpired certificates, and the root's).
func (h *Revocation) Bundle(c echo.Context) error {
	f, err := h.Service.Bundle()
	return writeCRL(c, f, err)
}

// Status is GET /api/v1/revocation.
func (h *Revocation) Status(c echo.Context) error {
	return c.JSON(http.StatusOK, h.Service.Status())
}

// writeCRL writes a CRL with Last-Modified (thisUpdate), ETag and a
// Cache-Control that ends no later than nextUpdate.
func writeCRL(c echo.Context, f *revocation.File, err error) error {
	if errors.Is(err, revocation.ErrNotReady) {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	if err != nil {
		return err
	}
	hd := c.Response().Header()
	hd.Set("ETag", f.ETag)
	hd.Set("Last-Modified", f.LastModified.UTC().Format(http.TimeFormat))
	hd.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform", int(f.MaxAge.Seconds())))
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, f.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, f.ContentType, f.Body)
}
