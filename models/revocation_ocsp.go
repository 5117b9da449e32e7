package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// OCSPResponder is a delegated OCSP responder certificate (RFC 6960
// §4.2.2.2) issued by one CA. Its private key is in the token under
// KeyLabel, next to the CA key; all replicas sign with the newest row.
type OCSPResponder struct {
	ID        uint      `gorm:"primaryKey"`
	Issuer    string    `gorm:"size:16;not null"`            // "issuing"
	KeyID     string    `gorm:"size:64;not null;default:''"` // hex SHA-256 of the certifying CA's SubjectPublicKeyInfo
	KeyLabel  string    `gorm:"size:64;not null"`            // token object label, e.g. ocsp-202601021504
	Serial    string    `gorm:"uniqueIndex;size:40;not null"`
	CertDER   []byte    `gorm:"not null"`
	NotBefore time.Time `gorm:"not null"`
	NotAfter  time.Time `gorm:"not null"`
	CreatedAt time.Time
}

// CertStatus is what an OCSP answer needs to know about a certificate.
type CertStatus struct {
	Serial           string
	State            string // CertIssued or CertRevoked
	NotAfter         time.Time
	RevokedAt        *time.Time
	RevocationReason *int
	IssuerKeyID      string // the issuing CA (Certificate.IssuerKeyID); empty if not recorded
}

// SaveOCSPResponder stores a new responder certificate. Audit
// "ocsp_responder.create".
func (s *Store) SaveOCSPResponder(ctx context.Context, a Actor, r *OCSPResponder) error {
	switch {
	case r.Issuer == "" || r.KeyLabel == "" || r.Serial == "":
		return fmt.Errorf("saving OCSP responder: %w: issuer, key label and serial required", ErrInvalid)
	case len(r.CertDER) == 0:
		return fmt.Errorf("saving OCSP responder: %w: certificate required", ErrInvalid)
	case !r.NotAfter.After(r.NotBefore):
		return fmt.Errorf("saving OCSP responder: %w: not_after must follow not_before", ErrInvalid)
	}
	sn, err := parseSerial("saving OCSP responder", r.Serial)
	if err != nil {
		return err
	}
	r.ID = 0
	r.Serial = sn
	r.NotBefore, r.NotAfter = normTime(r.NotBefore), normTime(r.NotAfter)
	r.CreatedAt = s.now()
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(r).Error; err != nil {
			return dbErr(err)
		}
		return s.appendAudit(tx, a, "", "ocsp_responder", r.Serial, OCSPResponderCreateEvent{
			Issuer: r.Issuer, KeyID: r.KeyID, KeyLabel: r.KeyLabel, NotAfter: r.NotAfter.Format(time.RFC3339),
		})
	})
	if err != nil {
		return fmt.Errorf("saving OCSP responder %s: %w", r.Serial, err)
	}
	return nil
}

// LatestOCSPResponder returns the responder of issuer, certified by the CA
// key keyID, that is valid the longest, or ErrNotFound.
func (s *Store) LatestOCSPResponder(ctx context.Context, issuer, keyID string) (*OCSPResponder, error) {
	var r OCSPResponder
	err := s.db.WithContext(ctx).Where("issuer = ? AND key_id = ?", issuer, keyID).Order("not_after DESC, id DESC").Take(&r).Error
	if err != nil {
		return nil, fmt.Errorf("reading OCSP responder of %s: %w", issuer, dbErr(err))
	}
	return &r, nil
}

// CertificateStatuses returns every issued or revoked certificate that has
// not expired at now, for pre-signing OCSP responses.
func (s *Store) CertificateStatuses(ctx context.Context, now time.Time) ([]CertStatus, error) {
	return s.certStatuses(ctx, s.db.WithContext(ctx).Model(&Certificate{}).
		Where("state IN ? AND not_after > ?", []string{CertIssued, CertRevoked}, normTime(now)))
}

// RevokedSince returns the certificates revoked at or after since, so that
// a replica learns of revocations made through another one.
func (s *Store) RevokedSince(ctx context.Context, since time.Time) ([]CertStatus, error) {
	return s.certStatuses(ctx, s.db.WithContext(ctx).Model(&Certificate{}).
		Where("state = ? AND revoked_at >= ?", CertRevoked, normTime(since)))
}

func (s *Store) certStatuses(ctx context.Context, q *gorm.DB) ([]CertStatus, error) {
	var out []CertStatus
	err := q.Select("serial", "state", "not_after", "revoked_at", "revocation_reason", "issuer_key_id").Order("serial ASC").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("listing certificate statuses: %w", err)
	}
	for i := range out {
		out[i].NotAfter = out[i].NotAfter.UTC()
		if out[i].RevokedAt != nil {
			t := out[i].RevokedAt.UTC()
			out[i].RevokedAt = &t
		}
	}
	return out, nil
}

// LatestCRLInfo is LatestCRL without the DER: what a replica polls to learn
// whether a newer CRL was stored, without reading megabytes each time.
func (s *Store) LatestCRLInfo(ctx context.Context, issuer, keyID string) (*CRL, error) {
	var c CRL
	err := crlsOf(s.db.WithContext(ctx).Select("id", "issuer", "key_id", "number", "this_update", "next_update", "entries", "created_at"), issuer, keyID).
		Order("number DESC").Take(&c).Error
	if err != nil {
		return nil, fmt.Errorf("reading latest CRL of %s: %w", issuer, dbErr(err))
	}
	return &c, nil
}

// LatestCRLNumbers is the highest stored CRL number of each issuer name
// (the full CRLs, their partitions and deltas) signed by the CA key keyID:
// what a replica polls, in one query, to learn which CRLs another replica
// replaced.
func (s *Store) LatestCRLNumbers(ctx context.Context, keyID string) (map[string]int64, error) {
	var rows []struct {
		Issuer string
		Number int64
	}
	err := s.db.WithContext(ctx).Model(&CRL{}).Select("issuer, MAX(number) AS number").
		Where("key_id = ?", keyID).Group("issuer").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("reading the latest CRL numbers: %w", dbErr(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Issuer] = r.Number
	}
	return out, nil
}
