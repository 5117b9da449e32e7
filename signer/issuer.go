package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

// Issuer is an issuing CA: its certificate, the crypto.Signer for its key
// (normally in a PKCS#11 token), the leaf profile and the URLs it writes into
// certificates. It is safe for concurrent use.
type Issuer struct {
	cert    *x509.Certificate
	signer  crypto.Signer
	profile Profile
	urls    URLs
	linter  *Linter

	// lintSigner is a throwaway software key of the same algorithm as the
	// CA key; lintParent is the issuer certificate with the throwaway public
	// key, so that a lint certificate has exactly the TBS of the real one.
	lintSigner crypto.Signer
	lintParent *x509.Certificate

	// Now is the clock; tests replace it.
	Now func() time.Time
}

// ErrKeyMismatch means the key in the token is not the key of the issuer
// certificate: the issuer refuses to start (Boulder issuance, CONVENTIONS #3).
var ErrKeyMismatch = errors.New("the CA key does not match the CA certificate")

// NewIssuer checks that signer holds the private key of cert — by comparing
// public keys and by a test signature verified with the certificate's key —
// and returns an issuer for the profile.
func NewIssuer(cert *x509.Certificate, signer crypto.Signer, profile Profile, urls URLs, linter *Linter) (*Issuer, error) {
	profile = profile.WithDefaults()
	if err := profile.Validate(); err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %q is not a CA certificate with keyCertSign", cert.Subject)
	}
	if err := CheckKeyMatches(cert, signer); err != nil {
		return nil, err
	}
	lintSigner, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, err
	}
	lintParent := *cert
	lintParent.PublicKey = lintSigner.Public()
	if linter == nil {
		if linter, err = NewLinter(); err != nil {
			return nil, err
		}
	}
	return &Issuer{
		cert: cert, signer: signer, profile: profile, urls: urls, linter: linter,
		lintSigner: lintSigner, lintParent: &lintParent, Now: time.Now,
	}, nil
}

// CheckKeyMatches verifies that signer's key is the one certified by cert.
func CheckKeyMatches(cert *x509.Certificate, signer crypto.Signer) error {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: certificate %q has key %s, the token key has %s",
			ErrKeyMismatch, cert.Subject, KeyFingerprint(cert.PublicKey), KeyFingerprint(signer.Public()))
	}
	// A test signature proves the private half is the certified one too.
	digest := sha256.Sum256([]byte("certdesk key check " + time.Now().String()))
	var opts crypto.SignerOpts = crypto.SHA256
	msg := digest[:]
	if _, isEd := signer.Public().(ed25519.PublicKey); isEd {
		opts, msg = crypto.Hash(0), []byte("certdesk key check")
	}
	sig, err := signer.Sign(rand.Reader, msg, opts)
	if err != nil {
		return fmt.Errorf("test signature with the CA key of %q: %w", cert.Subject, err)
	}
	if !verify(cert.PublicKey, msg, sig) {
		return fmt.Errorf("%w: a test signature by the token key of %q does not verify with the certificate", ErrKeyMismatch, cert.Subject)
	}
	return nil
}

