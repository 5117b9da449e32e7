package revocation_test

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// partitionOf is the partition named in a certificate's CRL distribution
// point, and that URL's path.
func partitionOf(t *testing.T, c *x509.Certificate) (int, string) {
	t.Helper()
	if len(c.CRLDistributionPoints) != 1 {
		t.Fatalf("CRL distribution points %v, want one", c.CRLDistributionPoints)
	}
	u, err := url.Parse(c.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	name, _, ok := revocation.ParseCRLName(strings.TrimPrefix(u.Path, "/crl/issuing/"))
	if !ok || !strings.HasPrefix(u.Path, "/crl/issuing/") {
		t.Fatalf("CRL distribution point %s names no partition", u)
	}
	var p int
	for _, d := range strings.TrimPrefix(name, revocation.CRLIssuing+"/") {
		p = p*10 + int(d-'0')
	}
	return p, u.Path
}

// lists reports whether the DER CRL lists serial sn.
func lists(t *testing.T, der []byte, sn *big.Int) bool {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("parsing a served CRL: %v", err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(sn) == 0 {
			return true
		}
	}
	return false
}

// extension is the value of the CRL extension oid, or nil.
func extension(t *testing.T, der []byte, oid asn1.ObjectIdentifier) []byte {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range crl.Extensions {
		if e.Id.Equal(oid) {
			return e.Value
		}
	}
	return nil
}

var (
	oidIDP   = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDelta = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFresh = asn1.ObjectIdentifier{2, 5, 29, 46}
)

func TestRevocation_Partitions_OpenSSLChecksEachCertificateAgainstItsPartition(t *testing.T) {
	env := newRevocation(t, modelstest.Postgres(t), hsmCA(t, "partition"), nil)
	good, bad := env.issue("billing"), env.issue("payments")
	root := env.write("root.pem", signer.PEM(env.ca.CA.Root.Raw))
	issuing := env.write("issuing.pem", signer.PEM(env.ca.CA.Issuer.Certificate().Raw))
	goodPEM, badPEM := env.write("good.pem", signer.PEM(good.cert.DER)), env.write("bad.pem", signer.PEM(bad.cert.DER))
	goodP, goodPath := partitionOf(t, good.x509)
	badP, badPath := partitionOf(t, bad.x509)
	for _, c := range []issued{good, bad} {
		row, err := env.store.GetCertificate(bg, c.cert.ID)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := partitionOf(t, c.x509)
		if kid, _ := signer.KeyID(env.ca.CA.Issuer.Certificate().PublicKey); row.IssuerKeyID != kid || row.CRLPartition != p {
			t.Fatalf("recorded issuer %q partition %d, want %q and the CRL DP's %d", row.IssuerKeyID, row.CRLPartition, kid, p)
		}
	}

	env.revoke(bad, models.ReasonKeyCompromise)
	var badCRL []byte
	env.waitFor("the revocation in its partition", 20*time.Second, func() bool {
		res, der := env.get(badPath, nil)
		badCRL = der
		return res.StatusCode == 200 && lists(t, der, bad.x509.SerialNumber)
	})
	env.waitFor("the revoke-to-publish time", 20*time.Second, func() bool { return env.h.Status().LastRevokeToPublishMS != nil })
	if extension(t, badCRL, oidIDP) == nil {
		t.Fatal("the partition has no issuing distribution point")
	}
	// The full CRL keeps covering everything, without an IDP, for gateways
	// that load one file.
	env.waitFor("the revocation in the full CRL", 20*time.Second, func() bool {
		_, der := env.get("/crl/issuing.crl", nil)
		return lists(t, der, bad.x509.SerialNumber) && extension(t, der, oidIDP) == nil
	})

	partitionPEM := func(path string) string {
		res, der := env.get(strings.TrimSuffix(path, ".crl")+".pem", nil)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
		return env.write(strings.NewReplacer("/", "-").Replace(path)+".pem", der)
	}
	_, rootCRL := env.get("/crl/root.pem", nil)
	rootCRLPath := env.write("root.crl.pem", rootCRL)
	other := signer.PartitionURL("/crl/issuing.crl", (goodP+1)%signer.DefaultCRLPartitions)
	if (goodP+1)%signer.DefaultCRLPartitions == badP {
		other = signer.PartitionURL("/crl/issuing.crl", (goodP+2)%signer.DefaultCRLPartitions)
	}
	tests := []struct {
		name, cert, crl string
		wantOK          bool
		want            string
	}{
		{"good certificate, its partition", goodPEM, partitionPEM(goodPath), true, "OK"},
		{"revoked certificate, its partition", badPEM, partitionPEM(badPath), false, "certificate revoked"},
		// The trap of CRL scopes: a partition whose IDP does not name the
		// certificate's CRL DP is refused (OpenSSL error 44).
		{"good certificate, another partition", goodPEM, partitionPEM(other), false, "different CRL scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := openssl(t, "verify", "-crl_check_all", "-CAfile", root, "-untrusted", issuing,
				"-CRLfile", tt.crl, "-CRLfile", rootCRLPath, tt.cert)
			if (err == nil) != tt.wantOK || !strings.Contains(out, tt.want) {
				t.Fatalf("openssl verify -crl_check_all: err %v, want ok=%v and %q:\n%s", err, tt.wantOK, tt.want, out)
			}
			if strings.Contains(out, "different CRL scope") && tt.wantOK {
				t.Fatalf("openssl finds the partition's scope different from the certificate's CRL DP:\n%s", out)
			}
		})
	}
	if res, _ := env.get("/crl/issuing/9999.crl", nil); res.StatusCode != 404 {
		t.Errorf("a partition beyond the count: %d, want 404", res.StatusCode)
	}
	if res, _ := env.get("/crl/issuing/x.crl", nil); res.StatusCode != 404 {
		t.Errorf("a malformed partition name: %d, want 404", res.StatusCode)
	}
}

