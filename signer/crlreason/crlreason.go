// Package crlreason is certdesk's one table of revocation reasons: the
// RFC 5280 §5.3.1 CRLReason codes it accepts, their names, and the roles
// that may give each. It imports nothing else of certdesk, so that both
// signer (which re-exports the name check as a policy error) and models
// (which records revocations) can use it.
package crlreason

import (
	"fmt"
	"slices"
)

// RFC 5280 §5.3.1 CRLReason codes. 7 is unused.
const (
	Unspecified          = 0
	KeyCompromise        = 1
	CACompromise         = 2
	AffiliationChanged   = 3
	Superseded           = 4
	CessationOfOperation = 5
	CertificateHold      = 6
	RemoveFromCRL        = 8
	PrivilegeWithdrawn   = 9
	AACompromise         = 10
)

// The roles that may revoke, as models names them (models.RolePartner and
// models.RoleAdmin; models tests that they agree).
const (
	RolePartner = "partner"
	RoleAdmin   = "admin"
)

// Reason is one accepted revocation reason.
type Reason struct {
	// Name is the RFC 5280 name, e.g. keyCompromise.
	Name string `json:"name"`
	// Code is the CRLReason code written into CRLs and OCSP answers.
	Code int `json:"code"`
	// Label says in words when the reason applies.
	Label string `json:"label"`
	// Roles may revoke with this reason: an admin any certificate, a
	// partner their organisation's.
	Roles []string `json:"roles"`
}

var (
	adminOnly = []string{RoleAdmin}
	anyone    = []string{RoleAdmin, RolePartner}
)

// reasons are the reasons certdesk accepts, in the order a person choosing
// one should see them. certificateHold and removeFromCRL are absent: a
// revocation here is final.
var reasons = []Reason{
	{"superseded", Superseded, "Superseded — replaced by a new certificate", anyone},
	{"keyCompromise", KeyCompromise, "Key compromise — the private key leaked, or may have", anyone},
	{"affiliationChanged", AffiliationChanged, "Affiliation changed — the holder left the organisation", anyone},
	{"cessationOfOperation", CessationOfOperation, "Cessation of operation — the service is retired", anyone},
	{"unspecified", Unspecified, "Unspecified", adminOnly},
	{"privilegeWithdrawn", PrivilegeWithdrawn, "Privilege withdrawn", adminOnly},
	{"cACompromise", CACompromise, "CA compromise", adminOnly},
	{"aACompromise", AACompromise, "AA compromise", adminOnly},
}

// All returns the accepted reasons (a copy), in display order.
func All() []Reason {
	out := make([]Reason, len(reasons))
	for i, r := range reasons {
		r.Roles = slices.Clone(r.Roles)
		out[i] = r
	}
	return out
}

// ByName returns the accepted reason called name.
func ByName(name string) (Reason, bool) {
	i := slices.IndexFunc(reasons, func(r Reason) bool { return r.Name == name })
	if i < 0 {
		return Reason{}, false
	}
	return reasons[i], true
}

// ByCode returns the accepted reason with CRLReason code.
func ByCode(code int) (Reason, bool) {
	i := slices.IndexFunc(reasons, func(r Reason) bool { return r.Code == code })
	if i < 0 {
		return Reason{}, false
	}
	return reasons[i], true
}

// Name returns the RFC 5280 name of code, or "reason(N)" for a code
// certdesk does not accept.
func Name(code int) string {
	if r, ok := ByCode(code); ok {
		return r.Name
	}
	return fmt.Sprintf("reason(%d)", code)
}

// For returns the reasons role may revoke with, in display order.
func For(role string) []Reason {
	var out []Reason
	for _, r := range All() {
		if r.MayUse(role) {
			out = append(out, r)
		}
	}
	return out
}

// NamesFor returns the names of the reasons role may revoke with.
func NamesFor(role string) []string {
	var out []string
	for _, r := range For(role) {
		out = append(out, r.Name)
	}
	return out
}

// MayUse reports whether role may revoke with r.
func (r Reason) MayUse(role string) bool { return slices.Contains(r.Roles, role) }
