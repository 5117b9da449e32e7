// Package issuance is the request workflow: submit, policy check, approve
// or reject, issue with record-before-sign, recover what was in flight, and
// revoke (record the revocation, then tell the publisher).
package issuance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
)

// Store is what the workflow needs of the store.
type Store interface {
	GetOrg(ctx context.Context, slug string) (*models.Organization, error)
	GetRequest(ctx context.Context, id string) (*models.Request, error)
	GetCertificate(ctx context.Context, id string) (*models.Certificate, error)
	SubmitRequest(ctx context.Context, a models.Actor, r *models.Request) error
	SubmitChecked(ctx context.Context, a models.Actor, r *models.Request, check func(org *models.Organization) error) error
	ApproveRequest(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error)
	RejectRequest(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error)
	SubmitAutoApproved(ctx context.Context, a models.Actor, r *models.Request, c *models.Certificate) error
	ApproveAndReserve(ctx context.Context, a models.Actor, id, reason string, c *models.Certificate) (*models.Request, error)
	ReserveCertificate(ctx context.Context, a models.Actor, c *models.Certificate) error
	CompleteIssuance(ctx context.Context, a models.Actor, certID string, der []byte) (*models.Request, error)
	FailCertificate(ctx context.Context, a models.Actor, certID, why string) error
	HoldClaim(ctx context.Context, certID, claim string) error
	ClaimExpiredCertificates(ctx context.Context, limit int) ([]models.Certificate, error)
	StrandedRequests(ctx context.Context, grace time.Duration, limit int) ([]models.Request, error)
	FailRequest(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error)
	RetryRequest(ctx context.Context, a models.Actor, id string) (*models.Request, error)
	RevokeCertificate(ctx context.Context, a models.Actor, id string, reason int) (*models.Certificate, error)
	GetRequestToDecide(ctx context.Context, id string) (*models.RequestToDecide, error)
	GetOrgForRenewal(ctx context.Context, slug, certID string) (*models.Organization, *models.Renewed, error)
	KeyBlocked(ctx context.Context, keySHA256 string) (bool, error)
}

// Issuer is what the workflow needs of the CA: lint-before-sign and signing.
type Issuer interface {
	Prepare(req signer.LeafRequest) (*signer.Prepared, error)
	Resume(precertDER []byte) (*signer.Prepared, error)
	Issue(p *signer.Prepared) ([]byte, error)
	Profile() signer.Profile
}

// Observer is told how long each issuance and HSM signature took
// (metrics); nil is fine.
type Observer interface {
	Issued(org string, total, hsm time.Duration)
	HSMError()
}

// Notifier is told of requests that people should hear about: new requests
// (admins) and decisions (the requester). It must not block: delivery,
// retries and failures are its own business. nil is fine.
type Notifier interface {
	RequestSubmitted(ctx context.Context, r *models.Request)
	RequestDecided(ctx context.Context, r *models.Request)
}

// Workflow runs the request lifecycle: submit, approve, issue
// with record-before-sign, and recovery of what was in flight.
type Workflow struct {
	Store    Store
	Issuer   Issuer
	Log      *slog.Logger
	Observer Observer
	Notifier Notifier
	// Publisher and RevocationObserver are told of every revocation.
	Publisher          Publisher
	RevocationObserver RevocationObserver
	// Now is the clock that decides whether a certificate is still valid
	// for renewal; nil is time.Now.
	Now func() time.Time

	// csrs remembers the CSRs that CSR policy accepted, so that a request's
	// CSR is parsed and its signature verified once, at submission, and not
	// again when it is approved.
	csrs csrCache
	// unrecorded holds what the HSM signed but the store did not record.
	unrecorded unrecorded
}

func (w *Workflow) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// ErrHSMPending means the request is approved and its certificate recorded,
// but the HSM did not sign; recovery finishes it when the HSM is back.
var ErrHSMPending = errors.New("the request is approved but the HSM did not sign; the certificate will be issued when the HSM is available again")

