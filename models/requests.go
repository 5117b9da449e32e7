package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// AutoApprover is the DecidedBy of requests approved by an organisation's
// renewal policy rather than by a person.
const AutoApprover = "system:auto-approve"

// RequestFilter selects requests for ListRequests. Empty fields match
// everything.
type RequestFilter struct {
	Org         string
	State       string
	RequestedBy string
	Cursor      string // from the previous page; "" for the first
	Limit       int    // default 50, max 500
}

// SubmitRequest stores a new request in state submitted. The store assigns
// ID (UUID v4), State and times; RequestedBy defaults to the actor. The
// organisation must exist, there must be at least one identity and a CSR,
// ValidityDays 0 means the organisation's maximum and more than it is
// refused, and RenewalOf must name a certificate of the same organisation.
// Audit "request.submit".
func (s *Store) SubmitRequest(ctx context.Context, a Actor, r *Request) error {
	return s.SubmitChecked(ctx, a, r, nil)
}

// SubmitChecked is SubmitRequest that first calls check, inside the
// transaction, with the organisation as it is then: the caller's policy,
// which may fill in r's fields from it (identities, validity, key); an error
// from check is returned as it is and nothing is recorded. The organisation
// is read once, by the statement that checks the key.
func (s *Store) SubmitChecked(ctx context.Context, a Actor, r *Request, check func(org *Organization) error) error {
	if check == nil {
		if err := s.newRequest(a, r); err != nil {
			return err
		}
	} else {
		s.stampRequest(a, r)
	}
	err := s.txAppendAtCommit(ctx, func(tx *gorm.DB) error {
		ev, _, err := s.insertRequest(tx, a, r, check)
		if err != nil {
			return err
		}
		return s.appendAudits(tx, ev)
	})
	if err != nil {
		return fmt.Errorf("submitting request: %w", err)
	}
	return nil
}

// newRequest checks a request about to be submitted and fills in what the
// store assigns: ID, State submitted, times, and RequestedBy (the actor by
// default).
func (s *Store) newRequest(a Actor, r *Request) error {
	s.stampRequest(a, r)
	return validNewRequest(r)
}

// validNewRequest checks what the caller gives of a request about to be
// submitted.
func validNewRequest(r *Request) error {
	switch {
	case strings.TrimSpace(r.RequestedBy) == "":
		return fmt.Errorf("submitting request: %w: requester required", ErrInvalid)
	case strings.TrimSpace(r.CSRPEM) == "":
		return fmt.Errorf("submitting request: %w: csr required", ErrInvalid)
	case len(r.Identities) == 0:
		return fmt.Errorf("submitting request: %w: at least one identity required", ErrInvalid)
	case r.ValidityDays < 0:
		return fmt.Errorf("submitting request: %w: validity_days must be positive", ErrInvalid)
	}
	return nil
}

// stampRequest fills in what the store assigns to a new request: ID, State
// submitted, times, and RequestedBy (the actor by default).
func (s *Store) stampRequest(a Actor, r *Request) {
	if r.RequestedBy == "" {
		r.RequestedBy = a.Subject
	}
	now := s.now()
	r.ID = uuid.NewString()
	r.State = StateSubmitted
	r.DecidedBy, r.DecisionReason, r.DecidedAt, r.CertificateID = "", "", nil, nil
	r.CreatedAt, r.UpdatedAt = now, now
}

// insertRequest applies the organisation's rules to r (from newRequest) and
// stores it inside tx, in r.State; it returns the audit entry
// "request.submit" for the caller to append, and what it was checked
// against (the organisation, the renewed certificate). The rules that need
// the store are read in one statement (submitChecks) after the key is
// locked.
func (s *Store) insertRequest(tx *gorm.DB, a Actor, r *Request, check func(org *Organization) error) (auditEntry, *submitCheck, error) {
	chk, err := s.checkRequest(tx, r, check)
	if err != nil {
		return auditEntry{}, nil, err
	}
	if _, err := s.exec(on(tx), insertRequestRow, r.values()...); err != nil {
		return auditEntry{}, nil, dbErr(err)
	}
	return submitEntry(a, r), chk, nil
}

