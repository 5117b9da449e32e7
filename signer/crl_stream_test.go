package signer_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
	"github.com/certdesk/certdesk/signer/serial"
)

// softCRLCA is a self-signed software CA certificate for key, with cRLSign.
func softCRLCA(t testing.TB, key crypto.Signer) *x509.Certificate {
	t.Helper()
	ski, _ := signer.SubjectKeyID(key.Public())
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certdesk test CRL CA", Organization: []string{"certdesk tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, SubjectKeyId: ski,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tbsOf returns the TBSCertList of a DER CRL.
func tbsOf(t *testing.T, der []byte) []byte {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("parsing the CRL: %v", err)
	}
	return crl.RawTBSRevocationList
}

func TestCRLEncoder_MatchesCreateRevocationList(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	this := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	late := time.Date(2051, 3, 4, 5, 6, 7, 0, time.UTC) // GeneralizedTime (RFC 5280 §5.1.2.4)
	entries := func(at time.Time) []signer.RevokedCert {
		return []signer.RevokedCert{
			{Serial: mustSerial("01"), RevokedAt: at.Add(-time.Hour), Reason: 0},
			{Serial: mustSerial("7F"), RevokedAt: at.Add(-2 * time.Hour), Reason: 1},
			{Serial: mustSerial("80"), RevokedAt: at.Add(-3 * time.Hour), Reason: 3},     // high bit: a leading 0x00
			{Serial: mustSerial("0A1B2C"), RevokedAt: at.Add(-4 * time.Hour), Reason: 4}, // leading zero nibble
			{Serial: mustSerial(strings.Repeat("FE", 20)), RevokedAt: at, Reason: 5},     // 20 octets, high bit
			{Serial: mustSerial(strings.Repeat("5A", 16)), RevokedAt: at.Add(-time.Second), Reason: 10},
			{Serial: mustSerial("0102030405060708090A0B0C0D0E0F10"), RevokedAt: at.Add(-90 * 24 * time.Hour), Reason: 9},
		}
	}
	many := make([]signer.RevokedCert, 300) // revokedCertificates longer than 0xffff bytes... and a 0x82 length
	for i := range many {
		n, _ := serial.FromBig(new(big.Int).Lsh(big.NewInt(int64(i+1)), 100))
		many[i] = signer.RevokedCert{Serial: n, RevokedAt: this.Add(-time.Duration(i) * time.Minute), Reason: []int{0, 1, 4, 5, 6, 8}[i%6]}
	}
	tests := []struct {
		name string
		key  crypto.Signer
		tmpl signer.CRLTemplate
	}{
		{"P-256, no entries", p256, signer.CRLTemplate{Number: 1, ThisUpdate: this, NextUpdate: this.Add(24 * time.Hour)}},
		{"P-256, one unspecified entry", p256, signer.CRLTemplate{Number: 2, ThisUpdate: this, NextUpdate: this.Add(time.Hour), Entries: entries(this)[:1]}},
		{"P-256, every kind of serial and reason", p256, signer.CRLTemplate{Number: 300, ThisUpdate: this, NextUpdate: this.Add(7 * 24 * time.Hour), Entries: entries(this)}},
		{"P-384, after 2049", p384, signer.CRLTemplate{Number: 1 << 40, ThisUpdate: late, NextUpdate: late.Add(time.Hour), Entries: entries(late)}},
		{"RSA 2048, 300 entries", rsa2048, signer.CRLTemplate{Number: 9, ThisUpdate: this, NextUpdate: this.Add(time.Hour), Entries: many}},
		{"partition with a delta URL", p256, signer.CRLTemplate{Number: 5, ThisUpdate: this, NextUpdate: this.Add(time.Hour), Entries: entries(this),
			Scope: "http://pki.example/crl/issuing/3.crl", FreshestCRL: "http://pki.example/crl/issuing/3-delta.crl"}},
		{"delta of a partition", p256, signer.CRLTemplate{Number: 6, ThisUpdate: this, NextUpdate: this.Add(time.Hour), Entries: entries(this)[:2],
			Scope: "http://pki.example/crl/issuing/3.crl", DeltaBase: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := softCRLCA(t, tt.key)
			s, err := signer.NewCRLSigner(cert, tt.key, nil)
			if err != nil {
				t.Fatal(err)
			}
			der, err := s.Sign(tt.tmpl)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			want, err := x509.CreateRevocationList(rand.Reader, stdTemplate(t, tt.tmpl, der), cert, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tbsOf(t, der), tbsOf(t, want); !bytes.Equal(got, want) {
				t.Fatalf("TBSCertList differs from x509.CreateRevocationList's:\n got %x\nwant %x", got, want)
			}
			crl, _ := x509.ParseRevocationList(der)
			if err := crl.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("signature: %v", err)
			}
			// The whole CRL is the standard library's but for the signature.
			if sig := crl.Signature; !bytes.Equal(der[:len(der)-len(sig)], reencodePrefix(t, tt.key, tt.tmpl, cert, der)) {
				t.Fatal("the CRL's outer structure differs from x509.CreateRevocationList's")
			}
		})
	}
}

