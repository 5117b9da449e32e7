package acme

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// Identifier is an ACME identifier (RFC 8555 §9.7.7). Only "dns" is
// issued: certdesk's client certificates carry the DNS names of the
// binding; URI (SPIFFE) identities go through the portal or EST.
type Identifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type orderBody struct {
	Status         string       `json:"status"`
	Expires        string       `json:"expires"`
	Identifiers    []Identifier `json:"identifiers"`
	Authorizations []string     `json:"authorizations"`
	Finalize       string       `json:"finalize"`
	Certificate    string       `json:"certificate,omitempty"`
	Replaces       string       `json:"replaces,omitempty"`
	Error          *Problem     `json:"error,omitempty"`
}

func (s *Server) orderJSON(o *models.ACMEOrder) orderBody {
	b := orderBody{Status: o.Status, Expires: o.Expires.UTC().Format(time.RFC3339), Identifiers: []Identifier{},
		Authorizations: []string{}, Finalize: s.url("/acme/order/" + o.ID + "/finalize"), Replaces: o.Replaces}
	for i, name := range o.Identifiers {
		b.Identifiers = append(b.Identifiers, Identifier{Type: "dns", Value: name})
		b.Authorizations = append(b.Authorizations, s.url(fmt.Sprintf("/acme/authz/%s/%d", o.ID, i)))
	}
	if o.CertificateID != nil {
		b.Certificate = s.url("/acme/cert/" + *o.CertificateID)
	}
	if o.Error != "" {
		b.Error = &Problem{Type: errBadCSR, Status: 400, Detail: o.Error}
	}
	return b
}

