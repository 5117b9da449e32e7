package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
)

// startNginxGateway runs a real nginx on a loopback port that terminates
// TLS, asks for a client certificate without verifying it (certdesk does),
// and proxies to the portal from 127.0.0.2 with the certificate in
// X-SSL-Client-Cert ($ssl_client_escaped_cert).
func startNginxGateway(t *testing.T, sp *servedPortal) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is not installed (Debian nginx-light); make test installs it")
	}
	dir := filepath.Join(sp.Dir, "nginx")
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, []byte(fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    server {
        listen %[3]s ssl;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        ssl_verify_client optional_no_ca;
        location / {
            proxy_pass https://%[6]s;
            proxy_bind 127.0.0.2;
            proxy_ssl_trusted_certificate %[4]s;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
        }
    }
}
`, user, dir, addr, sp.ServerCAFile, filepath.Join(sp.Dir, "server.key"), sp.Addr)))
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-g", "daemon off;")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // this nginx only
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "https://" + addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx did not listen on %s: %v\n%s\n%s", addr, err, stderr.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
