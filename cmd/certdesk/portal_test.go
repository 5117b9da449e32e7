package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/audit"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

var drivers = []string{"sqlite", "postgres"}

func TestWorkflow_OverHTTP_SubmitApproveIssueDownload(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			names := []string{"spiffe://example.org/partners/acme/billing", "billing.acme.example"}
			_, csr := newCSR(t, names...)

			r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "identities": names, "validity_days": 30, "note": "billing service"})
			id := r["id"].(string)
			if r["state"] != "submitted" || r["org"] != "acme" || r["requested_by"] != "pat" {
				t.Fatalf("submitted request: %v", r)
			}
			// Visible to its organisation, not to another.
			tp.must(200, "partner2", "GET", "/api/v1/requests/"+id, nil)
			tp.must(404, "other", "GET", "/api/v1/requests/"+id, nil)
			list := tp.must(200, "other", "GET", "/api/v1/requests", nil)
			if n := len(list["items"].([]any)); n != 0 {
				t.Fatalf("globex partner sees %d acme requests", n)
			}
			// Partners cannot approve; an admin can.
			tp.must(403, "partner2", "POST", "/api/v1/requests/"+id+"/approve", map[string]string{"reason": "me"})
			a := tp.must(200, "admin", "POST", "/api/v1/requests/"+id+"/approve", map[string]string{"reason": "known partner"})
			if a["state"] != "issued" || a["certificate_id"] == nil {
				t.Fatalf("approved request: %v", a)
			}
			certID := a["certificate_id"].(string)
			c := tp.must(200, "partner", "GET", "/api/v1/certificates/"+certID, nil)
			if c["state"] != "valid" || c["org"] != "acme" {
				t.Fatalf("certificate: %v", c)
			}
			tp.must(404, "other", "GET", "/api/v1/certificates/"+certID, nil)

			// The downloaded certificate verifies against the published bundle
			// for client authentication and carries exactly the approved names.
			leafPEM := tp.do("partner", "GET", "/api/v1/certificates/"+certID+"/pem", nil)
			chain := tp.do("partner", "GET", "/api/v1/certificates/"+certID+"/chain", nil)
			bundle := tp.do("", "GET", "/ca/bundle.pem", nil)
			if leafPEM.Status != 200 || chain.Status != 200 || bundle.Status != 200 {
				t.Fatalf("downloads: %d %d %d", leafPEM.Status, chain.Status, bundle.Status)
			}
			leaf := parsePEMCerts(t, leafPEM.Body)[0]
			// The API shows the serial as openssl and nginx's $ssl_client_serial
			// print it, so that a gateway log line finds the certificate.
			if want := opensslSerial(t, leafPEM.Body); c["serial"] != want {
				t.Errorf("API serial %v, openssl x509 -serial prints %s", c["serial"], want)
			}
			// A serial copied from openssl -text (lower case, colons) finds it.
			byText := tp.must(200, "partner", "GET", "/api/v1/certificates?serial="+colonLower(c["serial"].(string)), nil)
			if items := byText["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != certID {
				t.Errorf("certificates?serial= found %v, want %s", items, certID)
			}
			if other := tp.must(200, "other", "GET", "/api/v1/certificates?serial="+c["serial"].(string), nil); len(other["items"].([]any)) != 0 {
				t.Errorf("globex finds acme's certificate by serial: %v", other["items"])
			}
			if junk := tp.do("partner", "GET", "/api/v1/certificates?serial=08G1", nil); junk.Status != 400 || !strings.Contains(string(junk.Body), "only hex digits") {
				t.Errorf("certificates?serial=08G1: HTTP %d %s, want 400 saying what is wrong", junk.Status, junk.Body)
			}
			if got := parsePEMCerts(t, chain.Body); len(got) != 2 || !got[0].Equal(leaf) {
				t.Fatalf("chain has %d certificates", len(got))
			}
			roots, inter := x509.NewCertPool(), x509.NewCertPool()
			bc := parsePEMCerts(t, bundle.Body)
			inter.AddCert(bc[0])
			roots.AddCert(bc[1])
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != names[0] || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != names[1] {
				t.Fatalf("SANs %v %v", leaf.URIs, leaf.DNSNames)
			}
			if leaf.NotAfter.Sub(leaf.NotBefore) > 30*24*time.Hour {
				t.Fatalf("validity %v exceeds the 30 days asked for", leaf.NotAfter.Sub(leaf.NotBefore))
			}

			// The history: every step is an audit event, and the chain verifies.
			ev := tp.must(200, "partner", "GET", "/api/v1/requests/"+id+"/events", nil)
			var actions []string
			for _, e := range ev["items"].([]any) {
				actions = append(actions, e.(map[string]any)["action"].(string))
			}
			for _, want := range []string{"request.submit", "request.approve", "certificate.reserve", "certificate.issue"} {
				if !strings.Contains(strings.Join(actions, " "), want) {
					t.Errorf("history %v lacks %s", actions, want)
				}
			}
			if v := tp.must(200, "auditor", "GET", "/api/v1/audit/verify", nil); v["ok"] != true {
				t.Fatalf("audit chain: %v", v)
			}
			exp := tp.do("auditor", "GET", "/api/v1/audit/export?format=csv&org=acme", nil)
			rows, err := csv.NewReader(bytes.NewReader(exp.Body)).ReadAll()
			if err != nil || exp.Status != 200 || len(rows) < 5 || rows[0][0] != "seq" {
				t.Fatalf("CSV export (%d, %v): %d rows", exp.Status, err, len(rows))
			}

			// Reject needs a reason; cancel is the partner's.
			_, csr2 := newCSR(t, "two.acme.example")
			r2 := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr2})
			tp.must(400, "admin", "POST", "/api/v1/requests/"+r2["id"].(string)+"/reject", map[string]string{})
			if rj := tp.must(200, "admin", "POST", "/api/v1/requests/"+r2["id"].(string)+"/reject", map[string]string{"reason": "unknown service"}); rj["state"] != "rejected" || rj["decision_reason"] != "unknown service" {
				t.Fatalf("rejected: %v", rj)
			}
			_, csr3 := newCSR(t, "three.acme.example")
			r3 := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr3})
			tp.must(404, "other", "POST", "/api/v1/requests/"+r3["id"].(string)+"/cancel", nil)
			if cn := tp.must(200, "partner2", "POST", "/api/v1/requests/"+r3["id"].(string)+"/cancel", nil); cn["state"] != "cancelled" {
				t.Fatalf("cancelled: %v", cn)
			}
			tp.must(409, "admin", "POST", "/api/v1/requests/"+r3["id"].(string)+"/approve", map[string]string{"reason": "late"})
		})
	}
}