type newOrderPayload struct {
	Identifiers []Identifier `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Replaces    string       `json:"replaces"`
}

// NewOrder is POST /acme/new-order (RFC 8555 §7.4). Every identifier must
// be a DNS name inside the account's binding; the order is then ready at
// once. Any other identifier refuses the whole order with
// rejectedIdentifier (or unsupportedIdentifier for types other than dns),
// one subproblem per identifier.
func (s *Server) NewOrder(c echo.Context) error {
	req, err := s.post(c, false, true)
	if err != nil {
		return err
	}
	var p newOrderPayload
	if err := decode(req.payload, &p); err != nil {
		return err
	}
	if p.NotBefore != "" || p.NotAfter != "" {
		return malformed("notBefore and notAfter are not supported: the validity is the binding's")
	}
	if len(p.Identifiers) == 0 {
		return malformed("an order needs at least one identifier")
	}
	var (
		names []string
		subs  []Subproblem
	)
	for _, id := range p.Identifiers {
		switch {
		case id.Type != "dns":
			subs = append(subs, Subproblem{Type: errUnsupportedIdentifier, Identifier: id,
				Detail: fmt.Sprintf("identifier type %q is not issued: only dns", id.Type)})
		case !validDNS(id.Value):
			subs = append(subs, Subproblem{Type: errRejectedIdentifier, Identifier: id, Detail: "not a DNS name certdesk issues (no wildcards)"})
		case !req.binding.Covers(id.Value):
			subs = append(subs, Subproblem{Type: errRejectedIdentifier, Identifier: id, Detail: "outside the scope of the account's external account binding"})
		case slices.Contains(names, strings.ToLower(id.Value)):
			subs = append(subs, Subproblem{Type: errMalformed, Identifier: id, Detail: "listed twice"})
		default:
			names = append(names, strings.ToLower(id.Value))
		}
	}
	if len(subs) > 0 {
		typ := errRejectedIdentifier
		if len(subs) == 1 {
			typ = subs[0].Type
		}
		return &Problem{Type: typ, Status: 400, Detail: "the order has identifiers this account may not have certified", Subproblems: subs}
	}
	if p.Replaces != "" {
		if _, err := s.certificateOfARIID(c, p.Replaces, req.account.Org); err != nil {
			return err
		}
	}
	o := &models.ACMEOrder{AccountID: req.account.ID, BindingID: req.binding.ID, Org: req.account.Org,
		Identifiers: names, Replaces: p.Replaces, Expires: s.now().Add(orderLifetime)}
	if err := s.Store.CreateACMEOrder(c.Request().Context(), actorOf(c, req.account), o); err != nil {
		return err
	}
	c.Response().Header().Set("Location", s.url("/acme/order/"+o.ID))
	return c.JSON(http.StatusCreated, s.orderJSON(o))
}

// validDNS accepts the DNS names that signer accepts as identities.
func validDNS(name string) bool {
	ids, err := signer.ParseIdentities([]string{name})
	return err == nil && len(ids.DNSNames) == 1
}

// accountOrder checks a POST by an account (s.post) and loads the order
// named by the path parameter param, which must be that account's.
func (s *Server) accountOrder(c echo.Context, param string) (*request, *models.ACMEOrder, error) {
	req, err := s.post(c, false, true)
	if err != nil {
		return nil, nil, err
	}
	o, err := s.Store.GetACMEOrder(c.Request().Context(), c.Param(param))
	if err != nil || o.AccountID != req.account.ID {
		return nil, nil, &Problem{Type: errMalformed, Status: 404, Detail: "no such order of this account"}
	}
	return req, o, nil
}

// Order is POST-as-GET /acme/order/{id}.
func (s *Server) Order(c echo.Context) error {
	_, o, err := s.accountOrder(c, "id")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.orderJSON(o))
}

// Authorization is POST-as-GET /acme/authz/{order}/{index}: valid from the
// start, with no challenge, because the binding pre-authorised the name.
func (s *Server) Authorization(c echo.Context) error {
	_, o, err := s.accountOrder(c, "order")
	if err != nil {
		return err
	}
	i, err := strconv.Atoi(c.Param("index"))
	if err != nil || i < 0 || i >= len(o.Identifiers) {
		return &Problem{Type: errMalformed, Status: 404, Detail: "no such authorization"}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"status":     models.ACMEValid,
		"expires":    o.Expires.UTC().Format(time.RFC3339),
		"identifier": Identifier{Type: "dns", Value: o.Identifiers[i]},
		"challenges": []any{},
	})
}

// Finalize is POST /acme/order/{id}/finalize (RFC 8555 §7.4): the CSR must
// ask for exactly the order's names; the certificate is issued at once
// through the workflow, as a request submitted by the account and decided
// by the binding's approver.
func (s *Server) Finalize(c echo.Context) error {
	req, o, err := s.accountOrder(c, "id")
	if err != nil {
		return err
	}
	if o.Status != models.ACMEReady {
		return &Problem{Type: errOrderNotReady, Status: 403, Detail: "the order is " + o.Status + ", not ready"}
	}
	var p struct {
		CSR string `json:"csr"`
	}
	if err := decode(req.payload, &p); err != nil {
		return err
	}
	der, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p.CSR, "="))
	if err != nil {
		return &Problem{Type: errBadCSR, Status: 400, Detail: "csr is not base64url DER"}
	}
	insecureCSR, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return &Problem{Type: errBadCSR, Status: 400, Detail: "csr cannot be parsed: " + err.Error()}
	}
	if err := sameNames(insecureCSR, o.Identifiers); err != nil {
		return err
	}
	ctx := c.Request().Context()
	a := actorOf(c, req.account)
	if o, err = s.Store.MoveACMEOrder(ctx, a, o.ID, models.ACMEReady, models.ACMEProcessing, models.ACMEOrderUpdate{}); err != nil {
		if errors.Is(err, models.ErrConflict) {
			return &Problem{Type: errOrderNotReady, Status: 403, Detail: "the order is being finalized already"}
		}
		return err
	}
	renewalOf := ""
	if o.Replaces != "" {
		if old, err := s.certificateOfARIID(c, o.Replaces, o.Org); err == nil {
			renewalOf = old.ID
		}
	}
	b := req.binding
	r, err := s.Workflow.IssuePreauthorized(ctx, a, issuance.Preauthorized{
		Org: o.Org, CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		Identities: o.Identifiers, ValidityDays: b.ValidityDays, Via: models.ViaACME,
		ViaRef:    fmt.Sprintf("binding/%s account/%s order/%s", b.ID, req.account.ID, o.ID),
		DecidedBy: b.ApprovedBy, RenewalOf: renewalOf,
		Reason: fmt.Sprintf("pre-authorised by ACME binding %q (%s), approved by %s", b.Name, b.ID, b.ApprovedBy),
	})
	if err != nil || r.CertificateID == nil {
		if err == nil {
			err = errors.New("the request was not issued")
		}
		pr := problemOf(err)
		if _, merr := s.Store.MoveACMEOrder(ctx, a, o.ID, models.ACMEProcessing, models.ACMEInvalid, models.ACMEOrderUpdate{Error: pr.Detail}); merr != nil {
			s.log().ErrorContext(ctx, "recording a failed ACME order", "order", o.ID, "err", merr)
		}
		return err
	}
	if o, err = s.Store.MoveACMEOrder(ctx, a, o.ID, models.ACMEProcessing, models.ACMEValid,
		models.ACMEOrderUpdate{RequestID: r.ID, CertificateID: *r.CertificateID}); err != nil {
		return err
	}
	c.Response().Header().Set("Location", s.url("/acme/order/"+o.ID))
	return c.JSON(http.StatusOK, s.orderJSON(o))
}

// sameNames checks that the CSR asks for exactly the order's DNS names (its
// common name, if any, among them) and nothing else (RFC 8555 §7.4).
func sameNames(insecureCSR *x509.CertificateRequest, names []string) error {
	if len(insecureCSR.URIs)+len(insecureCSR.EmailAddresses)+len(insecureCSR.IPAddresses) > 0 {
		return &Problem{Type: errBadCSR, Status: 400, Detail: "the CSR may ask only for the order's DNS names"}
	}
	got := map[string]bool{}
	for _, n := range insecureCSR.DNSNames {
		got[strings.ToLower(n)] = true
	}
	if cn := insecureCSR.Subject.CommonName; cn != "" {
		got[strings.ToLower(cn)] = true
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if len(got) != len(want) {
		return &Problem{Type: errBadCSR, Status: 400, Detail: "the CSR's names are not the order's identifiers"}
	}
	for n := range got {
		if !want[n] {
			return &Problem{Type: errBadCSR, Status: 400, Detail: fmt.Sprintf("the CSR asks for %q, which the order does not", n)}
		}
	}
	return nil
}

// Certificate is POST-as-GET /acme/cert/{id}: the leaf and the issuing CA
// as application/pem-certificate-chain (RFC 8555 §7.4.2), for accounts of
// the certificate's organisation.
func (s *Server) Certificate(c echo.Context) error {
	req, err := s.post(c, false, true)
	if err != nil {
		return err
	}
	cert, err := s.Store.GetCertificate(c.Request().Context(), c.Param("id"))
	if err != nil || cert.Org != req.account.Org || len(cert.DER) == 0 {
		return &Problem{Type: errMalformed, Status: 404, Detail: "no such certificate"}
	}
	var buf bytes.Buffer
	_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: cert.DER})
	_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: s.Issuing.Raw})
	return c.Blob(http.StatusOK, "application/pem-certificate-chain", buf.Bytes())
}
