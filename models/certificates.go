package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Certificate states as shown to users, derived by CertState.
const (
	CertValid   = "valid"
	CertExpired = "expired"
)

// CertFilter selects certificates for ListCertificates.
type CertFilter struct {
	Org string
	// State is the derived state: "valid" (issued, not yet expired),
	// "expired", "revoked", "pending", "failed", "all"; "" means valid,
	// expired and revoked (certificates that exist), not in-flight or failed
	// issuances.
	State          string
	ExpiringBefore *time.Time // NotAfter before this time
	Serial         string     // any form serial.Parse accepts; "" for any serial
	Cursor         string     // from the previous page
	Limit          int        // default 50, max 500
}

// CertState is a certificate's state as users see it at now: "valid",
// "expired", "revoked", "pending" or "failed".
func CertState(c *Certificate, now time.Time) string {
	switch c.State {
	case CertIssued:
		if now.Before(c.NotAfter) {
			return CertValid
		}
		return CertExpired
	case CertRevoked:
		return CertRevoked
	}
	return c.State
}

// parseSerial returns the stored form of a serial given in any form
// serial.Parse accepts (the OpenSSL form, serial.Number.String), or an
// ErrInvalid error that says what is wrong with it.
func parseSerial(what, s string) (string, error) {
	n, err := serial.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", what, ErrInvalid, err)
	}
	return n.String(), nil
}

// ReserveCertificate records a certificate about to be signed (record
// before sign, Boulder ca/ca.go): c carries Serial, RequestID, NotBefore,
// NotAfter, PrecertDER and optionally Org, Identities and KeyType (taken from
// the request when empty). The reserving caller holds the certificate's
// lease (c.ClaimedBy, until c.LeaseUntil) and signs only while HoldClaim
// says it still does. The request must be approved and have no pending,
// issued or revoked certificate (ErrConflict otherwise, also for a serial
// already used). The store assigns ID and State=pending. Audit
// "certificate.reserve".
func (s *Store) ReserveCertificate(ctx context.Context, a Actor, c *Certificate) error {
	sn, err := s.newReservation(c)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		var r Request
		if err := s.forUpdate(tx).Where("id = ?", c.RequestID).Take(&r).Error; err != nil {
			return fmt.Errorf("request %s: %w", c.RequestID, dbErr(err))
		}
		if r.State != StateApproved {
			return fmt.Errorf("%w: request is %s, not approved", ErrConflict, r.State)
		}
		if err := noLiveCertificate(tx, &r); err != nil {
			return err
		}
		ev, err := s.insertReservation(tx, a, &r, c)
		if err != nil {
			return err
		}
		return s.appendAudits(tx, ev)
	})
	if err != nil {
		return fmt.Errorf("reserving certificate %s: %w", sn, err)
	}
	return nil
}

// newReservation checks what the caller gives of a certificate about to be
// reserved and fills in what the store assigns: ID, State pending, times,
// and the caller's lease. It returns the serial in its stored form.
func (s *Store) newReservation(c *Certificate) (string, error) {
	sn, err := parseSerial("reserving certificate", c.Serial)
	if err != nil {
		return "", err
	}
	switch {
	case c.RequestID == "":
		return "", fmt.Errorf("reserving certificate: %w: request id required", ErrInvalid)
	case c.NotBefore.IsZero() || !c.NotAfter.After(c.NotBefore):
		return "", fmt.Errorf("reserving certificate: %w: not_after must follow not_before", ErrInvalid)
	}
	now := s.now()
	c.Serial = sn
	c.ID = uuid.NewString()
	c.State = CertPending
	c.NotBefore, c.NotAfter = normTime(c.NotBefore), normTime(c.NotAfter)
	c.DER, c.RevokedAt, c.RevocationReason, c.RevokedBy = nil, nil, nil, ""
	c.CreatedAt, c.UpdatedAt = now, now
	lease := now.Add(IssuanceLease)
	c.ClaimedBy, c.LeaseUntil = uuid.NewString(), &lease
	return sn, nil
}

// insertReservation records c (from newReservation) for the approved
// request r, which has no live certificate, inside tx; it returns the audit
// entry "certificate.reserve" for the caller to append.
func (s *Store) insertReservation(tx *gorm.DB, a Actor, r *Request, c *Certificate) (auditEntry, error) {
	if err := reservationFor(r, c); err != nil {
		return auditEntry{}, err
	}
	if _, err := s.exec(on(tx), insertCertificateRow, c.values()...); err != nil {
		return auditEntry{}, dbErr(err)
	}
	return reserveEntry(a, c), nil
}

