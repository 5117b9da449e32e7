package models

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// ApproveAndReserve approves a submitted request and records the
// certificate about to be signed for it (record before sign), in one
// transaction: the approval of ApproveRequest (nobody approves their own
// request, ErrForbidden; a request not submitted is ErrConflict, also when
// another admin approved it a moment earlier) and the reservation of
// ReserveCertificate (c as there; the caller holds the lease in
// c.ClaimedBy). A request that was never approved has no certificate, so the
// two cannot be split by a crash: either both are recorded or neither.
// Audit "request.approve" and "certificate.reserve", with one head update.
// It returns the approved request.
//
// c's organisation, identities and key type must be given (the request's,
// as the approver read it): the approval and the reservation are one
// statement on PostgreSQL (approveAndReserve), so the reservation cannot
// take them from the request the approval reads back.
func (s *Store) ApproveAndReserve(ctx context.Context, a Actor, id, reason string, c *Certificate) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if c.Org == "" || len(c.Identities) == 0 || c.KeyType == "" {
		return nil, fmt.Errorf("approving request %s: %w: the certificate's organisation, identities and key type are required", id, ErrInvalid)
	}
	c.RequestID = id
	sn, err := s.newReservation(c)
	if err != nil {
		return nil, err
	}
	var r Request
	err = s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		// One conditional UPDATE … RETURNING decides: submitted, not the
		// approver's own, its key not blocked. The reservation goes with
		// it (on PostgreSQL in the same statement); when the approval
		// changes nothing, so does the reservation, the transaction is
		// rolled back, and only then is the request read, to say why.
		now := s.now()
		approve := []any{StateApproved, a.Subject, reason, now, now, id, StateSubmitted, a.Subject}
		var err error
		if s.driver == DriverPostgres {
			err = s.queryRow(on(tx), approveAndReserve, r.scanDest(), concat(approve, c.values())...)
		} else {
			err = s.batch(on(tx), batchStmt{st: approveSubmitted, scan: r.scanDest(), args: approve},
				batchStmt{st: insertCertificateRow, args: c.values()})
		}
		if errIsNotFound(err) {
			return errNotApproved
		}
		if err != nil {
			return dbErr(err)
		}
		// The reservation was of the request as the approver read it: it
		// must still be of the one approved.
		if err := reservationFor(&r, c); err != nil {
			return err
		}
		return s.appendAudits(tx,
			auditEntry{Actor: a, Org: r.Org, ObjectType: "request", ObjectID: id,
				Event: RequestApproveEvent{From: StateSubmitted, Reason: reason, To: StateApproved}},
			reserveEntry(a, c))
	})
	if errors.Is(err, errNotApproved) {
		err = whyNotApproved(s.db.WithContext(ctx), id, a)
	}
	if err != nil {
		return nil, fmt.Errorf("approving request %s and reserving certificate %s: %w", id, sn, err)
	}
	return &r, nil
}

// errNotApproved is ApproveAndReserve's transaction rolled back because
// its approval changed nothing; whyNotApproved then says why.
var errNotApproved = errors.New("the request was not approved")

// approveSubmitted approves a request that is submitted, not the
// approver's own, and whose key is not blocked, and reads it back.
var approveSubmitted = newStmt(approveSubmittedSQL + `RETURNING ` + columnList("", requestCols))

const approveSubmittedSQL = `UPDATE requests SET state = ?, decided_by = ?, decision_reason = ?, decided_at = ?, updated_at = ? ` +
	`WHERE id = ? AND state = ? AND requested_by <> ? ` +
	`AND NOT EXISTS (SELECT 1 FROM blocked_keys b WHERE b.key_sha256 = requests.key_sha256 AND requests.key_sha256 <> '') `

