package models

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// InvitationLifetime is how long an invitation can be accepted.
const InvitationLifetime = 14 * 24 * time.Hour

// maxUsersListed bounds one answer of ListUsers.
const maxUsersListed = 500

// User is someone whose sign-in the identity provider vouched for (the ID
// token verified), whether or not certdesk let them in: what the last
// sign-in's claims said. An admin finds a new partner here to assign them to
// an organisation.
type User struct {
	Subject       string `gorm:"primaryKey;size:255" json:"subject"`
	Name          string `gorm:"size:255;not null" json:"name"`
	Email         string `gorm:"size:320;not null" json:"email"`
	EmailVerified bool   `gorm:"not null" json:"email_verified"`
	// Role is the role the claims granted ("" for none).
	Role string `gorm:"size:16;not null" json:"role"`
	// ClaimedOrg is the organisation claim ("" when the provider sent none).
	ClaimedOrg  string    `gorm:"size:64;not null" json:"claimed_org"`
	FirstSeenAt time.Time `gorm:"not null" json:"first_seen_at"`
	LastSeenAt  time.Time `gorm:"not null" json:"last_seen_at"`
}

// UserEntry is a User with the organisation an admin assigned them to.
type UserEntry struct {
	User
	// Org is the admin-assigned membership ("" for none).
	Org string `json:"org"`
}

// UserFilter selects users for ListUsers.
type UserFilter struct {
	// Unassigned keeps only users who need an organisation and have none:
	// neither admin nor auditor, without an organisation claim and without
	// a membership.
	Unassigned bool
}

// SeeUser records a sign-in of u: it creates the user's row (first and
// last seen now) or updates what the claims said and when. It is not an
// audit event of its own: the sign-in's auth.* event records it.
func (s *Store) SeeUser(ctx context.Context, u User) error {
	if strings.TrimSpace(u.Subject) == "" {
		return fmt.Errorf("recording user: %w: subject required", ErrInvalid)
	}
	now := s.now()
	u.FirstSeenAt, u.LastSeenAt = now, now
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "subject"}},
		DoUpdates: clause.AssignmentColumns([]string{"name", "email", "email_verified", "role", "claimed_org", "last_seen_at"}),
	}).Create(&u).Error
	if err != nil {
		return fmt.Errorf("recording user %s: %w", u.Subject, unavailable(dbErr(err)))
	}
	return nil
}

// ListUsers returns the users who signed in, most recently seen first (at
// most maxUsersListed), with their memberships.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]UserEntry, error) {
	db := s.db.WithContext(ctx)
	q := db.Table("users").Select("users.*, COALESCE(memberships.org, '') AS org").
		Joins("LEFT JOIN memberships ON memberships.subject = users.subject")
	if f.Unassigned {
		q = q.Where("memberships.subject IS NULL AND users.claimed_org = '' AND users.role NOT IN ?", []string{RoleAdmin, RoleAuditor})
	}
	var out []UserEntry
	if err := q.Order("users.last_seen_at DESC, users.subject ASC").Limit(maxUsersListed).Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("listing users: %w", unavailable(err))
	}
	for i := range out {
		out[i].FirstSeenAt, out[i].LastSeenAt = out[i].FirstSeenAt.UTC(), out[i].LastSeenAt.UTC()
	}
	return out, nil
}

// RemoveMembership ends subject's membership of org (ErrNotFound when
// subject is not a member of org). The user's sessions and API tokens made
// for that organisation end with it, so that access ends now and not when a
// session would have. Audit "membership.set" (to "") and "token.revoke" for
// each token.
func (s *Store) RemoveMembership(ctx context.Context, a Actor, org, subject string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var m Membership
		if err := s.forUpdate(tx).Where("subject = ? AND org = ?", subject, org).Take(&m).Error; err != nil {
			return dbErr(err)
		}
		if err := tx.Where("subject = ?", subject).Delete(&Membership{}).Error; err != nil {
			return err
		}
		if err := tx.Where("subject = ? AND org = ?", subject, org).Delete(&Session{}).Error; err != nil {
			return err
		}
		var toks []APIToken
		if err := tx.Where("subject = ? AND org = ? AND revoked_at IS NULL", subject, org).Order("id").Find(&toks).Error; err != nil {
			return err
		}
		now := s.now()
		for _, t := range toks {
			if err := tx.Model(&APIToken{}).Where("id = ?", t.ID).Update("revoked_at", now).Error; err != nil {
				return err
			}
			if err := s.appendAudit(tx, a, org, "token", t.ID, TokenRevokeEvent{Name: t.Name, Subject: t.Subject}); err != nil {
				return err
			}
		}
		return s.appendAudit(tx, a, org, "membership", subject, MembershipSetEvent{Org: "", PreviousOrg: org, Subject: subject})
	})
	if err != nil {
		return fmt.Errorf("removing %s from %s: %w", subject, org, err)
	}
	return nil
}

// Invitation lets the holder of an e-mail address join an organisation at
// their first sign-in, once the identity provider says the address is
// theirs (email_verified).
type Invitation struct {
	ID         string     `gorm:"primaryKey;size:36" json:"id"`
	Org        string     `gorm:"index;size:64;not null" json:"org"`
	Email      string     `gorm:"index;size:320;not null" json:"email"`
	CreatedBy  string     `gorm:"size:255;not null" json:"created_by"`
	CreatedAt  time.Time  `gorm:"not null" json:"created_at"`
	ExpiresAt  time.Time  `gorm:"not null" json:"expires_at"`
	AcceptedBy string     `gorm:"size:255;not null" json:"accepted_by,omitempty"`
	AcceptedAt *time.Time `json:"accepted_at,omitempty"`
	// State is pending, accepted or expired, as of the listing.
	State string `gorm:"-" json:"state"`
}