// stdTemplate is tmpl as x509.CreateRevocationList takes it, with the
// extensions Sign added (read back from der).
func stdTemplate(t *testing.T, tmpl signer.CRLTemplate, der []byte) *x509.RevocationList {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	var extra []pkix.Extension
	for _, e := range crl.Extensions {
		if !e.Id.Equal([]int{2, 5, 29, 35}) && !e.Id.Equal([]int{2, 5, 29, 20}) { // AKI and CRL number: added by the library
			extra = append(extra, e)
		}
	}
	out := &x509.RevocationList{Number: big.NewInt(tmpl.Number), ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate, ExtraExtensions: extra}
	for _, e := range tmpl.Entries {
		out.RevokedCertificateEntries = append(out.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: e.Serial.Big(), RevocationTime: e.RevokedAt, ReasonCode: e.Reason})
	}
	return out
}

// reencodePrefix is the standard library's CRL for tmpl, with der's
// signature in place of its own, without that signature: when the
// signatures have the same length the rest must be byte-equal.
func reencodePrefix(t *testing.T, key crypto.Signer, tmpl signer.CRLTemplate, cert *x509.Certificate, der []byte) []byte {
	t.Helper()
	crl, _ := x509.ParseRevocationList(der)
	for i := 0; i < 50; i++ { // ECDSA signatures vary in length: find one as long as ours
		std, err := x509.CreateRevocationList(rand.Reader, stdTemplate(t, tmpl, der), cert, key)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := x509.ParseRevocationList(std)
		if len(s.Signature) == len(crl.Signature) {
			return std[:len(std)-len(s.Signature)]
		}
	}
	t.Fatal("no standard-library signature of the same length")
	return nil
}

func TestCRLBuilder_RefusesARepeatedSerial(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := signer.NewCRLSigner(softCRLCA(t, key), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, err := s.NewBuilder(signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(signer.RevokedCert{Serial: mustSerial("0A"), RevokedAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(signer.RevokedCert{Serial: mustSerial("0A"), RevokedAt: now.Add(-time.Minute)}); err == nil {
		t.Fatal("the same serial twice in a row was accepted")
	}
}

func TestCRLBuilder_LintsEveryReasonAndTheExtremeDates(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	counting := &countingSigner{Signer: key}
	s, err := signer.NewCRLSigner(softCRLCA(t, key), counting, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// One bad entry in the middle of many good ones: a revocation date after
	// thisUpdate (zlint e_crl_revocation_time_after_this_update). It is the
	// latest date, so the sample holds it and the key never signs.
	var entries []signer.RevokedCert
	for i := 1; i <= 1000; i++ {
		at := now.Add(-time.Hour)
		if i == 517 {
			at = now.Add(time.Hour)
		}
		n, _ := serial.FromBig(new(big.Int).Lsh(big.NewInt(int64(i)), 70))
		entries = append(entries, signer.RevokedCert{Serial: n, RevokedAt: at, Reason: 1})
	}
	if _, err := s.Sign(signer.CRLTemplate{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Entries: entries}); err == nil {
		t.Fatal("a CRL with one entry revoked after thisUpdate was signed")
	}
	if counting.n != 0 {
		t.Fatalf("the CA key signed %d times after a lint failure", counting.n)
	}
}

func TestCRL_OpenSSLAndZlintAccept(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := softCRLCA(t, key)
	s, err := signer.NewCRLSigner(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var entries []signer.RevokedCert
	for i := 1; i <= 2000; i++ {
		n, _ := serial.FromBig(new(big.Int).Add(new(big.Int).Lsh(big.NewInt(int64(i)), 120), big.NewInt(int64(i))))
		entries = append(entries, signer.RevokedCert{Serial: n, RevokedAt: now.Add(-time.Duration(i) * time.Minute), Reason: []int{0, 1, 3, 4, 5, 9}[i%6]})
	}
	der, err := s.Sign(signer.CRLTemplate{Number: 42, ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour), Entries: entries,
		Scope: "http://pki.example/crl/issuing/7.crl", FreshestCRL: "http://pki.example/crl/issuing/7-delta.crl"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crlPath, caPath := filepath.Join(dir, "p.crl"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(crlPath, der, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-noout", "-verify").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	pemPath := filepath.Join(dir, "p.pem")
	if out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlPath, "-out", pemPath).CombinedOutput(); err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	out, err = exec.Command("zlint", "-includeSources", "RFC5280,RFC5480,RFC3279,RFC5891,RFC8813,Community", "-format", "pem", pemPath).Output()
	if err != nil {
		t.Fatalf("zlint: %v\n%s", err, out)
	}
	var results map[string]struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) == 0 {
		t.Fatalf("zlint's report: %v\n%s", err, out)
	}
	for name, r := range results {
		if r.Result != "pass" && r.Result != "NA" && r.Result != "NE" && r.Result != "info" {
			t.Errorf("zlint %s: %s", name, r.Result)
		}
	}
}
