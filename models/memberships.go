package models

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SetMembership assigns subject to the organisation org (an admin's
// decision, for identity providers with no organisation claim). An empty org
// removes the assignment. The organisation must exist (ErrNotFound). Audit
// "membership.set" with the previous and new organisation.
func (s *Store) SetMembership(ctx context.Context, a Actor, subject, org string) error {
	if strings.TrimSpace(subject) == "" {
		return fmt.Errorf("setting membership: %w: subject required", ErrInvalid)
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var prev Membership
		previous := ""
		switch err := s.forUpdate(tx).Where("subject = ?", subject).Take(&prev).Error; {
		case err == nil:
			previous = prev.Org
		case !errIsNotFound(err):
			return err
		}
		if org == "" {
			if err := tx.Where("subject = ?", subject).Delete(&Membership{}).Error; err != nil {
				return err
			}
		} else {
			var n int64
			if err := tx.Model(&Organization{}).Where("slug = ?", org).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: organisation %q", ErrNotFound, org)
			}
			m := Membership{Subject: subject, Org: org, CreatedBy: a.Subject, CreatedAt: s.now()}
			err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "subject"}},
				DoUpdates: clause.AssignmentColumns([]string{"org", "created_by", "created_at"}),
			}).Create(&m).Error
			if err != nil {
				return dbErr(err)
			}
		}
		auditOrg := org
		if auditOrg == "" {
			auditOrg = previous
		}
		return s.appendAudit(tx, a, auditOrg, "membership", subject, MembershipSetEvent{
			Org: org, PreviousOrg: previous, Subject: subject,
		})
	})
	if err != nil {
		return fmt.Errorf("setting membership of %s: %w", subject, err)
	}
	return nil
}

// GetMembership returns the organisation an admin assigned subject to, or
// ErrNotFound.
func (s *Store) GetMembership(ctx context.Context, subject string) (string, error) {
	var m Membership
	if err := s.db.WithContext(ctx).Where("subject = ?", subject).Take(&m).Error; err != nil {
		return "", fmt.Errorf("reading membership: %w", dbErr(err))
	}
	return m.Org, nil
}

// ListMemberships returns the assignments to org (all organisations when org
// is empty), ordered by subject.
func (s *Store) ListMemberships(ctx context.Context, org string) ([]Membership, error) {
	q := s.db.WithContext(ctx).Order("subject ASC")
	if org != "" {
		q = q.Where("org = ?", org)
	}
	var ms []Membership
	if err := q.Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("listing memberships: %w", err)
	}
	return ms, nil
}
