package signer_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certdesk/certdesk/signer"
)

// hsmCAOfType is hsmCA with an issuing key of the given type.
func hsmCAOfType(t *testing.T, name, keyType string) *signer.CA {
	t.Helper()
	cfg := signer.CAConfig{
		Dir:            filepath.Join(token.Dir, "ca-"+name),
		RootKey:        token.URI(name + "-root"),
		IssuingKey:     token.URI(name + "-issuing"),
		IssuingKeyType: keyType,
		Root:           signer.CAName{CommonName: "certdesk Test Root " + name, Organization: "certdesk tests"},
		Issuing:        signer.CAName{CommonName: "certdesk Test Issuing " + name, Organization: "certdesk tests"},
	}
	if _, err := signer.InitCA(cfg, signer.Keys{}, pkiURL, false, time.Now()); err != nil {
		t.Fatalf("InitCA: %v", err)
	}
	ca, err := signer.LoadCA(cfg, signer.Keys{}, signer.Profile{}, pkiURL, time.Now())
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	return ca
}

func TestCheckpointMessage_IsDomainSeparatedText(t *testing.T) {
	at := time.Date(2026, 11, 23, 19, 0, 0, 123456000, time.FixedZone("CET", 3600))
	got := string(signer.CheckpointMessage(42, strings.Repeat("ab", 32), at))
	want := "certdesk audit checkpoint v1\nseq=42\nhash=" + strings.Repeat("ab", 32) + "\nsigned_at=2026-11-23T18:00:00.123456Z\n"
	if got != want {
		t.Fatalf("message = %q, want %q", got, want)
	}
	if got[0] == 0x30 { // an ASN.1 SEQUENCE: the start of every DER certificate, CRL and OCSP response
		t.Fatal("checkpoint message starts like DER")
	}
}

func TestSignCheckpoint_HSMKey_VerifiesAndRejectsAnyChange(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	at := time.Now().UTC().Truncate(time.Microsecond)
	for _, tt := range []struct{ name, keyType string }{
		{"EC-P256", "EC-P256"},
		{"RSA-3072 PKCS#1 v1.5", "RSA-3072"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ca := hsmCAOfType(t, "checkpoint-"+strings.ToLower(tt.keyType), tt.keyType)
			cert := ca.Issuer.Certificate()
			sig, keyID, err := ca.Issuer.SignCheckpoint(7, hash, at)
			if err != nil {
				t.Fatalf("SignCheckpoint: %v", err)
			}
			spki, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
			sum := sha256.Sum256(spki)
			if keyID != hex.EncodeToString(sum[:]) {
				t.Fatalf("key id = %s, want the SHA-256 of the issuing SubjectPublicKeyInfo", keyID)
			}
			if err := signer.VerifyCheckpoint(cert, 7, hash, at, sig); err != nil {
				t.Fatalf("VerifyCheckpoint: %v", err)
			}
			flipped := bytes.Clone(sig)
			flipped[len(flipped)/2] ^= 1
			changes := []struct {
				name string
				seq  int64
				hash string
				at   time.Time
				sig  []byte
			}{
				{"other seq", 8, hash, at, sig},
				{"other hash", 7, strings.Repeat("f0", 32), at, sig},
				{"other time", 7, hash, at.Add(time.Microsecond), sig},
				{"damaged signature", 7, hash, at, flipped},
			}
			for _, c := range changes {
				if err := signer.VerifyCheckpoint(cert, c.seq, c.hash, c.at, c.sig); !errors.Is(err, signer.ErrBadCheckpoint) {
					t.Errorf("%s: VerifyCheckpoint = %v, want ErrBadCheckpoint", c.name, err)
				}
			}
		})
	}
}

func TestVerifyCheckpoint_OtherCAsKey_Fails(t *testing.T) {
	ca := hsmCAOfType(t, "checkpoint-ec-p256", "EC-P256")
	other := hsmCAOfType(t, "checkpoint-other", "EC-P256")
	hash := strings.Repeat("11", 32)
	at := time.Now().UTC().Truncate(time.Microsecond)
	sig, _, err := other.Issuer.SignCheckpoint(3, hash, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.VerifyCheckpoint(ca.Issuer.Certificate(), 3, hash, at, sig); !errors.Is(err, signer.ErrBadCheckpoint) {
		t.Fatalf("VerifyCheckpoint with another CA's signature = %v, want ErrBadCheckpoint", err)
	}
}