func TestRevocation_DeltaCRL_OpenSSLUsesIt(t *testing.T) {
	env := newRevocation(t, modelstest.Postgres(t), hsmCA(t, "delta"), nil)
	good, bad := env.issue("billing"), env.issue("payments")
	root := env.write("root.pem", signer.PEM(env.ca.CA.Root.Raw))
	issuing := env.write("issuing.pem", signer.PEM(env.ca.CA.Issuer.Certificate().Raw))
	goodPEM, badPEM := env.write("good.pem", signer.PEM(good.cert.DER)), env.write("bad.pem", signer.PEM(bad.cert.DER))
	if len(bad.x509.Extensions) == 0 || !hasExt(bad.x509, oidFresh) {
		t.Fatal("the certificate has no freshest CRL extension")
	}
	_, base := env.get("/crl/issuing.crl", nil)
	if extension(t, base, oidFresh) == nil {
		t.Fatal("the full CRL has no freshest CRL extension")
	}
	baseCRL, _ := x509.ParseRevocationList(base)

	env.revoke(bad, models.ReasonSuperseded)
	// The delta made on the pre-revocation base (later ones follow a newer
	// full CRL): read from the store, where every published CRL stays.
	var delta []byte
	env.waitFor("a delta CRL on the old base listing the revocation", 20*time.Second, func() bool {
		var rows []models.CRL
		if err := env.store.DB().Where("issuer = ?", revocation.CRLDelta).Order("number").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			var n *big.Int
			if v := extension(t, r.DER, oidDelta); v != nil {
				if _, err := asn1.Unmarshal(v, &n); err == nil && n.Cmp(baseCRL.Number) == 0 && lists(t, r.DER, bad.x509.SerialNumber) {
					delta = r.DER
					return true
				}
			}
		}
		return false
	})
	if lists(t, base, bad.x509.SerialNumber) {
		t.Fatal("the base CRL already lists the revocation: the delta would prove nothing")
	}
	basePath := env.write("base.crl.pem", pemCRL(base))
	deltaPath := env.write("delta.crl.pem", pemCRL(delta))
	tests := []struct {
		name   string
		cert   string
		args   []string
		wantOK bool
		want   string
	}{
		{"revoked, base and delta", badPEM, []string{"-use_deltas", "-CRLfile", basePath, "-CRLfile", deltaPath}, false, "certificate revoked"},
		{"good, base and delta", goodPEM, []string{"-use_deltas", "-CRLfile", basePath, "-CRLfile", deltaPath}, true, "OK"},
		{"revoked, base alone", badPEM, []string{"-use_deltas", "-CRLfile", basePath}, true, "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "-crl_check", "-CAfile", root, "-untrusted", issuing}, tt.args...)
			out, err := openssl(t, append(args, tt.cert)...)
			if (err == nil) != tt.wantOK || !strings.Contains(out, tt.want) {
				t.Fatalf("openssl %v: err %v, want ok=%v and %q:\n%s", args, err, tt.wantOK, tt.want, out)
			}
		})
	}
}

// hasExt reports whether c carries the extension oid.
func hasExt(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// pemCRL is a DER CRL in PEM.
func pemCRL(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