func TestApprove_OwnRequest_Forbidden(t *testing.T) {
	tp := startPortal(t, "sqlite")
	_, csr := newCSR(t, "self.acme.example")
	r := tp.must(201, "admin", "POST", "/api/v1/requests", map[string]any{"csr": csr, "org": "acme"})
	tp.must(403, "admin", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "mine"})
	tp.must(200, "admin2", "POST", "/api/v1/requests/"+r["id"].(string)+"/approve", map[string]string{"reason": "four eyes"})
}

func TestRenewal_AutoApprovedWhenTheOrganisationAllows(t *testing.T) {
	tp := startPortal(t, "sqlite")
	_, certID := tp.issue("renew.acme.example")
	_, csr := newCSR(t, "renew.acme.example")
	// Not allowed yet: the renewal waits for an admin.
	r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "renewal_of": certID})
	if r["state"] != "submitted" {
		t.Fatalf("renewal without auto-approval: %v", r["state"])
	}
	org := tp.must(200, "admin", "GET", "/api/v1/orgs/acme", nil)
	org["auto_approve_renewals"] = true
	delete(org, "created_at")
	delete(org, "updated_at")
	tp.must(200, "admin", "PUT", "/api/v1/orgs/acme", org)
	r = tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr, "renewal_of": certID})
	if r["state"] != "issued" || r["decided_by"] != models.AutoApprover {
		t.Fatalf("auto-approved renewal: %v", r)
	}
	// A renewal may not add identities the old certificate does not hold.
	_, csr2 := newCSR(t, "renew.acme.example", "extra.acme.example")
	bad := tp.must(422, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr2, "renewal_of": certID})
	if bad["rule"] != "renewal" {
		t.Fatalf("renewal with an extra identity: %v", bad)
	}
}