// errCannotIssue marks why an approved request cannot be issued as it
// stands (policy refuses it now, or its certificate cannot be prepared), as
// opposed to the store or the HSM failing for the moment.
var errCannotIssue = errors.New("the request cannot be issued")

// cannotIssue wraps err with errCannotIssue, keeping err's own kind (a
// *signer.PolicyError stays one for the web layer).
func cannotIssue(err error) error { return &issueError{err} }

type issueError struct{ err error }

func (e *issueError) Error() string   { return e.err.Error() }
func (e *issueError) Unwrap() []error { return []error{e.err, errCannotIssue} }

// Submission is a partner's request as received, before policy.
type Submission struct {
	Org          string
	CSRPEM       string
	Identities   []string // empty: take the CSR's requested names
	ValidityDays int
	Note         string
	RenewalOf    string // certificate id, for a renewal
}

// Checked is a submission that policy accepted.
type Checked struct {
	CSR          *signer.AcceptedCSR
	Identities   signer.Identities
	ValidityDays int
}

// Check applies CSR policy, identity syntax, the organisation's namespace and
// its validity cap, in that order; the first refusal is returned as a
// *signer.PolicyError naming its rule.
func (w *Workflow) Check(org *models.Organization, csrPEM string, requested []string, validityDays int) (*Checked, error) {
	acc, err := w.checkCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	if len(requested) == 0 {
		requested = signer.RequestedNames(acc.CSR)
	}
	ids, err := signer.ParseIdentities(requested)
	if err != nil {
		return nil, err
	}
	if err := namespace(org).Check(ids); err != nil {
		return nil, err
	}
	limit := w.Issuer.Profile().MaxValidityDays
	if org.MaxValidityDays > 0 && org.MaxValidityDays < limit {
		limit = org.MaxValidityDays
	}
	if validityDays == 0 {
		validityDays = limit
	}
	if validityDays < 1 || validityDays > limit {
		return nil, &signer.PolicyError{Rule: "validity", Reason: fmt.Sprintf("validity_days must be between 1 and %d for organisation %s", limit, org.Slug)}
	}
	return &Checked{CSR: acc, Identities: ids, ValidityDays: validityDays}, nil
}

func namespace(o *models.Organization) signer.Namespace {
	return signer.Namespace{URIPrefixes: o.URIPrefixes, DNSSuffixes: o.DNSSuffixes, EmailDomains: o.EmailDomains}
}

// Submit checks and records a request. A renewal is approved automatically
// and issued at once only when the organisation allows it, a partner of the
// organisation (or a token a partner made) submits it, and it is for a
// currently valid certificate of the organisation with exactly the same
// identities; any other renewal waits for an admin like a new request.
// Renewing a revoked or expired certificate is refused.
func (w *Workflow) Submit(ctx context.Context, a models.Actor, s Submission) (*models.Request, error) {
	if s.RenewalOf == "" {
		return w.submitNew(ctx, a, s)
	}
	start := time.Now()
	org, renewed, err := w.Store.GetOrgForRenewal(ctx, s.Org, s.RenewalOf)
	if err != nil {
		return nil, fmt.Errorf("organisation %q: %w", s.Org, err)
	}
	checked, err := w.Check(org, s.CSRPEM, s.Identities, s.ValidityDays)
	if err != nil {
		return nil, err
	}
	r := &models.Request{
		Org: org.Slug, Identities: checked.Identities.Strings(), CSRPEM: s.CSRPEM,
		KeyType: checked.CSR.KeyType, ValidityDays: checked.ValidityDays, Note: s.Note, RequestedBy: a.Subject,
		RequesterEmail: a.Email, KeySHA256: checked.CSR.KeySHA256(),
	}
	sameIdentities, err := w.checkRenewal(org, s.RenewalOf, renewed, r.Identities)
	if err != nil {
		return nil, err
	}
	r.RenewalOf = &s.RenewalOf
	auto := r.RenewalOf != nil && org.AutoApproveRenewals && sameIdentities &&
		a.Role == models.RolePartner && a.Org == org.Slug
	if auto {
		issued, err := w.submitAutoApproved(ctx, a, org, checked, r, start)
		if !errors.Is(err, models.ErrForbidden) {
			return issued, err
		}
		// The organisation stopped approving renewals automatically since
		// it was read: the renewal waits for an admin like any other.
	}
	if err := w.Store.SubmitRequest(ctx, a, r); err != nil {
		return nil, keyRefusal(a, err)
	}
	w.notifySubmitted(ctx, r)
	return r, nil
}

