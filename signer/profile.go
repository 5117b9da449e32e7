package signer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
)

// Profile is the leaf certificate profile (config section "profile"). The CA
// decides what goes into a certificate, never the CSR.
type Profile struct {
	// MaxValidityDays caps every certificate's validity (default 90).
	// Organisations may set a lower cap.
	MaxValidityDays int `yaml:"max_validity_days"`
	// AllowRSA2048 accepts 2048-bit RSA CSR keys (default: 3072 and up).
	AllowRSA2048 bool `yaml:"allow_rsa2048"`
	// RSAKeyEncipherment adds keyEncipherment to RSA leaves, for legacy TLS
	// 1.2 RSA key exchange stacks (RFC 5246 §7.4.8 does not need it for
	// client certificates; off by default).
	RSAKeyEncipherment bool `yaml:"rsa_key_encipherment"`
}

// Backdate is how far notBefore is set before the time of issuance, to absorb
// clock skew on relying parties (at most a minute).
const Backdate = time.Minute

// DefaultMaxValidityDays is the default validity cap.
const DefaultMaxValidityDays = 90

// WithDefaults fills unset fields.
func (p Profile) WithDefaults() Profile {
	if p.MaxValidityDays == 0 {
		p.MaxValidityDays = DefaultMaxValidityDays
	}
	return p
}

// Validate checks the profile, naming the offending field.
func (p Profile) Validate() error {
	if p.MaxValidityDays < 1 || p.MaxValidityDays > 825 {
		return fmt.Errorf("profile.max_validity_days: %d is out of range (1 to 825)", p.MaxValidityDays)
	}
	return nil
}

// CSRPolicy is the CSR policy this profile implies.
func (p Profile) CSRPolicy() CSRPolicy { return CSRPolicy{AllowRSA2048: p.AllowRSA2048} }

// URLs are the public URLs written into certificates (RFC 5280 §4.2.1.13
// CRL distribution points, §4.2.2.1 authority information access).
type URLs struct {
	CRL       string // e.g. https://certs.example/crl/issuing.crl
	OCSP      string // e.g. https://certs.example/ocsp
	CAIssuers string // e.g. https://certs.example/ca/issuing.der
	// CRLPartitions, when positive, writes into each certificate the URL of
	// its partition instead of CRL: PartitionURL(CRL, CRLPartition(serial)).
	CRLPartitions int
	// DeltaCRL, when set, is written as the freshest CRL extension (RFC
	// 5280 §4.2.1.15): where the delta CRLs of the full CRL are.
	DeltaCRL string
}

// DefaultCRLPartitions is how many partitions the issuing CA's revoked
// certificates are spread over: with ten million revoked, a partition lists
// about 160,000, which is read, built and signed well within the two
// seconds a revocation may take to be published.
const DefaultCRLPartitions = 64

// CRLPartition is the partition of a certificate with serial sn among n:
// its last two octets modulo n (serials are random, so partitions fill
// evenly). It is chosen once, at issuance, and recorded with the
// certificate (models.Certificate.CRLPartition).
func CRLPartition(sn serial.Number, n int) int {
	h := sn.String()
	if n <= 0 || len(h) < 2 {
		return -1
	}
	if len(h) > 4 {
		h = h[len(h)-4:]
	}
	v := 0
	for i := 0; i < len(h); i++ {
		v = v<<4 | int(hexNibble(h[i]))
	}
	return v % n
}

// PartitionURL is the URL of partition p of the CRL at full:
// …/crl/issuing.crl becomes …/crl/issuing/<p>.crl. A partition's issuing
// distribution point names exactly this URL (RFC 5280 §5.2.5), as the
// certificate's CRL distribution point does.
func PartitionURL(full string, p int) string {
	return strings.TrimSuffix(full, ".crl") + "/" + strconv.Itoa(p) + ".crl"
}

// LeafRequest is an approved issuance: the CSR's public key (already
// accepted by CSRPolicy) and identities (already checked by a Namespace).
type LeafRequest struct {
	PublicKey    crypto.PublicKey
	Identities   Identities
	Organization string // organisation display name, written as subject O
	Validity     time.Duration
}

// NewSerial returns a positive random serial of 128 bits (RFC 5280 §4.1.2.2:
// positive, at most 20 octets; CA/B Forum practice: at least 64 random bits).
func NewSerial() (serial.Number, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return serial.Number{}, fmt.Errorf("reading random serial: %w", err)
		}
		n := new(big.Int).SetBytes(b)
		if n.BitLen() > 64 { // never zero, and never short enough to look guessable
			return serial.FromBig(n)
		}
	}
}

// SubjectKeyID computes a key identifier per RFC 7093 §2 method 1: the
// leftmost 160 bits of the SHA-256 of the subjectPublicKey BIT STRING.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshalling public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// leafTemplate builds the leaf certificate of the profile for req.
func (p Profile) leafTemplate(req LeafRequest, sn serial.Number, now time.Time, urls URLs) (*x509.Certificate, error) {
	if req.Identities.Len() == 0 {
		return nil, &PolicyError{Rule: "identities", Reason: "no identities to issue for"}
	}
	maxValidity := time.Duration(p.MaxValidityDays) * 24 * time.Hour
	validity := req.Validity
	if validity <= 0 || validity > maxValidity {
		validity = maxValidity
	}
	ski, err := SubjectKeyID(req.PublicKey)
	if err != nil {
		return nil, err
	}
	ku := x509.KeyUsageDigitalSignature
	if _, isRSA := req.PublicKey.(*rsa.PublicKey); isRSA && p.RSAKeyEncipherment {
		ku |= x509.KeyUsageKeyEncipherment
	}
	notBefore := now.Add(-Backdate).UTC().Truncate(time.Second)
	t := &x509.Certificate{
		SerialNumber: sn.Big(),
		Subject:      leafSubject(req),
		NotBefore:    notBefore,
		// RFC 5280 §4.1.2.5: the validity period includes both ends.
		NotAfter:              notBefore.Add(validity - time.Second),
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		SubjectKeyId:          ski,
		URIs:                  req.Identities.URIs,
		DNSNames:              req.Identities.DNSNames,
		EmailAddresses:        req.Identities.Emails,
	}
	if urls.CRL != "" {
		t.CRLDistributionPoints = []string{urls.CRL}
		if p := CRLPartition(sn, urls.CRLPartitions); p >= 0 {
			t.CRLDistributionPoints = []string{PartitionURL(urls.CRL, p)}
		}
	}
	if urls.DeltaCRL != "" {
		ext, err := freshestCRLExtension(urls.DeltaCRL)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	if urls.OCSP != "" {
		t.OCSPServer = []string{urls.OCSP}
	}
	if urls.CAIssuers != "" {
		t.IssuingCertificateURL = []string{urls.CAIssuers}
	}
	return t, nil
}

// leafSubject sets O to the organisation and CN to the first identity that
// fits the 64-character ub-common-name (RFC 5280 Appendix A.1). The SANs are
// the identities; the CN is only a label for people reading the certificate.
func leafSubject(req LeafRequest) pkix.Name {
	n := pkix.Name{}
	if req.Organization != "" {
		n.Organization = []string{truncate(req.Organization, 64)}
	}
	for _, id := range req.Identities.Strings() {
		if len(id) <= 64 {
			n.CommonName = id
			break
		}
	}
	return n
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
