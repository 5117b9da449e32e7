package signer

import (
	"bytes"
	"crypto"
	"errors"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// errTBSCaptured ends x509.CreateCertificate once it has handed over the
// encoded TBSCertificate; it never leaves this package.
var errTBSCaptured = errors.New("signer: TBSCertificate captured")

// tbsCapture is the throwaway lint key as crypto/x509 sees it. When
// x509.CreateCertificate signs, it passes the complete encoded
// TBSCertificate to SignMessage (crypto.MessageSigner); tbsCapture keeps it
// and stops the call there. The lint certificate is then assembled around
// it with the issuer's lint signature (lintCopy): crypto/x509 would have
// signed it with the throwaway key and verified that signature, a key that
// is made for the process and trusted by no one, at the cost of a
// signature and a verification per certificate.
type tbsCapture struct {
	pub crypto.PublicKey
	tbs []byte
}

// Public is the throwaway key's public key, so that crypto/x509 picks the
// signature algorithm of the CA key (the throwaway key has its type and
// size) and finds it equal to the lint parent's key.
func (c *tbsCapture) Public() crypto.PublicKey { return c.pub }

// Sign is never called: crypto/x509 prefers SignMessage.
func (c *tbsCapture) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("signer: the TBS capture signs no digests")
}

// SignMessage keeps msg, the encoded TBSCertificate, and ends the signing.
func (c *tbsCapture) SignMessage(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	c.tbs = msg
	return nil, errTBSCaptured
}

// tbsSignatureAlgorithm returns the signature field of a TBSCertificate
// (RFC 5280 §4.1.2.3), with its tag and length: the AlgorithmIdentifier
// that the certificate's outer signatureAlgorithm must repeat exactly
// (§4.1.1.2).
func tbsSignatureAlgorithm(tbs []byte) ([]byte, error) {
	in := cryptobyte.String(tbs)
	var body, alg cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) || !in.Empty() ||
		!body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.SkipASN1(cbasn1.INTEGER) ||
		!body.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed TBSCertificate")
	}
	return alg, nil
}

// assembleCertificate encodes Certificate ::= SEQUENCE { tbsCertificate,
// signatureAlgorithm, signatureValue } (RFC 5280 §4.1) from the encoded TBS
// and algorithm and the signature.
func assembleCertificate(tbs, sigAlg, sig []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// splitCertificate returns copies of the TBSCertificate and the
// signatureAlgorithm of a DER certificate (RFC 5280 §4.1), each with its
// tag and length.
func splitCertificate(der []byte) (tbs, sigAlg []byte, err error) {
	in := cryptobyte.String(der)
	var cert, t, alg cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1Element(&t, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return nil, nil, errors.New("malformed certificate")
	}
	return bytes.Clone(t), bytes.Clone(alg), nil
}
