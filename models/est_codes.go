package models

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// MaxESTCodeLifetime bounds how long a one-time EST enrolment code stays
// usable.
const MaxESTCodeLifetime = 7 * 24 * time.Hour

// ESTCode is a one-time EST enrolment code for an approved ACME binding: a
// device that gives it to /.well-known/est/simpleenroll enrols, once,
// inside the binding's scope. CodeHash is the hex SHA-256 of the code; the
// code itself is shown once to whoever made it and never stored.
type ESTCode struct {
	ID        string     `gorm:"primaryKey;size:36" json:"id"`
	BindingID string     `gorm:"index;size:36;not null" json:"binding_id"`
	Org       string     `gorm:"size:64;not null" json:"org"`
	CodeHash  string     `gorm:"uniqueIndex;size:64;not null" json:"-"`
	CreatedBy string     `gorm:"size:255;not null" json:"created_by"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	UsedFrom  string     `gorm:"size:64" json:"used_from,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// TableName is the table of ESTCode.
func (ESTCode) TableName() string { return "est_codes" }

// Audit actions of one-time EST enrolment codes.
const (
	ActionESTCodeCreate = "est_code.create"
	ActionESTCodeUse    = "est_code.use"
)

// ESTCodeCreateEvent records a one-time enrolment code made for a binding
// (never the code or its hash).
type ESTCodeCreateEvent struct {
	Binding   string `json:"binding"`
	ExpiresAt string `json:"expires_at"`
}

// Action is ActionESTCodeCreate.
func (ESTCodeCreateEvent) Action() string { return ActionESTCodeCreate }

// ESTCodeUseEvent records the one use of an enrolment code.
type ESTCodeUseEvent struct {
	Binding string `json:"binding"`
	From    string `json:"from"`
}

// Action is ActionESTCodeUse.
func (ESTCodeUseEvent) Action() string { return ActionESTCodeUse }

// CreateESTCode stores a one-time enrolment code for a binding. The caller
// sets BindingID, CodeHash (64 lower-case hex digits) and ExpiresAt, in
// the future and at most MaxESTCodeLifetime away. The binding must be
// usable; a partner makes codes only for their organisation's bindings
// (ErrNotFound otherwise). Audit "est_code.create".
func (s *Store) CreateESTCode(ctx context.Context, a Actor, c *ESTCode) error {
	now := s.now()
	c.ExpiresAt = normTime(c.ExpiresAt)
	switch {
	case !isHex64(c.CodeHash):
		return fmt.Errorf("creating EST code: %w: hash must be 64 lower-case hex digits", ErrInvalid)
	case !c.ExpiresAt.After(now):
		return fmt.Errorf("creating EST code: %w: expiry must be in the future", ErrInvalid)
	case c.ExpiresAt.After(now.Add(MaxESTCodeLifetime)):
		return fmt.Errorf("creating EST code: %w: a code lives at most %s", ErrInvalid, MaxESTCodeLifetime)
	}
	c.ID = uuid.NewString()
	c.CreatedBy = a.Subject
	c.UsedAt, c.UsedFrom = nil, ""
	c.CreatedAt = now
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var b ACMEBinding
		if err := tx.Where("id = ?", c.BindingID).Take(&b).Error; err != nil {
			return dbErr(err)
		}
		if a.Role != RoleAdmin && b.Org != a.Org {
			return ErrNotFound
		}
		if !b.Usable(now) {
			return fmt.Errorf("%w: binding %s is %s or expired; codes are made for an approved binding", ErrConflict, b.ID, b.State)
		}
		if c.ExpiresAt.After(b.ExpiresAt) {
			c.ExpiresAt = b.ExpiresAt
		}
		c.Org = b.Org
		if err := tx.Create(c).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, c.Org, "est_code", c.ID, ESTCodeCreateEvent{
			Binding: b.ID, ExpiresAt: c.ExpiresAt.Format(time.RFC3339),
		})
	})
	if err != nil {
		return fmt.Errorf("creating EST code: %w", err)
	}
	return nil
}

// UseESTCode spends the code whose hash this is and returns it with its
// binding. Of concurrent uses exactly one succeeds; an unknown, used or
// expired code, or one whose binding is no longer usable, is ErrNotFound
// and changes nothing. a.Source is recorded as where it was used from.
// Audit "est_code.use".
func (s *Store) UseESTCode(ctx context.Context, a Actor, codeHash string) (*ESTCode, *ACMEBinding, error) {
	now := s.now()
	var (
		c ESTCode
		b ACMEBinding
	)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := s.forUpdate(tx).Where("code_hash = ?", codeHash).Take(&c).Error; err != nil {
			return dbErr(err)
		}
		if c.UsedAt != nil || !now.Before(c.ExpiresAt) {
			return ErrNotFound
		}
		if err := tx.Where("id = ?", c.BindingID).Take(&b).Error; err != nil {
			return dbErr(err)
		}
		if !b.Usable(now) {
			return ErrNotFound
		}
		res := tx.Model(&ESTCode{}).Where("id = ? AND used_at IS NULL", c.ID).
			Updates(map[string]any{"used_at": now, "used_from": a.Source})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		c.UsedAt, c.UsedFrom = &now, a.Source
		return s.appendAudit(tx, a, c.Org, "est_code", c.ID, ESTCodeUseEvent{Binding: b.ID, From: a.Source})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("using EST code: %w", err)
	}
	return &c, &b, nil
}

// PeekESTCode returns the unused, unexpired code whose hash this is with
// its usable binding, changing nothing (ErrNotFound otherwise), so that a
// request can be checked against the binding before the code is spent.
func (s *Store) PeekESTCode(ctx context.Context, codeHash string) (*ESTCode, *ACMEBinding, error) {
	now := s.now()
	var c ESTCode
	if err := s.db.WithContext(ctx).Where("code_hash = ?", codeHash).Take(&c).Error; err != nil {
		return nil, nil, fmt.Errorf("reading EST code: %w", dbErr(err))
	}
	if c.UsedAt != nil || !now.Before(c.ExpiresAt) {
		return nil, nil, fmt.Errorf("reading EST code: %w", ErrNotFound)
	}
	b, err := s.GetACMEBinding(ctx, c.BindingID)
	if err != nil {
		return nil, nil, err
	}
	if !b.Usable(now) {
		return nil, nil, fmt.Errorf("reading EST code: %w", ErrNotFound)
	}
	return &c, b, nil
}
