package main

import (
	"testing"
)

func TestACMEBindings_API_ScopeVisibilityAndFourEyes(t *testing.T) {
	tp := startPortal(t, "sqlite")
	before, auditBefore := counts(t, tp.P.Store)
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"a name outside the organisation's namespace", map[string]any{"dns_names": []string{"*.globex.example"}}, 422},
		{"a URI identity", map[string]any{"dns_names": []string{"spiffe://example.org/partners/acme/x"}}, 422},
		{"no names", map[string]any{"dns_names": []string{}}, 422},
		{"a lifetime over a year", map[string]any{"dns_names": []string{"a.acme.example"}, "expires_days": 400}, 422},
		{"an unknown field", map[string]any{"dns_names": []string{"a.acme.example"}, "scope": "all"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) { tp.must(tc.want, "partner", "POST", "/api/v1/acme/bindings", tc.body) })
	}
	if after, auditAfter := counts(t, tp.P.Store); after != before || auditAfter != auditBefore {
		t.Fatalf("refused bindings changed the audit log (%d → %d events)", auditBefore, auditAfter)
	}

	b := tp.must(201, "admin", "POST", "/api/v1/acme/bindings", map[string]any{"org": "acme", "dns_names": []string{"*.ops.acme.example"}})
	id := b["id"].(string)
	tp.must(403, "admin", "POST", "/api/v1/acme/bindings/"+id+"/approve", nil) // nobody approves their own
	tp.must(403, "partner", "POST", "/api/v1/acme/bindings/"+id+"/approve", nil)
	tp.must(409, "admin", "POST", "/api/v1/acme/bindings/"+id+"/credentials", nil) // not approved yet
	tp.must(200, "admin2", "POST", "/api/v1/acme/bindings/"+id+"/approve", nil)
	tp.must(404, "admin2", "POST", "/api/v1/acme/bindings/"+id+"/credentials", nil) // only the requester
	cred := tp.must(200, "admin", "POST", "/api/v1/acme/bindings/"+id+"/credentials", nil)
	if cred["eab_kid"] != id || cred["eab_hmac_key"] == "" || cred["directory"] != tp.URL+"/acme/directory" {
		t.Fatalf("credentials: %v", cred)
	}

	tp.must(200, "partner", "GET", "/api/v1/acme/bindings/"+id, nil)
	tp.must(404, "other", "GET", "/api/v1/acme/bindings/"+id, nil)
	if l := tp.must(200, "other", "GET", "/api/v1/acme/bindings", nil); len(l["items"].([]any)) != 0 {
		t.Fatalf("another organisation sees %v", l["items"])
	}
	if l := tp.must(200, "auditor", "GET", "/api/v1/acme/bindings", nil); len(l["items"].([]any)) != 1 {
		t.Fatalf("the auditor sees %v", l["items"])
	}
	tp.must(404, "other", "DELETE", "/api/v1/acme/bindings/"+id, nil)
	tp.must(200, "partner", "DELETE", "/api/v1/acme/bindings/"+id, nil)
	tp.must(409, "partner", "POST", "/api/v1/acme/bindings/"+id+"/revoke", nil)
}
