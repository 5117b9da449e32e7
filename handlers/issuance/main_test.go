package issuance_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/url"
	"sync"
	"testing"

	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/signer/signertest"
)

// token is this test binary's SoftHSM2 token: SOFTHSM2_CONF is read once,
// at the first PKCS#11 configuration in the process.
var token *softhsmtest.Token

func TestMain(m *testing.M) { softhsmtest.Main(m, "certdesk", &token) }

var (
	bg       = context.Background()
	admin    = modelstest.Admin
	admin2   = modelstest.Admin2
	partner  = modelstest.Partner
	testLogs = modelstest.Logs
)

// env is a workflow over a real store and an issuing CA in the token.
type env struct {
	t     *testing.T
	store *models.Store
	ca    *signertest.CA
	wf    *issuance.Workflow
	pub   *publisher
}

// newEnv makes the workflow over s with the shared test CA, and the
// organisation acme.
func newEnv(t *testing.T, s *models.Store) *env {
	t.Helper()
	ca := signertest.HSMCA(t, token, "issuance")
	pub := &publisher{}
	e := &env{t: t, store: s, ca: ca, pub: pub,
		wf: &issuance.Workflow{Store: s, Issuer: ca.CA.Issuer, Log: testLogs, Publisher: pub}}
	o := &models.Organization{Slug: "acme", Name: "Acme Corp", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"},
		DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}
	if err := s.CreateOrg(bg, admin, o); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	return e
}

// publisher records what the workflow published.
type publisher struct {
	mu      sync.Mutex
	revoked []string
}

func (p *publisher) Revoked(c *models.Certificate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked = append(p.revoked, c.ID)
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.revoked)
}

// csr makes a P-256 key and a CSR for the given URI SANs.
func csr(t testing.TB, uris ...string) (string, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc"}}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tpl.URIs = append(tpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), key
}

// submit submits a partner request for one identity of acme.
func (e *env) submit(name string) *models.Request {
	e.t.Helper()
	pemText, _ := csr(e.t, "spiffe://example.org/partners/acme/"+name)
	r, err := e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: pemText, ValidityDays: 30})
	if err != nil {
		e.t.Fatalf("Submit: %v", err)
	}
	return r
}

// issue submits and approves a request and returns its certificate.
func (e *env) issue(name string) *models.Certificate {
	e.t.Helper()
	r, err := e.wf.Approve(bg, admin, e.submit(name).ID, "ok")
	if err != nil {
		e.t.Fatalf("Approve: %v", err)
	}
	c, err := e.store.GetCertificate(bg, *r.CertificateID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// verify checks that der chains to the test CA for client authentication.
func (e *env) verify(der []byte) *x509.Certificate {
	e.t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		e.t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(e.ca.CA.Root)
	inter.AddCert(e.ca.CA.Issuer.Certificate())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		e.t.Fatalf("issued certificate does not verify: %v", err)
	}
	return cert
}

// mustCSRKey is the public key of a PEM CSR.
func mustCSRKey(t testing.TB, pemText string) crypto.PublicKey {
	t.Helper()
	b, _ := pem.Decode([]byte(pemText))
	if b == nil {
		t.Fatal("no PEM CSR")
	}
	c, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.PublicKey
}

// mustIdentities parses identities.
func mustIdentities(t testing.TB, ids []string) signer.Identities {
	t.Helper()
	out, err := signer.ParseIdentities(ids)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
