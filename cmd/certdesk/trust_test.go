package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"
)

// eachDriver runs fn against a fresh portal on SQLite and on PostgreSQL.
func eachDriver(t *testing.T, fn func(t *testing.T, tp *testPortal)) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) { fn(t, startPortal(t, driver)) })
	}
}

// allowAutoRenewal switches auto-approval of renewals on for acme as admin.
func allowAutoRenewal(tp *testPortal) {
	org := tp.must(200, "admin", "GET", "/api/v1/orgs/acme", nil)
	org["auto_approve_renewals"] = true
	delete(org, "created_at")
	delete(org, "updated_at")
	tp.must(200, "admin", "PUT", "/api/v1/orgs/acme", org)
}

func items(m map[string]any) []any {
	l, _ := m["items"].([]any)
	return l
}

func TestRenewal_AutoApprovalOnlyForAPartnersSameIdentityRenewalOfAValidCertificate(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		_, certID := tp.issue("svc.acme.example", "api.acme.example")
		allowAutoRenewal(tp)
		evs := tp.must(200, "auditor", "GET", "/api/v1/audit/events?action=org.auto_approve_renewals", nil)
		if len(items(evs)) != 1 {
			t.Fatalf("switching auto-approval on: %d audit events, want 1", len(items(evs)))
		}

		// An admin alone: the renewal waits in the queue and the admin cannot approve it.
		_, adminCSR := newCSR(t, "svc.acme.example", "api.acme.example")
		r := tp.must(201, "admin", "POST", "/api/v1/requests", map[string]any{"csr": adminCSR, "org": "acme", "renewal_of": certID})
		if r["state"] != "submitted" {
			t.Fatalf("an admin's renewal was %v, want submitted", r["state"])
		}
		tp.must(403, "admin", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "mine"})

		// A partner renewing only some of the identities: the queue too.
		_, fewer := newCSR(t, "svc.acme.example")
		r = tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": fewer, "renewal_of": certID})
		if r["state"] != "submitted" {
			t.Fatalf("a renewal with fewer identities was %v, want submitted", r["state"])
		}

		// A partner renewing with exactly the same identities: issued at once.
		_, same := newCSR(t, "api.acme.example", "svc.acme.example")
		r = tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": same, "renewal_of": certID})
		if r["state"] != "issued" {
			t.Fatalf("a partner's renewal with the same identities was %v, want issued", r["state"])
		}

		// A token a partner made (from their token) is the partner too.
		child := tp.must(201, "partner", "POST", "/api/v1/tokens", map[string]any{"name": "ci"})
		tp.Tokens["partner-ci"] = child["token"].(string)
		_, again := newCSR(t, "api.acme.example", "svc.acme.example")
		r = tp.must(201, "partner-ci", "POST", "/api/v1/requests", map[string]any{"csr": again, "renewal_of": certID})
		if r["state"] != "issued" {
			t.Fatalf("a renewal by a partner's token was %v, want issued", r["state"])
		}
	})
}

func TestRenewal_RevokedOrExpiredCertificate_Refused(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		allowAutoRenewal(tp)
		_, revoked := tp.issue("gone.acme.example")
		tp.must(200, "partner", "POST", "/api/v1/certificates/"+revoked+"/revoke", map[string]string{"reason": "superseded"})
		_, csr := newCSR(t, "gone.acme.example")
		before, _ := counts(t, tp.P.Store)
		bad := tp.must(422, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "renewal_of": revoked})
		if bad["rule"] != "renewal" || !strings.Contains(fmt.Sprint(bad["detail"]), "revoked") {
			t.Fatalf("renewal of a revoked certificate: %v", bad)
		}

		_, expired := tp.issue("old.acme.example")
		if err := tp.P.Store.DB().Exec("UPDATE certificates SET not_after = ? WHERE id = ?", time.Now().Add(-time.Hour), expired).Error; err != nil {
			t.Fatal(err)
		}
		_, csr = newCSR(t, "old.acme.example")
		bad = tp.must(422, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "renewal_of": expired})
		if bad["rule"] != "renewal" || !strings.Contains(fmt.Sprint(bad["detail"]), "expired") {
			t.Fatalf("renewal of an expired certificate: %v", bad)
		}
		after, _ := counts(t, tp.P.Store)
		if after != before+1 { // the one request of tp.issue
			t.Fatalf("refused renewals recorded requests: %d before, %d after", before, after)
		}
	})
}