func TestApprove_TwentyConcurrentApprovals_IssueExactlyOneCertificate(t *testing.T) {
	tp := startPortal(t, "postgres")
	_, csr := newCSR(t, "race.acme.example")
	r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr})
	id := r["id"].(string)
	statuses := make([]int, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			who := []string{"admin", "admin2"}[i%2]
			statuses[i] = tp.do(who, "POST", "/api/v1/requests/"+id+"/approve", map[string]string{"reason": "race"}).Status
		}(i)
	}
	close(start)
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 409:
			conflict++
		}
	}
	if ok != 1 || conflict != 19 {
		t.Fatalf("statuses %v: want one 200 and nineteen 409", statuses)
	}
	var n int64
	tp.P.Store.DB().Model(&models.Certificate{}).Where("request_id = ?", id).Count(&n)
	if n != 1 {
		t.Fatalf("%d certificates for one request", n)
	}
}

// TestRecovery_CrashBetweenRecordAndSign leaves the database exactly as a
// process killed after recording and before the HSM signed would leave it,
// then starts the portal again: the start-up recovery signs the recorded
// certificate, with its recorded serial.
func TestRecovery_CrashBetweenRecordAndSign(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			dsn := dsnFor(t, driver, dir)
			tp := startPortalAt(t, driver, dir, dsn, true)
			_, csr := newCSR(t, "crash.acme.example")
			r := tp.must(201, "partner", "POST", "/api/v1/requests", map[string]any{"csr": csr})
			id := r["id"].(string)
			ctx := context.Background()
			admin := principals["admin"]
			req, err := tp.P.Store.ApproveRequest(ctx, admin, id, "ok")
			if err != nil {
				t.Fatal(err)
			}
			acc, _ := signer.CSRPolicy{}.Check([]byte(req.CSRPEM))
			ids, _ := signer.ParseIdentities(req.Identities)
			p, err := tp.P.CA.Issuer.Prepare(signer.LeafRequest{PublicKey: acc.CSR.PublicKey, Identities: ids, Organization: "Acme Corp", Validity: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			c := &models.Certificate{Serial: p.Serial.String(), RequestID: id, Org: "acme", Identities: req.Identities,
				KeyType: acc.KeyType, NotBefore: p.NotBefore, NotAfter: p.NotAfter, PrecertDER: p.PrecertDER}
			if err := tp.P.Store.ReserveCertificate(ctx, admin, c); err != nil {
				t.Fatal(err)
			}
			// "Kill": stop this portal without signing; start another on the same
			// database once the dead issuance's lease has expired.
			if err := tp.P.Store.DB().Model(&models.Certificate{}).Where("id = ?", c.ID).
				Update("lease_until", time.Now().Add(-time.Second)).Error; err != nil {
				t.Fatal(err)
			}
			tp.P.Store.Close()
			tp2 := startPortalAt(t, driver, dir, dsn, false)
			tp2.Tokens = tp.Tokens
			got := tp2.must(200, "partner", "GET", "/api/v1/requests/"+id, nil)
			if got["state"] != "issued" || got["certificate_id"] != c.ID {
				t.Fatalf("after restart the request is %v (certificate %v), want issued with %s", got["state"], got["certificate_id"], c.ID)
			}
			cert := tp2.must(200, "partner", "GET", "/api/v1/certificates/"+c.ID, nil)
			if cert["serial"] != c.Serial {
				t.Fatalf("serial %v, recorded %s", cert["serial"], c.Serial)
			}
			leaf := parsePEMCerts(t, tp2.do("partner", "GET", "/api/v1/certificates/"+c.ID+"/pem", nil).Body)[0]
			pre, _ := x509.ParseCertificate(p.PrecertDER)
			if !bytes.Equal(leaf.RawTBSCertificate, pre.RawTBSCertificate) {
				t.Fatal("the recovered certificate is not the one recorded before signing")
			}
			if err := leaf.CheckSignatureFrom(tp2.P.CA.Issuer.Certificate()); err != nil {
				t.Fatal(err)
			}
			if v, _ := tp2.P.Store.VerifyAudit(ctx); !v.OK {
				t.Fatalf("audit after recovery: %s", v.Problem)
			}
		})
	}
}

