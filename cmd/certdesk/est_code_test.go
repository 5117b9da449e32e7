package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

func TestEST_OneTimeCode_EnrolsOnceInsideTheBinding_RefusedWhenUsedOrExpired(t *testing.T) {
	sp := startServedPortal(t, "sqlite")
	dir := sp.Dir
	est := sp.URL + "/.well-known/est"
	id, _, _ := sp.approvedBinding("partner", "*.dev.acme.example")
	pending := sp.must(201, "partner", "POST", "/api/v1/acme/bindings", map[string]any{"dns_names": []string{"x.acme.example"}})

	for _, tc := range []struct {
		name, who, binding string
		body               map[string]any
		want               int
	}{
		{"another organisation's binding", "other", id, nil, 404},
		{"an auditor", "auditor", id, nil, 403},
		{"a binding not approved", "partner", pending["id"].(string), nil, 409},
		{"a lifetime over a week", "partner", id, map[string]any{"expires_hours": 169}, 422},
		{"an unknown field", "partner", id, map[string]any{"uses": 2}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp.must(tc.want, tc.who, "POST", "/api/v1/acme/bindings/"+tc.binding+"/est-codes", tc.body)
		})
	}

	made := sp.must(201, "partner", "POST", "/api/v1/acme/bindings/"+id+"/est-codes", nil)
	code := made["code"].(string)
	if made["username"] != "code" || made["simpleenroll"] != est+"/simpleenroll" || len(code) != 32 {
		t.Fatalf("made: %v", made)
	}
	if exp, _ := time.Parse(time.RFC3339, made["expires_at"].(string)); exp.Sub(time.Now()) < 23*time.Hour || exp.Sub(time.Now()) > 25*time.Hour {
		t.Fatalf("a code's default lifetime ends at %v, want in 24 h", exp)
	}
	curl := "curl -sS --cacert " + sp.ServerCAFile
	status := func(csr, code string) string {
		return mustSh(t, dir, fmt.Sprintf(`%s -o /dev/null -w '%%{http_code}' --user code:%s -H 'Content-Type: application/pkcs10' --data-binary @%s %s/simpleenroll`, curl, code, csr, est))
	}

	// A CSR outside the binding is refused and leaves the code unspent.
	newKeyAndCSR(t, dir, "outside", "dev.globex.example")
	if got := status("outside.csr.b64", code); got != "422" {
		t.Fatalf("a CSR outside the binding: HTTP %s, want 422", got)
	}
	newKeyAndCSR(t, dir, "dev", "device1.dev.acme.example")
	mustSh(t, dir, fmt.Sprintf(`%s --fail-with-body --user code:%s -H 'Content-Type: application/pkcs10' --data-binary @dev.csr.b64 %s/simpleenroll | base64 -d > dev.p7
openssl pkcs7 -inform DER -in dev.p7 -print_certs -out dev.chain.pem
openssl x509 -in dev.chain.pem -out dev.pem`, curl, code, est))
	if err := sp.opensslVerifyClient(filepath.Join(dir, "dev.pem")); err != nil {
		t.Fatal(err)
	}
	cert := sp.storedCert(t, filepath.Join(dir, "dev.pem"))
	r := sp.must(200, "partner", "GET", "/api/v1/requests/"+cert.RequestID, nil)
	if r["via"] != models.ViaEST || r["via_ref"] != "binding/"+id || !strings.Contains(r["decision_reason"].(string), "one-time enrolment code") {
		t.Fatalf("the request of a code's enrolment: %v", r)
	}
	if got := status("dev.csr.b64", code); got != "401" {
		t.Fatalf("the code used a second time: HTTP %s, want 401", got)
	}

	late := sp.must(201, "admin", "POST", "/api/v1/acme/bindings/"+id+"/est-codes", map[string]any{"expires_hours": 1})["code"].(string)
	if err := sp.Store.DB().Model(&models.ESTCode{}).Where("used_at IS NULL").Update("expires_at", time.Now().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if got := status("dev.csr.b64", late); got != "401" {
		t.Fatalf("an expired code: HTTP %s, want 401", got)
	}
	if got := status("dev.csr.b64", strings.Repeat("A", 32)); got != "401" {
		t.Fatalf("a code never made: HTTP %s, want 401", got)
	}

	revoked := sp.must(201, "partner", "POST", "/api/v1/acme/bindings/"+id+"/est-codes", nil)["code"].(string)
	sp.must(200, "partner", "POST", "/api/v1/acme/bindings/"+id+"/revoke", nil)
	if got := status("dev.csr.b64", revoked); got != "401" {
		t.Fatalf("a code of a revoked binding: HTTP %s, want 401", got)
	}
	sp.must(409, "partner", "POST", "/api/v1/acme/bindings/"+id+"/est-codes", nil)
}
