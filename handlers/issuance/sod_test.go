package issuance_test

import (
	"errors"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// allowRenewals switches auto-approval of renewals on for acme.
func (e *env) allowRenewals() {
	e.t.Helper()
	o, err := e.store.GetOrg(bg, "acme")
	if err != nil {
		e.t.Fatal(err)
	}
	o.AutoApproveRenewals = true
	if err := e.store.UpdateOrg(bg, admin, o); err != nil {
		e.t.Fatal(err)
	}
}

// TestSubmit_Renewal_AutoApprovedOnlyForAPartnersSameIdentityRenewal: of
// the renewals an organisation that allows auto-approval receives, only a
// partner's renewal with exactly the certificate's identities is signed
// without a second person; an admin's own renewal waits for another admin.
func TestSubmit_Renewal_AutoApprovedOnlyForAPartnersSameIdentityRenewal(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		old := e.issue("billing")
		e.allowRenewals()
		for _, tc := range []struct {
			name      string
			who       models.Actor
			wantState string
		}{
			{"an admin alone", admin, models.StateSubmitted},
			{"a partner of the organisation", partner, models.StateIssued},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pemText, _ := csr(t, old.Identities...)
				r, err := e.wf.Submit(bg, tc.who, issuance.Submission{Org: "acme", CSRPEM: pemText, RenewalOf: old.ID})
				if err != nil {
					t.Fatalf("Submit: %v", err)
				}
				if r.State != tc.wantState {
					t.Fatalf("renewal by %s is %s, want %s", tc.who.Subject, r.State, tc.wantState)
				}
			})
		}
	})
}

func TestSubmit_Renewal_OfRevokedOrExpiredCertificate_RefusedByRuleRenewal(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		e.allowRenewals()
		revoked := e.issue("revoked")
		if _, err := s.RevokeCertificate(bg, admin, revoked.ID, 4); err != nil {
			t.Fatal(err)
		}
		valid := e.issue("valid")
		for _, tc := range []struct {
			name string
			cert *models.Certificate
			now  time.Time
		}{
			{"revoked", revoked, time.Now()},
			{"expired", valid, valid.NotAfter.Add(time.Second)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.wf.Now = func() time.Time { return tc.now }
				defer func() { e.wf.Now = nil }()
				pemText, _ := csr(t, tc.cert.Identities...)
				_, err := e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: pemText, RenewalOf: tc.cert.ID})
				var pe *signer.PolicyError
				if !errors.As(err, &pe) || pe.Rule != "renewal" {
					t.Fatalf("renewal of a %s certificate: %v, want rule renewal", tc.name, err)
				}
			})
		}
	})
}

func TestApprove_KeyBlockedAfterSubmission_Refused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("late")
		if err := s.BlockKey(bg, admin, &models.BlockedKey{KeySHA256: r.KeySHA256, Reason: "reported"}); err != nil {
			t.Fatal(err)
		}
		_, err := e.wf.Approve(bg, admin2, r.ID, "ok")
		var pe *signer.PolicyError
		if !errors.As(err, &pe) || pe.Rule != signer.RuleBlockedKey {
			t.Fatalf("approving a request whose key is now blocked: %v", err)
		}
		if got, _ := s.GetRequest(bg, r.ID); got.State != models.StateSubmitted {
			t.Fatalf("request is %s, want still submitted", got.State)
		}
	})
}

// A key blocked between the approver's read and the approval is refused by
// the store's approval itself: nothing is approved or reserved.
func TestApproveAndReserve_KeyBlockedMeanwhile_ChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		r := e.submit("race")
		if err := s.BlockKey(bg, admin, &models.BlockedKey{KeySHA256: r.KeySHA256, Reason: "reported"}); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		c := &models.Certificate{Serial: "01", NotBefore: now, NotAfter: now.Add(time.Hour), PrecertDER: []byte{1},
			Org: r.Org, Identities: r.Identities, KeyType: r.KeyType}
		if _, err := s.ApproveAndReserve(bg, admin2, r.ID, "ok", c); !errors.Is(err, models.ErrKeyBlocked) {
			t.Fatalf("ApproveAndReserve of a blocked key: %v, want ErrKeyBlocked", err)
		}
		if got, _ := s.GetRequest(bg, r.ID); got.State != models.StateSubmitted || got.CertificateID != nil {
			t.Fatalf("request is %s (certificate %v), want still submitted", got.State, got.CertificateID)
		}
		var n int64
		if err := s.DB().Model(&models.Certificate{}).Where("request_id = ?", r.ID).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("%d certificates reserved (%v)", n, err)
		}
	})
}

// A certificate revoked after the workflow checked the renewal, before the
// store approves it automatically, stops that approval: the store checks
// the renewed certificate in the transaction that approves (on PostgreSQL
// under a share lock, so a revocation under way is waited for).
func TestSubmitAutoApproved_RenewedCertificateRevokedMeanwhile_ChangesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		e := newEnv(t, s)
		e.allowRenewals()
		base := e.issue("base")
		if _, err := s.RevokeCertificate(bg, admin, base.ID, models.ReasonSuperseded); err != nil {
			t.Fatal(err)
		}
		before, _, _ := s.ListRequests(bg, models.RequestFilter{})
		pemText, _ := csr(t, base.Identities...)
		now := time.Now()
		r := &models.Request{Org: "acme", Identities: base.Identities, CSRPEM: pemText, ValidityDays: 30,
			KeySHA256: mustKeySHA256(t, pemText), RenewalOf: &base.ID}
		c := &models.Certificate{Serial: "02", NotBefore: now, NotAfter: now.Add(time.Hour), PrecertDER: []byte{1}}
		if err := s.SubmitAutoApproved(bg, partner, r, c); !errors.Is(err, models.ErrRenewalNotValid) {
			t.Fatalf("auto-approving the renewal of a revoked certificate: %v, want ErrRenewalNotValid", err)
		}
		if after, _, _ := s.ListRequests(bg, models.RequestFilter{}); len(after) != len(before) {
			t.Fatalf("the refusal recorded %d requests", len(after)-len(before))
		}
	})
}
