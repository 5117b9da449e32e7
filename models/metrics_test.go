package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestMetricsQueries_CountStatesAndSoonestExpiry(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
		if err := s.CreateOrg(ctx, sys, &models.Organization{Slug: "acme", Name: "Acme"}); err != nil {
			t.Fatal(err)
		}
		partner := models.Actor{Subject: "pat", Role: models.RolePartner, Org: "acme"}
		admin := models.Actor{Subject: "ada", Role: models.RoleAdmin}
		var soonest time.Time
		for i, days := range []int{40, 10, 70} {
			r := &models.Request{Org: "acme", Identities: models.StringList{"a.acme.example"}, CSRPEM: "csr", RequestedBy: "pat"}
			if err := s.SubmitRequest(ctx, partner, r); err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				break // one request stays submitted
			}
			if _, err := s.ApproveRequest(ctx, admin, r.ID, "ok"); err != nil {
				t.Fatal(err)
			}
			na := time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)
			c := &models.Certificate{Serial: []string{"0a", "0b"}[i], RequestID: r.ID, Org: "acme", Identities: r.Identities, NotBefore: time.Now(), NotAfter: na, PrecertDER: []byte{1}}
			if err := s.ReserveCertificate(ctx, admin, c); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CompleteCertificate(ctx, admin, c.ID, []byte{1}); err != nil {
				t.Fatal(err)
			}
			if soonest.IsZero() || na.Before(soonest) {
				soonest = na
			}
		}
		states, err := s.RequestsByState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, st := range states {
			got[st.State] = st.Count
		}
		if got[models.StateIssued] != 2 || got[models.StateSubmitted] != 1 {
			t.Fatalf("states %v", got)
		}
		exp, err := s.SoonestExpiries(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(exp) != 1 || exp[0].Org != "acme" || !exp[0].NotAfter.Equal(soonest) {
			t.Fatalf("soonest expiries %v, want acme at %v", exp, soonest)
		}
	})
}
