package signer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxCSRSize is the largest CSR upload accepted, PEM or DER.
const MaxCSRSize = 64 << 10

// CSRPolicy decides which certificate signing requests are accepted. The zero
// value is the default policy: ECDSA P-256/P-384, Ed25519, RSA 3072 and up.
type CSRPolicy struct {
	// AllowRSA2048 also accepts 2048-bit RSA keys.
	AllowRSA2048 bool
}

// AcceptedCSR is a CSR that passed every rule of the policy. Only its public
// key, and names that pass identity policy, may reach a certificate.
type AcceptedCSR struct {
	CSR     *x509.CertificateRequest
	KeyType string // e.g. "ECDSA P-256", "RSA 3072", "Ed25519"

	keySHA256 string // KeySHA256, computed once by Check
}

// csrInput is what the rules look at: the raw upload and, once decoded and
// parsed, the request. Everything in it is untrusted until Check returns.
type csrInput struct {
	insecureRaw []byte
	der         []byte
	csr         *x509.CertificateRequest
	policy      CSRPolicy
}

// csrRule is one policy rule: a name shown to the user and a check.
type csrRule struct {
	name  string
	check func(*csrInput) error
}

// csrRules run in this fixed order; the first refusal wins. Decoding and
// parsing come first because later rules need the parsed request.
var csrRules = []csrRule{
	{"size", checkSize},
	{"encoding", decodeCSR},
	{"syntax", parseCSR},
	{"key-type", checkKeyType},
	{"signature-algorithm", checkSignatureAlgorithm},
	{"proof-of-possession", checkProofOfPossession},
	{"extensions", checkExtensions},
	{"requested-names", checkRequestedNames},
}

// Check applies every rule to an uploaded CSR (PEM or DER) and returns the
// accepted request or a *PolicyError naming the rule that refused it.
func (p CSRPolicy) Check(insecureUpload []byte) (*AcceptedCSR, error) {
	in := &csrInput{insecureRaw: insecureUpload, policy: p}
	for _, r := range csrRules {
		if err := r.check(in); err != nil {
			return nil, &PolicyError{Rule: r.name, Reason: err.Error()}
		}
	}
	fp, err := KeySHA256(in.csr.PublicKey)
	if err != nil {
		return nil, &PolicyError{Rule: "key-type", Reason: err.Error()}
	}
	return &AcceptedCSR{CSR: in.csr, KeyType: KeyTypeName(in.csr.PublicKey), keySHA256: fp}, nil
}

func checkSize(in *csrInput) error {
	if len(in.insecureRaw) == 0 {
		return fmt.Errorf("the upload is empty; paste or upload a PEM or DER PKCS#10 request")
	}
	if len(in.insecureRaw) > MaxCSRSize {
		return fmt.Errorf("the upload is %d bytes; a CSR may be at most %d bytes", len(in.insecureRaw), MaxCSRSize)
	}
	return nil
}

// decodeCSR accepts exactly one PEM block of type CERTIFICATE REQUEST (or the
// legacy NEW CERTIFICATE REQUEST), or raw DER.
func decodeCSR(in *csrInput) error {
	raw := bytes.TrimSpace(in.insecureRaw)
	if !bytes.HasPrefix(raw, []byte("-----BEGIN")) {
		if len(raw) > 0 && raw[0] == 0x30 { // DER SEQUENCE
			in.der = in.insecureRaw
			return nil
		}
		return fmt.Errorf("this is neither PEM nor DER; expected a PEM block beginning with -----BEGIN CERTIFICATE REQUEST-----")
	}
	block, rest := pem.Decode(raw)
	if block == nil {
		return fmt.Errorf("the PEM block is damaged and cannot be decoded")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return fmt.Errorf("found a PEM block of type %q; expected CERTIFICATE REQUEST", block.Type)
	}
	if more, _ := pem.Decode(bytes.TrimSpace(rest)); more != nil {
		return fmt.Errorf("the upload contains more than one PEM block; upload exactly one CSR")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("there is unexpected data after the CSR's PEM block")
	}
	in.der = block.Bytes
	return nil
}

func parseCSR(in *csrInput) error {
	csr, err := x509.ParseCertificateRequest(in.der)
	if err != nil {
		return fmt.Errorf("not a valid PKCS#10 request: %s", strings.TrimPrefix(err.Error(), "x509: "))
	}
	in.csr = csr
	return nil
}

func checkSignatureAlgorithm(in *csrInput) error {
	switch in.csr.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
		x509.PureEd25519:
		return nil
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD2WithRSA:
		return fmt.Errorf("the CSR is signed with %s; MD5 and SHA-1 are broken, sign it with SHA-256 or better", in.csr.SignatureAlgorithm)
	default:
		return fmt.Errorf("the CSR's signature algorithm (%s) is not accepted; use ECDSA, RSA or Ed25519 with SHA-256 or better", in.csr.SignatureAlgorithm)
	}
}

func checkKeyType(in *csrInput) error {
	switch k := in.csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s is not accepted; use P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		min := 3072
		if in.policy.AllowRSA2048 {
			min = 2048
		}
		if bits < min {
			return fmt.Errorf("RSA key of %d bits is too small; the minimum is %d bits (ECDSA P-256 is faster and smaller)", bits, min)
		}
		if bits > 8192 {
			return fmt.Errorf("RSA key of %d bits is larger than the 8192-bit maximum", bits)
		}
		if k.E != 65537 {
			return fmt.Errorf("RSA public exponent %d is not accepted; use 65537", k.E)
		}
		return nil
	default:
		return fmt.Errorf("key algorithm %s is not accepted; use ECDSA P-256 or P-384, Ed25519, or RSA 3072+", in.csr.PublicKeyAlgorithm)
	}
}

