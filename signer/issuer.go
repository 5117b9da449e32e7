package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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
	// lintSig is the signature every lint certificate carries: the
	// throwaway key's, made once over lintSignatureMessage (lintCopy).
	lintSigner crypto.Signer
	lintParent *x509.Certificate
	lintSig    []byte

	// sigAlg and sigHash are how the CA key signs: the algorithm written
	// into every certificate and the digest it signs.
	sigAlg  x509.SignatureAlgorithm
	sigHash crypto.Hash
	// keyID is KeyID of the CA's public key, recorded with every
	// certificate it issues.
	keyID string

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
	sigAlg, sigHash, err := signingParams(signer.Public())
	if err != nil {
		return nil, err
	}
	lintSigner, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, err
	}
	lintParent := *cert
	lintParent.PublicKey = lintSigner.Public()
	lintSig, err := crypto.SignMessage(lintSigner, rand.Reader, []byte(lintSignatureMessage), sigHash)
	if err != nil {
		return nil, fmt.Errorf("signing with the throwaway lint key: %w", err)
	}
	keyID, err := KeyID(cert.PublicKey)
	if err != nil {
		return nil, err
	}
	if linter == nil {
		if linter, err = NewLinter(); err != nil {
			return nil, err
		}
	}
	return &Issuer{
		cert: cert, signer: signer, profile: profile, urls: urls, linter: linter,
		lintSigner: lintSigner, lintParent: &lintParent, lintSig: lintSig, sigAlg: sigAlg, sigHash: sigHash, keyID: keyID, Now: time.Now,
	}, nil
}

// signingParams is the signature algorithm and digest for a CA key: those
// crypto/x509 chooses for it by default (SHA-256 for P-256 and RSA, SHA-384
// for P-384, SHA-512 for P-521, pure Ed25519).
func signingParams(pub crypto.PublicKey) (x509.SignatureAlgorithm, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return x509.ECDSAWithSHA256, crypto.SHA256, nil
		case elliptic.P384():
			return x509.ECDSAWithSHA384, crypto.SHA384, nil
		case elliptic.P521():
			return x509.ECDSAWithSHA512, crypto.SHA512, nil
		}
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, crypto.SHA256, nil
	case ed25519.PublicKey:
		return x509.PureEd25519, crypto.Hash(0), nil
	}
	return 0, 0, fmt.Errorf("unsupported CA key type %T", pub)
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
// that was built, given the throwaway key's signature and linted clean. Only a
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

	issuer *Issuer
	// tbs and sigAlg are the linted certificate's TBSCertificate and
	// signatureAlgorithm, as encoded: what the CA key signs.
	tbs    []byte
	sigAlg []byte
	used   atomic.Bool
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

// lintSignatureMessage is what the throwaway key signed, once, for the
// signature of every lint certificate.
const lintSignatureMessage = "certdesk lint certificate: this signature is not over its TBSCertificate"

// lintCopy encodes the certificate of tmpl as crypto/x509 does — the TBS
// is the one x509.CreateCertificate makes, handed over by tbsCapture — and
// puts the issuer's lint signature (lintSig) after it, under the signature
// algorithm named in the TBS. It returns the TBS and its signature
// algorithm, which the CA key signs in Issue, and the lint certificate.
//
// The lint certificate's signature is the throwaway key's, but not over
// this TBS: that key is made for the process, trusted by no one and its
// public key is nowhere but in memory, so no one could check a signature
// of it over the TBS either, and no lint of LintSources reads the
// signature's value (those that do, in CA/Browser Forum and Mozilla
// sources, look at its length only, which is that of a real signature of
// the key's type). Signing every TBS with it cost a software signature per
// certificate — an RSA private-key operation for an RSA CA.
func (i *Issuer) lintCopy(tmpl *x509.Certificate, pub crypto.PublicKey) (tbs, sigAlg, lintDER []byte, err error) {
	capture := &tbsCapture{pub: i.lintSigner.Public()}
	if _, err := x509.CreateCertificate(rand.Reader, tmpl, i.lintParent, pub, capture); !errors.Is(err, errTBSCaptured) {
		if err == nil {
			err = errors.New("crypto/x509 did not sign")
		}
		return nil, nil, nil, fmt.Errorf("building the certificate: %w", err)
	}
	tbs = capture.tbs
	if sigAlg, err = tbsSignatureAlgorithm(tbs); err != nil {
		return nil, nil, nil, fmt.Errorf("building the certificate: %w", err)
	}
	if lintDER, err = assembleCertificate(tbs, sigAlg, i.lintSig); err != nil {
		return nil, nil, nil, fmt.Errorf("encoding the lint certificate: %w", err)
	}
	return tbs, sigAlg, lintDER, nil
}

