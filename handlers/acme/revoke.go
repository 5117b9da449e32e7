package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// acmeRevocationReasons are the RFC 5280 §5.3.1 reasons an ACME client may
// give: unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation.
var acmeRevocationReasons = []int{0, 1, 3, 4, 5}

// RevokeCert is POST /acme/revoke-cert (RFC 8555 §7.6), signed either by
// an account of the certificate's organisation whose binding covers every
// DNS name of the certificate (kid), or by the certificate's own key (jwk).
func (s *Server) RevokeCert(c echo.Context) error {
	req, err := s.post(c, true, true)
	if err != nil {
		return err
	}
	var p struct {
		Certificate string `json:"certificate"`
		Reason      *int   `json:"reason"`
	}
	if err := decode(req.payload, &p); err != nil {
		return err
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p.Certificate, "="))
	if err != nil {
		return malformed("certificate is not base64url DER")
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return malformed("certificate cannot be parsed")
	}
	ctx := c.Request().Context()
	cert, err := s.Store.GetCertificateBySerial(ctx, x.SerialNumber.Text(16))
	if err != nil || !bytes.Equal(cert.DER, der) {
		return &Problem{Type: errMalformed, Status: 404, Detail: "this server did not issue that certificate"}
	}
	reason := 0
	if p.Reason != nil {
		reason = *p.Reason
	}
	if !slices.Contains(acmeRevocationReasons, reason) {
		return &Problem{Type: errBadRevocationReason, Status: 400, Detail: "the reason must be 0, 1, 3, 4 or 5 (RFC 5280 §5.3.1)"}
	}
	var a models.Actor
	if req.jwk != nil {
		want, err := thumbprint(req.jwk)
		if err != nil {
			return err
		}
		got, err := certKeyThumbprint(x)
		if err != nil || got != want {
			return &Problem{Type: errUnauthorized, Status: 403, Detail: "the JWS is not signed by the certificate's key"}
		}
		a = models.Actor{Subject: "acme-certificate-key:" + cert.Serial, Role: models.RolePartner, Org: cert.Org, Source: c.RealIP()}
	} else {
		if cert.Org != req.account.Org || !coversAll(req.binding, x.DNSNames) {
			return &Problem{Type: errUnauthorized, Status: 403, Detail: "the account is not authorised for every identifier of that certificate"}
		}
		a = actorOf(c, req.account)
	}
	if cert.State == models.CertRevoked {
		return &Problem{Type: errAlreadyRevoked, Status: 400, Detail: "the certificate is already revoked"}
	}
	if _, err := s.Workflow.Revoke(ctx, a, cert.ID, reason); err != nil {
		if errors.Is(err, models.ErrConflict) {
			return &Problem{Type: errAlreadyRevoked, Status: 400, Detail: "the certificate is already revoked"}
		}
		return err
	}
	return c.NoContent(http.StatusOK)
}

// certKeyThumbprint is the JWK thumbprint of a certificate's public key.
func certKeyThumbprint(x *x509.Certificate) (string, error) {
	return thumbprint(&jose.JSONWebKey{Key: x.PublicKey})
}

func coversAll(b *models.ACMEBinding, names []string) bool {
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		if !b.Covers(n) {
			return false
		}
	}
	return true
}

// RenewalInfo is GET /acme/renewal-info/{id} (RFC 9773 §4.2): the window
// in which to renew is the last third of the certificate's life, ending a
// ninth before expiry; a revoked certificate should be replaced now.
func (s *Server) RenewalInfo(c echo.Context) error {
	cert, err := s.certificateOfARIID(c, c.Param("id"), "")
	if err != nil {
		return err
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	start, end := cert.NotBefore.Add(life*2/3), cert.NotAfter.Add(-life/9)
	if cert.State == models.CertRevoked {
		now := s.now()
		start, end = now.Add(-time.Hour), now
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(ariRetryAfter.Seconds())))
	return c.JSON(http.StatusOK, map[string]any{
		"suggestedWindow": map[string]string{
			"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339),
		},
	})
}

// certificateOfARIID finds the certificate named by an ARI certificate id
// (RFC 9773 §4.1: base64url authority key id "." base64url serial), of org
// unless org is "".
func (s *Server) certificateOfARIID(c echo.Context, id, org string) (*models.Certificate, error) {
	akiPart, serialPart, ok := strings.Cut(id, ".")
	aki, err1 := base64.RawURLEncoding.DecodeString(akiPart)
	serial, err2 := base64.RawURLEncoding.DecodeString(serialPart)
	if !ok || err1 != nil || err2 != nil || len(serial) == 0 {
		return nil, malformed("not an ARI certificate id (base64url AKI '.' base64url serial)")
	}
	if !bytes.Equal(aki, s.Issuing.SubjectKeyId) {
		return nil, &Problem{Type: errMalformed, Status: 404, Detail: "the certificate is not of this CA"}
	}
	cert, err := s.Store.GetCertificateBySerial(c.Request().Context(), hex.EncodeToString(serial))
	if err != nil || (org != "" && cert.Org != org) || len(cert.DER) == 0 {
		return nil, &Problem{Type: errMalformed, Status: 404, Detail: "no such certificate"}
	}
	return cert, nil
}
