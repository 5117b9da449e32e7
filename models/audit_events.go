package models

import "encoding/json"

// Event is what an audit event records beyond who, when and on which
// object: Action names its kind and the value's JSON encoding, an object, is
// its detail. Each kind is one struct below; its fields are declared in the
// sorted order of their JSON keys, the order in which the detail is stored
// and hashed (see canonicalDetail), so that the struct's own encoding is the
// stored one byte for byte.
type Event interface {
	Action() string
}

// Audit actions, one per kind of event.
const (
	ActionRequestSubmit      = "request.submit"
	ActionRequestApprove     = "request.approve"
	ActionRequestAutoApprove = "request.auto_approve"
	ActionRequestReject      = "request.reject"
	ActionRequestCancel      = "request.cancel"
	ActionRequestFail        = "request.fail"
	ActionRequestRetry       = "request.retry"

	ActionCertificateReserve      = "certificate.reserve"
	ActionCertificateIssue        = "certificate.issue"
	ActionCertificateFail         = "certificate.fail"
	ActionCertificateRevoke       = "certificate.revoke"
	ActionCertificateExpiryNotice = "certificate.expiry_notice"

	ActionCRLPublish          = "crl.publish"
	ActionCRLPrune            = "crl.prune"
	ActionOCSPResponderCreate = "ocsp_responder.create"
	ActionTokenCreate         = "token.create"
	ActionTokenRevoke         = "token.revoke"
	ActionMembershipSet       = "membership.set"
	ActionInvitationCreate    = "invitation.create"
	ActionInvitationRevoke    = "invitation.revoke"
	ActionInvitationAccept    = "invitation.accept"
	ActionOrgCreate           = "org.create"
	ActionOrgUpdate           = "org.update"
	ActionOrgAutoApprove      = "org.auto_approve_renewals"
	ActionKeyBlock            = "key.block"
	ActionAuditCheckpoint     = "audit.checkpoint"
	ActionAuthLogin           = "auth.login"
	ActionAuthLoginFailed     = "auth.login_failed"
	ActionAuthLoginDenied     = "auth.login_denied"
	ActionAuthLogout          = "auth.logout"
	// ActionAuthCredentialRejected is a bearer token or session cookie that
	// authenticated nobody (the first of its source's window).
	ActionAuthCredentialRejected = "auth.credential_rejected"
	// ActionAuthFailuresFolded counts the failures of one source and kind
	// in one window that were not recorded one by one.
	ActionAuthFailuresFolded = "auth.failures_folded"
)

// VariableEvent is an event whose detail has no fixed shape, for a kind
// that records whatever fields it is given. Kind is its action; Fields is
// stored as a JSON object (nil as {}). Kinds with known fields have their
// own struct instead.
type VariableEvent struct {
	Kind   string
	Fields map[string]any
}

// Action returns Kind.
func (e VariableEvent) Action() string { return e.Kind }

// MarshalJSON encodes Fields.
func (e VariableEvent) MarshalJSON() ([]byte, error) { return json.Marshal(e.Fields) }

// RequestSubmitEvent records a new request. RenewalOf is present only for a
// renewal.
type RequestSubmitEvent struct {
	Identities   StringList `json:"identities"`
	KeyType      string     `json:"key_type"`
	RenewalOf    *string    `json:"renewal_of,omitempty"`
	RequestedBy  string     `json:"requested_by"`
	ValidityDays int        `json:"validity_days"`
}

// Action is ActionRequestSubmit.
func (RequestSubmitEvent) Action() string { return ActionRequestSubmit }

// RequestApproveEvent records an admin's approval: the state change and the
// reason given (possibly empty).
type RequestApproveEvent struct {
	From   string `json:"from"`
	Reason string `json:"reason"`
	To     string `json:"to"`
}

// Action is ActionRequestApprove.
func (RequestApproveEvent) Action() string { return ActionRequestApprove }

func (e RequestApproveEvent) states() (from, to string) { return e.From, e.To }

// RequestAutoApproveEvent records the approval of a renewal by its
// organisation's policy; it has the fields of RequestApproveEvent.
type RequestAutoApproveEvent RequestApproveEvent

// Action is ActionRequestAutoApprove.
func (RequestAutoApproveEvent) Action() string { return ActionRequestAutoApprove }

func (e RequestAutoApproveEvent) states() (from, to string) { return e.From, e.To }