func (i *Issuer) prepare(tmpl *x509.Certificate, pub crypto.PublicKey) (*Prepared, error) {
	tmpl.SignatureAlgorithm = i.sigAlg
	tbs, sigAlg, lintDER, err := i.lintCopy(tmpl, pub)
	if err != nil {
		return nil, err
	}
	if err := i.linter.LintCertificate(lintDER); err != nil {
		return nil, err
	}
	sn, err := serial.FromBig(tmpl.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("the certificate's serial: %w", err)
	}
	partition := -1
	if i.urls.CRL != "" {
		partition = CRLPartition(sn, i.urls.CRLPartitions)
	}
	return &Prepared{
		Serial: sn, NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, PrecertDER: lintDER,
		IssuerKeyID: i.keyID, CRLPartition: partition,
		issuer: i, tbs: tbs, sigAlg: sigAlg,
	}, nil
}

// Resume rebuilds the single-use token for an issuance that was recorded
// (PrecertDER stored) but not finished, e.g. because the process died while
// the HSM was signing: the recorded certificate is linted again, and Issue
// then signs exactly its TBS (the throwaway key whose signature it carries
// appears nowhere in the TBS).
func (i *Issuer) Resume(precertDER []byte) (*Prepared, error) {
	pre, err := x509.ParseCertificate(precertDER)
	if err != nil {
		return nil, fmt.Errorf("parsing the recorded certificate: %w", err)
	}
	sn, err := serial.FromBig(pre.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("the recorded certificate's serial: %w", err)
	}
	if !bytes.Equal(pre.AuthorityKeyId, i.cert.SubjectKeyId) || !bytes.Equal(pre.RawIssuer, i.cert.RawSubject) {
		return nil, fmt.Errorf("the recorded certificate %s was prepared for another issuer", sn)
	}
	if pre.SignatureAlgorithm != i.sigAlg {
		return nil, fmt.Errorf("the recorded certificate %s names signature algorithm %v, the CA key signs with %v", sn, pre.SignatureAlgorithm, i.sigAlg)
	}
	if err := i.linter.LintCertificate(precertDER); err != nil {
		return nil, err
	}
	tbs, sigAlg, err := splitCertificate(precertDER)
	if err != nil {
		return nil, fmt.Errorf("the recorded certificate %s: %w", sn, err)
	}
	return &Prepared{
		Serial: sn, NotBefore: pre.NotBefore, NotAfter: pre.NotAfter, PrecertDER: bytes.Clone(precertDER),
		issuer: i, tbs: tbs, sigAlg: sigAlg,
	}, nil
}

// ErrTokenUsed is returned when a Prepared is used twice or by another issuer.
var ErrTokenUsed = errors.New("lint token already used or not from this issuer")

// Issue signs a prepared certificate with the CA key: the certificate is
// the linted one — the same TBSCertificate, byte for byte — with the CA
// key's signature over it in place of the lint signature. The signature is checked
// against the issuer certificate's key before the certificate is returned;
// that is the one verification crypto/x509.CreateCertificate would make, and
// the TBS needs no comparison, since it is the linted one by construction.
func (i *Issuer) Issue(p *Prepared) ([]byte, error) {
	if p == nil || p.issuer != i || !p.used.CompareAndSwap(false, true) {
		return nil, ErrTokenUsed
	}
	msg := p.tbs
	if i.sigHash != 0 {
		h := i.sigHash.New()
		h.Write(p.tbs)
		msg = h.Sum(nil)
	}
	sig, err := i.signer.Sign(rand.Reader, msg, i.sigHash)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", p.Serial, err)
	}
	if !verifyDigest(i.cert.PublicKey, i.sigHash, msg, sig) {
		return nil, fmt.Errorf("signing certificate %s: the CA key produced a signature that does not verify with the CA certificate", p.Serial)
	}
	der, err := assembleCertificate(p.tbs, p.sigAlg, sig)
	if err != nil {
		return nil, fmt.Errorf("encoding certificate %s: %w", p.Serial, err)
	}
	return der, nil
}

// verifyDigest checks sig over msg (a digest made with h, or for Ed25519 the
// message itself) with pub.
func verifyDigest(pub crypto.PublicKey, h crypto.Hash, msg, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, msg, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, h, msg, sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}
