package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
)

// servedPortal is `certdesk serve` (runPortal) listening with its own TLS,
// client certificates requested, and a gateway at 127.0.0.2 trusted to
// forward them in X-SSL-Client-Cert.
type servedPortal struct {
	*tlsPortal
	Addr  string
	Store *models.Store // a second connection to the portal's database
}

func startServedPortal(t *testing.T, driver string) *servedPortal {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := serverCert(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	url := "https://" + addr
	idp := testIdP(t, url)
	cfgPath := writeTestConfig(t, dir, addr, url, idp.Issuer, driver, dsnFor(t, driver, dir))
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "tls:\n  cert_file: %s\n  key_file: %s\nclient_certificates:\n  header: X-SSL-Client-Cert\n  trusted_proxies: [127.0.0.2]\n", certFile, keyFile)
	f.Close()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runPortal(ctx, cfg, portalOptions{Listener: ln}, newLogger(cfg, io.Discard), func(string) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("certdesk serve stopped: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("certdesk serve did not start")
	}
	t.Cleanup(func() { cancel(); <-done })
	store, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tp := &testPortal{URL: url, CfgPath: cfgPath, Cfg: cfg, P: &portal{Store: store}, Tokens: map[string]string{}, t: t}
	seedPortal(t, tp)
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(b)
	bundle := filepath.Join(dir, "bundle.pem")
	writeFile(t, bundle, append(mustRead(t, cfg.CA.WithDefaults().IssuingPath()), mustRead(t, cfg.CA.WithDefaults().RootPath())...))
	return &servedPortal{tlsPortal: &tlsPortal{testPortal: tp, ServerCAFile: certFile, ServerPool: pool, BundleFile: bundle, Dir: dir}, Addr: addr, Store: store}
}

// sh runs a command line in dir (curl and openssl, as RFC 7030's examples
// do) and returns its standard output.
func sh(t *testing.T, dir, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", script, err, errb.String())
	}
	return out.String(), err
}

