package revocation_test

import (
	"crypto"
	"math/big"
	"net/http"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/certdesk/certdesk/handlers/revocation"
	"github.com/certdesk/certdesk/models/modelstest"
	"github.com/certdesk/certdesk/signer"
)

// TestRevocation_OCSPSignRate: answers signed on request (made-up serials,
// nonces) are paced, pre-signed answers are not. With a rate of one
// signature per 100 s, the first made-up serial is answered "unknown" and
// the next ones tryLater; the issued certificate stays answered, and a
// nonce request gets the pre-signed answer without the nonce.
func TestRevocation_OCSPSignRate(t *testing.T) {
	ca := hsmCA(t, "signrate")
	env := newRevocation(t, modelstest.SQLite(t), ca, func(c *revocation.Config) { c.OCSPSignRate = 0.01 })
	c := env.issue("billing")
	issuer := ca.CA.Issuer.Certificate()
	post := func(t *testing.T, der []byte) []byte {
		t.Helper()
		resp, body := env.postOCSP(der)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		return body
	}
	request := func(t *testing.T, serial *big.Int, h crypto.Hash) []byte {
		t.Helper()
		cert := *c.x509
		cert.SerialNumber = serial
		der, err := ocsp.CreateRequest(&cert, issuer, &ocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	status := func(t *testing.T, body []byte) (int, ocsp.ResponseStatus) {
		t.Helper()
		r, err := ocsp.ParseResponse(body, issuer)
		if re, ok := err.(ocsp.ResponseError); ok {
			return -1, re.Status
		}
		if err != nil {
			t.Fatalf("response does not verify: %v", err)
		}
		return r.Status, ocsp.Success
	}

	madeUp := func(i int64) *big.Int {
		return new(big.Int).Add(new(big.Int).Lsh(big.NewInt(0x5eed), 100), big.NewInt(i))
	}
	var unknown, tryLater int
	for i := int64(0); i < 10; i++ {
		switch st, rs := status(t, post(t, request(t, madeUp(i), crypto.SHA1))); {
		case rs == ocsp.Success && st == ocsp.Unknown:
			unknown++
		case rs == ocsp.TryLater:
			tryLater++
		default:
			t.Fatalf("made-up serial %d: status %d, response status %v", i, st, rs)
		}
	}
	if unknown != 1 || tryLater != 9 {
		t.Fatalf("10 made-up serials: %d unknown, %d tryLater; want 1 and 9", unknown, tryLater)
	}
	// The one answered is kept a while: asking again costs nothing.
	if st, rs := status(t, post(t, request(t, madeUp(0), crypto.SHA1))); rs != ocsp.Success || st != ocsp.Unknown {
		t.Fatalf("the made-up serial again: %d %v, want the kept unknown answer", st, rs)
	}
	// Issued certificates are not limited, whatever the CertID hash.
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		if st, rs := status(t, post(t, request(t, c.x509.SerialNumber, h))); rs != ocsp.Success || st != ocsp.Good {
			t.Fatalf("issued certificate (%v CertID) while limited: %d %v, want good", h, st, rs)
		}
	}
	// openssl's request carries a nonce: past the rate it is answered with
	// the pre-signed response, which has none, and which openssl verifies.
	certPath := env.write("c.pem", signer.PEM(c.cert.DER))
	issuingPath := env.write("issuing.pem", signer.PEM(issuer.Raw))
	rootPath := env.write("root.pem", signer.PEM(ca.CA.Root.Raw))
	reqPath := env.write("req.der", nil)
	if out, err := openssl(t, "ocsp", "-issuer", issuingPath, "-cert", certPath, "-reqout", reqPath); err != nil {
		t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
	}
	der, _ := os.ReadFile(reqPath)
	respPath := env.write("resp.der", post(t, der))
	out, err := openssl(t, "ocsp", "-respin", respPath, "-reqin", reqPath, "-issuer", issuingPath, "-cert", certPath,
		"-CAfile", rootPath, "-verify_other", issuingPath, "-resp_text")
	if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "c.pem: good") || strings.Contains(out, "OCSP Nonce") {
		t.Fatalf("nonce request past the rate: %v\n%s", err, out)
	}
}
