package models_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func hashOf(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

func TestESTCode_UsedOnceBeforeItExpires_ForAUsableBindingOnly(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := time.Now()
		s.Now = func() time.Time { return clock }
		if err := s.CreateOrg(ctx, admin, &models.Organization{Slug: "acme", Name: "Acme", DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}); err != nil {
			t.Fatal(err)
		}
		b := &models.ACMEBinding{Org: "acme", DNSNames: models.StringList{"*.dev.acme.example"}, ExpiresAt: clock.Add(48 * time.Hour)}
		wantErr(t, s.RequestACMEBinding(ctx, partner, b), nil)
		day := clock.Add(24 * time.Hour)
		wantErr(t, s.CreateESTCode(ctx, partner, &models.ESTCode{BindingID: b.ID, CodeHash: hashOf("early"), ExpiresAt: day}), models.ErrConflict) // not approved
		if _, err := s.ApproveACMEBinding(ctx, admin, b.ID, []byte("sealed")); err != nil {
			t.Fatal(err)
		}
		other := models.Actor{Subject: "gil", Role: models.RolePartner, Org: "globex"}
		for _, tc := range []struct {
			name string
			a    models.Actor
			c    models.ESTCode
			want error
		}{
			{"a hash that is not hex SHA-256", partner, models.ESTCode{BindingID: b.ID, CodeHash: "plain", ExpiresAt: day}, models.ErrInvalid},
			{"an expiry in the past", partner, models.ESTCode{BindingID: b.ID, CodeHash: hashOf("x"), ExpiresAt: clock.Add(-time.Minute)}, models.ErrInvalid},
			{"an expiry over a week away", partner, models.ESTCode{BindingID: b.ID, CodeHash: hashOf("x"), ExpiresAt: clock.Add(8 * 24 * time.Hour)}, models.ErrInvalid},
			{"another organisation's binding", other, models.ESTCode{BindingID: b.ID, CodeHash: hashOf("x"), ExpiresAt: day}, models.ErrNotFound},
			{"an unknown binding", partner, models.ESTCode{BindingID: "nope", CodeHash: hashOf("x"), ExpiresAt: day}, models.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { wantErr(t, s.CreateESTCode(ctx, tc.a, &tc.c), tc.want) })
		}

		code := &models.ESTCode{BindingID: b.ID, CodeHash: hashOf("one"), ExpiresAt: day}
		wantErr(t, s.CreateESTCode(ctx, partner, code), nil)
		if code.Org != "acme" || code.CreatedBy != partner.Subject {
			t.Fatalf("code: %+v", code)
		}
		capped := &models.ESTCode{BindingID: b.ID, CodeHash: hashOf("capped"), ExpiresAt: clock.Add(72 * time.Hour)}
		wantErr(t, s.CreateESTCode(ctx, admin, capped), nil)
		if !capped.ExpiresAt.Equal(b.ExpiresAt) {
			t.Fatalf("a code outlives its binding: %v > %v", capped.ExpiresAt, b.ExpiresAt)
		}
		device := models.Actor{Subject: "est-code", Role: models.RolePartner, Org: "acme", Source: "192.0.2.7"}
		if _, _, err := s.PeekESTCode(ctx, hashOf("one")); err != nil {
			t.Fatalf("peeking an unused code: %v", err)
		}
		used, bound, err := s.UseESTCode(ctx, device, hashOf("one"))
		wantErr(t, err, nil)
		if bound.ID != b.ID || used.UsedAt == nil || used.UsedFrom != "192.0.2.7" {
			t.Fatalf("used %+v of %+v", used, bound)
		}
		_, _, err = s.UseESTCode(ctx, device, hashOf("one"))
		wantErr(t, err, models.ErrNotFound) // once
		_, _, err = s.PeekESTCode(ctx, hashOf("one"))
		wantErr(t, err, models.ErrNotFound)
		_, _, err = s.UseESTCode(ctx, device, hashOf("never made"))
		wantErr(t, err, models.ErrNotFound)

		late := &models.ESTCode{BindingID: b.ID, CodeHash: hashOf("late"), ExpiresAt: clock.Add(time.Hour)}
		wantErr(t, s.CreateESTCode(ctx, partner, late), nil)
		clock = clock.Add(time.Hour)
		_, _, err = s.UseESTCode(ctx, device, hashOf("late"))
		wantErr(t, err, models.ErrNotFound) // expired

		if _, err := s.RevokeACMEBinding(ctx, partner, b.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.UseESTCode(ctx, device, hashOf("capped"))
		wantErr(t, err, models.ErrNotFound) // the binding was revoked
		events, _, err := s.ListAudit(ctx, models.AuditFilter{Org: "acme", Limit: 500})
		wantErr(t, err, nil)
		var creates, uses int
		for _, e := range events {
			switch e.Action {
			case models.ActionESTCodeCreate:
				creates++
			case models.ActionESTCodeUse:
				uses++
			}
		}
		if creates != 3 || uses != 1 {
			t.Fatalf("audit: %d creates, %d uses; want 3 and 1", creates, uses)
		}
	})
}
