// Package est is certdesk's EST server (RFC 7030): CA certificates,
// enrolment authenticated by an ACME binding's credentials (HTTP basic:
// key id and HMAC key; orders inside the binding's scope are
// pre-authorised), re-enrolment authenticated by the current certificate
// over mTLS (a renewal of the same identities under the organisation's
// renewal rule), and the CSR attributes the CA wants.
package est

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/acme"
	"github.com/certdesk/certdesk/handlers/certauth"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// Store is what EST needs of the store.
type Store interface {
	GetACMEBinding(ctx context.Context, id string) (*models.ACMEBinding, error)
	PeekESTCode(ctx context.Context, codeHash string) (*models.ESTCode, *models.ACMEBinding, error)
	UseESTCode(ctx context.Context, a models.Actor, codeHash string) (*models.ESTCode, *models.ACMEBinding, error)
	GetCertificate(ctx context.Context, id string) (*models.Certificate, error)
	ListRequests(ctx context.Context, f models.RequestFilter) ([]models.Request, string, error)
}

// TokenActor returns the actor of an API token, ok false when secret is
// not shaped like an API token at all, and an error for an unusable one.
type TokenActor func(ctx context.Context, secret string) (a models.Actor, ok bool, err error)

// Workflow is what EST needs of the issuance workflow.
type Workflow interface {
	IssuePreauthorized(ctx context.Context, a models.Actor, p issuance.Preauthorized) (*models.Request, error)
	Submit(ctx context.Context, a models.Actor, s issuance.Submission) (*models.Request, error)
}

