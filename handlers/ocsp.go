package handlers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/signer"
)

// maxOCSPRequest bounds an OCSP request body.
const maxOCSPRequest = 64 << 10

// ocspBodies are buffers for request bodies: an OCSP request is a few
// hundred bytes at most, read on every answer.
var ocspBodies = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// OCSPPost is POST /ocsp with a DER request (application/ocsp-request).
func (h *Revocation) OCSPPost(c echo.Context) error {
	bp := ocspBodies.Get().(*[]byte)
	defer ocspBodies.Put(bp)
	body, err := readBody(c.Request().Body, (*bp)[:0], maxOCSPRequest)
	*bp = body[:0]
	if err != nil {
		return writeOCSP(c, malformedOCSP())
	}
	// Answer keeps nothing of body (what it remembers, it copies).
	return writeOCSP(c, h.Service.Answer(c.Request().Context(), body))
}

// readBody appends r to buf, up to limit bytes (an error beyond).
func readBody(r io.Reader, buf []byte, limit int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return buf, errors.New("OCSP request too large")
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, errors.New("OCSP request too large")
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// OCSPGet is GET /ocsp/{base64 of the DER request} (RFC 6960 Appendix
// A.1), or /ocsp/<segment>/{base64} for an issuing CA with a URL segment
// (the request's CertID says which CA answers, whatever the path). The
// base64 text may contain '/', and may be URL-escaped.
func (h *Revocation) OCSPGet(c echo.Context) error {
	raw := stripOCSPSegment(strings.TrimPrefix(c.Request().URL.EscapedPath(), "/ocsp/"))
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

// stripOCSPSegment drops a leading CA URL segment (a-z, 0-9, '-', then
// '/') from the path after /ocsp/. The base64 of a DER request begins with
// 'M' (the SEQUENCE tag 0x30), never with one of those characters.
func stripOCSPSegment(raw string) string {
	i := strings.IndexByte(raw, '/')
	if i <= 0 {
		return raw
	}
	for _, r := range raw[:i] {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return raw
		}
	}
	return raw[i+1:]
}

func malformedOCSP() revocation.Response {
	return revocation.Response{DER: signer.OCSPErrorResponse(ocsp.Malformed), NoStore: true}
}

// ocspContentType is the Content-Type of every OCSP answer (RFC 6960
// Appendix A.1).
var ocspContentType = []string{"application/ocsp-response"}

// writeOCSP writes an answer with HTTP 200, as OCSP clients expect, and
// the caching headers of RFC 5019 §6; a GET whose If-None-Match names the
// answer's ETag gets 304.
func writeOCSP(c echo.Context, r revocation.Response) error {
	hd := c.Response().Header()
	if r.CacheControlH != nil && c.Request().Method == http.MethodPost {
		// A cached answer to a POST: headers made once, no allocation.
		hd["Cache-Control"], hd["Etag"], hd["Last-Modified"], hd["Expires"] = r.CacheControlH, r.ETagH, r.LastModifiedH, r.ExpiresH
		hd["Content-Type"] = ocspContentType
		c.Response().WriteHeader(http.StatusOK)
		_, err := c.Response().Write(r.DER)
		return err
	}
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
