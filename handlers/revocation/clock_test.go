package revocation_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

func TestRevocation_AsTimePasses_RegeneratesRotatesAndDropsExpired(t *testing.T) {
	clk := modelstest.NewClock(time.Now())
	env := newRevocation(t, modelstest.SQLite(t), hsmCA(t, "clock"), func(c *revocation.Config) { c.Now = clk.Now })
	c := env.issue("billing") // valid 30 days
	env.revoke(c, models.ReasonSuperseded)
	env.waitFor("the revocation in the CRL", 2*time.Second, func() bool { return env.h.Status().CRLs[0].Entries == 1 })
	responder := env.h.Status().OCSP.Serial

	steps := []struct {
		name    string
		advance time.Duration
		check   func(st revocation.Status) bool
	}{
		{"a CRL past half-life is regenerated", 13 * time.Hour, nil},
		{"the responder is rotated with a third of its life left", 21 * 24 * time.Hour, func(st revocation.Status) bool {
			return st.OCSP != nil && st.OCSP.Serial != responder
		}},
		{"an expired certificate leaves the CRL", 10 * 24 * time.Hour, func(st revocation.Status) bool {
			return st.CRLs[0].Entries == 0
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := env.crlNumber(revocation.CRLIssuing)
			clk.Advance(s.advance)
			env.t = t
			env.waitFor("a new CRL", 5*time.Second, func() bool { return env.crlNumber(revocation.CRLIssuing) > before })
			if s.check != nil {
				env.waitFor(s.name, 5*time.Second, func() bool { return s.check(env.h.Status()) })
			}
			st := env.h.Status()
			if got := st.CRLs[0].NextUpdate.Sub(st.CRLs[0].ThisUpdate); got != 24*time.Hour {
				t.Errorf("nextUpdate - thisUpdate = %v, want 24h", got)
			}
		})
	}
}

func TestRevocation_OCSPSigningOptions(t *testing.T) {
	ca := hsmCA(t, "options")
	tests := []struct {
		name          string
		tweak         func(*revocation.Config)
		wantDelegated bool
		wantNonce     bool
	}{
		{"delegated responder, nonce on", nil, true, true},
		{"nonce off: the pre-signed answer", func(c *revocation.Config) { c.DisableOCSPNonce = true }, true, false},
		{"fallback to the CA key", func(c *revocation.Config) { c.IssuingKey, c.FallbackToCAKey = "", true }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newRevocation(t, modelstest.SQLite(t), ca, tt.tweak)
			c := env.issue("billing")
			certPath := env.write("c.pem", signer.PEM(c.cert.DER))
			issuing := env.write("issuing.pem", signer.PEM(ca.CA.Issuer.Certificate().Raw))
			reqPath := env.write("req.der", nil)
			// openssl makes the request, with a nonce.
			if out, err := openssl(t, "ocsp", "-issuer", issuing, "-cert", certPath, "-reqout", reqPath); err != nil {
				t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
			}
			der, _ := os.ReadFile(reqPath)
			resp, body := env.postOCSP(der)
			r, err := ocsp.ParseResponseForCert(body, nil, ca.CA.Issuer.Certificate())
			if err != nil || r.Status != ocsp.Good {
				t.Fatalf("response: %v, %+v", err, r)
			}
			if delegated := r.Certificate != nil; delegated != tt.wantDelegated {
				t.Errorf("signed by a delegated responder = %v, want %v", delegated, tt.wantDelegated)
			}
			if st := env.h.Status().OCSP; st.Delegated != tt.wantDelegated {
				t.Errorf("status says delegated = %v", st.Delegated)
			}
			respPath := env.write("resp.der", body)
			out, _ := openssl(t, "ocsp", "-respin", respPath, "-reqin", reqPath, "-noverify", "-resp_text")
			hasNonce := strings.Contains(out, "OCSP Nonce")
			if hasNonce != tt.wantNonce {
				t.Errorf("nonce in the response = %v, want %v\n%s", hasNonce, tt.wantNonce, out)
			}
			if !tt.wantNonce && !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
				t.Errorf("a pre-signed answer without caching headers: %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestRevocation_OfflineRoot_ServesTheImportedRootCRL(t *testing.T) {
	online := hsmCA(t, "offline")
	offline := *online.CA
	offline.RootSigner = nil
	dir := t.TempDir()
	env := startRevocation(t, modelstest.SQLite(t), &testCA{Config: online.Config, CA: &offline}, func(c *revocation.Config) { c.CADir = dir })
	env.waitFor("the issuing CRL", 10*time.Second, func() bool { return env.crlNumber(revocation.CRLIssuing) > 0 })
	if resp, _ := env.get("/crl/root.crl", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("root CRL before the import: HTTP %d, want 503", resp.StatusCode)
	}
	if resp, _ := env.get("/crl/bundle.pem", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("CRL bundle before the import: HTTP %d, want 503 (nginx needs both)", resp.StatusCode)
	}
	// The operator signs the root's CRL offline and drops it into ca.dir.
	rs, err := signer.NewCRLSigner(online.CA.Root, online.CA.RootSigner, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := rs.Sign(signer.CRLTemplate{Number: 42, ThisUpdate: now, NextUpdate: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/root.crl", der, 0o644); err != nil {
		t.Fatal(err)
	}
	env.waitFor("the imported root CRL", 5*time.Second, func() bool { return env.crlNumber(revocation.CRLRoot) == 42 })
	if resp, body := env.get("/crl/root.crl", nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, der) {
		t.Errorf("root CRL after the import: HTTP %d, %d bytes; want the imported CRL", resp.StatusCode, len(body))
	}
}
