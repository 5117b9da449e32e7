package models

import (
	"context"
	"fmt"
	"time"
)

// StateCount is how many requests are in one state.
type StateCount struct {
	State string
	Count int64
}

// RequestsByState counts requests per state (for metrics).
func (s *Store) RequestsByState(ctx context.Context) ([]StateCount, error) {
	var out []StateCount
	err := s.db.WithContext(ctx).Model(&Request{}).Select("state, count(*) AS count").Group("state").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("counting requests: %w", err)
	}
	return out, nil
}

// OrgExpiry is an organisation's soonest certificate expiry.
type OrgExpiry struct {
	Org      string
	NotAfter time.Time
}

// SoonestExpiries returns, per organisation, the earliest not_after of its
// valid (issued, unexpired) certificates: the figure an expiry alert needs.
func (s *Store) SoonestExpiries(ctx context.Context, now time.Time) ([]OrgExpiry, error) {
	rows, err := s.db.WithContext(ctx).Model(&Certificate{}).
		Select("org, min(not_after)").
		Where("state = ? AND not_after > ?", CertIssued, normTime(now)).
		Group("org").Rows()
	if err != nil {
		return nil, fmt.Errorf("reading soonest expiries: %w", err)
	}
	defer rows.Close()
	var out []OrgExpiry
	for rows.Next() {
		var e OrgExpiry
		var min any // PostgreSQL answers a timestamp, SQLite the stored text
		if err := rows.Scan(&e.Org, &min); err != nil {
			return nil, fmt.Errorf("reading soonest expiries: %w", err)
		}
		if e.NotAfter, err = asTime(min); err != nil {
			return nil, fmt.Errorf("reading soonest expiry of %s: %w", e.Org, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// asTime converts an aggregate's time value as the drivers return it.
func asTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
			if p, err := time.Parse(layout, t); err == nil {
				return p, nil
			}
		}
		return time.Time{}, fmt.Errorf("unreadable time %q", t)
	case []byte:
		return asTime(string(t))
	}
	return time.Time{}, fmt.Errorf("unexpected time value %T", v)
}