// submitNew checks and records a request that renews nothing. The CSR is
// checked first, without the store; the rest of policy inside the
// transaction that records the request, against the organisation as that
// transaction reads it (once, with the key's state).
func (w *Workflow) submitNew(ctx context.Context, a models.Actor, s Submission) (*models.Request, error) {
	acc, err := w.checkCSR(s.CSRPEM)
	if err != nil {
		return nil, err
	}
	r := &models.Request{Org: s.Org, CSRPEM: s.CSRPEM, KeyType: acc.KeyType, KeySHA256: acc.KeySHA256(),
		Note: s.Note, RequestedBy: a.Subject, RequesterEmail: a.Email}
	err = w.Store.SubmitChecked(ctx, a, r, func(org *models.Organization) error {
		checked, err := w.Check(org, s.CSRPEM, s.Identities, s.ValidityDays)
		if err != nil {
			return err
		}
		r.Identities, r.ValidityDays = checked.Identities.Strings(), checked.ValidityDays
		return nil
	})
	if err != nil {
		return nil, keyRefusal(a, err)
	}
	w.notifySubmitted(ctx, r)
	return r, nil
}

// submitAutoApproved prepares (lints) the renewal's certificate, records the
// request, its automatic approval and the certificate in one transaction,
// has the HSM sign it and records the result.
func (w *Workflow) submitAutoApproved(ctx context.Context, a models.Actor, org *models.Organization, checked *Checked, r *models.Request, start time.Time) (*models.Request, error) {
	p, c, err := w.prepare(org, checked)
	if err != nil {
		return nil, err
	}
	reserved := time.Now()
	if err := w.Store.SubmitAutoApproved(ctx, a, r, c); err != nil {
		if errors.Is(err, models.ErrRenewalNotValid) {
			return nil, &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("certificate %s was revoked or expired a moment ago and cannot be renewed; request a new certificate", *r.RenewalOf)}
		}
		return nil, keyRefusal(a, err)
	}
	issued, err := w.sign(ctx, a, c, p, start, reserved)
	if err != nil {
		return nil, err
	}
	w.notifyDecided(ctx, issued)
	return issued, nil
}

// keyRefusal turns the store's refusal of a blocked key, or of a key that
// another organisation holds, into the policy refusal naming its rule
// ("blocked-key", "key-owner"): the store checks both in the transaction
// that records the request, on every path that does.
func keyRefusal(a models.Actor, err error) error {
	var owned *models.KeyOwnedError
	switch {
	case errors.As(err, &owned):
		return keyOwnerRefusal(a, owned.Org)
	case errors.Is(err, models.ErrKeyBlocked):
		return &signer.PolicyError{Rule: signer.RuleBlockedKey, Reason: "this key is blocked because it is known to be compromised; generate a new key pair and a new CSR"}
	}
	return err
}

// keyOwnerRefusal is the "key-owner" refusal of a key that organisation
// owner holds; only an admin is told which organisation that is.
func keyOwnerRefusal(a models.Actor, owner string) error {
	reason := "this key is already used by another organisation; a key belongs to one organisation, so generate a new key pair and a new CSR"
	if a.Role == models.RoleAdmin {
		reason = fmt.Sprintf("this key is already used by organisation %s; a key belongs to one organisation, so generate a new key pair and a new CSR", owner)
	}
	return &signer.PolicyError{Rule: signer.RuleKeyOwner, Reason: reason}
}

// Reject refuses a submitted request with a reason and tells the requester.
func (w *Workflow) Reject(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error) {
	r, err := w.Store.RejectRequest(ctx, a, id, reason)
	if err != nil {
		return nil, err
	}
	w.notifyDecided(ctx, r)
	return r, nil
}

