package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/signer"
)

// CAFiles serves the public CA certificates: PEM for people and gateways,
// DER for the AIA caIssuers URLs in certificates (RFC 5280 §4.2.2.1).
type CAFiles struct {
	RootDER, IssuingDER []byte
}

func (h *CAFiles) serve(c echo.Context, contentType string, b []byte) error {
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	c.Response().Header().Set("ETag", etag)
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, contentType, b)
}

// RootPEM is GET /ca/root.pem.
func (h *CAFiles) RootPEM(c echo.Context) error {
	return h.serve(c, "application/x-pem-file", signer.PEM(h.RootDER))
}

// IssuingPEM is GET /ca/issuing.pem.
func (h *CAFiles) IssuingPEM(c echo.Context) error {
	return h.serve(c, "application/x-pem-file", signer.PEM(h.IssuingDER))
}

// BundlePEM is GET /ca/bundle.pem: issuing CA then root, what gateways
// configure as trusted client CAs.
func (h *CAFiles) BundlePEM(c echo.Context) error {
	return h.serve(c, "application/x-pem-file", bytes.Join([][]byte{signer.PEM(h.IssuingDER), signer.PEM(h.RootDER)}, nil))
}

// RootDER is GET /ca/root.der.
func (h *CAFiles) RootDERFile(c echo.Context) error {
	return h.serve(c, "application/pkix-cert", h.RootDER)
}

// IssuingDERFile is GET /ca/issuing.der.
func (h *CAFiles) IssuingDERFile(c echo.Context) error {
	return h.serve(c, "application/pkix-cert", h.IssuingDER)
}
