package models_test

import (
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestACMEBinding_FourEyesAndTheKeyHandedOutOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		if err := s.CreateOrg(ctx, admin, &models.Organization{Slug: "acme", Name: "Acme", DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}); err != nil {
			t.Fatal(err)
		}
		b := &models.ACMEBinding{Org: "acme", DNSNames: models.StringList{"*.svc.acme.example"}, ExpiresAt: time.Now().Add(time.Hour)}
		wantErr(t, s.RequestACMEBinding(ctx, partner, b), nil)
		for _, tc := range []struct {
			name string
			b    *models.ACMEBinding
		}{
			{"no names", &models.ACMEBinding{Org: "acme", ExpiresAt: time.Now().Add(time.Hour)}},
			{"already expired", &models.ACMEBinding{Org: "acme", DNSNames: models.StringList{"a.acme.example"}, ExpiresAt: time.Now().Add(-time.Hour)}},
			{"an unknown organisation", &models.ACMEBinding{Org: "nope", DNSNames: models.StringList{"a.acme.example"}, ExpiresAt: time.Now().Add(time.Hour)}},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, s.RequestACMEBinding(ctx, partner, tc.b), models.ErrInvalid) })
		}
		_, err := s.TakeACMEBindingKey(ctx, partner, b.ID)
		wantErr(t, err, models.ErrConflict) // not approved yet
		self := models.Actor{Subject: partner.Subject, Role: models.RoleAdmin}
		_, err = s.ApproveACMEBinding(ctx, self, b.ID, []byte("sealed"))
		wantErr(t, err, models.ErrForbidden)
		approved, err := s.ApproveACMEBinding(ctx, admin, b.ID, []byte("sealed"))
		wantErr(t, err, nil)
		if approved.State != models.BindingApproved || approved.ApprovedBy != admin.Subject {
			t.Fatalf("approved binding: %+v", approved)
		}
		_, err = s.ApproveACMEBinding(ctx, admin2, b.ID, []byte("other"))
		wantErr(t, err, models.ErrConflict)
		_, err = s.TakeACMEBindingKey(ctx, admin, b.ID)
		wantErr(t, err, models.ErrNotFound) // only the requester
		got, err := s.TakeACMEBindingKey(ctx, partner, b.ID)
		wantErr(t, err, nil)
		if string(got.HMACKeySealed) != "sealed" {
			t.Fatalf("sealed key %q", got.HMACKeySealed)
		}
		_, err = s.TakeACMEBindingKey(ctx, partner, b.ID)
		wantErr(t, err, models.ErrConflict)
		other := models.Actor{Subject: "gil", Role: models.RolePartner, Org: "globex"}
		_, err = s.RevokeACMEBinding(ctx, other, b.ID)
		wantErr(t, err, models.ErrNotFound)
		revoked, err := s.RevokeACMEBinding(ctx, partner, b.ID)
		wantErr(t, err, nil)
		if revoked.Usable(time.Now()) {
			t.Fatal("a revoked binding is usable")
		}
		_, err = s.RevokeACMEBinding(ctx, partner, b.ID)
		wantErr(t, err, models.ErrConflict)
		err = s.CreateACMEAccount(ctx, partner, &models.ACMEAccount{BindingID: b.ID, Thumbprint: "tp", JWK: "{}"})
		wantErr(t, err, models.ErrForbidden)
		for _, action := range []string{"acme_binding.request", "acme_binding.approve", "acme_binding.key_shown", "acme_binding.revoke"} {
			if evs, _, err := s.ListAudit(ctx, models.AuditFilter{Action: action}); err != nil || len(evs) != 1 {
				t.Fatalf("audit %s: %d events, %v", action, len(evs), err)
			}
		}
		mustVerify(t, s)
	})
}

func TestACMEBinding_Covers_ExactNamesAndNamesBelowAPattern(t *testing.T) {
	b := &models.ACMEBinding{DNSNames: models.StringList{"*.billing.acme.example", "api.acme.example"}}
	for name, want := range map[string]bool{
		"a.billing.acme.example": true, "x.y.billing.acme.example": true, "A.Billing.Acme.Example.": true,
		"billing.acme.example": false, "api.acme.example": true, "www.api.acme.example": false, "evilbilling.acme.example": false,
	} {
		if got := b.Covers(name); got != want {
			t.Errorf("Covers(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestACMENonce_UsedOnceAndNotAfterItExpires(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := newClock()
		s.Now = clock.Now
		wantErr(t, s.StoreACMENonce(ctx, "n1", clock.Now().Add(time.Minute)), nil)
		wantErr(t, s.StoreACMENonce(ctx, "n2", clock.Now().Add(time.Minute)), nil)
		for _, tc := range []struct {
			nonce string
			want  bool
		}{{"n1", true}, {"n1", false}, {"never-made", false}} {
			if ok, err := s.UseACMENonce(ctx, tc.nonce); err != nil || ok != tc.want {
				t.Fatalf("UseACMENonce(%s) = %v, %v; want %v", tc.nonce, ok, err, tc.want)
			}
		}
		clock.Advance(2 * time.Minute)
		if ok, err := s.UseACMENonce(ctx, "n2"); err != nil || ok {
			t.Fatalf("an expired nonce was accepted: %v, %v", ok, err)
		}
	})
}