// approveAndReserve (PostgreSQL) is approveSubmitted and, only when it
// approved, the INSERT of the reservation (its values after the
// approval's), in one statement. Sent as two, the INSERT would run after an
// approval that changed nothing, and wait there, under the row lock the
// approval's recheck took on the request, for the recording of the
// winning approval's certificate, which waits for that lock: a deadlock.
var approveAndReserve = newStmt(`WITH r AS (` + approveSubmittedSQL + `RETURNING ` + columnList("", requestCols) + `), ` +
	`c AS (INSERT INTO certificates (` + columnList("", certificateCols) + `) SELECT ` +
	strings.Trim(placeholders(len(certificateCols)), "()") + ` FROM r) ` +
	`SELECT ` + columnList("r", requestCols) + ` FROM r`)

// whyNotApproved says why ApproveAndReserve's update changed nothing (read
// on db, after its transaction was rolled back):
// ErrNotFound, ErrForbidden (the approver's own request), ErrConflict (not
// submitted), or ErrKeyBlocked.
func whyNotApproved(db *gorm.DB, id string, a Actor) error {
	var r Request
	if err := db.Select("id", "state", "requested_by").Where("id = ?", id).Take(&r).Error; err != nil {
		return dbErr(err)
	}
	switch {
	case r.RequestedBy == a.Subject:
		return fmt.Errorf("%w: nobody approves their own request", ErrForbidden)
	case r.State != StateSubmitted:
		return fmt.Errorf("%w: request is %s, not %s", ErrConflict, r.State, StateSubmitted)
	}
	return ErrKeyBlocked
}

// ErrRenewalNotValid refuses to approve automatically the renewal of a
// certificate that is not issued and unexpired (ErrInvalid).
var ErrRenewalNotValid = fmt.Errorf("%w: the certificate renewed is no longer valid (revoked or expired)", ErrInvalid)

// SubmitAutoApproved submits a renewal that its organisation's policy
// approves, and records the certificate about to be signed for it, in one
// transaction: SubmitRequest's rules, AutoApproveRequest's (r.RenewalOf set
// and the organisation allowing automatic approval of renewals, ErrForbidden
// otherwise; DecidedBy AutoApprover), and ReserveCertificate's (c as there;
// c.RequestID is set to the new request). Audit "request.submit",
// "request.auto_approve" and "certificate.reserve", with one head update.
func (s *Store) SubmitAutoApproved(ctx context.Context, a Actor, r *Request, c *Certificate) error {
	const reason = "renewal approved automatically by organisation policy"
	if r.RenewalOf == nil {
		return fmt.Errorf("submitting request: %w: only renewals are approved automatically", ErrForbidden)
	}
	if err := s.newRequest(a, r); err != nil {
		return err
	}
	c.RequestID = r.ID
	sn, err := s.newReservation(c)
	if err != nil {
		return err
	}
	now := r.CreatedAt
	r.State, r.DecidedBy, r.DecisionReason, r.DecidedAt = StateApproved, AutoApprover, reason, &now
	err = s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		chk, err := s.checkRequest(tx, r, nil)
		if err != nil {
			return err
		}
		if !chk.AutoApproveRenewals {
			return fmt.Errorf("%w: organisation %s does not auto-approve renewals", ErrForbidden, r.Org)
		}
		// The caller checked the certificate before; a revocation (or
		// expiry) since then stops the automatic approval here.
		if !chk.renewsValid(s.now()) {
			return ErrRenewalNotValid
		}
		if err := reservationFor(r, c); err != nil {
			return err
		}
		// The request and its reservation, in one round trip on
		// PostgreSQL.
		if err := s.batch(on(tx), batchStmt{st: insertRequestRow, args: r.values()},
			batchStmt{st: insertCertificateRow, args: c.values()}); err != nil {
			return dbErr(err)
		}
		return s.appendAudits(tx, submitEntry(a, r),
			auditEntry{Actor: a, Org: r.Org, ObjectType: "request", ObjectID: r.ID,
				Event: RequestAutoApproveEvent{From: StateSubmitted, Reason: reason, To: StateApproved}},
			reserveEntry(a, c))
	})
	if err != nil {
		return fmt.Errorf("submitting auto-approved renewal and reserving certificate %s: %w", sn, err)
	}
	return nil
}
