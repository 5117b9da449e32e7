package certauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/certauth"
	"github.com/certdesk/certdesk/models"
)

func TestInRenewalWindow_OpensAtTwoThirdsOfTheLife(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &models.Certificate{NotBefore: start, NotAfter: start.Add(90 * 24 * time.Hour)}
	opensAt := start.Add(60 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"fresh", start.Add(time.Hour), false},
		{"a minute before the window", opensAt.Add(-time.Minute), false},
		{"as the window opens", opensAt, true},
		{"near expiry", c.NotAfter.Add(-time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, opens := certauth.InRenewalWindow(c, tc.now)
			if got != tc.want || !opens.Equal(opensAt) {
				t.Fatalf("InRenewalWindow = %v, %v; want %v, %v", got, opens, tc.want, opensAt)
			}
		})
	}
}

func TestCurrent_WithoutACertificate_IsErrNoCertificate(t *testing.T) {
	v := &certauth.Verifier{Now: time.Now}
	if _, err := v.Current(context.Background()); !errors.Is(err, certauth.ErrNoCertificate) {
		t.Fatalf("Current = %v, want ErrNoCertificate", err)
	}
}