func TestBlockedKey_KeyCompromiseRevocationBlocksTheKeyEverywhere(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		allowAutoRenewal(tp)
		key, _ := newCSR(t)
		csr := string(csrPEM(t, key, "csr", "leak.acme.example"))
		r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr})
		a := tp.must(200, "admin", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "ok"})
		certID := a["certificate_id"].(string)
		tp.must(200, "partner", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "keyCompromise"})

		for _, tc := range []struct {
			name, who string
			body      map[string]any
		}{
			{"a fresh request of the organisation", "partner", map[string]any{"csr": string(csrPEM(t, key, "csr", "new.acme.example"))}},
			{"a request of another organisation", "other", map[string]any{"csr": string(csrPEM(t, key, "csr", "new.globex.example"))}},
		} {
			bad := tp.must(422, tc.who, "POST", "/api/v1/requests", tc.body)
			if bad["rule"] != "blocked-key" {
				t.Fatalf("%s with the compromised key: %v", tc.name, bad)
			}
		}
		list := tp.must(200, "admin", "GET", "/api/v1/blocked-keys", nil)
		if len(items(list)) != 1 || items(list)[0].(map[string]any)["source"] != "revocation" {
			t.Fatalf("blocked keys after a keyCompromise revocation: %v", list)
		}
	})
}

func TestBlockedKey_AdminBlocksAReportedKey(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		key, _ := newCSR(t)
		spki, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
		tp.must(403, "partner", "POST", "/api/v1/blocked-keys", map[string]any{"pem": pubPEM})
		tp.must(403, "partner", "GET", "/api/v1/blocked-keys", nil)
		tp.must(400, "admin", "POST", "/api/v1/blocked-keys", map[string]any{"pem": "not pem"})
		k := tp.must(201, "admin", "POST", "/api/v1/blocked-keys", map[string]any{"pem": pubPEM, "reason": "found on a paste site"})
		if k["source"] != "admin" || k["key_type"] != "ECDSA P-256" {
			t.Fatalf("blocked key: %v", k)
		}
		tp.must(409, "admin", "POST", "/api/v1/blocked-keys", map[string]any{"pem": pubPEM})
		evs := tp.must(200, "auditor", "GET", "/api/v1/audit/events?action=key.block", nil)
		if len(items(evs)) != 1 {
			t.Fatalf("key.block events: %v", evs)
		}
		bad := tp.must(422, "partner", "POST", "/api/v1/requests", map[string]any{"csr": string(csrPEM(t, key, "csr", "x.acme.example"))})
		if bad["rule"] != "blocked-key" {
			t.Fatalf("CSR with an admin-blocked key: %v", bad)
		}
	})
}

func TestKeyOwner_OneKeyOneOrganisation(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		key, _ := newCSR(t)
		tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": string(csrPEM(t, key, "csr", "a.acme.example"))})
		// The same organisation may use its key again.
		tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": string(csrPEM(t, key, "csr", "b.acme.example"))})
		bad := tp.must(422, "other", "POST", "/api/v1/requests", map[string]any{"csr": string(csrPEM(t, key, "csr", "a.globex.example"))})
		if bad["rule"] != "key-owner" {
			t.Fatalf("a key of acme submitted for globex: %v", bad)
		}
		if d := fmt.Sprint(bad["detail"]); strings.Contains(d, "acme") || strings.Contains(d, "Acme") {
			t.Fatalf("the refusal tells a partner of globex about acme: %s", d)
		}
		bad = tp.must(422, "admin", "POST", "/api/v1/requests", map[string]any{"org": "globex", "csr": string(csrPEM(t, key, "csr", "a.globex.example"))})
		if bad["rule"] != "key-owner" || !strings.Contains(fmt.Sprint(bad["detail"]), "acme") {
			t.Fatalf("an admin's refusal should name the organisation: %v", bad)
		}
	})
}