func checkProofOfPossession(in *csrInput) error {
	if err := in.csr.CheckSignature(); err != nil {
		return fmt.Errorf("the CSR's self-signature does not verify, so it does not prove possession of the private key")
	}
	return nil
}

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidNameConstraints  = asn1.ObjectIdentifier{2, 5, 29, 30}
	oidPolicyConstraint = asn1.ObjectIdentifier{2, 5, 29, 36}
	oidInhibitAnyPolicy = asn1.ObjectIdentifier{2, 5, 29, 54}
)

// checkExtensions refuses requested extensions that only make sense for a CA
// (RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.10) and duplicated extensions
// (RFC 5280 §4.2: "a certificate MUST NOT include more than one instance of a
// particular extension"). The CA ignores every requested extension when it
// builds the certificate, but asking for CA powers is a sign of a confused or
// hostile client and is refused outright.
func checkExtensions(in *csrInput) error {
	seen := map[string]bool{}
	for _, ext := range in.csr.Extensions {
		id := ext.Id.String()
		if seen[id] {
			return fmt.Errorf("extension %s is requested more than once", id)
		}
		seen[id] = true
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if _, err := asn1.Unmarshal(ext.Value, &bc); err != nil {
				return fmt.Errorf("the requested basicConstraints extension is malformed")
			}
			if bc.IsCA {
				return fmt.Errorf("the CSR asks for CA:TRUE; certdesk issues client certificates only")
			}
		case ext.Id.Equal(oidKeyUsage):
			var bits asn1.BitString
			if _, err := asn1.Unmarshal(ext.Value, &bits); err != nil {
				return fmt.Errorf("the requested keyUsage extension is malformed")
			}
			// keyCertSign is bit 5, cRLSign bit 6 (RFC 5280 §4.2.1.3).
			if bits.At(5) == 1 || bits.At(6) == 1 {
				return fmt.Errorf("the CSR asks for keyCertSign or cRLSign; certdesk issues client certificates only")
			}
		case ext.Id.Equal(oidNameConstraints), ext.Id.Equal(oidPolicyConstraint), ext.Id.Equal(oidInhibitAnyPolicy):
			return fmt.Errorf("the CSR asks for a CA-only extension (%s)", id)
		}
	}
	return nil
}

// checkRequestedNames refuses names in the CSR that no client identity may
// have. Whether the names are allowed for the organisation is decided later
// by the namespace check; here only their form is checked.
func checkRequestedNames(in *csrInput) error {
	for _, n := range RequestedNames(in.csr) {
		var pe *PolicyError
		if err := checkNameCharacters(n); errors.As(err, &pe) {
			return errors.New(pe.Reason)
		}
	}
	if cn := in.csr.Subject.CommonName; cn != "" {
		if strings.ContainsAny(cn, "\x00*") {
			return fmt.Errorf("the subject common name contains a NUL or a wildcard")
		}
	}
	return nil
}

// RequestedNames lists the SANs a CSR asks for: URIs, DNS names and emails.
// They are requests, not identities, until ParseIdentities and a namespace
// check accept them.
func RequestedNames(csr *x509.CertificateRequest) []string {
	var out []string
	for _, u := range csr.URIs {
		out = append(out, u.String())
	}
	out = append(out, csr.DNSNames...)
	out = append(out, csr.EmailAddresses...)
	for _, ip := range csr.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// KeyTypeName describes a public key for people: "ECDSA P-256", "RSA 3072",
// "Ed25519".
func KeyTypeName(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	default:
		return fmt.Sprintf("%T", pub)
	}
}

// Names of the key rules that need the store and so are applied by the
// request workflow, after the CSR rules above.
const (
	// RuleBlockedKey refuses a key on the blocked list (revoked for
	// keyCompromise, or reported compromised elsewhere), in every
	// organisation.
	RuleBlockedKey = "blocked-key"
	// RuleKeyOwner refuses a key already submitted or certified for another
	// organisation: a public key belongs to one organisation.
	RuleKeyOwner = "key-owner"
)

// KeySHA256 is the lower-case hex SHA-256 of the DER SubjectPublicKeyInfo of
// pub: the fingerprint by which keys are blocked and owned.
func KeySHA256(pub any) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}

// KeySHA256 is the fingerprint of the accepted CSR's public key.
func (a *AcceptedCSR) KeySHA256() string { return a.keySHA256 }

// PublicKeyFromPEM reads the public key of a PEM CSR (whose self-signature
// must verify), certificate or PUBLIC KEY block: what an administrator
// pastes to block a key reported compromised.
func PublicKeyFromPEM(insecurePEM []byte) (any, error) {
	block, _ := pem.Decode(bytes.TrimSpace(insecurePEM))
	if block == nil {
		return nil, fmt.Errorf("expected a PEM block (CERTIFICATE REQUEST, CERTIFICATE or PUBLIC KEY)")
	}
	switch block.Type {
	case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a valid PKCS#10 request: %s", strings.TrimPrefix(err.Error(), "x509: "))
		}
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("the CSR's self-signature does not verify")
		}
		return csr.PublicKey, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a valid X.509 certificate: %s", strings.TrimPrefix(err.Error(), "x509: "))
		}
		return c.PublicKey, nil
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a valid SubjectPublicKeyInfo: %s", strings.TrimPrefix(err.Error(), "x509: "))
		}
		return k, nil
	default:
		return nil, fmt.Errorf("found a PEM block of type %q; expected CERTIFICATE REQUEST, CERTIFICATE or PUBLIC KEY", block.Type)
	}
}
