package revocation_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	return rotatedCAWith(t, ca, name, nil)
}

// rotatedCAWith is rotatedCA with tweak applied to the new configuration
// (its URL segment, its previous CAs) before ca init.
func rotatedCAWith(t *testing.T, ca *testCA, name string, tweak func(*signer.CAConfig)) *testCA {
	t.Helper()
	cfg := ca.Config
	cfg.Dir = filepath.Join(t.TempDir(), "ca-"+name)
	cfg.IssuingKey = token.URI(name + "-issuing")
	if tweak != nil {
		tweak(&cfg)
	}
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

// TestRevocation_AfterRotation_OnlyNewReplicas_ServeAndResignThePreviousCA:
// after the rotation of docs/operator.md §9 only replicas of the new
// issuing CA run, configured with the old one in ca.previous. They serve
// the old CA's CRLs at the paths its certificates name and keep signing
// them with the old key: a revocation of an old certificate reaches the
// old CA's partition, full CRL and OCSP answers; the new CA's certificates
// name their own paths (/crl/<segment>/…, /ocsp/<segment>); the nginx
// bundle holds both CAs' CRLs and the root's; openssl verify -crl_check
// accepts each CA's good certificate against its own CRL.
func TestRevocation_AfterRotation_OnlyNewReplicas_ServeAndResignThePreviousCA(t *testing.T) {
	store := modelstest.Postgres(t)
	oldCA := hsmCA(t, "retire-old")
	var gone, later, stays issued
	var oldPartNumber int64
	t.Run("before the rotation: the old CA's replica", func(t *testing.T) {
		old := newRevocation(t, store, oldCA, nil)
		gone, later, stays = old.issue("billing"), old.issue("payments"), old.issue("ledger")
		old.revoke(gone, 1)
		_, path := partitionOf(t, later.x509)
		old.waitFor("the old CA's partition", 10*time.Second, func() bool { res, _ := old.get(path, nil); return res.StatusCode == 200 })
		_, der := old.get(path, nil)
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		oldPartNumber = crl.Number.Int64()
	}) // the old replica stops here

	newCA := rotatedCAWith(t, oldCA, "retire-new", func(c *signer.CAConfig) {
		c.URLSegment = "r2"
		c.Previous = []signer.PreviousCAConfig{{Cert: oldCA.Config.IssuingPath(), Key: oldCA.Config.IssuingKey}}
	})
	if len(newCA.CA.Previous) != 1 || !newCA.CA.Previous[0].Issuer.Certificate().Equal(oldCA.CA.Issuer.Certificate()) {
		t.Fatal("the new configuration did not load the old issuing CA as previous")
	}
	nw := newRevocation(t, store, newCA, nil)
	fresh := nw.issue("billing-2")
	if got := fresh.x509.OCSPServer; len(got) != 1 || got[0] != "http://127.0.0.1/ocsp/r2" {
		t.Fatalf("the new CA's certificate names OCSP %v, want its own http://127.0.0.1/ocsp/r2", got)
	}
	newPart := fresh.x509.CRLDistributionPoints[0]
	if !strings.HasPrefix(newPart, "http://127.0.0.1/crl/r2/issuing/") {
		t.Fatalf("the new CA's certificate names CRL DP %s, want one under /crl/r2/issuing/", newPart)
	}
	newPartPath := strings.TrimPrefix(newPart, "http://127.0.0.1")

	oldCert, newCert := oldCA.CA.Issuer.Certificate(), newCA.CA.Issuer.Certificate()
	crlAt := func(path string, by *x509.Certificate) *x509.RevocationList {
		t.Helper()
		res, der := nw.get(path, nil)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, res.StatusCode, der)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(by); err != nil {
			t.Fatalf("%s is not signed by %s: %v", path, by.Subject, err)
		}
		return crl
	}
	listed := func(crl *x509.RevocationList, c issued) bool {
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.x509.SerialNumber) == 0 {
				return true
			}
		}
		return false
	}
	_, laterPath := partitionOf(t, later.x509)
	nw.waitFor("the old CA's partition from the new replica", 10*time.Second, func() bool { res, _ := nw.get(laterPath, nil); return res.StatusCode == 200 })
	if crl := crlAt(newPartPath, newCert); listed(crl, gone) {
		t.Fatal("the new CA's partition lists an old CA's certificate")
	}
	// The gateways' paths stay the current CA's.
	crlAt("/crl/issuing.crl", newCert)
	crlAt("/crl/r2/issuing.crl", newCert)
	crlAt("/crl/r2/issuing-delta.crl", newCert)

	// A revocation of an old CA's certificate, made through the new
	// replica: the old key signs its partition, delta and full CRL again.
	nw.revoke(later, 4)
	nw.waitFor("the old CA's partition with the revocation", 20*time.Second, func() bool { return listed(crlAt(laterPath, oldCert), later) })
	if n := crlAt(laterPath, oldCert).Number.Int64(); n <= oldPartNumber {
		t.Fatalf("the old CA's partition number %d is not above %d of before the rotation", n, oldPartNumber)
	}
	if !listed(crlAt("/crl/issuing-delta.crl", oldCert), later) {
		t.Fatal("the old CA's delta CRL does not list the revocation")
	}
	bundleCRLs := func() []*x509.RevocationList {
		t.Helper()
		res, b := nw.get("/crl/bundle.pem", nil)
		if res.StatusCode != 200 {
			t.Fatalf("/crl/bundle.pem: %d", res.StatusCode)
		}
		var out []*x509.RevocationList
		for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
			crl, err := x509.ParseRevocationList(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, crl)
		}
		return out
	}
	nw.waitFor("the old CA's full CRL with the revocation in the bundle", 20*time.Second, func() bool {
		crls := bundleCRLs()
		return len(crls) == 3 && crls[1].CheckSignatureFrom(oldCert) == nil && listed(crls[1], later)
	})
	if crls := bundleCRLs(); crls[0].CheckSignatureFrom(newCert) != nil || crls[2].CheckSignatureFrom(newCA.CA.Root) != nil {
		t.Fatal("the bundle is not the new CA's CRL, the old CA's and the root's, in that order")
	}

	// OCSP at /ocsp and at the new CA's own path: each CA's certificates
	// are answered by a responder that CA certified.
	ask := func(path string, c issued, by *x509.Certificate, get bool) *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(c.x509, by, &ocsp.RequestOptions{Hash: crypto.SHA1})
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if get {
			_, body = nw.get(path+"/"+base64.StdEncoding.EncodeToString(req), nil)
		} else {
			res, err := http.Post(nw.srv.URL+path, "application/ocsp-request", bytes.NewReader(req))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
		}
		r, err := ocsp.ParseResponseForCert(body, c.x509, by)
		if err != nil {
			t.Fatalf("OCSP %s: the answer does not verify against its CA: %v", path, err)
		}
		return r
	}
	nw.waitFor("the old CA's OCSP answer for the revocation", 10*time.Second, func() bool {
		return ask("/ocsp", later, oldCert, false).Status == ocsp.Revoked
	})
	for _, tt := range []struct {
		name, path string
		get        bool
		c          issued
		by         *x509.Certificate
		want       int
	}{
		{"old CA, revoked before the rotation", "/ocsp", false, gone, oldCert, ocsp.Revoked},
		{"old CA, revoked after it", "/ocsp", true, later, oldCert, ocsp.Revoked},
		{"old CA, good", "/ocsp", false, stays, oldCert, ocsp.Good},
		{"new CA at its own path, POST", "/ocsp/r2", false, fresh, newCert, ocsp.Good},
		{"new CA at its own path, GET", "/ocsp/r2", true, fresh, newCert, ocsp.Good},
	} {
		if r := ask(tt.path, tt.c, tt.by, tt.get); r.Status != tt.want {
			t.Fatalf("%s: OCSP status %d, want %d", tt.name, r.Status, tt.want)
		}
	}

	// openssl: each CA's certificate against its own CRL (the one its CRL
	// DP names), and against the nginx bundle.
	root := nw.write("root.pem", signer.PEM(newCA.CA.Root.Raw))
	both := nw.write("issuing-both.pem", append(signer.PEM(oldCert.Raw), signer.PEM(newCert.Raw)...))
	_, bundle := nw.get("/crl/bundle.pem", nil)
	bundlePath := nw.write("bundle.pem", bundle)
	pemOf := func(path string) string {
		_, b := nw.get(strings.TrimSuffix(path, ".crl")+".pem", nil)
		return nw.write(strings.NewReplacer("/", "_").Replace(path)+".pem", b)
	}
	_, staysPath := partitionOf(t, stays.x509)
	for _, tt := range []struct {
		name, cert, crl, check string
		wantOK                 bool
		want                   string
	}{
		{"new CA's certificate, its partition", nw.write("fresh.pem", signer.PEM(fresh.cert.DER)), pemOf(newPartPath), "-crl_check", true, "OK"},
		{"old CA's good certificate, its partition", nw.write("stays.pem", signer.PEM(stays.cert.DER)), pemOf(staysPath), "-crl_check", true, "OK"},
		{"old CA's certificate revoked after the rotation, its partition", nw.write("later.pem", signer.PEM(later.cert.DER)), pemOf(laterPath), "-crl_check", false, "certificate revoked"},
		{"new CA's certificate, the bundle", nw.write("fresh.pem", signer.PEM(fresh.cert.DER)), bundlePath, "-crl_check_all", true, "OK"},
		{"old CA's good certificate, the bundle", nw.write("stays.pem", signer.PEM(stays.cert.DER)), bundlePath, "-crl_check_all", true, "OK"},
		{"old CA's revoked certificate, the bundle", nw.write("later.pem", signer.PEM(later.cert.DER)), bundlePath, "-crl_check_all", false, "certificate revoked"},
	} {
		out, err := openssl(t, "verify", tt.check, "-CAfile", root, "-untrusted", both, "-CRLfile", tt.crl, tt.cert)
		if (err == nil) != tt.wantOK || !strings.Contains(out, tt.want) {
			t.Fatalf("%s: openssl verify %s: err %v, want ok=%v and %q:\n%s", tt.name, tt.check, err, tt.wantOK, tt.want, out)
		}
	}
}
