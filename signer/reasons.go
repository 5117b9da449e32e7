package signer

import "fmt"

// RFC 5280 §5.3.1 CRLReason codes. 7 is unused; certificateHold (6) and
// removeFromCRL (8) are not offered: certdesk revocation is permanent.
var reasonCodes = map[string]int{
	"unspecified":          0,
	"keyCompromise":        1,
	"cACompromise":         2,
	"affiliationChanged":   3,
	"superseded":           4,
	"cessationOfOperation": 5,
	"privilegeWithdrawn":   9,
	"aACompromise":         10,
}

// ReasonCode returns the CRLReason code for an RFC 5280 reason name.
func ReasonCode(name string) (int, error) {
	code, ok := reasonCodes[name]
	if !ok {
		return 0, &PolicyError{Rule: "revocation-reason", Reason: fmt.Sprintf("%q is not a revocation reason certdesk accepts (RFC 5280 §5.3.1 names such as keyCompromise, superseded, affiliationChanged, cessationOfOperation; certificateHold and removeFromCRL are not supported)", name)}
	}
	return code, nil
}

// ReasonName returns the RFC 5280 name of a CRLReason code.
func ReasonName(code int) string {
	for n, c := range reasonCodes {
		if c == code {
			return n
		}
	}
	return fmt.Sprintf("reason(%d)", code)
}
