package issuance_test

import (
	"errors"
	"testing"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

func TestIssuePreauthorized_SubmittedByTheClientDecidedByTheApprover(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		client := models.Actor{Subject: "acme-account:1", Role: models.RolePartner, Org: "acme", Source: "test"}
		pemText, _ := csr(t)
		r, err := e.wf.IssuePreauthorized(bg, client, issuance.Preauthorized{
			Org: "acme", CSRPEM: pemText, Identities: []string{"api.acme.example"}, Via: models.ViaACME,
			ViaRef: "binding/b account/1", DecidedBy: admin.Subject, Reason: "pre-authorised by binding b",
		})
		if err != nil {
			t.Fatalf("IssuePreauthorized: %v", err)
		}
		if r.State != models.StateIssued || r.RequestedBy != client.Subject || r.DecidedBy != admin.Subject || r.Via != models.ViaACME || r.ViaRef != "binding/b account/1" {
			t.Fatalf("request: %+v", r)
		}
		c, err := s.GetCertificate(bg, *r.CertificateID)
		if err != nil {
			t.Fatal(err)
		}
		if cert := e.verify(c.DER); len(cert.DNSNames) != 1 || cert.DNSNames[0] != "api.acme.example" {
			t.Fatalf("certificate names %v", cert.DNSNames)
		}
		for _, action := range []string{"request.submit", "request.preauthorized", "certificate.reserve", "certificate.issue"} {
			if evs, _, err := s.ListAudit(bg, models.AuditFilter{Action: action}); err != nil || len(evs) != 1 {
				t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
			}
		}
	})
}

func TestIssuePreauthorized_RefusesSelfDecisionAndPolicy_IssuingNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		client := models.Actor{Subject: "acme-account:1", Role: models.RolePartner, Org: "acme", Source: "test"}
		pemText, _ := csr(t)
		_, err := e.wf.IssuePreauthorized(bg, client, issuance.Preauthorized{Org: "acme", CSRPEM: pemText,
			Identities: []string{"api.acme.example"}, Via: models.ViaACME, DecidedBy: client.Subject})
		if !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("decided by the requester: %v, want ErrForbidden", err)
		}
		_, err = e.wf.IssuePreauthorized(bg, client, issuance.Preauthorized{Org: "acme", CSRPEM: pemText,
			Identities: []string{"api.globex.example"}, Via: models.ViaACME, DecidedBy: admin.Subject})
		var pe *signer.PolicyError
		if !errors.As(err, &pe) || pe.Rule != "namespace" {
			t.Fatalf("outside the namespace: %v, want a namespace refusal", err)
		}
		reqs, _, err := s.ListRequests(bg, models.RequestFilter{})
		if err != nil || len(reqs) != 0 {
			t.Fatalf("refusals recorded %d requests (%v)", len(reqs), err)
		}
	})
}
