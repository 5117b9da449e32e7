package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/web/nginxtest"
)

// startNginxGateway runs a real nginx on a loopback port that terminates
// TLS, asks for a client certificate without verifying it (certdesk does),
// and proxies to the portal from 127.0.0.2 with the certificate in
// X-SSL-Client-Cert ($ssl_client_escaped_cert).
func startNginxGateway(t *testing.T, sp *servedPortal) string {
	t.Helper()
	srv := nginxtest.Start(t, filepath.Join(sp.Dir, "nginx"), func(addr string) string {
		return fmt.Sprintf(`        listen %s ssl;
        ssl_certificate %[2]s;
        ssl_certificate_key %[3]s;
        ssl_verify_client optional_no_ca;
        location / {
            proxy_pass https://%[4]s;
            proxy_bind 127.0.0.2;
            proxy_ssl_trusted_certificate %[2]s;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }`, addr, sp.ServerCAFile, filepath.Join(sp.Dir, "server.key"), sp.Addr)
	})
	return "https://" + srv.Addr
}

func TestRenew_ThroughNginx_TheForwardedCertificateAuthenticates(t *testing.T) {
	sp := startServedPortal(t, "sqlite")
	gw := startNginxGateway(t, sp)
	dir := sp.Dir
	_, kid, hmacKey := sp.approvedBinding("partner", "*.gw.acme.example")
	newKeyAndCSR(t, dir, "host", "host.gw.acme.example")
	mustSh(t, dir, fmt.Sprintf(`curl -sS --fail-with-body --cacert %s --user %s:%s -H 'Content-Type: application/pkcs10' --data-binary @host.csr.b64 %s/.well-known/est/simpleenroll | base64 -d | openssl pkcs7 -inform DER -print_certs | openssl x509 -out host.pem`, sp.ServerCAFile, kid, hmacKey, gw))
	cur := sp.storedCert(t, filepath.Join(dir, "host.pem"))
	life := cur.NotAfter.Sub(cur.NotBefore)
	if err := sp.Store.DB().Model(&models.Certificate{}).Where("id = ?", cur.ID).Updates(map[string]any{
		"not_before": time.Now().Add(-life * 3 / 4), "not_after": time.Now().Add(life / 4)}).Error; err != nil {
		t.Fatal(err)
	}
	newKeyAndCSR(t, dir, "next", "host.gw.acme.example")
	renew := func(base, certArgs string) string {
		return mustSh(t, dir, fmt.Sprintf(`curl -sS --cacert %s %s -H 'Content-Type: application/pkcs10' --data-binary @next.csr.pem -o renewed.pem -w '%%{http_code}' %s/api/v1/renew`, sp.ServerCAFile, certArgs, base))
	}
	if code := renew(gw, ""); code != "401" {
		log, _ := os.ReadFile(filepath.Join(dir, "nginx", "logs", "error.log"))
		t.Fatalf("through nginx without a certificate: HTTP %s, want 401\n%s", code, log)
	}
	if code := renew(gw, "--cert host.pem --key host.key"); code != "201" {
		b, _ := os.ReadFile(filepath.Join(dir, "renewed.pem"))
		t.Fatalf("through nginx with the current certificate: HTTP %s: %s", code, b)
	}
	if err := sp.opensslVerifyClient(filepath.Join(dir, "renewed.pem")); err != nil {
		t.Fatal(err)
	}
	// The same header sent straight to certdesk, not from the gateway's
	// address, counts for nothing.
	forged := mustSh(t, dir, fmt.Sprintf(`curl -sS --cacert %s -H "X-SSL-Client-Cert: $(jq -sRr @uri host.pem)" -H 'Content-Type: application/pkcs10' --data-binary @next.csr.pem -o /dev/null -w '%%{http_code}' %s/api/v1/renew`, sp.ServerCAFile, sp.URL))
	if forged != "401" {
		t.Fatalf("a forged header from an untrusted address: HTTP %s, want 401", forged)
	}
}
