package models

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// AuditCheckpoint is the audit chain head (Seq, Hash) signed by the issuing
// CA key in the token. Someone who can rewrite both audit_events and
// audit_heads can rebuild a consistent chain, but not forge this signature:
// a rebuilt chain no longer matches a signed checkpoint.
type AuditCheckpoint struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	Seq       int64     `gorm:"not null" json:"seq"`            // the event the checkpoint covers
	Hash      string    `gorm:"size:64;not null" json:"hash"`   // that event's hash
	SignedAt  time.Time `gorm:"not null" json:"signed_at"`      // signed too; UTC, microseconds
	Signature []byte    `gorm:"not null" json:"signature"`      // over signer.CheckpointMessage
	KeyID     string    `gorm:"size:64;not null" json:"key_id"` // hex SHA-256 of the signer's SubjectPublicKeyInfo
	CreatedAt time.Time `json:"created_at"`
}

// TableName is the table of signed checkpoints.
func (AuditCheckpoint) TableName() string { return "audit_checkpoints" }

// checkpointActor is the actor of checkpoint events.
var checkpointActor = Actor{Subject: "system:audit", Role: RoleSystem, Source: "checkpointer"}

// AuditHead returns the chain head: the seq and hash of the last appended
// event (0 and 64 zeros for an empty log).
func (s *Store) AuditHead(ctx context.Context) (seq int64, hash string, err error) {
	var head auditHead
	if err := s.db.WithContext(ctx).Where("id = ?", 1).Take(&head).Error; err != nil {
		return 0, "", fmt.Errorf("reading audit head: %w", dbErr(err))
	}
	return head.Seq, head.Hash, nil
}

// CheckpointDue reports whether the chain has moved since the last
// checkpoint: whether any event other than a checkpoint's own
// "audit.checkpoint" event was appended after the last checkpointed seq.
// An empty log is never due.
func (s *Store) CheckpointDue(ctx context.Context) (bool, error) {
	db := s.db.WithContext(ctx)
	var last *int64
	if err := db.Model(&AuditCheckpoint{}).Select("MAX(seq)").Scan(&last).Error; err != nil {
		return false, fmt.Errorf("reading last checkpoint: %w", err)
	}
	after := int64(0)
	if last != nil {
		after = *last
	}
	var n int64
	err := db.Model(&AuditEvent{}).Where("seq > ? AND action <> ?", after, ActionAuditCheckpoint).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("reading audit events: %w", err)
	}
	return n > 0, nil
}

// SaveCheckpoint stores a signed checkpoint and appends an "audit.checkpoint"
// event in the same transaction. That event moves the head past cp.Seq; the
// checkpoint covers the head read before signing. The event at cp.Seq must
// exist with hash cp.Hash, and cp.SignedAt must already be in the store's
// form (UTC, microseconds), since the signature covers it; a second
// checkpoint of the same seq is ErrConflict.
func (s *Store) SaveCheckpoint(ctx context.Context, cp *AuditCheckpoint) error {
	if _, err := hex.DecodeString(cp.Hash); err != nil || len(cp.Hash) != 64 {
		return fmt.Errorf("saving checkpoint: %w: hash must be 64 hex digits", ErrInvalid)
	}
	if _, err := hex.DecodeString(cp.KeyID); err != nil || len(cp.KeyID) != 64 {
		return fmt.Errorf("saving checkpoint: %w: key_id must be 64 hex digits", ErrInvalid)
	}
	switch {
	case cp.Seq <= 0:
		return fmt.Errorf("saving checkpoint: %w: seq must be positive", ErrInvalid)
	case len(cp.Signature) == 0:
		return fmt.Errorf("saving checkpoint: %w: signature required", ErrInvalid)
	case cp.SignedAt.IsZero() || !cp.SignedAt.Equal(normTime(cp.SignedAt)):
		return fmt.Errorf("saving checkpoint: %w: signed_at must be set, to the microsecond", ErrInvalid)
	}
	cp.ID = 0
	cp.SignedAt = normTime(cp.SignedAt)
	cp.CreatedAt = s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var ev AuditEvent
		if err := tx.Where("seq = ?", cp.Seq).Take(&ev).Error; err != nil {
			if errIsNotFound(err) {
				return fmt.Errorf("%w: no audit event %d", ErrInvalid, cp.Seq)
			}
			return err
		}
		if ev.Hash != cp.Hash {
			return fmt.Errorf("%w: audit event %d has another hash", ErrConflict, cp.Seq)
		}
		if err := dbErr(tx.Create(cp).Error); err != nil {
			return err
		}
		return s.appendAudit(tx, checkpointActor, "", "audit_checkpoint", strconv.FormatInt(cp.ID, 10), AuditCheckpointEvent{
			Hash: cp.Hash, KeyID: cp.KeyID, Seq: cp.Seq, SignedAt: cp.SignedAt.Format(time.RFC3339Nano),
		})
	})
	if err != nil {
		return fmt.Errorf("saving checkpoint of event %d: %w", cp.Seq, err)
	}
	return nil
}

// Checkpoints returns every stored checkpoint, oldest (lowest seq) first.
func (s *Store) Checkpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	var cps []AuditCheckpoint
	if err := s.db.WithContext(ctx).Order("seq ASC").Find(&cps).Error; err != nil {
		return nil, fmt.Errorf("reading checkpoints: %w", err)
	}
	return cps, nil
}
