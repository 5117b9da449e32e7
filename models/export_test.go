package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// MigrateTo applies the migrations up to version v, so that a test can fill
// an older schema and watch a later step rewrite it.
func (s *Store) MigrateTo(ctx context.Context, v int) error { return s.migrateTo(ctx, v) }

// RecordAll appends evs in one transaction, with one head update.
func (s *Store) RecordAll(ctx context.Context, a Actor, evs ...Event) error {
	entries := make([]auditEntry, len(evs))
	for i, ev := range evs {
		entries[i] = auditEntry{Actor: a, Org: a.Org, ObjectType: "test", ObjectID: "", Event: ev}
	}
	return s.tx(ctx, func(tx *gorm.DB) error { return s.appendAudits(tx, entries...) })
}

// errRolledBack is what RecordThenRollBack's transaction fails with.
var errRolledBack = errors.New("rolled back on purpose")

// RecordThenRollBack appends ev and then rolls its transaction back, as a
// failed commit would.
func (s *Store) RecordThenRollBack(ctx context.Context, a Actor, ev Event) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.appendAudit(tx, a, a.Org, "test", "", ev); err != nil {
			return err
		}
		return errRolledBack
	})
	if errors.Is(err, errRolledBack) {
		return nil
	}
	return err
}

// RecordAtCommit appends evs in one transaction whose append is sent with
// its COMMIT (txAppendAtCommit), after a write of its own (a key blocked
// with a fingerprint made of n), so that a rolled-back transaction shows.
// fail makes fn fail after the append instead.
func (s *Store) RecordAtCommit(ctx context.Context, a Actor, n int, fail bool, evs ...Event) error {
	entries := make([]auditEntry, len(evs))
	for i, ev := range evs {
		entries[i] = auditEntry{Actor: a, Org: a.Org, ObjectType: "test", ObjectID: "", Event: ev}
	}
	err := s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		k := &BlockedKey{KeySHA256: fmt.Sprintf("%064x", n), Source: BlockedByAdmin, Reason: "test", CreatedBy: a.Subject, CreatedAt: s.now()}
		if err := tx.Create(k).Error; err != nil {
			return err
		}
		if err := s.appendAudits(tx, entries...); err != nil {
			return err
		}
		if fail {
			return errRolledBack
		}
		return nil
	})
	if fail && errors.Is(err, errRolledBack) {
		return nil
	}
	return err
}
