package signer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/signer/serial"
)

var token *softhsmtest.Token

// TestMain makes one SoftHSM2 token for this test binary: SOFTHSM2_CONF is
// read once, at the first PKCS#11 configuration in the process.
func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }

const pkiURL = "http://pki.certdesk.test"

// hsmCA creates (once per name) a hierarchy whose keys live in the token.
func hsmCA(t testing.TB, name string) (signer.CAConfig, *signer.CA) {
	t.Helper()
	cfg := signer.CAConfig{
		Dir:        filepath.Join(token.Dir, "ca-"+name),
		RootKey:    token.URI(name + "-root"),
		IssuingKey: token.URI(name + "-issuing"),
		Root:       signer.CAName{CommonName: "certdesk Test Root " + name, Organization: "certdesk tests"},
		Issuing:    signer.CAName{CommonName: "certdesk Test Issuing " + name, Organization: "certdesk tests"},
	}
	if _, err := signer.InitCA(cfg, signer.Keys{}, pkiURL, false, time.Now()); err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	ca, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, pkiURL, time.Now())
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	return cfg, ca
}

var namespace = signer.Namespace{
	URIPrefixes: []string{"spiffe://example.org/partners/acme/"},
	DNSSuffixes: []string{"acme.example"},
}

// issueFromCSR runs a CSR through policy, namespace and the HSM issuer.
func issueFromCSR(t testing.TB, ca *signer.CA, csrPEM []byte) *x509.Certificate {
	t.Helper()
	acc, err := signer.CSRPolicy{}.Check(csrPEM)
	if err != nil {
		t.Fatalf("CSR refused: %v", err)
	}
	ids, err := signer.ParseIdentities(signer.RequestedNames(acc.CSR))
	if err != nil {
		t.Fatal(err)
	}
	if err := namespace.Check(ids); err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issuer.Prepare(signer.LeafRequest{PublicKey: acc.CSR.PublicKey, Identities: ids, Organization: "Acme Corp", Validity: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	der, err := ca.Issuer.Issue(p)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newCSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	u, _ := neturl.Parse("spiffe://example.org/partners/acme/billing")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "whatever the client asks"},
		DNSNames: []string{"billing.acme.example"}, URIs: []*neturl.URL{u},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHSM_IssueEveryKeyType_AcceptedByOpenSSLZlintAndTLS(t *testing.T) {
	cfg, ca := hsmCA(t, "main")
	for _, tc := range []struct {
		name string
		key  func() (crypto.Signer, error)
	}{
		{"ECDSA-P256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
		{"ECDSA-P384", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }},
		{"Ed25519", func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }},
		{"RSA-3072", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := tc.key()
			if err != nil {
				t.Fatal(err)
			}
			leaf := issueFromCSR(t, ca, newCSR(t, key))
			checkProfile(t, leaf, ca)
			dir := t.TempDir()
			leafPath := writeFile(t, dir, "leaf.pem", signer.PEM(leaf.Raw))

			out, err := exec.Command("openssl", "verify", "-purpose", "sslclient",
				"-CAfile", cfg.RootPath(), "-untrusted", cfg.IssuingPath(), leafPath).CombinedOutput()
			if err != nil || !strings.Contains(string(out), ": OK") {
				t.Fatalf("openssl verify: %v\n%s", err, out)
			}
			zlintClean(t, leafPath)
			tlsHandshake(t, ca, leaf, key)
		})
	}
}

