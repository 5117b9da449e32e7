package handlers

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/signer"
)

// maxOCSPRequest bounds an OCSP request body.
const maxOCSPRequest = 64 << 10

// OCSPPost is POST /ocsp with a DER request (application/ocsp-request).
func (h *Revocation) OCSPPost(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxOCSPRequest))
	if err != nil {
		return writeOCSP(c, malformedOCSP())
	}
	return writeOCSP(c, h.Service.Answer(c.Request().Context(), body))
}

// OCSPGet is GET /ocsp/{base64 of the DER request} (RFC 6960 Appendix
// A.1). The base64 text may contain '/', and may be URL-escaped.
func (h *Revocation) OCSPGet(c echo.Context) error {
	raw := strings.TrimPrefix(c.Request().URL.EscapedPath(), "/ocsp/")
	text, err := url.PathUnescape(raw)
	if err != nil {
		return writeOCSP(c, malformedOCSP())
	}
	text = strings.TrimSpace(text)
	var der []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil || len(der) == 0 {
		return writeOCSP(c, malformedOCSP())
	}
	return writeOCSP(c, h.Service.Answer(c.Request().Context(), der))
}

func malformedOCSP() revocation.Response {
	return revocation.Response{DER: signer.OCSPErrorResponse(ocsp.Malformed), NoStore: true}
}

// writeOCSP writes an answer with HTTP 200, as OCSP clients expect, and
// the caching headers of RFC 5019 §6; a GET whose If-None-Match names the
// answer's ETag gets 304.
func writeOCSP(c echo.Context, r revocation.Response) error {
	hd := c.Response().Header()
	if r.NoStore {
		hd.Set("Cache-Control", "no-store")
		return c.Blob(http.StatusOK, "application/ocsp-response", r.DER)
	}
	hd.Set("Cache-Control", fmt.Sprintf("max-age=%d, public, no-transform, must-revalidate", int(r.MaxAge.Seconds())))
	hd.Set("ETag", r.ETag)
	hd.Set("Last-Modified", r.LastModified.UTC().Format(http.TimeFormat))
	hd.Set("Expires", r.Expires.UTC().Format(http.TimeFormat))
	if c.Request().Method == http.MethodGet && strings.Contains(c.Request().Header.Get("If-None-Match"), r.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, "application/ocsp-response", r.DER)
}
