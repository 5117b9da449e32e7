package issuance_test

import (
	"errors"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// TestApprove_PolicyNowRefuses_NothingRecordedAndTheRequestWaits: an
// approval of a request that the organisation's policy no longer allows is
// refused with the rule, before anything is recorded: the request stays
// submitted with no certificate and no approval in the audit log, so it can
// be rejected, or approved once policy allows it again.
func TestApprove_PolicyNowRefuses_NothingRecordedAndTheRequestWaits(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("moved")
		org, _ := s.GetOrg(bg, "acme")
		allowed := org.URIPrefixes
		org.URIPrefixes = models.StringList{"spiffe://example.org/partners/elsewhere/"}
		if err := s.UpdateOrg(bg, admin, org); err != nil {
			t.Fatal(err)
		}
		_, err := e.wf.Approve(bg, admin2, r.ID, "ok")
		var pe *signer.PolicyError
		if !errors.As(err, &pe) || pe.Rule != "namespace" {
			t.Fatalf("approval against the new namespace: %v, want a namespace refusal", err)
		}
		got, _ := s.GetRequest(bg, r.ID)
		if got.State != models.StateSubmitted || got.CertificateID != nil || got.DecidedBy != "" {
			t.Fatalf("refused approval left the request %s, certificate %v, decided by %q", got.State, got.CertificateID, got.DecidedBy)
		}
		for _, action := range []string{"request.approve", "certificate.reserve"} {
			if evs, _, err := s.ListAudit(bg, models.AuditFilter{Action: action}); err != nil || len(evs) != 0 {
				t.Fatalf("audit %s after the refusal: %d events, %v", action, len(evs), err)
			}
		}
		if v, err := s.VerifyAudit(bg); err != nil || !v.OK {
			t.Fatalf("audit chain: %+v, %v", v, err)
		}
		org.URIPrefixes = allowed
		if err := s.UpdateOrg(bg, admin, org); err != nil {
			t.Fatal(err)
		}
		issued, err := e.wf.Approve(bg, admin2, r.ID, "ok now")
		if err != nil || issued.State != models.StateIssued || issued.CertificateID == nil {
			t.Fatalf("approval once policy allows it: %+v, %v", issued, err)
		}
		c, _ := s.GetCertificate(bg, *issued.CertificateID)
		e.verify(c.DER)
	})
}