// checkProfile asserts the leaf profile on an issued certificate.
func checkProfile(t *testing.T, c *x509.Certificate, ca *signer.CA) {
	t.Helper()
	if !c.BasicConstraintsValid || c.IsCA {
		t.Error("basicConstraints CA:FALSE missing")
	}
	critical := map[string]bool{}
	for _, e := range c.Extensions {
		critical[e.Id.String()] = e.Critical
	}
	if !critical["2.5.29.19"] || !critical["2.5.29.15"] {
		t.Error("basicConstraints and keyUsage must be critical")
	}
	wantKU := x509.KeyUsageDigitalSignature
	if c.KeyUsage != wantKU {
		t.Errorf("keyUsage %v, want digitalSignature only", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU %v, want clientAuth only", c.ExtKeyUsage)
	}
	if len(c.SubjectKeyId) == 0 || string(c.AuthorityKeyId) != string(ca.Issuer.Certificate().SubjectKeyId) {
		t.Error("SKI/AKI wrong")
	}
	sn, _ := serial.FromBig(c.SerialNumber)
	wantDP := signer.PartitionURL(pkiURL+"/crl/issuing.crl", signer.CRLPartition(sn, signer.DefaultCRLPartitions))
	if len(c.CRLDistributionPoints) != 1 || c.CRLDistributionPoints[0] != wantDP {
		t.Errorf("CRL DP %v, want the certificate's partition %s", c.CRLDistributionPoints, wantDP)
	}
	if len(c.OCSPServer) != 1 || len(c.IssuingCertificateURL) != 1 {
		t.Errorf("AIA %v %v", c.OCSPServer, c.IssuingCertificateURL)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 || len(c.SerialNumber.Bytes()) > 20 {
		t.Errorf("serial %x", c.SerialNumber)
	}
	if d := time.Since(c.NotBefore); d < 0 || d > 2*time.Minute {
		t.Errorf("notBefore backdated by %v", d)
	}
	if c.Subject.CommonName == "whatever the client asks" {
		t.Error("the subject came from the CSR")
	}
}

// zlintClean runs the zlint CLI (installed by make test) on a PEM file and
// fails on any warning, error or fatal result.
func zlintClean(t *testing.T, path string) {
	t.Helper()
	bin, err := exec.LookPath("zlint")
	if err != nil {
		t.Fatalf("zlint CLI not found: run make test (it installs zlint v3.7.3): %v", err)
	}
	out, err := exec.Command(bin, "-includeSources", "RFC5280,RFC5480,RFC3279,RFC5891,RFC8813,Community", path).Output()
	if err != nil {
		t.Fatalf("zlint: %v", err)
	}
	var results map[string]struct {
		Result  string `json:"result"`
		Details string `json:"details"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("zlint output: %v\n%s", err, out)
	}
	if len(results) < 50 {
		t.Fatalf("zlint ran only %d lints", len(results))
	}
	for name, r := range results {
		if r.Result == "warn" || r.Result == "error" || r.Result == "fatal" {
			t.Errorf("zlint %s: %s %s", name, r.Result, r.Details)
		}
	}
}

// tlsHandshake runs a real TLS 1.3 handshake in which a server that requires
// and verifies client certificates against the root accepts the leaf.
func tlsHandshake(t *testing.T, ca *signer.CA, leaf *x509.Certificate, key crypto.Signer) {
	t.Helper()
	serverCert, serverRoots := serverCertificate(t)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Root)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err
			return
		}
		peer := tc.ConnectionState().PeerCertificates
		if len(peer) == 0 || !peer[0].Equal(leaf) {
			got <- errors.New("server saw another client certificate")
			return
		}
		_, err = c.Write([]byte("ok"))
		got <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs:    serverRoots,
		ServerName: "server.test",
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{leaf.Raw, ca.Issuer.Certificate().Raw},
			PrivateKey:  key,
		}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read: %v %q", err, buf)
	}
	if err := <-got; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func serverCertificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "server.test"},
		DNSNames: []string{"server.test"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestHSM_InitTwice_CreatesNothingAndSaysWhatExists(t *testing.T) {
	cfg, _ := hsmCA(t, "twice")
	rep, err := signer.InitCA(cfg, signer.Keys{}, pkiURL, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 0 {
		t.Fatalf("second init created %v", rep.Created)
	}
	if len(rep.Existed) != 4 {
		t.Fatalf("second init reports %v, want root key, issuing key and both certificates", rep.Existed)
	}
}

func TestHSM_KeyCertificateMismatch_RefusesToStart(t *testing.T) {
	cfg, _ := hsmCA(t, "mismatch")
	cfg.IssuingKey = token.URI("mismatch-root") // the wrong key for issuing.pem
	_, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, pkiURL, time.Now())
	if !errors.Is(err, signer.ErrKeyMismatch) {
		t.Fatalf("got %v, want ErrKeyMismatch", err)
	}
	for _, want := range []string{"issuing.pem", "mismatch-root", "sha256:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %q", err, want)
		}
	}
}

func TestHSM_ExternalRootCeremony(t *testing.T) {
	dir := t.TempDir()
	cfg := signer.CAConfig{Dir: dir, IssuingKey: token.URI(fmt.Sprintf("ext-issuing-%d", time.Now().UnixNano())), Issuing: signer.CAName{CommonName: "certdesk External Issuing"}}
	rep, err := signer.InitCA(cfg, signer.Keys{}, pkiURL, true, time.Now())
	if err != nil {
		t.Fatalf("init --external-root: %v", err)
	}
	if _, err := os.Stat(cfg.CSRPath()); err != nil || len(rep.Created) != 2 {
		t.Fatalf("want issuing key and CSR created, got %v (%v)", rep.Created, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.pem")); err == nil {
		t.Fatal("an external-root init must not create a root")
	}
	csrPEM, _ := os.ReadFile(cfg.CSRPath())
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	// The offline root, played by software keys in this test.
	linter, _ := signer.NewLinter()
	offline := func() (*x509.Certificate, crypto.Signer) {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		der, err := signer.NewRoot(k, pkix.Name{CommonName: "Offline Root"}, time.Now(), 3650*24*time.Hour, linter)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k
	}
	root, rootKey := offline()
	otherRoot, _ := offline()
	intDER, err := signer.NewIntermediate(root, rootKey, csr.PublicKey, csr.Subject, time.Now(), 1825*24*time.Hour, signer.IntermediateURLs(pkiURL), linter)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate for another key, and one that chains to another root, are refused.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrongKeyDER, _ := signer.NewIntermediate(root, rootKey, otherKey.Public(), csr.Subject, time.Now(), 1825*24*time.Hour, signer.IntermediateURLs(pkiURL), linter)
	if err := signer.ImportIssuing(cfg, signer.Keys{}, signer.PEM(wrongKeyDER), signer.PEM(root.Raw), time.Now()); !errors.Is(err, signer.ErrBadIntermediate) || !strings.Contains(err.Error(), "not the issuing key") {
		t.Fatalf("import of a certificate for another key: %v", err)
	}
	if err := signer.ImportIssuing(cfg, signer.Keys{}, signer.PEM(intDER), signer.PEM(otherRoot.Raw), time.Now()); !errors.Is(err, signer.ErrBadIntermediate) {
		t.Fatalf("import against the wrong root: %v", err)
	}
	if err := signer.ImportIssuing(cfg, signer.Keys{}, signer.PEM(intDER), signer.PEM(root.Raw), time.Now()); err != nil {
		t.Fatalf("import: %v", err)
	}
	ca, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, pkiURL, time.Now())
	if err != nil {
		t.Fatalf("LoadCA after import: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := issueFromCSR(t, ca, newCSR(t, key))
	if err := leaf.CheckSignatureFrom(ca.Issuer.Certificate()); err != nil {
		t.Fatal(err)
	}
}

// TestHSM_PreviousIssuingCAs_CheckedAtLoad: each ca.previous entry is
// loaded with its key checked against its certificate and its certificate
// against the root, as the current issuing CA is; its certificates' URLs
// carry its own segment.
func TestHSM_PreviousIssuingCAs_CheckedAtLoad(t *testing.T) {
	oldCfg, _ := hsmCA(t, "prev-old")
	otherCfg, _ := hsmCA(t, "prev-other") // under another root
	// The new issuing CA: a new key and ca.dir under the old root.
	newCfg := oldCfg
	newCfg.Dir = filepath.Join(token.Dir, "ca-prev-new")
	newCfg.IssuingKey = token.URI("prev-new-issuing")
	newCfg.URLSegment = "n2"
	if err := os.MkdirAll(newCfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(oldCfg.RootPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newCfg.RootPath(), root, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(newCfg, signer.Keys{}, pkiURL, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		prev signer.PreviousCAConfig
		want string // "" loads
	}{
		{"the old issuing CA with its key", signer.PreviousCAConfig{Cert: oldCfg.IssuingPath(), Key: oldCfg.IssuingKey}, ""},
		{"another key than the certificate's", signer.PreviousCAConfig{Cert: oldCfg.IssuingPath(), Key: oldCfg.RootKey}, "ca.previous[0]: " + oldCfg.IssuingPath() + " against key"},
		{"an issuing CA of another root", signer.PreviousCAConfig{Cert: otherCfg.IssuingPath(), Key: otherCfg.IssuingKey}, "not signed by the root"},
		{"the current issuing CA", signer.PreviousCAConfig{Cert: newCfg.IssuingPath(), Key: newCfg.IssuingKey, URLSegment: "x"}, "is the current issuing CA"},
		{"a missing certificate", signer.PreviousCAConfig{Cert: filepath.Join(token.Dir, "nope.pem"), Key: oldCfg.IssuingKey}, "ca.previous[0]: certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newCfg
			cfg.Previous = []signer.PreviousCAConfig{tt.prev}
			ca, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, pkiURL, time.Now())
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want one containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ca.Previous) != 1 || ca.Previous[0].Issuer.URLs().CRL != pkiURL+"/crl/issuing.crl" || ca.Issuer.URLs().CRL != pkiURL+"/crl/n2/issuing.crl" ||
				ca.Issuer.URLs().OCSP != pkiURL+"/ocsp/n2" || ca.Previous[0].Issuer.URLs().OCSP != pkiURL+"/ocsp" {
				t.Fatalf("previous %+v, current URLs %+v", ca.Previous, ca.Issuer.URLs())
			}
		})
	}
}

// TestCAConfig_PreviousAndURLSegment_Validated: each previous CA needs a
// certificate and a key, and every issuing CA's URL segment is distinct
// and well-formed.
func TestCAConfig_PreviousAndURLSegment_Validated(t *testing.T) {
	base := signer.CAConfig{Dir: "/ca", IssuingKey: "pkcs11:object=i"}.WithDefaults()
	tests := []struct {
		name    string
		segment string
		prev    []signer.PreviousCAConfig
		want    string
	}{
		{"no segment, no previous", "", nil, ""},
		{"one previous without a segment", "r2", []signer.PreviousCAConfig{{Cert: "/old.pem", Key: "pkcs11:object=o"}}, ""},
		{"previous without cert", "r2", []signer.PreviousCAConfig{{Key: "pkcs11:object=o"}}, "ca.previous[0].cert is required"},
		{"previous without key", "r2", []signer.PreviousCAConfig{{Cert: "/old.pem"}}, "ca.previous[0].key is required"},
		{"two CAs on the paths without a segment", "", []signer.PreviousCAConfig{{Cert: "/old.pem", Key: "pkcs11:object=o"}}, "ca.previous[0].url_segment: \"\" is also ca.url_segment"},
		{"two previous on one segment", "r3", []signer.PreviousCAConfig{{Cert: "/a.pem", Key: "k", URLSegment: "r2"}, {Cert: "/b.pem", Key: "k", URLSegment: "r2"}}, "ca.previous[1].url_segment"},
		{"upper case segment", "R2", nil, "ca.url_segment"},
		{"segment with a slash", "a/b", nil, "ca.url_segment"},
		{"the segment issuing", "issuing", nil, "ca.url_segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.URLSegment, c.Previous = tt.segment, tt.prev
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
