package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

type statsWeek struct {
	Week  string `json:"week"`
	Start string `json:"start"`
	Count int    `json:"count"`
}

type statsBody struct {
	Issued   []statsWeek `json:"issued_per_week"`
	Revoked  []statsWeek `json:"revoked_per_week"`
	Expiring []statsWeek `json:"expiring_per_week"`
}

func total(ws []statsWeek) int {
	n := 0
	for _, w := range ws {
		n += w.Count
	}
	return n
}

// TestStats_NinetyDayCertificateIssuedToday_CountedAsExpiring checks, for
// every weekday, that a certificate issued now for the default 90 days is in
// the expiring chart (whose last week holds now + 90 days), while one that
// expires after 90 days or has already expired is not.
func TestStats_NinetyDayCertificateIssuedToday_CountedAsExpiring(t *testing.T) {
	monday := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		if err := s.CreateOrg(ctx, adminActor, &models.Organization{Slug: "acme", Name: "Acme", DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}); err != nil {
			t.Fatal(err)
		}
		for d := 0; d < 7; d++ {
			now := monday.AddDate(0, 0, d)
			t.Run(now.Weekday().String(), func(t *testing.T) {
				if err := s.DB().Where("1 = 1").Delete(&models.Certificate{}).Error; err != nil {
					t.Fatal(err)
				}
				for i, c := range []struct {
					notAfter time.Time
					state    string
				}{
					{now.Add(90*24*time.Hour - time.Minute), models.CertIssued}, // counted
					{now.Add(91 * 24 * time.Hour), models.CertIssued},           // beyond the horizon
					{now.Add(-24 * time.Hour), models.CertIssued},               // already expired
					{now.Add(30 * 24 * time.Hour), models.CertRevoked},          // revoked: does not expire
				} {
					req := models.Request{ID: fmt.Sprintf("00000000-0000-0000-0000-%06d%06d", d, i), State: models.StateIssued, Org: "acme", CSRPEM: "csr", ValidityDays: 90, RequestedBy: "carol-partner"}
					if err := s.DB().Create(&req).Error; err != nil {
						t.Fatal(err)
					}
					cert := models.Certificate{
						ID: req.ID, Serial: fmt.Sprintf("%02X%02X", d, i),
						RequestID: req.ID, Org: "acme", State: c.state,
						NotBefore: now.Add(-time.Minute), NotAfter: c.notAfter, CreatedAt: now,
					}
					if err := s.DB().Create(&cert).Error; err != nil {
						t.Fatal(err)
					}
				}
				h := &handlers.Stats{Store: s, Now: func() time.Time { return now }}
				rec := call(t, h.Get, adminActor, http.MethodGet, "")
				if rec.Code != http.StatusOK {
					t.Fatalf("GET /stats: %d %s", rec.Code, rec.Body)
				}
				var got statsBody
				decode(t, rec, &got)
				if n := total(got.Expiring); n != 1 {
					t.Errorf("expiring in the next 90 days = %d, want 1: %+v", n, got.Expiring)
				}
				last := got.Expiring[len(got.Expiring)-1]
				start, _ := time.Parse(time.DateOnly, last.Start)
				if h := now.Add(90 * 24 * time.Hour); h.Before(start) || !h.Before(start.AddDate(0, 0, 7)) {
					t.Errorf("last expiring week starts %s, want the week of %s", last.Start, h.Format(time.DateOnly))
				}
				if last.Count != 1 {
					t.Errorf("last week's count = %d, want the 90-day certificate there", last.Count)
				}
				if n := total(got.Issued); n != 4 {
					t.Errorf("issued this week = %d, want 4", n)
				}
			})
		}
	})
}