// reservationFor fills in what c (from newReservation) takes from the
// request r it is reserved for when not given (organisation, identities,
// key type), and refuses a c of another organisation.
func reservationFor(r *Request, c *Certificate) error {
	if c.Org == "" {
		c.Org = r.Org
	}
	if c.Org != r.Org {
		return fmt.Errorf("%w: certificate organisation %q differs from the request's %q", ErrInvalid, c.Org, r.Org)
	}
	if len(c.Identities) == 0 {
		c.Identities = r.Identities
	}
	if c.KeyType == "" {
		c.KeyType = r.KeyType
	}
	return nil
}

// reserveEntry is the audit entry "certificate.reserve" of c.
func reserveEntry(a Actor, c *Certificate) auditEntry {
	return auditEntry{Actor: a, Org: c.Org, ObjectType: "certificate", ObjectID: c.ID, Event: CertificateReserveEvent{
		Identities: c.Identities, NotAfter: c.NotAfter.Format(time.RFC3339),
		NotBefore: c.NotBefore.Format(time.RFC3339), RequestID: c.RequestID, Serial: c.Serial,
	}}
}

// insertCertificateRow stores a new certificate, every column given.
var insertCertificateRow = newStmt(`INSERT INTO certificates (` + columnList("", certificateCols) + `) VALUES ` +
	placeholders(len(certificateCols)))

// CompleteCertificate records the signed certificate: pending → issued
// with its DER, and its request approved → issued pointing at it, in one
// transaction. A certificate not pending is ErrConflict. Audit
// "certificate.issue" with serial, not_after and SHA-256 fingerprint.
func (s *Store) CompleteCertificate(ctx context.Context, a Actor, certID string, der []byte) (*Certificate, error) {
	if _, err := s.CompleteIssuance(ctx, a, certID, der); err != nil {
		return nil, err
	}
	return s.GetCertificate(ctx, certID)
}

// issuedRow is what recording a signed certificate reads back: its request
// as it now stands, and what the audit event names of the certificate.
type issuedRow struct {
	Request
	CertOrg      string
	CertSerial   string
	CertNotAfter time.Time
}

// CompleteIssuance is CompleteCertificate that returns the request as it
// now stands (issued, pointing at the certificate) instead of the
// certificate. Each row is changed by a conditional UPDATE … RETURNING, on
// PostgreSQL both by one statement, so nothing is read twice.
func (s *Store) CompleteIssuance(ctx context.Context, a Actor, certID string, der []byte) (*Request, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("completing certificate %s: %w: DER required", certID, ErrInvalid)
	}
	var row issuedRow
	err := s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		ok, err := s.markIssued(tx, certID, der, &row)
		if err != nil {
			return err
		}
		if !ok {
			return whyNotIssued(tx, certID)
		}
		fp := sha256.Sum256(der)
		return s.appendAudit(tx, a, row.CertOrg, "certificate", certID, CertificateIssueEvent{
			NotAfter: row.CertNotAfter.Format(time.RFC3339), RequestID: row.ID,
			Serial: row.CertSerial, SHA256: hex.EncodeToString(fp[:]),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("completing certificate %s: %w", certID, err)
	}
	return &row.Request, nil
}