func TestBadInput_ProblemDetails_NothingChanges(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			tp := startPortal(t, driver)
			_, good := newCSR(t, "ok.acme.example")
			_, outside := newCSR(t, "billing.globex.example")
			reqBefore, auditBefore := counts(t, tp.P.Store)
			tests := []struct {
				name, contentType string
				body              []byte
				status            int
				detail, rule      string
			}{
				{"malformed JSON", "application/json", []byte(`{"csr": "`), 400, "truncated", ""},
				{"not JSON at all", "application/json", []byte(`csr=abc`), 400, "malformed JSON", ""},
				{"wrong content type", "text/plain", []byte(`{"csr":"x"}`), 415, "must be JSON", ""},
				{"form post", "application/x-www-form-urlencoded", []byte(`csr=x`), 415, "must be JSON", ""},
				{"unknown field", "application/json", []byte(`{"csr":"x","admin":true}`), 400, "unknown field", ""},
				{"wrong type", "application/json", []byte(`{"csr":"x","validity_days":"ninety"}`), 400, "validity_days", ""},
				{"huge body", "application/json", append([]byte(`{"csr":"`), bytes.Repeat([]byte("A"), 2<<20)...), 413, "", ""},
				{"CSR outside the namespace", "application/json", jsonBody(map[string]any{"csr": outside}), 422, "outside the organisation's namespace", "namespace"},
				{"identity outside the namespace", "application/json", jsonBody(map[string]any{"csr": good, "identities": []string{"spiffe://example.org/partners/globex/x"}}), 422, "outside", "namespace"},
				{"validity above the cap", "application/json", jsonBody(map[string]any{"csr": good, "validity_days": 400}), 422, "validity_days must be between 1 and 90", "validity"},
				{"garbage CSR", "application/json", jsonBody(map[string]any{"csr": "hello"}), 422, "neither PEM nor DER", "encoding"},
				{"wildcard identity", "application/json", jsonBody(map[string]any{"csr": good, "identities": []string{"*.acme.example"}}), 422, "wildcard", "identity-syntax"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					req, _ := http.NewRequest("POST", tp.URL+"/api/v1/requests", bytes.NewReader(tt.body))
					req.Header.Set("Content-Type", tt.contentType)
					req.Header.Set("Authorization", "Bearer "+tp.Tokens["partner"])
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer res.Body.Close()
					var buf bytes.Buffer
					buf.ReadFrom(res.Body)
					if res.StatusCode != tt.status {
						t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, buf.Bytes())
					}
					if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
						t.Fatalf("content type %q", ct)
					}
					p := response{Body: buf.Bytes()}.JSON(t)
					if int(p["status"].(float64)) != tt.status || p["title"] == "" {
						t.Fatalf("problem %v", p)
					}
					if tt.detail != "" && !strings.Contains(fmt.Sprint(p["detail"]), tt.detail) {
						t.Fatalf("detail %q lacks %q", p["detail"], tt.detail)
					}
					if tt.rule != "" && p["rule"] != tt.rule {
						t.Fatalf("rule %v, want %s", p["rule"], tt.rule)
					}
				})
			}
			reqAfter, auditAfter := counts(t, tp.P.Store)
			if reqAfter != reqBefore || auditAfter != auditBefore {
				t.Fatalf("bad input changed the database: requests %d→%d, audit events %d→%d", reqBefore, reqAfter, auditBefore, auditAfter)
			}
		})
	}
}

func jsonBody(v any) []byte {
	var b bytes.Buffer
	enc := jsonEncoder(&b)
	enc.Encode(v)
	return b.Bytes()
}

func TestAuditTamper_EditedRowIsNamed(t *testing.T) {
	tp := startPortal(t, "postgres")
	tp.issue("tamper.acme.example")
	// An insider edits one event directly in PostgreSQL.
	var ev models.AuditEvent
	if err := tp.P.Store.DB().Where("action = ?", "request.approve").First(&ev).Error; err != nil {
		t.Fatal(err)
	}
	if err := tp.P.Store.DB().Exec(`UPDATE audit_events SET actor = 'someone-else' WHERE seq = ?`, ev.Seq).Error; err != nil {
		t.Fatal(err)
	}
	v := tp.must(200, "auditor", "GET", "/api/v1/audit/verify", nil)
	if v["ok"] != false || int64(v["first_bad_seq"].(float64)) != ev.Seq || !strings.Contains(v["problem"].(string), fmt.Sprint(ev.Seq)) {
		t.Fatalf("verify after tampering with event %d: %v", ev.Seq, v)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"audit", "verify", "--config", tp.CfgPath}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("event %d", ev.Seq)) {
		t.Fatalf("certdesk audit verify: %v", err)
	}
}

