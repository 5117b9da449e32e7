package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// TestLintCertificate_RefusesWhatZlintRefuses: the linter runs the
// registry's certificate lints itself; on a certificate that breaks RFC 5280
// it refuses with exactly the lints that zlint.LintCertificateEx reports,
// and it accepts what zlint accepts.
func TestLintCertificate_RefusesWhatZlintRefuses(t *testing.T) {
	l := linterForTest(t)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, iss := softwareCA(t, caKey)
	leaf, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, err := iss.Prepare(LeafRequest{PublicKey: leaf.Public(), Organization: "Acme Corp",
		Identities: mustIdentities(t, "billing.acme.example")})
	if err != nil {
		t.Fatal(err)
	}
	// No subject and no subjectAltName (RFC 5280 §4.1.2.6), and no key
	// identifiers.
	bad := &x509.Certificate{SerialNumber: big.NewInt(5), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	badDER, err := x509.CreateCertificate(rand.Reader, bad, iss.Certificate(), leaf.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		der     []byte
		refused bool
	}{{"clean leaf", good.PrecertDER, false}, {"broken leaf", badDER, true}} {
		t.Run(tc.name, func(t *testing.T) {
			zc, err := zx509.ParseCertificate(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for name, r := range zlint.LintCertificateEx(zc, l.registry).Results {
				if r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
					want = append(want, name+" (")
				}
			}
			sort.Strings(want)
			if (len(want) > 0) != tc.refused {
				t.Fatalf("zlint reports %v", want)
			}
			err = l.LintCertificate(tc.der)
			if len(want) == 0 {
				if err != nil {
					t.Fatalf("zlint accepts it, the linter refuses: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrLint) {
				t.Fatalf("zlint refuses it (%v), the linter says %v", want, err)
			}
			for _, name := range want {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("the refusal %q does not name %s", err, strings.TrimSuffix(name, " ("))
				}
			}
			if got := strings.Count(err.Error(), " ("); got != len(want) {
				t.Errorf("the refusal names %d lints, zlint %d: %v", got, len(want), err)
			}
		})
	}
}
