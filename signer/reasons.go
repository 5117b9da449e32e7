package signer

import (
	"fmt"

	"github.com/certdesk/certdesk/signer/crlreason"
)

// ReasonCode returns the CRLReason code for an RFC 5280 reason name that
// certdesk accepts (the table is crlreason's); any other name is a
// PolicyError of the rule "revocation-reason".
func ReasonCode(name string) (int, error) {
	r, ok := crlreason.ByName(name)
	if !ok {
		return 0, &PolicyError{Rule: "revocation-reason", Reason: fmt.Sprintf("%q is not a revocation reason certdesk accepts (RFC 5280 §5.3.1 names such as keyCompromise, superseded, affiliationChanged, cessationOfOperation; certificateHold and removeFromCRL are not supported)", name)}
	}
	return r.Code, nil
}