// checkRequest applies the organisation's rules to r inside tx, as
// insertRequest does before it stores r.
func (s *Store) checkRequest(tx *gorm.DB, r *Request, check func(org *Organization) error) (*submitCheck, error) {
	chk, err := s.submitChecks(tx, r)
	if err != nil {
		return nil, err
	}
	org := &chk.Organization
	if check != nil {
		if err := check(org); err != nil {
			return nil, err
		}
		if err := validNewRequest(r); err != nil {
			return nil, err
		}
	}
	if r.ValidityDays == 0 {
		r.ValidityDays = org.MaxValidityDays
	}
	if r.ValidityDays > org.MaxValidityDays {
		return nil, fmt.Errorf("%w: validity_days %d exceeds the organisation's maximum of %d", ErrInvalid, r.ValidityDays, org.MaxValidityDays)
	}
	if r.RenewalOf != nil && (chk.RenewalOrg == nil || *chk.RenewalOrg != r.Org) {
		return nil, fmt.Errorf("%w: renewal_of names no certificate of organisation %q", ErrInvalid, r.Org)
	}
	// One key, one organisation, and no blocked key: checked here, in the
	// transaction that records the request, so two organisations cannot
	// both win and no path to a signature goes around it.
	if chk.KeyBlocked {
		return nil, ErrKeyBlocked
	}
	if chk.KeyOwner != nil {
		return nil, &KeyOwnedError{Org: *chk.KeyOwner}
	}
	return chk, nil
}

// submitEntry is the audit entry "request.submit" of r.
func submitEntry(a Actor, r *Request) auditEntry {
	return auditEntry{Actor: a, Org: r.Org, ObjectType: "request", ObjectID: r.ID, Event: RequestSubmitEvent{
		Identities: r.Identities, KeyType: r.KeyType, RenewalOf: r.RenewalOf,
		RequestedBy: r.RequestedBy, ValidityDays: r.ValidityDays,
	}}
}

// insertRequestRow stores a new request, every column given.
var insertRequestRow = newStmt(`INSERT INTO requests (` + columnList("", requestCols) + `) VALUES ` + placeholders(len(requestCols)))

// submitCheck is what a submission is checked against, read in one
// statement: the organisation, whether the request's key is blocked, the
// first other organisation that submitted the key, and the organisation,
// state and expiry of the certificate it renews (nil for none).
type submitCheck struct {
	Organization
	KeyBlocked      bool
	KeyOwner        *string
	RenewalOrg      *string
	RenewalState    *string
	RenewalNotAfter *time.Time
}

// renewsValid reports whether the certificate the submission renews is
// issued and unexpired at now.
func (c *submitCheck) renewsValid(now time.Time) bool {
	return c.RenewalState != nil && *c.RenewalState == CertIssued && c.RenewalNotAfter != nil && now.Before(*c.RenewalNotAfter)
}

// submitChecks reads r's submitCheck inside tx. On PostgreSQL it first
// takes a transaction advisory lock on the key, which serialises the
// submissions of one key (two organisations submitting it at once: the
// second waits, then its statement sees the first's committed request);
// SQLite transactions are already serial. An empty fingerprint (requests
// from before fingerprints) is neither blocked nor owned.
func (s *Store) submitChecks(tx *gorm.DB, r *Request) (*submitCheck, error) {
	// No renewal is sent as the empty id (no certificate has it), not as
	// NULL: a NULL lets the planner fold the renewal subqueries away in a
	// plan made for those values, which then looks cheaper than the
	// prepared statement's generic plan, and PostgreSQL keeps re-planning
	// the statement at every execution on that connection.
	renewalOf := ""
	if r.RenewalOf != nil {
		renewalOf = *r.RenewalOf
	}
	var chk submitCheck
	check := batchStmt{st: submitChecksOf, scan: chk.scanDest(),
		args: []any{r.KeySHA256, r.KeySHA256, renewalOf, renewalOf, renewalOf, r.Org}}
	stmts := []batchStmt{check}
	if r.KeySHA256 != "" && s.driver == DriverPostgres {
		// The lock and the check go together (one round trip); the check
		// runs once the lock is held, with a snapshot taken then.
		stmts = []batchStmt{{st: lockKey, args: []any{keyLockClass, r.KeySHA256}}, check}
	}
	err := s.batch(on(tx), stmts...)
	if errIsNotFound(err) {
		return nil, fmt.Errorf("%w: unknown organisation %q", ErrInvalid, r.Org)
	}
	if err != nil {
		return nil, err
	}
	return &chk, nil
}

// scanDest are the scan targets of submitChecksOf.
func (c *submitCheck) scanDest() []any {
	return append(c.Organization.scanDest(), boolCol{&c.KeyBlocked}, optStr(&c.KeyOwner), optStr(&c.RenewalOrg),
		optStr(&c.RenewalState), optTime(&c.RenewalNotAfter))
}

