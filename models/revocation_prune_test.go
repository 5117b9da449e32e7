package models_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// TestPruneCRLs_KeepsWhatReplicasMayServe_NumbersStayMonotonic: of one
// name and CA key, pruning keeps the newest three and every CRL whose
// nextUpdate has not passed, leaves other keys and names alone, is
// audited, and the next CRL number must still be above every one ever
// stored.
func TestPruneCRLs_KeepsWhatReplicasMayServe_NumbersStayMonotonic(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		save := func(issuer, key string, number int64, nextUpdate time.Time) {
			t.Helper()
			err := s.SaveCRL(ctx, &models.CRL{Issuer: issuer, KeyID: key, Number: number, ThisUpdate: nextUpdate.Add(-24 * time.Hour),
				NextUpdate: nextUpdate, DER: []byte{0x30, 0}})
			if err != nil {
				t.Fatal(err)
			}
		}
		past, future := now.Add(-time.Hour), now.Add(time.Hour)
		// Numbers 1–7 by key "old"; 3 is still valid though not among the
		// newest three; 5 has expired but is among them.
		for _, r := range []struct {
			n    int64
			next time.Time
		}{{1, past}, {2, past}, {3, future}, {4, past}, {5, past}, {6, future}, {7, future}} {
			save("issuing/5", "old", r.n, r.next)
		}
		save("issuing/5", "new", 8, past) // another key's only CRL
		save("issuing/6", "old", 1, past) // another name's only CRL

		removed, err := s.PruneCRLs(ctx, "issuing/5", "old", 3, now)
		if err != nil || removed != 3 {
			t.Fatalf("pruned %d (%v), want 3 (numbers 1, 2 and 4)", removed, err)
		}
		numbers := func(issuer, key string) []int64 {
			t.Helper()
			var ns []int64
			if err := s.DB().Model(&models.CRL{}).Where("issuer = ? AND key_id = ?", issuer, key).Order("number").Pluck("number", &ns).Error; err != nil {
				t.Fatal(err)
			}
			return ns
		}
		if got := numbers("issuing/5", "old"); !slices.Equal(got, []int64{3, 5, 6, 7}) {
			t.Fatalf("kept %v, want [3 5 6 7]: the newest three and the unexpired", got)
		}
		if got, other := numbers("issuing/5", "new"), numbers("issuing/6", "old"); !slices.Equal(got, []int64{8}) || !slices.Equal(other, []int64{1}) {
			t.Fatalf("another key's CRLs %v, another name's %v: want them untouched", got, other)
		}
		if again, err := s.PruneCRLs(ctx, "issuing/5", "old", 3, now); err != nil || again != 0 {
			t.Fatalf("a second prune removed %d (%v), want 0", again, err)
		}
		// Even with every CRL expired, the newest is kept: numbering goes on
		// above it, and a lower or equal number is still refused.
		if _, err := s.PruneCRLs(ctx, "issuing/5", "new", 1, now.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := numbers("issuing/5", "new"); !slices.Equal(got, []int64{8}) {
			t.Fatalf("the newest CRL of a key was pruned: %v", got)
		}
		for _, n := range []int64{2, 8} {
			err := s.SaveCRL(ctx, &models.CRL{Issuer: "issuing/5", KeyID: "old", Number: n, ThisUpdate: now, NextUpdate: future, DER: []byte{0x30, 0}})
			if !errors.Is(err, models.ErrConflict) {
				t.Fatalf("CRL number %d after pruning: %v, want a conflict", n, err)
			}
		}
		latest, err := s.LatestCRLInfo(ctx, "issuing/5", models.AnyKey)
		if err != nil || latest.Number != 8 {
			t.Fatalf("latest number after pruning: %v %v, want 8", latest, err)
		}
		save("issuing/5", "old", 9, future)

		evs, _, err := s.ListAudit(ctx, models.AuditFilter{Action: models.ActionCRLPrune})
		if err != nil || len(evs) != 1 || evs[0].ObjectID != "issuing/5-1-4" {
			t.Fatalf("crl.prune events: %+v (%v), want one for numbers 1 to 4", evs, err)
		}
		if _, err := s.PruneCRLs(ctx, "issuing/5", "old", 0, now); !errors.Is(err, models.ErrInvalid) {
			t.Fatalf("keep 0: %v, want invalid", err)
		}
		if v, _ := s.VerifyAudit(ctx); !v.OK {
			t.Fatalf("chain: %s", v.Problem)
		}
	})
}
