package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/web"
)

// tlsPortal is a portal served over HTTPS with a server certificate of its
// own (ACME clients want https), and the files clients need.
type tlsPortal struct {
	*testPortal
	// ServerCAFile is the PEM certificate of the portal's TLS server key
	// (self-signed), for clients to trust.
	ServerCAFile string
	ServerPool   *x509.CertPool
	// BundleFile is the portal's CA bundle (root and issuing CA), what
	// openssl verify takes.
	BundleFile string
	Dir        string
}

// serverCert makes a self-signed TLS server certificate for 127.0.0.1 and
// writes it to dir.
func serverCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "certdesk test server"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSPortal runs a seeded portal (organisations acme and globex, a
// token per principal) on driver's database behind TLS.
func startTLSPortal(t *testing.T, driver string) *tlsPortal {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := serverCert(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	idp := testIdP(t, url)
	cfgPath := writeTestConfig(t, dir, ln.Addr().String(), url, idp.Issuer, driver, dsnFor(t, driver, dir))
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if _, err := signer.InitCA(cfg.CA, signer.Keys{}, cfg.PKIURL, false, time.Now()); err != nil {
		t.Fatalf("ca init: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := buildPortal(ctx, cfg, portalOptions{}, newLogger(cfg, io.Discard))
	if err != nil {
		t.Fatalf("building the portal: %v", err)
	}
	srv := &http.Server{Handler: p.Echo}
	go srv.ServeTLS(ln, certFile, keyFile)
	go p.Revocation.Run(ctx)
	t.Cleanup(func() { cancel(); srv.Close(); p.Store.Close() })
	tp := &testPortal{URL: url, CfgPath: cfgPath, Cfg: cfg, P: p, Tokens: map[string]string{}, t: t}
	seedPortal(t, tp)

	pool := x509.NewCertPool()
	b, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(b)
	bundle := filepath.Join(dir, "bundle.pem")
	writeFile(t, bundle, append(signer.PEM(p.CA.Issuer.Certificate().Raw), signer.PEM(p.CA.Root.Raw)...))
	return &tlsPortal{testPortal: tp, ServerCAFile: certFile, ServerPool: pool, BundleFile: bundle, Dir: dir}
}

// seedPortal adds the organisations acme and globex and a token per
// principal, as startPortal does.
func seedPortal(t *testing.T, tp *testPortal) {
	t.Helper()
	ctx := context.Background()
	sys := models.Actor{Subject: "system:test", Role: models.RoleSystem, Source: "test"}
	for _, o := range []*models.Organization{
		{Slug: "acme", Name: "Acme Corp", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"}, DNSSuffixes: models.StringList{"acme.example"}, EmailDomains: models.StringList{"acme.example"}, MaxValidityDays: 90, AutoApproveRenewals: true},
		{Slug: "globex", Name: "Globex", URIPrefixes: models.StringList{"spiffe://example.org/partners/globex/"}, DNSSuffixes: models.StringList{"globex.example"}, MaxValidityDays: 30},
	} {
		if err := tp.P.Store.CreateOrg(ctx, sys, o); err != nil {
			t.Fatal(err)
		}
	}
	for name, a := range principals {
		tok, hash := web.NewAPIToken()
		if err := tp.P.Store.CreateToken(ctx, sys, &models.APIToken{Name: name, Subject: a.Subject, Role: a.Role, Org: a.Org, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		tp.Tokens[name] = tok
	}
}

// client is an HTTP client that trusts the portal's TLS server
// certificate, presenting cert if given.
func (tp *tlsPortal) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: tp.ServerPool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// approvedBinding has principal who ask for an ACME binding over names,
// a different admin approve it, and returns its id and the credentials the
// requester takes once.
func (tp *tlsPortal) approvedBinding(who string, names ...string) (id, kid, hmacKey string) {
	tp.t.Helper()
	b := tp.must(201, who, "POST", "/api/v1/acme/bindings", map[string]any{"name": "ci", "dns_names": names, "expires_days": 30})
	id = b["id"].(string)
	tp.must(200, "admin", "POST", "/api/v1/acme/bindings/"+id+"/approve", nil)
	cred := tp.must(200, who, "POST", "/api/v1/acme/bindings/"+id+"/credentials", nil)
	return id, cred["eab_kid"].(string), cred["eab_hmac_key"].(string)
}

// opensslVerifyClient runs openssl verify -purpose sslclient on a PEM
// certificate file against the portal's CA bundle.
func (tp *tlsPortal) opensslVerifyClient(certFile string) error {
	out, err := exec.Command("openssl", "verify", "-purpose", "sslclient", "-CAfile", tp.BundleFile, certFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		return &verifyError{string(out)}
	}
	return nil
}

type verifyError struct{ out string }

func (e *verifyError) Error() string { return "openssl verify: " + e.out }

// firstCert is the first certificate of a PEM bundle.
func firstCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		t.Fatalf("no PEM certificate in %q", pemBytes)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends a request as principal who ("" for nobody) with a JSON body
// over the portal's TLS.
func (tp *tlsPortal) do(who, method, path string, body any) response {
	tp.t.Helper()
	return apiCall(tp.t, tp.client(nil), tp.URL, tp.Tokens[who], method, path, body)
}

// must is do that fails the test unless the answer has status want.
func (tp *tlsPortal) must(want int, who, method, path string, body any) map[string]any {
	tp.t.Helper()
	return mustStatus(tp.t, tp.do(who, method, path, body), want, who, method, path)
}