// Invitation states.
const (
	InvitationPending  = "pending"
	InvitationAccepted = "accepted"
	InvitationExpired  = "expired"
)

func (inv *Invitation) setState(now time.Time) {
	switch {
	case inv.AcceptedAt != nil:
		inv.State = InvitationAccepted
	case !now.Before(inv.ExpiresAt):
		inv.State = InvitationExpired
	default:
		inv.State = InvitationPending
	}
}

// NormalizeEmail returns the address of an e-mail (a bare addr-spec,
// lower-cased) or ErrInvalid. Invitations store and match this form.
func NormalizeEmail(email string) (string, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != strings.TrimSpace(email) || len(addr.Address) > 320 {
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrInvalid, email)
	}
	return strings.ToLower(addr.Address), nil
}

// CreateInvitation invites email to org for InvitationLifetime. The
// organisation must exist (ErrNotFound); an address with a pending
// invitation cannot get a second one (ErrConflict). Audit
// "invitation.create".
func (s *Store) CreateInvitation(ctx context.Context, a Actor, org, email string) (*Invitation, error) {
	addr, err := NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("inviting: %w", err)
	}
	now := s.now()
	inv := &Invitation{ID: uuid.NewString(), Org: org, Email: addr, CreatedBy: a.Subject, CreatedAt: now, ExpiresAt: now.Add(InvitationLifetime)}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Organization{}).Where("slug = ?", org).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: organisation %q", ErrNotFound, org)
		}
		var pending Invitation
		switch err := tx.Where("email = ? AND accepted_at IS NULL AND expires_at > ?", addr, now).Take(&pending).Error; {
		case err == nil:
			return fmt.Errorf("%w: %s already has a pending invitation to %s, until %s; delete it first", ErrConflict, addr, pending.Org, pending.ExpiresAt.UTC().Format(time.RFC3339))
		case !errIsNotFound(err):
			return err
		}
		if err := tx.Create(inv).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, org, "invitation", inv.ID, InvitationCreateEvent{
			Email: addr, ExpiresAt: inv.ExpiresAt.Format(time.RFC3339), Org: org,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("inviting %s to %s: %w", addr, org, err)
	}
	inv.setState(now)
	return inv, nil
}

// ListInvitations returns org's invitations, newest first, each with its
// state now.
func (s *Store) ListInvitations(ctx context.Context, org string) ([]Invitation, error) {
	var out []Invitation
	if err := s.db.WithContext(ctx).Where("org = ?", org).Order("created_at DESC, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("listing invitations: %w", unavailable(err))
	}
	now := s.now()
	for i := range out {
		out[i].setState(now)
	}
	return out, nil
}

// RevokeInvitation withdraws org's invitation id: ErrNotFound when org has
// no such invitation, ErrConflict when it was already accepted (remove the
// membership instead). Audit "invitation.revoke".
func (s *Store) RevokeInvitation(ctx context.Context, a Actor, org, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var inv Invitation
		if err := s.forUpdate(tx).Where("id = ? AND org = ?", id, org).Take(&inv).Error; err != nil {
			return dbErr(err)
		}
		if inv.AcceptedAt != nil {
			return fmt.Errorf("%w: the invitation was accepted by %s; remove the membership instead", ErrConflict, inv.AcceptedBy)
		}
		if err := tx.Where("id = ?", id).Delete(&Invitation{}).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, org, "invitation", id, InvitationRevokeEvent{Email: inv.Email, Org: org})
	})
	if err != nil {
		return fmt.Errorf("revoking invitation %s: %w", id, err)
	}
	return nil
}

// AcceptInvitation joins subject, who signed in with email, to the
// organisation of the oldest pending invitation of that address, and
// returns the organisation. Only a verified address matches (verified is the
// provider's email_verified claim): an unverified one, an expired or an
// accepted invitation, or a subject who already has a membership, gives
// ErrNotFound. The invitation is accepted once, even by concurrent
// sign-ins. Audit "invitation.accept" and "membership.set", by a (the
// signing-in user).
func (s *Store) AcceptInvitation(ctx context.Context, a Actor, subject, email string, verified bool) (string, error) {
	if !verified || subject == "" {
		return "", ErrNotFound
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return "", ErrNotFound
	}
	var org string
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Membership{}).Where("subject = ?", subject).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrNotFound
		}
		now := s.now()
		var inv Invitation
		err := s.forUpdate(tx).Where("email = ? AND accepted_at IS NULL AND expires_at > ?", addr, now).
			Order("created_at ASC, id ASC").Take(&inv).Error
		if err != nil {
			return dbErr(err)
		}
		res := tx.Model(&Invitation{}).Where("id = ? AND accepted_at IS NULL", inv.ID).
			Updates(map[string]any{"accepted_by": subject, "accepted_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		m := Membership{Subject: subject, Org: inv.Org, CreatedBy: a.Subject, CreatedAt: now}
		if err := tx.Create(&m).Error; err != nil {
			return dbErr(err)
		}
		if err := s.appendAudit(tx, a, inv.Org, "invitation", inv.ID, InvitationAcceptEvent{Email: addr, Org: inv.Org, Subject: subject}); err != nil {
			return err
		}
		org = inv.Org
		return s.appendAudit(tx, a, inv.Org, "membership", subject, MembershipSetEvent{Org: inv.Org, PreviousOrg: "", Subject: subject})
	})
	if err != nil {
		return "", fmt.Errorf("accepting an invitation for %s: %w", subject, err)
	}
	return org, nil
}
