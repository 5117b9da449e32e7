package issuance_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
)

// recordingDown is the store with the recording of signed certificates
// failing as it does while the database is away.
type recordingDown struct {
	*models.Store
	down atomic.Bool
}

func (s *recordingDown) CompleteIssuance(ctx context.Context, a models.Actor, id string, der []byte) (*models.Request, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("recording: %w", models.ErrUnavailable)
	}
	return s.Store.CompleteIssuance(ctx, a, id, der)
}

// TestSign_RecordingFails_TheSignedCertificateIsRecordedNotSignedAgain: the
// HSM signed, then the database went away before the certificate was
// recorded. Whichever records it — the background retry or recovery once
// the lease has passed — records the certificate the HSM already signed:
// the serial is signed once.
func TestSign_RecordingFails_TheSignedCertificateIsRecordedNotSignedAgain(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, s *models.Store) {
		clock := modelstest.NewClock(time.Now())
		s.Now = clock.Now
		e := newEnv(t, s)
		hsm := counting(e)
		down := &recordingDown{Store: s}
		e.wf.Store = down
		r := e.submit("blink")
		down.down.Store(true)
		if _, err := e.wf.Approve(bg, admin, r.ID, "ok"); !errors.Is(err, models.ErrUnavailable) {
			t.Fatalf("Approve while recording fails: %v, want ErrUnavailable", err)
		}
		clock.Advance(models.IssuanceLease + time.Second)
		down.down.Store(false)
		if fin, failed, err := e.wf.Recover(bg); fin > 1 || failed != 0 || err != nil {
			t.Fatalf("Recover after the lease: finished %d failed %d, %v", fin, failed, err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if got, _ := s.GetRequest(bg, r.ID); got.State == models.StateIssued || time.Now().After(deadline) {
				break
			}
		}
		if serials, twice := hsm.twice(); serials != 1 || len(twice) > 0 {
			t.Fatalf("the HSM signed %d serials, some twice: %v", serials, twice)
		}
		got, err := s.GetRequest(bg, r.ID)
		if err != nil || got.State != models.StateIssued || got.CertificateID == nil {
			t.Fatalf("request after recovery: %+v, %v", got, err)
		}
		c, err := s.GetCertificate(bg, *got.CertificateID)
		if err != nil {
			t.Fatal(err)
		}
		e.verify(c.DER)
	})
}
