package signer

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CAConfig is the CA hierarchy configuration (config section "ca"). The CA
// certificates are kept as PEM files in Dir: root.pem, issuing.pem, and
// issuing.csr during the external-root ceremony.
type CAConfig struct {
	Dir                 string `yaml:"dir"`
	RootKey             string `yaml:"root_key"`    // RFC 7512 URI; empty with an external root
	IssuingKey          string `yaml:"issuing_key"` // RFC 7512 URI
	RootKeyType         string `yaml:"root_key_type"`
	IssuingKeyType      string `yaml:"issuing_key_type"`
	Root                CAName `yaml:"root"`
	Issuing             CAName `yaml:"issuing"`
	RootValidityDays    int    `yaml:"root_validity_days"`
	IssuingValidityDays int    `yaml:"issuing_validity_days"`
	// URLSegment is the path segment of this issuing CA's CRL and OCSP URLs
	// in its certificates (/crl/<segment>/issuing…, /ocsp/<segment>);
	// empty for the paths without one. Chosen once for a CA, at ca init or
	// rotation: its certificates keep naming it.
	URLSegment string `yaml:"url_segment"`
	// Previous are the issuing CAs this one replaced whose certificates
	// may still be valid: their CRLs and OCSP answers keep being made and
	// served until their last certificate has expired.
	Previous []PreviousCAConfig `yaml:"previous"`
}

// PreviousCAConfig is one retired issuing CA (an item of ca.previous).
type PreviousCAConfig struct {
	// Cert is the PEM file of the CA certificate.
	Cert string `yaml:"cert"`
	// Key is the RFC 7512 URI of its key, still in the token: it signs the
	// CA's CRLs and certifies its OCSP responders.
	Key string `yaml:"key"`
	// URLSegment is the segment that CA's certificates name (its
	// ca.url_segment when it was current; empty for the paths without one).
	URLSegment string `yaml:"url_segment"`
}

// validURLSegment reports what is wrong with a URL segment, or nil: lower
// case letters, digits and '-', at most 32, and not "issuing" (the paths
// without a segment). Lower case never begins a base64 OCSP request in
// /ocsp/<request> (a DER SEQUENCE encodes as "M…"), so /ocsp/<segment>/
// cannot be mistaken for one.
func validURLSegment(seg string) error {
	if seg == "" {
		return nil
	}
	if len(seg) > 32 || seg == "issuing" {
		return fmt.Errorf("%q must be at most 32 characters and not \"issuing\"", seg)
	}
	for _, r := range seg {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("%q may hold only a-z, 0-9 and '-'", seg)
		}
	}
	return nil
}

// WithDefaults fills unset fields: P-384 root for 10 years, P-256 issuing CA
// for 5 years.
func (c CAConfig) WithDefaults() CAConfig {
	if c.RootKeyType == "" {
		c.RootKeyType = "EC-P384"
	}
	if c.IssuingKeyType == "" {
		c.IssuingKeyType = "EC-P256"
	}
	if c.RootValidityDays == 0 {
		c.RootValidityDays = 3650
	}
	if c.IssuingValidityDays == 0 {
		c.IssuingValidityDays = 1825
	}
	if c.Root.CommonName == "" {
		c.Root.CommonName = "certdesk Root CA"
	}
	if c.Issuing.CommonName == "" {
		c.Issuing.CommonName = "certdesk Issuing CA"
	}
	return c
}

// Validate checks the section, naming the offending field.
func (c CAConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("ca.dir is required (where root.pem and issuing.pem are kept)")
	}
	if c.IssuingKey == "" {
		return errors.New("ca.issuing_key is required (a pkcs11: URI)")
	}
	for field, v := range map[string]string{"ca.root_key_type": c.RootKeyType, "ca.issuing_key_type": c.IssuingKeyType} {
		switch v {
		case "EC-P256", "EC-P384", "RSA-3072", "RSA-4096":
		default:
			return fmt.Errorf("%s: %q is not one of EC-P256, EC-P384, RSA-3072, RSA-4096", field, v)
		}
	}
	if c.RootValidityDays < 1 || c.IssuingValidityDays < 1 || c.IssuingValidityDays > c.RootValidityDays {
		return errors.New("ca.root_validity_days and ca.issuing_validity_days must be positive, the issuing CA's no longer than the root's")
	}
	if err := c.Root.Validate("ca.root"); err != nil {
		return err
	}
	if err := validURLSegment(c.URLSegment); err != nil {
		return fmt.Errorf("ca.url_segment: %w", err)
	}
	segments := map[string]string{c.URLSegment: "ca.url_segment"}
	for i, p := range c.Previous {
		field := fmt.Sprintf("ca.previous[%d]", i)
		switch {
		case p.Cert == "":
			return fmt.Errorf("%s.cert is required (the retired issuing CA's PEM certificate)", field)
		case p.Key == "":
			return fmt.Errorf("%s.key is required (a pkcs11: URI of the retired issuing CA's key)", field)
		}
		if err := validURLSegment(p.URLSegment); err != nil {
			return fmt.Errorf("%s.url_segment: %w", field, err)
		}
		if other, dup := segments[p.URLSegment]; dup {
			return fmt.Errorf("%s.url_segment: %q is also %s: each issuing CA's certificates need their own CRL and OCSP paths", field, p.URLSegment, other)
		}
		segments[p.URLSegment] = field + ".url_segment"
	}
	return c.Issuing.Validate("ca.issuing")
}

