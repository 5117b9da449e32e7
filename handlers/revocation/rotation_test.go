package revocation_test

import (
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// rotatedCA makes a new issuing CA under ca's root the way docs/operator.md
// §9 says: a new key label, a new ca.dir with a copy of root.pem, ca init.
func rotatedCA(t *testing.T, ca *testCA, name string) *testCA {
	t.Helper()
	cfg := ca.Config
	cfg.Dir = filepath.Join(t.TempDir(), "ca-"+name)
	cfg.IssuingKey = token.URI(name + "-issuing")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(ca.Config.Dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "root.pem"), root, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signer.InitCA(cfg, signer.Keys{}, "http://127.0.0.1", false, time.Now()); err != nil {
		t.Fatalf("ca init for the new issuing CA: %v", err)
	}
	loaded, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, "http://127.0.0.1", time.Now())
	if err != nil {
		t.Fatalf("loading the new issuing CA: %v", err)
	}
	if !loaded.Root.Equal(ca.CA.Root) || loaded.Issuer.Certificate().Equal(ca.CA.Issuer.Certificate()) {
		t.Fatal("want a new issuing CA under the same root")
	}
	return &testCA{Config: cfg, CA: loaded}
}

// TestRevocation_IssuingCAReplaced_EachServesItsOwn: after the issuing CA is
// replaced, and while replicas of the old and the new one share the
// database (a rolling switch), each serves a CRL and OCSP answers signed by
// its own CA, the new CA's CRL numbers go on above the old ones, and
// neither keeps regenerating because of the other.
func TestRevocation_IssuingCAReplaced_EachServesItsOwn(t *testing.T) {
	store := modelstest.Postgres(t)
	oldCA := hsmCA(t, "rotate-old")
	old := newRevocation(t, store, oldCA, nil)
	gone := old.issue("billing")
	old.revoke(gone, 1)
	old.waitFor("the old CA's CRL with the revocation", 5*time.Second, func() bool { return old.crlNumber(revocation.CRLIssuing) >= 2 })

	newCA := rotatedCA(t, oldCA, "rotate-new")
	nw := newRevocation(t, store, newCA, nil)
	fresh := nw.issue("billing-2")

	servedCRL := func(e *revocationEnv, ca *testCA) *x509.RevocationList {
		t.Helper()
		res, der := e.get("/crl/issuing.crl", nil)
		if res.StatusCode != 200 {
			t.Fatalf("/crl/issuing.crl: %d", res.StatusCode)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(ca.CA.Issuer.Certificate()); err != nil {
			t.Fatalf("the served issuing CRL is not signed by this replica's CA: %v", err)
		}
		return crl
	}
	oldCRL, newCRL := servedCRL(old, oldCA), servedCRL(nw, newCA)
	if newCRL.Number.Cmp(oldCRL.Number) <= 0 {
		t.Fatalf("the new CA's CRL number %v is not above the old CA's %v", newCRL.Number, oldCRL.Number)
	}
	// Both replicas sign root CRLs with the one root key: one series.
	_, rootDER := nw.get("/crl/root.crl", nil)
	if rootCRL, err := x509.ParseRevocationList(rootDER); err != nil || rootCRL.CheckSignatureFrom(newCA.CA.Root) != nil {
		t.Fatalf("root CRL: %v", err)
	}

	// No ping-pong: a few polls later neither CRL nor responder has changed.
	oldN, newN := old.crlNumber(revocation.CRLIssuing), nw.crlNumber(revocation.CRLIssuing)
	oldR, newR := old.h.Status().OCSP.Serial, nw.h.Status().OCSP.Serial
	time.Sleep(5 * 200 * time.Millisecond)
	if old.crlNumber(revocation.CRLIssuing) != oldN || nw.crlNumber(revocation.CRLIssuing) != newN ||
		old.h.Status().OCSP.Serial != oldR || nw.h.Status().OCSP.Serial != newR {
		t.Fatal("the replicas of the two CAs keep replacing each other's CRL or OCSP responder")
	}
	if oldR == newR {
		t.Fatal("both CAs use one OCSP responder")
	}

	// OCSP: each replica answers for its own CA's certificates, with a
	// responder that CA certified.
	ask := func(e *revocationEnv, c issued, ca *testCA) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(c.x509, ca.CA.Issuer.Certificate(), &ocsp.RequestOptions{Hash: crypto.SHA1})
		if err != nil {
			t.Fatal(err)
		}
		_, body := e.postOCSP(req)
		r, err := ocsp.ParseResponseForCert(body, c.x509, ca.CA.Issuer.Certificate())
		if err != nil {
			t.Fatalf("OCSP answer does not verify against its CA: %v", err)
		}
		return r
	}
	if r := ask(nw, fresh, newCA); r.Status != ocsp.Good {
		t.Fatalf("new CA's certificate: status %d, want good", r.Status)
	}
	if r := ask(old, gone, oldCA); r.Status != ocsp.Revoked || r.RevocationReason != 1 {
		t.Fatalf("old CA's revoked certificate: status %d reason %d, want revoked keyCompromise", r.Status, r.RevocationReason)
	}
	// Each CA's revocation data covers only the certificates it issued
	// (models.Certificate.IssuerKeyID): the old CA's revoked certificate is
	// on the old CA's full CRL and partition, on none of the new CA's, and
	// the new CA's responder does not vouch for it.
	listed := func(crl *x509.RevocationList, c issued) bool {
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.x509.SerialNumber) == 0 {
				return true
			}
		}
		return false
	}
	if !listed(oldCRL, gone) || listed(newCRL, gone) {
		t.Fatalf("old CA's revoked certificate: on the old CRL %v, on the new %v; want only the old", listed(oldCRL, gone), listed(newCRL, gone))
	}
	_, partPath := partitionOf(t, gone.x509)
	for _, e := range []struct {
		env  *revocationEnv
		ca   *testCA
		want bool
	}{{old, oldCA, true}, {nw, newCA, false}} {
		res, der := e.env.get(partPath, nil)
		crl, err := x509.ParseRevocationList(der)
		if res.StatusCode != 200 || err != nil || crl.CheckSignatureFrom(e.ca.CA.Issuer.Certificate()) != nil {
			t.Fatalf("%s: %d %v", partPath, res.StatusCode, err)
		}
		if listed(crl, gone) != e.want {
			t.Fatalf("%s of %s lists the old CA's revoked certificate: %v, want %v", partPath, e.ca.CA.Issuer.Certificate().Subject.CommonName, !e.want, e.want)
		}
	}
	if r := ask(nw, gone, newCA); r.Status != ocsp.Unknown {
		t.Fatalf("new CA's responder on the old CA's certificate: status %d, want unknown", r.Status)
	}
	nw.revoke(fresh, 4)
	nw.waitFor("the new CA's revocation on its full CRL", 20*time.Second, func() bool { return listed(servedCRL(nw, newCA), fresh) })
	if listed(servedCRL(nw, newCA), gone) {
		t.Fatal("the new CA's CRL lists the old CA's certificate after a revocation")
	}
	var responders int64
	if err := store.DB().Model(&models.OCSPResponder{}).Count(&responders).Error; err != nil || responders != 2 {
		t.Fatalf("%d OCSP responders stored (%v), want one per CA", responders, err)
	}
}
