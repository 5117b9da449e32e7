package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
)

// caKeyType is a CA key of one type and the signature algorithm
// crypto/x509 picks for it.
type caKeyType struct {
	name string
	key  crypto.Signer
	alg  x509.SignatureAlgorithm
}

// caKeyTypes makes a CA key of every type the profile allows.
func caKeyTypes(t *testing.T) []caKeyType {
	t.Helper()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	return []caKeyType{
		{"P-256", p256, x509.ECDSAWithSHA256},
		{"P-384", p384, x509.ECDSAWithSHA384},
		{"RSA-3072", rsaKey, x509.SHA256WithRSA},
		{"Ed25519", edKey, x509.PureEd25519},
	}
}

// TestIssue_SignedCertificate_IsTheLintedTBSWithTheCASignature: for every CA
// key type, the issued certificate carries byte for byte the TBS that was
// linted, names the algorithm crypto/x509 would choose for the key, and
// verifies with the CA certificate; changing the exported PrecertDER after
// Prepare does not change what is signed.
func TestIssue_SignedCertificate_IsTheLintedTBSWithTheCASignature(t *testing.T) {
	leaf, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range caKeyTypes(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, iss := softwareCA(t, tc.key)
			p, err := iss.Prepare(LeafRequest{PublicKey: leaf.Public(), Organization: "Acme Corp",
				Identities: mustIdentities(t, "billing.acme.example")})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			linted, err := x509.ParseCertificate(p.PrecertDER)
			if err != nil {
				t.Fatal(err)
			}
			p.PrecertDER = bytes.Clone(p.PrecertDER)
			p.PrecertDER[len(p.PrecertDER)/2] ^= 0xff // tampering with the record changes nothing signed
			der, err := iss.Issue(p)
			if err != nil {
				t.Fatalf("Issue: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatalf("the issued certificate does not parse: %v", err)
			}
			if !bytes.Equal(cert.RawTBSCertificate, linted.RawTBSCertificate) {
				t.Fatal("the issued TBS differs from the linted one")
			}
			if cert.SignatureAlgorithm != tc.alg {
				t.Errorf("signature algorithm %v, want %v", cert.SignatureAlgorithm, tc.alg)
			}
			if err := cert.CheckSignatureFrom(iss.Certificate()); err != nil {
				t.Fatalf("the issued certificate does not verify with the CA: %v", err)
			}
		})
	}
}

// TestResume_SignsExactlyTheRecordedTBS: an issuance resumed from its
// recorded lint certificate is signed over that certificate's TBS, and a
// record of another issuer is refused.
func TestResume_SignsExactlyTheRecordedTBS(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, iss := softwareCA(t, caKey)
	leaf, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p, err := iss.Prepare(LeafRequest{PublicKey: leaf.Public(), Organization: "Acme Corp",
		Identities: mustIdentities(t, "billing.acme.example")})
	if err != nil {
		t.Fatal(err)
	}
	recorded, _ := x509.ParseCertificate(p.PrecertDER)
	resumed, err := iss.Resume(p.PrecertDER)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	der, err := iss.Issue(resumed)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	if !bytes.Equal(cert.RawTBSCertificate, recorded.RawTBSCertificate) || resumed.Serial != p.Serial {
		t.Fatal("the resumed issuance signed another TBS than the recorded one")
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, other := softwareCA(t, otherKey)
	if _, err := other.Resume(p.PrecertDER); err == nil {
		t.Fatal("another issuer resumed the record")
	}
}

// TestLintCopy_IsWhatCreateCertificateMakes: for every CA key type, the
// lint certificate has the TBS that x509.CreateCertificate makes from the
// same template with the throwaway key, byte for byte, names that TBS's
// signature algorithm in its signatureAlgorithm field, and is that
// certificate with the issuer's lint signature in place of its own: a
// signature of the throwaway key, of the length of one, over
// lintSignatureMessage rather than the TBS.
func TestLintCopy_IsWhatCreateCertificateMakes(t *testing.T) {
	leaf, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range caKeyTypes(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, iss := softwareCA(t, tc.key)
			sn, _ := NewSerial()
			tmpl, err := iss.profile.leafTemplate(LeafRequest{PublicKey: leaf.Public(), Organization: "Acme Corp",
				Identities: mustIdentities(t, "spiffe://example.org/billing", "billing.acme.example")}, sn, iss.Now(), iss.urls)
			if err != nil {
				t.Fatal(err)
			}
			tmpl.SignatureAlgorithm = iss.sigAlg
			tbs, sigAlg, lintDER, err := iss.lintCopy(tmpl, leaf.Public())
			if err != nil {
				t.Fatalf("lintCopy: %v", err)
			}
			want, err := x509.CreateCertificate(rand.Reader, tmpl, iss.lintParent, leaf.Public(), iss.lintSigner)
			if err != nil {
				t.Fatal(err)
			}
			wantCert, _ := x509.ParseCertificate(want)
			if !bytes.Equal(tbs, wantCert.RawTBSCertificate) {
				t.Fatal("the lint TBS differs from the one x509.CreateCertificate makes")
			}
			wantTBS, wantAlg, err := splitCertificate(want)
			if err != nil {
				t.Fatal(err)
			}
			if same, err := assembleCertificate(wantTBS, wantAlg, iss.lintSig); err != nil || !bytes.Equal(lintDER, same) {
				t.Fatalf("the lint certificate is not crypto/x509's with the lint signature in place of its own (%v)", err)
			}
			got, err := x509.ParseCertificate(lintDER)
			if err != nil {
				t.Fatalf("the lint certificate does not parse: %v", err)
			}
			if !bytes.Equal(got.RawTBSCertificate, tbs) || got.SignatureAlgorithm != iss.sigAlg {
				t.Fatalf("the lint certificate has another TBS or algorithm (%v, want %v)", got.SignatureAlgorithm, iss.sigAlg)
			}
			if !bytes.Equal(sigAlg, wantAlg) {
				t.Fatal("the lint certificate's signatureAlgorithm differs from crypto/x509's")
			}
			if !bytes.Equal(got.Signature, iss.lintSig) {
				t.Fatal("the lint certificate does not carry the issuer's lint signature")
			}
			if err := iss.lintParent.CheckSignature(got.SignatureAlgorithm, []byte(lintSignatureMessage), got.Signature); err != nil {
				t.Fatalf("the lint signature is not the throwaway key's over lintSignatureMessage: %v", err)
			}
			if err := got.CheckSignatureFrom(iss.lintParent); err == nil {
				t.Fatal("the lint signature verifies over the TBS")
			}
			if _, isEC := tc.key.(*ecdsa.PrivateKey); !isEC && len(got.Signature) != len(wantCert.Signature) {
				t.Fatalf("the lint signature has %d bytes, a signature of the throwaway key %d", len(got.Signature), len(wantCert.Signature))
			}
		})
	}
}