// lockKey takes submitChecks' transaction advisory lock on a key
// (PostgreSQL).
var lockKey = newStmt(`SELECT pg_advisory_xact_lock(?, hashtext(?))`)

// submitChecksOf reads a submission's submitCheck. The renewed
// certificate's state is read under a share lock on PostgreSQL: a
// revocation under way is waited for and seen, and one that comes later
// waits for this transaction.
var submitChecksOf = func() stmt {
	q := func(lockState string) string {
		return `SELECT ` + columnList("o", organizationCols) + `, ` +
			`EXISTS (SELECT 1 FROM blocked_keys WHERE key_sha256 = ? AND key_sha256 <> '') AS key_blocked, ` +
			`(SELECT org FROM requests WHERE key_sha256 = ? AND key_sha256 <> '' AND org <> o.slug ORDER BY created_at ASC LIMIT 1) AS key_owner, ` +
			`(SELECT org FROM certificates WHERE id = ?) AS renewal_org, ` +
			`(SELECT state FROM certificates WHERE id = ?` + lockState + `) AS renewal_state, ` +
			`(SELECT not_after FROM certificates WHERE id = ?) AS renewal_not_after ` +
			`FROM organizations o WHERE o.slug = ?`
	}
	return stmt{sqlite: q(""), postgres: dollarPlaceholders(q(" FOR SHARE"))}
}()

// GetRequest returns the request with this ID, or ErrNotFound.
func (s *Store) GetRequest(ctx context.Context, id string) (*Request, error) {
	var r Request
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, fmt.Errorf("reading request %s: %w", id, dbErr(err))
	}
	return &r, nil
}

// RequestToDecide is a request read for a decision, with its organisation
// as it is now and whether its key is blocked now.
type RequestToDecide struct {
	Request
	Organization Organization
	// KeyBlocked is false for a request from before key fingerprints were
	// recorded (KeySHA256 empty): the caller checks its CSR's key.
	KeyBlocked bool
}

// GetRequestToDecide returns the request with this ID, its organisation and
// whether its key is blocked, in one statement; ErrNotFound if there is no
// such request.
func (s *Store) GetRequestToDecide(ctx context.Context, id string) (*RequestToDecide, error) {
	var v RequestToDecide
	err := s.queryRow(s.onReaders(ctx), requestToDecide, concat(v.Request.scanDest(), v.Organization.scanDest(), []any{boolCol{&v.KeyBlocked}}), id)
	if err != nil {
		return nil, fmt.Errorf("reading request %s: %w", id, dbErr(err))
	}
	return &v, nil
}

// requestToDecide reads a RequestToDecide.
var requestToDecide = newStmt(`SELECT ` + columnList("r", requestCols) + `, ` + columnList("o", organizationCols) + `, ` +
	`EXISTS (SELECT 1 FROM blocked_keys b WHERE b.key_sha256 = r.key_sha256 AND r.key_sha256 <> '') AS key_blocked ` +
	`FROM requests r JOIN organizations o ON o.slug = r.org WHERE r.id = ?`)

// ListRequests returns one page of matching requests, newest first, and the
// cursor of the next page ("" on the last page).
func (s *Store) ListRequests(ctx context.Context, f RequestFilter) ([]Request, string, error) {
	limit := pageLimit(f.Limit)
	q := s.db.WithContext(ctx).Model(&Request{})
	if f.Org != "" {
		q = q.Where("org = ?", f.Org)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.RequestedBy != "" {
		q = q.Where("requested_by = ?", f.RequestedBy)
	}
	q, err := afterTimeCursor(q, f.Cursor, "requests")
	if err != nil {
		return nil, "", err
	}
	var rs []Request
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&rs).Error; err != nil {
		return nil, "", fmt.Errorf("listing requests: %w", err)
	}
	next := ""
	if len(rs) > limit {
		rs = rs[:limit]
		last := rs[limit-1]
		next = encodeCursor("requests", last.CreatedAt.UTC().Format(time.RFC3339Nano), last.ID)
	}
	return rs, next, nil
}

// afterTimeCursor restricts q to rows after a (created_at, id) cursor in
// newest-first order.
func afterTimeCursor(q *gorm.DB, cursor, kind string) (*gorm.DB, error) {
	if cursor == "" {
		return q, nil
	}
	parts, err := decodeCursor(cursor, kind, 2)
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	t = normTime(t)
	return q.Where("(created_at < ? OR (created_at = ? AND id < ?))", t, t, parts[1]), nil
}

// transitionEvent is the audit event of a request's state change; it names
// the states it moves between.
type transitionEvent interface {
	Event
	states() (from, to string)
}

