package models

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// CreateSession stores a new browser session. sess.ID (the SHA-256 of the
// cookie value), Subject, Role, CSRFToken and ExpiresAt are required;
// CreatedAt and LastSeenAt default to now. A duplicate ID is ErrConflict.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	switch {
	case strings.TrimSpace(sess.ID) == "":
		return fmt.Errorf("creating session: %w: id required", ErrInvalid)
	case strings.TrimSpace(sess.Subject) == "":
		return fmt.Errorf("creating session: %w: subject required", ErrInvalid)
	case sess.Role == "":
		return fmt.Errorf("creating session: %w: role required", ErrInvalid)
	case sess.CSRFToken == "":
		return fmt.Errorf("creating session: %w: CSRF token required", ErrInvalid)
	case sess.ExpiresAt.IsZero():
		return fmt.Errorf("creating session: %w: expiry required", ErrInvalid)
	}
	now := s.now()
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = now
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = sess.CreatedAt
	}
	sess.CreatedAt = normTime(sess.CreatedAt)
	sess.LastSeenAt = normTime(sess.LastSeenAt)
	sess.ExpiresAt = normTime(sess.ExpiresAt)
	if err := s.db.WithContext(ctx).Create(sess).Error; err != nil {
		return fmt.Errorf("creating session: %w", dbErr(err))
	}
	return nil
}

// GetSession returns the session with this ID, or ErrNotFound if there is
// none or it is past its ExpiresAt (by the store's clock). Idle timeouts are
// the caller's to check against LastSeenAt.
func (s *Store) GetSession(ctx context.Context, id string) (*Session, error) {
	var sess Session
	err := s.db.WithContext(ctx).Where("id = ? AND expires_at > ?", id, s.now()).Take(&sess).Error
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", dbErr(err))
	}
	return &sess, nil
}

// TouchSession sets the session's LastSeenAt to t (for idle timeouts).
// ErrNotFound if the session does not exist.
func (s *Store) TouchSession(ctx context.Context, id string, t time.Time) error {
	res := s.db.WithContext(ctx).Model(&Session{}).Where("id = ?", id).Update("last_seen_at", normTime(t))
	if res.Error != nil {
		return fmt.Errorf("touching session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("touching session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSession removes a session (logout). Deleting a session that does not
// exist is not an error, so logging out twice is harmless.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// DeleteSessionsOf removes every session of a subject (e.g. when an admin
// removes a user) and returns how many there were.
func (s *Store) DeleteSessionsOf(ctx context.Context, subject string) (int64, error) {
	res := s.db.WithContext(ctx).Where("subject = ?", subject).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("deleting sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// DeleteExpiredSessions removes sessions whose ExpiresAt is at or before now
// and returns how many it removed.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at <= ?", normTime(now)).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("deleting expired sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}
