package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/certdesk/certdesk/signer/serial"
	"golang.org/x/crypto/ocsp"
)

// OCSP object identifiers (RFC 6960 §4.2.2.2.1, §4.4.1).
var (
	// OIDOCSPNoCheck is id-pkix-ocsp-nocheck: a relying party need not check
	// the revocation status of the delegated responder certificate.
	OIDOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	// OIDOCSPNonce is id-pkix-ocsp-nonce.
	OIDOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidSHA1      = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}

	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

// ErrOCSPUnauthorized means an OCSP request names a CA this responder does
// not answer for (RFC 6960 §2.3 "unauthorized").
var ErrOCSPUnauthorized = errors.New("OCSP request for another issuer")

// ErrOCSPMalformed means an OCSP request could not be parsed (RFC 6960 §2.3
// "malformedRequest").
var ErrOCSPMalformed = errors.New("malformed OCSP request")

// NewOCSPResponderCert issues the certificate of a delegated OCSP responder
// (RFC 6960 §4.2.2.2) for pub: a short-lived end-entity certificate with
// keyUsage digitalSignature, extKeyUsage id-kp-OCSPSigning only, and
// id-pkix-ocsp-nocheck (§4.2.2.2.1) so that clients do not ask about the
// responder itself. It is linted with the issuer's throwaway key before the
// CA key signs, like every leaf.
func (i *Issuer) NewOCSPResponderCert(pub crypto.PublicKey, now time.Time, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		return nil, errors.New("OCSP responder validity must be positive")
	}
	sn, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb := now.Add(-Backdate).UTC().Truncate(time.Second)
	na := nb.Add(validity)
	if na.After(i.cert.NotAfter) {
		na = i.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn.Big(),
		Subject: pkix.Name{
			CommonName:   truncate(i.cert.Subject.CommonName+" OCSP Responder", 64),
			Organization: i.cert.Subject.Organization,
			Country:      i.cert.Subject.Country,
		},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		// The value of id-pkix-ocsp-nocheck is NULL (RFC 6960 §4.2.2.2.1).
		ExtraExtensions: []pkix.Extension{{Id: OIDOCSPNoCheck, Value: []byte{0x05, 0x00}}},
	}
	p, err := i.prepare(tmpl, pub)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder certificate: %w", err)
	}
	return i.Issue(p)
}

// OCSPRequest is a parsed OCSP request: the certificate asked about and the
// nonce, if any.
type OCSPRequest struct {
	*ocsp.Request
	// Nonce is the value of the id-pkix-ocsp-nonce request extension (the
	// extension's extnValue as sent), or nil.
	Nonce []byte
}

// ParseOCSPRequest parses a DER OCSP request (RFC 6960 §4.1). Only the
// first single request is answered, as most responders do. Errors wrap
// ErrOCSPMalformed.
func ParseOCSPRequest(der []byte) (*OCSPRequest, error) {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() < 0 {
		return nil, fmt.Errorf("%w: no serial number", ErrOCSPMalformed)
	}
	var outer struct {
		TBS struct {
			Raw           asn1.RawContent
			Version       int           `asn1:"optional,explicit,tag:0,default:0"`
			RequestorName asn1.RawValue `asn1:"optional,explicit,tag:1"`
			RequestList   []asn1.RawValue
			Extensions    []pkix.Extension `asn1:"optional,explicit,tag:2"`
		}
		Signature asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	out := &OCSPRequest{Request: req}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	for _, e := range outer.TBS.Extensions {
		if e.Id.Equal(OIDOCSPNonce) {
			if len(e.Value) == 0 || len(e.Value) > 130 {
				return nil, fmt.Errorf("%w: nonce of %d bytes", ErrOCSPMalformed, len(e.Value))
			}
			out.Nonce = e.Value
		}
	}
	return out, nil
}

// OCSPResponder signs OCSP responses for the certificates of one issuing CA
// (RFC 6960): with a delegated responder certificate issued by that CA
// (§4.2.2.2), or with the CA key itself when Cert is the CA certificate.
type OCSPResponder struct {
	issuer *x509.Certificate
	cert   *x509.Certificate
	key    crypto.Signer

	nameHash map[crypto.Hash][]byte
	keyHash  map[crypto.Hash][]byte
}

// NewOCSPResponder checks that key belongs to cert and that cert is either
// the issuer itself or a valid delegated responder certificate of issuer
// (signed by it, id-kp-OCSPSigning), and returns the responder.
func NewOCSPResponder(issuer, cert *x509.Certificate, key crypto.Signer) (*OCSPResponder, error) {
	if issuer == nil || cert == nil || key == nil {
		return nil, errors.New("OCSP responder: issuer, certificate and key are required")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: OCSP responder certificate %q has key %s, the token key has %s",
			ErrKeyMismatch, cert.Subject, KeyFingerprint(cert.PublicKey), KeyFingerprint(key.Public()))
	}
	if !cert.Equal(issuer) {
		if err := cert.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("OCSP responder certificate %q is not signed by %q: %w", cert.Subject, issuer.Subject, err)
		}
		hasEKU := false
		for _, u := range cert.ExtKeyUsage {
			hasEKU = hasEKU || u == x509.ExtKeyUsageOCSPSigning
		}
		if !hasEKU {
			return nil, fmt.Errorf("OCSP responder certificate %q lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)", cert.Subject)
		}
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("reading the issuer's public key: %w", err)
	}
	r := &OCSPResponder{issuer: issuer, cert: cert, key: key, nameHash: map[crypto.Hash][]byte{}, keyHash: map[crypto.Hash][]byte{}}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		hh := h.New()
		hh.Write(issuer.RawSubject)
		r.nameHash[h] = hh.Sum(nil)
		hh = h.New()
		hh.Write(spki.PublicKey.RightAlign())
		r.keyHash[h] = hh.Sum(nil)
	}
	return r, nil
}