// RequestRejectEvent records a rejection and its reason; it has the fields
// of RequestApproveEvent.
type RequestRejectEvent RequestApproveEvent

// Action is ActionRequestReject.
func (RequestRejectEvent) Action() string { return ActionRequestReject }

func (e RequestRejectEvent) states() (from, to string) { return e.From, e.To }

// RequestCancelEvent records the requester withdrawing a request; it has no
// reason.
type RequestCancelEvent struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Action is ActionRequestCancel.
func (RequestCancelEvent) Action() string { return ActionRequestCancel }

func (e RequestCancelEvent) states() (from, to string) { return e.From, e.To }

// CertificateReserveEvent records a reserved serial and what is about to be
// signed. Times are RFC 3339 in seconds.
type CertificateReserveEvent struct {
	Identities StringList `json:"identities"`
	NotAfter   string     `json:"not_after"`
	NotBefore  string     `json:"not_before"`
	RequestID  string     `json:"request_id"`
	Serial     string     `json:"serial"`
}

// Action is ActionCertificateReserve.
func (CertificateReserveEvent) Action() string { return ActionCertificateReserve }

// CertificateIssueEvent records a signed certificate with its SHA-256
// fingerprint (hex).
type CertificateIssueEvent struct {
	NotAfter  string `json:"not_after"`
	RequestID string `json:"request_id"`
	Serial    string `json:"serial"`
	SHA256    string `json:"sha256"`
}

// Action is ActionCertificateIssue.
func (CertificateIssueEvent) Action() string { return ActionCertificateIssue }

// CertificateFailEvent records an issuance that did not complete, and why.
type CertificateFailEvent struct {
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
	Serial    string `json:"serial"`
}

// Action is ActionCertificateFail.
func (CertificateFailEvent) Action() string { return ActionCertificateFail }

// CertificateRevokeEvent records a revocation with its RFC 5280 §5.3.1
// reason code and name.
type CertificateRevokeEvent struct {
	Reason     int    `json:"reason"`
	ReasonName string `json:"reason_name"`
	Serial     string `json:"serial"`
}

// Action is ActionCertificateRevoke.
func (CertificateRevokeEvent) Action() string { return ActionCertificateRevoke }

// CertificateExpiryNoticeEvent records an expiry threshold noticed and how
// many notifications were queued for it.
type CertificateExpiryNoticeEvent struct {
	Notifications int    `json:"notifications"`
	Serial        string `json:"serial"`
	ThresholdDays int    `json:"threshold_days"`
}

// Action is ActionCertificateExpiryNotice.
func (CertificateExpiryNoticeEvent) Action() string { return ActionCertificateExpiryNotice }

// CRLPublishEvent records a stored CRL, a signature by a CA key. Times are
// RFC 3339 in seconds; SHA256 is the hex digest of the DER.
type CRLPublishEvent struct {
	Entries    int    `json:"entries"`
	Issuer     string `json:"issuer"`
	KeyID      string `json:"key_id"`
	NextUpdate string `json:"next_update"`
	Number     int64  `json:"number"`
	SHA256     string `json:"sha256"`
	ThisUpdate string `json:"this_update"`
}

// Action is ActionCRLPublish.
func (CRLPublishEvent) Action() string { return ActionCRLPublish }

// CRLPruneEvent records stored CRLs removed: of one name and CA key, those
// numbered from FromNumber to ToNumber (Rows of them) whose nextUpdate had
// passed, the newest Kept being kept whatever their nextUpdate.
type CRLPruneEvent struct {
	FromNumber int64  `json:"from_number"`
	Issuer     string `json:"issuer"`
	Kept       int    `json:"kept"`
	KeyID      string `json:"key_id"`
	Rows       int64  `json:"rows"`
	ToNumber   int64  `json:"to_number"`
}

// Action is ActionCRLPrune.
func (CRLPruneEvent) Action() string { return ActionCRLPrune }

// OCSPResponderCreateEvent records a delegated OCSP responder certificate.
type OCSPResponderCreateEvent struct {
	Issuer   string `json:"issuer"`
	KeyID    string `json:"key_id"`
	KeyLabel string `json:"key_label"`
	NotAfter string `json:"not_after"`
}

// Action is ActionOCSPResponderCreate.
func (OCSPResponderCreateEvent) Action() string { return ActionOCSPResponderCreate }

