package signer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// checkpointDomain opens every checkpoint message. A checkpoint signature is
// over this text, never over DER, so it can never be taken for the
// signature of a certificate, CRL or OCSP response made with the same key.
const checkpointDomain = "certdesk audit checkpoint v1\n"

// CheckpointMessage is the text an audit checkpoint signature covers:
//
//	certdesk audit checkpoint v1
//	seq=<decimal>
//	hash=<64 hex digits>
//	signed_at=<UTC, RFC 3339 with nanoseconds>
//
// each line ending in "\n".
func CheckpointMessage(seq int64, hash string, signedAt time.Time) []byte {
	return []byte(checkpointDomain +
		"seq=" + strconv.FormatInt(seq, 10) + "\n" +
		"hash=" + hash + "\n" +
		"signed_at=" + signedAt.UTC().Format(time.RFC3339Nano) + "\n")
}

// KeyID is the hex SHA-256 of a public key's SubjectPublicKeyInfo: the
// key_id of a checkpoint.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// SignCheckpoint signs the audit chain head (seq, hash) at time at with the
// issuing CA key: ECDSA (ASN.1) or RSA PKCS#1 v1.5 over the SHA-256 of
// CheckpointMessage (Ed25519 over the message itself). It returns the signature and the key's KeyID.
func (i *Issuer) SignCheckpoint(seq int64, hash string, at time.Time) (sig []byte, keyID string, err error) {
	if seq <= 0 || len(hash) != 64 {
		return nil, "", fmt.Errorf("signing checkpoint: seq must be positive and hash 64 hex digits")
	}
	keyID, err = KeyID(i.cert.PublicKey)
	if err != nil {
		return nil, "", err
	}
	msg, opts := checkpointInput(i.cert.PublicKey, seq, hash, at)
	sig, err = i.signer.Sign(rand.Reader, msg, opts)
	if err != nil {
		return nil, "", fmt.Errorf("signing checkpoint of event %d: %w", seq, err)
	}
	return sig, keyID, nil
}

// checkpointInput is what the key signs: the SHA-256 digest of the message
// for ECDSA and RSA, the message itself for Ed25519 (which hashes inside).
func checkpointInput(pub crypto.PublicKey, seq int64, hash string, at time.Time) ([]byte, crypto.SignerOpts) {
	m := CheckpointMessage(seq, hash, at)
	if _, isEd := pub.(ed25519.PublicKey); isEd {
		return m, crypto.Hash(0)
	}
	digest := sha256.Sum256(m)
	return digest[:], crypto.SHA256
}

// ErrBadCheckpoint means a checkpoint signature does not verify with the
// given certificate.
var ErrBadCheckpoint = errors.New("checkpoint signature does not verify")

// VerifyCheckpoint checks sig over CheckpointMessage(seq, hash, at) with the
// public key of cert (the issuing CA certificate).
func VerifyCheckpoint(cert *x509.Certificate, seq int64, hash string, at time.Time, sig []byte) error {
	if cert == nil {
		return errors.New("verifying checkpoint: no certificate")
	}
	msg, _ := checkpointInput(cert.PublicKey, seq, hash, at)
	if !verify(cert.PublicKey, msg, sig) {
		return ErrBadCheckpoint
	}
	return nil
}
