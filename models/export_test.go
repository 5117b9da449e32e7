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

// InsertRequestRow stores r by the store's own INSERT (insertRequestRow),
// without checks or audit.
func (s *Store) InsertRequestRow(ctx context.Context, r *Request) error {
	_, err := s.exec(s.onPool(ctx), insertRequestRow, r.values()...)
	return err
}

// InsertCertificateRow stores c by the store's own INSERT
// (insertCertificateRow), without checks or audit.
func (s *Store) InsertCertificateRow(ctx context.Context, c *Certificate) error {
	_, err := s.exec(s.onPool(ctx), insertCertificateRow, c.values()...)
	return err
}

var (
	requestRowByID     = newStmt(`SELECT ` + columnList("", requestCols) + ` FROM requests WHERE id = ?`)
	certificateRowByID = newStmt(`SELECT ` + columnList("", certificateCols) + ` FROM certificates WHERE id = ?`)
)

// ReadRequestRow reads a request with the store's column list and scan
// targets (requestCols).
func (s *Store) ReadRequestRow(ctx context.Context, id string) (*Request, error) {
	var r Request
	return &r, s.queryRow(s.onPool(ctx), requestRowByID, r.scanDest(), id)
}

// ReadCertificateRow reads a certificate with the store's column list and
// scan targets (certificateCols).
func (s *Store) ReadCertificateRow(ctx context.Context, id string) (*Certificate, error) {
	var c Certificate
	return &c, s.queryRow(s.onPool(ctx), certificateRowByID, c.scanDest(), id)
}

// ErrNestedTx is what a transaction begun inside a txConn's fails with.
var ErrNestedTx = errNestedTx

// InAtCommitTx runs fn in a transaction of txAppendAtCommit (on PostgreSQL,
// on a txConn) that appends no audit event. exec sends a statement (with ?
// placeholders) as the store sends its own; tx is the transaction's gorm
// handle.
func (s *Store) InAtCommitTx(ctx context.Context, fn func(exec func(q string, args ...any) error, tx *gorm.DB) error) error {
	return s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		exec := func(q string, args ...any) error {
			_, err := s.exec(on(tx), newStmt(q), args...)
			return err
		}
		return fn(exec, tx)
	})
}

// CloseReaders closes a SQLite store's read-only connections, as if they
// had failed.
func (s *Store) CloseReaders() error { return s.readDB.Close() }