func verify(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, msg, sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// KeyFingerprint is the hex SHA-256 of a public key's SubjectPublicKeyInfo,
// shortened for messages.
func KeyFingerprint(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "(unreadable key)"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// throwawayKey makes a software key of the same algorithm and size as pub.
func throwawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	case ed25519.PublicKey:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported CA key type %T", pub)
}

// Signer is the issuing CA's key. Certificates are signed only through
// Prepare and Issue; CRL and OCSP signing use it directly after their own
// lint step.
func (i *Issuer) Signer() crypto.Signer { return i.signer }

// Linter is the issuer's linter, for CRL lint-before-sign.
func (i *Issuer) Linter() *Linter { return i.linter }

// Certificate is the issuer's certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// Profile is the leaf profile the issuer applies.
func (i *Issuer) Profile() Profile { return i.profile }

// URLs are the URLs the issuer writes into certificates.
func (i *Issuer) URLs() URLs { return i.urls }

// Prepared is the single-use token from lint-before-sign: a certificate
// that was built, signed with the throwaway key and linted clean. Only a
// Prepared can reach the HSM (Issue), and only once. Its exported fields are
// what the store records before signing.
type Prepared struct {
	Serial     serial.Number
	NotBefore  time.Time
	NotAfter   time.Time
	PrecertDER []byte // the lint certificate: same TBS as the real one
	// IssuerKeyID names the issuing CA (KeyID of its public key), and
	// CRLPartition is the partition in the certificate's CRL distribution
	// point (-1 for none): both are recorded with the certificate.
	IssuerKeyID  string
	CRLPartition int

	issuer   *Issuer
	template *x509.Certificate
	pub      crypto.PublicKey
	used     atomic.Bool
}

// Prepare builds and lints the leaf for an approved request. It does not
// touch the CA key.
func (i *Issuer) Prepare(req LeafRequest) (*Prepared, error) {
	sn, err := NewSerial()
	if err != nil {
		return nil, err
	}
	tmpl, err := i.profile.leafTemplate(req, sn, i.Now(), i.urls)
	if err != nil {
		return nil, err
	}
	return i.prepare(tmpl, req.PublicKey)
}

func (i *Issuer) prepare(tmpl *x509.Certificate, pub crypto.PublicKey) (*Prepared, error) {
	lintDER, err := x509.CreateCertificate(rand.Reader, tmpl, i.lintParent, pub, i.lintSigner)
	if err != nil {
		return nil, fmt.Errorf("building the certificate: %w", err)
	}
	if err := i.linter.LintCertificate(lintDER); err != nil {
		return nil, err
	}
	sn, err := serial.FromBig(tmpl.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("the certificate's serial: %w", err)
	}
	kid, err := KeyID(i.cert.PublicKey)
	if err != nil {
		return nil, err
	}
	partition := -1
	if i.urls.CRL != "" {
		partition = CRLPartition(sn, i.urls.CRLPartitions)
	}
	return &Prepared{
		Serial: sn, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, PrecertDER: lintDER,
		IssuerKeyID: kid, CRLPartition: partition,
		issuer: i, template: tmpl, pub: pub,
	}, nil
}

// Resume rebuilds the single-use token for an issuance that was recorded
// (PrecertDER stored) but not finished, e.g. because the process died while
// the HSM was signing. Issue then signs exactly the recorded TBS.
func (i *Issuer) Resume(precertDER []byte) (*Prepared, error) {
	pre, err := x509.ParseCertificate(precertDER)
	if err != nil {
		return nil, fmt.Errorf("parsing the recorded certificate: %w", err)
	}
	if !bytes.Equal(pre.AuthorityKeyId, i.cert.SubjectKeyId) || !bytes.Equal(pre.RawIssuer, i.cert.RawSubject) {
		sn, _ := serial.FromBig(pre.SerialNumber)
		return nil, fmt.Errorf("the recorded certificate %s was prepared for another issuer", sn)
	}
	tmpl := *pre
	tmpl.Extensions, tmpl.ExtraExtensions = nil, nil
	return i.prepare(&tmpl, pre.PublicKey)
}

// ErrTokenUsed is returned when a Prepared is used twice or by another issuer.
var ErrTokenUsed = errors.New("lint token already used or not from this issuer")

// Issue signs a prepared certificate with the CA key. The result has the
// same TBS as the linted certificate, and its signature is checked before it
// is returned.
func (i *Issuer) Issue(p *Prepared) ([]byte, error) {
	if p == nil || p.issuer != i || !p.used.CompareAndSwap(false, true) {
		return nil, ErrTokenUsed
	}
	der, err := x509.CreateCertificate(rand.Reader, p.template, i.cert, p.pub, i.signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", p.Serial, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the signed certificate: %w", err)
	}
	pre, err := x509.ParseCertificate(p.PrecertDER)
	if err != nil {
		return nil, fmt.Errorf("parsing the lint certificate: %w", err)
	}
	if !bytes.Equal(cert.RawTBSCertificate, pre.RawTBSCertificate) {
		return nil, fmt.Errorf("%w: the signed certificate differs from the linted one", ErrLint)
	}
	if err := cert.CheckSignatureFrom(i.cert); err != nil {
		return nil, fmt.Errorf("the CA key produced a certificate that does not verify: %w", err)
	}
	return der, nil
}
