package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Notification channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// Notification is one message in the durable outbox. It is written to the
// store first and delivered afterwards by a worker (handlers/notify), which
// retries it with backoff until it is sent (SentAt) or given up (FailedAt).
// Delivery is at least once: a receiver deduplicates by the event id in Body.
type Notification struct {
	ID            int64      `gorm:"primaryKey" json:"id"`
	Channel       string     `gorm:"size:16;not null" json:"channel"`       // ChannelEmail or ChannelWebhook
	Event         string     `gorm:"size:64;not null" json:"event"`         // e.g. "certificate.expiring"
	Recipient     string     `gorm:"size:2048;not null" json:"recipient"`   // an e-mail address or a webhook URL
	Subject       string     `gorm:"type:text" json:"subject"`              // e-mail subject
	Body          string     `gorm:"type:text;not null" json:"body"`        // a JSON document
	Attempts      int        `gorm:"not null" json:"attempts"`              // delivery attempts started
	NextAttemptAt time.Time  `gorm:"not null" json:"next_attempt_at"`       // not before this time
	SentAt        *time.Time `json:"sent_at,omitempty"`                     // delivered
	FailedAt      *time.Time `json:"failed_at,omitempty"`                   // given up after the last attempt
	LastError     string     `gorm:"type:text" json:"last_error,omitempty"` // why the last attempt failed
	CreatedAt     time.Time  `json:"created_at"`
}

// ExpiryNotice records that a certificate's expiry was noticed at one
// threshold; the (certificate, threshold) key makes that happen once, however
// many replicas scan.
type ExpiryNotice struct {
	CertificateID string    `gorm:"primaryKey;size:36" json:"certificate_id"`
	ThresholdDays int       `gorm:"primaryKey;autoIncrement:false" json:"threshold_days"`
	SentAt        time.Time `gorm:"not null" json:"sent_at"`
}

// checkNotification validates and normalises a notification to be enqueued.
func (s *Store) checkNotification(n *Notification, now time.Time) error {
	switch {
	case n.Channel != ChannelEmail && n.Channel != ChannelWebhook:
		return fmt.Errorf("%w: channel must be %q or %q, got %q", ErrInvalid, ChannelEmail, ChannelWebhook, n.Channel)
	case strings.TrimSpace(n.Event) == "":
		return fmt.Errorf("%w: event required", ErrInvalid)
	case strings.TrimSpace(n.Recipient) == "":
		return fmt.Errorf("%w: recipient required", ErrInvalid)
	case !json.Valid([]byte(n.Body)):
		return fmt.Errorf("%w: body must be a JSON document", ErrInvalid)
	}
	n.ID, n.Attempts, n.SentAt, n.FailedAt, n.LastError = 0, 0, nil, nil, ""
	if n.NextAttemptAt.IsZero() {
		n.NextAttemptAt = now
	}
	n.NextAttemptAt = normTime(n.NextAttemptAt)
	n.CreatedAt = now
	return nil
}

// EnqueueNotifications writes notifications to the outbox in one
// transaction. A zero NextAttemptAt means now. The store assigns ID and
// CreatedAt and clears the delivery state.
func (s *Store) EnqueueNotifications(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *gorm.DB) error { return s.enqueue(tx, ns) })
	if err != nil {
		return fmt.Errorf("enqueueing notifications: %w", err)
	}
	return nil
}

func (s *Store) enqueue(tx *gorm.DB, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	now := s.now()
	for i := range ns {
		if err := s.checkNotification(&ns[i], now); err != nil {
			return err
		}
	}
	return dbErr(tx.Create(&ns).Error)
}