func (w *Workflow) notifySubmitted(ctx context.Context, r *models.Request) {
	if w.Notifier != nil {
		w.Notifier.RequestSubmitted(ctx, r)
	}
}

func (w *Workflow) notifyDecided(ctx context.Context, r *models.Request) {
	if w.Notifier != nil {
		w.Notifier.RequestDecided(ctx, r)
	}
}

// issueAndNotify issues an approved request and tells the requester the
// outcome once the certificate exists.
func (w *Workflow) issueAndNotify(ctx context.Context, a models.Actor, r *models.Request) (*models.Request, error) {
	issued, err := w.issue(ctx, a, r)
	if err != nil {
		return nil, err
	}
	w.notifyDecided(ctx, issued)
	return issued, nil
}

// checkRenewal accepts a renewal only of a currently valid certificate
// (issued, not revoked, not expired) of the same organisation, for
// identities that certificate holds; same reports whether the identities
// are exactly the certificate's (the condition for auto-approval). old is
// the certificate certID as read with the organisation, nil if none.
func (w *Workflow) checkRenewal(org *models.Organization, certID string, old *models.Renewed, identities []string) (same bool, err error) {
	if old == nil || old.Org != org.Slug {
		return false, &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("certificate %s is not one of %s's certificates", certID, org.Slug)}
	}
	switch {
	case old.State == models.CertRevoked:
		return false, &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("certificate %s is revoked and cannot be renewed; request a new certificate with a new key", certID)}
	case old.State != models.CertIssued:
		return false, &signer.PolicyError{Rule: "renewal", Reason: "only an issued certificate can be renewed"}
	case !w.now().Before(old.NotAfter):
		return false, &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("certificate %s expired on %s and cannot be renewed; request a new certificate", certID, old.NotAfter.UTC().Format(time.DateOnly))}
	}
	for _, id := range identities {
		if !slices.Contains(old.Identities, id) {
			return false, &signer.PolicyError{Rule: "renewal", Reason: fmt.Sprintf("identity %q is not held by certificate %s; request it as a new certificate", id, certID)}
		}
	}
	return len(identities) == len(old.Identities), nil
}

// Approve approves a submitted request and issues its certificate: the
// request is read once, with its organisation, policy checked against the organisation as it is
// now, the certificate prepared (linted), then the approval and the
// reservation of the certificate are recorded in one transaction before the
// HSM signs. A request that policy now refuses is not approved: the refusal
// names its rule and the request waits, submitted, for a rejection. Of
// concurrent approvals of one request exactly one gets past the store's
// conditional transition, so exactly one certificate is issued.
func (w *Workflow) Approve(ctx context.Context, a models.Actor, id, reason string) (*models.Request, error) {
	start := time.Now()
	d, err := w.Store.GetRequestToDecide(ctx, id)
	if err != nil {
		return nil, err
	}
	r, org := &d.Request, &d.Organization
	// The store decides again under the row lock; refusing here first
	// spares the preparation and keeps the answers' order: who, then state,
	// then policy.
	if r.RequestedBy == a.Subject {
		return nil, fmt.Errorf("approving request %s: %w: nobody approves their own request", id, models.ErrForbidden)
	}
	if r.State != models.StateSubmitted {
		return nil, fmt.Errorf("approving request %s: %w: request is %s, not %s", id, models.ErrConflict, r.State, models.StateSubmitted)
	}
	// A key may have been blocked since the request was submitted (the
	// store checks again as it approves).
	if d.KeyBlocked {
		return nil, errApprovalKeyBlocked
	}
	if r.KeySHA256 == "" {
		if err := w.checkRequestKey(ctx, r); err != nil {
			return nil, err
		}
	}
	// Policy may have changed since submission: check again.
	checked, err := w.Check(org, r.CSRPEM, r.Identities, r.ValidityDays)
	if err != nil {
		return nil, err
	}
	p, c, err := w.prepare(org, checked)
	if err != nil {
		return nil, err
	}
	reserved := time.Now()
	if _, err := w.Store.ApproveAndReserve(ctx, a, id, reason, c); err != nil {
		if errors.Is(err, models.ErrKeyBlocked) {
			return nil, errApprovalKeyBlocked
		}
		return nil, err
	}
	issued, err := w.sign(ctx, a, c, p, start, reserved)
	if err != nil {
		return nil, err
	}
	w.notifyDecided(ctx, issued)
	return issued, nil
}

