// Package models holds certdesk's gorm models, the store, its versioned
// migrations, the request state machine and the tamper-evident audit chain.
package models

import (
	"time"
)

// Request states: submitted → approved → issued, or rejected, or cancelled.
const (
	StateSubmitted = "submitted"
	StateApproved  = "approved"
	StateIssued    = "issued"
	StateRejected  = "rejected"
	StateCancelled = "cancelled"
)

// Certificate states as stored. "valid" and "expired" as shown by the API are
// derived from StateCertIssued and NotAfter; revoked is stored.
const (
	CertPending = "pending" // serial reserved, about to be signed (record before sign)
	CertIssued  = "issued"
	CertRevoked = "revoked"
	CertFailed  = "failed" // in-flight issuance that could not be finished
)

// Roles a user can hold.
const (
	RolePartner = "partner"
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
	RoleSystem  = "system" // the portal itself (recovery, CRL generation)
)

// StringList is a list of strings stored as a JSON array.
type StringList []string

// Organization is a partner organisation and its identity namespace.
type Organization struct {
	ID                  uint       `gorm:"primaryKey" json:"-"`
	Slug                string     `gorm:"uniqueIndex;size:64;not null" json:"slug"`
	Name                string     `gorm:"size:200;not null" json:"name"`
	URIPrefixes         StringList `gorm:"type:text;serializer:json" json:"uri_prefixes"`
	DNSSuffixes         StringList `gorm:"type:text;serializer:json" json:"dns_suffixes"`
	EmailDomains        StringList `gorm:"type:text;serializer:json" json:"email_domains"`
	MaxValidityDays     int        `gorm:"not null" json:"max_validity_days"`
	AutoApproveRenewals bool       `gorm:"not null" json:"auto_approve_renewals"`
	ContactEmails       StringList `gorm:"type:text;serializer:json" json:"contact_emails"`     // receive expiry notices
	ExpiryNoticeDays    []int      `gorm:"type:text;serializer:json" json:"expiry_notice_days"` // days before expiry; empty: the default 30, 14, 7, 1
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// Request is a certificate request moving through the workflow.
type Request struct {
	ID             string     `gorm:"primaryKey;size:36" json:"id"`
	State          string     `gorm:"index;size:16;not null" json:"state"`
	Org            string     `gorm:"index;size:64;not null" json:"org"`
	Identities     StringList `gorm:"type:text;serializer:json" json:"identities"`
	CSRPEM         string     `gorm:"type:text;not null" json:"csr"`
	KeyType        string     `gorm:"size:32" json:"key_type"` // e.g. "ECDSA P-256"
	ValidityDays   int        `gorm:"not null" json:"validity_days"`
	Note           string     `gorm:"type:text" json:"note"`
	RequestedBy    string     `gorm:"index;size:255;not null" json:"requested_by"`
	RequesterEmail string     `gorm:"size:255" json:"requester_email,omitempty"`                   // where the decision is sent (Actor.Email at submit)
	RenewalOf      *string    `gorm:"size:36" json:"renewal_of,omitempty"`                         // certificate id
	KeySHA256      string     `gorm:"column:key_sha256;index;size:64" json:"key_sha256,omitempty"` // hex SHA-256 of the CSR's SubjectPublicKeyInfo
	DecidedBy      string     `gorm:"size:255" json:"decided_by,omitempty"`
	DecisionReason string     `gorm:"type:text" json:"decision_reason,omitempty"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
	CertificateID  *string    `gorm:"size:36" json:"certificate_id,omitempty"`
	// FailureReason, on an approved request, says why its certificate could
	// not be issued; recovery leaves it alone until an admin retries it.
	FailureReason string    `gorm:"type:text;not null;default:''" json:"failure_reason,omitempty"`
	Via           string    `gorm:"size:16" json:"via,omitempty"`      // channel: "" (portal), ViaACME, ViaEST, ViaRenew
	ViaRef        string    `gorm:"size:255" json:"via_ref,omitempty"` // e.g. "binding/<id> account/<id>"
	CreatedAt     time.Time `gorm:"index" json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Certificate is an issued (or in-flight) leaf certificate. The row is written
// with CertPending and the to-be-signed contents before the HSM signs, and
// completed with the DER after (record before sign).
type Certificate struct {
	ID               string     `gorm:"primaryKey;size:36" json:"id"`
	Serial           string     `gorm:"uniqueIndex;size:40;not null" json:"serial"` // serial.Number.String: upper-case hex, two digits a byte (as openssl prints it)
	RequestID        string     `gorm:"index;size:36;not null" json:"request_id"`
	Org              string     `gorm:"index;size:64;not null" json:"org"`
	Identities       StringList `gorm:"type:text;serializer:json" json:"identities"`
	KeyType          string     `gorm:"size:32" json:"key_type"`
	NotBefore        time.Time  `json:"not_before"`
	NotAfter         time.Time  `gorm:"index" json:"not_after"`
	State            string     `gorm:"index;size:16;not null" json:"-"`
	PrecertDER       []byte     `json:"-"` // the linted to-be-signed certificate (throwaway signature); NULL once issued
	DER              []byte     `json:"-"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason *int       `json:"revocation_reason,omitempty"` // RFC 5280 §5.3.1 CRLReason
	RevokedBy        string     `gorm:"size:255" json:"revoked_by,omitempty"`
	// IssuerKeyID names the issuing CA (hex SHA-256 of its
	// SubjectPublicKeyInfo, as CRL.KeyID); empty for certificates recorded
	// before it was kept. CRLPartition is the CRL partition named in the
	// certificate's CRL distribution point, -1 for none.
	IssuerKeyID  string `gorm:"size:64;not null;default:''" json:"-"`
	CRLPartition int    `gorm:"not null" json:"-"`
	// ClaimedBy and LeaseUntil say who may sign a pending certificate and
	// until when: the reserving issuance, or recovery once that lease expired.
	ClaimedBy  string     `gorm:"size:36;not null;default:''" json:"-"`
	LeaseUntil *time.Time `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// AuditEvent is one link of the tamper-evident audit chain: Hash covers every
// other field and PrevHash, so editing, removing or inserting a row breaks
// the chain at that row.
type AuditEvent struct {
	Seq        int64     `gorm:"primaryKey;autoIncrement:false" json:"seq"`
	Time       time.Time `gorm:"index;not null" json:"time"`
	Actor      string    `gorm:"index;size:255;not null" json:"actor"`
	Role       string    `gorm:"size:16" json:"role"`
	Org        string    `gorm:"index;size:64" json:"org"`
	Action     string    `gorm:"index;size:64;not null" json:"action"`
	ObjectType string    `gorm:"size:32" json:"object_type"`
	ObjectID   string    `gorm:"index;size:64" json:"object_id"`
	Source     string    `gorm:"size:64" json:"source"`
	Detail     string    `gorm:"type:text" json:"detail"` // canonical JSON object
	PrevHash   string    `gorm:"size:64;not null" json:"prev_hash"`
	Hash       string    `gorm:"size:64;not null" json:"hash"`
}

// APIToken is a bearer token for automation. Only the SHA-256 of the token
// is stored; the token itself is shown once.
type APIToken struct {
	ID         string     `gorm:"primaryKey;size:36" json:"id"`
	Name       string     `gorm:"size:200" json:"name"`
	Subject    string     `gorm:"index;size:255;not null" json:"subject"`
	Role       string     `gorm:"size:16;not null" json:"role"`
	Org        string     `gorm:"size:64" json:"org"`
	Hash       string     `gorm:"uniqueIndex;size:64;not null" json:"-"`
	ParentID   *string    `gorm:"index;size:36" json:"parent_id,omitempty"` // the token this one was made with, if any
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
}

// Session is a server-side browser session. ID is the SHA-256 of the cookie
// value, so a database reader cannot hijack sessions.
type Session struct {
	ID          string    `gorm:"primaryKey;size:64"`
	Subject     string    `gorm:"index;size:255;not null"`
	Name        string    `gorm:"size:255"`
	Email       string    `gorm:"size:255"`
	Role        string    `gorm:"size:16;not null"`
	Org         string    `gorm:"size:64"`
	CSRFToken   string    `gorm:"size:64;not null"`
	IDTokenHint string    `gorm:"type:text"` // for RP-initiated logout
	CreatedAt   time.Time `gorm:"not null"`
	LastSeenAt  time.Time `gorm:"not null"`
	ExpiresAt   time.Time `gorm:"index;not null"` // absolute timeout
}

// CRL is a stored, signed certificate revocation list for one CA.
type CRL struct {
	ID         uint      `gorm:"primaryKey"`
	Issuer     string    `gorm:"uniqueIndex:idx_crl_issuer_number;size:16;not null"` // "issuing" or "root"
	KeyID      string    `gorm:"size:64;not null;default:''"`                        // hex SHA-256 of the signing CA's SubjectPublicKeyInfo
	Number     int64     `gorm:"uniqueIndex:idx_crl_issuer_number;not null"`
	ThisUpdate time.Time `gorm:"not null"`
	NextUpdate time.Time `gorm:"not null"`
	Entries    int       `gorm:"not null"`
	DER        []byte    `gorm:"not null"`
	CreatedAt  time.Time
}

// Membership assigns a user (OIDC subject) to an organisation by an admin's
// decision, for identity providers that carry no organisation claim.
type Membership struct {
	Subject   string    `gorm:"primaryKey;size:255" json:"subject"`
	Org       string    `gorm:"index;size:64;not null" json:"org"`
	CreatedBy string    `gorm:"size:255" json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}
