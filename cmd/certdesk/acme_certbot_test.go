package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// certbot runs Debian's certbot against the portal's ACME directory with
// its state in dir, and returns its output.
func (tp *tlsPortal) certbot(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("certbot"); err != nil {
		t.Fatalf("certbot is not installed (apt-get install certbot): %v", err)
	}
	base := []string{"--server", tp.URL + "/acme/directory", "--config-dir", filepath.Join(dir, "config"),
		"--work-dir", filepath.Join(dir, "work"), "--logs-dir", filepath.Join(dir, "logs"), "--non-interactive"}
	cmd := exec.Command("certbot", append(append([]string{args[0]}, base...), args[1:]...)...)
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+tp.ServerCAFile)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("certbot %s: %s", args[0], time.Since(start))
	return string(out), err
}

// certbotLog is certbot's debug log of its last run. certbot 2.1 with
// Python 3.11 prints an unrelated AttributeError for an ACME error
// instead of the error, which its log still holds.
func certbotLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "logs", "letsencrypt.log"))
	return string(b)
}

func TestACME_Certbot_ObtainsRenewsAndRevokes(t *testing.T) {
	tp := startTLSPortal(t, "postgres")
	ctx := context.Background()
	bindingID, kid, hmacKey := tp.approvedBinding("partner", "*.hosts.acme.example")
	dir := t.TempDir()
	// The authorizations are valid already: the manual authenticator's hook
	// is never called, but certbot wants one to run non-interactively.
	certonly := []string{"certonly", "--manual", "--manual-auth-hook", "/bin/true", "--preferred-challenges", "http",
		"--eab-kid", kid, "--eab-hmac-key=" + hmacKey, "--agree-tos", "-m", "ops@acme.example", "--no-eff-email",
		"--key-type", "ecdsa", "--elliptic-curve", "secp256r1", "--cert-name", "web", "-d", "web.hosts.acme.example"}
	if out, err := tp.certbot(t, dir, certonly...); err != nil {
		t.Fatalf("certbot certonly: %v\n%s", err, out)
	}
	live := filepath.Join(dir, "config", "live", "web")
	first, err := os.ReadFile(filepath.Join(live, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tp.checkACMECert(t, first, "web.hosts.acme.example", "certbot-first.pem")
	if err := tp.opensslVerifyClient(filepath.Join(live, "fullchain.pem")); err != nil {
		t.Fatalf("certbot's fullchain.pem: %v", err)
	}

	// Renewal with the registered account.
	if out, err := tp.certbot(t, dir, "renew", "--force-renewal", "--no-random-sleep-on-renew", "--cert-name", "web"); err != nil {
		t.Fatalf("certbot renew: %v\n%s", err, out)
	}
	second, err := os.ReadFile(filepath.Join(live, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := tp.checkACMECert(t, second, "web.hosts.acme.example", "certbot-second.pem")
	if leaf.SerialNumber.Cmp(firstCert(t, first).SerialNumber) == 0 {
		t.Fatal("certbot renew kept the same certificate")
	}

	// Revocation by the account key.
	if out, err := tp.certbot(t, dir, "revoke", "--cert-path", filepath.Join(live, "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke"); err != nil {
		t.Fatalf("certbot revoke: %v\n%s", err, out)
	}
	c, err := tp.P.Store.GetCertificateBySerial(ctx, leaf.SerialNumber.Text(16))
	if err != nil || c.State != models.CertRevoked || c.RevocationReason == nil || *c.RevocationReason != 4 {
		t.Fatalf("certificate revoked by certbot: %+v, %v", c, err)
	}

	// Outside the binding: refused with rejectedIdentifier.
	out, err := tp.certbot(t, dir, "certonly", "--manual", "--manual-auth-hook", "/bin/true", "--preferred-challenges", "http",
		"--key-type", "ecdsa", "--cert-name", "outside", "-d", "web.acme.example")
	if err == nil || !strings.Contains(out+certbotLog(dir), "urn:ietf:params:acme:error:rejectedIdentifier") {
		t.Fatalf("certbot order outside the binding: %v\n%s", err, out)
	}

	// A revoked binding stops the account.
	tp.must(200, "partner", "DELETE", "/api/v1/acme/bindings/"+bindingID, nil)
	out, err = tp.certbot(t, dir, "renew", "--force-renewal", "--no-random-sleep-on-renew", "--cert-name", "web")
	if err == nil || !strings.Contains(out+certbotLog(dir), "urn:ietf:params:acme:error:unauthorized") {
		t.Fatalf("certbot renew after the binding was revoked: %v\n%s", err, out)
	}
}