// transition moves request id between the states that ev names, in one
// transaction: check may refuse (seeing the current row), the conditional
// UPDATE … WHERE state = from makes concurrent transitions of the same
// request exclusive (exactly one succeeds, the others get ErrConflict), and
// ev is appended to the audit chain last.
func (s *Store) transition(ctx context.Context, a Actor, id, verb string, ev transitionEvent,
	check func(tx *gorm.DB, r *Request) error, set map[string]any) (*Request, error) {
	from, to := ev.states()
	var out Request
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var r Request
		if err := tx.Where("id = ?", id).Take(&r).Error; err != nil {
			return dbErr(err)
		}
		if check != nil {
			if err := check(tx, &r); err != nil {
				return err
			}
		}
		if r.State != from {
			return fmt.Errorf("%w: request is %s, not %s", ErrConflict, r.State, from)
		}
		now := s.now()
		upd := map[string]any{"state": to, "updated_at": now}
		for k, v := range set {
			upd[k] = v
		}
		if _, ok := upd["decided_at"]; ok {
			upd["decided_at"] = now
		}
		res := tx.Model(&Request{}).Where("id = ? AND state = ?", id, from).Updates(upd)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: request is no longer %s", ErrConflict, from)
		}
		if err := tx.Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		return s.appendAudit(tx, a, out.Org, "request", id, ev)
	})
	if err != nil {
		return nil, fmt.Errorf("%s request %s: %w", verb, id, err)
	}
	return &out, nil
}

// ApproveRequest moves a submitted request to approved. Nobody approves
// their own request (ErrForbidden); a request not in submitted is
// ErrConflict, including when another admin approved it a moment earlier.
// Audit "request.approve".
func (s *Store) ApproveRequest(ctx context.Context, a Actor, id, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	return s.transition(ctx, a, id, "approving", RequestApproveEvent{From: StateSubmitted, Reason: reason, To: StateApproved},
		func(_ *gorm.DB, r *Request) error {
			if r.RequestedBy == a.Subject {
				return fmt.Errorf("%w: nobody approves their own request", ErrForbidden)
			}
			return nil
		},
		map[string]any{"decided_by": a.Subject, "decision_reason": reason, "decided_at": nil})
}

// AutoApproveRequest approves a renewal by its organisation's policy:
// the request must renew a certificate (RenewalOf) and the organisation must
// allow automatic approval of renewals (ErrForbidden otherwise). DecidedBy is
// AutoApprover. Audit "request.auto_approve".
func (s *Store) AutoApproveRequest(ctx context.Context, a Actor, id string) (*Request, error) {
	const reason = "renewal approved automatically by organisation policy"
	return s.transition(ctx, a, id, "auto-approving", RequestAutoApproveEvent{From: StateSubmitted, Reason: reason, To: StateApproved},
		func(tx *gorm.DB, r *Request) error {
			if r.RenewalOf == nil {
				return fmt.Errorf("%w: only renewals are approved automatically", ErrForbidden)
			}
			var org Organization
			if err := tx.Where("slug = ?", r.Org).Take(&org).Error; err != nil {
				return dbErr(err)
			}
			if !org.AutoApproveRenewals {
				return fmt.Errorf("%w: organisation %s does not auto-approve renewals", ErrForbidden, r.Org)
			}
			return nil
		},
		map[string]any{"decided_by": AutoApprover, "decision_reason": reason, "decided_at": nil})
}

// RejectRequest moves a submitted request to rejected. A reason is required
// (ErrInvalid). Audit "request.reject".
func (s *Store) RejectRequest(ctx context.Context, a Actor, id, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, fmt.Errorf("rejecting request %s: %w: a reason is required", id, ErrInvalid)
	}
	return s.transition(ctx, a, id, "rejecting", RequestRejectEvent{From: StateSubmitted, Reason: reason, To: StateRejected}, nil,
		map[string]any{"decided_by": a.Subject, "decision_reason": reason, "decided_at": nil})
}

// CancelRequest moves a submitted request to cancelled (the requester
// withdraws it). Audit "request.cancel".
func (s *Store) CancelRequest(ctx context.Context, a Actor, id string) (*Request, error) {
	return s.transition(ctx, a, id, "cancelling", RequestCancelEvent{From: StateSubmitted, To: StateCancelled}, nil,
		map[string]any{"decided_by": a.Subject, "decided_at": nil})
}

