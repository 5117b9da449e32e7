package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web/nginxtest"
)

// nginxGateway is a real nginx run by the test on a loopback port, with
// ssl_verify_client on, the CA bundle and the CRL bundle.
type nginxGateway struct {
	t     *testing.T
	srv   *nginxtest.Server
	addr  string
	roots *x509.CertPool
	crl   string
}

// startNginx writes a prefix with a server certificate of its own, the
// client CA bundle and crlPEM, and starts nginx in the foreground.
func startNginx(t *testing.T, caBundle, crlPEM []byte) *nginxGateway {
	t.Helper()
	dir := t.TempDir()
	serverCert, serverKey, roots := selfSignedServer(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := &nginxGateway{t: t, roots: roots, crl: write("crl.pem", crlPEM)}
	certFile, keyFile, bundle := write("server.pem", serverCert), write("server.key", serverKey), write("ca-bundle.pem", caBundle)
	g.srv = nginxtest.Start(t, dir, func(addr string) string {
		return fmt.Sprintf(`        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_client_certificate %s;
        ssl_crl %s;
        location / { return 200 "hello $ssl_client_s_dn serial=$ssl_client_serial\n"; }`, addr, certFile, keyFile, bundle, g.crl)
	})
	g.addr = g.srv.Addr
	return g
}

// reload writes a new CRL and has nginx reload (nginx -s reload).
func (g *nginxGateway) reload(crlPEM []byte) {
	g.t.Helper()
	if err := os.WriteFile(g.crl, crlPEM, 0o600); err != nil {
		g.t.Fatal(err)
	}
	g.srv.Reload(g.t)
}

// call makes one request on a new connection with a client certificate.
func (g *nginxGateway) call(c issued, chain ...[]byte) (int, string) {
	g.t.Helper()
	cert := tls.Certificate{Certificate: append([][]byte{c.cert.DER}, chain...), PrivateKey: c.key}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{
		RootCAs: g.roots, ServerName: "gateway.test", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + g.addr + "/")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// selfSignedServer makes the gateway's own server certificate (not from
// the client CA) and a pool that trusts it.
func selfSignedServer(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "gateway.test"},
		DNSNames: []string{"gateway.test"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return signer.PEM(der), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), pool
}

func TestRevocation_Nginx_RefusesRevokedClientAfterCRLReload(t *testing.T) {
	env := newRevocation(t, modelstest.Postgres(t), hsmCA(t, "nginx"), nil)
	victim, bystander := env.issue("billing"), env.issue("payments")
	issuingDER, rootDER := env.ca.CA.Issuer.Certificate().Raw, env.ca.CA.Root.Raw
	_, bundle := env.get("/crl/bundle.pem", nil)
	gw := startNginx(t, append(signer.PEM(issuingDER), signer.PEM(rootDER)...), bundle)

	for _, c := range []issued{victim, bystander} {
		if code, body := gw.call(c, issuingDER); code != http.StatusOK || !strings.Contains(body, "hello") {
			t.Fatalf("fresh certificate %s: HTTP %d %q, want 200", c.cert.Serial, code, body)
		}
		// The stored serial (what the API and the portal show) is the one
		// nginx logs, so a gateway log line finds the certificate.
		if code, body := gw.call(c, issuingDER); code != http.StatusOK || !strings.HasSuffix(body, " serial="+c.cert.Serial+"\n") {
			t.Errorf("nginx's $ssl_client_serial in %q differs from the stored serial %s", body, c.cert.Serial)
		}
	}

	before := env.crlNumber(revocation.CRLIssuing)
	env.revoke(victim, models.ReasonKeyCompromise)
	env.waitFor("a new issuing CRL", 2*time.Second, func() bool { return env.crlNumber(revocation.CRLIssuing) > before })
	_, bundle = env.get("/crl/bundle.pem", nil)
	gw.reload(bundle)

	// The reload is asynchronous: new workers take over within a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := gw.call(victim, issuingDER)
		if code == http.StatusBadRequest {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked certificate still gets HTTP %d %q after the reload", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := gw.call(bystander, issuingDER); code != http.StatusOK {
		t.Errorf("the certificate that was not revoked gets HTTP %d %q after the reload", code, body)
	}
}
