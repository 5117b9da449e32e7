package signer_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
)

func TestCRLSigner_SignsLintedCRLWithNumberAKIAndReasons(t *testing.T) {
	_, ca := hsmCA(t, "crl")
	now := time.Now().UTC()
	tests := []struct {
		name string
		sign func() (*signer.CRLSigner, error)
		cert *x509.Certificate
	}{
		{"issuing CA in the token", ca.Issuer.CRLSigner, ca.Issuer.Certificate()},
		{"root in the token", func() (*signer.CRLSigner, error) { return signer.NewCRLSigner(ca.Root, ca.RootSigner, nil) }, ca.Root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.sign()
			if err != nil {
				t.Fatal(err)
			}
			der, err := s.Sign(signer.CRLTemplate{
				Number: 7, ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
				Entries: []signer.RevokedCert{
					{Serial: mustSerial("1234"), RevokedAt: now.Add(-time.Hour), Reason: 1},
					{Serial: mustSerial("5678"), RevokedAt: now.Add(-time.Minute), Reason: 0},
				},
			})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(tt.cert); err != nil {
				t.Errorf("CRL signature does not verify with the CA certificate: %v", err)
			}
			if crl.Number.Int64() != 7 {
				t.Errorf("number = %v, want 7", crl.Number)
			}
			if !bytes.Equal(crl.AuthorityKeyId, tt.cert.SubjectKeyId) {
				t.Errorf("AKI = %x, want the CA's SKI %x", crl.AuthorityKeyId, tt.cert.SubjectKeyId)
			}
			if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != 24*time.Hour {
				t.Errorf("nextUpdate - thisUpdate = %v, want 24h", got)
			}
			if len(crl.RevokedCertificateEntries) != 2 {
				t.Fatalf("%d entries, want 2", len(crl.RevokedCertificateEntries))
			}
			if e := crl.RevokedCertificateEntries[0]; e.ReasonCode != 1 {
				t.Errorf("first entry reason = %d, want keyCompromise (1)", e.ReasonCode)
			}
			reasonOID := asn1.ObjectIdentifier{2, 5, 29, 21}
			for _, ext := range crl.RevokedCertificateEntries[1].Extensions {
				if ext.Id.Equal(reasonOID) {
					t.Errorf("unspecified reason is encoded; RFC 5280 §5.3.1 says leave it out")
				}
			}
		})
	}
}

func TestCRLSigner_RefusesBadTemplates(t *testing.T) {
	_, ca := hsmCA(t, "crl")
	s, err := ca.Issuer.CRLSigner()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name string
		tmpl signer.CRLTemplate
	}{
		{"zero number", signer.CRLTemplate{Number: 0, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}},
		{"nextUpdate before thisUpdate", signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(-time.Hour)}},
		{"reason 7 does not exist", signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour),
			Entries: []signer.RevokedCert{{Serial: mustSerial("5"), RevokedAt: now, Reason: 7}}}},
		{"missing serial", signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour),
			Entries: []signer.RevokedCert{{RevokedAt: now}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if der, err := s.Sign(tt.tmpl); err == nil {
				t.Fatalf("Sign accepted it and produced %d bytes", len(der))
			}
		})
	}
}

func TestCRLSigner_LintFailure_NeverReachesTheKey(t *testing.T) {
	_, ca := hsmCA(t, "crl")
	counting := &countingSigner{Signer: ca.Issuer.Signer()}
	s, err := signer.NewCRLSigner(ca.Issuer.Certificate(), counting, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// A revocation date after thisUpdate is refused by zlint's RFC 5280
	// lint e_crl_revocation_time_after_this_update.
	_, err = s.Sign(signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		Entries: []signer.RevokedCert{{Serial: mustSerial("1"), RevokedAt: now.Add(48 * time.Hour), Reason: 1}}})
	if !errors.Is(err, signer.ErrLint) {
		t.Fatalf("err = %v, want ErrLint", err)
	}
	if counting.n != 0 {
		t.Errorf("the CA key signed %d times after a lint failure", counting.n)
	}
}

func TestNewCRLSigner_RefusesCertificateWithoutCRLSign(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := &x509.Certificate{KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1}, PublicKey: key.Public()}
	if _, err := signer.NewCRLSigner(cert, key, nil); err == nil {
		t.Fatal("NewCRLSigner accepted a CA certificate without cRLSign")
	}
}

// countingSigner counts the signatures its key makes.
type countingSigner struct {
	crypto.Signer
	n int
}

func (c *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n++
	return c.Signer.Sign(r, digest, opts)
}

// mustSerial parses a serial written in a test.
func mustSerial(hex string) serial.Number {
	n, err := serial.Parse(hex)
	if err != nil {
		panic(err)
	}
	return n
}
