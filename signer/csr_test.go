package signer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readCSR(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "csr", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCSRPolicy_AcceptsEveryAllowedKeyType(t *testing.T) {
	for file, keyType := range map[string]string{
		"p256.pem": "ECDSA P-256", "p256.der": "ECDSA P-256", "p384.pem": "ECDSA P-384",
		"ed25519.pem": "Ed25519", "rsa3072.pem": "RSA 3072",
	} {
		t.Run(file, func(t *testing.T) {
			acc, err := CSRPolicy{}.Check(readCSR(t, file))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if acc.KeyType != keyType {
				t.Errorf("key type %q, want %q", acc.KeyType, keyType)
			}
		})
	}
}

func TestCSRPolicy_RSA2048_OnlyWhenConfigured(t *testing.T) {
	if _, err := (CSRPolicy{AllowRSA2048: true}).Check(readCSR(t, "rsa2048.pem")); err != nil {
		t.Fatalf("RSA-2048 with AllowRSA2048: %v", err)
	}
}

func TestCSRPolicy_RefusesBadCSRs_EachWithItsReason(t *testing.T) {
	good := readCSR(t, "p256.pem")
	tests := []struct {
		name       string
		upload     []byte
		wantRule   string
		wantReason string
	}{
		{"RSA-1024", readCSR(t, "rsa1024.pem"), "key-type", "1024 bits is too small"},
		{"RSA-2048 under the default policy", readCSR(t, "rsa2048.pem"), "key-type", "2048 bits is too small; the minimum is 3072"},
		{"P-224", readCSR(t, "p224.pem"), "key-type", "curve P-224 is not accepted"},
		{"DSA", readCSR(t, "dsa.pem"), "key-type", "DSA is not accepted"},
		{"RSA exponent 3", readCSR(t, "exponent3.pem"), "key-type", "exponent 3 is not accepted"},
		{"bad self-signature", readCSR(t, "bad-signature.pem"), "proof-of-possession", "does not verify"},
		{"CA:TRUE requested", readCSR(t, "ca-true.pem"), "extensions", "CA:TRUE"},
		{"keyCertSign requested", readCSR(t, "keycertsign.pem"), "extensions", "keyCertSign"},
		{"SHA-1 signature", readCSR(t, "sha1.pem"), "signature-algorithm", "SHA-1"},
		{"garbage", readCSR(t, "garbage.txt"), "encoding", "neither PEM nor DER"},
		{"two CSRs in one upload", readCSR(t, "two-csrs.pem"), "encoding", "more than one PEM block"},
		{"oversized upload", append(bytes.Repeat([]byte(" "), MaxCSRSize), good...), "size", "at most 65536 bytes"},
		{"empty upload", nil, "size", "empty"},
		{"a certificate instead of a CSR", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}), "encoding", `type "CERTIFICATE"`},
		{"trailing data", append(append([]byte{}, good...), "junk"...), "encoding", "unexpected data"},
		{"truncated DER", []byte{0x30, 0x82, 0x01}, "syntax", "not a valid PKCS#10"},
		{"wildcard SAN", readCSR(t, "wildcard-san.pem"), "requested-names", "wildcard"},
		// Go's parser already refuses duplicates; checkExtensions is the backstop.
		{"duplicate extension", duplicateExtensionCSR(t), "syntax", "duplicate requested extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CSRPolicy{}.Check(tt.upload)
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("got %v, want a PolicyError", err)
			}
			if pe.Rule != tt.wantRule || !strings.Contains(pe.Reason, tt.wantReason) {
				t.Fatalf("got rule %q reason %q; want rule %q with %q", pe.Rule, pe.Reason, tt.wantRule, tt.wantReason)
			}
		})
	}
}

// duplicateExtensionCSR builds a CSR whose extension request carries the
// same extension twice, which RFC 5280 §4.2 forbids in a certificate.
func duplicateExtensionCSR(t testing.TB) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	val, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, Class: asn1.ClassUniversal, IsCompound: true})
	ext := pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4, 5}, Value: val}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "dup"}, ExtraExtensions: []pkix.Extension{ext, ext},
	}, key)
	if err != nil {
		t.Fatalf("building a duplicate-extension CSR: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestParseIdentities(t *testing.T) {
	tests := []struct {
		in      []string
		wantErr string
	}{
		{[]string{"spiffe://example.org/partners/acme/billing", "billing.acme.example", "ops@acme.example"}, ""},
		{[]string{"*.acme.example"}, "wildcard"},
		{[]string{"bad\x00name.example"}, "control"},
		{[]string{"two words.example"}, "control or space"},
		{[]string{"spiffe://Example.org/x"}, "lower case"},
		{[]string{"spiffe://example.org/"}, "path"},
		{[]string{"spiffe://example.org/a/../b"}, "dot path segment"},
		{[]string{"https://user@acme.example/x"}, "user info"},
		{[]string{"localhost"}, "fully qualified"},
		{[]string{"-bad.acme.example"}, "starts or ends"},
		{[]string{"Ops <ops@acme.example>"}, "control or space"},
		{[]string{"a.acme.example", "A.acme.example"}, "listed twice"},
		{[]string{"bücher.example"}, "non-ASCII"},
		{nil, "at least one identity"},
	}
	for _, tt := range tests {
		_, err := ParseIdentities(tt.in)
		if tt.wantErr == "" && err != nil {
			t.Errorf("%q: unexpected %v", tt.in, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: got %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestNamespace_Check(t *testing.T) {
	ns := Namespace{
		URIPrefixes:  []string{"spiffe://example.org/partners/acme/", "https://api.acme.example/clients"},
		DNSSuffixes:  []string{"acme.example"},
		EmailDomains: []string{"acme.example"},
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"spiffe://example.org/partners/acme/billing", true},
		{"spiffe://example.org/partners/acmeevil/billing", false},
		{"spiffe://example.org/partners/globex/billing", false},
		{"https://api.acme.example/clients/7", true},
		{"https://api.acme.example/clients-evil", false},
		{"acme.example", true},
		{"billing.acme.example", true},
		{"evilacme.example", false},
		{"acme.example.evil.test", false},
		{"ops@acme.example", true},
		{"ops@sub.acme.example", false},
	}
	for _, tt := range tests {
		ids := mustIdentities(t, tt.name)
		err := ns.Check(ids)
		if tt.ok != (err == nil) {
			t.Errorf("%s: allowed=%v, err=%v", tt.name, tt.ok, err)
		}
		var pe *PolicyError
		if err != nil && (!errors.As(err, &pe) || pe.Rule != "namespace") {
			t.Errorf("%s: want a namespace PolicyError, got %v", tt.name, err)
		}
	}
}

// FuzzCSRPolicy feeds arbitrary uploads to the CSR policy and identity
// parsing: they must never panic, and anything accepted must be a CSR whose
// self-signature verifies and whose key is of an accepted type.
func FuzzCSRPolicy(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "csr"))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("testdata", "csr", e.Name()))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, upload []byte) {
		acc, err := CSRPolicy{}.Check(upload)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("refusal is not a PolicyError: %v", err)
			}
			return
		}
		if acc.CSR.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not verify")
		}
		switch acc.KeyType {
		case "ECDSA P-256", "ECDSA P-384", "Ed25519":
		default:
			if !strings.HasPrefix(acc.KeyType, "RSA ") {
				t.Fatalf("accepted key type %q", acc.KeyType)
			}
		}
		if ids, err := ParseIdentities(RequestedNames(acc.CSR)); err == nil {
			_ = Namespace{DNSSuffixes: []string{"acme.example"}}.Check(ids)
		}
	})
}