// RootPath is the root certificate's file.
func (c CAConfig) RootPath() string { return filepath.Join(c.Dir, "root.pem") }

// IssuingPath is the issuing CA certificate's file.
func (c CAConfig) IssuingPath() string { return filepath.Join(c.Dir, "issuing.pem") }

// CSRPath is the issuing CA's CSR during the external-root ceremony.
func (c CAConfig) CSRPath() string { return filepath.Join(c.Dir, "issuing.csr") }

// InitReport says what InitCA did and found.
type InitReport struct {
	Created []string // e.g. "root key pkcs11:…", "root certificate /…/root.pem"
	Existed []string
}

func (r *InitReport) created(f string, a ...any) { r.Created = append(r.Created, fmt.Sprintf(f, a...)) }
func (r *InitReport) existed(f string, a ...any) { r.Existed = append(r.Existed, fmt.Sprintf(f, a...)) }

// InitCA creates what is missing of the hierarchy: the root key and
// self-signed root (unless externalRoot), the issuing key, and either the
// issuing CA certificate signed by the root, or with externalRoot a CSR for
// an offline root. Running it again creates nothing that exists and says so.
func InitCA(cfg CAConfig, keys Keys, pkiURL string, externalRoot bool, now time.Time) (*InitReport, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating ca.dir: %w", err)
	}
	linter, err := NewLinter()
	if err != nil {
		return nil, err
	}
	rep := &InitReport{}
	issuingKey, err := findOrCreate(keys, cfg.IssuingKey, cfg.IssuingKeyType, "issuing key", rep)
	if err != nil {
		return nil, err
	}
	if externalRoot {
		if err := initIssuingCSR(cfg, issuingKey, rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if cfg.RootKey == "" {
		return nil, errors.New("ca.root_key is required unless --external-root is given")
	}
	rootKey, err := findOrCreate(keys, cfg.RootKey, cfg.RootKeyType, "root key", rep)
	if err != nil {
		return nil, err
	}
	root, err := initRoot(cfg, rootKey, now, linter, rep)
	if err != nil {
		return nil, err
	}
	if err := initIssuing(cfg, root, rootKey, issuingKey, pkiURL, now, linter, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// initIssuingCSR writes the issuing CA's CSR for an offline root to sign,
// unless the issuing certificate is already there.
func initIssuingCSR(cfg CAConfig, issuingKey crypto.Signer, rep *InitReport) error {
	if _, err := os.Stat(cfg.IssuingPath()); err == nil {
		rep.existed("issuing CA certificate %s", cfg.IssuingPath())
		return nil
	}
	der, err := NewIntermediateCSR(issuingKey, cfg.Issuing.Name())
	if err != nil {
		return err
	}
	if err := writePEM(cfg.CSRPath(), "CERTIFICATE REQUEST", der); err != nil {
		return err
	}
	rep.created("issuing CA CSR %s (have the offline root sign it, then run: certdesk ca import --cert FILE --root ROOT.pem)", cfg.CSRPath())
	return nil
}

// initRoot returns the root certificate in ca.dir, checked against rootKey,
// or makes and writes it when there is none.
func initRoot(cfg CAConfig, rootKey crypto.Signer, now time.Time, linter *Linter, rep *InitReport) (*x509.Certificate, error) {
	root, err := readCert(cfg.RootPath())
	switch {
	case err == nil:
		if err := CheckKeyMatches(root, rootKey); err != nil {
			return nil, fmt.Errorf("existing %s: %w", cfg.RootPath(), err)
		}
		rep.existed("root certificate %s", cfg.RootPath())
		return root, nil
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, err
	}
	der, err := NewRoot(rootKey, cfg.Root.Name(), now, days(cfg.RootValidityDays), linter)
	if err != nil {
		return nil, err
	}
	if err := writePEM(cfg.RootPath(), "CERTIFICATE", der); err != nil {
		return nil, err
	}
	root, _ = x509.ParseCertificate(der)
	rep.created("root certificate %s (%s, valid until %s)", cfg.RootPath(), root.Subject, root.NotAfter.Format(time.DateOnly))
	return root, nil
}

// initIssuing checks the issuing CA certificate in ca.dir against root and
// the issuing key, or has the root certify the issuing key and writes it.
func initIssuing(cfg CAConfig, root *x509.Certificate, rootKey, issuingKey crypto.Signer, pkiURL string, now time.Time, linter *Linter, rep *InitReport) error {
	if iss, err := readCert(cfg.IssuingPath()); err == nil {
		if err := CheckIntermediate(iss, root, issuingKey.Public(), now); err != nil {
			return fmt.Errorf("existing %s: %w", cfg.IssuingPath(), err)
		}
		rep.existed("issuing CA certificate %s", cfg.IssuingPath())
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	der, err := NewIntermediate(root, rootKey, issuingKey.Public(), cfg.Issuing.Name(), now, days(cfg.IssuingValidityDays), IntermediateURLs(pkiURL), linter)
	if err != nil {
		return err
	}
	if err := writePEM(cfg.IssuingPath(), "CERTIFICATE", der); err != nil {
		return err
	}
	iss, _ := x509.ParseCertificate(der)
	rep.created("issuing CA certificate %s (%s, valid until %s)", cfg.IssuingPath(), iss.Subject, iss.NotAfter.Format(time.DateOnly))
	return nil
}

func findOrCreate(keys Keys, ref, keyType, what string, rep *InitReport) (crypto.Signer, error) {
	s, err := keys.Find(ref)
	if err == nil {
		rep.existed("%s %s (%s)", what, redactRef(ref), KeyTypeName(s.Public()))
		return s, nil
	}
	if !IsNotFound(err) {
		return nil, fmt.Errorf("looking up the %s: %w", what, err)
	}
	if s, err = keys.Create(ref, keyType); err != nil {
		return nil, fmt.Errorf("creating the %s: %w", what, err)
	}
	rep.created("%s %s (%s)", what, redactRef(ref), KeyTypeName(s.Public()))
	return s, nil
}

// redactRef drops the query of a key reference (module path, PIN source or
// value) for messages.
func redactRef(ref string) string {
	if i := strings.IndexByte(ref, '?'); i >= 0 {
		return ref[:i]
	}
	return ref
}

// ImportIssuing installs an issuing CA certificate signed by an offline
// root, after checking that it certifies the issuing key in the token, is a
// CA with keyCertSign and cRLSign, and chains to root.
func ImportIssuing(cfg CAConfig, keys Keys, certPEM, rootPEM []byte, now time.Time) error {
	cfg = cfg.WithDefaults()
	cert, err := parsePEMCert(certPEM)
	if err != nil {
		return fmt.Errorf("issuing CA certificate: %w", err)
	}
	root, err := parsePEMCert(rootPEM)
	if err != nil {
		return fmt.Errorf("root certificate: %w", err)
	}
	if err := root.CheckSignatureFrom(root); err != nil || !root.IsCA {
		return fmt.Errorf("root certificate %q is not a self-signed CA certificate", root.Subject)
	}
	key, err := keys.Find(cfg.IssuingKey)
	if err != nil {
		return fmt.Errorf("looking up the issuing key: %w", err)
	}
	if err := CheckIntermediate(cert, root, key.Public(), now); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	if err := writePEM(cfg.RootPath(), "CERTIFICATE", root.Raw); err != nil {
		return err
	}
	if err := writePEM(cfg.IssuingPath(), "CERTIFICATE", cert.Raw); err != nil {
		return err
	}
	_ = os.Remove(cfg.CSRPath())
	return nil
}

// CA is the loaded hierarchy: the root certificate and the issuing CA.
type CA struct {
	Root   *x509.Certificate
	Issuer *Issuer
	// RootSigner is the root key when it is online in the token (ca init
	// without --external-root), for signing the root's CRL; nil when the
	// root is kept offline.
	RootSigner crypto.Signer
	Software   bool // the issuing key is a demo software key
	// URLSegment is the issuing CA's segment of its CRL and OCSP URLs
	// (CAConfig.URLSegment).
	URLSegment string
	// Previous are the retired issuing CAs (ca.previous), each checked
	// against its key and the root at load.
	Previous []PreviousCA
}

// PreviousCA is a retired issuing CA, loaded: it signs only its own CRLs
// and OCSP responders, never a certificate.
type PreviousCA struct {
	Issuer *Issuer
	// Key is the RFC 7512 URI of its key (OCSP responder keys are made in
	// the same token).
	Key        string
	URLSegment string
}

// LoadCA loads the CA certificates and checks the issuing key in the token
// against the issuing certificate; a mismatch refuses with a message naming
// both (CONVENTIONS #3).
func LoadCA(cfg CAConfig, keys Keys, profile Profile, pkiURL string, now time.Time) (*CA, error) {
	cfg = cfg.WithDefaults()
	root, err := readCert(cfg.RootPath())
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w (run certdesk ca init)", err)
	}
	cert, err := readCert(cfg.IssuingPath())
	if err != nil {
		return nil, fmt.Errorf("issuing CA certificate: %w (run certdesk ca init, or ca import after an external-root ceremony)", err)
	}
	key, err := keys.Find(cfg.IssuingKey)
	if err != nil {
		return nil, fmt.Errorf("issuing key %s: %w", redactRef(cfg.IssuingKey), err)
	}
	if err := CheckKeyMatches(cert, key); err != nil {
		return nil, fmt.Errorf("%s against key %s: %w", cfg.IssuingPath(), redactRef(cfg.IssuingKey), err)
	}
	if err := CheckIntermediate(cert, root, key.Public(), now); err != nil {
		return nil, err
	}
	iss, err := NewIssuer(cert, key, profile, LeafURLsAt(pkiURL, cfg.URLSegment), nil)
	if err != nil {
		return nil, err
	}
	ca := &CA{Root: root, Issuer: iss, Software: IsSoftware(cfg.IssuingKey), URLSegment: cfg.URLSegment}
	for i, p := range cfg.Previous {
		prev, err := loadPrevious(p, root, keys, profile, pkiURL)
		if err != nil {
			return nil, fmt.Errorf("ca.previous[%d]: %w", i, err)
		}
		if prev.Issuer.Certificate().Equal(cert) {
			return nil, fmt.Errorf("ca.previous[%d]: %s is the current issuing CA", i, p.Cert)
		}
		ca.Previous = append(ca.Previous, prev)
	}
	if cfg.RootKey != "" {
		if ca.RootSigner, err = keys.Find(cfg.RootKey); err != nil {
			return nil, fmt.Errorf("root key %s: %w", redactRef(cfg.RootKey), err)
		}
		if err := CheckKeyMatches(root, ca.RootSigner); err != nil {
			return nil, fmt.Errorf("%s against key %s: %w", cfg.RootPath(), redactRef(cfg.RootKey), err)
		}
	}
	return ca, nil
}

// loadPrevious loads a retired issuing CA: its certificate must be signed
// by root and its key in the token must match it (CONVENTIONS #3). It may
// have expired; the service stops renewing its CRLs once its last
// certificate has.
func loadPrevious(p PreviousCAConfig, root *x509.Certificate, keys Keys, profile Profile, pkiURL string) (PreviousCA, error) {
	cert, err := readCert(p.Cert)
	if err != nil {
		return PreviousCA{}, fmt.Errorf("certificate: %w", err)
	}
	if !cert.IsCA {
		return PreviousCA{}, fmt.Errorf("%s is not a CA certificate", p.Cert)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return PreviousCA{}, fmt.Errorf("%s is not signed by the root: %w", p.Cert, err)
	}
	key, err := keys.Find(p.Key)
	if err != nil {
		return PreviousCA{}, fmt.Errorf("key %s: %w", redactRef(p.Key), err)
	}
	if err := CheckKeyMatches(cert, key); err != nil {
		return PreviousCA{}, fmt.Errorf("%s against key %s: %w", p.Cert, redactRef(p.Key), err)
	}
	iss, err := NewIssuer(cert, key, profile, LeafURLsAt(pkiURL, p.URLSegment), nil)
	if err != nil {
		return PreviousCA{}, err
	}
	return PreviousCA{Issuer: iss, Key: p.Key, URLSegment: p.URLSegment}, nil
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// ReadCertificate reads a PEM certificate file, such as the issuing CA
// certificate in ca.dir.
func ReadCertificate(path string) (*x509.Certificate, error) { return readCert(path) }

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parsePEMCert(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func parsePEMCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func writePEM(path, typ string, der []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// PEM encodes a DER certificate.
func PEM(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
