package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CAName is a CA's distinguished name as configured.
type CAName struct {
	CommonName   string `yaml:"common_name"`
	Organization string `yaml:"organization"`
	Country      string `yaml:"country"`
}

// Name converts to a pkix.Name.
func (n CAName) Name() pkix.Name {
	p := pkix.Name{CommonName: n.CommonName}
	if n.Organization != "" {
		p.Organization = []string{n.Organization}
	}
	if n.Country != "" {
		p.Country = []string{n.Country}
	}
	return p
}

// Validate checks the name, naming the field prefix given.
func (n CAName) Validate(field string) error {
	if strings.TrimSpace(n.CommonName) == "" {
		return fmt.Errorf("%s.common_name is required", field)
	}
	if len(n.CommonName) > 64 || len(n.Organization) > 64 {
		return fmt.Errorf("%s: common_name and organization are at most 64 characters (RFC 5280 Appendix A.1)", field)
	}
	if n.Country != "" && len(n.Country) != 2 {
		return fmt.Errorf("%s.country must be a two-letter ISO 3166 code", field)
	}
	return nil
}

// LeafURLs are the URLs written into leaf certificates, under base: the
// portal's PKI base URL; the CRL distribution point names the
// certificate's partition of the issuing CA's CRL, and the freshest CRL
// the delta CRLs of the full one. It is plain http:// on purpose: relying parties
// fetch CRLs, OCSP answers and CA certificates while validating a chain, so
// these URLs must not themselves need TLS validation (RFC 5280 §4.2.1.13,
// §4.2.2.1; RFC 6960 Appendix A.1). The objects are signed; HTTP is enough.
func LeafURLs(base string) URLs { return LeafURLsAt(base, "") }

// LeafURLsAt are LeafURLs for the issuing CA whose URL segment is segment
// (CAConfig.URLSegment): its CRLs under /crl/<segment>/ and its OCSP
// responder at /ocsp/<segment>, so that the certificates of each issuing CA
// name their own CA's revocation data. An empty segment gives the paths
// without one (/crl/issuing.crl, /ocsp).
func LeafURLsAt(base, segment string) URLs {
	base = strings.TrimRight(base, "/")
	crl, ocsp, caIssuers := base+"/crl/", base+"/ocsp", base+"/ca/issuing.der"
	if segment != "" {
		crl, ocsp = crl+segment+"/", ocsp+"/"+segment
	}
	return URLs{CRL: crl + "issuing.crl", OCSP: ocsp, CAIssuers: caIssuers,
		CRLPartitions: DefaultCRLPartitions, DeltaCRL: crl + "issuing-delta.crl"}
}

// IntermediateURLs are the URLs written into the issuing CA certificate: the
// root's CRL and the root certificate (RFC 5280 §4.2.2.1: DER over HTTP).
func IntermediateURLs(base string) URLs {
	base = strings.TrimRight(base, "/")
	return URLs{CRL: base + "/crl/root.crl", CAIssuers: base + "/ca/root.der"}
}

// NewRoot creates a self-signed root certificate for signer's key, linting a
// throwaway-key twin first.
func NewRoot(signer crypto.Signer, subject pkix.Name, now time.Time, validity time.Duration, linter *Linter) ([]byte, error) {
	sn, err := NewSerial()
	if err != nil {
		return nil, err
	}
	build := func(pub crypto.PublicKey) (*x509.Certificate, error) {
		ski, err := SubjectKeyID(pub)
		if err != nil {
			return nil, err
		}
		nb := now.Add(-Backdate).UTC().Truncate(time.Second)
		return &x509.Certificate{
			SerialNumber: sn.Big(), Subject: subject,
			NotBefore: nb, NotAfter: nb.Add(validity - time.Second),
			BasicConstraintsValid: true, IsCA: true,
			KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			SubjectKeyId: ski, AuthorityKeyId: ski,
		}, nil
	}
	throwaway, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, err
	}
	lintTmpl, err := build(throwaway.Public())
	if err != nil {
		return nil, err
	}
	lintDER, err := x509.CreateCertificate(rand.Reader, lintTmpl, lintTmpl, throwaway.Public(), throwaway)
	if err != nil {
		return nil, fmt.Errorf("building the root certificate: %w", err)
	}
	if err := linter.LintCertificate(lintDER); err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	tmpl, err := build(signer.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("signing the root certificate: %w", err)
	}
	return der, nil
}

// NewIntermediate certifies pub as the issuing CA under root: CA:TRUE with
// pathLenConstraint 0 (RFC 5280 §4.2.1.9), keyCertSign, cRLSign and
// digitalSignature (for OCSP responses signed by the CA key), the root's CRL
// and the root certificate's URL. Its validity never outlasts the root.
func NewIntermediate(root *x509.Certificate, rootSigner crypto.Signer, pub crypto.PublicKey, subject pkix.Name, now time.Time, validity time.Duration, urls URLs, linter *Linter) ([]byte, error) {
	sn, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb := now.Add(-Backdate).UTC().Truncate(time.Second)
	na := nb.Add(validity - time.Second)
	if na.After(root.NotAfter) {
		na = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn.Big(), Subject: subject, NotBefore: nb, NotAfter: na,
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId: ski,
	}
	if urls.CRL != "" {
		tmpl.CRLDistributionPoints = []string{urls.CRL}
	}
	if urls.CAIssuers != "" {
		tmpl.IssuingCertificateURL = []string{urls.CAIssuers}
	}
	throwaway, err := throwawayKey(rootSigner.Public())
	if err != nil {
		return nil, err
	}
	lintParent := *root
	lintParent.PublicKey = throwaway.Public()
	lintDER, err := x509.CreateCertificate(rand.Reader, tmpl, &lintParent, pub, throwaway)
	if err != nil {
		return nil, fmt.Errorf("building the issuing CA certificate: %w", err)
	}
	if err := linter.LintCertificate(lintDER); err != nil {
		return nil, fmt.Errorf("issuing CA certificate: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootSigner)
	if err != nil {
		return nil, fmt.Errorf("signing the issuing CA certificate: %w", err)
	}
	return der, nil
}

// NewIntermediateCSR makes the CSR for an issuing CA key whose root is kept
// offline (the external-root ceremony).
func NewIntermediateCSR(signer crypto.Signer, subject pkix.Name) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, signer)
	if err != nil {
		return nil, fmt.Errorf("creating the issuing CA CSR: %w", err)
	}
	return der, nil
}

// ErrBadIntermediate is an issuing CA certificate that cannot be used.
var ErrBadIntermediate = errors.New("unusable issuing CA certificate")

// CheckIntermediate verifies that cert certifies pub, is a CA allowed to
// sign certificates and CRLs, is valid at now, and chains to root.
func CheckIntermediate(cert, root *x509.Certificate, pub crypto.PublicKey, now time.Time) error {
	if k, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return fmt.Errorf("%w: its key %s is not the issuing key in the token (%s)", ErrBadIntermediate, KeyFingerprint(cert.PublicKey), KeyFingerprint(pub))
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%w: it is not a CA certificate (basicConstraints CA:TRUE missing)", ErrBadIntermediate)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 || cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return fmt.Errorf("%w: its keyUsage lacks keyCertSign or cRLSign", ErrBadIntermediate)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fmt.Errorf("%w: it is not valid now (valid %s to %s)", ErrBadIntermediate, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	if !bytes.Equal(cert.RawIssuer, root.RawSubject) {
		return fmt.Errorf("%w: its issuer %q is not the root %q", ErrBadIntermediate, cert.Issuer, root.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: it does not chain to the root: %v", ErrBadIntermediate, err)
	}
	return nil
}
