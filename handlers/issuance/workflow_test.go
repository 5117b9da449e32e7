package issuance_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

func TestWorkflow_SubmitApprove_IssuesTheApprovedIdentities(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("billing")
		if r.State != models.StateSubmitted {
			t.Fatalf("submitted request is %s", r.State)
		}
		approved, err := e.wf.Approve(bg, admin, r.ID, "known partner")
		if err != nil {
			t.Fatalf("Approve: %v", err)
		}
		if approved.State != models.StateIssued || approved.CertificateID == nil {
			t.Fatalf("approved request is %s with certificate %v, want issued with one", approved.State, approved.CertificateID)
		}
		c, err := s.GetCertificate(bg, *approved.CertificateID)
		if err != nil {
			t.Fatal(err)
		}
		cert := e.verify(c.DER)
		if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://example.org/partners/acme/billing" {
			t.Fatalf("certificate URIs %v", cert.URIs)
		}
		if c.State != models.CertIssued || c.Org != "acme" {
			t.Fatalf("certificate is %s of %s", c.State, c.Org)
		}
		for _, action := range []string{"request.submit", "request.approve", "certificate.reserve", "certificate.issue"} {
			evs, _, err := s.ListAudit(bg, models.AuditFilter{Action: action})
			if err != nil || len(evs) != 1 {
				t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
			}
		}
		if v, err := s.VerifyAudit(bg); err != nil || !v.OK {
			t.Fatalf("audit chain: %+v, %v", v, err)
		}
	})
}

func TestWorkflow_Check_RefusesByNamedRule(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		org, err := s.GetOrg(bg, "acme")
		if err != nil {
			t.Fatal(err)
		}
		inside, _ := csr(t, "spiffe://example.org/partners/acme/api")
		outside, _ := csr(t, "spiffe://example.org/partners/globex/api")
		for _, tc := range []struct {
			name     string
			csr      string
			ids      []string
			days     int
			wantRule string
		}{
			{"garbage CSR", "not a CSR", nil, 0, "encoding"},
			{"identity of another organisation", outside, nil, 0, "namespace"},
			{"requested identity outside the namespace", inside, []string{"spiffe://example.org/partners/globex/api"}, 0, "namespace"},
			{"validity over the organisation's cap", inside, nil, 91, "validity"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.wf.Check(org, tc.csr, tc.ids, tc.days)
				var pe *signer.PolicyError
				if !errors.As(err, &pe) || pe.Rule != tc.wantRule {
					t.Fatalf("Check: %v, want a refusal by rule %q", err, tc.wantRule)
				}
				before, _, _ := s.ListRequests(bg, models.RequestFilter{})
				if _, err := e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: tc.csr, Identities: tc.ids, ValidityDays: tc.days}); !errors.As(err, &pe) {
					t.Fatalf("Submit: %v, want the same refusal", err)
				}
				after, _, _ := s.ListRequests(bg, models.RequestFilter{})
				if len(after) != len(before) {
					t.Fatal("a refused submission was recorded")
				}
			})
		}
		checked, err := e.wf.Check(org, inside, nil, 0)
		if err != nil || checked.ValidityDays != 90 || checked.Identities.Strings()[0] != "spiffe://example.org/partners/acme/api" {
			t.Fatalf("Check of a good CSR: %+v, %v", checked, err)
		}
	})
}

func TestWorkflow_Approve_OwnRequestRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		pemText, _ := csr(t, "spiffe://example.org/partners/acme/self")
		r, err := e.wf.Submit(bg, admin, issuance.Submission{Org: "acme", CSRPEM: pemText})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.wf.Approve(bg, admin, r.ID, "mine"); !errors.Is(err, models.ErrForbidden) {
			t.Fatalf("self-approval: %v, want ErrForbidden", err)
		}
		if got, _ := s.GetRequest(bg, r.ID); got.State != models.StateSubmitted {
			t.Fatalf("request is %s after a refused self-approval", got.State)
		}
		if _, err := e.wf.Approve(bg, admin2, r.ID, "checked"); err != nil {
			t.Fatalf("approval by a second admin: %v", err)
		}
	})
}