func TestCLI_TokenCreate_PrintsOnlyAWorkingToken(t *testing.T) {
	tp := startPortal(t, "sqlite")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"token", "create", "--config", tp.CfgPath, "--subject", "ci-acme", "--role", "partner", "--org", "acme", "--ttl", "24h"}, &out, &errOut); err != nil {
		t.Fatalf("token create: %v %s", err, errOut.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Contains(tok, "\n") || !strings.HasPrefix(tok, "cd_") {
		t.Fatalf("output %q is not just a token", out.String())
	}
	tp.Tokens["ci"] = tok
	me := tp.must(200, "ci", "GET", "/api/v1/me", nil)
	if me["subject"] != "ci-acme" || me["role"] != "partner" || me["org"] != "acme" {
		t.Fatalf("/me with the minted token: %v", me)
	}
	for _, args := range [][]string{
		{"--subject", "x", "--role", "root"},
		{"--subject", "x", "--role", "partner"},
		{"--role", "admin"},
		{"--subject", "x", "--role", "partner", "--org", "nosuchorg"},
	} {
		if err := run(context.Background(), append([]string{"token", "create", "--config", tp.CfgPath}, args...), &out, &errOut); err == nil {
			t.Errorf("token create %v succeeded", args)
		}
	}
}

func TestServe_RefusesMismatchedKeyAndDemoKeys(t *testing.T) {
	tp := startPortal(t, "sqlite")
	cfg := *tp.Cfg
	cfg.CA.IssuingKey = token.URI("root-ca")
	_, err := buildPortal(context.Background(), &cfg, portalOptions{}, discardLog())
	if !errors.Is(err, signer.ErrKeyMismatch) || !strings.Contains(err.Error(), "issuing.pem") {
		t.Fatalf("mismatched key: %v", err)
	}
	cfg = *tp.Cfg
	cfg.CA.IssuingKey = signer.SoftwareKeyPrefix + "/tmp/demo.key"
	if _, err := buildPortal(context.Background(), &cfg, portalOptions{}, discardLog()); !errors.Is(err, signer.ErrSoftwareKeyRefused) {
		t.Fatalf("demo key in serve: %v", err)
	}
}

func TestConfig_StrictAndEnvironment(t *testing.T) {
	tp := startPortal(t, "sqlite")
	b, _ := os.ReadFile(tp.CfgPath)
	bad := tp.CfgPath + ".bad"
	os.WriteFile(bad, append(b, []byte("\nprofile:\n  max_validty_days: 30\n")...), 0o600)
	if _, err := loadConfig(bad); err == nil || !strings.Contains(err.Error(), "max_validty_days") {
		t.Fatalf("unknown key: %v", err)
	}
	t.Setenv("CERTDESK_PROFILE_MAX_VALIDITY_DAYS", "30")
	t.Setenv("CERTDESK_LOG_LEVEL", "debug")
	cfg, err := loadConfig(tp.CfgPath)
	if err != nil || cfg.Profile.MaxValidityDays != 30 || cfg.Log.Level != "debug" {
		t.Fatalf("environment overrides: %v %+v", err, cfg.Profile)
	}
	if cfg.Audit.CheckpointInterval != audit.DefaultCheckpointEvery || tp.P.Checkpointer.Every != audit.DefaultCheckpointEvery {
		t.Fatalf("checkpoint interval %s (portal %s), want the default", cfg.Audit.CheckpointInterval, tp.P.Checkpointer.Every)
	}
	for _, tt := range []struct{ value, err string }{{"2m", ""}, {"30s", "audit.checkpoint_interval"}, {"48h", "audit.checkpoint_interval"}} {
		t.Setenv("CERTDESK_AUDIT_CHECKPOINT_INTERVAL", tt.value)
		cfg, err := loadConfig(tp.CfgPath)
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) || (err == nil && cfg.Audit.CheckpointInterval != 2*time.Minute) {
			t.Fatalf("audit.checkpoint_interval %s: %v", tt.value, err)
		}
	}
	os.Unsetenv("CERTDESK_AUDIT_CHECKPOINT_INTERVAL")
	t.Setenv("CERTDESK_REVOCATION_OCSP_SIGN_RATE", "2.5")
	if cfg, err := loadConfig(tp.CfgPath); err != nil || cfg.Revocation.OCSPSignRate != 2.5 {
		t.Fatalf("revocation.ocsp_sign_rate from the environment: %v", err)
	}
	t.Setenv("CERTDESK_REVOCATION_OCSP_SIGN_RATE", "-1")
	if _, err := loadConfig(tp.CfgPath); err == nil || !strings.Contains(err.Error(), "revocation.ocsp_sign_rate") {
		t.Fatalf("negative revocation.ocsp_sign_rate: %v", err)
	}
	os.Unsetenv("CERTDESK_REVOCATION_OCSP_SIGN_RATE")
	t.Setenv("CERTDESK_PKI_URL", "https://pki.example")
	if _, err := loadConfig(tp.CfgPath); err == nil || !strings.Contains(err.Error(), "pki_url") {
		t.Fatalf("https pki_url: %v", err)
	}
}