// TokenCreateEvent records a new API token (never the token or its hash).
type TokenCreateEvent struct {
	ExpiresAt string `json:"expires_at"`
	Name      string `json:"name"`
	Org       string `json:"org"`
	Parent    string `json:"parent,omitempty"` // the token that made this one
	Role      string `json:"role"`
	Subject   string `json:"subject"`
}

// Action is ActionTokenCreate.
func (TokenCreateEvent) Action() string { return ActionTokenCreate }

// TokenRevokeEvent records a revoked API token.
type TokenRevokeEvent struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
}

// Action is ActionTokenRevoke.
func (TokenRevokeEvent) Action() string { return ActionTokenRevoke }

// MembershipSetEvent records a user's organisation as an admin set it ("":
// removed) and the one before ("": none).
type MembershipSetEvent struct {
	Org         string `json:"org"`
	PreviousOrg string `json:"previous_org"`
	Subject     string `json:"subject"`
}

// Action is ActionMembershipSet.
func (MembershipSetEvent) Action() string { return ActionMembershipSet }

// InvitationCreateEvent records an admin's invitation of an e-mail address
// to an organisation.
type InvitationCreateEvent struct {
	Email     string `json:"email"`
	ExpiresAt string `json:"expires_at"`
	Org       string `json:"org"`
}

// Action is ActionInvitationCreate.
func (InvitationCreateEvent) Action() string { return ActionInvitationCreate }

// InvitationRevokeEvent records an invitation withdrawn before it was
// accepted.
type InvitationRevokeEvent struct {
	Email string `json:"email"`
	Org   string `json:"org"`
}

// Action is ActionInvitationRevoke.
func (InvitationRevokeEvent) Action() string { return ActionInvitationRevoke }

// InvitationAcceptEvent records a sign-in with the invited, verified
// e-mail address that joined the organisation.
type InvitationAcceptEvent struct {
	Email   string `json:"email"`
	Org     string `json:"org"`
	Subject string `json:"subject"`
}

// Action is ActionInvitationAccept.
func (InvitationAcceptEvent) Action() string { return ActionInvitationAccept }

// OrgSnapshot is an organisation's audited fields.
type OrgSnapshot struct {
	AutoApproveRenewals bool       `json:"auto_approve_renewals"`
	ContactEmails       StringList `json:"contact_emails"`
	DNSSuffixes         StringList `json:"dns_suffixes"`
	EmailDomains        StringList `json:"email_domains"`
	ExpiryNoticeDays    []int      `json:"expiry_notice_days"`
	MaxValidityDays     int        `json:"max_validity_days"`
	Name                string     `json:"name"`
	Slug                string     `json:"slug"`
	URIPrefixes         StringList `json:"uri_prefixes"`
}

// snapshotOrg returns o's audited fields.
func snapshotOrg(o *Organization) OrgSnapshot {
	return OrgSnapshot{
		AutoApproveRenewals: o.AutoApproveRenewals, ContactEmails: o.ContactEmails,
		DNSSuffixes: o.DNSSuffixes, EmailDomains: o.EmailDomains, ExpiryNoticeDays: o.ExpiryNoticeDays,
		MaxValidityDays: o.MaxValidityDays, Name: o.Name, Slug: o.Slug, URIPrefixes: o.URIPrefixes,
	}
}

// OrgCreateEvent records a new organisation.
type OrgCreateEvent OrgSnapshot

// Action is ActionOrgCreate.
func (OrgCreateEvent) Action() string { return ActionOrgCreate }

// OrgUpdateEvent records an organisation before and after an edit.
type OrgUpdateEvent struct {
	After  OrgSnapshot `json:"after"`
	Before OrgSnapshot `json:"before"`
}

// Action is ActionOrgUpdate.
func (OrgUpdateEvent) Action() string { return ActionOrgUpdate }

// AuditCheckpointEvent records a saved checkpoint: the event it covers (seq
// and hash), the key that signed it and when (RFC 3339 with nanoseconds).
type AuditCheckpointEvent struct {
	Hash     string `json:"hash"`
	KeyID    string `json:"key_id"`
	Seq      int64  `json:"seq"`
	SignedAt string `json:"signed_at"`
}

// Action is ActionAuditCheckpoint.
func (AuditCheckpointEvent) Action() string { return ActionAuditCheckpoint }

