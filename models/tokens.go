package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// MaxTokenLifetimeDays bounds an API token's life in days: a token
// expires at most this long after it is created, whoever creates it (the
// API or the token create command).
const MaxTokenLifetimeDays = 365

// MaxTokenLifetime is MaxTokenLifetimeDays as a duration.
const MaxTokenLifetime = MaxTokenLifetimeDays * 24 * time.Hour

// tokenTouchInterval is how stale LastUsedAt may get before LookupToken
// writes it again (so a busy automation does not write on every call).
const tokenTouchInterval = time.Minute

// maxTokenDepth bounds how long a chain of tokens made by tokens may get, so
// that checking a token's ancestry stays cheap.
const maxTokenDepth = 8

// CreateToken stores an API token. The caller sets t.Hash (hex SHA-256 of
// the token, which the store never sees), Subject, Role, and ExpiresAt in the
// future, at most MaxTokenLifetime away; the store assigns ID and
// CreatedAt. A token made with another token names it in ParentID: the
// parent must be usable, belong to the same subject, and the child's expiry
// is capped at the parent's, so that a token never outlives the token it was
// made with. The audit event "token.create" carries the name, role,
// organisation, parent and expiry, never the token or hash.
func (s *Store) CreateToken(ctx context.Context, a Actor, t *APIToken) error {
	now := s.now()
	// Stored to the microsecond, and compared as stored: a caller that
	// computed "now + the cap" a moment earlier is exactly at the cap.
	t.ExpiresAt = normTime(t.ExpiresAt)
	switch {
	case !isHex64(t.Hash):
		return fmt.Errorf("creating token: %w: hash must be 64 lower-case hex digits", ErrInvalid)
	case strings.TrimSpace(t.Subject) == "":
		return fmt.Errorf("creating token: %w: subject required", ErrInvalid)
	case t.Role == "":
		return fmt.Errorf("creating token: %w: role required", ErrInvalid)
	case !t.ExpiresAt.After(now):
		return fmt.Errorf("creating token: %w: expiry must be in the future", ErrInvalid)
	case t.ExpiresAt.After(now.Add(MaxTokenLifetime)):
		return fmt.Errorf("creating token: %w: expiry must be at most %d days away", ErrInvalid, MaxTokenLifetimeDays)
	}
	t.ID = uuid.NewString()
	t.CreatedAt = now
	t.RevokedAt, t.LastUsedAt = nil, nil
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if t.ParentID != nil {
			parent, depth, err := s.usableToken(on(tx), *t.ParentID, now)
			if err != nil {
				return fmt.Errorf("%w: the token this one is made with is not usable", ErrForbidden)
			}
			if parent.Subject != t.Subject {
				return fmt.Errorf("%w: a token can only make tokens for its own subject", ErrForbidden)
			}
			if depth >= maxTokenDepth {
				return fmt.Errorf("%w: tokens may be made from tokens at most %d deep; make this one from a signed-in session", ErrInvalid, maxTokenDepth)
			}
			if t.ExpiresAt.After(parent.ExpiresAt) {
				t.ExpiresAt = parent.ExpiresAt
			}
		}
		if err := tx.Create(t).Error; err != nil {
			return dbErr(err)
		}
		ev := TokenCreateEvent{
			ExpiresAt: t.ExpiresAt.Format(time.RFC3339), Name: t.Name, Org: t.Org,
			Role: t.Role, Subject: t.Subject,
		}
		if t.ParentID != nil {
			ev.Parent = *t.ParentID
		}
		return s.appendAudit(tx, a, t.Org, "token", t.ID, ev)
	})
	if err != nil {
		return fmt.Errorf("creating token: %w", err)
	}
	return nil
}

// usableToken reads the token with this id on c and checks that it and
// every ancestor is unrevoked and unexpired at now; depth is the number of
// ancestors. A revoked or expired ancestor makes the token unusable
// (ErrNotFound), so revoking a token revokes everything made with it.
func (s *Store) usableToken(c sqlConn, id string, now time.Time) (*APIToken, int, error) {
	var first *APIToken
	for depth := 0; depth <= maxTokenDepth; depth++ {
		var t APIToken
		if err := s.queryRow(c, usableTokenByID, t.scanDest(), id, normTime(now)); err != nil {
			return nil, 0, dbErr(err)
		}
		if first == nil {
			first = &t
		}
		if t.ParentID == nil {
			return first, depth, nil
		}
		id = *t.ParentID
	}
	return nil, 0, ErrNotFound
}

// The statements of a token's use, the first of every API call.
var (
	tokenByHash = newStmt(`SELECT ` + columnList("", apiTokenCols) +
		` FROM api_tokens WHERE hash = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1`)
	usableTokenByID = newStmt(`SELECT ` + columnList("", apiTokenCols) +
		` FROM api_tokens WHERE id = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1`)
	touchToken = newStmt(`UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`)
)

// ListAllTokens returns every subject's tokens, newest first (for
// administrators).
func (s *Store) ListAllTokens(ctx context.Context) ([]APIToken, error) {
	var ts []APIToken
	if err := s.db.WithContext(ctx).Order("created_at DESC, id DESC").Find(&ts).Error; err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return ts, nil
}

// ListTokens returns a subject's tokens, revoked and expired included, newest
// first.
func (s *Store) ListTokens(ctx context.Context, subject string) ([]APIToken, error) {
	var ts []APIToken
	err := s.db.WithContext(ctx).Where("subject = ?", subject).Order("created_at DESC, id DESC").Find(&ts).Error
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken revokes a token. Only its owner (a.Subject) or an admin may;
// for anyone else the token does not exist (ErrNotFound). Revoking a revoked
// token is ErrConflict. Audit "token.revoke".
func (s *Store) RevokeToken(ctx context.Context, a Actor, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var t APIToken
		if err := tx.Where("id = ?", id).Take(&t).Error; err != nil {
			return dbErr(err)
		}
		if t.Subject != a.Subject && a.Role != RoleAdmin {
			return ErrNotFound
		}
		now := s.now()
		res := tx.Model(&APIToken{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("%w: token already revoked", ErrConflict)
		}
		return s.appendAudit(tx, a, t.Org, "token", t.ID, TokenRevokeEvent{
			Name: t.Name, Subject: t.Subject,
		})
	})
	if err != nil {
		return fmt.Errorf("revoking token %s: %w", id, err)
	}
	return nil
}

// LookupToken finds the unrevoked, unexpired token with this hash whose
// ancestors (the tokens it was made with) are all unrevoked and unexpired,
// or ErrNotFound. It records the use in LastUsedAt at most once a minute.
func (s *Store) LookupToken(ctx context.Context, hash string) (*APIToken, error) {
	now := s.now()
	c := s.onReaders(ctx)
	var t APIToken
	if err := s.queryRow(c, tokenByHash, t.scanDest(), hash, now); err != nil {
		return nil, fmt.Errorf("looking up token: %w", dbErr(err))
	}
	if t.ParentID != nil {
		if _, _, err := s.usableToken(c, *t.ParentID, now); err != nil {
			return nil, fmt.Errorf("looking up token: its parent: %w", err)
		}
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= tokenTouchInterval {
		n, err := s.exec(s.onPool(ctx), touchToken, now, t.ID, now.Add(-tokenTouchInterval))
		if err != nil {
			return nil, fmt.Errorf("recording token use: %w", err)
		}
		if n > 0 {
			t.LastUsedAt = &now
		}
	}
	return &t, nil
}

// isHex64 reports whether v is 64 lower-case hex digits (a SHA-256).
func isHex64(v string) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