func parsePEMCerts(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in the answer")
	}
	return out
}

func TestSecrets_FromTheEnvironmentWhenNoFileIsConfigured(t *testing.T) {
	tp := startPortal(t, "sqlite")
	cfg := *tp.Cfg
	cfg.OIDC.ClientSecretFile, cfg.Session.KeyFile = "", ""
	if _, err := buildPortal(context.Background(), &cfg, portalOptions{}, discardLog()); err == nil || !strings.Contains(err.Error(), "CERTDESK_OIDC_CLIENT_SECRET") {
		t.Fatalf("without secret file or environment: %v", err)
	}
	t.Setenv("CERTDESK_OIDC_CLIENT_SECRET", "s3cret-for-tests")
	t.Setenv("CERTDESK_SESSION_KEY", strings.Repeat("e", 40))
	p, err := buildPortal(context.Background(), &cfg, portalOptions{}, discardLog())
	if err != nil {
		t.Fatalf("secrets from the environment: %v", err)
	}
	p.Store.Close()
}

func TestRevoke_Twice_AnsweredClearlyAndNothingChanges(t *testing.T) {
	tp := startPortal(t, "sqlite")
	_, certID := tp.issue("twice.acme.example")
	first := tp.must(200, "partner", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "superseded"})
	again := tp.must(409, "admin", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "keyCompromise"})
	if !strings.Contains(fmt.Sprint(again["detail"]), "already revoked") {
		t.Fatalf("second revocation: %v", again)
	}
	now := tp.must(200, "auditor", "GET", "/api/v1/certificates/"+certID, nil)
	if now["revocation_reason"] != "superseded" || now["revoked_at"] != first["revoked_at"] || now["revoked_by"] != "pat" {
		t.Fatalf("the second revocation changed the certificate: %v", now)
	}
	tp.must(400, "partner", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{})
	bad := tp.must(422, "admin", "POST", "/api/v1/certificates/"+certID+"/revoke", map[string]string{"reason": "certificateHold"})
	if bad["rule"] != "revocation-reason" {
		t.Fatalf("certificateHold: %v", bad)
	}
}

// opensslSerial is what `openssl x509 -noout -serial` prints after "serial=".
func opensslSerial(t *testing.T, certPEM []byte) string {
	t.Helper()
	cmd := exec.Command("openssl", "x509", "-noout", "-serial")
	cmd.Stdin = bytes.NewReader(certPEM)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -serial: %v\n%s", err, out)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "serial=")
}

// colonLower spells a serial as openssl x509 -text does: lower case, a colon
// between bytes.
func colonLower(s string) string {
	var parts []string
	for i := 0; i+2 <= len(s); i += 2 {
		parts = append(parts, strings.ToLower(s[i:i+2]))
	}
	return strings.Join(parts, ":")
}