func mustSh(t *testing.T, dir, script string) string {
	t.Helper()
	out, err := sh(t, dir, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newKeyAndCSR makes key.pem and a CSR for name with openssl, as DER in
// base64 (csr.b64, for EST) and PEM (csr.pem, for /api/v1/renew).
func newKeyAndCSR(t *testing.T, dir, prefix, name string) {
	t.Helper()
	mustSh(t, dir, fmt.Sprintf(`openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %[1]s.key -subj /CN=%[2]s -addext subjectAltName=DNS:%[2]s -out %[1]s.csr.pem 2>/dev/null
openssl req -in %[1]s.csr.pem -outform DER | base64 > %[1]s.csr.b64`, prefix, name))
}

func TestEST_CurlAndOpenSSL_EnrolReenrolAndRefuseRevokedOrExpired(t *testing.T) {
	sp := startServedPortal(t, "sqlite")
	dir := sp.Dir
	est := sp.URL + "/.well-known/est"
	curl := "curl -sS --fail-with-body --cacert " + sp.ServerCAFile

	// /cacerts: base64 certs-only PKCS#7 with the issuing and root CA.
	out := mustSh(t, dir, curl+` -D cacerts.hdr `+est+`/cacerts | base64 -d > cacerts.p7
openssl pkcs7 -inform DER -in cacerts.p7 -print_certs | grep -c 'BEGIN CERTIFICATE'; grep -i 'content-transfer-encoding' cacerts.hdr`)
	if !strings.HasPrefix(out, "2\n") || !strings.Contains(strings.ToLower(out), "content-transfer-encoding: base64") {
		t.Fatalf("cacerts: %q", out)
	}
	if out := mustSh(t, dir, curl+" "+est+"/csrattrs | base64 -d | openssl asn1parse -inform DER"); !strings.Contains(out, "prime256v1") {
		t.Fatalf("csrattrs: %s", out)
	}

	// simpleenroll with a binding's credentials.
	_, kid, hmacKey := sp.approvedBinding("partner", "*.dev.acme.example")
	newKeyAndCSR(t, dir, "one", "est.dev.acme.example")
	mustSh(t, dir, fmt.Sprintf(`%s --user %s:%s -H 'Content-Type: application/pkcs10' --data-binary @one.csr.b64 %s/simpleenroll | base64 -d > one.p7
openssl pkcs7 -inform DER -in one.p7 -print_certs -out one.chain.pem
openssl x509 -in one.chain.pem -out one.pem`, curl, kid, hmacKey, est))
	if err := sp.opensslVerifyClient(filepath.Join(dir, "one.pem")); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{
		"a wrong key":                 fmt.Sprintf(`%s -o /dev/null -w '%%{http_code}' --user %s:%s -H 'Content-Type: application/pkcs10' --data-binary @one.csr.b64 %s/simpleenroll || true`, strings.Replace(curl, "--fail-with-body", "", 1), kid, strings.Repeat("A", 43), est),
		"no credentials":              fmt.Sprintf(`%s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @one.csr.b64 %s/simpleenroll || true`, strings.Replace(curl, "--fail-with-body", "", 1), est),
		"reenrol with no certificate": fmt.Sprintf(`%s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @one.csr.b64 %s/simplereenroll || true`, strings.Replace(curl, "--fail-with-body", "", 1), est),
	} {
		if code := mustSh(t, dir, script); code != "401" {
			t.Fatalf("%s: HTTP %s, want 401", name, code)
		}
	}
	newKeyAndCSR(t, dir, "outside", "est.acme.example")
	if code := mustSh(t, dir, fmt.Sprintf(`curl -sS --cacert %s -o /dev/null -w '%%{http_code}' --user %s:%s -H 'Content-Type: application/pkcs10' --data-binary @outside.csr.b64 %s/simpleenroll`, sp.ServerCAFile, kid, hmacKey, est)); code != "422" {
		t.Fatalf("enrolment outside the binding: HTTP %s, want 422", code)
	}

	// simplereenroll with the current certificate over mTLS, new key.
	newKeyAndCSR(t, dir, "two", "est.dev.acme.example")
	mustSh(t, dir, fmt.Sprintf(`%s --cert one.pem --key one.key -H 'Content-Type: application/pkcs10' --data-binary @two.csr.b64 %s/simplereenroll | base64 -d > two.p7
openssl pkcs7 -inform DER -in two.p7 -print_certs -out two.chain.pem
openssl x509 -in two.chain.pem -out two.pem`, curl, est))
	if err := sp.opensslVerifyClient(filepath.Join(dir, "two.pem")); err != nil {
		t.Fatal(err)
	}
	two := sp.storedCert(t, filepath.Join(dir, "two.pem"))
	if two.Org != "acme" || len(two.Identities) != 1 || two.Identities[0] != "est.dev.acme.example" {
		t.Fatalf("re-enrolled certificate: %+v", two)
	}
	r, _ := sp.Store.GetRequest(context.Background(), two.RequestID)
	one := sp.storedCert(t, filepath.Join(dir, "one.pem"))
	if r.RenewalOf == nil || *r.RenewalOf != one.ID || r.DecidedBy != models.AutoApprover {
		t.Fatalf("re-enrolment request: %+v", r)
	}

	// A CSR for other names is refused; so are a revoked and an expired
	// current certificate.
	newKeyAndCSR(t, dir, "other", "other.dev.acme.example")
	reenrol := func(cert, key, csr string) string {
		return mustSh(t, dir, fmt.Sprintf(`curl -sS --cacert %s -o /dev/null -w '%%{http_code}' --cert %s --key %s -H 'Content-Type: application/pkcs10' --data-binary @%s %s/simplereenroll`, sp.ServerCAFile, cert, key, csr, est))
	}
	if code := reenrol("two.pem", "two.key", "other.csr.b64"); code != "422" {
		t.Fatalf("re-enrolment for other names: HTTP %s, want 422", code)
	}
	sp.must(200, "partner", "POST", "/api/v1/certificates/"+two.ID+"/revoke", map[string]any{"reason": "superseded"})
	if code := reenrol("two.pem", "two.key", "two.csr.b64"); code != "403" {
		t.Fatalf("re-enrolment with a revoked certificate: HTTP %s, want 403", code)
	}
	// Expiry as the store sees it: the record says the certificate ended.
	if err := sp.Store.DB().Model(&models.Certificate{}).Where("id = ?", one.ID).Update("not_after", time.Now().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if code := reenrol("one.pem", "one.key", "two.csr.b64"); code != "403" {
		t.Fatalf("re-enrolment with an expired certificate: HTTP %s, want 403", code)
	}
}

// storedCert is the store's record of a PEM certificate file.
func (sp *servedPortal) storedCert(t *testing.T, path string) *models.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.Store.GetCertificateBySerial(context.Background(), firstCert(t, b).SerialNumber.Text(16))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRenew_WithTheCurrentCertificate_InItsLastThird(t *testing.T) {
	sp := startServedPortal(t, "postgres")
	dir := sp.Dir
	_, kid, hmacKey := sp.approvedBinding("partner", "*.dev.acme.example")
	newKeyAndCSR(t, dir, "host", "host.dev.acme.example")
	mustSh(t, dir, fmt.Sprintf(`curl -sS --fail-with-body --cacert %s --user %s:%s -H 'Content-Type: application/pkcs10' --data-binary @host.csr.b64 %s/.well-known/est/simpleenroll | base64 -d | openssl pkcs7 -inform DER -print_certs | openssl x509 -out host.pem`, sp.ServerCAFile, kid, hmacKey, sp.URL))
	cur := sp.storedCert(t, filepath.Join(dir, "host.pem"))
	newKeyAndCSR(t, dir, "next", "host.dev.acme.example")
	renew := "curl -sS --cacert " + sp.ServerCAFile + " --cert host.pem --key host.key -H 'Content-Type: application/pkcs10' --data-binary @next.csr.pem -o renewed.pem -w '%{http_code}' " + sp.URL + "/api/v1/renew"
	if code := mustSh(t, dir, renew); code != "409" {
		t.Fatalf("renewal of a fresh certificate: HTTP %s, want 409 (outside the renewal window)", code)
	}
	// As the store sees it, two thirds of the certificate's life have passed.
	life := cur.NotAfter.Sub(cur.NotBefore)
	if err := sp.Store.DB().Model(&models.Certificate{}).Where("id = ?", cur.ID).Updates(map[string]any{
		"not_before": time.Now().Add(-life * 3 / 4), "not_after": time.Now().Add(life / 4)}).Error; err != nil {
		t.Fatal(err)
	}
	if code := mustSh(t, dir, renew); code != "201" {
		b, _ := os.ReadFile(filepath.Join(dir, "renewed.pem"))
		t.Fatalf("renewal in the window: HTTP %s: %s", code, b)
	}
	if err := sp.opensslVerifyClient(filepath.Join(dir, "renewed.pem")); err != nil {
		t.Fatal(err)
	}
	renewed := sp.storedCert(t, filepath.Join(dir, "renewed.pem"))
	if renewed.ID == cur.ID || strings.Join(renewed.Identities, ",") != "host.dev.acme.example" {
		t.Fatalf("renewed certificate: %+v", renewed)
	}

	// Behind a gateway: the forwarded certificate counts only from the
	// trusted address.
	pemCert, _ := os.ReadFile(filepath.Join(dir, "renewed.pem"))
	if err := sp.Store.DB().Model(&models.Certificate{}).Where("id = ?", renewed.ID).Updates(map[string]any{
		"not_before": time.Now().Add(-life * 3 / 4), "not_after": time.Now().Add(life / 4)}).Error; err != nil {
		t.Fatal(err)
	}
	csr, _ := os.ReadFile(filepath.Join(dir, "next.csr.pem"))
	for _, tc := range []struct {
		name, from string
		want       int
	}{
		{"from an untrusted address", "127.0.0.1", http.StatusUnauthorized},
		{"from the trusted gateway", "127.0.0.2", http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: sp.ServerPool},
				DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.from)}}).DialContext,
			}}
			req, _ := http.NewRequest("POST", sp.URL+"/api/v1/renew", bytes.NewReader(csr))
			req.Header.Set("Content-Type", "application/pkcs10")
			req.Header.Set("X-SSL-Client-Cert", url.PathEscape(string(pemCert)))
			res, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", res.StatusCode, tc.want, body)
			}
		})
	}
}

