// Package signer is certdesk's issuer: the issuer certificate with its
// crypto.Signer, the leaf certificate profile, CSR policy, lint-before-sign,
// and CRL and OCSP signing. It holds no HTTP and no SQL.
package signer

import (
	"errors"

	"github.com/certdesk/certdesk/signer/pkcs11"
)

// Error kinds of the signer, usable with errors.Is. The web layer maps them to
// HTTP statuses in one place.
var (
	// ErrPolicy is a CSR or identity refused by policy; the wrapping
	// *PolicyError names the rule and the reason (HTTP 422).
	ErrPolicy = errors.New("refused by policy")
	// ErrLint is a certificate or CRL that failed lint-before-sign: a bug or
	// misconfiguration on our side, never signed (HTTP 500).
	ErrLint = errors.New("lint-before-sign failed")
	// ErrHSMUnavailable is pkcs11.ErrHSMUnavailable, re-exported so that
	// callers of the signer need not import signer/pkcs11: the token failed
	// or is being re-opened, and the operation may succeed later (HTTP 503).
	ErrHSMUnavailable = pkcs11.ErrHSMUnavailable
)

// PolicyError is a refusal by one named policy rule.
type PolicyError struct {
	Rule   string // short machine name, e.g. "key-size"
	Reason string // user-readable sentence
}

// Error implements error.
func (e *PolicyError) Error() string { return e.Rule + ": " + e.Reason }

// Is makes errors.Is(err, ErrPolicy) true for every PolicyError.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }
