package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

// CRLSigner signs certificate revocation lists for one CA (RFC 5280 §5)
// with lint-before-sign: every CRL is first built with a throwaway key of
// the same algorithm and an issuer copy holding its public key, linted with
// zlint's CRL lints, and only then signed by the CA key (in the token). It is
// safe for concurrent use.
type CRLSigner struct {
	cert   *x509.Certificate
	signer crypto.Signer
	linter *Linter

	lintSigner crypto.Signer
	lintParent *x509.Certificate
}

// NewCRLSigner returns a CRL signer for the CA certificate cert and its key.
// The certificate must assert cRLSign (RFC 5280 §4.2.1.3) and carry a subject
// key identifier, which becomes the CRL's authority key identifier
// (§5.2.1). A nil linter gets a new one.
func NewCRLSigner(cert *x509.Certificate, key crypto.Signer, linter *Linter) (*CRLSigner, error) {
	if cert == nil || key == nil {
		return nil, errors.New("CRL signer: certificate and key are required")
	}
	if cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("CA certificate %q lacks the cRLSign key usage (RFC 5280 §4.2.1.3)", cert.Subject)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("CA certificate %q has no subject key identifier for the CRL's AKI (RFC 5280 §5.2.1)", cert.Subject)
	}
	lintSigner, err := throwawayKey(key.Public())
	if err != nil {
		return nil, err
	}
	if linter == nil {
		if linter, err = NewLinter(); err != nil {
			return nil, err
		}
	}
	lintParent := *cert
	lintParent.PublicKey = lintSigner.Public()
	return &CRLSigner{cert: cert, signer: key, linter: linter, lintSigner: lintSigner, lintParent: &lintParent}, nil
}

// CRLSigner returns the issuing CA's CRL signer; it reuses the issuer's
// throwaway lint key and linter.
func (i *Issuer) CRLSigner() (*CRLSigner, error) {
	if i.cert.KeyUsage&x509.KeyUsageCRLSign == 0 || len(i.cert.SubjectKeyId) == 0 {
		return NewCRLSigner(i.cert, i.signer, i.linter) // returns the precise error
	}
	return &CRLSigner{cert: i.cert, signer: i.signer, linter: i.linter, lintSigner: i.lintSigner, lintParent: i.lintParent}, nil
}

// Certificate is the CA certificate whose CRLs this signer makes.
func (s *CRLSigner) Certificate() *x509.Certificate { return s.cert }

// RevokedCert is one entry of a CRL.
type RevokedCert struct {
	Serial    serial.Number
	RevokedAt time.Time
	// Reason is the RFC 5280 §5.3.1 CRLReason code. unspecified (0) is left
	// out of the entry, as §5.3.1 asks.
	Reason int
}

// CRLTemplate is what a CRL says.
type CRLTemplate struct {
	// Number is the CRL number (RFC 5280 §5.2.3); the caller keeps it
	// monotonic.
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    []RevokedCert
}

// Sign builds, lints and signs a CRL and returns its DER. Nothing reaches
// the CA key unless the throwaway-key twin linted clean, and the signed CRL
// is checked to have exactly the linted contents and a valid signature.
func (s *CRLSigner) Sign(t CRLTemplate) ([]byte, error) {
	tmpl, err := s.template(t)
	if err != nil {
		return nil, err
	}
	lintDER, err := x509.CreateRevocationList(rand.Reader, tmpl, s.lintParent, s.lintSigner)
	if err != nil {
		return nil, fmt.Errorf("building CRL #%d: %w", t.Number, err)
	}
	if err := s.linter.LintCRL(lintDER); err != nil {
		return nil, fmt.Errorf("CRL #%d of %q: %w", t.Number, s.cert.Subject.CommonName, err)
	}
	lint, err := x509.ParseRevocationList(lintDER)
	if err != nil {
		return nil, fmt.Errorf("parsing the lint CRL: %w", err)
	}
	lintTBS := lint.RawTBSRevocationList
	lint, lintDER = nil, nil // let a large lint CRL be collected while the HSM signs
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, s.cert, s.signer)
	if err != nil {
		return nil, fmt.Errorf("signing CRL #%d: %w", t.Number, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the signed CRL: %w", err)
	}
	if !bytes.Equal(crl.RawTBSRevocationList, lintTBS) {
		return nil, fmt.Errorf("%w: the signed CRL differs from the linted one", ErrLint)
	}
	if err := crl.CheckSignatureFrom(s.cert); err != nil {
		return nil, fmt.Errorf("the CA key produced a CRL that does not verify: %w", err)
	}
	return der, nil
}

// template converts t into the standard library's form. Times are UTC and
// whole seconds, as they are encoded (RFC 5280 §5.1.2.4).
func (s *CRLSigner) template(t CRLTemplate) (*x509.RevocationList, error) {
	if t.Number <= 0 {
		return nil, fmt.Errorf("CRL number must be positive, got %d", t.Number)
	}
	this := t.ThisUpdate.UTC().Truncate(time.Second)
	next := t.NextUpdate.UTC().Truncate(time.Second)
	if !next.After(this) {
		return nil, errors.New("CRL nextUpdate must follow thisUpdate (RFC 5280 §5.1.2.5)")
	}
	entries := make([]x509.RevocationListEntry, len(t.Entries))
	for i, e := range t.Entries {
		sn := e.Serial.Big()
		if sn == nil || sn.Sign() <= 0 {
			return nil, fmt.Errorf("CRL entry %d has no positive serial", i)
		}
		if e.Reason < 0 || e.Reason == 7 || e.Reason > 10 {
			return nil, fmt.Errorf("CRL entry %s: %d is not an RFC 5280 §5.3.1 reason code", e.Serial, e.Reason)
		}
		entries[i] = x509.RevocationListEntry{
			SerialNumber:   sn,
			RevocationTime: e.RevokedAt.UTC().Truncate(time.Second),
			ReasonCode:     e.Reason,
		}
	}
	return &x509.RevocationList{
		Number:                    big.NewInt(t.Number),
		ThisUpdate:                this,
		NextUpdate:                next,
		RevokedCertificateEntries: entries,
	}, nil
}