// StrandedRequests returns approved requests, decided at least grace ago,
// that have no pending, issued or revoked certificate and no recorded
// failure: their issuance was never recorded (the process died, or the
// database went away, between approval and reservation) or its certificate
// failed. Recovery issues them. Oldest first, at most limit.
func (s *Store) StrandedRequests(ctx context.Context, grace time.Duration, limit int) ([]Request, error) {
	var rs []Request
	err := s.db.WithContext(ctx).
		Where("state = ? AND failure_reason = '' AND updated_at <= ?", StateApproved, s.now().Add(-grace)).
		Where("NOT EXISTS (SELECT 1 FROM certificates c WHERE c.request_id = requests.id AND c.state IN ?)",
			[]string{CertPending, CertIssued, CertRevoked}).
		Order("updated_at ASC, id ASC").Limit(limit).Find(&rs).Error
	if err != nil {
		return nil, fmt.Errorf("listing stranded approved requests: %w", err)
	}
	return rs, nil
}

// FailRequest records why an approved request's certificate cannot be
// issued (policy now refuses it, or it cannot be prepared). The request
// keeps its decision, shows the reason, and waits for an admin's retry
// (RetryRequest). Audit "request.fail".
func (s *Store) FailRequest(ctx context.Context, a Actor, id, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, fmt.Errorf("failing request %s: %w: a reason is required", id, ErrInvalid)
	}
	return s.transition(ctx, a, id, "failing", RequestFailEvent{From: StateApproved, Reason: reason, To: StateApproved}, noLiveCertificate,
		map[string]any{"failure_reason": reason})
}

// RetryRequest lets an admin retry the issuance of an approved request whose
// issuance failed (FailureReason set, or its certificate failed): it clears
// the failure, and the caller issues. The same four-eyes rule as approval
// applies: nobody retries their own request (ErrForbidden). A request that
// did not fail, or has a live certificate, is ErrConflict. Audit
// "request.retry".
func (s *Store) RetryRequest(ctx context.Context, a Actor, id string) (*Request, error) {
	ev := &RequestRetryEvent{From: StateApproved, To: StateApproved}
	return s.transition(ctx, a, id, "retrying", ev,
		func(tx *gorm.DB, r *Request) error {
			if r.RequestedBy == a.Subject {
				return fmt.Errorf("%w: nobody retries their own request", ErrForbidden)
			}
			if err := noLiveCertificate(tx, r); err != nil {
				return err
			}
			if r.State == StateApproved && r.FailureReason == "" {
				var failed int64
				if err := tx.Model(&Certificate{}).Where("request_id = ? AND state = ?", r.ID, CertFailed).Count(&failed).Error; err != nil {
					return err
				}
				if failed == 0 {
					return fmt.Errorf("%w: the request's issuance has not failed", ErrConflict)
				}
			}
			ev.PreviousFailure = r.FailureReason
			return nil
		},
		map[string]any{"failure_reason": ""})
}

// noLiveCertificate refuses (ErrConflict) a request that has a pending,
// issued or revoked certificate.
func noLiveCertificate(tx *gorm.DB, r *Request) error {
	var live int64
	err := tx.Model(&Certificate{}).Where("request_id = ? AND state IN ?", r.ID, []string{CertPending, CertIssued, CertRevoked}).
		Count(&live).Error
	if err != nil {
		return err
	}
	if live > 0 {
		return fmt.Errorf("%w: request %s already has a certificate", ErrConflict, r.ID)
	}
	return nil
}

// Issuance states of an approved request, as RequestIssuance reports them.
const (
	IssuancePending = "pending" // a certificate is recorded and waits to be signed (e.g. for the HSM)
	IssuanceFailed  = "failed"  // the issuance failed; an admin may retry it
)

// RequestIssuance says where the issuance of an approved request stands:
// IssuancePending while a certificate is recorded but not signed,
// IssuanceFailed when FailureReason is set or its latest certificate failed,
// and "" otherwise (not approved, issued, or not yet recorded).
func (s *Store) RequestIssuance(ctx context.Context, r *Request) (string, error) {
	if r.State != StateApproved {
		return "", nil
	}
	if r.FailureReason != "" {
		return IssuanceFailed, nil
	}
	var c Certificate
	err := s.db.WithContext(ctx).Select("state").Where("request_id = ?", r.ID).Order("created_at DESC, id DESC").Take(&c).Error
	switch {
	case errIsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reading the issuance of request %s: %w", r.ID, err)
	case c.State == CertPending:
		return IssuancePending, nil
	case c.State == CertFailed:
		return IssuanceFailed, nil
	}
	return "", nil
}
