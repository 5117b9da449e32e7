package models_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestAcceptInvitation_ConcurrentSignIns_JoinOnce(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
		if err := s.CreateOrg(ctx, sys, &models.Organization{Slug: "acme", Name: "Acme", MaxValidityDays: 90}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateInvitation(ctx, sys, "acme", "shared@acme.example"); err != nil {
			t.Fatal(err)
		}
		// Two accounts claiming the same verified address sign in at once.
		subjects := []string{"first", "second", "third", "fourth"}
		errs := make([]error, len(subjects))
		var wg sync.WaitGroup
		for i, sub := range subjects {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.AcceptInvitation(ctx, models.Actor{Subject: sub, Role: models.RolePartner, Source: "test"}, sub, "Shared@acme.example", true)
			}()
		}
		wg.Wait()
		joined := 0
		for i, err := range errs {
			switch {
			case err == nil:
				joined++
			case !errors.Is(err, models.ErrNotFound):
				t.Errorf("%s: %v", subjects[i], err)
			}
		}
		ms, err := s.ListMemberships(ctx, "acme")
		if joined != 1 || err != nil || len(ms) != 1 {
			t.Fatalf("%d joined, memberships %v (%v); want exactly one", joined, ms, err)
		}
	})
}

func TestAcceptInvitation_OnlyVerifiedPendingAndUnexpired(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		s.Now = clock.Now
		sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
		if err := s.CreateOrg(ctx, sys, &models.Organization{Slug: "acme", Name: "Acme", MaxValidityDays: 90}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateInvitation(ctx, sys, "acme", "nia@acme.example"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcceptInvitation(ctx, sys, "nia", "nia@acme.example", false); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("unverified: %v, want ErrNotFound", err)
		}
		clock.Advance(models.InvitationLifetime)
		if _, err := s.AcceptInvitation(ctx, sys, "nia", "nia@acme.example", true); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("at expiry: %v, want ErrNotFound", err)
		}
		invs, err := s.ListInvitations(ctx, "acme")
		if err != nil || len(invs) != 1 || invs[0].State != models.InvitationExpired {
			t.Fatalf("invitations %+v (%v), want one expired", invs, err)
		}
		// An expired invitation does not block a new one.
		if _, err := s.CreateInvitation(ctx, sys, "acme", "nia@acme.example"); err != nil {
			t.Fatalf("re-inviting after expiry: %v", err)
		}
	})
}
