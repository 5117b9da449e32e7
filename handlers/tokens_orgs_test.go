package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

func TestTokensCreate_LifetimeCap_AcceptsTheCapRefusesADayMore(t *testing.T) {
	store := modelstest.SQLite(t)
	clk := modelstest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	store.Now = clk.Now
	n := 0
	h := &handlers.Tokens{Store: store, Now: clk.Now, NewToken: func() (string, string) {
		n++
		return fmt.Sprintf("token-%d", n), fmt.Sprintf("%064x", n)
	}}
	tests := []struct {
		days int
		want int
	}{
		{1, http.StatusCreated},
		{models.MaxTokenLifetimeDays, http.StatusCreated},
		{models.MaxTokenLifetimeDays + 1, http.StatusBadRequest},
		{-1, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d days", tt.days), func(t *testing.T) {
			rec := call(t, h.Create, partnerActor, "POST", fmt.Sprintf(`{"name":"ci","ttl_days":%d}`, tt.days))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusCreated {
				var got models.APIToken
				decode(t, rec, &got)
				if want := clk.Now().Add(time.Duration(tt.days) * 24 * time.Hour); !got.ExpiresAt.Equal(want) {
					t.Fatalf("expires %s, want %s", got.ExpiresAt, want)
				}
			}
		})
	}
	ts, err := store.ListTokens(t.Context(), partnerActor.Subject)
	if err != nil || len(ts) != 2 {
		t.Fatalf("stored tokens %d (%v), want the 2 accepted ones", len(ts), err)
	}
}

func TestOrgsCreate_ExpiryNoticeDays_ValidatedAsNotificationsAre(t *testing.T) {
	store := modelstest.SQLite(t)
	h := &handlers.Orgs{Store: store}
	tests := []struct {
		name, days string
		want       int
		detail     string
	}{
		{"a distinct list", "[30, 7, 1]", http.StatusCreated, ""},
		{"zero days", "[0]", http.StatusBadRequest, "expiry_notice_days: 0 is not a number of days from 1 to 3650"},
		{"beyond ten years", "[3651]", http.StatusBadRequest, "expiry_notice_days: 3651 is not a number of days from 1 to 3650"},
		{"a repeat", "[7, 7]", http.StatusBadRequest, "expiry_notice_days: 7 is listed twice"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"slug":"org-%d","name":"Org","max_validity_days":90,"expiry_notice_days":%s}`, i, tt.days)
			rec := call(t, h.Create, adminActor, "POST", body)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.detail) {
				t.Fatalf("status %d %s, want %d naming %q", rec.Code, rec.Body, tt.want, tt.detail)
			}
		})
	}
	orgs, err := store.ListOrgs(t.Context())
	if err != nil || len(orgs) != 1 {
		t.Fatalf("stored organisations %d (%v), want only the valid one", len(orgs), err)
	}
}
