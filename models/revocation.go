package models

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/certdesk/certdesk/signer/crlreason"
)

// RFC 5280 §5.3.1 CRLReason codes, as crlreason defines them (which also
// says which are accepted and who may give each).
const (
	ReasonUnspecified          = crlreason.Unspecified
	ReasonKeyCompromise        = crlreason.KeyCompromise
	ReasonCACompromise         = crlreason.CACompromise
	ReasonAffiliationChanged   = crlreason.AffiliationChanged
	ReasonSuperseded           = crlreason.Superseded
	ReasonCessationOfOperation = crlreason.CessationOfOperation
	ReasonCertificateHold      = crlreason.CertificateHold
	ReasonRemoveFromCRL        = crlreason.RemoveFromCRL
	ReasonPrivilegeWithdrawn   = crlreason.PrivilegeWithdrawn
	ReasonAACompromise         = crlreason.AACompromise
)

// crlLockClass is the first key of the transaction advisory lock SaveCRL
// takes per issuer on PostgreSQL.
const crlLockClass = 0x63726c // "crl"

// RevokedEntry is the part of a revoked certificate a CRL needs.
type RevokedEntry struct {
	Serial           string
	RevokedAt        time.Time
	RevocationReason int
	NotAfter         time.Time
}

// RevokeCertificate revokes an issued certificate now with an RFC 5280
// reason (ErrInvalid for certificateHold, removeFromCRL or unknown codes).
// Revoking a certificate that is not issued — already revoked, pending,
// failed — is ErrConflict and changes nothing. Audit "certificate.revoke".
func (s *Store) RevokeCertificate(ctx context.Context, a Actor, id string, reason int) (*Certificate, error) {
	r, ok := crlreason.ByCode(reason)
	if !ok {
		return nil, fmt.Errorf("revoking certificate %s: %w: reason %d is not accepted", id, ErrInvalid, reason)
	}
	var out Certificate
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Certificate
		if err := tx.Where("id = ?", id).Take(&c).Error; err != nil {
			return dbErr(err)
		}
		if c.State != CertIssued {
			if c.State == CertRevoked {
				return fmt.Errorf("%w: certificate is already revoked", ErrConflict)
			}
			return fmt.Errorf("%w: certificate is %s, not issued", ErrConflict, c.State)
		}
		now := s.now()
		res := tx.Model(&Certificate{}).Where("id = ? AND state = ?", id, CertIssued).Updates(map[string]any{
			"state": CertRevoked, "revoked_at": now, "revocation_reason": reason,
			"revoked_by": cut(a.Subject, 255), "updated_at": now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: certificate is already revoked", ErrConflict)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		if err := s.blockRevokedKey(tx, a, &c, reason); err != nil {
			return err
		}
		return s.appendAudit(tx, a, c.Org, "certificate", id, CertificateRevokeEvent{
			Reason: reason, ReasonName: r.Name, Serial: c.Serial,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("revoking certificate %s: %w", id, err)
	}
	return &out, nil
}

// RevokedCertificates returns the certificates a CRL must list at now:
// revoked and not yet expired, ordered by serial. Only ID, Serial, NotAfter,
// RevokedAt and RevocationReason are filled.
func (s *Store) RevokedCertificates(ctx context.Context, now time.Time) ([]Certificate, error) {
	var cs []Certificate
	err := s.db.WithContext(ctx).Model(&Certificate{}).
		Select("id", "serial", "not_after", "revoked_at", "revocation_reason").
		Where("state = ? AND not_after > ?", CertRevoked, normTime(now)).
		Order("serial ASC").Find(&cs).Error
	if err != nil {
		return nil, fmt.Errorf("listing revoked certificates: %w", err)
	}
	return cs, nil
}

// RevokedEntries is RevokedCertificates in a lighter form, all of them in
// one slice, ordered by serial.
func (s *Store) RevokedEntries(ctx context.Context, now time.Time) ([]RevokedEntry, error) {
	var out []RevokedEntry
	err := s.EachRevoked(ctx, RevokedScope{Now: now, Partition: AllPartitions, IssuerKeyID: AnyKey}, func(batch []RevokedEntry) error {
		out = append(out, batch...)
		return nil
	})
	slices.SortFunc(out, func(a, b RevokedEntry) int { return strings.Compare(a.Serial, b.Serial) })
	return out, err
}

// AllPartitions, as RevokedScope.Partition, selects every partition (the
// full CRL).
const AllPartitions = -1

// RevokedBatch is how many rows EachRevoked hands over at a time.
const RevokedBatch = 20000

// RevokedScope selects the revoked certificates one CRL lists.
type RevokedScope struct {
	// Now: certificates that expired by then are left out (RFC 5280
	// §3.3: a CRL need not list an expired certificate).
	Now time.Time
	// IssuerKeyID is the issuing CA (Certificate.IssuerKeyID); certificates
	// recorded without one are listed by every CA. AnyKey lists all.
	IssuerKeyID string
	// Partition is one CRL partition, or AllPartitions.
	Partition int
	// Since, when set, keeps only revocations at or after it (a delta CRL).
	Since time.Time
}

// EachRevoked calls fn with the revoked certificates of scope,
// RevokedBatch at a time, as one query streams them, so that a CRL of
// millions of entries never holds all rows at once. They come in no
// particular order: a CRL's entries need none (RFC 5280 §5.1.2.6), and
// asking for the serial's order would make the database visit the rows in
// the random order of serials instead of where they lie. fn must not keep
// the slice: it is reused.
func (s *Store) EachRevoked(ctx context.Context, scope RevokedScope, fn func([]RevokedEntry) error) error {
	q := s.db.WithContext(ctx).Model(&Certificate{}).
		Select("serial", "revoked_at", "revocation_reason", "not_after").
		Where("state = ? AND not_after > ?", CertRevoked, normTime(scope.Now))
	if scope.Partition != AllPartitions {
		q = q.Where("crl_partition = ?", scope.Partition)
	}
	if scope.IssuerKeyID != AnyKey {
		q = q.Where("issuer_key_id IN ?", []string{scope.IssuerKeyID, ""})
	}
	if !scope.Since.IsZero() {
		q = q.Where("revoked_at >= ?", normTime(scope.Since))
	}
	rows, err := q.Rows()
	if err != nil {
		return fmt.Errorf("listing revoked certificates: %w", dbErr(err))
	}
	defer rows.Close()
	batch := make([]RevokedEntry, 0, RevokedBatch)
	var (
		e      RevokedEntry
		at     sql.NullTime // not pointers: no allocation per row
		reason sql.NullInt32
	)
	for rows.Next() {
		if err := rows.Scan(&e.Serial, &at, &reason, &e.NotAfter); err != nil {
			return fmt.Errorf("reading revoked certificate: %w", err)
		}
		e.RevokedAt, e.RevocationReason = time.Time{}, 0
		if at.Valid {
			e.RevokedAt = at.Time.UTC()
		}
		if reason.Valid {
			e.RevocationReason = int(reason.Int32)
		}
		e.NotAfter = e.NotAfter.UTC()
		batch = append(batch, e)
		if len(batch) == RevokedBatch {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing revoked certificates: %w", dbErr(err))
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

// crlPublisher is the actor of CRL publication events.
// AnyKey, as the keyID of LatestCRL and LatestCRLInfo, matches every
// signing key: the newest CRL of an issuer whichever CA key signed it.
const AnyKey = "*"

// crlsOf narrows q to the CRLs of issuer signed by keyID.
func crlsOf(q *gorm.DB, issuer, keyID string) *gorm.DB {
	q = q.Where("issuer = ?", issuer)
	if keyID != AnyKey {
		q = q.Where("key_id = ?", keyID)
	}
	return q
}

var crlPublisher = Actor{Subject: "system:crl", Role: RoleSystem, Source: "crl-generator"}

// SaveCRL stores a signed CRL. Its number must be higher than every stored
// number for the same issuer (RFC 5280 §5.2.3: monotonically increasing);
// a duplicate or lower number is ErrConflict.
func (s *Store) SaveCRL(ctx context.Context, c *CRL) error {
	switch {
	case c.Issuer == "":
		return fmt.Errorf("saving CRL: %w: issuer required", ErrInvalid)
	case c.Number <= 0:
		return fmt.Errorf("saving CRL: %w: number must be positive", ErrInvalid)
	case len(c.DER) == 0:
		return fmt.Errorf("saving CRL: %w: DER required", ErrInvalid)
	case !c.NextUpdate.After(c.ThisUpdate):
		return fmt.Errorf("saving CRL: %w: next_update must follow this_update", ErrInvalid)
	}
	c.ID = 0
	c.ThisUpdate, c.NextUpdate = normTime(c.ThisUpdate), normTime(c.NextUpdate)
	c.CreatedAt = s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if s.driver == DriverPostgres {
			// Serialise writers of one issuer's CRLs so that numbers are
			// committed in increasing order.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", crlLockClass, c.Issuer).Error; err != nil {
				return err
			}
		}
		var max *int64
		if err := tx.Model(&CRL{}).Where("issuer = ?", c.Issuer).Select("MAX(number)").Scan(&max).Error; err != nil {
			return err
		}
		if max != nil && c.Number <= *max {
			return fmt.Errorf("%w: CRL number %d is not above %d", ErrConflict, c.Number, *max)
		}
		if err := dbErr(tx.Create(c).Error); err != nil {
			return err
		}
		// A CRL is a signature by a CA key: it is audited like one.
		sum := sha256.Sum256(c.DER)
		return s.appendAudit(tx, crlPublisher, "", "crl", fmt.Sprintf("%s-%d", c.Issuer, c.Number), CRLPublishEvent{
			Entries: c.Entries, Issuer: c.Issuer, KeyID: c.KeyID,
			NextUpdate: c.NextUpdate.Format(time.RFC3339), Number: c.Number,
			SHA256: hex.EncodeToString(sum[:]), ThisUpdate: c.ThisUpdate.Format(time.RFC3339),
		})
	})
	if err != nil {
		return fmt.Errorf("saving CRL %s #%d: %w", c.Issuer, c.Number, err)
	}
	return nil
}

// LatestCRL returns the stored CRL with the highest number for issuer
// signed by the CA key keyID (any key when keyID is AnyKey), or ErrNotFound.
func (s *Store) LatestCRL(ctx context.Context, issuer, keyID string) (*CRL, error) {
	var c CRL
	err := crlsOf(s.db.WithContext(ctx), issuer, keyID).Order("number DESC").Take(&c).Error
	if err != nil {
		return nil, fmt.Errorf("reading latest CRL of %s: %w", issuer, dbErr(err))
	}
	return &c, nil
}

// WithLock runs fn while holding the cluster-wide lock named by key, so
// that exactly one replica does singleton work (CRL generation, expiry
// notices). On PostgreSQL it is a session advisory lock
// (pg_try_advisory_lock) held on a dedicated connection for the duration of
// fn; on SQLite, which one process owns, an in-process mutex. If another
// holder has the lock, fn is not run and acquired is false.
func (s *Store) WithLock(ctx context.Context, key int64, fn func(ctx context.Context) error) (acquired bool, err error) {
	if s.driver != DriverPostgres {
		m := s.localLock(key)
		if !m.TryLock() {
			return false, nil
		}
		defer m.Unlock()
		return true, fn(ctx)
	}
	conn, err := s.lockDB.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("taking lock %d: %w", key, unavailable(err))
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil {
		return false, fmt.Errorf("taking lock %d: %w", key, err)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even when ctx is done; if that fails, discard the
		// connection so the lock dies with its session instead of
		// returning to the pool still held.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var released bool
		uerr := conn.QueryRowContext(uctx, "SELECT pg_advisory_unlock($1)", key).Scan(&released)
		if uerr != nil || !released {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil && uerr != nil {
				err = fmt.Errorf("releasing lock %d: %w", key, uerr)
			}
		}
	}()
	return true, fn(ctx)
}

// localLock returns the in-process mutex for key.
func (s *Store) localLock(key int64) *sync.Mutex {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	m, ok := s.locks[key]
	if !ok {
		m = &sync.Mutex{}
		s.locks[key] = m
	}
	return m
}

// PruneCRLs removes the stored CRLs of issuer signed by keyID that no
// replica may still serve: all but the newest keep, and of those only the
// ones whose nextUpdate is before now. The newest of each name and key is
// never removed, so the next number (above every stored one, SaveCRL)
// keeps increasing. It returns the rows removed; removing any is audited.
// Callers hold the generator's lock of that CRL.
func (s *Store) PruneCRLs(ctx context.Context, issuer, keyID string, keep int, now time.Time) (int64, error) {
	if keep < 1 {
		return 0, fmt.Errorf("pruning CRLs: %w: keep at least the newest", ErrInvalid)
	}
	var removed int64
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var kept []uint
		if err := tx.Model(&CRL{}).Where("issuer = ? AND key_id = ?", issuer, keyID).
			Order("number DESC").Limit(keep).Pluck("id", &kept).Error; err != nil {
			return err
		}
		if len(kept) < keep {
			return nil
		}
		old := tx.Model(&CRL{}).Where("issuer = ? AND key_id = ? AND next_update < ? AND id NOT IN ?", issuer, keyID, normTime(now), kept)
		var span struct{ Lo, Hi *int64 }
		if err := old.Select("MIN(number) AS lo, MAX(number) AS hi").Scan(&span).Error; err != nil {
			return err
		}
		if span.Lo == nil {
			return nil
		}
		res := tx.Where("issuer = ? AND key_id = ? AND next_update < ? AND id NOT IN ?", issuer, keyID, normTime(now), kept).Delete(&CRL{})
		if res.Error != nil {
			return res.Error
		}
		removed = res.RowsAffected
		return s.appendAudit(tx, crlPublisher, "", "crl", fmt.Sprintf("%s-%d-%d", issuer, *span.Lo, *span.Hi), CRLPruneEvent{
			FromNumber: *span.Lo, Issuer: issuer, Kept: keep, KeyID: keyID, Rows: removed, ToNumber: *span.Hi,
		})
	})
	if err != nil {
		return 0, fmt.Errorf("pruning CRLs of %s: %w", issuer, dbErr(err))
	}
	return removed, nil
}

// HasUnexpiredCertificates reports whether the issuing CA with key id
// issuerKeyID has a certificate (issued or revoked) that is valid after
// now: as long as it has, its CRLs and OCSP answers are kept published.
func (s *Store) HasUnexpiredCertificates(ctx context.Context, issuerKeyID string, now time.Time) (bool, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&Certificate{}).
		Where("issuer_key_id = ? AND not_after > ? AND der IS NOT NULL", issuerKeyID, normTime(now)).
		Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return false, fmt.Errorf("reading a CA's unexpired certificates: %w", dbErr(err))
	}
	return len(ids) > 0, nil
}