// errApprovalKeyBlocked refuses to approve a request whose key was blocked
// after it was submitted.
var errApprovalKeyBlocked = &signer.PolicyError{Rule: signer.RuleBlockedKey, Reason: "the request's key has been blocked as compromised since it was submitted; reject the request"}

// checkRequestKey refuses to approve a request from before key fingerprints
// were recorded whose key is blocked.
func (w *Workflow) checkRequestKey(ctx context.Context, r *models.Request) error {
	acc, err := w.checkCSR(r.CSRPEM)
	if err != nil {
		return nil // the policy check before signing refuses it with its rule
	}
	blocked, err := w.Store.KeyBlocked(ctx, acc.KeySHA256())
	if err != nil {
		return err
	}
	if blocked {
		return errApprovalKeyBlocked
	}
	return nil
}

// prepare builds and lints the certificate for a checked request (the
// single-use token that lets the HSM sign it) and the record of it that the
// store reserves before signing.
func (w *Workflow) prepare(org *models.Organization, checked *Checked) (*signer.Prepared, *models.Certificate, error) {
	p, err := w.Issuer.Prepare(signer.LeafRequest{
		PublicKey: checked.CSR.CSR.PublicKey, Identities: checked.Identities,
		Organization: org.Name, Validity: time.Duration(checked.ValidityDays) * 24 * time.Hour,
	})
	if err != nil {
		return nil, nil, cannotIssue(fmt.Errorf("preparing the certificate: %w", err))
	}
	c := &models.Certificate{
		Serial: p.Serial.String(), Org: org.Slug, Identities: checked.Identities.Strings(),
		KeyType: checked.CSR.KeyType, NotBefore: p.NotBefore, NotAfter: p.NotAfter, PrecertDER: p.PrecertDER,
		IssuerKeyID: p.IssuerKeyID, CRLPartition: p.CRLPartition,
	}
	return p, c, nil
}

// issue runs record-before-sign for a request that is already approved (a
// stranded approval, an admin's retry): lint and prepare, record the serial
// and the to-be-signed certificate, sign in the HSM, record the certificate
// (Boulder ca/ca.go).
func (w *Workflow) issue(ctx context.Context, a models.Actor, r *models.Request) (*models.Request, error) {
	start := time.Now()
	org, err := w.Store.GetOrg(ctx, r.Org)
	if err != nil {
		return nil, err
	}
	// Policy may have changed since submission: check again.
	checked, err := w.Check(org, r.CSRPEM, r.Identities, r.ValidityDays)
	if err != nil {
		return nil, cannotIssue(err)
	}
	p, c, err := w.prepare(org, checked)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", r.ID, err)
	}
	c.RequestID = r.ID
	reserved := time.Now()
	if err := w.Store.ReserveCertificate(ctx, a, c); err != nil {
		return nil, fmt.Errorf("recording certificate %s before signing: %w", c.Serial, err)
	}
	return w.sign(ctx, a, c, p, start, reserved)
}

// freshClaim is how long after its reservation a claim is held without
// asking the store: recovery claims a certificate only once its lease
// (models.IssuanceLease from the reservation) has expired, so this leaves
// 25 s for the clocks of replicas to disagree.
const freshClaim = models.IssuanceLease / 6

