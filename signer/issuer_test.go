package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testLinterOnce sync.Once
	testLinter     *Linter
)

func linterForTest(t testing.TB) *Linter {
	testLinterOnce.Do(func() {
		var err error
		if testLinter, err = NewLinter(); err != nil {
			t.Fatal(err)
		}
	})
	return testLinter
}

// softwareCA builds a root and issuing CA with software keys.
func softwareCA(t testing.TB, issuingKey crypto.Signer) (root *x509.Certificate, issuer *Issuer) {
	t.Helper()
	l := linterForTest(t)
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	rootDER, err := NewRoot(rootKey, pkix.Name{CommonName: "Test Root", Organization: []string{"certdesk tests"}}, now, 10*365*24*time.Hour, l)
	if err != nil {
		t.Fatalf("NewRoot: %v", err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	intDER, err := NewIntermediate(root, rootKey, issuingKey.Public(), pkix.Name{CommonName: "Test Issuing CA", Organization: []string{"certdesk tests"}}, now, 5*365*24*time.Hour, IntermediateURLs("http://certs.example"), l)
	if err != nil {
		t.Fatalf("NewIntermediate: %v", err)
	}
	intCert, _ := x509.ParseCertificate(intDER)
	if err := CheckIntermediate(intCert, root, issuingKey.Public(), now); err != nil {
		t.Fatalf("CheckIntermediate: %v", err)
	}
	issuer, err = NewIssuer(intCert, issuingKey, Profile{}, LeafURLs("http://certs.example"), l)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return root, issuer
}

func mustIdentities(t testing.TB, names ...string) Identities {
	t.Helper()
	ids, err := ParseIdentities(names)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestIssue_EveryAcceptedKeyType_VerifiesAndLintsClean(t *testing.T) {
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root, iss := softwareCA(t, issKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	for name, pub := range map[string]crypto.PublicKey{"P-256": p256.Public(), "P-384": p384.Public(), "RSA-3072": rsa3072.Public(), "Ed25519": edPub} {
		t.Run(name, func(t *testing.T) {
			p, err := iss.Prepare(LeafRequest{PublicKey: pub, Organization: "Acme Corp",
				Identities: mustIdentities(t, "spiffe://example.org/partners/acme/billing", "billing.acme.example")})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			der, err := iss.Issue(p)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			cert, _ := x509.ParseCertificate(der)
			inter := x509.NewCertPool()
			inter.AddCert(iss.Certificate())
			roots := x509.NewCertPool()
			roots.AddCert(root)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if _, err := iss.Issue(p); !errors.Is(err, ErrTokenUsed) {
				t.Fatalf("second Issue with the same token: got %v, want ErrTokenUsed", err)
			}
			if got := cert.NotAfter.Sub(cert.NotBefore); got != 90*24*time.Hour-time.Second {
				t.Errorf("validity %v", got)
			}
			if !strings.HasPrefix(cert.Subject.String(), "CN=") && cert.Subject.CommonName == "" {
				t.Errorf("subject %v", cert.Subject)
			}
		})
	}
}
