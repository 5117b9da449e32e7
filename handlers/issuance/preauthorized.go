package issuance

import (
	"context"
	"errors"
	"fmt"

	"github.com/certdesk/certdesk/models"
)

// PreauthorizingStore is what IssuePreauthorized needs of the store besides
// Store: approving a request by an authorisation a person gave beforehand.
type PreauthorizingStore interface {
	PreauthorizeRequest(ctx context.Context, a models.Actor, id, decidedBy, reason string) (*models.Request, error)
}

// Preauthorized is a request from an automation channel (ACME, EST) inside
// an authorisation that a second person approved: an ACME binding asked for
// by one person and approved by another.
type Preauthorized struct {
	Org          string
	CSRPEM       string
	Identities   []string // the identities to certify (already inside the authorisation)
	ValidityDays int      // 0: the organisation's maximum
	Via          string   // models.ViaACME, models.ViaEST
	ViaRef       string   // which binding and account, for the portal and the audit
	DecidedBy    string   // who approved the authorisation
	Reason       string   // shown as the decision reason
	RenewalOf    string   // certificate id, for a renewal (ACME "replaces", ARI)
}

// ErrNotPreauthorizing means the store cannot record pre-authorised
// requests.
var ErrNotPreauthorizing = errors.New("the store cannot record pre-authorised requests")

// IssuePreauthorized records the request as submitted by the actor (the
// ACME account or EST client) and decided by p.DecidedBy, then issues it on
// the same path as an approval: policy checked again, lint-before-sign,
// record-before-sign, audit.
func (w *Workflow) IssuePreauthorized(ctx context.Context, a models.Actor, p Preauthorized) (*models.Request, error) {
	ps, ok := w.Store.(PreauthorizingStore)
	if !ok {
		return nil, ErrNotPreauthorizing
	}
	if p.Via == "" || p.DecidedBy == "" || p.DecidedBy == a.Subject {
		return nil, fmt.Errorf("%w: a pre-authorised request needs a channel and a decision by someone other than the requester", models.ErrForbidden)
	}
	org, err := w.Store.GetOrg(ctx, p.Org)
	if err != nil {
		return nil, fmt.Errorf("organisation %q: %w", p.Org, err)
	}
	checked, err := w.Check(org, p.CSRPEM, p.Identities, p.ValidityDays)
	if err != nil {
		return nil, err
	}
	r := &models.Request{
		Org: org.Slug, Identities: checked.Identities.Strings(), CSRPEM: p.CSRPEM,
		KeyType: checked.CSR.KeyType, ValidityDays: checked.ValidityDays, RequestedBy: a.Subject,
		Note: p.Reason, Via: p.Via, ViaRef: p.ViaRef, KeySHA256: checked.CSR.KeySHA256(),
	}
	if p.RenewalOf != "" {
		if old, err := w.Store.GetCertificate(ctx, p.RenewalOf); err == nil && old.Org == org.Slug {
			r.RenewalOf = &p.RenewalOf
		}
	}
	if err := w.Store.SubmitRequest(ctx, a, r); err != nil {
		return nil, keyRefusal(a, err)
	}
	approved, err := ps.PreauthorizeRequest(ctx, a, r.ID, p.DecidedBy, p.Reason)
	if err != nil {
		return nil, err
	}
	return w.issueAndNotify(ctx, a, approved)
}
