package models

import "strings"

// The columns of the models the store reads and writes itself (see stmt),
// each list next to the scan targets and the values in its order. A test
// checks each list against gorm's schema of the model, and each scan target
// against the field gorm maps that column to, so that a column added to a
// model cannot be left out here.

// requestCols are the columns of requests.
var requestCols = []string{
	"id", "state", "org", "identities", "csrpem", "key_type", "validity_days", "note", "requested_by",
	"requester_email", "renewal_of", "key_sha256", "decided_by", "decision_reason", "decided_at",
	"certificate_id", "failure_reason", "via", "via_ref", "created_at", "updated_at",
}

// scanDest are the scan targets of requestCols.
func (r *Request) scanDest() []any {
	return []any{
		strCol{&r.ID}, strCol{&r.State}, strCol{&r.Org}, jsonCol[StringList]{&r.Identities}, strCol{&r.CSRPEM},
		strCol{&r.KeyType}, intCol{&r.ValidityDays}, strCol{&r.Note}, strCol{&r.RequestedBy},
		strCol{&r.RequesterEmail}, optStr(&r.RenewalOf), strCol{&r.KeySHA256}, strCol{&r.DecidedBy},
		strCol{&r.DecisionReason}, optTime(&r.DecidedAt),
		optStr(&r.CertificateID), strCol{&r.FailureReason}, strCol{&r.Via}, strCol{&r.ViaRef},
		timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt},
	}
}

// values are r's values of requestCols, as gorm writes them.
func (r *Request) values() []any {
	return []any{
		r.ID, r.State, r.Org, jsonValue(r.Identities), r.CSRPEM, r.KeyType, r.ValidityDays, r.Note, r.RequestedBy,
		r.RequesterEmail, r.RenewalOf, r.KeySHA256, r.DecidedBy, r.DecisionReason, r.DecidedAt,
		r.CertificateID, r.FailureReason, r.Via, r.ViaRef, r.CreatedAt, r.UpdatedAt,
	}
}

// certificateCols are the columns of certificates.
var certificateCols = []string{
	"id", "serial", "request_id", "org", "identities", "key_type", "not_before", "not_after", "state",
	"precert_der", "der", "revoked_at", "revocation_reason", "revoked_by", "issuer_key_id", "crl_partition",
	"claimed_by", "lease_until", "created_at", "updated_at",
}

// scanDest are the scan targets of certificateCols.
func (c *Certificate) scanDest() []any {
	return []any{
		strCol{&c.ID}, strCol{&c.Serial}, strCol{&c.RequestID}, strCol{&c.Org}, jsonCol[StringList]{&c.Identities},
		strCol{&c.KeyType}, timeCol{&c.NotBefore}, timeCol{&c.NotAfter}, strCol{&c.State},
		bytesCol{&c.PrecertDER}, bytesCol{&c.DER}, optTime(&c.RevokedAt), optInt(&c.RevocationReason),
		strCol{&c.RevokedBy}, strCol{&c.IssuerKeyID}, intCol{&c.CRLPartition},
		strCol{&c.ClaimedBy}, optTime(&c.LeaseUntil), timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt},
	}
}

// values are c's values of certificateCols, as gorm writes them.
func (c *Certificate) values() []any {
	return []any{
		c.ID, c.Serial, c.RequestID, c.Org, jsonValue(c.Identities), c.KeyType, c.NotBefore, c.NotAfter, c.State,
		c.PrecertDER, c.DER, c.RevokedAt, c.RevocationReason, c.RevokedBy, c.IssuerKeyID, c.CRLPartition,
		c.ClaimedBy, c.LeaseUntil, c.CreatedAt, c.UpdatedAt,
	}
}

// apiTokenCols are the columns of api_tokens.
var apiTokenCols = []string{
	"id", "name", "subject", "role", "org", "hash", "parent_id", "expires_at", "revoked_at", "last_used_at", "created_at",
}

// scanDest are the scan targets of apiTokenCols.
func (t *APIToken) scanDest() []any {
	return []any{
		strCol{&t.ID}, strCol{&t.Name}, strCol{&t.Subject}, strCol{&t.Role}, strCol{&t.Org}, strCol{&t.Hash},
		optStr(&t.ParentID), timeCol{&t.ExpiresAt}, optTime(&t.RevokedAt), optTime(&t.LastUsedAt),
		timeCol{&t.CreatedAt},
	}
}

// organizationCols are the columns of organizations.
var organizationCols = []string{
	"id", "slug", "name", "uri_prefixes", "dns_suffixes", "email_domains", "max_validity_days",
	"auto_approve_renewals", "contact_emails", "expiry_notice_days", "created_at", "updated_at",
}

// scanDest are the scan targets of organizationCols.
func (o *Organization) scanDest() []any {
	return []any{
		uintCol{&o.ID}, strCol{&o.Slug}, strCol{&o.Name}, jsonCol[StringList]{&o.URIPrefixes},
		jsonCol[StringList]{&o.DNSSuffixes}, jsonCol[StringList]{&o.EmailDomains}, intCol{&o.MaxValidityDays},
		boolCol{&o.AutoApproveRenewals}, jsonCol[StringList]{&o.ContactEmails}, jsonCol[[]int]{&o.ExpiryNoticeDays},
		timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt},
	}
}

// auditEventCols are the columns of audit_events ("time" quoted: a
// keyword of PostgreSQL's).
var auditEventCols = []string{
	"seq", `"time"`, "actor", "role", "org", "action", "object_type", "object_id", "source", "detail", "prev_hash", "hash",
}

// values are e's values of auditEventCols, as gorm writes them.
func (e *AuditEvent) values() []any {
	return []any{
		e.Seq, e.Time, e.Actor, e.Role, e.Org, e.Action, e.ObjectType, e.ObjectID, e.Source, e.Detail, e.PrevHash, e.Hash,
	}
}

// columnList joins cols, each qualified with alias when it is not "".
func columnList(alias string, cols []string) string {
	if alias == "" {
		return strings.Join(cols, ", ")
	}
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = alias + "." + c
	}
	return strings.Join(q, ", ")
}

// placeholders is n ? placeholders, comma-separated, in parentheses.
func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// concat joins lists of scan targets or values.
func concat(lists ...[]any) []any {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]any, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
