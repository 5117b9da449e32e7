// Package audit keeps the audit chain honest beyond its hashes: signed
// checkpoints of the chain head, made with the issuing CA key, and their
// verification.
package audit

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// CheckpointLockKey is the cluster-wide lock (a PostgreSQL advisory lock)
// under which one replica at a time signs audit checkpoints ("cd-ckpt" in
// ASCII, distinct from the migration, CRL, OCSP and expiry keys).
const CheckpointLockKey int64 = 0x63642d636b707400

// DefaultCheckpointEvery is how often the head is checkpointed by default.
const DefaultCheckpointEvery = 10 * time.Minute

// CheckpointStore is what the Checkpointer needs.
type CheckpointStore interface {
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	CheckpointDue(ctx context.Context) (bool, error)
	SaveCheckpoint(ctx context.Context, cp *models.AuditCheckpoint) error
	WithLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (bool, error)
}

// Checkpointer periodically signs the audit chain head with the issuing CA
// key in the token, so that a chain rebuilt by someone
// with write access to the database no longer matches a signed checkpoint.
type Checkpointer struct {
	Store  CheckpointStore
	Issuer *signer.Issuer
	Log    *slog.Logger
	Every  time.Duration    // default DefaultCheckpointEvery
	Now    func() time.Time // default time.Now
}

// Run checkpoints at once and then every Every until ctx is done. Errors
// are logged and retried at the next tick.
func (c *Checkpointer) Run(ctx context.Context) {
	every := c.Every
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.Tick(ctx); err != nil && ctx.Err() == nil {
			c.log().Error("audit checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick checkpoints the head if it has moved since the last checkpoint,
// under CheckpointLockKey so that one replica signs. It reports whether it
// saved a checkpoint; false when the head has not moved or another replica
// holds the lock.
func (c *Checkpointer) Tick(ctx context.Context) (saved bool, err error) {
	_, err = c.Store.WithLock(ctx, CheckpointLockKey, func(ctx context.Context) error {
		due, err := c.Store.CheckpointDue(ctx)
		if err != nil || !due {
			return err
		}
		if err := c.CheckpointNow(ctx); err != nil {
			return err
		}
		saved = true
		return nil
	})
	return saved, err
}

// CheckpointNow signs the current head and saves the checkpoint, whether or
// not the head moved since the last one.
func (c *Checkpointer) CheckpointNow(ctx context.Context) error {
	seq, hash, err := c.Store.AuditHead(ctx)
	if err != nil {
		return err
	}
	if seq == 0 {
		return errors.New("audit checkpoint: the audit log is empty")
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	// The store keeps microseconds in UTC; the signature covers the stored value.
	at := now().UTC().Truncate(time.Microsecond)
	sig, keyID, err := c.Issuer.SignCheckpoint(seq, hash, at)
	if err != nil {
		return fmt.Errorf("audit checkpoint: %w", err)
	}
	cp := &models.AuditCheckpoint{Seq: seq, Hash: hash, SignedAt: at, Signature: sig, KeyID: keyID}
	if err := c.Store.SaveCheckpoint(ctx, cp); err != nil {
		return err
	}
	c.log().Info("audit checkpoint signed", "seq", seq, "checkpoint", cp.ID, "key_id", keyID)
	return nil
}

func (c *Checkpointer) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// VerifyWith returns a checkpoint signature check against issuerCert (the
// issuing CA certificate), for models.Store.VerifyAuditWith. A checkpoint
// whose key_id is not issuerCert's key fails too.
func VerifyWith(issuerCert *x509.Certificate) func(*models.AuditCheckpoint) error {
	return func(cp *models.AuditCheckpoint) error {
		keyID, err := signer.KeyID(issuerCert.PublicKey)
		if err != nil {
			return err
		}
		if cp.KeyID != keyID {
			return fmt.Errorf("checkpoint %d: signed by key %s, not the issuing CA key", cp.ID, cp.KeyID)
		}
		return signer.VerifyCheckpoint(issuerCert, cp.Seq, cp.Hash, cp.SignedAt, cp.Signature)
	}
}