// ClaimNotifications takes up to limit notifications that are due at now
// (neither sent nor given up, next attempt not after now), oldest due first,
// counts an attempt on each and leases it until now+lease, so that another
// worker (another replica) does not deliver it meanwhile. A worker that dies
// mid-delivery leaves the notification to be taken again when the lease ends.
// On PostgreSQL rows another transaction is claiming are skipped (FOR UPDATE
// SKIP LOCKED).
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Notification, error) {
	if limit <= 0 {
		return nil, nil
	}
	now = normTime(now)
	var out []Notification
	err := s.tx(ctx, func(tx *gorm.DB) error {
		q := tx.Model(&Notification{}).
			Where("sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?", now).
			Order("next_attempt_at ASC, id ASC").Limit(limit)
		if s.driver == DriverPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var ids []int64
		if err := q.Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		err := tx.Model(&Notification{}).Where("id IN ?", ids).Updates(map[string]any{
			"attempts":        gorm.Expr("attempts + 1"),
			"next_attempt_at": normTime(now.Add(lease)),
		}).Error
		if err != nil {
			return err
		}
		return tx.Where("id IN ?", ids).Order("next_attempt_at ASC, id ASC").Find(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("claiming notifications: %w", err)
	}
	return out, nil
}

// NotificationSent marks a notification delivered at t.
func (s *Store) NotificationSent(ctx context.Context, id int64, t time.Time) error {
	err := s.db.WithContext(ctx).Model(&Notification{}).Where("id = ?", id).
		Updates(map[string]any{"sent_at": normTime(t), "last_error": ""}).Error
	if err != nil {
		return fmt.Errorf("marking notification %d sent: %w", id, err)
	}
	return nil
}

// RetryNotification records a failed attempt and schedules the next one
// at next.
func (s *Store) RetryNotification(ctx context.Context, id int64, next time.Time, lastErr string) error {
	err := s.db.WithContext(ctx).Model(&Notification{}).Where("id = ? AND sent_at IS NULL", id).
		Updates(map[string]any{"next_attempt_at": normTime(next), "last_error": cut(lastErr, 1000)}).Error
	if err != nil {
		return fmt.Errorf("scheduling notification %d again: %w", id, err)
	}
	return nil
}

// AbandonNotification records the last failed attempt and gives the
// notification up at t: it is not delivered again.
func (s *Store) AbandonNotification(ctx context.Context, id int64, t time.Time, lastErr string) error {
	err := s.db.WithContext(ctx).Model(&Notification{}).Where("id = ? AND sent_at IS NULL", id).
		Updates(map[string]any{"failed_at": normTime(t), "last_error": cut(lastErr, 1000)}).Error
	if err != nil {
		return fmt.Errorf("giving notification %d up: %w", id, err)
	}
	return nil
}

// ListNotifications returns the newest notifications first, at most limit
// (default 50, max 500).
func (s *Store) ListNotifications(ctx context.Context, limit int) ([]Notification, error) {
	var out []Notification
	err := s.db.WithContext(ctx).Order("created_at DESC, id DESC").Limit(pageLimit(limit)).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("listing notifications: %w", err)
	}
	return out, nil
}

// ExpiringCertificates returns the issued, unrevoked certificates whose
// not_after is after now and not after until, soonest first, without their
// DER. A certificate already replaced by an issued renewal is left out: its
// holder has nothing left to do.
func (s *Store) ExpiringCertificates(ctx context.Context, now, until time.Time) ([]Certificate, error) {
	var out []Certificate
	err := s.db.WithContext(ctx).Model(&Certificate{}).
		Omit("der", "precert_der").
		Where("state = ? AND revoked_at IS NULL AND not_after > ? AND not_after <= ?", CertIssued, normTime(now), normTime(until)).
		Where("NOT EXISTS (SELECT 1 FROM requests r WHERE r.renewal_of = certificates.id AND r.state = ?)", StateIssued).
		Order("not_after ASC, id ASC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("listing expiring certificates: %w", err)
	}
	return out, nil
}

// RecordExpiryNotice records that certificate certID was noticed at
// thresholdDays and enqueues ns, in one transaction, with audit
// "certificate.expiry_notice". If that threshold was already noticed (by
// this or another replica) nothing is written and recorded is false.
func (s *Store) RecordExpiryNotice(ctx context.Context, a Actor, certID string, thresholdDays int, ns []Notification) (recorded bool, err error) {
	if thresholdDays <= 0 {
		return false, fmt.Errorf("recording expiry notice: %w: threshold_days must be positive", ErrInvalid)
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var c Certificate
		if err := tx.Select("id", "org", "serial").Where("id = ?", certID).Take(&c).Error; err != nil {
			return dbErr(err)
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&ExpiryNotice{CertificateID: certID, ThresholdDays: thresholdDays, SentAt: s.now()})
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		recorded = true
		if err := s.enqueue(tx, ns); err != nil {
			return err
		}
		return s.appendAudit(tx, a, c.Org, "certificate", certID, CertificateExpiryNoticeEvent{
			Notifications: len(ns), Serial: c.Serial, ThresholdDays: thresholdDays,
		})
	})
	if err != nil {
		return false, fmt.Errorf("recording expiry notice of certificate %s at %d days: %w", certID, thresholdDays, err)
	}
	return recorded, nil
}

// ExpiryNotices returns the thresholds noticed for a certificate, largest
// first.
func (s *Store) ExpiryNotices(ctx context.Context, certID string) ([]ExpiryNotice, error) {
	var out []ExpiryNotice
	err := s.db.WithContext(ctx).Where("certificate_id = ?", certID).Order("threshold_days DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("listing expiry notices of certificate %s: %w", certID, err)
	}
	return out, nil
}
