package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"gorm.io/gorm"
)

// newClock is a test clock at 2026-03-01 12:00 UTC.
func newClock() *modelstest.Clock {
	return modelstest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

var (
	ctx     = context.Background()
	admin   = modelstest.Admin
	admin2  = modelstest.Admin2
	partner = modelstest.Partner
	system  = models.Actor{Subject: "system:certdesk", Role: models.RoleSystem, Source: "startup"}
)

// wantErr fails unless errors.Is(err, want) (or err == nil when want is nil).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// mustVerify fails unless the audit chain verifies.
func mustVerify(t *testing.T, s *models.Store) *models.AuditVerification {
	t.Helper()
	v, err := s.VerifyAudit(ctx)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if !v.OK {
		t.Fatalf("audit chain does not verify: %s (seq %d)", v.Problem, v.FirstBadSeq)
	}
	return v
}

// lastEvent returns the newest audit event, failing if there is none.
func lastEvent(t *testing.T, s *models.Store) models.AuditEvent {
	t.Helper()
	evs, _, err := s.ListAudit(ctx, models.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no audit event recorded")
	}
	return evs[0]
}

// wantLastAudit checks the newest audit event's action, actor and object.
func wantLastAudit(t *testing.T, s *models.Store, action string, a models.Actor, objectID string) models.AuditEvent {
	t.Helper()
	ev := lastEvent(t, s)
	if ev.Action != action || ev.Actor != a.Subject || (objectID != "" && ev.ObjectID != objectID) {
		t.Fatalf("last audit event = %s by %s on %s, want %s by %s on %s", ev.Action, ev.Actor, ev.ObjectID, action, a.Subject, objectID)
	}
	return ev
}

// auditCount returns the number of events in the chain.
func auditCount(t *testing.T, s *models.Store) int64 {
	t.Helper()
	return mustVerify(t, s).Events
}

// holdWriteTx runs the statement q (with ? placeholders) in a write
// transaction of the store's busiest kind and keeps it open, its locks
// held, until commit is called; commit then waits for it to commit and
// returns its error.
func holdWriteTx(t *testing.T, s *models.Store, q string, args ...any) (commit func() error) {
	t.Helper()
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.InAtCommitTx(ctx, func(exec func(q string, args ...any) error, _ *gorm.DB) error {
			if err := exec(q, args...); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("the held transaction ended early: %v", err)
	}
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { close(release); err = <-done })
		return err
	}
}