// markIssued moves the pending certificate certID to issued with der, and
// its approved request to issued, inside tx, reading back into row; the
// lint certificate (PrecertDER) is dropped then, since only the recovery of
// a pending certificate reads it and der holds the same TBS; false
// when either was not in the state expected (tx must then be rolled back).
func (s *Store) markIssued(tx *gorm.DB, certID string, der []byte, row *issuedRow) (bool, error) {
	now := s.now()
	c := on(tx)
	if s.driver == DriverPostgres {
		err := s.queryRow(c, markIssuedBoth, row.scanDest(), CertIssued, der, now, certID, CertPending, StateIssued, now, StateApproved)
		if errIsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	var requestID string
	err := s.queryRow(c, markCertificateIssued, []any{strCol{&requestID}, strCol{&row.CertOrg}, strCol{&row.CertSerial}, timeCol{&row.CertNotAfter}},
		CertIssued, der, now, certID, CertPending)
	if err == nil {
		err = s.queryRow(c, markRequestIssued, row.Request.scanDest(), StateIssued, certID, now, requestID, StateApproved)
	}
	if errIsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// scanDest are the scan targets of what markIssued reads back: the
// request's columns, then the certificate's organisation, serial and
// expiry.
func (row *issuedRow) scanDest() []any {
	return append(row.Request.scanDest(), strCol{&row.CertOrg}, strCol{&row.CertSerial}, timeCol{&row.CertNotAfter})
}

// The statements of markIssued: on PostgreSQL one, whose first half moves
// the certificate and whose second its request (a data-modifying WITH);
// on SQLite one each.
var (
	// The request is found by its key, the subquery's one value: the
	// planner, left to join requests with c, may instead walk the requests
	// in the approved state (few live rows, but the index keeps every
	// recently moved one until vacuum).
	markIssuedBoth = newStmt(`WITH c AS (UPDATE certificates SET state = ?, der = ?, precert_der = NULL, updated_at = ? WHERE id = ? AND state = ? ` +
		`RETURNING id, request_id, org, serial, not_after) ` +
		`UPDATE requests SET state = ?, certificate_id = c.id, updated_at = ? FROM c WHERE requests.id = (SELECT request_id FROM c) AND requests.state = ? ` +
		`RETURNING ` + columnList("requests", requestCols) + `, c.org, c.serial, c.not_after`)
	markCertificateIssued = newStmt(`UPDATE certificates SET state = ?, der = ?, precert_der = NULL, updated_at = ? WHERE id = ? AND state = ? ` +
		`RETURNING request_id, org, serial, not_after`)
	markRequestIssued = newStmt(`UPDATE requests SET state = ?, certificate_id = ?, updated_at = ? WHERE id = ? AND state = ? ` +
		`RETURNING ` + columnList("", requestCols))
)

// whyNotIssued says why markIssued changed nothing: the certificate is
// missing or not pending, or its request is no longer approved. (On
// PostgreSQL the certificate's half of the statement may have applied;
// the caller's rollback undoes it.)
func whyNotIssued(tx *gorm.DB, certID string) error {
	var c Certificate
	if err := tx.Select("state", "request_id").Where("id = ?", certID).Take(&c).Error; err != nil {
		return dbErr(err)
	}
	var r Request
	if err := tx.Select("state", "certificate_id").Where("id = ?", c.RequestID).Take(&r).Error; err != nil {
		return dbErr(err)
	}
	if r.State != StateApproved && (r.CertificateID == nil || *r.CertificateID != certID) {
		return fmt.Errorf("%w: request %s is no longer approved", ErrConflict, c.RequestID)
	}
	return fmt.Errorf("%w: certificate is %s, not pending", ErrConflict, c.State)
}

// FailCertificate marks an in-flight issuance as failed (pending → failed):
// the HSM refused, or a restart found it unfinished. The request stays
// approved, so it can be issued again. Audit "certificate.fail".
func (s *Store) FailCertificate(ctx context.Context, a Actor, certID, why string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var c Certificate
		if err := tx.Where("id = ?", certID).Take(&c).Error; err != nil {
			return dbErr(err)
		}
		if c.State != CertPending {
			return fmt.Errorf("%w: certificate is %s, not pending", ErrConflict, c.State)
		}
		res := tx.Model(&Certificate{}).Where("id = ? AND state = ?", certID, CertPending).
			Updates(map[string]any{"state": CertFailed, "updated_at": s.now()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: certificate is no longer pending", ErrConflict)
		}
		return s.appendAudit(tx, a, c.Org, "certificate", certID, CertificateFailEvent{
			Reason: why, RequestID: c.RequestID, Serial: c.Serial,
		})
	})
	if err != nil {
		return fmt.Errorf("failing certificate %s: %w", certID, err)
	}
	return nil
}

// IssuanceLease is how long a claim on a pending certificate lasts: the
// reserving issuance (or recovery) must sign within it, and recovery claims a
// pending certificate only once its lease has expired.
const IssuanceLease = 30 * time.Second

// HoldClaim renews the lease on a pending certificate for the holder of
// claim, and must succeed right before the HSM signs it: a conditional UPDATE
// that matches only while the lease is unexpired and still the caller's.
// ErrConflict means the claim is lost (expired and taken by recovery, or the
// certificate is no longer pending): the caller must not sign.
func (s *Store) HoldClaim(ctx context.Context, certID, claim string) error {
	now := s.now()
	res := s.db.WithContext(ctx).Model(&Certificate{}).
		Where("id = ? AND state = ? AND claimed_by = ? AND lease_until > ?", certID, CertPending, claim, now).
		Updates(map[string]any{"lease_until": now.Add(IssuanceLease)})
	if res.Error != nil {
		return fmt.Errorf("holding the claim on certificate %s: %w", certID, res.Error)
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("holding the claim on certificate %s: %w: the lease expired or the certificate is no longer pending", certID, ErrConflict)
	}
	return nil
}

// ClaimExpiredCertificates claims, for recovery, the pending certificates
// whose lease has expired (their issuer died or gave up), oldest first, at
// most limit. Each claim is a conditional UPDATE that matches only the lease
// the row had when read, so of two recoverers exactly one claims a
// certificate, and never one that a live issuance still holds. The returned
// certificates carry their new ClaimedBy.
func (s *Store) ClaimExpiredCertificates(ctx context.Context, limit int) ([]Certificate, error) {
	now := s.now()
	var cs []Certificate
	err := s.db.WithContext(ctx).Where("state = ? AND (lease_until IS NULL OR lease_until <= ?)", CertPending, now).
		Order("created_at ASC, id ASC").Limit(limit).Find(&cs).Error
	if err != nil {
		return nil, fmt.Errorf("listing expired in-flight certificates: %w", err)
	}
	claimed := cs[:0]
	for _, c := range cs {
		claim, lease := uuid.NewString(), now.Add(IssuanceLease)
		res := s.db.WithContext(ctx).Model(&Certificate{}).
			Where("id = ? AND state = ? AND claimed_by = ? AND (lease_until IS NULL OR lease_until <= ?)", c.ID, CertPending, c.ClaimedBy, now).
			Updates(map[string]any{"claimed_by": claim, "lease_until": lease})
		if res.Error != nil {
			return nil, fmt.Errorf("claiming certificate %s: %w", c.ID, res.Error)
		}
		if res.RowsAffected == 1 {
			c.ClaimedBy, c.LeaseUntil = claim, &lease
			claimed = append(claimed, c)
		}
	}
	return claimed, nil
}

// PendingCertificates returns the issuances in flight (reserved, not yet
// completed or failed), oldest first, for recovery at start-up.
func (s *Store) PendingCertificates(ctx context.Context) ([]Certificate, error) {
	var cs []Certificate
	err := s.db.WithContext(ctx).Where("state = ?", CertPending).Order("created_at ASC, id ASC").Find(&cs).Error
	if err != nil {
		return nil, fmt.Errorf("listing pending certificates: %w", err)
	}
	return cs, nil
}

// GetCertificate returns the certificate with this ID, or ErrNotFound.
func (s *Store) GetCertificate(ctx context.Context, id string) (*Certificate, error) {
	var c Certificate
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", id, dbErr(err))
	}
	return &c, nil
}

