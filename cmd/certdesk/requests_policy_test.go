package main

import "testing"

// TestRequestGet_SubmittedCarriesThePolicyVerdict: the admin deciding a
// request sees the server's current verdict on it; a decided request does
// not carry one.
func TestRequestGet_SubmittedCarriesThePolicyVerdict(t *testing.T) {
	tp := startPortal(t, "sqlite")
	names := []string{"spiffe://example.org/partners/acme/verdict"}
	_, csr := newCSR(t, names...)
	id := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "identities": names, "validity_days": 30})["id"].(string)
	r := tp.must(200, "admin", "GET", "/api/v1/requests/"+id, nil)
	policy, ok := r["policy"].(map[string]any)
	if !ok || policy["ok"] != true || len(policy["problems"].([]any)) != 0 {
		t.Fatalf("submitted request's policy: %v", r["policy"])
	}
	if r["id"] != id || r["state"] != "submitted" {
		t.Fatalf("the request's own fields are missing beside the verdict: %v", r)
	}
	tp.must(200, "admin", "POST", "/api/v1/requests/"+id+"/approve", map[string]string{"reason": "ok"})
	if r := tp.must(200, "admin", "GET", "/api/v1/requests/"+id, nil); r["policy"] != nil {
		t.Fatalf("an issued request carries a verdict: %v", r["policy"])
	}
}