func TestServe_TLS_ReloadsItsCertificateWhenTheFilesChange(t *testing.T) {
	sp := startServedPortal(t, "sqlite")
	served := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", sp.Addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	before := served()
	// Replace the pair in place, as a renewal of the server certificate would.
	newDir := t.TempDir()
	certFile, keyFile := serverCert(t, newDir)
	for src, dst := range map[string]string{certFile: sp.Cfg.TLS.CertFile, keyFile: sp.Cfg.TLS.KeyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dst, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := served()
		if !after.Equal(before) {
			want := firstCert(t, mustRead(t, sp.Cfg.TLS.CertFile))
			if !after.Equal(want) {
				t.Fatal("the portal serves a certificate that is neither the old nor the new one")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the portal still serves the old certificate 10 s after the files changed")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEST_TokenEnrolment_WaitsForAnAdminThenAnswersTheRepeatedRequest(t *testing.T) {
	sp := startServedPortal(t, "sqlite")
	dir := sp.Dir
	newKeyAndCSR(t, dir, "tok", "tok.acme.example")
	enrol := fmt.Sprintf(`curl -sS --cacert %s --user pat:%s -H 'Content-Type: application/pkcs10' --data-binary @tok.csr.b64 -D tok.hdr -o tok.out -w '%%{http_code}' %s/.well-known/est/simpleenroll`,
		sp.ServerCAFile, sp.Tokens["partner"], sp.URL)
	if code := mustSh(t, dir, enrol); code != "202" {
		t.Fatalf("first enrolment with a token: HTTP %s, want 202", code)
	}
	if hdr := mustSh(t, dir, "cat tok.hdr"); !strings.Contains(strings.ToLower(hdr), "retry-after:") {
		t.Fatalf("202 without Retry-After:\n%s", hdr)
	}
	var pending struct{ Request string }
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "tok.out")), &pending); err != nil || pending.Request == "" {
		t.Fatalf("202 body: %v", err)
	}
	if code := mustSh(t, dir, enrol); code != "202" {
		t.Fatalf("repeated enrolment before approval: HTTP %s, want 202", code)
	}
	if n, _ := counts(t, sp.Store); n != 1 {
		t.Fatalf("the repeated enrolment made %d requests, want 1", n)
	}
	sp.must(200, "admin", "POST", "/api/v1/requests/"+pending.Request+"/approve", map[string]string{"reason": "known host"})
	if code := mustSh(t, dir, enrol); code != "200" {
		t.Fatalf("repeated enrolment after approval: HTTP %s, want 200", code)
	}
	mustSh(t, dir, "base64 -d tok.out | openssl pkcs7 -inform DER -print_certs | openssl x509 -out tok.pem")
	if err := sp.opensslVerifyClient(filepath.Join(dir, "tok.pem")); err != nil {
		t.Fatal(err)
	}
	bad := fmt.Sprintf(`curl -sS --cacert %s -H 'Authorization: Bearer cd_not-a-token' -H 'Content-Type: application/pkcs10' --data-binary @tok.csr.b64 -o /dev/null -w '%%{http_code}' %s/.well-known/est/simpleenroll`, sp.ServerCAFile, sp.URL)
	if code := mustSh(t, dir, bad); code != "401" {
		t.Fatalf("enrolment with an unknown token: HTTP %s, want 401", code)
	}
}
