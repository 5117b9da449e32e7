package models

import (
	"context"
	"fmt"
	"time"
)

// CertTimes are the dates of one certificate, for charts.
type CertTimes struct {
	State     string
	CreatedAt time.Time
	NotAfter  time.Time
	RevokedAt *time.Time
}

// CertificateTimes returns the dates of the certificates of org (all when
// empty) issued, revoked or expiring between from and to, reading only the
// columns needed.
func (s *Store) CertificateTimes(ctx context.Context, org string, from, to time.Time) ([]CertTimes, error) {
	q := s.db.WithContext(ctx).Model(&Certificate{}).
		Select("state", "created_at", "not_after", "revoked_at").
		Where("state IN ?", []string{CertIssued, CertRevoked}).
		Where("(created_at BETWEEN ? AND ?) OR (not_after BETWEEN ? AND ?) OR (revoked_at BETWEEN ? AND ?)",
			normTime(from), normTime(to), normTime(from), normTime(to), normTime(from), normTime(to))
	if org != "" {
		q = q.Where("org = ?", org)
	}
	var out []CertTimes
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("reading certificate dates: %w", err)
	}
	return out, nil
}
