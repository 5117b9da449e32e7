package models_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"gorm.io/gorm"
)

// On PostgreSQL the busiest transactions send their BEGIN with their first
// statement (txConn). Whatever sends that first statement — the store
// itself, in one round trip with the BEGIN, or gorm, after a BEGIN of its
// own — everything the transaction wrote is undone when it fails; a
// transaction inside it is refused; and a BEGIN that cannot be sent runs
// no statement and leaves no connection in a transaction.
func TestAtCommitTx_BeginGoesWithTheFirstStatement_FailureUndoesEverything(t *testing.T) {
	s := modelstest.Postgres(t)
	const insertKey = `INSERT INTO blocked_keys (key_sha256, source, reason, created_by, created_at) VALUES (?, 'admin', 'test', 'test', now())`
	key := func(n int) string { return fmt.Sprintf("%064x", n) }
	keys := func() (n int64) {
		t.Helper()
		if err := s.DB().Model(&models.BlockedKey{}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	errFail := errors.New("failing on purpose")

	t.Run("committed", func(t *testing.T) {
		err := s.InAtCommitTx(ctx, func(exec func(string, ...any) error, tx *gorm.DB) error {
			if err := exec(insertKey, key(1)); err != nil {
				return err
			}
			return tx.Create(&models.BlockedKey{KeySHA256: key(2), Source: models.BlockedByAdmin, Reason: "test", CreatedBy: "test"}).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := keys(); n != 2 {
			t.Fatalf("%d keys after the commit, want 2", n)
		}
	})
	for _, tc := range []struct {
		name  string
		first func(exec func(string, ...any) error, tx *gorm.DB) error
	}{
		{"the store's own statement first", func(exec func(string, ...any) error, _ *gorm.DB) error { return exec(insertKey, key(3)) }},
		{"gorm's statement first", func(_ func(string, ...any) error, tx *gorm.DB) error {
			return tx.Create(&models.BlockedKey{KeySHA256: key(4), Source: models.BlockedByAdmin, Reason: "test", CreatedBy: "test"}).Error
		}},
	} {
		t.Run(tc.name+", then a failure", func(t *testing.T) {
			err := s.InAtCommitTx(ctx, func(exec func(string, ...any) error, tx *gorm.DB) error {
				if err := tc.first(exec, tx); err != nil {
					return err
				}
				if err := exec(insertKey, key(5)); err != nil {
					return err
				}
				return errFail
			})
			wantErr(t, err, errFail)
			if n := keys(); n != 2 {
				t.Fatalf("%d keys after the rollback, want 2: a write outlived its failed transaction", n)
			}
		})
	}
	t.Run("a failing first statement", func(t *testing.T) {
		err := s.InAtCommitTx(ctx, func(exec func(string, ...any) error, _ *gorm.DB) error {
			if err := exec(insertKey, key(1)); err == nil {
				return errors.New("a duplicate key was inserted")
			}
			// The transaction is aborted: nothing after it runs.
			if err := exec(insertKey, key(6)); err == nil {
				return errors.New("a statement ran in an aborted transaction")
			}
			return errFail
		})
		wantErr(t, err, errFail)
		if n := keys(); n != 2 {
			t.Fatalf("%d keys, want 2", n)
		}
	})
	t.Run("a transaction inside", func(t *testing.T) {
		err := s.InAtCommitTx(ctx, func(exec func(string, ...any) error, tx *gorm.DB) error {
			if err := exec(insertKey, key(7)); err != nil {
				return err
			}
			return tx.Transaction(func(*gorm.DB) error { return nil })
		})
		wantErr(t, err, models.ErrNestedTx)
		if n := keys(); n != 2 {
			t.Fatalf("%d keys, want 2", n)
		}
	})
	t.Run("a BEGIN that cannot be sent", func(t *testing.T) {
		for _, first := range []string{"store", "gorm"} {
			cctx, cancel := context.WithCancel(ctx)
			err := s.InAtCommitTx(cctx, func(exec func(string, ...any) error, tx *gorm.DB) error {
				cancel()
				if first == "store" {
					return exec(insertKey, key(8))
				}
				return tx.Create(&models.BlockedKey{KeySHA256: key(8), Source: models.BlockedByAdmin, Reason: "test", CreatedBy: "test"}).Error
			})
			if err == nil {
				t.Fatalf("%s first: a transaction on a canceled context committed", first)
			}
			if n := keys(); n != 2 {
				t.Fatalf("%s first: %d keys, want 2", first, n)
			}
		}
		var open int64
		if err := s.DB().Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open).Error; err != nil {
			t.Fatal(err)
		}
		if open != 0 {
			t.Fatalf("%d connections left idle in a transaction", open)
		}
		// The pool still works.
		if err := s.InAtCommitTx(ctx, func(exec func(string, ...any) error, _ *gorm.DB) error { return exec(insertKey, key(9)) }); err != nil {
			t.Fatal(err)
		}
		if n := keys(); n != 3 {
			t.Fatalf("%d keys, want 3", n)
		}
	})
}