// sign has the HSM sign c, only while the caller still holds c's claim, so
// a live issuance and recovery never both sign one serial. A claim this
// call reserved less than freshClaim ago (reserved, on this process's
// monotonic clock) is held for certain. Any other claim (recovery's, zero
// reserved, or a slow path) is renewed first (models.Store.HoldClaim), and
// c is not signed if it is lost.
//
// It returns the request as it stands once the certificate is recorded.
func (w *Workflow) sign(ctx context.Context, a models.Actor, c *models.Certificate, p *signer.Prepared, start, reserved time.Time) (*models.Request, error) {
	if reserved.IsZero() || time.Since(reserved) >= freshClaim {
		if err := w.Store.HoldClaim(ctx, c.ID, c.ClaimedBy); err != nil {
			return nil, fmt.Errorf("not signing certificate %s: %w", c.Serial, err)
		}
	}
	// A certificate signed before its recording failed is recorded as it
	// was signed, never signed again.
	der, signed := w.unrecorded.get(c.ID)
	var hsm time.Duration
	if !signed {
		hsmStart := time.Now()
		var err error
		der, err = w.Issuer.Issue(p)
		hsm = time.Since(hsmStart)
		if err != nil {
			if w.Observer != nil {
				w.Observer.HSMError()
			}
			w.Log.ErrorContext(ctx, "HSM signing failed; the certificate stays recorded as pending", "serial", c.Serial, "request", c.RequestID, "err", err)
			return nil, fmt.Errorf("%w (%w)", ErrHSMPending, err)
		}
	}
	r, err := w.Store.CompleteIssuance(ctx, a, c.ID, der)
	if err != nil {
		if !signed {
			w.unrecorded.put(c.ID, der)
			go w.recordLater(a, c, der)
		}
		return nil, fmt.Errorf("recording signed certificate %s (it is kept and recorded once the database answers): %w", c.Serial, err)
	}
	w.unrecorded.drop(c.ID)
	if w.Observer != nil {
		w.Observer.Issued(c.Org, time.Since(start), hsm)
	}
	sum := sha256.Sum256(der)
	w.Log.InfoContext(ctx, "certificate issued", "serial", c.Serial, "org", c.Org, "request", c.RequestID,
		"sha256", hex.EncodeToString(sum[:]), "hsm_ms", hsm.Milliseconds())
	return r, nil
}

// recoveryBatch bounds the work of one recovery pass.
const recoveryBatch = 100

// StrandedGrace is how long an approved request may stay without a recorded
// certificate before recovery issues it: longer than a live approval takes to
// reserve, so recovery does not race it (and if it did, the store's one-live-
// certificate rule lets only one reservation through).
const StrandedGrace = models.IssuanceLease

// Recover finishes what was in flight. It signs exactly the recorded
// certificate of every pending issuance whose lease has expired (the process
// died, or the HSM failed), claiming each first so that it never signs what
// a live issuance still holds, or marks it failed when it can no longer be
// signed. Then it issues approved requests left without a certificate
// (the process died or the database went away between approval and
// reservation), checking policy again; one that can no longer be issued
// keeps a visible failure reason for an admin to retry. It runs at start and
// periodically.
func (w *Workflow) Recover(ctx context.Context) (finished, failed int, err error) {
	pending, err := w.Store.ClaimExpiredCertificates(ctx, recoveryBatch)
	if err != nil {
		return 0, 0, fmt.Errorf("claiming in-flight issuances: %w", err)
	}
	sys := recoveryActor
	for i := range pending {
		c := &pending[i]
		p, err := w.Issuer.Resume(c.PrecertDER)
		if err != nil {
			w.Log.ErrorContext(ctx, "in-flight issuance cannot be finished; marking it failed", "serial", c.Serial, "err", err)
			if ferr := w.Store.FailCertificate(ctx, sys, c.ID, err.Error()); ferr != nil {
				return finished, failed, ferr
			}
			failed++
			continue
		}
		if recorded, err := serial.Parse(c.Serial); err != nil || recorded != p.Serial {
			return finished, failed, fmt.Errorf("recorded certificate %s does not carry its serial", c.Serial)
		}
		if _, err := w.sign(ctx, sys, c, p, time.Now(), time.Time{}); err != nil {
			return finished, failed, err
		}
		finished++
	}
	stranded, err := w.Store.StrandedRequests(ctx, StrandedGrace, recoveryBatch)
	if err != nil {
		return finished, failed, err
	}
	for i := range stranded {
		r := &stranded[i]
		_, err := w.issueAndNotify(ctx, sys, r)
		switch {
		case err == nil:
			finished++
		case errors.Is(err, models.ErrConflict):
			// A live approval or another replica reserved it meanwhile.
		case errors.Is(err, ErrHSMPending):
			return finished, failed, err
		case errors.Is(err, errCannotIssue):
			w.Log.WarnContext(ctx, "approved request can no longer be issued; it waits for an admin's retry", "request", r.ID, "err", err)
			if _, ferr := w.Store.FailRequest(ctx, sys, r.ID, err.Error()); ferr != nil && !errors.Is(ferr, models.ErrConflict) {
				return finished, failed, ferr
			}
			failed++
		default:
			return finished, failed, err
		}
	}
	return finished, failed, nil
}

