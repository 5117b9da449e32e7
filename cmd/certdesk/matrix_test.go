package main

import (
	"fmt"
	"testing"
)

// TestRoleRouteMatrix sends every API route as nobody, as a partner of the
// organisation that owns the object, as a partner of another organisation,
// as an admin and as an auditor, and checks each answer against the table.
// A partner of another organisation must never see or act on acme's objects:
// those answer 404, so their existence is not revealed.
func TestRoleRouteMatrix(t *testing.T) {
	tp := startPortal(t, "sqlite")
	reqID, certID := tp.issue("matrix.acme.example")
	_, csr := newCSR(t, "new.acme.example")
	// A token of partner2, whom the matrix does not act as: only its owner
	// or an admin may revoke it.
	tokenID := tp.must(201, "partner2", "POST", "/api/v1/tokens", map[string]any{"name": "matrix"})["id"].(string)
	freshCert := func() string { _, id := tp.issue("revoke.acme.example"); return id }
	slug := 0
	newOrg := func() any {
		slug++
		return map[string]any{"slug": fmt.Sprintf("org%d", slug), "name": "New Org", "dns_suffixes": []string{"new.example"}}
	}
	orgBody := map[string]any{"name": "Acme Corp", "uri_prefixes": []string{"spiffe://example.org/partners/acme/"}, "dns_suffixes": []string{"acme.example"}, "email_domains": []string{"acme.example"}, "max_validity_days": 90}

	// who: "" nobody, partner (acme), other (globex), admin, auditor.
	type row struct {
		method, path string
		body         func() any
		pathFn       func() string
		want         [5]int // nobody, partner, other, admin, auditor
	}
	who := []string{"", "partner", "other", "admin", "auditor"}
	static := func(v any) func() any { return func() any { return v } }
	rows := []row{
		{"GET", "/api/v1/me", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"POST", "/api/v1/requests", static(map[string]any{"csr": csr, "org": "acme"}), nil, [5]int{401, 201, 422, 201, 403}},
		{"POST", "/api/v1/requests/preview", static(map[string]any{"csr": csr}), nil, [5]int{401, 200, 200, 400, 403}},
		{"GET", "/api/v1/requests", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"GET", "/api/v1/requests/" + reqID, nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"GET", "/api/v1/requests/" + reqID + "/events", nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"POST", "/api/v1/requests/" + reqID + "/approve", static(map[string]string{"reason": "x"}), nil, [5]int{401, 403, 403, 409, 403}},
		{"POST", "/api/v1/requests/" + reqID + "/reject", static(map[string]string{"reason": "x"}), nil, [5]int{401, 403, 403, 409, 403}},
		{"POST", "/api/v1/requests/" + reqID + "/cancel", nil, nil, [5]int{401, 409, 404, 409, 403}},
		{"GET", "/api/v1/requests/no-such-id", nil, nil, [5]int{401, 404, 404, 404, 404}},
		{"GET", "/api/v1/certificates", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"GET", "/api/v1/certificates/" + certID, nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"GET", "/api/v1/certificates/" + certID + "/pem", nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"GET", "/api/v1/certificates/" + certID + "/chain", nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"POST", "", static(map[string]string{"reason": "superseded"}), func() string { return "/api/v1/certificates/" + freshCert() + "/revoke" }, [5]int{401, 200, 404, 200, 403}},
		{"POST", "", static(map[string]string{"reason": "privilegeWithdrawn"}), func() string { return "/api/v1/certificates/" + freshCert() + "/revoke" }, [5]int{401, 403, 404, 200, 403}},
		{"GET", "/api/v1/orgs", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"GET", "/api/v1/orgs/acme", nil, nil, [5]int{401, 200, 404, 200, 200}},
		{"POST", "/api/v1/orgs", newOrg, nil, [5]int{401, 403, 403, 201, 403}},
		{"PUT", "/api/v1/orgs/acme", static(orgBody), nil, [5]int{401, 403, 403, 200, 403}},
		{"GET", "/api/v1/orgs/acme/members", nil, nil, [5]int{401, 403, 403, 200, 403}},
		{"POST", "/api/v1/orgs/acme/members", static(map[string]string{"subject": "newbie"}), nil, [5]int{401, 403, 403, 201, 403}},
		{"DELETE", "", nil, func() string {
			tp.must(201, "admin", "POST", "/api/v1/orgs/acme/members", map[string]string{"subject": "leaver"})
			return "/api/v1/orgs/acme/members/leaver"
		}, [5]int{401, 403, 403, 204, 403}},
		{"DELETE", "/api/v1/orgs/acme/members/not-a-member", nil, nil, [5]int{401, 403, 403, 404, 403}},
		{"GET", "/api/v1/users", nil, nil, [5]int{401, 403, 403, 200, 403}},
		{"GET", "/api/v1/users?unassigned=true", nil, nil, [5]int{401, 403, 403, 200, 403}},
		{"GET", "/api/v1/orgs/acme/invitations", nil, nil, [5]int{401, 403, 403, 200, 403}},
		{"POST", "", func() any { slug++; return map[string]string{"email": fmt.Sprintf("new%d@acme.example", slug)} },
			func() string { return "/api/v1/orgs/acme/invitations" }, [5]int{401, 403, 403, 201, 403}},
		{"DELETE", "", nil, func() string {
			slug++
			id := tp.must(201, "admin", "POST", "/api/v1/orgs/acme/invitations", map[string]string{"email": fmt.Sprintf("gone%d@acme.example", slug)})["id"].(string)
			return "/api/v1/orgs/acme/invitations/" + id
		}, [5]int{401, 403, 403, 204, 403}},
		{"GET", "/api/v1/tokens", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"POST", "/api/v1/tokens", static(map[string]any{"name": "t", "ttl_days": 1}), nil, [5]int{401, 201, 201, 201, 201}},
		{"DELETE", "/api/v1/tokens/" + tokenID, nil, nil, [5]int{401, 404, 404, 204, 404}},
		{"GET", "/api/v1/audit/events", nil, nil, [5]int{401, 403, 403, 200, 200}},
		{"GET", "/api/v1/audit/export?format=json", nil, nil, [5]int{401, 403, 403, 200, 200}},
		{"GET", "/api/v1/audit/verify", nil, nil, [5]int{401, 403, 403, 200, 200}},
		{"GET", "/api/v1/stats", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"GET", "/api/v1/revocation", nil, nil, [5]int{401, 200, 200, 200, 200}},
		{"GET", "/crl/issuing.crl", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/crl/bundle.pem", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/api/v1/openapi.json", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/api/v1/no-such-route", nil, nil, [5]int{404, 404, 404, 404, 404}},
		{"GET", "/ca/bundle.pem", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/ca/issuing.der", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/healthz", nil, nil, [5]int{200, 200, 200, 200, 200}},
		{"GET", "/readyz", nil, nil, [5]int{200, 200, 200, 200, 200}},
	}
	for _, r := range rows {
		for i, w := range who {
			path := r.path
			if r.pathFn != nil {
				path = r.pathFn()
			}
			var body any
			if r.body != nil {
				body = r.body()
			}
			name := w
			if name == "" {
				name = "nobody"
			}
			got := tp.do(w, r.method, path, body)
			if got.Status != r.want[i] {
				t.Errorf("%s %s as %s: %d, want %d (%s)", r.method, path, name, got.Status, r.want[i], got.Body)
			}
		}
	}
}