// Certificate is the certificate that signs the responses.
func (r *OCSPResponder) Certificate() *x509.Certificate { return r.cert }

// Delegated reports whether a delegated responder certificate (not the CA
// key) signs.
func (r *OCSPResponder) Delegated() bool { return !r.cert.Equal(r.issuer) }

// Authorized reports whether req asks about a certificate of this
// responder's issuer (RFC 6960 §4.1.1 CertID: issuerNameHash and
// issuerKeyHash under the request's hash algorithm).
func (r *OCSPResponder) Authorized(req *ocsp.Request) bool {
	n, ok := r.nameHash[req.HashAlgorithm]
	return ok && bytes.Equal(n, req.IssuerNameHash) && bytes.Equal(r.keyHash[req.HashAlgorithm], req.IssuerKeyHash)
}

// OCSPStatus is what a response says about one certificate.
type OCSPStatus struct {
	Serial serial.Number
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status     int
	RevokedAt  time.Time
	Reason     int // RFC 5280 §5.3.1 CRLReason; 0 is left out
	ThisUpdate time.Time
	NextUpdate time.Time
	// IssuerHash is the hash of the CertID in the response: the one the
	// request used (SHA-1 when zero).
	IssuerHash crypto.Hash
	// Nonce is echoed in the response extensions (RFC 6960 §4.4.1); nil for
	// a pre-signed response.
	Nonce []byte
}

// Sign returns a signed, successful BasicOCSPResponse (RFC 6960 §4.2.1)
// for st. The responder is identified by key hash (§4.2.2.3), and a
// delegated responder certificate is included so that clients can verify it.
// golang.org/x/crypto/ocsp.CreateResponse cannot put a nonce into the
// responseExtensions, hence this encoder; its structures mirror that
// package's.
func (r *OCSPResponder) Sign(st OCSPStatus) ([]byte, error) {
	if st.Serial.IsZero() {
		return nil, errors.New("OCSP response: serial required")
	}
	single, err := r.singleResponse(st)
	if err != nil {
		return nil, err
	}
	tbsDER, err := r.responseData(single, st)
	if err != nil {
		return nil, err
	}
	sigAlg, hashFunc, err := signatureParams(r.key.Public())
	if err != nil {
		return nil, err
	}
	d := hashFunc.New()
	d.Write(tbsDER)
	sig, err := r.key.Sign(rand.Reader, d.Sum(nil), hashFunc)
	if err != nil {
		return nil, fmt.Errorf("signing OCSP response for %s: %w", st.Serial, err)
	}
	basic := ocspBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbsDER},
		SignatureAlgorithm: sigAlg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if r.Delegated() {
		basic.Certificates = []asn1.RawValue{{FullBytes: r.cert.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		return nil, fmt.Errorf("encoding OCSP response: %w", err)
	}
	return asn1.Marshal(ocspResponseASN1{
		Status:   asn1.Enumerated(ocsp.Success),
		Response: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basicDER},
	})
}

