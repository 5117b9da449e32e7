package handlers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/models"
)

// StatsStore is what the stats handler needs.
type StatsStore interface {
	CertificateTimes(ctx context.Context, org string, from, to time.Time) ([]models.CertTimes, error)
}

// Stats serves /api/v1/stats: weekly counts for the charts people would
// rather look at than read.
type Stats struct {
	Store StatsStore
	Now   func() time.Time
}

type weekCount struct {
	Week  string `json:"week"` // ISO 8601 week, e.g. 2026-W48
	Start string `json:"start"`
	Count int    `json:"count"`
}

type statsAnswer struct {
	IssuedPerWeek   []weekCount `json:"issued_per_week"`
	RevokedPerWeek  []weekCount `json:"revoked_per_week"`
	ExpiringPerWeek []weekCount `json:"expiring_per_week"`
}

// weekStart is the Monday 00:00 UTC of t's ISO week.
func weekStart(t time.Time) time.Time {
	t = t.UTC().Truncate(24 * time.Hour)
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}

func weeks(from time.Time, n int) []weekCount {
	out := make([]weekCount, n)
	for i := range out {
		s := from.AddDate(0, 0, 7*i)
		y, w := s.ISOWeek()
		out[i] = weekCount{Week: fmt.Sprintf("%d-W%02d", y, w), Start: s.Format(time.DateOnly)}
	}
	return out
}

func bump(ws []weekCount, first, t time.Time) {
	i := int(weekStart(t).Sub(first).Hours() / (24 * 7))
	if i >= 0 && i < len(ws) {
		ws[i].Count++
	}
}

// expiringHorizon is how far ahead the expiring chart looks.
const expiringHorizon = 90 * 24 * time.Hour

// Get is GET /stats: issuances and revocations in each of the last 12 weeks,
// and certificates expiring in the next 90 days, per week from this week to
// the week that holds now + 90 days (13 or 14 weeks, so that a certificate
// issued today for 90 days is counted whatever the weekday).
func (h *Stats) Get(c echo.Context) error {
	now := h.Now()
	this := weekStart(now)
	pastFrom, futureFrom := this.AddDate(0, 0, -7*11), this
	horizon := now.Add(expiringHorizon)
	futureWeeks := int(weekStart(horizon).Sub(futureFrom).Hours()/(24*7)) + 1
	rows, err := h.Store.CertificateTimes(c.Request().Context(), scopeOrg(actor(c), c.QueryParam("org")), pastFrom, horizon)
	if err != nil {
		return err
	}
	ans := statsAnswer{IssuedPerWeek: weeks(pastFrom, 12), RevokedPerWeek: weeks(pastFrom, 12), ExpiringPerWeek: weeks(futureFrom, futureWeeks)}
	for _, r := range rows {
		bump(ans.IssuedPerWeek, pastFrom, r.CreatedAt)
		if r.RevokedAt != nil {
			bump(ans.RevokedPerWeek, pastFrom, *r.RevokedAt)
		}
		if r.State == models.CertIssued && r.NotAfter.After(now) && !r.NotAfter.After(horizon) {
			bump(ans.ExpiringPerWeek, futureFrom, r.NotAfter)
		}
	}
	return c.JSON(http.StatusOK, ans)
}
