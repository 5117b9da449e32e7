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

// The automation channels (ACME, EST, renewal over mTLS) reach a signature
// through IssuePreauthorized: the key rules hold there as on Submit, checked
// by the store in the transaction that records the request.
func TestIssuePreauthorized_RefusesBlockedAndForeignKeys_IssuingNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		globex := &models.Organization{Slug: "globex", Name: "Globex", DNSSuffixes: models.StringList{"globex.example"}, MaxValidityDays: 90}
		if err := s.CreateOrg(bg, admin, globex); err != nil {
			t.Fatal(err)
		}
		client := models.Actor{Subject: "acme-account:1", Role: models.RolePartner, Org: "acme", Source: "test"}
		preauthorized := func(pemText string) issuance.Preauthorized {
			return issuance.Preauthorized{Org: "acme", CSRPEM: pemText, Identities: []string{"api.acme.example"},
				Via: models.ViaACME, ViaRef: "binding/b account/1", DecidedBy: admin.Subject}
		}

		blockedPEM, _ := csr(t)
		if err := s.BlockKey(bg, admin, &models.BlockedKey{KeySHA256: mustKeySHA256(t, blockedPEM), Reason: "reported"}); err != nil {
			t.Fatal(err)
		}
		foreignPEM, _ := csr(t)
		if err := s.SubmitRequest(bg, admin, &models.Request{Org: "globex", Identities: []string{"api.globex.example"},
			CSRPEM: foreignPEM, ValidityDays: 30, KeySHA256: mustKeySHA256(t, foreignPEM)}); err != nil {
			t.Fatal(err)
		}
		before, _, _ := s.ListRequests(bg, models.RequestFilter{})
		for _, tc := range []struct {
			name, pem, rule string
		}{
			{"a blocked key", blockedPEM, signer.RuleBlockedKey},
			{"another organisation's key", foreignPEM, signer.RuleKeyOwner},
		} {
			_, err := e.wf.IssuePreauthorized(bg, client, preauthorized(tc.pem))
			var pe *signer.PolicyError
			if !errors.As(err, &pe) || pe.Rule != tc.rule {
				t.Errorf("%s: %v, want rule %s", tc.name, err, tc.rule)
			}
		}
		after, _, _ := s.ListRequests(bg, models.RequestFilter{})
		if len(after) != len(before) {
			t.Fatalf("refusals recorded %d requests", len(after)-len(before))
		}
	})
}

func mustKeySHA256(t *testing.T, pemText string) string {
	t.Helper()
	acc, err := signer.CSRPolicy{}.Check([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return acc.KeySHA256()
}