// singleResponse is the SingleResponse for st (RFC 6960 §4.2.1): its CertID
// under the request's hash (SHA-1 unless SHA-256), the status and the
// validity.
func (r *OCSPResponder) singleResponse(st OCSPStatus) (ocspSingleResponse, error) {
	h := st.IssuerHash
	if h == 0 {
		h = crypto.SHA1
	}
	hashOID, ok := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA1: oidSHA1, crypto.SHA256: oidSHA256}[h]
	if !ok {
		hashOID, h = oidSHA1, crypto.SHA1
	}
	single := ocspSingleResponse{
		CertID: ocspCertID{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: hashOID, Parameters: asn1.NullRawValue},
			NameHash:      r.nameHash[h], IssuerKeyHash: r.keyHash[h], SerialNumber: st.Serial.Big(),
		},
		ThisUpdate: st.ThisUpdate.UTC().Truncate(time.Second),
		NextUpdate: st.NextUpdate.UTC().Truncate(time.Second),
	}
	switch st.Status {
	case ocsp.Good:
		single.Good = true
	case ocsp.Unknown:
		single.Unknown = true
	case ocsp.Revoked:
		single.Revoked = ocspRevokedInfo{RevocationTime: st.RevokedAt.UTC().Truncate(time.Second), Reason: asn1.Enumerated(st.Reason)}
	default:
		return ocspSingleResponse{}, fmt.Errorf("OCSP response: status %d is not good, revoked or unknown", st.Status)
	}
	return single, nil
}

// responseData is the DER ResponseData to be signed (RFC 6960 §4.2.1): the
// responder by key hash (§4.2.2.3), producedAt, the one single response and
// the nonce, if any (§4.4.1).
func (r *OCSPResponder) responseData(single ocspSingleResponse, st OCSPStatus) ([]byte, error) {
	spkiHash, err := responderKeyHash(r.cert)
	if err != nil {
		return nil, err
	}
	keyHashDER, err := asn1.Marshal(spkiHash)
	if err != nil {
		return nil, err
	}
	tbs := ocspResponseData{
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: keyHashDER},
		ProducedAt:  st.ThisUpdate.UTC().Truncate(time.Second),
		Responses:   []ocspSingleResponse{single},
	}
	if st.Nonce != nil {
		tbs.Extensions = []pkix.Extension{{Id: OIDOCSPNonce, Value: st.Nonce}}
	}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, fmt.Errorf("encoding OCSP response: %w", err)
	}
	return tbsDER, nil
}

// responderKeyHash is the SHA-1 of the responder's subjectPublicKey bits
// (RFC 6960 §4.2.1 ResponderID byKey).
func responderKeyHash(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("reading the responder's public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.RightAlign())
	return sum[:], nil
}

// signatureParams picks the signature algorithm for a responder key:
// ECDSA with SHA-256 (P-256) or SHA-384 (P-384), RSA PKCS#1 v1.5 with SHA-256.
func signatureParams(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, crypto.SHA384, nil
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, crypto.SHA256, nil
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, fmt.Errorf("unsupported OCSP responder key type %T", pub)
}

// OCSPErrorResponse is the unsigned response for an OCSP error status
// (RFC 6960 §2.3): ocsp.Malformed, ocsp.InternalError, ocsp.TryLater or
// ocsp.Unauthorized.
func OCSPErrorResponse(status ocsp.ResponseStatus) []byte {
	der, _ := asn1.Marshal(struct{ Status asn1.Enumerated }{asn1.Enumerated(status)})
	return der
}

// ASN.1 structures of RFC 6960 §4.2.1.
type ocspResponseASN1 struct {
	Status   asn1.Enumerated
	Response ocspResponseBytes `asn1:"explicit,tag:0,optional"`
}

type ocspResponseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type ocspBasicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certificates       []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type ocspResponseData struct {
	Version     int `asn1:"optional,default:0,explicit,tag:0"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []ocspSingleResponse
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type ocspCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

type ocspSingleResponse struct {
	CertID     ocspCertID
	Good       asn1.Flag       `asn1:"tag:0,optional"`
	Revoked    ocspRevokedInfo `asn1:"tag:1,optional"`
	Unknown    asn1.Flag       `asn1:"tag:2,optional"`
	ThisUpdate time.Time       `asn1:"generalized"`
	NextUpdate time.Time       `asn1:"generalized,explicit,tag:0,optional"`
}

type ocspRevokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}