// recoveryActor is who recovery acts as in the audit log.
var recoveryActor = models.Actor{Subject: "system:recovery", Role: models.RoleSystem, Source: "recovery"}

// Retry issues an approved request whose issuance failed, at an admin's
// request: the store clears the failure (refusing the requester, and a
// request that did not fail), then it is issued as after an approval.
func (w *Workflow) Retry(ctx context.Context, a models.Actor, id string) (*models.Request, error) {
	r, err := w.Store.RetryRequest(ctx, a, id)
	if err != nil {
		return nil, err
	}
	return w.issueAndNotify(ctx, a, r)
}

// Preview is the policy verdict on a CSR and identities, before anything is
// submitted: what the CSR holds, the identities the CA would certify, and
// the first rule that refuses it.
type Preview struct {
	KeyType            string          `json:"key_type,omitempty"`
	Subject            string          `json:"subject,omitempty"`
	SANs               []string        `json:"sans"`
	SignatureAlgorithm string          `json:"signature_algorithm,omitempty"`
	Identities         []string        `json:"identities"`
	Problems           []PolicyProblem `json:"problems"`
}

// PolicyProblem is one refusal: the rule and why.
type PolicyProblem struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Preview runs Check without recording anything. A policy refusal is a
// problem in the answer, not an error.
func (w *Workflow) Preview(org *models.Organization, csrPEM string, requested []string, validityDays int) (*Preview, error) {
	p := &Preview{SANs: []string{}, Identities: []string{}, Problems: []PolicyProblem{}}
	if acc, err := w.checkCSR(csrPEM); err == nil {
		p.KeyType = acc.KeyType
		p.Subject = acc.CSR.Subject.String()
		p.SANs = append(p.SANs, signer.RequestedNames(acc.CSR)...)
		p.SignatureAlgorithm = acc.CSR.SignatureAlgorithm.String()
	}
	checked, err := w.Check(org, csrPEM, requested, validityDays)
	var pe *signer.PolicyError
	switch {
	case errors.As(err, &pe):
		p.Problems = append(p.Problems, PolicyProblem{Rule: pe.Rule, Reason: pe.Reason})
	case err != nil:
		return nil, err
	default:
		p.Identities = checked.Identities.Strings()
	}
	return p, nil
}

// Verdict is policy's current answer on a submitted request: the rules of
// the organisation as they are now, which an approval will apply again.
type Verdict struct {
	OK       bool            `json:"ok"`
	Problems []PolicyProblem `json:"problems"`
}

// Verdict checks a recorded request against the current policy without
// changing anything, for the admin deciding it.
func (w *Workflow) Verdict(ctx context.Context, r *models.Request) (*Verdict, error) {
	org, err := w.Store.GetOrg(ctx, r.Org)
	if err != nil {
		return nil, fmt.Errorf("organisation %q: %w", r.Org, err)
	}
	p, err := w.Preview(org, r.CSRPEM, r.Identities, r.ValidityDays)
	if err != nil {
		return nil, err
	}
	return &Verdict{OK: len(p.Problems) == 0, Problems: p.Problems}, nil
}
