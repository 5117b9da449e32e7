package acme

// ACME error types (RFC 8555 §6.7).
const (
	errAccountDoesNotExist   = "urn:ietf:params:acme:error:accountDoesNotExist"
	errAlreadyRevoked        = "urn:ietf:params:acme:error:alreadyRevoked"
	errBadCSR                = "urn:ietf:params:acme:error:badCSR"
	errBadNonce              = "urn:ietf:params:acme:error:badNonce"
	errBadPublicKey          = "urn:ietf:params:acme:error:badPublicKey"
	errBadRevocationReason   = "urn:ietf:params:acme:error:badRevocationReason"
	errBadSignatureAlgorithm = "urn:ietf:params:acme:error:badSignatureAlgorithm"
	errExternalAccount       = "urn:ietf:params:acme:error:externalAccountRequired"
	errMalformed             = "urn:ietf:params:acme:error:malformed"
	errOrderNotReady         = "urn:ietf:params:acme:error:orderNotReady"
	errRejectedIdentifier    = "urn:ietf:params:acme:error:rejectedIdentifier"
	errServerInternal        = "urn:ietf:params:acme:error:serverInternal"
	errUnauthorized          = "urn:ietf:params:acme:error:unauthorized"
	errUnsupportedIdentifier = "urn:ietf:params:acme:error:unsupportedIdentifier"
)

// Problem is an ACME problem document (RFC 8555 §6.7, RFC 7807). It is
// also an error, so handlers return it.
type Problem struct {
	Type        string       `json:"type"`
	Detail      string       `json:"detail,omitempty"`
	Status      int          `json:"status"`
	Subproblems []Subproblem `json:"subproblems,omitempty"`
	// Algorithms lists the accepted algorithms with badSignatureAlgorithm
	// (RFC 8555 §6.2).
	Algorithms []string `json:"algorithms,omitempty"`
}

// Subproblem is one identifier's problem (RFC 8555 §6.7.1).
type Subproblem struct {
	Type       string     `json:"type"`
	Detail     string     `json:"detail,omitempty"`
	Identifier Identifier `json:"identifier"`
}

// Error implements error.
func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

func malformed(detail string) *Problem {
	return &Problem{Type: errMalformed, Status: 400, Detail: detail}
}
