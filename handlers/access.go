package handlers

import (
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer/crlreason"
)

// Who may see and act on what, in one place. A partner sees only their own
// organisation; objects of other organisations answer 404, so that their
// existence is not revealed.

// canSee reports whether a may read objects of org.
func canSee(a models.Actor, org string) bool {
	switch a.Role {
	case models.RoleAdmin, models.RoleAuditor:
		return true
	case models.RolePartner:
		return a.Org != "" && a.Org == org
	}
	return false
}

// canActFor reports whether a may change objects of org (submit, cancel,
// revoke with a partner's reasons).
func canActFor(a models.Actor, org string) bool {
	switch a.Role {
	case models.RoleAdmin:
		return true
	case models.RolePartner:
		return a.Org != "" && a.Org == org
	}
	return false
}

// scopeOrg narrows a list filter to the caller's organisation for partners.
func scopeOrg(a models.Actor, requested string) string {
	if a.Role == models.RolePartner {
		return a.Org
	}
	return requested
}

// mayRevokeWith reports whether a may revoke a certificate of org with
// reason: canActFor, and the role is one crlreason allows the reason for.
func mayRevokeWith(a models.Actor, org string, reason crlreason.Reason) bool {
	return canActFor(a, org) && reason.MayUse(a.Role)
}
