package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestSaveCRL_IsAuditedInTheSameTransaction(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		now := time.Now()
		if err := s.SaveCRL(ctx, &models.CRL{Issuer: "issuing", Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Entries: 2, DER: []byte{0x30, 0}}); err != nil {
			t.Fatal(err)
		}
		// A refused CRL (number not above the last) leaves no event.
		if err := s.SaveCRL(ctx, &models.CRL{Issuer: "issuing", Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{0x30, 0}}); err == nil {
			t.Fatal("a repeated CRL number was accepted")
		}
		evs, _, err := s.ListAudit(ctx, models.AuditFilter{Action: "crl.publish"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].ObjectID != "issuing-1" || evs[0].Actor != "system:crl" {
			t.Fatalf("crl.publish events: %+v", evs)
		}
		if v, _ := s.VerifyAudit(ctx); !v.OK {
			t.Fatalf("chain: %s", v.Problem)
		}
	})
}
