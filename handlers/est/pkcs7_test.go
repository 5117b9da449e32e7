package est

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certdesk/certdesk/signer/signertest"
)

func TestCertsOnly_OpenSSLPrintsEveryCertificate(t *testing.T) {
	ca := signertest.HSMCA(t, token, "est")
	der, err := certsOnly(ca.CA.Issuer.Certificate().Raw, ca.CA.Root.Raw)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "certs.p7")
	if err := os.WriteFile(p, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "pkcs7", "-inform", "DER", "-in", p, "-print_certs").CombinedOutput()
	if err != nil {
		dump, _ := exec.Command("openssl", "asn1parse", "-inform", "DER", "-in", p, "-i").CombinedOutput()
		t.Fatalf("openssl pkcs7: %v\n%s\n%s", err, out, dump)
	}
	if n := strings.Count(string(out), "BEGIN CERTIFICATE"); n != 2 {
		t.Fatalf("openssl printed %d certificates:\n%s", n, out)
	}
	for _, c := range []*x509.Certificate{ca.CA.Issuer.Certificate(), ca.CA.Root} {
		if !strings.Contains(string(out), c.Subject.CommonName) {
			t.Fatalf("%s missing:\n%s", c.Subject.CommonName, out)
		}
	}
}