func TestOrgs_OverlappingNamespaces_Refused(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		tp.must(201, "admin", "POST", "/api/v1/orgs", map[string]any{"slug": "zeta", "name": "Zeta", "dns_suffixes": []string{"svc.zeta.test"}})
		for _, tc := range []struct {
			name string
			org  map[string]any
		}{
			{"acme's exact URI prefix", map[string]any{"slug": "dup", "name": "Dup", "uri_prefixes": []string{"spiffe://example.org/partners/acme/"}}},
			{"a prefix covering every organisation", map[string]any{"slug": "all", "name": "All", "uri_prefixes": []string{"spiffe://example.org/"}}},
			{"a prefix inside acme's", map[string]any{"slug": "sub", "name": "Sub", "uri_prefixes": []string{"spiffe://example.org/partners/acme/team"}}},
			{"acme's DNS suffix", map[string]any{"slug": "dns", "name": "DNS", "dns_suffixes": []string{"acme.example"}}},
			{"a parent of zeta's DNS suffix", map[string]any{"slug": "par", "name": "Parent", "dns_suffixes": []string{"zeta.test"}}},
			{"a child of acme's DNS suffix", map[string]any{"slug": "kid", "name": "Kid", "dns_suffixes": []string{"eu.acme.example"}}},
		} {
			bad := tp.do("admin", "POST", "/api/v1/orgs", tc.org)
			if bad.Status != 409 || !strings.Contains(string(bad.Body), "overlaps organisation") {
				t.Fatalf("%s: %d %s", tc.name, bad.Status, bad.Body)
			}
		}
		// Segment boundaries: acme-eu is not inside acme.
		tp.must(201, "admin", "POST", "/api/v1/orgs", map[string]any{"slug": "acme-eu", "name": "Acme EU",
			"uri_prefixes": []string{"spiffe://example.org/partners/acme-eu/"}, "dns_suffixes": []string{"acme-eu.example"}})
		// An update cannot move into another's namespace either.
		org := tp.must(200, "admin", "GET", "/api/v1/orgs/globex", nil)
		org["uri_prefixes"] = []string{"spiffe://example.org/partners/acme/"}
		delete(org, "created_at")
		delete(org, "updated_at")
		bad := tp.do("admin", "PUT", "/api/v1/orgs/globex", org)
		if bad.Status != 409 || !strings.Contains(string(bad.Body), "acme") {
			t.Fatalf("update into acme's namespace: %d %s", bad.Status, bad.Body)
		}
	})
}

func TestIdentities_NonCanonicalSPIFFEIDs_Refused(t *testing.T) {
	tp := startPortal(t, "sqlite")
	for _, id := range []string{
		"spiffe://example.org/partners/acme/a%2Fb",
		"spiffe://example.org/partners/acme/%61pi",
		"spiffe://example.org/partners/acme//api",
		"spiffe://example.org:8443/partners/acme/api",
		"spiffe://example.org/partners/acme/api?x=1",
	} {
		_, csr := newCSR(t, "csr.acme.example")
		bad := tp.must(422, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "identities": []string{id}})
		if bad["rule"] != "identity-syntax" {
			t.Fatalf("%s: %v", id, bad)
		}
	}
}

func TestTokens_MadeByATokenNeverOutliveItAndDieWithIt(t *testing.T) {
	eachDriver(t, func(t *testing.T, tp *testPortal) {
		// The seeded partner token lives an hour; ask for a year.
		child := tp.must(201, "partner", "POST", "/api/v1/tokens", map[string]any{"name": "child", "ttl_days": 365})
		exp, err := time.Parse(time.RFC3339, child["expires_at"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if exp.After(time.Now().Add(time.Hour)) || child["parent_id"] == nil {
			t.Fatalf("child token expires %v with parent %v; want capped at the parent's hour", exp, child["parent_id"])
		}
		tp.Tokens["child"] = child["token"].(string)
		grand := tp.must(201, "child", "POST", "/api/v1/tokens", map[string]any{"name": "grandchild"})
		tp.Tokens["grandchild"] = grand["token"].(string)
		tp.must(200, "grandchild", "GET", "/api/v1/me", nil)

		// Admins see and revoke anyone's tokens; partners may not list all.
		tp.must(403, "partner", "GET", "/api/v1/tokens?all=true", nil)
		all := tp.must(200, "admin", "GET", "/api/v1/tokens?all=true", nil)
		var parentID string
		for _, it := range items(all) {
			m := it.(map[string]any)
			if m["id"] == child["id"] {
				parentID = m["parent_id"].(string)
			}
		}
		if parentID == "" {
			t.Fatalf("admin's list of all tokens lacks the partner's child token: %v", all)
		}
		tp.must(204, "admin", "DELETE", "/api/v1/tokens/"+parentID, nil)
		for _, who := range []string{"partner", "child", "grandchild"} {
			if r := tp.do(who, "GET", "/api/v1/me", nil); r.Status != 401 {
				t.Fatalf("%s after the parent was revoked: %d", who, r.Status)
			}
		}
		evs := tp.must(200, "auditor", "GET", "/api/v1/audit/events?action=token.revoke", nil)
		if len(items(evs)) != 1 {
			t.Fatalf("token.revoke events: %v", evs)
		}
	})
}

func TestHTTP_APIAnswersNoStore_AssetsNotListed(t *testing.T) {
	tp := startPortal(t, "sqlite")
	r := tp.do("partner", "GET", "/api/v1/certificates", nil)
	if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /api/v1/certificates: %d, Cache-Control %q", r.Status, r.Header.Get("Cache-Control"))
	}
	if r := tp.do("", "GET", "/assets/", nil); r.Status != 404 {
		t.Fatalf("GET /assets/: %d, want 404", r.Status)
	}
}
