package models

import (
	"context"
	"errors"

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
