package models

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Sources of a blocked key.
const (
	// BlockedByRevocation: a certificate of the key was revoked for
	// keyCompromise.
	BlockedByRevocation = "revocation"
	// BlockedByAdmin: an administrator reported the key compromised.
	BlockedByAdmin = "admin"
)

// reasonKeyCompromise is CRLReason keyCompromise (RFC 5280 §5.3.1).
const reasonKeyCompromise = 1

// BlockedKey is a public key that is never certified again, in any
// organisation, named by the hex SHA-256 of its SubjectPublicKeyInfo.
type BlockedKey struct {
	KeySHA256     string    `gorm:"column:key_sha256;primaryKey;size:64" json:"key_sha256"`
	KeyType       string    `gorm:"size:32" json:"key_type,omitempty"`
	Source        string    `gorm:"size:32;not null" json:"source"` // BlockedByRevocation or BlockedByAdmin
	CertificateID *string   `gorm:"size:36" json:"certificate_id,omitempty"`
	Org           string    `gorm:"size:64" json:"org,omitempty"`
	Reason        string    `gorm:"type:text" json:"reason,omitempty"`
	CreatedBy     string    `gorm:"size:255;not null" json:"created_by"`
	CreatedAt     time.Time `json:"created_at"`
}

// BlockKey adds a key reported compromised to the blocked list. A key that
// is already blocked is ErrConflict. Audit "key.block".
func (s *Store) BlockKey(ctx context.Context, a Actor, k *BlockedKey) error {
	switch {
	case !isHex64(k.KeySHA256):
		return fmt.Errorf("blocking key: %w: key_sha256 must be 64 lower-case hex digits", ErrInvalid)
	case len(k.Reason) > 1000:
		return fmt.Errorf("blocking key: %w: reason longer than 1000 bytes", ErrInvalid)
	}
	k.Source, k.CreatedBy, k.CreatedAt = BlockedByAdmin, cut(a.Subject, 255), s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&BlockedKey{}).Where("key_sha256 = ?", k.KeySHA256).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: the key is already blocked", ErrConflict)
		}
		if err := tx.Create(k).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, k.Org, "key", k.KeySHA256, KeyBlockEvent{
			KeyType: k.KeyType, Reason: k.Reason, Source: k.Source,
		})
	})
	if err != nil {
		return fmt.Errorf("blocking key %s: %w", k.KeySHA256, err)
	}
	return nil
}

// blockRevokedKey adds the key of a certificate revoked for keyCompromise to
// the blocked list, inside the revocation's transaction tx, so that the key
// is blocked exactly when the revocation is recorded. Audit "key.block".
func (s *Store) blockRevokedKey(tx *gorm.DB, a Actor, c *Certificate, reason int) error {
	if reason != reasonKeyCompromise {
		return nil
	}
	fp, err := certificateKey(tx, c)
	if err != nil || fp == "" {
		return err
	}
	id := c.ID
	k := &BlockedKey{
		KeySHA256: fp, KeyType: c.KeyType, Source: BlockedByRevocation,
		CertificateID: &id, Org: c.Org, Reason: "keyCompromise", CreatedBy: cut(a.Subject, 255), CreatedAt: s.now(),
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(k)
	if res.Error != nil {
		return dbErr(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil // blocked before, by an administrator or an earlier revocation
	}
	return s.appendAudit(tx, a, c.Org, "key", k.KeySHA256, KeyBlockEvent{
		Certificate: c.ID, KeyType: k.KeyType, Serial: c.Serial, Source: k.Source,
	})
}

// certificateKey is the key fingerprint of a certificate: recorded with its
// request, or read from the certificate for requests from before the
// fingerprint was recorded; "" when neither has it.
func certificateKey(tx *gorm.DB, c *Certificate) (string, error) {
	var r Request
	err := tx.Select("id", "key_sha256").Where("id = ?", c.RequestID).Take(&r).Error
	if err != nil && !errIsNotFound(err) {
		return "", err
	}
	if r.KeySHA256 != "" {
		return r.KeySHA256, nil
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		return "", nil
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// ListBlockedKeys returns every blocked key, newest first.
func (s *Store) ListBlockedKeys(ctx context.Context) ([]BlockedKey, error) {
	var ks []BlockedKey
	if err := s.db.WithContext(ctx).Order("created_at DESC, key_sha256 ASC").Find(&ks).Error; err != nil {
		return nil, fmt.Errorf("listing blocked keys: %w", err)
	}
	return ks, nil
}

// KeyBlocked reports whether the key with this fingerprint is blocked.
func (s *Store) KeyBlocked(ctx context.Context, keySHA256 string) (bool, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&BlockedKey{}).Where("key_sha256 = ?", keySHA256).Count(&n).Error; err != nil {
		return false, fmt.Errorf("checking the blocked keys: %w", err)
	}
	return n > 0, nil
}

// keyLockClass is the first key of the transaction advisory lock
// SubmitRequest takes per public key on PostgreSQL.
const keyLockClass = 0x6b6579 // "key"

// KeyOwnedError is SubmitRequest's answer when the request's key was
// already submitted for another organisation, Org: a public key belongs to
// one organisation. It is an ErrConflict; the message does not name Org,
// which only an admin may be told.
type KeyOwnedError struct{ Org string }

// Error implements error.
func (e *KeyOwnedError) Error() string {
	return "the key is already used by another organisation"
}

// Unwrap makes a KeyOwnedError an ErrConflict.
func (e *KeyOwnedError) Unwrap() error { return ErrConflict }

// ErrKeyBlocked is the store's refusal of a request whose key is blocked as
// compromised (ErrInvalid), on every path that records a request.
var ErrKeyBlocked = fmt.Errorf("%w: the key is blocked because it is known to be compromised", ErrInvalid)