// AuthLoginEvent records a sign-in and how it was made.
type AuthLoginEvent struct {
	Email  string `json:"email"`
	Method string `json:"method"`
	Name   string `json:"name"`
}

// Action is ActionAuthLogin.
func (AuthLoginEvent) Action() string { return ActionAuthLogin }

// AuthLoginFailedEvent records a failed sign-in: Why is a short machine
// word; Error is the identity provider's error code, when it sent one, and
// Subject the claimed subject, when the ID token named one.
type AuthLoginFailedEvent struct {
	Error   string `json:"error,omitempty"`
	Subject string `json:"subject,omitempty"`
	Why     string `json:"why"`
}

// Action is ActionAuthLoginFailed.
func (AuthLoginFailedEvent) Action() string { return ActionAuthLoginFailed }

// AuthLoginDeniedEvent records a sign-in refused for want of a role or an
// organisation: the claim read and its values.
type AuthLoginDeniedEvent struct {
	Claim  string   `json:"claim"`
	Values []string `json:"values"`
	Why    string   `json:"why"`
}

// Action is ActionAuthLoginDenied.
func (AuthLoginDeniedEvent) Action() string { return ActionAuthLoginDenied }

// AuthLogoutEvent records a sign-out; it has no detail.
type AuthLogoutEvent struct{}

// Action is ActionAuthLogout.
func (AuthLogoutEvent) Action() string { return ActionAuthLogout }

// OrgAutoApproveRenewalsEvent is "org.auto_approve_renewals": an
// organisation's automatic approval of renewals was switched on or off.
type OrgAutoApproveRenewalsEvent struct {
	Enabled bool `json:"enabled"`
}

// Action is ActionOrgAutoApprove.
func (OrgAutoApproveRenewalsEvent) Action() string { return ActionOrgAutoApprove }

// KeyBlockEvent is "key.block": a public key was put on the blocked list,
// by a keyCompromise revocation (Certificate, Serial) or by an admin
// (Reason).
type KeyBlockEvent struct {
	Certificate string `json:"certificate,omitempty"`
	KeyType     string `json:"key_type"`
	Reason      string `json:"reason,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Source      string `json:"source"`
}

// Action is ActionKeyBlock.
func (KeyBlockEvent) Action() string { return ActionKeyBlock }

// RequestFailEvent records why an approved request's certificate cannot be
// issued; the request stays approved, waiting for an admin's retry.
type RequestFailEvent RequestApproveEvent

// Action is ActionRequestFail.
func (RequestFailEvent) Action() string { return ActionRequestFail }

func (e RequestFailEvent) states() (from, to string) { return e.From, e.To }

// RequestRetryEvent records an admin retrying a failed issuance, with the
// failure it clears.
type RequestRetryEvent struct {
	From            string `json:"from"`
	PreviousFailure string `json:"previous_failure"`
	To              string `json:"to"`
}

// Action is ActionRequestRetry.
func (*RequestRetryEvent) Action() string { return ActionRequestRetry }

func (e *RequestRetryEvent) states() (from, to string) { return e.From, e.To }

// AuthCredentialRejectedEvent records an API token or session cookie that
// authenticated nobody: Kind is "bearer" or "cookie", Why a short machine
// word (unknown_token, malformed_token, bad_scheme, unknown_session).
// Nothing of the credential itself is recorded.
type AuthCredentialRejectedEvent struct {
	Kind string `json:"kind"`
	Why  string `json:"why"`
}

// Action is ActionAuthCredentialRejected.
func (AuthCredentialRejectedEvent) Action() string { return ActionAuthCredentialRejected }

// AuthFailuresFoldedEvent records, for one source, one kind of failure
// ("bearer", "cookie" or "callback"), one reason (Why, as in the event of
// the first failure) and one window, how many failures followed the
// window's first one (which has its own event): Count failures between
// Since (the window's start) and Until (the last of them), RFC 3339 times.
type AuthFailuresFoldedEvent struct {
	Count int    `json:"count"`
	Kind  string `json:"kind"`
	Since string `json:"since"`
	Until string `json:"until"`
	Why   string `json:"why"`
}

// Action is ActionAuthFailuresFolded.
func (AuthFailuresFoldedEvent) Action() string { return ActionAuthFailuresFolded }