// Server serves /.well-known/est/*.
type Server struct {
	Store    Store
	Workflow Workflow
	Keys     *acme.Sealer
	Verifier *certauth.Verifier
	// Root and Issuing are the CA certificates of /cacerts; Issuing also
	// follows the leaf in enrolment answers.
	Root, Issuing *x509.Certificate
	// Tokens authenticates API tokens (HTTP bearer, or basic with the token
	// as password); nil: bindings only.
	Tokens TokenActor
	Log    *slog.Logger
	Now    func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// pkcs7 sends certificates as base64 certs-only PKCS#7 (RFC 7030 §4.1.3).
func pkcs7(c echo.Context, status int, ders ...[]byte) error {
	der, err := certsOnly(ders...)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Transfer-Encoding", "base64")
	h.Set("Cache-Control", "no-store")
	return c.Blob(status, "application/pkcs7-mime; smime-type=certs-only", []byte(wrap64(der)))
}

// wrap64 is base64 in lines of 64 characters (RFC 2045 §6.8), ended by
// LF alone, which base64 -d of coreutils reads (it refuses CR).
func wrap64(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

// CACerts is GET /.well-known/est/cacerts (RFC 7030 §4.1).
func (s *Server) CACerts(c echo.Context) error {
	return pkcs7(c, http.StatusOK, s.Issuing.Raw, s.Root.Raw)
}

// CSRAttrs is GET /.well-known/est/csrattrs (RFC 7030 §4.5): an ECDSA
// P-256 key with SHA-256, the CA's preferred key; the CA sets every name
// itself.
func (s *Server) CSRAttrs(c echo.Context) error {
	type attribute struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.ObjectIdentifier `asn1:"set"`
	}
	der, err := asn1.Marshal([]any{
		asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, // ecdsa-with-SHA256
		attribute{Type: asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, Values: []asn1.ObjectIdentifier{{1, 2, 840, 10045, 3, 1, 7}}},
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Transfer-Encoding", "base64")
	return c.Blob(http.StatusOK, "application/csrattrs", []byte(wrap64(der)))
}

// readCSR reads a base64 PKCS#10 body (RFC 7030 §4.2.1).
func readCSR(c echo.Context) (*x509.CertificateRequest, string, error) {
	ct := strings.ToLower(c.Request().Header.Get(echo.HeaderContentType))
	if !strings.HasPrefix(ct, "application/pkcs10") {
		return nil, "", echo.NewHTTPError(http.StatusUnsupportedMediaType, "the body must be application/pkcs10 (base64 DER)")
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
	if err != nil {
		return nil, "", echo.NewHTTPError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	if err != nil {
		return nil, "", echo.NewHTTPError(http.StatusBadRequest, "the body is not base64")
	}
	insecureCSR, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, "", echo.NewHTTPError(http.StatusBadRequest, "the body is not a PKCS#10 CSR: "+err.Error())
	}
	return insecureCSR, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// unauthorized asks for credentials (RFC 7030 §3.2.3).
func unauthorized(c echo.Context, msg string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="certdesk EST"`)
	return echo.NewHTTPError(http.StatusUnauthorized, msg)
}

// binding authenticates HTTP basic credentials: an approved, unexpired
// binding's key id and its HMAC key (base64url), compared in constant time.
func (s *Server) binding(c echo.Context) (*models.ACMEBinding, error) {
	kid, secret, ok := c.Request().BasicAuth()
	if !ok {
		return nil, unauthorized(c, "EST enrolment needs HTTP basic credentials: a binding's key id and HMAC key")
	}
	b, err := s.Store.GetACMEBinding(c.Request().Context(), kid)
	if err != nil || !b.Usable(s.now()) || len(b.HMACKeySealed) == 0 {
		return nil, unauthorized(c, "unknown, unapproved or revoked binding, or a wrong key")
	}
	key, err := s.Keys.Open(b.ID, b.HMACKeySealed)
	if err != nil {
		return nil, err
	}
	given, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(secret, "="))
	if err != nil || subtle.ConstantTimeCompare(given, key) != 1 {
		return nil, unauthorized(c, "unknown, unapproved or revoked binding, or a wrong key")
	}
	return b, nil
}

// SimpleEnroll is POST /.well-known/est/simpleenroll (RFC 7030 §4.2.1):
// with a binding's credentials or a one-time enrolment code of a binding,
// the CSR's DNS names must be inside the binding and the certificate is
// issued at once, as a request of the binding decided by its approver;
// with an API token, the request waits for an admin.
func (s *Server) SimpleEnroll(c echo.Context) error {
	if user, code, ok := c.Request().BasicAuth(); ok && user == CodeUser {
		return s.enrollWithCode(c, code)
	}
	if a, ok, err := s.tokenActor(c); ok || err != nil {
		if err != nil {
			return err
		}
		return s.enrollWithToken(c, a)
	}
	b, err := s.binding(c)
	if err != nil {
		return err
	}
	insecureCSR, csrPEM, err := readCSR(c)
	if err != nil {
		return err
	}
	names, err := inScope(b, insecureCSR)
	if err != nil {
		return err
	}
	a := models.Actor{Subject: "est-binding:" + b.ID, Role: models.RolePartner, Org: b.Org, Source: c.RealIP()}
	return s.issueForBinding(c, a, b, csrPEM, names, "")
}

// inScope returns the CSR's DNS names if the binding covers every one and
// the CSR asks for nothing else.
func inScope(b *models.ACMEBinding, insecureCSR *x509.CertificateRequest) ([]string, error) {
	names := signer.RequestedNames(insecureCSR)
	if len(names) == 0 || len(insecureCSR.URIs)+len(insecureCSR.EmailAddresses)+len(insecureCSR.IPAddresses) > 0 {
		return nil, &signer.PolicyError{Rule: "binding-scope", Reason: "an EST enrolment of a binding asks for DNS names only"}
	}
	for _, n := range names {
		if !b.Covers(n) {
			return nil, &signer.PolicyError{Rule: "binding-scope", Reason: fmt.Sprintf("%q is outside the binding's scope", n)}
		}
	}
	return names, nil
}

// issueForBinding issues the CSR at once under the binding's
// pre-authorisation; how says how the device proved it may use the
// binding, for the request's reason ("" for the binding's credentials).
func (s *Server) issueForBinding(c echo.Context, a models.Actor, b *models.ACMEBinding, csrPEM string, names []string, how string) error {
	reason := fmt.Sprintf("EST enrolment pre-authorised by binding %q (%s), approved by %s", b.Name, b.ID, b.ApprovedBy)
	if how != "" {
		reason += ", " + how
	}
	r, err := s.Workflow.IssuePreauthorized(c.Request().Context(), a, issuance.Preauthorized{
		Org: b.Org, CSRPEM: csrPEM, Identities: names, ValidityDays: b.ValidityDays, Via: models.ViaEST,
		ViaRef: "binding/" + b.ID, DecidedBy: b.ApprovedBy, Reason: reason,
	})
	if err != nil {
		return err
	}
	return s.answer(c, r)
}

// tokenActor authenticates an API token given as bearer, or as the
// password of HTTP basic; ok is false when the request carries none.
func (s *Server) tokenActor(c echo.Context) (models.Actor, bool, error) {
	if s.Tokens == nil {
		return models.Actor{}, false, nil
	}
	secret := ""
	if scheme, tok, found := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " "); found && strings.EqualFold(scheme, "Bearer") {
		secret = strings.TrimSpace(tok)
	} else if _, pw, ok := c.Request().BasicAuth(); ok {
		secret = pw
	}
	if secret == "" {
		return models.Actor{}, false, nil
	}
	a, ok, err := s.Tokens(c.Request().Context(), secret)
	if !ok {
		return models.Actor{}, false, nil
	}
	if err != nil {
		return models.Actor{}, true, unauthorized(c, "the API token is invalid, expired or revoked")
	}
	if a.Role != models.RolePartner || a.Org == "" {
		return models.Actor{}, true, echo.NewHTTPError(http.StatusForbidden, "EST enrolment with an API token takes a partner's token")
	}
	a.Source = c.RealIP()
	return a, true, nil
}

// enrollWithToken submits the CSR as the token's owner, to be approved by
// an admin like any request, and answers 202 with Retry-After; the client
// repeats the same request (RFC 7030 §4.2.3), which then gets the
// certificate once it is issued.
func (s *Server) enrollWithToken(c echo.Context, a models.Actor) error {
	insecureCSR, csrPEM, err := readCSR(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	rs, _, err := s.Store.ListRequests(ctx, models.RequestFilter{Org: a.Org, RequestedBy: a.Subject, Limit: 500})
	if err != nil {
		return err
	}
	for i := range rs {
		if rs[i].CSRPEM != csrPEM {
			continue
		}
		switch rs[i].State {
		case models.StateRejected, models.StateCancelled:
			return echo.NewHTTPError(http.StatusForbidden, fmt.Sprintf("request %s for this CSR was %s: %s", rs[i].ID, rs[i].State, rs[i].DecisionReason))
		}
		return s.answer(c, &rs[i])
	}
	r, err := s.Workflow.Submit(ctx, a, issuance.Submission{Org: a.Org, CSRPEM: csrPEM, Identities: signer.RequestedNames(insecureCSR),
		Note: "EST enrolment with an API token"})
	if err != nil {
		return err
	}
	return s.answer(c, r)
}

// SimpleReenroll is POST /.well-known/est/simplereenroll (RFC 7030 §4.2.2):
// authenticated by the current certificate over mTLS, for the same
// identities (a CSR asking for other names is refused), with the same or a
// new key; a renewal under the organisation's renewal rule, answered 202
// with Retry-After while it waits for an admin.
func (s *Server) SimpleReenroll(c echo.Context) error {
	ctx := c.Request().Context()
	cur, err := s.Verifier.Current(ctx)
	if err != nil {
		return currentErr(err)
	}
	insecureCSR, csrPEM, err := readCSR(c)
	if err != nil {
		return err
	}
	for _, n := range signer.RequestedNames(insecureCSR) {
		if !slices.Contains(cur.Identities, n) {
			return &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("%q is not an identity of the current certificate; re-enrolment keeps the identities", n)}
		}
	}
	a := models.Actor{Subject: "certificate:" + cur.Serial, Role: models.RolePartner, Org: cur.Org, Source: c.RealIP()}
	r, err := s.Workflow.Submit(ctx, a, issuance.Submission{Org: cur.Org, CSRPEM: csrPEM, Identities: cur.Identities,
		RenewalOf: cur.ID, Note: "EST re-enrolment with the current certificate " + cur.Serial})
	if err != nil {
		return err
	}
	return s.answer(c, r)
}

// currentErr maps a certauth refusal to 401 (no certificate) or 403.
func currentErr(err error) error {
	switch {
	case errors.Is(err, certauth.ErrNoCertificate):
		return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
	case errors.Is(err, certauth.ErrNotCurrent):
		return echo.NewHTTPError(http.StatusForbidden, err.Error())
	}
	return err
}

// answer sends the issued certificate, or 202 with Retry-After while the
// request waits for a decision (RFC 7030 §4.2.3).
func (s *Server) answer(c echo.Context, r *models.Request) error {
	if r.State != models.StateIssued || r.CertificateID == nil {
		c.Response().Header().Set("Retry-After", "3600")
		return c.JSON(http.StatusAccepted, map[string]string{"request": r.ID, "state": r.State})
	}
	cert, err := s.Store.GetCertificate(c.Request().Context(), *r.CertificateID)
	if err != nil {
		return err
	}
	return pkcs7(c, http.StatusOK, cert.DER, s.Issuing.Raw)
}
