package models

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestEvents_EncodeLikeTheMapLiteralsTheyReplace compares each typed event
// with the map literal the store built for that kind before events were
// typed, filled with the same values: json.Marshal of both must give the
// same bytes (struct fields are declared in sorted key order, the order
// encoding/json gives map keys), and so must the stored canonical detail.
func TestEvents_EncodeLikeTheMapLiteralsTheyReplace(t *testing.T) {
	renewal := "6f1c9b1e-2d7a-4c1b-9a55-0d2f0d0e7a10"
	ids := StringList{"spiffe://example.org/partners/acme/billing", "<b>&"}
	acme := &Organization{Slug: "acme", Name: "Acme <Ltd>", URIPrefixes: StringList{"spiffe://example.org/"}, DNSSuffixes: StringList{},
		MaxValidityDays: 90, AutoApproveRenewals: true, ContactEmails: StringList{"pki@acme.example"}, ExpiryNoticeDays: []int{30, 7}}
	bare := &Organization{Slug: "globex", Name: "Globex"} // nil lists encode as null in both
	oldOrg := func(o *Organization) map[string]any {
		return map[string]any{
			"slug": o.Slug, "name": o.Name,
			"uri_prefixes": o.URIPrefixes, "dns_suffixes": o.DNSSuffixes, "email_domains": o.EmailDomains,
			"max_validity_days": o.MaxValidityDays, "auto_approve_renewals": o.AutoApproveRenewals,
			"contact_emails": o.ContactEmails, "expiry_notice_days": o.ExpiryNoticeDays,
		}
	}
	cases := []struct {
		name string
		old  map[string]any
		ev   Event
	}{
		{"request.submit", map[string]any{"identities": ids, "validity_days": 30, "key_type": "ECDSA P-256", "requested_by": "carol"},
			RequestSubmitEvent{Identities: ids, KeyType: "ECDSA P-256", RequestedBy: "carol", ValidityDays: 30}},
		{"request.submit renewal", map[string]any{"identities": ids, "validity_days": 30, "key_type": "", "requested_by": "carol", "renewal_of": renewal},
			RequestSubmitEvent{Identities: ids, RenewalOf: &renewal, RequestedBy: "carol", ValidityDays: 30}},
		{"request.approve", map[string]any{"from": StateSubmitted, "to": StateApproved, "reason": ""},
			RequestApproveEvent{From: StateSubmitted, To: StateApproved}},
		{"request.auto_approve", map[string]any{"from": StateSubmitted, "to": StateApproved, "reason": "policy"},
			RequestAutoApproveEvent{From: StateSubmitted, Reason: "policy", To: StateApproved}},
		{"request.reject", map[string]any{"from": StateSubmitted, "to": StateRejected, "reason": "wrong <key>"},
			RequestRejectEvent{From: StateSubmitted, Reason: "wrong <key>", To: StateRejected}},
		{"request.cancel", map[string]any{"from": StateSubmitted, "to": StateCancelled},
			RequestCancelEvent{From: StateSubmitted, To: StateCancelled}},
		{"certificate.reserve", map[string]any{"serial": "0a1b", "request_id": "r1", "identities": StringList(nil),
			"not_before": "2026-03-01T12:00:00Z", "not_after": "2026-03-31T12:00:00Z"},
			CertificateReserveEvent{NotAfter: "2026-03-31T12:00:00Z", NotBefore: "2026-03-01T12:00:00Z", RequestID: "r1", Serial: "0a1b"}},
		{"certificate.issue", map[string]any{"serial": "0a1b", "request_id": "r1", "not_after": "2026-03-31T12:00:00Z", "sha256": "ff"},
			CertificateIssueEvent{NotAfter: "2026-03-31T12:00:00Z", RequestID: "r1", Serial: "0a1b", SHA256: "ff"}},
		{"certificate.fail", map[string]any{"serial": "0a1b", "request_id": "r1", "reason": ""},
			CertificateFailEvent{RequestID: "r1", Serial: "0a1b"}},
		{"certificate.revoke", map[string]any{"serial": "0a1b", "reason": 0, "reason_name": "unspecified"},
			CertificateRevokeEvent{ReasonName: "unspecified", Serial: "0a1b"}},
		{"certificate.expiry_notice", map[string]any{"serial": "0a1b", "threshold_days": 7, "notifications": 0},
			CertificateExpiryNoticeEvent{Serial: "0a1b", ThresholdDays: 7}},
		{"crl.publish", map[string]any{"issuer": "issuing", "key_id": "", "number": int64(1) << 40, "entries": 0,
			"this_update": "2026-03-01T12:00:00Z", "next_update": "2026-03-02T12:00:00Z", "sha256": "ee"},
			CRLPublishEvent{Issuer: "issuing", NextUpdate: "2026-03-02T12:00:00Z", Number: 1 << 40, SHA256: "ee", ThisUpdate: "2026-03-01T12:00:00Z"}},
		{"crl.prune", map[string]any{"issuer": "issuing/7", "key_id": "k", "kept": 3, "rows": int64(2), "from_number": int64(4), "to_number": int64(9)},
			CRLPruneEvent{FromNumber: 4, Issuer: "issuing/7", Kept: 3, KeyID: "k", Rows: 2, ToNumber: 9}},
		{"ocsp_responder.create", map[string]any{"issuer": "issuing", "key_id": "k", "key_label": "ocsp", "not_after": "2026-03-08T12:00:00Z"},
			OCSPResponderCreateEvent{Issuer: "issuing", KeyID: "k", KeyLabel: "ocsp", NotAfter: "2026-03-08T12:00:00Z"}},
		{"token.create", map[string]any{"name": "ci", "subject": "carol", "role": RolePartner, "org": "", "expires_at": "2026-03-01T13:00:00Z"},
			TokenCreateEvent{ExpiresAt: "2026-03-01T13:00:00Z", Name: "ci", Role: RolePartner, Subject: "carol"}},
		{"token.revoke", map[string]any{"name": "", "subject": "carol"}, TokenRevokeEvent{Subject: "carol"}},
		{"membership.set", map[string]any{"subject": "dave", "org": "", "previous_org": "acme"},
			MembershipSetEvent{PreviousOrg: "acme", Subject: "dave"}},
		{"org.create", oldOrg(acme), OrgCreateEvent(snapshotOrg(acme))},
		{"org.create with nil lists", oldOrg(bare), OrgCreateEvent(snapshotOrg(bare))},
		{"org.update", map[string]any{"before": oldOrg(bare), "after": oldOrg(acme)},
			OrgUpdateEvent{After: snapshotOrg(acme), Before: snapshotOrg(bare)}},
		{"audit.checkpoint", map[string]any{"seq": int64(17), "hash": "aa", "key_id": "bb", "signed_at": "2026-03-01T12:00:00.123456Z"},
			AuditCheckpointEvent{Hash: "aa", KeyID: "bb", Seq: 17, SignedAt: "2026-03-01T12:00:00.123456Z"}},
		{"auth.login", map[string]any{"name": "Carol <C>", "email": "", "method": "oidc"},
			AuthLoginEvent{Method: "oidc", Name: "Carol <C>"}},
		{"auth.login_failed", map[string]any{"why": "bad_state"}, AuthLoginFailedEvent{Why: "bad_state"}},
		{"auth.login_failed with provider error", map[string]any{"error": "access_denied", "why": "provider_error"},
			AuthLoginFailedEvent{Error: "access_denied", Why: "provider_error"}},
		{"auth.login_failed with subject", map[string]any{"why": "bad_nonce", "subject": "eve"},
			AuthLoginFailedEvent{Subject: "eve", Why: "bad_nonce"}},
		{"auth.login_denied", map[string]any{"why": "no_role", "claim": "groups", "values": []string{"a", "b"}},
			AuthLoginDeniedEvent{Claim: "groups", Values: []string{"a", "b"}, Why: "no_role"}},
		{"auth.login_denied without values", map[string]any{"why": "no_org", "claim": "", "values": []string(nil)},
			AuthLoginDeniedEvent{Why: "no_org"}},
		{"variable", map[string]any{"i": 3, "a": "<b>"}, VariableEvent{Kind: "config.change", Fields: map[string]any{"i": 3, "a": "<b>"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := json.Marshal(c.old)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("json.Marshal(%T) =\n %s\nthe map gave\n %s", c.ev, got, want)
			}
			wantStored, err := canonicalDetail(VariableEvent{Kind: "x", Fields: c.old})
			if err != nil {
				t.Fatal(err)
			}
			gotStored, err := canonicalDetail(c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if gotStored != wantStored {
				t.Errorf("stored detail of %T = %s, the map's = %s", c.ev, gotStored, wantStored)
			}
		})
	}
	// The logout event had a nil detail.
	if got, _ := canonicalDetail(AuthLogoutEvent{}); got != "{}" {
		t.Errorf("stored detail of auth.logout = %s, want {}", got)
	}
}