func TestWorkflow_ApproveSameRequestConcurrently_IssuesOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("race")
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := admin
				if i%2 == 1 {
					a = admin2
				}
				_, errs[i] = e.wf.Approve(bg, a, r.ID, "race")
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, models.ErrConflict):
				t.Errorf("a losing approval failed with %v, want ErrConflict", err)
			}
		}
		certs, _, err := s.ListCertificates(bg, models.CertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if ok != 1 || len(certs) != 1 {
			t.Fatalf("%d approvals succeeded and %d certificates exist, want exactly one of each", ok, len(certs))
		}
	})
}

func TestWorkflow_Reject_IssuesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("rejected")
		got, err := e.wf.Reject(bg, admin, r.ID, "unknown service")
		if err != nil || got.State != models.StateRejected || got.DecisionReason != "unknown service" {
			t.Fatalf("Reject: %+v, %v", got, err)
		}
		if _, err := e.wf.Approve(bg, admin2, r.ID, "late"); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("approving a rejected request: %v, want ErrConflict", err)
		}
		if certs, _, _ := s.ListCertificates(bg, models.CertFilter{}); len(certs) != 0 {
			t.Fatalf("%d certificates for a rejected request", len(certs))
		}
	})
}

// TestWorkflow_Recover_SignsExactlyTheRecordedCertificate: a process that
// died between recording and signing leaves a pending certificate; Recover
// signs exactly the recorded to-be-signed certificate, once.
func TestWorkflow_Recover_SignsExactlyTheRecordedCertificate(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Now())
		s.Now = clock.Now
		e := newEnv(t, s)
		r := e.submit("crash")
		approved, err := s.ApproveRequest(bg, admin, r.ID, "ok")
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.ca.CA.Issuer.Prepare(signer.LeafRequest{PublicKey: mustCSRKey(t, approved.CSRPEM),
			Identities: mustIdentities(t, approved.Identities), Organization: "Acme Corp", Validity: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		pending := &models.Certificate{Serial: p.Serial.String(), RequestID: r.ID, NotBefore: p.NotBefore, NotAfter: p.NotAfter, PrecertDER: p.PrecertDER}
		if err := s.ReserveCertificate(bg, admin, pending); err != nil {
			t.Fatal(err)
		}
		// The process dies here. Once its lease has expired, recovery finishes.
		clock.Advance(models.IssuanceLease + time.Second)
		finished, failed, err := e.wf.Recover(bg)
		if err != nil || finished != 1 || failed != 0 {
			t.Fatalf("Recover: finished %d failed %d, %v", finished, failed, err)
		}
		c, err := s.GetCertificate(bg, pending.ID)
		if err != nil || c.State != models.CertIssued {
			t.Fatalf("recovered certificate: %+v, %v", c, err)
		}
		cert := e.verify(c.DER)
		if cert.SerialNumber.Cmp(p.Serial.Big()) != 0 || !cert.NotAfter.Equal(p.NotAfter) {
			t.Fatalf("recovery signed serial %x until %v, recorded %x until %v", cert.SerialNumber, cert.NotAfter, p.Serial, p.NotAfter)
		}
		if got, _ := s.GetRequest(bg, r.ID); got.State != models.StateIssued {
			t.Fatalf("request is %s after recovery", got.State)
		}
		if finished, failed, err := e.wf.Recover(bg); finished+failed != 0 || err != nil {
			t.Fatalf("a second Recover did %d/%d (%v), want nothing", finished, failed, err)
		}
	})
}

func TestWorkflow_Revoke_RecordsThenPublishesOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		c := e.issue("revoked")
		got, err := e.wf.Revoke(bg, partner, c.ID, 1)
		if err != nil || got.State != models.CertRevoked || got.RevocationReason == nil || *got.RevocationReason != 1 {
			t.Fatalf("Revoke: %+v, %v", got, err)
		}
		if e.pub.count() != 1 {
			t.Fatalf("publisher told %d times, want once", e.pub.count())
		}
		if _, err := e.wf.Revoke(bg, admin, c.ID, 4); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("revoking twice: %v, want ErrConflict", err)
		}
		if e.pub.count() != 1 {
			t.Fatal("a refused revocation was published")
		}
		stored, _ := s.GetCertificate(bg, c.ID)
		if stored.RevocationReason == nil || *stored.RevocationReason != 1 || !bytes.Equal(stored.DER, c.DER) {
			t.Fatal("the second revocation changed the first")
		}
	})
}
