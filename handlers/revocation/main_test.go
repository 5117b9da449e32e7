package revocation_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/certdesk/certdesk/handlers"
	"github.com/certdesk/certdesk/handlers/issuance"
	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer/pkcs11/softhsmtest"
	"github.com/certdesk/certdesk/signer/signertest"
	"github.com/certdesk/certdesk/web"
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

// testCA is a CA hierarchy whose keys are in the token.
type testCA = signertest.CA

// hsmCA creates (once per name) a hierarchy in the token.
func hsmCA(t testing.TB, name string) *testCA { return signertest.HSMCA(t, token, name) }

// revocationEnv is a store, a CA, a running Revocation and an HTTP server.
type revocationEnv struct {
	t     *testing.T
	store *models.Store
	ca    *testCA
	h     *revocation.Service
	srv   *httptest.Server
	wf    *issuance.Workflow
	dir   string
}

// newRevocation makes a Revocation over store and CA, serves it and runs it
// until the test ends; it returns once both CRLs and the OCSP responder are
// available.
func newRevocation(t *testing.T, store *models.Store, ca *testCA, tweak func(*revocation.Config)) *revocationEnv {
	t.Helper()
	env := startRevocation(t, store, ca, tweak)
	env.waitReady()
	return env
}

// waitReady waits until both CRLs and the OCSP responder are available.
func (e *revocationEnv) waitReady() {
	e.t.Helper()
	e.waitFor("both CRLs and the OCSP responder", 20*time.Second, func() bool {
		st := e.h.Status()
		return len(st.CRLs) == 2 && st.OCSP != nil
	})
}

// startRevocation is newRevocation without the wait.
func startRevocation(t *testing.T, store *models.Store, ca *testCA, tweak func(*revocation.Config)) *revocationEnv {
	t.Helper()
	cfg := revocation.Config{
		Store: store, CA: ca.CA, IssuingKey: ca.Config.IssuingKey, CADir: ca.Config.Dir, PKIURL: "http://127.0.0.1",
		Log: testLogs, PollInterval: 200 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := revocation.New(cfg)
	if err != nil {
		t.Fatalf("NewRevocation: %v", err)
	}
	e := echo.New()
	e.HideBanner = true
	hh := &handlers.Revocation{Service: h}
	web.RevocationRoutes(e, hh)
	e.GET("/api/v1/revocation", hh.Status)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &revocationEnv{t: t, store: store, ca: ca, h: h, srv: srv, dir: t.TempDir(),
		wf: &issuance.Workflow{Store: store, Issuer: ca.CA.Issuer, Log: testLogs}}
}

// waitFor polls cond until it holds or fails the test after limit.
func (e *revocationEnv) waitFor(what string, limit time.Duration, cond func() bool) time.Duration {
	e.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			e.t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// newOrg creates the organisation acme once per store.
func newOrg(t testing.TB, s *models.Store) {
	t.Helper()
	if _, err := s.GetOrg(bg, "acme"); err == nil {
		return
	}
	o := &models.Organization{Slug: "acme", Name: "Acme Corp", URIPrefixes: models.StringList{"spiffe://example.org/partners/acme/"},
		DNSSuffixes: models.StringList{"acme.example"}, MaxValidityDays: 90}
	if err := s.CreateOrg(bg, admin, o); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
}

// issued is a client certificate and its key.
type issued struct {
	cert *models.Certificate
	x509 *x509.Certificate
	key  crypto.Signer
}

// issue runs a partner request through the workflow (submit, approve, HSM).
func (e *revocationEnv) issue(name string) issued {
	e.t.Helper()
	newOrg(e.t, e.store)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://example.org/partners/acme/" + name)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, URIs: []*url.URL{u}}, key)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.wf.Submit(bg, partner, issuance.Submission{Org: "acme", CSRPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), ValidityDays: 30})
	if err != nil {
		e.t.Fatalf("Submit: %v", err)
	}
	r, err = e.wf.Approve(bg, admin, r.ID, "ok")
	if err != nil {
		e.t.Fatalf("Approve: %v", err)
	}
	c, err := e.store.GetCertificate(bg, *r.CertificateID)
	if err != nil {
		e.t.Fatal(err)
	}
	xc, err := x509.ParseCertificate(c.DER)
	if err != nil {
		e.t.Fatal(err)
	}
	return issued{cert: c, x509: xc, key: key}
}

// revoke revokes through the store and tells the Revocation, as the
// certificate handler does.
func (e *revocationEnv) revoke(c issued, reason int) *models.Certificate {
	e.t.Helper()
	rc, err := e.store.RevokeCertificate(bg, admin2, c.cert.ID, reason)
	if err != nil {
		e.t.Fatalf("RevokeCertificate: %v", err)
	}
	e.h.Revoked(rc)
	return rc
}

// get fetches path from the server.
func (e *revocationEnv) get(path string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// postOCSP POSTs an OCSP request to /ocsp.
func (e *revocationEnv) postOCSP(der []byte) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := http.Post(e.srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(der))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// write puts b into a file of the env's temp dir and returns its path.
func (e *revocationEnv) write(name string, b []byte) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// crlNumber is the served CRL number of issuer.
func (e *revocationEnv) crlNumber(issuer string) int64 {
	for _, c := range e.h.Status().CRLs {
		if c.Issuer == issuer {
			return c.Number
		}
	}
	return 0
}