// GetCertificateBySerial returns the certificate with this serial (any form
// serial.Parse accepts), or ErrNotFound.
func (s *Store) GetCertificateBySerial(ctx context.Context, serialText string) (*Certificate, error) {
	sn, err := parseSerial("reading certificate by serial", serialText)
	if err != nil {
		return nil, err
	}
	var c Certificate
	if err := s.db.WithContext(ctx).Where("serial = ?", sn).Take(&c).Error; err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", sn, dbErr(err))
	}
	return &c, nil
}

// ListCertificates returns one page of matching certificates, newest
// first, and the cursor of the next page ("" on the last page).
func (s *Store) ListCertificates(ctx context.Context, f CertFilter) ([]Certificate, string, error) {
	limit := pageLimit(f.Limit)
	now := s.now()
	q := s.db.WithContext(ctx).Model(&Certificate{})
	if f.Org != "" {
		q = q.Where("org = ?", f.Org)
	}
	switch f.State {
	case "":
		q = q.Where("state IN ?", []string{CertIssued, CertRevoked})
	case "all":
	case CertValid:
		q = q.Where("state = ? AND not_after > ?", CertIssued, now)
	case CertExpired:
		q = q.Where("state = ? AND not_after <= ?", CertIssued, now)
	case CertRevoked, CertPending, CertFailed:
		q = q.Where("state = ?", f.State)
	default:
		return nil, "", fmt.Errorf("listing certificates: %w: unknown state %q", ErrInvalid, f.State)
	}
	if f.ExpiringBefore != nil {
		q = q.Where("not_after < ?", normTime(*f.ExpiringBefore))
	}
	if f.Serial != "" {
		sn, err := parseSerial("listing certificates", f.Serial)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("serial = ?", sn)
	}
	q, err := afterTimeCursor(q, f.Cursor, "certificates")
	if err != nil {
		return nil, "", err
	}
	var cs []Certificate
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&cs).Error; err != nil {
		return nil, "", fmt.Errorf("listing certificates: %w", err)
	}
	next := ""
	if len(cs) > limit {
		cs = cs[:limit]
		last := cs[limit-1]
		next = encodeCursor("certificates", last.CreatedAt.UTC().Format(time.RFC3339Nano), last.ID)
	}
	return cs, next, nil
}
